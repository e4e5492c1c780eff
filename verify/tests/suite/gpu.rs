//! The GPU parity suite: everything the engine computes on a CUDA device
//! must agree with the CPU on the same inputs.
//!
//! Each test asks [`gpu`] for device 0. Where there is none (no driver, no
//! device, no NVRTC or cuBLAS) it prints `skipped: no CUDA device (why)`
//! and passes, unless `GRADTAPE_REQUIRE_CUDA=1` is set (as
//! `scripts/gpu_check.sh run` does on the GPU machine): then it fails with
//! the reason, so a GPU run cannot pass by skipping.
//!
//! What is compared:
//!
//! - every op of `ops_gradcheck`, on fixed shapes that include its
//!   broadcasting patterns plus sizes that need many thread blocks: the
//!   forward value, the plain backward sweep, the recorded one
//!   (`create_graph`) and a double backward through the recorded one, in
//!   f32 (1e-5 relative to the largest expected entry) and f64 (1e-12);
//! - `gradcheck` and `gradgradcheck` in f64 with the inputs on the GPU
//!   (finite differences and Jacobians computed there);
//! - the optimisers' updates (Adam, SGD with momentum) over a few steps;
//! - one `train_step` of every model kind from the same weights (and a
//!   step with the same dropout and noise masks and VAE noise passed
//!   explicitly, since a GPU draws its own), comparing the loss and the
//!   updated weights;
//! - the two panics a user meets first: an op on two devices, and a host
//!   accessor on a GPU tensor.
//!
//! Every comparison goes through `gradtape_kernels::compare`, where a NaN
//! or an infinity on either side fails. The comparison code itself runs on
//! every machine: [`the_parity_harness_passes_cpu_against_cpu`] drives it
//! with the CPU in the GPU's place.
#![cfg(feature = "cuda")]

use gradtape::{grad, grad_values, Act, Element, Tape, Tensor, Var};
use gradtape_kernels::compare::{check_close, Tol};
use gradtape_kernels::Device;
use gradtape_models::autoencoders::{
    Autoencoder, ModelKind, PenaltyMode, RegularizedAutoencoder, RegularizedConfig, Vae, VaeConfig,
};
use gradtape_models::optim::{Adam, Optimizer, Sgd};
use gradtape_models::params::Bound;
use gradtape_models::spec::ModelSpec;
use gradtape_models::train::train_step;
use gradtape_verify::data::{downsampled_batch, real_batch};
use gradtape_verify::{gradcheck, gradgradcheck};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// CUDA device 0, or `None` (after printing why) where there is none.
///
/// A real GPU where NVIDIA's driver is installed, else the CPU stand-in for
/// the driver and cuBLAS (`gradtape_kernels::cuda::standin`), which runs the
/// same GPU code on the CPU. Each test prints which one it ran on. With
/// `GRADTAPE_REQUIRE_CUDA=1` (the GPU machine) anything but a real GPU is a
/// failure; with `GRADTAPE_REQUIRE_STANDIN=1` (CI) a skip is.
fn gpu() -> Option<Device> {
    use gradtape_kernels::cuda::standin;
    match standin::device_for_tests(0) {
        Ok((device, backing)) => {
            println!("ran on {backing}: {}", device.describe());
            Some(device)
        }
        Err(e) => {
            if standin::required("GRADTAPE_REQUIRE_CUDA") {
                panic!("GRADTAPE_REQUIRE_CUDA=1 but there is no CUDA device: {e}");
            }
            if standin::required("GRADTAPE_REQUIRE_STANDIN") {
                panic!(
                    "GRADTAPE_REQUIRE_STANDIN=1 but neither a GPU nor the CPU stand-in could be opened: {e}"
                );
            }
            println!("skipped: no CUDA device and no CPU stand-in ({e})");
            None
        }
    }
}

/// How close the GPU must come to the CPU in each precision, relative to
/// the largest entry of the CPU's result.
trait Precision: Element {
    const TOL: Tol;
}

impl Precision for f32 {
    const TOL: Tol = Tol::rel(1e-5);
}

impl Precision for f64 {
    const TOL: Tol = Tol::rel(1e-12);
}

// ---- ops -------------------------------------------------------------------

type Func<T> = Box<dyn for<'t> Fn(&[Var<'t, T>]) -> Vec<Var<'t, T>>>;

fn op<T: Element>(f: impl for<'t> Fn(&[Var<'t, T>]) -> Vec<Var<'t, T>> + 'static) -> Func<T> {
    Box::new(f)
}

/// One op applied to fixed inputs (on the host).
struct OpCase<T: Element> {
    name: String,
    f: Func<T>,
    inputs: Vec<Tensor<T>>,
}

fn case<T: Element>(name: impl Into<String>, f: Func<T>, inputs: &[&Tensor<T>]) -> OpCase<T> {
    OpCase { name: name.into(), f, inputs: inputs.iter().map(|&x| x.clone()).collect() }
}

/// Uniform in [-1.5, 1.5), drawn in f64 and rounded to `T` (so f32 and f64
/// see the same numbers).
fn any<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.5, 1.5, seed).cast()
}

