//! activations.cu against the backward rules' pointwise formulas.
//!
//! The CPU side is `Tensor::zip_with` with each rule's formula as written in
//! autograd/src/ops/unary.rs and reduce.rs (`Algebra::fused`'s pointwise
//! closure), which is how the plain backward pass evaluates it.

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{launch, Kernels, Sim, KERNEL_NAMES};
use gradtape_kernels::elementwise::{inside, sigmoid, sign, step};
use gradtape_kernels::{Formula, FormulaKind, Tensor};

type Grad<T> = unsafe fn(i64, *const T, *const T, *mut T);

/// Kernels with scalars, with the scalars fixed: p = 2.5 for pow_grad,
/// (lo, hi) = (-0.5, 2.5) for clamp_grad.
unsafe fn pow_grad<T: Float>(n: i64, g: *const T, x: *const T, out: *mut T)
where
    Sim: Kernels<T>,
{
    unsafe { <Sim as Kernels<T>>::pow_grad(n, g, x, T::of(2.5), out) }
}
unsafe fn clamp_grad<T: Float>(n: i64, g: *const T, x: *const T, out: *mut T)
where
    Sim: Kernels<T>,
{
    unsafe { <Sim as Kernels<T>>::clamp_grad(n, g, x, T::of(-0.5), T::of(2.5), out) }
}

/// Which saved tensor a rule reads: the input, the op's output, or a
/// positive input (pow and sqrt).
#[derive(Clone, Copy)]
enum Saved {
    Any,
    Positive,
    /// The output of sigmoid or tanh: in (-1, 1).
    Unit,
}

#[allow(clippy::type_complexity)]
fn rules<T: Float>() -> Vec<(&'static str, Grad<T>, fn(T, T) -> T, Saved, bool)>
where
    Sim: Kernels<T>,
{
    // (name, kernel, formula (g, saved), saved tensor, uses the CPU's own
    // sigmoid (fastmath in f32: a tolerance))
    vec![
        (
            "pow_grad",
            pow_grad::<T>,
            |g, x| g * x.powf(T::of(2.5) - T::one()) * T::of(2.5),
            Saved::Positive,
            false,
        ),
        ("sqrt_grad", <Sim as Kernels<T>>::sqrt_grad, |g, y| g / y * T::of(0.5), Saved::Positive, false),
        ("square_grad", <Sim as Kernels<T>>::square_grad, |g, x| g * x * T::of(2.0), Saved::Any, false),
        ("abs_grad", <Sim as Kernels<T>>::abs_grad, |g, x| g * sign(x), Saved::Any, false),
        (
            "sigmoid_grad",
            <Sim as Kernels<T>>::sigmoid_grad,
            |g, s| g * (s * (T::one() - s)),
            Saved::Unit,
            false,
        ),
        ("tanh_grad", <Sim as Kernels<T>>::tanh_grad, |g, t| g * (T::one() - t * t), Saved::Unit, false),
        ("relu_grad", <Sim as Kernels<T>>::relu_grad, |g, x| g * step(x), Saved::Any, false),
        ("softplus_grad", <Sim as Kernels<T>>::softplus_grad, |g, x| g * sigmoid(x), Saved::Any, true),
        ("clamp_grad", clamp_grad::<T>, |g, x| g * inside(x, T::of(-0.5), T::of(2.5)), Saved::Any, false),
        (
            "sum_squares_grad",
            <Sim as Kernels<T>>::sum_squares_grad,
            |g, x| T::of(2.0) * x * g,
            Saved::Any,
            false,
        ),
    ]
}

fn rules_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for (name, kernel, formula, saved, cpu_sigmoid) in rules::<T>() {
        let (rtol, atol) = if cpu_sigmoid { (T::MATH_RTOL, underflow::<T>()) } else { (0.0, 0.0) };
        for &n in SIZES {
            let g = values::<T>(n, 1.5, 5);
            let x: Vec<T> = match saved {
                Saved::Any => values(n, 3.0, 6),
                Saved::Positive => positive(n, 6),
                Saved::Unit => values::<T>(n, 3.0, 6).into_iter().map(|v| v.tanh()).collect(),
            };
            let want =
                Tensor::from_vec(g.clone(), &[n]).zip_with(&Tensor::from_vec(x.clone(), &[n]), name, formula);
            for (l, got) in
                each_launch(n, T::nan(), |out| unsafe { kernel(n as i64, g.as_ptr(), x.as_ptr(), out) })
            {
                check(&format!("{name}_{} n={n} launch {l:?}", T::NAME), &got, want.data(), rtol, atol);
            }
        }
    }
}

/// Every backward formula the engine can name has a CUDA kernel (bound in
/// `cuda_sim.rs`, which links against the compiled `.cu` files) and a case
/// in [`rules`] above, so the kernel is run against the CPU's formula. A
/// new `Formula` variant fails here until it has both.
#[test]
fn every_backward_formula_has_a_kernel_and_a_simulation_case() {
    let tested: Vec<&str> = rules::<f64>().iter().map(|rule| rule.0).collect();
    for kind in FormulaKind::all() {
        let name = kind.name();
        assert!(
            KERNEL_NAMES.contains(&name),
            "formula {kind:?}: no kernel {name}_f32/_f64 bound in kernels/src/cuda_sim.rs \
             (write it in kernels/cuda/activations.cu and add it to the kernels! table)"
        );
        assert!(
            tested.contains(&name),
            "formula {kind:?}: no case in rules() of kernels/tests/cuda_sim/grads.rs"
        );
    }
}

