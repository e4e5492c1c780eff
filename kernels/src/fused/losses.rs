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
//! where `L(x) > -100` (where `x > e^-100`), else 0. Each gradient is multiplied by
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
#[inline(always)]
fn clamped_log<T: Element>(x: T) -> T {
    clamp(clamp(x, log_floor(), T::infinity()).ln_k(), T::of(-100.0), T::infinity())
}

/// `L'(x)`: `1 / x` where `L(x) > -100`, that is where `x > e^-100`, else 0
/// (NaN at NaN), as the plain rules of the two clamps and the log give it
/// (the divisor is clamped as the log's input is, so that 0 never divides).
/// Read off `x` itself, without taking the log.
#[inline(always)]
fn slope<T: Element>(x: T) -> T {
    inside(x, slope_floor(), T::infinity()) / clamp(x, log_floor(), T::infinity())
}

/// `e^-100`: where the clamped log starts to move.
pub fn slope_floor<T: Element>() -> T {
    T::of((-100.0f64).exp())
}

/// The forward terms, in the plain ops' order of operations.
#[inline(always)]
fn squared_error<T: Element>(a: T, b: T) -> T {
    let d = a - b;
    d * d
}

#[inline(always)]
fn cross_entropy<T: Element>(a: T, b: T) -> T {
    let (lp, l1) = (clamped_log(a), clamped_log(T::one() - a));
    -(l1 + b * (lp - l1))
}

#[inline(always)]
fn gaussian_kl<T: Element>(a: T, b: T) -> T {
    (b + T::one() - a * a - b.exp_k()) * T::of(-0.5)
}

/// `d term / da` times `c`, for cross-entropy (the other two are one line
/// each, in [`Tensor::loss_sum_grad`]).
#[inline(always)]
fn cross_entropy_grad_a<T: Element>(c: T, a: T, b: T) -> T {
    let one = T::one();
    ((one - b) * slope(one - a) - b * slope(a)) * c
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
        // One loop per term (the match outside it). Squared error is summed
        // as it is made; the terms with logs or an exponential are too large
        // for the compiler to inline into the sum's sixteen unrolled lanes, so
        // they are written out in one vectorised pass and summed in another
        // (the same numbers: the sum is the same lanes over the same terms).
        let sum = match term {
            LossTerm::SquaredError => self.chunked_sum2(other, squared_error),
            LossTerm::BinaryCrossEntropy => self.zip_with(other, "loss_sum", cross_entropy).sum_all().item(),
            LossTerm::GaussianKl => self.zip_with(other, "loss_sum", gaussian_kl).sum_all().item(),
        };
        Tensor::scalar(sum * scale)
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
        let (one, two, half) = (T::one(), T::of(2.0), T::of(0.5));
        // One loop per term and side (the match outside it).
        let da = want[0].then(|| match term {
            LossTerm::SquaredError => a.zip_with(b, "loss_sum_grad", move |a, b| (a - b) * (c * two)),
            LossTerm::BinaryCrossEntropy => {
                a.zip_with(b, "loss_sum_grad", move |a, b| cross_entropy_grad_a(c, a, b))
            }
            LossTerm::GaussianKl => a.map(move |a| a * c),
        });
        let db = want[1].then(|| match term {
            LossTerm::SquaredError => a.zip_with(b, "loss_sum_grad", move |a, b| -((a - b) * (c * two))),
            LossTerm::BinaryCrossEntropy => {
                a.zip_with(b, "loss_sum_grad", move |a, _| (clamped_log(one - a) - clamped_log(a)) * c)
            }
            LossTerm::GaussianKl => b.map(move |b| (b.exp_k() - one) * half * c),
        });
        [da, db]
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
