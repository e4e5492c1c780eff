//! How two sets of gradients are compared: per parameter, the largest
//! absolute difference, and that difference relative to the largest entry
//! of the reference gradient,
//!
//! ```text
//! abs = max_i |a_i - r_i|,        rel = abs / max_i |r_i|
//! ```
//!
//! Relative to the *largest* entry, not entry by entry: a gradient entry
//! that is nearly zero by cancellation has a large relative error in any
//! floating-point computation, and that says nothing about the derivation.

//!
//! A NaN or an infinity on either side is never within any tolerance: the
//! difference records the first index where one sits
//! ([`Diff::non_finite`]), and the messages name it.

use gradtape::{Element, Tensor};
use gradtape_kernels::compare::first_non_finite;

/// The difference between a gradient and a reference for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diff {
    /// `max |a - r|` (NaN or infinite when a value is).
    pub abs: f64,
    /// `max |a - r| / max |r|` (0 when both are all zeros).
    pub rel: f64,
    /// The first index where either side holds NaN or an infinity, and the
    /// value there; `None` when both are finite throughout.
    pub non_finite: Option<(usize, f64)>,
}

impl Diff {
    /// Compares `a` with the reference `r` (same shape).
    #[track_caller]
    pub fn of<T: Element>(a: &Tensor<T>, r: &Tensor<T>) -> Diff {
        assert_eq!(a.shape(), r.shape(), "compare: shapes differ");
        let abs = a.max_abs_diff(r).as_f64();
        let scale = r.data().iter().fold(0.0f64, |m, v| m.max(v.as_f64().abs()));
        let non_finite = match (first_non_finite(a.data()), first_non_finite(r.data())) {
            (Some(i), Some(j)) if j < i => Some((j, r.data()[j].as_f64())),
            (Some(i), _) => Some((i, a.data()[i].as_f64())),
            (None, Some(j)) => Some((j, r.data()[j].as_f64())),
            (None, None) => None,
        };
        Diff { abs, rel: relative(abs, scale), non_finite }
    }

    /// Compares two numbers (a loss value with its reference).
    pub fn of_values<T: Element>(a: T, r: T) -> Diff {
        let abs = (a - r).abs().as_f64();
        let non_finite = [a, r].into_iter().find(|v| !v.as_f64().is_finite()).map(|v| (0, v.as_f64()));
        Diff { abs, rel: relative(abs, r.abs().as_f64()), non_finite }
    }

    /// The larger of two differences, field by field (NaN wins), and the
    /// first non-finite entry of either.
    pub fn max(self, other: Diff) -> Diff {
        let larger = |a: f64, b: f64| if a.is_nan() || a >= b { a } else { b };
        Diff {
            abs: larger(self.abs, other.abs),
            rel: larger(self.rel, other.rel),
            non_finite: self.non_finite.or(other.non_finite),
        }
    }

    /// Whether the relative difference is within `tol`: never when either
    /// side holds NaN or an infinity.
    pub fn within(&self, tol: f64) -> bool {
        self.non_finite.is_none() && self.rel <= tol
    }

    /// What is wrong in words: the non-finite value and its index, or the
    /// relative difference.
    pub fn describe(&self) -> String {
        match self.non_finite {
            Some((index, value)) => format!("{value} at index {index}"),
            None => format!("relative difference {:.2e}", self.rel),
        }
    }
}

fn relative(abs: f64, scale: f64) -> f64 {
    if abs == 0.0 {
        0.0
    } else if scale == 0.0 {
        f64::INFINITY
    } else {
        abs / scale
    }
}

/// One parameter's gradients compared.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDiff {
    /// The parameter's `state_dict` name (`encoder.0.weight`).
    pub parameter: String,
    /// How far its gradient is from the reference gradient.
    pub diff: Diff,
}

/// A loss and every parameter's gradient compared with a reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The loss values.
    pub loss: Diff,
    /// One entry per parameter, in the model's order.
    pub params: Vec<ParamDiff>,
}

impl Comparison {
    /// Compares `(loss, grads)` with `(ref_loss, ref_grads)`, both in the
    /// order of `names`.
    #[track_caller]
    pub fn new<T: Element>(
        names: &[String],
        (loss, grads): (T, &[Tensor<T>]),
        (ref_loss, ref_grads): (T, &[Tensor<T>]),
    ) -> Comparison {
        assert!(names.len() == grads.len() && grads.len() == ref_grads.len(), "compare: counts differ");
        let params = names
            .iter()
            .zip(grads.iter().zip(ref_grads))
            .map(|(name, (a, r))| ParamDiff { parameter: name.clone(), diff: Diff::of(a, r) })
            .collect();
        Comparison { loss: Diff::of_values(loss, ref_loss), params }
    }

    /// The parameters whose relative difference exceeds `tol`, with it.
    pub fn failures(&self, tol: f64) -> Vec<&ParamDiff> {
        self.params.iter().filter(|p| !p.diff.within(tol)).collect()
    }

    /// Whether the loss and every gradient agree to `tol` (relative).
    pub fn within(&self, tol: f64) -> bool {
        self.loss.within(tol) && self.failures(tol).is_empty()
    }

    /// A one-line account of what disagrees, naming the parameters.
    pub fn describe_failures(&self, tol: f64) -> String {
        let mut parts: Vec<String> =
            self.failures(tol).iter().map(|p| format!("{} ({})", p.parameter, p.diff.describe())).collect();
        if !self.loss.within(tol) {
            parts.insert(0, format!("the loss ({})", self.loss.describe()));
        }
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Hand derivation against autodiff in f64: relative, per parameter.
pub const F64_TOLERANCE: f64 = 1e-10;

/// Hand derivation against autodiff in f32: relative, per parameter.
pub const F32_TOLERANCE: f64 = 1e-5;