/// Values in (-1.7, -0.2] U [0.2, 1.7): away from the kinks at 0.
fn away_from_zero<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.5, 1.5, seed).map(|x| if x >= 0.0 { x + 0.2 } else { x - 0.2 }).cast()
}

/// Values in [0.5, 2): safe for log, sqrt and negative powers.
fn positive<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, 0.5, 2.0, seed).cast()
}

/// Distinct values 0.25 apart (exact in f32 too), shuffled: max has one
/// winner.
fn distinct<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.25 - 1.0).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    Tensor::from_vec(v, shape).cast()
}

/// Values kept at least 0.1 away from the clamp bounds +-0.5.
fn away_from_bounds<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.0, 1.0, seed)
        .map(|x| if (x.abs() - 0.5).abs() < 0.1 { x * 0.6 } else { x })
        .cast()
}

/// Shapes for the elementwise ops: a scalar, small and odd sizes, and
/// sizes that need many blocks (100,003 is past one grid of full blocks).
const ELEMENTWISE_SHAPES: &[&[usize]] = &[&[], &[7], &[3, 4, 5], &[1025], &[100_003]];

/// Pairs that broadcast as `ops_gradcheck`'s strategy makes them (axes set
/// to 1, leading axes dropped, either side the smaller), one pair where
/// both sides broadcast, and large ones.
const BROADCAST_PAIRS: &[(&[usize], &[usize])] = &[
    (&[], &[]),
    (&[3], &[]),
    (&[], &[2, 3]),
    (&[2, 3], &[2, 3]),
    (&[2, 3], &[3]),
    (&[3], &[2, 3]),
    (&[2, 3], &[2, 1]),
    (&[1, 3], &[2, 3]),
    (&[2, 3, 4], &[3, 1]),
    (&[2, 1, 4], &[2, 3, 4]),
    (&[2, 1], &[1, 3]),
    (&[33, 1025], &[1025]),
    (&[5, 7, 300], &[7, 1]),
];

/// (full, small) shapes for broadcast_to and sum_to.
const LAYOUT_PAIRS: &[(&[usize], &[usize])] =
    &[(&[2, 3], &[3]), (&[2, 3, 4], &[3, 1]), (&[3, 4], &[1, 4]), (&[33, 1025], &[1025]), (&[4], &[])];

