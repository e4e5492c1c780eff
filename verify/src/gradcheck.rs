//! Finite-difference checks of analytic gradients, after
//! `torch.autograd.gradcheck` and `gradgradcheck`.
//!
//! The idea: for a function `f` of some tensors, the backward pass claims a
//! Jacobian `J[o, i] = d out_o / d in_i`. We can estimate every entry
//! independently by nudging one input element up and down by `eps` and
//! watching the outputs move (central differences, error O(eps^2)):
//!
//! ```text
//! J[o, i] ~ (f(x + eps e_i)[o] - f(x - eps e_i)[o]) / (2 eps)
//! ```
//!
//! The analytic Jacobian is built one row at a time: a backward sweep with
//! `grad_outputs` one-hot on output element `o` returns row `o`. The two must
//! agree within `atol + rtol * |numeric|`. As PyTorch does, we also demand
//! that the analytic Jacobian is bit-identical when computed twice, and that
//! zero `grad_outputs` give exactly zero gradients.
//!
//! `gradgradcheck` applies the same test to the gradient itself: it checks
//! the function `(x, v) -> grad(f(x), x, v, create_graph = true)`, which is
//! only differentiable if the backward rules were recorded on the tape.
//!
//! Neither check compares the two forms of a backward rule with each other:
//! gradcheck runs the plain sweep (`create_graph = false`), and
//! gradgradcheck differentiates the recorded sweep against finite
//! differences *of the recorded sweep itself*, so a recorded rule that is
//! off by a constant factor passes both. [`recorded_matches_plain`] closes
//! that gap: it runs both sweeps with the same `grad_outputs` and demands
//! the same gradients.
//!
//! Only `f64` is accepted: with `f32` the finite differences are too noisy
//! to mean anything at these tolerances.
//!
//! The inputs may live on a GPU (all on the same device): the function then
//! runs there, the one-hot and random `grad_outputs` are made there, and
//! only the numbers being compared are copied to the host. A nudged input
//! is made on the host and copied back, one element at a time (slow, but
//! gradcheck's inputs are a handful of numbers).

use gradtape::{grad, grad_values, Tape, Tensor, Var};
use gradtape_kernels::compare::{check_close, Mismatch, Tol};
use gradtape_kernels::Device;
use std::fmt;

/// Tolerances and step, with torch.autograd.gradcheck's defaults.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// The step of the central differences (PyTorch's default 1e-6).
    pub eps: f64,
    /// The absolute tolerance (PyTorch's default 1e-5).
    pub atol: f64,
    /// The tolerance relative to the numeric entry (PyTorch's default 1e-3).
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// Why a check failed, with everything needed to find the culprit.
#[derive(Clone, Debug, PartialEq)]
pub enum GradcheckError {
    /// Analytic and numeric Jacobians disagree at one entry.
    Mismatch {
        /// Which of the function's outputs, counting from 0.
        output: usize,
        /// The flat index of the element within that output.
        output_element: usize,
        /// Which input, counting from 0.
        input: usize,
        /// The flat index of the element within that input.
        input_element: usize,
        /// The entry from the backward sweep.
        analytic: f64,
        /// The entry from central differences.
        numeric: f64,
    },
    /// Computing the analytic Jacobian twice gave different bits.
    NotReentrant {
        /// Which of the function's outputs, counting from 0.
        output: usize,
        /// The flat index of the element within that output.
        output_element: usize,
        /// Which input, counting from 0.
        input: usize,
        /// The flat index of the element within that input.
        input_element: usize,
        /// The entry from the first sweep.
        first: f64,
        /// The entry from the second.
        second: f64,
    },
    /// Zero `grad_outputs` gave a non-zero gradient.
    NonZeroForZeroGradOutputs {
        /// Which input, counting from 0.
        input: usize,
        /// The flat index of the element within that input.
        input_element: usize,
        /// The gradient found there, which should have been 0.
        value: f64,
    },
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::Mismatch { output, output_element, input, input_element, analytic, numeric } => write!(
                f,
                "Jacobian mismatch for output {output} element {output_element} with respect to input {input} \
                 element {input_element}: analytic {analytic:e}, numeric {numeric:e}, difference {:e}",
                (analytic - numeric).abs()
            ),
            GradcheckError::NotReentrant { output, output_element, input, input_element, first, second } => write!(
                f,
                "backward is not reentrant: output {output} element {output_element}, input {input} element \
                 {input_element} gave {first:e} then {second:e}"
            ),
            GradcheckError::NonZeroForZeroGradOutputs { input, input_element, value } => write!(
                f,
                "zero grad_outputs gave a non-zero gradient {value:e} for input {input} element {input_element}"
            ),
        }
    }
}

