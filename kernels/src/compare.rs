//! Comparing tensors so that NaN and infinity can never pass.
//!
//! A comparison written as `max |a - b| <= tol` with `f64::max` passes a
//! tensor full of NaN: `max` drops NaN, so the largest difference comes out
//! as 0. Every comparison in the project goes through this module (or
//! through [`Tensor::max_abs_diff`], which propagates NaN), and here a NaN
//! or an infinity on either side is a failure that names the tensor and the
//! first index where it sits.
//!
//! The `approx` crate was considered and not used: its per-element
//! relative test scales each entry by itself, while a gradient is judged
//! relative to its largest entry (an entry that is nearly zero by
//! cancellation has a large relative error in any floating-point
//! computation), and its assertion messages print the whole tensor instead
//! of naming the index that failed.

use crate::element::Element;
use crate::tensor::Tensor;
use std::fmt;

/// How far apart two tensors may be: `max |a - e| <= abs + rel * max |e|`,
/// with `e` the expected tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// The absolute part of the bound, in the tensors' own units.
    pub abs: f64,
    /// The relative part: a fraction of the expected tensor's largest magnitude.
    pub rel: f64,
}

impl Tol {
    /// Equal values (0 and -0 count as equal).
    pub const EXACT: Tol = Tol { abs: 0.0, rel: 0.0 };

    /// An absolute bound on the largest difference.
    pub const fn abs(abs: f64) -> Tol {
        Tol { abs, rel: 0.0 }
    }

    /// A bound relative to the largest entry of the expected tensor.
    pub const fn rel(rel: f64) -> Tol {
        Tol { abs: 0.0, rel }
    }
}