/// Every op of the engine with its inputs, in `T`.
fn op_cases<T: Element>() -> Vec<OpCase<T>> {
    let s = T::of;
    let mut cases = Vec::new();
    for (k, &shape) in ELEMENTWISE_SHAPES.iter().enumerate() {
        let seed = 10 + k as u64;
        let (x, nz, pos, xc) = (
            any(shape, seed),
            away_from_zero(shape, seed),
            positive(shape, seed),
            away_from_bounds(shape, seed),
        );
        let unary: Vec<(&str, Func<T>, &Tensor<T>)> = vec![
            ("neg", op(|v| vec![-v[0]]), &x),
            ("add_scalar", op(move |v| vec![v[0] + s(0.7)]), &x),
            ("sub_scalar", op(move |v| vec![v[0] - s(0.7)]), &x),
            ("mul_scalar", op(move |v| vec![v[0] * s(-1.3)]), &x),
            ("div_scalar", op(move |v| vec![v[0] / s(2.5)]), &x),
            ("scalar_sub", op(move |v| vec![v[0].rsub_scalar(s(3.0))]), &x),
            ("scalar_div", op(move |v| vec![v[0].rdiv_scalar(s(2.0))]), &nz),
            ("scalar_add_mul", op(move |v| vec![v[0] * s(2.0) + s(1.0)]), &x),
            ("exp", op(|v| vec![v[0].exp()]), &x),
            ("log", op(|v| vec![v[0].log()]), &pos),
            ("pow_2.5", op(move |v| vec![v[0].powf(s(2.5))]), &pos),
            ("pow_-1.5", op(move |v| vec![v[0].powf(s(-1.5))]), &pos),
            ("sqrt", op(|v| vec![v[0].sqrt()]), &pos),
            ("square", op(|v| vec![v[0].square()]), &x),
            ("abs", op(|v| vec![v[0].abs()]), &nz),
            ("sigmoid", op(|v| vec![v[0].sigmoid()]), &x),
            ("tanh", op(|v| vec![v[0].tanh()]), &x),
            ("relu", op(|v| vec![v[0].relu()]), &nz),
            ("softplus", op(|v| vec![v[0].softplus()]), &x),
            ("clamp", op(move |v| vec![v[0].clamp(s(-0.5), s(0.5))]), &xc),
        ];
        for (name, f, input) in unary {
            cases.push(case(format!("{name} on {shape:?}"), f, &[input]));
        }
    }
    for (k, &(sa, sb)) in BROADCAST_PAIRS.iter().enumerate() {
        let seed = 100 + k as u64;
        let (a, b, bnz) = (any(sa, seed), any(sb, seed + 1), away_from_zero(sb, seed + 2));
        let on = format!("on {sa:?} and {sb:?}");
        cases.push(case(format!("add {on}"), op(|v| vec![v[0] + v[1]]), &[&a, &b]));
        cases.push(case(format!("sub {on}"), op(|v| vec![v[0] - v[1]]), &[&a, &b]));
        cases.push(case(format!("mul {on}"), op(|v| vec![v[0] * v[1]]), &[&a, &b]));
        cases.push(case(format!("div {on}"), op(|v| vec![v[0] / v[1]]), &[&a, &bnz]));
        cases.push(case(format!("fan_out {on}"), op(|v| vec![v[0] * v[0] + v[0] * v[1]]), &[&a, &b]));
    }
    let reduction_shapes: &[&[usize]] = &[&[7], &[3, 4, 5], &[2, 1, 3], &[7, 1025]];
    for (k, &shape) in reduction_shapes.iter().enumerate() {
        let seed = 200 + k as u64;
        let (x, d) = (any(shape, seed), distinct(shape, seed));
        cases.push(case(format!("sum on {shape:?}"), op(|v| vec![v[0].sum()]), &[&x]));
        cases.push(case(format!("sum_squares on {shape:?}"), op(|v| vec![v[0].sum_squares()]), &[&x]));
        cases.push(case(format!("mean on {shape:?}"), op(|v| vec![v[0].mean()]), &[&x]));
        cases.push(case(format!("max on {shape:?}"), op(|v| vec![v[0].max()]), &[&d]));
        for axis in 0..shape.len() {
            for keepdim in [false, true] {
                let on = format!("axis {axis} keepdim {keepdim} on {shape:?}");
                cases.push(case(
                    format!("sum_axis {on}"),
                    op(move |v| vec![v[0].sum_axis(axis, keepdim)]),
                    &[&x],
                ));
                cases.push(case(
                    format!("mean_axis {on}"),
                    op(move |v| vec![v[0].mean_axis(axis, keepdim)]),
                    &[&x],
                ));
                cases.push(case(
                    format!("max_axis {on}"),
                    op(move |v| vec![v[0].max_axis(axis, keepdim)]),
                    &[&d],
                ));
            }
        }
    }
    // A whole-tensor reduction over many blocks (two launches on the GPU).
    // Positive terms: an f32 sum of 100,003 signed terms cancels, and the
    // CPU's and the GPU's orders of summation would differ by more than
    // 1e-5 of the result for reasons that are not bugs.
    let big = positive::<T>(&[100_003], 300);
    cases.push(case("sum on [100003]", op(|v| vec![v[0].sum()]), &[&big]));
    cases.push(case("sum_squares on [100003]", op(|v| vec![v[0].sum_squares()]), &[&big]));
    cases.push(case("mean on [100003]", op(|v| vec![v[0].mean()]), &[&big]));
    let big_distinct = distinct::<T>(&[100_003], 301);
    cases.push(case("max on [100003]", op(|v| vec![v[0].max()]), &[&big_distinct]));
    // Few outputs over long lanes: the GPU splits each lane into runs
    // (reduce_axis, sum_to and mul_sum_to, as in a bias gradient over a big
    // batch) and sums to one number over the whole launch. Positive terms,
    // for the reason above.
    let tall = positive::<T>(&[2100, 3], 302);
    let (row, tall_distinct) = (positive::<T>(&[3], 303), distinct::<T>(&[2100, 3], 304));
    cases.push(case("sum_axis 0 on [2100, 3]", op(|v| vec![v[0].sum_axis(0, false)]), &[&tall]));
    cases.push(case("mean_axis 0 on [2100, 3]", op(|v| vec![v[0].mean_axis(0, true)]), &[&tall]));
    cases.push(case("max_axis 0 on [2100, 3]", op(|v| vec![v[0].max_axis(0, false)]), &[&tall_distinct]));
    cases.push(case("add (bias) on [2100, 3] and [3]", op(|v| vec![v[0] + v[1]]), &[&tall, &row]));
    cases.push(case("mul (scale) on [2100, 3] and [3]", op(|v| vec![v[0] * v[1]]), &[&tall, &row]));
    let one = positive::<T>(&[], 305);
    cases.push(case("mul on [2100, 3] and []", op(|v| vec![v[0] * v[1]]), &[&tall, &one]));
    // The fused ops (autograd/src/ops/fused.rs), in both kernels' paths:
    // one pass over a batch, and a bias gradient split into runs.
    let (z, b) = (any::<T>(&[7, 5], 306), any::<T>(&[5], 307));
    for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let name = act.name();
        cases.push(case(
            format!("bias_act {name} on [7, 5]"),
            op(move |v| vec![v[0].bias_act(v[1], act)]),
            &[&z, &b],
        ));
        cases.push(case(
            format!("bias_act {name} on [2100, 3]"),
            op(move |v| vec![v[0].bias_act(v[1], act)]),
            &[&tall, &row],
        ));
    }

    for (k, &(full, small)) in LAYOUT_PAIRS.iter().enumerate() {
        let seed = 400 + k as u64;
        let (xs, xf) = (any::<T>(small, seed), any::<T>(full, seed + 1));
        let (f2, s2) = (full.to_vec(), small.to_vec());
        cases.push(case(
            format!("broadcast_to {small:?} -> {full:?}"),
            op(move |v| vec![v[0].broadcast_to(&f2)]),
            &[&xs],
        ));
        cases.push(case(
            format!("sum_to {full:?} -> {small:?}"),
            op(move |v| vec![v[0].sum_to(&s2)]),
            &[&xf],
        ));
        let n = xf.len();
        cases.push(case(format!("reshape_flat {full:?}"), op(move |v| vec![v[0].reshape(&[n])]), &[&xf]));
        let rev: Vec<usize> = full.iter().rev().copied().collect();
        cases.push(case(format!("reshape_reversed {full:?}"), op(move |v| vec![v[0].reshape(&rev)]), &[&xf]));
        if full.len() >= 2 {
            cases.push(case(format!("transpose {full:?}"), op(|v| vec![v[0].transpose()]), &[&xf]));
        }
        for (axis, &len) in full.iter().enumerate() {
            let index = (seed as usize) % len;
            let start = (seed as usize / 7) % len;
            let take = len - start;
            let on = format!("axis {axis} of {full:?}");
            cases.push(case(format!("select {on}"), op(move |v| vec![v[0].select(axis, index)]), &[&xf]));
            cases.push(case(
                format!("slice_axis {on}"),
                op(move |v| vec![v[0].slice_axis(axis, start, take)]),
                &[&xf],
            ));
            cases.push(case(
                format!("pad_axis {on}"),
                op(move |v| vec![v[0].pad_axis(axis, 1, len + 2)]),
                &[&xf],
            ));
            let picked = xf.select(axis, index);
            cases.push(case(
                format!("unselect {on}"),
                op(move |v| vec![v[0].unselect(axis, index, len)]),
                &[&picked],
            ));
        }
    }

    for (k, &(m, kk, n)) in [(1, 1, 1), (2, 3, 4), (65, 130, 33)].iter().enumerate() {
        for ta in [false, true] {
            for tb in [false, true] {
                let seed = 500 + 4 * k as u64 + 2 * ta as u64 + tb as u64;
                let a_shape = if ta { [kk, m] } else { [m, kk] };
                let b_shape = if tb { [n, kk] } else { [kk, n] };
                let (a, b) = (any::<T>(&a_shape, seed), any::<T>(&b_shape, seed + 100));
                let name = format!("matmul_t {m}x{kk}x{n} ta {ta} tb {tb}");
                cases.push(case(name, op(move |v| vec![v[0].matmul_t(v[1], ta, tb)]), &[&a, &b]));
            }
        }
    }
    let batched: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[4, 5]),
        (&[2, 3, 4], &[1, 4, 5]),
        (&[2, 3, 4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 5]),
    ];
    for (k, &(sa, sb)) in batched.iter().enumerate() {
        let (a, b) = (any::<T>(sa, 600 + k as u64), any::<T>(sb, 650 + k as u64));
        cases.push(case(
            format!("batched matmul {sa:?} x {sb:?}"),
            op(|v| vec![v[0].matmul(v[1])]),
            &[&a, &b],
        ));
    }

    for &(m, n) in &[(4usize, 5usize), (64, 784)] {
        let (a, b) = (any::<T>(&[m], 700), any::<T>(&[n], 701));
        cases.push(case(format!("outer {m} x {n}"), op(|v| vec![v[0].outer(v[1])]), &[&a, &b]));
        let w = away_from_zero::<T>(&[m, n], 702);
        let on = format!("on [{m}, {n}]");
        cases.push(case(format!("norm {on}"), op(|v| vec![v[0].norm()]), &[&w]));
        cases.push(case(format!("frobenius_norm {on}"), op(|v| vec![v[0].frobenius_norm()]), &[&w]));
        cases.push(case(format!("row_norms {on}"), op(|v| vec![v[0].row_norms()]), &[&w]));
        cases.push(case(format!("column {on}"), op(|v| vec![v[0].column(0)]), &[&w]));
        cases.push(case(format!("row {on}"), op(move |v| vec![v[0].row(m - 1)]), &[&w]));
    }
    cases
}

