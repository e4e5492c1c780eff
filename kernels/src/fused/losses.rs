//! Fused losses: a loss's per-element terms and their sum in one pass.
//!
//! Every loss the models use is a sum over the batch of a term of two
//! same-shaped tensors, times a number (`1/n` for a mean, 1 for a sum). In
//! plain ops, mean squared error is
//!
//! ```text
//! (p - t).sum_squares() * (1/n)      three nodes: sub, sum_squares, mul_scalar
//! ```
//!
//! and binary cross-entropy and the Gaussian KL term take eight or more
//! nodes, each a pass over the batch (a kernel launch on a GPU).
//! [`Tensor::loss_sum`] computes `scale * sum_i term(a_i, b_i)` in one
//! pass (one reduction on a GPU), and [`Tensor::loss_sum_grad`] both
//! inputs' gradients in one more:
//!
//! ```text
//! term                      forward term(a, b)                  d/da                      d/db
//! SquaredError              (a - b)^2                           2 (a - b)                 -2 (a - b)
//! BinaryCrossEntropy        -(L(1 - a) + b (L(a) - L(1 - a)))   (1 - b) L'(1 - a) - b L'(a)   L(1 - a) - L(a)
//! GaussianKl                -(1 + b - a^2 - e^b) / 2            a                         (e^b - 1) / 2
//! ```
//!
//! with `L(x) = max(ln max(x, e^-101), -100)`, the clamped log of
//! `gradtape_models::losses::bce` (PyTorch's `BCELoss`), and `L'(x) = 1/x`
//! where `L(x) > -100`, else 0. Each gradient is multiplied by
//! `g * scale`, `g` the gradient of the loss (one number).
//!
//! The forward terms are the plain ops' formulas in the same order, summed
//! in the same chunks and lanes as [`Tensor::sum_all`], then scaled, so on
//! the CPU the loss has the same bits as the plain ops' `sum() * scale`
//! (`div_scalar(n)`, which multiplies by `1/n`, included). The gradients
//! are the same formulas in another order: within 1e-14 of the plain ops'
//! in f64.

use crate::element::Element;
use crate::elementwise::{clamp, inside};
use crate::tensor::Tensor;

/// The per-element term of a fused loss (see the module doc for each
/// formula and its derivatives). `a` is the prediction (or the mean), `b`
/// the target (or the log-variance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossTerm {
    /// `(a - b)^2`: mean squared error's.
    SquaredError,
    /// `-(L(1 - a) + b (L(a) - L(1 - a)))`: binary cross-entropy's, `a` a
    /// probability, with PyTorch's clamp of each log at -100.
    BinaryCrossEntropy,
    /// `-(1 + b - a^2 - e^b) / 2`: the KL divergence of `N(a, e^b)` from
    /// `N(0, 1)`, `a` the mean and `b` the log-variance.
    GaussianKl,
}

impl LossTerm {
    /// The loss's short name, as messages and the tape give it.
    pub fn name(self) -> &'static str {
        match self {
            LossTerm::SquaredError => "squared_error",
            LossTerm::BinaryCrossEntropy => "bce",
            LossTerm::GaussianKl => "gaussian_kl",
        }
    }

    /// The number the CUDA kernels take for it (`kernels/cuda/losses.cu`).
    pub fn code(self) -> i32 {
        match self {
            LossTerm::SquaredError => 0,
            LossTerm::BinaryCrossEntropy => 1,
            LossTerm::GaussianKl => 2,
        }
    }

    /// Every term.
    pub const ALL: [LossTerm; 3] =
        [LossTerm::SquaredError, LossTerm::BinaryCrossEntropy, LossTerm::GaussianKl];
}

/// `e^-101`, below which the cross-entropy's log clamps its input (its log
/// is under -100, so the clamped log is -100 there anyway; see
/// `gradtape_models::losses::bce`).
pub fn log_floor<T: Element>() -> T {
    T::of((-101.0f64).exp())
}

/// `L(x) = max(ln max(x, e^-101), -100)`.
#[inline]
fn clamped_log<T: Element>(x: T) -> T {
    clamp(clamp(x, log_floor(), T::infinity()).ln_k(), T::of(-100.0), T::infinity())
}