/// Why two tensors are not close.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The shapes differ.
    Shape {
        /// What was compared, as the caller named it.
        name: String,
        /// The shape of the tensor under test (its length, for slices).
        actual: Vec<usize>,
        /// The shape of the reference tensor (its length, for slices).
        expected: Vec<usize>,
    },
    /// One side holds NaN or an infinity: `index` is the first such
    /// element (of either side), `value` what it holds, `side` which
    /// tensor (`"actual"` or `"expected"`).
    NonFinite {
        /// What was compared, as the caller named it.
        name: String,
        /// The flat index of the first non-finite element.
        index: usize,
        /// The element there: NaN, infinity or minus infinity.
        value: f64,
        /// `"actual"` or `"expected"`: the tensor it is in.
        side: &'static str,
    },
    /// Finite, but too far apart.
    TooFar {
        /// What was compared, as the caller named it.
        name: String,
        /// The flat index of the largest difference (the first, if several tie).
        index: usize,
        /// The largest absolute difference, `max |actual - expected|`.
        max_abs_diff: f64,
        /// The largest magnitude in the expected tensor, which `tol.rel` multiplies.
        scale: f64,
        /// The tolerance that was not met.
        tol: Tol,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Shape { name, actual, expected } => {
                write!(f, "{name}: shape {actual:?}, expected {expected:?}")
            }
            Mismatch::NonFinite { name, index, value, side } => {
                write!(f, "{name}: {value} at index {index} ({side} side); a non-finite value never passes")
            }
            Mismatch::TooFar { name, index, max_abs_diff, scale, tol } => write!(
                f,
                "{name}: max |actual - expected| = {max_abs_diff:.3e} (at index {index}) exceeds \
                 {:.1e} + {:.1e} * {scale:.3e}",
                tol.abs, tol.rel
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

/// The first index whose element is NaN or infinite.
pub fn first_non_finite<T: Element>(data: &[T]) -> Option<usize> {
    data.iter().position(|x| !x.as_f64().is_finite())
}

/// Checks `actual` against `expected` within `tol`; on success returns the
/// largest absolute difference. `name` says what is compared, for the
/// message. NaN or infinity anywhere, on either side, is a failure.
pub fn check_close<T: Element>(
    name: &str,
    actual: &Tensor<T>,
    expected: &Tensor<T>,
    tol: Tol,
) -> Result<f64, Mismatch> {
    if actual.shape() != expected.shape() {
        return Err(Mismatch::Shape {
            name: name.to_string(),
            actual: actual.shape().to_vec(),
            expected: expected.shape().to_vec(),
        });
    }
    check_close_slices(name, actual.data(), expected.data(), tol)
}

/// [`check_close`] on two slices of the same length.
pub fn check_close_slices<T: Element>(
    name: &str,
    actual: &[T],
    expected: &[T],
    tol: Tol,
) -> Result<f64, Mismatch> {
    if actual.len() != expected.len() {
        return Err(Mismatch::Shape {
            name: name.to_string(),
            actual: vec![actual.len()],
            expected: vec![expected.len()],
        });
    }
    let a_bad = first_non_finite(actual);
    let e_bad = first_non_finite(expected);
    let first = match (a_bad, e_bad) {
        (Some(i), Some(j)) if j < i => Some((j, expected[j], "expected")),
        (Some(i), _) => Some((i, actual[i], "actual")),
        (None, Some(j)) => Some((j, expected[j], "expected")),
        (None, None) => None,
    };
    if let Some((index, value, side)) = first {
        return Err(Mismatch::NonFinite { name: name.to_string(), index, value: value.as_f64(), side });
    }
    let (mut worst, mut at, mut scale) = (0.0f64, 0, 0.0f64);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let d = (a.as_f64() - e.as_f64()).abs();
        if d > worst {
            (worst, at) = (d, i);
        }
        scale = scale.max(e.as_f64().abs());
    }
    // Written so that a NaN bound (a NaN tolerance) fails too.
    if worst <= tol.abs + tol.rel * scale {
        Ok(worst)
    } else {
        Err(Mismatch::TooFar { name: name.to_string(), index: at, max_abs_diff: worst, scale, tol })
    }
}

/// [`check_close`], panicking (at the caller) with its message.
#[track_caller]
pub fn assert_close<T: Element>(name: &str, actual: &Tensor<T>, expected: &Tensor<T>, tol: Tol) -> f64 {
    check_close(name, actual, expected, tol).unwrap_or_else(|m| panic!("{m}"))
}

/// [`check_close_slices`], panicking (at the caller) with its message.
#[track_caller]
pub fn assert_close_slices<T: Element>(name: &str, actual: &[T], expected: &[T], tol: Tol) -> f64 {
    check_close_slices(name, actual, expected, tol).unwrap_or_else(|m| panic!("{m}"))
}

/// The pairs of two slices, after asserting that they have the same,
/// non-zero length: a loop over pairs that checks each one proves nothing
/// when there are no pairs, or when `zip` silently stops at the shorter.
#[track_caller]
pub fn pairs<'a, A, B>(
    what: &str,
    a: &'a [A],
    b: &'a [B],
) -> std::iter::Zip<std::slice::Iter<'a, A>, std::slice::Iter<'a, B>> {
    assert!(!a.is_empty(), "{what}: nothing to compare (no elements)");
    assert_eq!(a.len(), b.len(), "{what}: {} against {} elements", a.len(), b.len());
    a.iter().zip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), &[v.len()])
    }

    #[test]
    fn nan_or_infinity_on_either_side_fails_and_is_named_with_its_index() {
        let good = t(&[1.0, 2.0, 3.0]);
        let err = check_close("w.grad", &t(&[1.0, f64::NAN, 3.0]), &good, Tol::abs(1e9)).unwrap_err();
        match &err {
            Mismatch::NonFinite { name, index, value, side } => {
                assert_eq!((name.as_str(), *index, *side), ("w.grad", 1, "actual"));
                assert!(value.is_nan());
            }
            other => panic!("expected NonFinite, got {other}"),
        }
        assert!(err.to_string().starts_with("w.grad: NaN at index 1 (actual side)"), "{err}");
        let err = check_close("b", &good, &t(&[1.0, 2.0, f64::INFINITY]), Tol::rel(1.0)).unwrap_err();
        assert!(err.to_string().starts_with("b: inf at index 2 (expected side)"), "{err}");
        // The first bad index of either side is the one named.
        let err =
            check_close("c", &t(&[1.0, 2.0, f64::NAN]), &t(&[1.0, f64::NEG_INFINITY, 3.0]), Tol::abs(1.0));
        assert!(err.unwrap_err().to_string().starts_with("c: -inf at index 1"));
        // Infinity against the same infinity is still a failure.
        assert!(check_close("d", &t(&[f64::INFINITY]), &t(&[f64::INFINITY]), Tol::EXACT).is_err());
    }

    #[test]
    fn finite_tensors_pass_or_fail_by_the_tolerance_and_the_worst_index_is_named() {
        let e = t(&[1.0, -4.0, 2.0]);
        let a = t(&[1.0, -4.0 + 1e-9, 2.0]);
        assert_eq!(check_close("x", &a, &a, Tol::EXACT), Ok(0.0));
        assert!(check_close("x", &a, &e, Tol::abs(2e-9)).is_ok());
        assert!(check_close("x", &a, &e, Tol::rel(1e-9)).is_ok(), "1e-9 against 1e-9 * 4");
        let err = check_close("x", &a, &e, Tol::rel(1e-10)).unwrap_err();
        match &err {
            Mismatch::TooFar { index, scale, .. } => assert_eq!((*index, *scale), (1, 4.0)),
            other => panic!("expected TooFar, got {other}"),
        }
        let err = check_close("x", &a, &t(&[1.0, 2.0]), Tol::EXACT).unwrap_err();
        assert!(err.to_string().contains("shape [3], expected [2]"), "{err}");
    }

    #[test]
    #[should_panic(expected = "rows: nothing to compare (no elements)")]
    fn pairs_refuses_empty_slices() {
        let empty: [f64; 0] = [];
        let _ = pairs("rows", &empty, &empty);
    }

    #[test]
    #[should_panic(expected = "rows: 2 against 3 elements")]
    fn pairs_refuses_different_lengths() {
        let _ = pairs("rows", &[1, 2], &[1, 2, 3]);
    }
}