/// Everything one device computes for an op case, copied to the host.
struct Results<T: Element> {
    values: Vec<Tensor<T>>,
    plain: Vec<Tensor<T>>,
    recorded: Vec<Tensor<T>>,
    double: Vec<Tensor<T>>,
}

/// Runs `f` on `inputs` (on their device): its values, the plain backward
/// sweep and the recorded one with `seeds` as `grad_outputs`, and the
/// gradient of `sum_i <recorded_i, dirs_i>` (a double backward).
fn run_op<T: Element>(
    f: &Func<T>,
    inputs: &[Tensor<T>],
    seeds: &[Tensor<T>],
    dirs: &[Tensor<T>],
) -> Results<T> {
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    let outs = f(&vars);
    let values = outs.iter().map(|o| o.value().to_cpu()).collect();
    let plain = grad_values(&outs, &vars, Some(seeds)).iter().map(Tensor::to_cpu).collect();
    let seed_vars: Vec<_> = seeds.iter().map(|s| tape.constant(s)).collect();
    let grads = grad(&outs, &vars, Some(&seed_vars), true);
    let recorded = grads.iter().map(|g| g.value().to_cpu()).collect();
    let inner = grads
        .iter()
        .zip(dirs)
        .map(|(g, d)| (*g * tape.constant(d)).sum())
        .reduce(|a, b| a + b)
        .expect("every op case has an input");
    let double = grad(&[inner], &vars, None, false).iter().map(|g| g.value().to_cpu()).collect();
    Results { values, plain, recorded, double }
}