impl std::error::Error for GradcheckError {}

/// Where the inputs live (the CPU when there are none).
fn device_of(inputs: &[Tensor<f64>]) -> Device {
    inputs.first().map_or(Device::Cpu, |x| x.device())
}

/// Evaluates `f` on fresh leaves and returns the output values, on the
/// host.
fn evaluate<F>(f: &F, inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    f(&vars).iter().map(|v| v.value().to_cpu()).collect()
}

/// A zero tensor of `shape` with a one at flat index `at`, on `device`.
fn one_hot(shape: &[usize], at: usize, device: Device) -> Tensor<f64> {
    let mut host = Tensor::zeros(shape);
    host.data_mut()[at] = 1.0;
    host.to(device)
}

/// `jacobian[o][i]` is a row-major `numel(out_o) x numel(in_i)` matrix.
type Jacobian = Vec<Vec<Vec<f64>>>;

fn numeric_jacobian<F>(f: &F, inputs: &[Tensor<f64>], out_lens: &[usize], eps: f64) -> Jacobian
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let mut jac: Jacobian =
        out_lens.iter().map(|&m| inputs.iter().map(|x| vec![0.0; m * x.len()]).collect()).collect();
    for (i, x) in inputs.iter().enumerate() {
        for j in 0..x.len() {
            let nudged = |delta: f64| {
                let mut xs = inputs.to_vec();
                // On the CPU `to_cpu` shares the storage and `data_mut`
                // copies it; on a GPU the nudged copy goes back there.
                let mut host = x.to_cpu();
                host.data_mut()[j] += delta;
                xs[i] = host.to(x.device());
                evaluate(f, &xs)
            };
            let (plus, minus) = (nudged(eps), nudged(-eps));
            for (o, (p, m)) in plus.iter().zip(&minus).enumerate() {
                for e in 0..p.len() {
                    jac[o][i][e * x.len() + j] = (p.data()[e] - m.data()[e]) / (2.0 * eps);
                }
            }
        }
    }
    jac
}

/// Row by row, with one-hot `grad_outputs`; all rows from one recording
/// (the plain backward sweep records nothing, so the tape can be reused).
fn analytic_jacobian<F>(f: &F, inputs: &[Tensor<f64>]) -> Jacobian
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    let outs = f(&vars);
    let device = device_of(inputs);
    let zeros: Vec<Tensor<f64>> = outs.iter().map(|o| Tensor::zeros_on(&o.shape(), device)).collect();
    let mut jac: Jacobian =
        outs.iter().map(|o| inputs.iter().map(|x| vec![0.0; o.value().len() * x.len()]).collect()).collect();
    for (o, out) in outs.iter().enumerate() {
        for e in 0..out.value().len() {
            let mut seeds = zeros.clone();
            seeds[o] = one_hot(&out.shape(), e, device);
            let row = grad_values(&outs, &vars, Some(&seeds));
            for (i, g) in row.iter().enumerate() {
                let n = inputs[i].len();
                jac[o][i][e * n..(e + 1) * n].copy_from_slice(g.to_cpu().data());
            }
        }
    }
    jac
}