#[test]
fn backward_formula_kernels_match_the_rules_f32() {
    rules_match_the_cpu::<f32>();
}

#[test]
fn backward_formula_kernels_match_the_rules_f64() {
    rules_match_the_cpu::<f64>();
}

/// relu_grad, abs_grad and clamp_grad give NaN where x is NaN (the
/// gradient times a mask that is NaN there, as on the CPU).
#[test]
fn nan_in_x_gives_nan_gradients() {
    let (g, x) = ([1.0f64, 1.0], [f64::NAN, 1.0]);
    let mut out = [0.0f64; 2];
    for (name, k) in [
        ("relu_grad", <Sim as Kernels<f64>>::relu_grad as Grad<f64>),
        ("abs_grad", <Sim as Kernels<f64>>::abs_grad),
    ] {
        launch(1, 2, || unsafe { k(2, g.as_ptr(), x.as_ptr(), out.as_mut_ptr()) });
        assert!(out[0].is_nan() && out[1] == 1.0, "{name}: {out:?}");
    }
    launch(1, 2, || unsafe {
        <Sim as Kernels<f64>>::clamp_grad(2, g.as_ptr(), x.as_ptr(), 0.0, 2.0, out.as_mut_ptr())
    });
    assert!(out[0].is_nan() && out[1] == 1.0, "clamp_grad: {out:?}");
}

type GradDx<T> = unsafe fn(i64, *const T, *const T, *const T, *mut T);

/// pow_grad_dx with its exponent fixed at 2.5, as `pow_grad` above.
unsafe fn pow_grad_dx<T: Float>(n: i64, big_g: *const T, g: *const T, x: *const T, out: *mut T)
where
    Sim: Kernels<T>,
{
    unsafe { <Sim as Kernels<T>>::pow_grad_dx(n, big_g, g, x, T::of(2.5), out) }
}

/// The second derivatives (`<name>_dx`, a recorded formula's rule for `x`):
/// (formula, kernel, saved tensor, uses the CPU's own sigmoid).
fn second_derivatives<T: Float>() -> Vec<(Formula<T>, GradDx<T>, Saved, bool)>
where
    Sim: Kernels<T>,
{
    vec![
        (Formula::PowGrad(T::of(2.5)), pow_grad_dx::<T>, Saved::Positive, false),
        (Formula::SqrtGrad, <Sim as Kernels<T>>::sqrt_grad_dx, Saved::Positive, false),
        (Formula::SquareGrad, <Sim as Kernels<T>>::square_grad_dx, Saved::Any, false),
        (Formula::SigmoidGrad, <Sim as Kernels<T>>::sigmoid_grad_dx, Saved::Unit, false),
        (Formula::TanhGrad, <Sim as Kernels<T>>::tanh_grad_dx, Saved::Unit, false),
        (Formula::SoftplusGrad, <Sim as Kernels<T>>::softplus_grad_dx, Saved::Any, true),
        (Formula::SumSquaresGrad, <Sim as Kernels<T>>::sum_squares_grad_dx, Saved::Any, false),
    ]
}

fn second_derivatives_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for (formula, kernel, saved, cpu_sigmoid) in second_derivatives::<T>() {
        let name = FormulaKind::from(&formula).dx_name().expect("a formula with a derivative in x");
        // softplus_grad_dx takes s (1 - s) of the sigmoid: where s is near
        // 1, 1 - s magnifies the two sigmoids' difference (a hundredfold
        // at most over these inputs, |x| < 3).
        let (rtol, atol) = if cpu_sigmoid { (T::MATH_RTOL * 100.0, underflow::<T>()) } else { (0.0, 0.0) };
        for &n in SIZES {
            let (big_g, g) = (values::<T>(n, 1.5, 4), values::<T>(n, 1.5, 5));
            let x: Vec<T> = match saved {
                Saved::Any => values(n, 3.0, 6),
                Saved::Positive => positive(n, 6),
                Saved::Unit => values::<T>(n, 3.0, 6).into_iter().map(|v| v.tanh()).collect(),
            };
            let t = |v: &Vec<T>| Tensor::from_vec(v.clone(), &[n]);
            let want = t(&big_g).formula_dx(&t(&g), &t(&x), formula).expect("a derivative");
            for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                kernel(n as i64, big_g.as_ptr(), g.as_ptr(), x.as_ptr(), out)
            }) {
                check(&format!("{name}_{} n={n} launch {l:?}", T::NAME), &got, want.data(), rtol, atol);
            }
        }
    }
}

/// Every formula whose derivative in `x` is not zero almost everywhere has
/// its `<name>_dx` kernel bound and a case in [`second_derivatives`].
#[test]
fn every_second_derivative_has_a_kernel_and_a_simulation_case() {
    let tested: Vec<&str> =
        second_derivatives::<f64>().iter().filter_map(|c| FormulaKind::from(&c.0).dx_name()).collect();
    for kind in FormulaKind::all() {
        let Some(name) = kind.dx_name() else { continue };
        assert!(
            KERNEL_NAMES.contains(&name),
            "formula {kind:?}: no kernel {name}_f32/_f64 bound in cuda_sim.rs"
        );
        assert!(tested.contains(&name), "formula {kind:?}: no case in second_derivatives()");
    }
}

#[test]
fn second_derivative_kernels_match_the_cpu_f32() {
    second_derivatives_match_the_cpu::<f32>();
}

#[test]
fn second_derivative_kernels_match_the_cpu_f64() {
    second_derivatives_match_the_cpu::<f64>();
}