/// Runs every op case on the CPU and on `device` and compares all four
/// results; returns the number of cases. Panics naming the first op,
/// result and tensor that differ.
fn ops_match_the_cpu<T: Precision>(device: Device) -> usize {
    let cases = op_cases::<T>();
    for (k, c) in cases.iter().enumerate() {
        let out_shapes: Vec<Vec<usize>> = {
            let tape = Tape::new();
            let vars: Vec<_> = c.inputs.iter().map(|x| tape.param(x)).collect();
            (c.f)(&vars).iter().map(|o| o.shape().to_vec()).collect()
        };
        let seeds: Vec<Tensor<T>> =
            out_shapes.iter().enumerate().map(|(i, s)| any(s, 9000 + 10 * k as u64 + i as u64)).collect();
        let dirs: Vec<Tensor<T>> = c
            .inputs
            .iter()
            .enumerate()
            .map(|(i, x)| any(x.shape(), 7000 + 10 * k as u64 + i as u64))
            .collect();
        let cpu = run_op(&c.f, &c.inputs, &seeds, &dirs);
        let moved = |ts: &[Tensor<T>]| -> Vec<Tensor<T>> { ts.iter().map(|t| t.to(device)).collect() };
        let there = run_op(&c.f, &moved(&c.inputs), &moved(&seeds), &moved(&dirs));
        let pairs = [
            ("forward", &there.values, &cpu.values),
            ("plain backward", &there.plain, &cpu.plain),
            ("create_graph backward", &there.recorded, &cpu.recorded),
            ("double backward", &there.double, &cpu.double),
        ];
        for (what, got, want) in pairs {
            assert_eq!(got.len(), want.len(), "{} {}: {what}: result count", T::NAME, c.name);
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let name = format!("{} {}: {what} #{i} on {device}", T::NAME, c.name);
                check_close(&name, g, w, T::TOL).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    cases.len()
}

#[test]
fn every_op_forward_and_backward_matches_the_cpu_in_f32() {
    let Some(device) = gpu() else { return };
    let n = ops_match_the_cpu::<f32>(device);
    println!("{n} op cases agree in f32");
}

#[test]
fn every_op_forward_and_backward_matches_the_cpu_in_f64() {
    let Some(device) = gpu() else { return };
    let n = ops_match_the_cpu::<f64>(device);
    println!("{n} op cases agree in f64");
}

// ---- gradcheck on the device -----------------------------------------------

/// gradcheck and gradgradcheck (f64) with every input on `device`, for a
/// representative op of each family (they are slow: one sweep per Jacobian
/// row and two evaluations per input element).
fn gradchecks_pass_on(device: Device) {
    type Check = (&'static str, Func<f64>, Vec<Tensor<f64>>);
    let on = |x: Tensor<f64>| x.to(device);
    let cases: Vec<Check> = vec![
        ("sigmoid", op(|v| vec![v[0].sigmoid()]), vec![on(any(&[2, 3], 1))]),
        ("softplus", op(|v| vec![v[0].softplus()]), vec![on(any(&[5], 2))]),
        ("log", op(|v| vec![v[0].log()]), vec![on(positive(&[4], 3))]),
        ("relu", op(|v| vec![v[0].relu()]), vec![on(away_from_zero(&[4], 4))]),
        ("div broadcast", op(|v| vec![v[0] / v[1]]), vec![on(any(&[2, 3], 5)), on(away_from_zero(&[3], 6))]),
        ("mul broadcast", op(|v| vec![v[0] * v[1]]), vec![on(any(&[2, 1], 7)), on(any(&[1, 3], 8))]),
        (
            "matmul_t",
            op(|v| vec![v[0].matmul_t(v[1], true, false)]),
            vec![on(any(&[3, 2], 9)), on(any(&[3, 4], 10))],
        ),
        (
            "batched matmul",
            op(|v| vec![v[0].matmul(v[1])]),
            vec![on(any(&[2, 2, 3], 11)), on(any(&[3, 2], 12))],
        ),
        ("sum_axis", op(|v| vec![v[0].sum_axis(1, false)]), vec![on(any(&[2, 3, 2], 13))]),
        ("max_axis", op(|v| vec![v[0].max_axis(0, true)]), vec![on(distinct(&[3, 2], 14))]),
        ("mean", op(|v| vec![v[0].mean()]), vec![on(any(&[3, 3], 15))]),
        ("row_norms", op(|v| vec![v[0].row_norms()]), vec![on(away_from_zero(&[2, 3], 16))]),
        ("transpose", op(|v| vec![v[0].transpose()]), vec![on(any(&[2, 3], 17))]),
        (
            "slice and pad",
            op(|v| vec![v[0].slice_axis(1, 1, 2).pad_axis(0, 1, 4)]),
            vec![on(any(&[2, 3], 18))],
        ),
        (
            "select and unselect",
            op(|v| vec![v[0].select(0, 1).unselect(1, 0, 2)]),
            vec![on(any(&[2, 3], 19))],
        ),
        ("clamp", op(|v| vec![v[0].clamp(-0.5, 0.5)]), vec![on(away_from_bounds(&[5], 20))]),
        (
            "two outputs",
            op(|v| vec![(v[0] * v[1]).tanh(), (v[0] - v[1]).exp().sum()]),
            vec![on(any(&[3], 21)), on(any(&[3], 22))],
        ),
    ];
    for (name, f, inputs) in &cases {
        for x in inputs {
            assert_eq!(x.device(), device, "{name}: input not on {device}");
        }
        gradcheck(|v| f(v), inputs).unwrap_or_else(|e| panic!("{name} on {device}: gradcheck: {e}"));
        gradgradcheck(|v| f(v), inputs).unwrap_or_else(|e| panic!("{name} on {device}: gradgradcheck: {e}"));
    }
}

#[test]
fn gradcheck_and_gradgradcheck_pass_with_inputs_on_the_gpu() {
    let Some(device) = gpu() else { return };
    gradchecks_pass_on(device);
}

// ---- optimisers ------------------------------------------------------------

/// Three steps of Adam (with weight decay) and of SGD with momentum on
/// the same parameters and gradients on both devices; the updated
/// parameters must agree. Gradients are kept away from zero: Adam's first
/// steps move a weight by about `lr * sign(g)`, so a gradient that is zero
/// give or take rounding would make the comparison a coin toss.
fn optimisers_match_the_cpu<T: Precision>(device: Device) {
    type Make<T> = fn() -> Box<dyn Optimizer<T>>;
    let optimisers: [(&str, Make<T>); 2] = [
        ("adam", || Box::new(Adam::new(1e-2).weight_decay(1e-2))),
        ("sgd", || Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true))),
    ];
    let shapes: [&[usize]; 3] = [&[64, 784], &[64], &[7]];
    for (name, make) in optimisers {
        let mut cpu: Vec<Tensor<T>> =
            shapes.iter().enumerate().map(|(i, s)| any(s, 800 + i as u64)).collect();
        let mut there: Vec<Tensor<T>> = cpu.iter().map(|p| p.to(device)).collect();
        let (mut opt_cpu, mut opt_there) = (make(), make());
        for step in 0..3u64 {
            let grads: Vec<Tensor<T>> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| away_from_zero(s, 900 + 10 * step + i as u64))
                .collect();
            let grads_there: Vec<Tensor<T>> = grads.iter().map(|g| g.to(device)).collect();
            opt_cpu.step(&mut cpu.iter_mut().collect::<Vec<_>>(), &grads);
            opt_there.step(&mut there.iter_mut().collect::<Vec<_>>(), &grads_there);
            for (i, (p, q)) in there.iter().zip(&cpu).enumerate() {
                assert_eq!(p.device(), device, "{name}: parameter {i} left {device}");
                let what = format!("{} {name} step {step}: parameter {i} on {device}", T::NAME);
                check_close(&what, &p.to_cpu(), q, T::TOL).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn optimiser_updates_match_the_cpu() {
    let Some(device) = gpu() else { return };
    optimisers_match_the_cpu::<f32>(device);
    optimisers_match_the_cpu::<f64>(device);
}

// ---- one training step of every model ----------------------------------------

/// Digits in the training-step batch.
const STEP_BATCH: usize = 16;

/// Tolerance for a whole training step in f32: the loss is a sum over
/// 16 x 784 squared errors and the gradients go through matrix products
/// with 784-long dot products, summed in a different order by cuBLAS than
/// by the CPU's kernels; each result carries a few f32 roundings per term,
/// which stays far below 1e-4 of the largest entry. A wrong kernel is off
/// by far more.
const STEP_TOL: Tol = Tol::rel(1e-4);

/// The batch a model of `kind` takes: real digits (5x5 for the zero-digit
/// model).
fn batch_for(kind: ModelKind) -> Tensor<f32> {
    match kind {
        ModelKind::ZeroDigit => downsampled_batch(STEP_BATCH, 5),
        _ => real_batch(STEP_BATCH),
    }
}

/// Compares a step taken on the CPU with the same step on `device`:
/// the losses, and each parameter's change (`after - before`, i.e.
/// `-lr * gradient` for plain SGD, judged relative to its own largest
/// entry) and its new value.
fn compare_steps(
    label: &str,
    device: Device,
    before: &[Tensor<f32>],
    (loss_cpu, after_cpu): (f64, &[Tensor<f32>]),
    (loss_there, after_there): (f64, &[Tensor<f32>]),
) {
    let loss = |v: f64| Tensor::from_vec(vec![v as f32], &[]);
    check_close(&format!("{label}: loss on {device}"), &loss(loss_there), &loss(loss_cpu), STEP_TOL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after_there.len(), after_cpu.len(), "{label}: parameter count");
    for (i, ((b, c), t)) in before.iter().zip(after_cpu).zip(after_there).enumerate() {
        assert_eq!(t.device(), device, "{label}: parameter {i} left {device}");
        let t = t.to_cpu();
        let change_cpu = c.sub(b);
        let change_there = t.sub(b);
        // A change is a difference of two f32 parameters, so it is known
        // only to a rounding of the parameter itself: allow a few ulps of
        // the largest parameter besides the relative bound.
        let largest = b.data().iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        let change_tol = Tol { abs: 4.0 * f64::from(f32::EPSILON) * largest, ..STEP_TOL };
        check_close(
            &format!("{label}: change of parameter {i} on {device}"),
            &change_there,
            &change_cpu,
            change_tol,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{label}: parameter {i} on {device}"), &t, c, STEP_TOL)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The settings of `kind` with every random part of a step switched off
/// (no dropout, no masking noise), so that `train_step` computes the same
/// function on both devices; the contractive model once per penalty form.
/// The VAE always draws its noise, so it is left to
/// [`explicit_draws_match_the_cpu`].
fn deterministic_specs() -> Vec<(String, ModelSpec)> {
    let mut specs = Vec::new();
    for kind in ModelKind::ALL {
        let mut spec = ModelSpec::default_for(kind);
        spec.dropout = 0.0;
        spec.noise = 0.0;
        match kind {
            ModelKind::Vae => {}
            ModelKind::Contractive => {
                for penalty in [PenaltyMode::DoubleBackward, PenaltyMode::ClosedForm] {
                    specs.push((format!("contractive ({penalty:?})"), ModelSpec { penalty, ..spec.clone() }));
                }
            }
            _ => specs.push((kind.name().to_string(), spec)),
        }
    }
    specs
}

/// One `train_step` (plain SGD, so the change of a weight is the gradient
/// times the rate) of every deterministic model on the CPU and on `device`
/// from the same initial weights.
fn train_steps_match_the_cpu(device: Device) {
    for (label, spec) in deterministic_specs() {
        let x = batch_for(spec.kind);
        let step = |device: Device| {
            let mut model = spec.build(7);
            model.params_mut().to_device(device);
            let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
            let mut opt = Sgd::new(0.1);
            let mut tape = Tape::new();
            let loss = train_step(model.as_mut(), &mut opt, &mut tape, &x, 11);
            assert!(loss.is_finite(), "{label} on {device}: loss {loss}");
            (before, loss, model.params().tensors().to_vec())
        };
        let (before, loss_cpu, after_cpu) = step(Device::Cpu);
        let (_, loss_there, after_there) = step(device);
        compare_steps(&label, device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
    }
}

#[test]
fn one_training_step_of_every_model_matches_the_cpu() {
    let Some(device) = gpu() else { return };
    train_steps_match_the_cpu(device);
}

/// A training step as `train_step` takes it, with the loss given by
/// `loss` (which receives the step's device so it can move its masks
/// there): SGD, so the change of a weight is `-lr * gradient`.
fn step_with<M: Autoencoder<f32>>(
    model: &mut M,
    x: &Tensor<f32>,
    loss: impl for<'t> Fn(&M, &Bound<'t, f32>, Var<'t, f32>, Device) -> Var<'t, f32>,
) -> f64 {
    let device = model.params().device();
    let mut tape = Tape::new();
    let (value, grads) = {
        let p = model.params().bind(&tape);
        let xv = tape.constant(&x.to(device));
        let l = loss(model, &p, xv, device);
        (l.item() as f64, grad_values(&[l], p.vars(), None))
    };
    tape.clear();
    Sgd::new(0.1).step(&mut model.params_mut().tensors_mut(), &grads);
    value
}

/// The regularised and denoising models with their default dropout (and
/// masking noise), and the VAE, with the masks and `eps` drawn once on the
/// host and copied to each device: a GPU draws its own masks by design,
/// so the same function is compared by passing them in.
fn explicit_draws_match_the_cpu(device: Device) {
    let x = real_batch::<f32>(STEP_BATCH);
    let (n, d) = (x.shape()[0], x.shape()[1]);
    for (label, config) in
        [("regularized", RegularizedConfig::default()), ("denoising", RegularizedConfig::denoising())]
    {
        let mut rng = StdRng::seed_from_u64(21);
        let template = RegularizedAutoencoder::<f32>::new(&config, 5);
        let dropout: Tensor<f32> = template.dropout().mask(&[n, template.latent_dim()], &mut rng);
        let noise = (config.noise > 0.0)
            .then(|| Tensor::<f32>::bernoulli_on(&[n, d], 1.0 - config.noise, &mut rng, Device::Cpu));
        let step = |device: Device| {
            let mut model = template.clone();
            model.params_mut().to_device(device);
            let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
            let loss = step_with(&mut model, &x, |m, p, xv, dev| {
                let noise = noise.as_ref().map(|t| t.to(dev));
                m.loss_with_masks(p, xv, noise.as_ref(), Some(&dropout.to(dev))).total
            });
            (before, loss, model.params().tensors().to_vec())
        };
        let (before, loss_cpu, after_cpu) = step(Device::Cpu);
        let (_, loss_there, after_there) = step(device);
        compare_steps(label, device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
    }
    let template = Vae::<f32>::new(&VaeConfig::default(), 5);
    let eps = Tensor::<f32>::normal(&[n, template.latent_dim()], 0.0, 1.0, 23);
    let step = |device: Device| {
        let mut model = template.clone();
        model.params_mut().to_device(device);
        let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
        let loss = step_with(&mut model, &x, |m, p, xv, dev| m.loss_with_eps(p, xv, &eps.to(dev)).total);
        (before, loss, model.params().tensors().to_vec())
    };
    let (before, loss_cpu, after_cpu) = step(Device::Cpu);
    let (_, loss_there, after_there) = step(device);
    compare_steps("vae", device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
}

#[test]
fn a_training_step_with_the_same_masks_and_noise_matches_the_cpu() {
    let Some(device) = gpu() else { return };
    explicit_draws_match_the_cpu(device);
}

// ---- errors a user meets -----------------------------------------------------

/// The message of a panic raised by `f`, or `None` if it returned.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(a panic without a message)".to_string()),
    )
}

#[test]
fn an_op_on_two_devices_panics_naming_the_op_and_both_devices() {
    let Some(device) = gpu() else { return };
    let a = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
    let b = a.to(device);
    let message = panic_message(|| {
        let _ = a.add(&b);
    })
    .expect("adding a CPU tensor to a GPU tensor must panic");
    assert!(
        message.contains("add: operands on different devices: cpu and cuda:0"),
        "unexpected message: {message}"
    );
}

#[test]
fn host_accessors_on_a_gpu_tensor_panic_saying_to_call_to_cpu() {
    let Some(device) = gpu() else { return };
    let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]).to(device);
    let message = panic_message(|| {
        let _ = x.data().len();
    })
    .expect("data() on a GPU tensor must panic");
    assert!(message.contains(".to_cpu()"), "unexpected message: {message}");
    // The copying accessors work and give the numbers back.
    assert_eq!(x.to_vec(), vec![1.0, 2.0, 3.0]);
    assert_eq!(x.to_cpu().data(), &[1.0, 2.0, 3.0]);
}

#[test]
fn kernel_launches_are_counted() {
    let Some(device) = gpu() else { return };
    let a = any::<f32>(&[4, 5], 1).to(device);
    let b = any::<f32>(&[5, 3], 2).to(device);
    let before = gradtape_kernels::cuda::launches();
    let c = a.matmul(&b).relu();
    let counted = gradtape_kernels::cuda::launches() - before;
    // One cuBLAS call and one kernel; other threads' tests may add more.
    assert!(counted >= 2, "a matmul and a relu counted as {counted} launches");
    assert_eq!(c.to_cpu().shape(), &[4, 3]);
}

/// A NaN at a maximum: the value is NaN and the gradient lets NaN through
/// at the first NaN (and only there) on both devices, overall and along an
/// axis (the GPU's mask used to write 1 there, giving a finite gradient).
#[test]
fn a_nan_at_a_maximum_gives_the_same_mask_and_gradient_on_both_devices() {
    let Some(device) = gpu() else { return };
    let x = Tensor::from_vec(vec![1.0f64, f64::NAN, 5.0, f64::NAN, 2.0, 3.0], &[2, 3]);
    let run = |device: Device| {
        let tape = Tape::new();
        let v = tape.param(&x.to(device));
        let all = v.max();
        let lanes = v.max_axis(1, false);
        let g_all = grad_values(&[all], &[v], None)[0].to_cpu();
        let g_lanes = grad_values(&[lanes.sum()], &[v], None)[0].to_cpu();
        (all.value().to_cpu(), lanes.value().to_cpu(), g_all, g_lanes)
    };
    let (cpu, there) = (run(Device::Cpu), run(device));
    let bits = |t: &Tensor<f64>| {
        t.data().iter().map(|x| if x.is_nan() { None } else { Some(*x) }).collect::<Vec<_>>()
    };
    assert!(bits(&cpu.0)[0].is_none(), "the CPU's max of a NaN is {:?}", cpu.0.data());
    for (what, c, t) in [
        ("max", &cpu.0, &there.0),
        ("max_axis", &cpu.1, &there.1),
        ("d max", &cpu.2, &there.2),
        ("d max_axis", &cpu.3, &there.3),
    ] {
        assert_eq!(bits(t), bits(c), "{what} on {device} against the CPU");
    }
    // The gradient is NaN exactly at the first NaN of each lane.
    assert_eq!(bits(&cpu.3), vec![Some(0.0), None, Some(0.0), None, Some(0.0), Some(0.0)]);
}

// ---- the harness itself --------------------------------------------------------

/// Every comparison above, with the CPU standing in for the GPU: proves on
/// any machine that the harness runs through (cases build, shapes agree,
/// nothing panics) so that a GPU run fails only for the GPU's own reasons.
#[test]
fn the_parity_harness_passes_cpu_against_cpu() {
    let n32 = ops_match_the_cpu::<f32>(Device::Cpu);
    let n64 = ops_match_the_cpu::<f64>(Device::Cpu);
    assert_eq!(n32, n64);
    assert!(n32 > 300, "only {n32} op cases");
    gradchecks_pass_on(Device::Cpu);
    optimisers_match_the_cpu::<f32>(Device::Cpu);
    optimisers_match_the_cpu::<f64>(Device::Cpu);
    train_steps_match_the_cpu(Device::Cpu);
    explicit_draws_match_the_cpu(Device::Cpu);
}
