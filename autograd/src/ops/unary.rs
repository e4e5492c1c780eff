//! Elementwise functions of one variable: exp, log, powers, abs and the
//! activations.
//!
//! Each rule's derivative is written in the doc comment above it. Where a
//! rule can use the op's own output (exp, sqrt, sigmoid, tanh) it does: that
//! is cheaper than recomputing, and because the output is itself a node on
//! the tape, the rule stays differentiable for higher derivatives.
//!
//! Most rules are given twice, side by side, through `Algebra::fused`: as a
//! formula on numbers, which a plain backward pass evaluates in one sweep
//! over memory, and as a composition of ops, which a recorded backward pass
//! records so it can be differentiated again. Both say the same thing.
//!
//! Non-smooth points: `relu` and `abs` use derivative 0 at 0 (as PyTorch
//! does), `clamp` uses 0 at the bounds.
//!
//! NaN: every op and every rule gives NaN where IEEE arithmetic would. The
//! masks (`step`, `sign`, `inside`) are NaN at NaN, and a rule multiplies
//! the incoming gradient by its mask in both forms (`g * step(x)`, not
//! `x > 0 ? g : 0`), so a NaN in either the input or the incoming gradient
//! comes out as NaN, and the two forms are the same formula.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::elementwise::{inside, sigmoid, sign, step};
use gradtape_kernels::{Element, Formula};

impl<'t, T: Element> Var<'t, T> {
    /// `e^x`.
    #[track_caller]
    pub fn exp(self) -> Var<'t, T> {
        self.record(self.value().exp(), Op::Exp(self.id))
    }

    /// Natural logarithm.
    #[track_caller]
    pub fn log(self) -> Var<'t, T> {
        self.record(self.value().log(), Op::Log(self.id))
    }

    /// `x^p` for a constant exponent `p`.
    #[track_caller]
    pub fn powf(self, p: T) -> Var<'t, T> {
        self.record(self.value().powf(p), Op::Pow(self.id, p))
    }

    /// Square root.
    #[track_caller]
    pub fn sqrt(self) -> Var<'t, T> {
        self.record(self.value().sqrt(), Op::Sqrt(self.id))
    }

    /// `x^2`.
    #[track_caller]
    pub fn square(self) -> Var<'t, T> {
        self.record(self.value().square(), Op::Square(self.id))
    }

    /// `|x|`.
    #[track_caller]
    pub fn abs(self) -> Var<'t, T> {
        self.record(self.value().abs(), Op::Abs(self.id))
    }

    /// The logistic sigmoid `1 / (1 + e^-x)`.
    #[track_caller]
    pub fn sigmoid(self) -> Var<'t, T> {
        self.record(self.value().sigmoid(), Op::Sigmoid(self.id))
    }

    /// Hyperbolic tangent.
    #[track_caller]
    pub fn tanh(self) -> Var<'t, T> {
        self.record(self.value().tanh(), Op::Tanh(self.id))
    }

    /// `max(x, 0)`.
    #[track_caller]
    pub fn relu(self) -> Var<'t, T> {
        self.record(self.value().relu(), Op::Relu(self.id))
    }

    /// `ln(1 + e^x)`, a smooth ReLU.
    #[track_caller]
    pub fn softplus(self) -> Var<'t, T> {
        self.record(self.value().softplus(), Op::Softplus(self.id))
    }

    /// Clamps into `[lo, hi]`.
    #[track_caller]
    pub fn clamp(self, lo: T, hi: T) -> Var<'t, T> {
        assert!(lo <= hi, "clamp: lower bound {lo} is above upper bound {hi}");
        self.record(self.value().clamp(lo, hi), Op::Clamp(self.id, lo, hi))
    }
}

// ---- backward rules -------------------------------------------------------

/// d/dx e^x = e^x (the output).
pub(crate) fn exp_grad<T: Element, A: Algebra<T>>(g: &A, y: &A) -> A {
    g.mul(y)
}

/// d/dx ln x = 1 / x.
pub(crate) fn log_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.div(x)
}

