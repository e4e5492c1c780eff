//! The piecewise functions, one number at a time.
//!
//! Each is written as a chain of selects (no `&&`, no early return), so the
//! loops that apply them stay branch-free and vectorise, and each lets NaN
//! through: a comparison with NaN is false, so the last arm, which returns
//! `x` itself, is the one NaN takes. (`x > 0 ? x : 0` would turn NaN into 0,
//! and `f64::max` drops NaN.)

use crate::element::Element;

/// `max(x, 0)`, NaN at NaN.
#[inline(always)]
pub fn relu<T: Element>(x: T) -> T {
    if x < T::zero() {
        T::zero()
    } else {
        x
    }
}

/// The derivative of ReLU: 1 for `x > 0`, 0 for `x <= 0`, NaN at NaN.
#[inline(always)]
pub fn step<T: Element>(x: T) -> T {
    let s = if x > T::zero() { T::one() } else { x };
    if x <= T::zero() {
        T::zero()
    } else {
        s
    }
}

/// -1, 0 or 1 by the sign of `x`, NaN at NaN.
#[inline(always)]
pub fn sign<T: Element>(x: T) -> T {
    let s = if x > T::zero() { T::one() } else { x };
    let s = if x < T::zero() { -T::one() } else { s };
    // `x == 0` (either zero) leaves `s = x`, a zero; give +0.
    if x == T::zero() {
        T::zero()
    } else {
        s
    }
}

/// `x` clamped into `[lo, hi]`, NaN at NaN.
#[inline(always)]
pub fn clamp<T: Element>(x: T, lo: T, hi: T) -> T {
    let y = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        y
    }
}

/// The derivative of clamp: 1 strictly inside `(lo, hi)`, 0 at or beyond
/// the bounds, NaN at NaN.
#[inline(always)]
pub fn inside<T: Element>(x: T, lo: T, hi: T) -> T {
    // `|`, not `||`: both comparisons always run, so there is no branch.
    let m = if (x > lo) & (x < hi) { T::one() } else { x };
    if (x <= lo) | (x >= hi) {
        T::zero()
    } else {
        m
    }
}

/// The logistic function for one number, stable for both signs.
#[inline(always)]
pub fn sigmoid<T: Element>(x: T) -> T {
    x.sigmoid_k()
}
