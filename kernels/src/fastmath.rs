//! Fast `exp`, `ln`, `tanh` and sigmoid for `f32`, written so the compiler
//! can vectorise them.
//!
//! The C library's `tanhf` and `expf` handle one number per call. In a
//! training step a Tanh output layer alone takes 200,000 of them, and
//! profiles showed a fifth of the deep autoencoder's time inside `tanhf`.
//! These versions have no branches and no calls, so a loop over a slice
//! becomes SIMD code. They are used for `f32` only; `f64`, which the
//! verification suite uses, keeps the C library.
//!
//! The method (textbook range reduction):
//!
//! ```text
//! e^y = 2^n * e^r,   n = round(y / ln 2),   r = y - n ln 2,   |r| <= ln 2 / 2
//! expm1(r) = r + r^2/2! + ... + r^9/9!       (Taylor; error < 1e-9 relative)
//! expm1(y) = 2^n expm1(r) + (2^n - 1)        (accurate for small y as well)
//! tanh(x)  = sign(x) * e / (e + 2),  e = expm1(2 |x|)
//! ```
//!
//! `ln 2` is split into a part with few significant bits and a remainder so
//! that `n ln 2` is subtracted without rounding error. Measured accuracy
//! (tests below, against `f64`): a few units in the last place.
//!
//! The logarithm runs the reduction the other way round, reading `n` straight
//! out of the float's exponent bits:
//!
//! ```text
//! x = 2^n m,  m in [sqrt(1/2), sqrt(2)),   f = m - 1,   s = f / (2 + f)
//! ln(1 + f) = 2 atanh(s) = 2s + 2s^3/3 + 2s^5/5 + ...   (|s| < 0.172)
//! ln x      = n ln 2 + ln(1 + f)
//! ```
//!
//! The series in `s^2` is cut after four terms, with coefficients fitted
//! for this interval rather than the Taylor ones (the classic fdlibm
//! `logf` arrangement), which keeps the error under one unit in the last
//! place.

const LN2_HI: f32 = 0.693_145_75; // ln 2 rounded to 16 significant bits
const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 - LN2_HI
const LOG2_E: f32 = std::f32::consts::LOG2_E;

/// `2^n` for an integer-valued `n` in `[-126, 127]`, built from its bits.
///
/// The biased exponent `n + 127` is read out of a float's mantissa rather
/// than converted with `as i32`: Rust's float-to-int cast saturates, and
/// that compiles to one scalar conversion and two conditional moves per
/// lane, which made `exp` and `tanh` loops a dozen times slower than the
/// arithmetic around them. Adding `1.5 * 2^23` to a small whole number
/// leaves it, exactly, in the low mantissa bits.
#[inline(always)]
fn pow2(n: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23
    let biased = (n + 127.0 + SHIFT).to_bits() - SHIFT.to_bits();
    f32::from_bits(biased << 23)
}

/// `e^r - 1` for `|r| <= ln 2 / 2`, by Horner's rule on the Taylor series.
#[inline(always)]
fn expm1_reduced(r: f32) -> f32 {
    const C: [f32; 8] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
    ];
    let mut p = C[7];
    for &c in C[..7].iter().rev() {
        p = p * r + c;
    }
    r + r * r * p
}

/// Rounds to the nearest integer for `|v| < 2^22`: adding and subtracting
/// `1.5 * 2^23` pushes the fraction bits out of the mantissa. Plain
/// `f32::round` compiles to a library call on baseline x86-64, which
/// stops vectorisation.
#[inline(always)]
fn round(v: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    (v + SHIFT) - SHIFT
}

/// Splits `y` into `n` and `r` with `y = n ln 2 + r`.
#[inline(always)]
fn reduce(y: f32) -> (f32, f32) {
    let n = round(y * LOG2_E);
    (n, (y - n * LN2_HI) - n * LN2_LO)
}

/// `e^x`. Beyond the range where `f32` can hold the result it gives `inf`
/// (above 88.72) or 0 (below -103.97), as the C library does. Between -104
/// and -87 the result is subnormal and `2^n` itself is not a normal float,
/// so the scale is applied in two halves, `2^n = 2^(n/2) 2^(n - n/2)`: each
/// product is exact while it stays normal, and the last one rounds once into
/// the subnormal range.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let (n, r) = reduce(x.clamp(-104.0, 88.0));
    let half = round(n * 0.5);
    let e = (pow2(half) * (1.0 + expm1_reduced(r))) * pow2(n - half);
    // Selects rather than branches, so the loop still vectorises.
    if x > 88.722_84 {
        f32::INFINITY
    } else {
        e
    }
}

/// `e^x - 1`, accurate near 0, for `x` up to 88.
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let (n, r) = reduce(x.clamp(-87.0, 88.0));
    let scale = pow2(n);
    scale * expm1_reduced(r) + (scale - 1.0)
}