/// Checks the gradients of `f` at `inputs` against central differences,
/// with torch's default tolerances.
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with chosen tolerances.
pub fn gradcheck_with<F>(f: F, inputs: &[Tensor<f64>], opts: GradcheckOptions) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    // Zero grad_outputs must give exactly zero gradients.
    {
        let tape = Tape::new();
        let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
        let outs = f(&vars);
        let device = device_of(inputs);
        let zeros: Vec<Tensor<f64>> = outs.iter().map(|o| Tensor::zeros_on(&o.shape(), device)).collect();
        for (i, g) in grad_values(&outs, &vars, Some(&zeros)).iter().enumerate() {
            if let Some((j, &v)) = g.to_cpu().data().iter().enumerate().find(|(_, &v)| v != 0.0) {
                return Err(GradcheckError::NonZeroForZeroGradOutputs {
                    input: i,
                    input_element: j,
                    value: v,
                });
            }
        }
    }
    let analytic = analytic_jacobian(&f, inputs);
    let again = analytic_jacobian(&f, inputs);
    let out_lens: Vec<usize> = evaluate(&f, inputs).iter().map(|o| o.len()).collect();
    let numeric = numeric_jacobian(&f, inputs, &out_lens, opts.eps);
    for (o, per_input) in analytic.iter().enumerate() {
        for (i, jac) in per_input.iter().enumerate() {
            let n = inputs[i].len();
            for (k, &a) in jac.iter().enumerate() {
                let (output_element, input_element) = (k / n, k % n);
                let second = again[o][i][k];
                if a.to_bits() != second.to_bits() {
                    return Err(GradcheckError::NotReentrant {
                        output: o,
                        output_element,
                        input: i,
                        input_element,
                        first: a,
                        second,
                    });
                }
                let num = numeric[o][i][k];
                // Written so that a NaN on either side fails the check.
                let close = (a - num).abs() <= opts.atol + opts.rtol * num.abs();
                if !close {
                    return Err(GradcheckError::Mismatch {
                        output: o,
                        output_element,
                        input: i,
                        input_element,
                        analytic: a,
                        numeric: num,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Checks second derivatives: gradcheck of
/// `(x, v) -> grad(f(x), x, v, create_graph = true)` with a seeded random
/// `v` for each output. Inputs `0..n` of a reported error are `x`, the rest
/// are `v`.
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    gradgradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradgradcheck`] with chosen tolerances.
pub fn gradgradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let n = inputs.len();
    let mut all = inputs.to_vec();
    all.extend(random_grad_outputs(&f, inputs));
    gradcheck_with(
        |vars| {
            let (xs, vs) = vars.split_at(n);
            let outs = f(xs);
            grad(&outs, xs, Some(vs), true)
        },
        &all,
        opts,
    )
}

/// The seeded random `grad_outputs` of [`gradgradcheck`] and
/// [`recorded_matches_plain`], one per output of `f` at `inputs`, on the
/// inputs' device (drawn on the host, so the same on every device).
fn random_grad_outputs<F>(f: &F, inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let device = device_of(inputs);
    evaluate(f, inputs)
        .iter()
        .enumerate()
        .map(|(k, out)| Tensor::normal(out.shape(), 0.0, 1.0, 0x5eed + k as u64).to(device))
        .collect()
}

/// Checks that the recorded backward sweep (`grad` with
/// `create_graph = true`, values read) gives the same gradients as the
/// plain one (`grad_values`), for seeded random `grad_outputs`, within
/// `tol` (relative to each gradient's largest entry; [`Tol::EXACT`] for
/// rules whose two forms are the same formula). A NaN or infinity in either
/// is a failure. The error names the input.
pub fn recorded_matches_plain<F>(f: F, inputs: &[Tensor<f64>], tol: Tol) -> Result<(), Mismatch>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let seeds = random_grad_outputs(&f, inputs);
    let plain = {
        let tape = Tape::new();
        let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
        grad_values(&f(&vars), &vars, Some(&seeds))
    };
    let recorded: Vec<Tensor<f64>> = {
        let tape = Tape::new();
        let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
        let seed_vars: Vec<_> = seeds.iter().map(|v| tape.param(v)).collect();
        grad(&f(&vars), &vars, Some(&seed_vars), true).iter().map(|g| g.value()).collect()
    };
    assert_eq!(plain.len(), inputs.len(), "one plain gradient per input");
    assert_eq!(recorded.len(), inputs.len(), "one recorded gradient per input");
    for (i, (r, p)) in recorded.iter().zip(&plain).enumerate() {
        check_close(&format!("recorded gradient of input {i}"), &r.to_cpu(), &p.to_cpu(), tol)?;
    }
    Ok(())
}