/// d/dx x^p = p x^(p-1).
pub(crate) fn pow_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, p: T) -> A {
    let q = p - T::one();
    // The same order of operations in both forms, g * (x^q * p), so the two
    // sweeps give the same bits.
    g.fused(x, Formula::PowGrad(p), |g, x| g * (x.powf(q) * p), |g, x| g.mul(&x.powf(q).scale(p)))
}

/// d/dx sqrt(x) = 1 / (2 sqrt(x)) = 0.5 / y.
pub(crate) fn sqrt_grad<T: Element, A: Algebra<T>>(g: &A, y: &A) -> A {
    let half = T::of(0.5);
    g.fused(y, Formula::SqrtGrad, |g, y| g / y * half, |g, y| g.div(y).scale(half))
}

/// d/dx x^2 = 2x.
pub(crate) fn square_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    let two = T::of(2.0);
    g.fused(x, Formula::SquareGrad, |g, x| g * x * two, |g, x| g.mul(x).scale(two))
}

/// d/dx |x| = sign(x) (0 at 0, NaN at NaN).
pub(crate) fn abs_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.fused(x, Formula::AbsGrad, |g, x| g * sign(x), |g, x| g.mul(&x.sign()))
}

/// d/dx sigmoid(x) = s (1 - s), with s the output.
pub(crate) fn sigmoid_grad<T: Element, A: Algebra<T>>(g: &A, s: &A) -> A {
    let one = T::one();
    g.fused(
        s,
        Formula::SigmoidGrad,
        |g, s| g * (s * (one - s)),
        |g, s| g.mul(&s.mul(&s.neg().add_scalar(one))),
    )
}

/// d/dx tanh(x) = 1 - t^2, with t the output.
pub(crate) fn tanh_grad<T: Element, A: Algebra<T>>(g: &A, t: &A) -> A {
    let one = T::one();
    g.fused(t, Formula::TanhGrad, |g, t| g * (one - t * t), |g, t| g.mul(&t.mul(t).neg().add_scalar(one)))
}

/// d/dx relu(x) = 1 if x > 0 else 0 (0 at the kink, NaN at NaN).
pub(crate) fn relu_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.fused(x, Formula::ReluGrad, |g, x| g * step(x), |g, x| g.mul(&x.step()))
}

/// d/dx ln(1 + e^x) = sigmoid(x).
pub(crate) fn softplus_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.fused(x, Formula::SoftplusGrad, |g, x| g * sigmoid(x), |g, x| g.mul(&x.sigmoid()))
}

/// d/dx clamp(x, lo, hi) = 1 strictly inside (lo, hi), else 0 (NaN at NaN).
pub(crate) fn clamp_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, lo: T, hi: T) -> A {
    g.fused(x, Formula::ClampGrad(lo, hi), move |g, x| g * inside(x, lo, hi), |g, x| g.mul(&x.inside(lo, hi)))
}

/// The backward formula `f(g, x)` named by `formula`: the rule of the op
/// it belongs to (`sigmoid_grad` is sigmoid's, `sum_squares_grad` is
/// `sum_squares`'s). A recorded formula node's rule for `g` is this
/// (`fused::formula_grad`): the formula is linear in `g`.
pub(crate) fn formula<T: Element, A: Algebra<T>>(g: &A, x: &A, formula: Formula<T>) -> A {
    match formula {
        Formula::PowGrad(p) => pow_grad(g, x, p),
        Formula::SqrtGrad => sqrt_grad(g, x),
        Formula::SquareGrad => square_grad(g, x),
        Formula::AbsGrad => abs_grad(g, x),
        Formula::SigmoidGrad => sigmoid_grad(g, x),
        Formula::TanhGrad => tanh_grad(g, x),
        Formula::ReluGrad => relu_grad(g, x),
        Formula::SoftplusGrad => softplus_grad(g, x),
        Formula::ClampGrad(lo, hi) => clamp_grad(g, x, lo, hi),
        Formula::SumSquaresGrad => crate::ops::reduce::sum_squares_grad(g, x),
    }
}