/// Natural logarithm, with the C library's answers at the edges: NaN below
/// 0 (and for NaN), `-inf` at 0, `inf` at `inf`. Subnormal inputs are
/// scaled into the normal range first, so they are exact too.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    // Coefficients of 2 atanh(s) = 2s + s (s^2 P(s^2)), fitted on |s| < 0.172.
    const P1: f32 = 0.666_666_6; // ~ 2/3
    const P2: f32 = 0.400_009_72; // ~ 2/5
    const P3: f32 = 0.284_987_87; // ~ 2/7
    const P4: f32 = 0.242_790_79; // ~ 2/9
    const LOG_LN2_HI: f32 = 0.693_138_1; // ln 2 with its low bits zero
    const LOG_LN2_LO: f32 = 9.058_001e-6; // ln 2 - LOG_LN2_HI
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3; // bits of sqrt(1/2)
    const ONE_BITS: u32 = 0x3f80_0000;

    // Subnormals have no implicit leading bit; 2^25 makes them normal.
    let tiny = x < f32::MIN_POSITIVE;
    let scaled = if tiny { x * 33_554_432.0 } else { x };
    let extra = if tiny { 25.0 } else { 0.0 };

    // Shift the bits so that the exponent field counts from sqrt(1/2):
    // then `n` is the exponent and the mantissa, re-based on sqrt(1/2),
    // lands in [sqrt(1/2), sqrt(2)).
    let bits = scaled.to_bits().wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let n = ((bits >> 23) as i32 - 127) as f32 - extra;
    let m = f32::from_bits((bits & 0x007f_ffff) + SQRT_HALF_BITS);

    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let r = z * (P1 + w * P3) + w * (P2 + w * P4);
    let half_f2 = 0.5 * f * f;
    let y = s * (half_f2 + r) + n * LOG_LN2_LO - half_f2 + f + n * LOG_LN2_HI;

    // Edges, as selects so the loop stays branch-free.
    let y = if x == f32::INFINITY { x } else { y };
    let y = if x == 0.0 { f32::NEG_INFINITY } else { y };
    if x >= 0.0 {
        y
    } else {
        f32::NAN
    }
}

/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // Past 9, tanh rounds to 1 in f32. A select, not `f32::min`, which
    // would turn NaN into 9 (and tanh(NaN) into 1).
    let a = x.abs();
    let e = expm1(2.0 * if a > 9.0 { 9.0 } else { a });
    (e / (e + 2.0)).copysign(x)
}

/// The logistic sigmoid `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|i| i as f32 * 1e-4)
    }

    fn rel(a: f32, want: f64) -> f64 {
        ((a as f64) - want).abs() / want.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_and_expm1_are_accurate_to_a_few_ulp() {
        for x in grid().chain([-87.0, -50.5, 30.25, 88.0]) {
            let e = (x as f64).exp();
            assert!(rel(exp(x), e) < 4e-7, "exp({x}) = {} vs {e}", exp(x));
        }
        // Past f32's range: inf above, subnormal then 0 below, like libm.
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(-120.0), 0.0);
        let sub = exp(-95.0);
        assert!(sub > 0.0 && ((sub as f64) - (-95f64).exp()).abs() < 1e-44, "exp(-95) = {sub}");
        for x in grid() {
            let m = (x as f64).exp_m1();
            assert!(rel(expm1(x), m) < 4e-7, "expm1({x}) = {} vs {m}", expm1(x));
        }
    }

    #[test]
    fn ln_is_accurate_from_subnormals_to_the_largest_float() {
        // Every 997th float from the smallest subnormal to f32::MAX, plus the
        // neighbourhood of 1, where ln is smallest and most easily garbled.
        let sweep = (1..f32::MAX.to_bits()).step_by(997).map(f32::from_bits);
        let near_one = (-20_000..=20_000).map(|i| 1.0 + i as f32 * 1e-5);
        for x in sweep.chain(near_one).chain([1.0, 2.0, 0.5, f32::MAX, f32::MIN_POSITIVE]) {
            let want = (x as f64).ln();
            let err = ((ln(x) as f64) - want).abs();
            // One unit in the last place: the gap between the f32 nearest
            // the true answer and the next float up.
            let near = (want as f32).abs();
            let ulp = f64::from(f32::from_bits(near.to_bits() + 1) - near);
            assert!(err <= 1.0 * ulp, "ln({x:e}) = {:e} vs {want:e}", ln(x));
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan() && ln(f32::NEG_INFINITY).is_nan());
    }

    #[test]
    fn tanh_is_accurate_everywhere_including_near_zero() {
        for x in grid().chain([1e-6, -3e-5, 9.5, -30.0, 1e30]) {
            let t = (x as f64).tanh();
            let err = ((tanh(x) as f64) - t).abs();
            assert!(err <= 4e-7 * t.abs() + 1e-30, "tanh({x}) = {} vs {t}", tanh(x));
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
    }

    #[test]
    fn sigmoid_is_accurate_and_saturates_cleanly() {
        for x in grid() {
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(rel(sigmoid(x), s) < 5e-7, "sigmoid({x}) = {} vs {s}", sigmoid(x));
        }
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(sigmoid(-120.0), 0.0, "saturates to 0 like the C library's sigmoid");
    }
}