/// `L'(x)`, given `lx = L(x)`: `1 / max(x, e^-101)` where `lx > -100`, else 0
/// (NaN at NaN), as the plain rules of the two clamps and the log give it.
#[inline]
fn clamped_log_grad<T: Element>(x: T, lx: T) -> T {
    inside(lx, T::of(-100.0), T::infinity()) / clamp(x, log_floor(), T::infinity())
}

/// The forward term, in the plain ops' order of operations.
#[inline]
pub(crate) fn term<T: Element>(term: LossTerm, a: T, b: T) -> T {
    let one = T::one();
    match term {
        LossTerm::SquaredError => {
            let d = a - b;
            d * d
        }
        LossTerm::BinaryCrossEntropy => {
            let (lp, l1) = (clamped_log(a), clamped_log(one - a));
            -(l1 + b * (lp - l1))
        }
        LossTerm::GaussianKl => (b + one - a * a - b.exp_k()) * T::of(-0.5),
    }
}

/// `d term / da` times `c`.
#[inline]
fn grad_a<T: Element>(term: LossTerm, c: T, a: T, b: T) -> T {
    let one = T::one();
    match term {
        LossTerm::SquaredError => (a - b) * (c * T::of(2.0)),
        LossTerm::BinaryCrossEntropy => {
            let one_minus_a = one - a;
            let d1 = clamped_log_grad(one_minus_a, clamped_log(one_minus_a));
            let dp = clamped_log_grad(a, clamped_log(a));
            ((one - b) * d1 - b * dp) * c
        }
        LossTerm::GaussianKl => a * c,
    }
}

/// `d term / db` times `c`.
#[inline]
fn grad_b<T: Element>(term: LossTerm, c: T, a: T, b: T) -> T {
    let one = T::one();
    match term {
        LossTerm::SquaredError => -((a - b) * (c * T::of(2.0))),
        LossTerm::BinaryCrossEntropy => (clamped_log(one - a) - clamped_log(a)) * c,
        LossTerm::GaussianKl => (b.exp_k() - one) * T::of(0.5) * c,
    }
}

impl<T: Element> Tensor<T> {
    /// `scale * sum_i term(self_i, other_i)` as a 0-d tensor, in one pass
    /// (see the module doc). The shapes must be equal: a loss never
    /// broadcasts.
    #[track_caller]
    pub fn loss_sum(&self, other: &Tensor<T>, term: LossTerm, scale: T) -> Tensor<T> {
        assert_same_shape("loss_sum", term, self, other);
        #[cfg(feature = "cuda")]
        if self.same_device(other, "loss_sum").is_cuda() {
            return crate::cuda::ops::loss_sum(self, other, term, scale);
        }
        let t = term;
        Tensor::scalar(self.chunked_sum2(other, move |a, b| self::term(t, a, b)) * scale)
    }

    /// The backward pass of [`Tensor::loss_sum`]: from the gradient `self`
    /// of the loss (one number), the gradients of `a` and `b` that `want`
    /// asks for, each in one pass.
    #[track_caller]
    pub fn loss_sum_grad(
        &self,
        a: &Tensor<T>,
        b: &Tensor<T>,
        term: LossTerm,
        scale: T,
        want: [bool; 2],
    ) -> [Option<Tensor<T>>; 2] {
        assert_same_shape("loss_sum_grad", term, a, b);
        assert!(
            self.len() == 1,
            "loss_sum_grad ({}): the gradient of the sum must be one number, got shape {:?}",
            term.name(),
            self.shape()
        );
        #[cfg(feature = "cuda")]
        if self.same_device(a, "loss_sum_grad").is_cuda() {
            a.same_device(b, "loss_sum_grad");
            return crate::cuda::ops::loss_sum_grad(self, a, b, term, scale, want);
        }
        let c = self.item() * scale;
        let t = term;
        [
            want[0].then(|| a.zip_with(b, "loss_sum_grad", move |a, b| grad_a(t, c, a, b))),
            want[1].then(|| a.zip_with(b, "loss_sum_grad", move |a, b| grad_b(t, c, a, b))),
        ]
    }
}

/// Panics, naming the op, the loss and both shapes, unless they are equal.
#[track_caller]
fn assert_same_shape<T: Element>(op: &str, term: LossTerm, a: &Tensor<T>, b: &Tensor<T>) {
    assert!(
        a.shape() == b.shape(),
        "{op} ({}): the two operands must have the same shape, got {:?} and {:?} (losses do not broadcast)",
        term.name(),
        a.shape(),
        b.shape()
    );
}
