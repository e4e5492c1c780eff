//! Wide vectors where the CPU has them.
//!
//! The crate is built for baseline x86-64, whose vectors hold four f32s
//! (SSE2). The loops below are compiled twice more, with AVX2 (eight f32s per
//! vector) and with AVX-512 (sixteen), and the widest copy the CPU supports is
//! picked at run time. The kernels (`fastmath`) are branch-free and contain
//! no `a * b + c` that the compiler may fuse (Rust never contracts float
//! arithmetic on its own, even where the wider instruction sets have fused
//! multiply-adds), so every copy produces the same bits.

use crate::element::Element;

#[inline(always)]
pub(super) fn map_loop<T: Element>(src: &[T], out: &mut [T], f: &impl Fn(T) -> T) {
    for (o, &s) in out.iter_mut().zip(src) {
        *o = f(s);
    }
}

#[inline(always)]
pub(super) fn zip_loop<T: Element>(a: &[T], b: &[T], out: &mut [T], f: &impl Fn(T, T) -> T) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = f(a, b);
    }
}

#[inline(always)]
pub(super) fn zip3_loop<T: Element>(a: &[T], b: &[T], c: &[T], out: &mut [T], f: &impl Fn(T, T, T) -> T) {
    for (((o, &a), &b), &c) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = f(a, b, c);
    }
}

/// `*total = sum_i f(a_i, b_i)` in the lane sums of `reduce::lane_sum2`
/// (the same order of additions at every width, so the same bits).
#[inline(always)]
pub(super) fn sum2_loop<T: Element>(a: &[T], b: &[T], total: &mut T, f: &impl Fn(T, T) -> T) {
    *total = crate::reduce::lane_sum2(a, b, f);
}

#[inline(always)]
pub(super) fn update3_loop<T: Element>(
    a: &mut [T],
    b: &mut [T],
    c: &mut [T],
    d: &[T],
    f: &impl Fn(&mut T, &mut T, &mut T, T),
) {
    for (((a, b), c), &d) in a.iter_mut().zip(b).zip(c).zip(d) {
        f(a, b, c, d);
    }
}

/// The widest vectors this CPU has.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Width {
    Baseline,
    Avx2,
    Avx512,
}

/// Every width this CPU has, narrowest first (for the tests).
#[cfg(test)]
pub(super) fn widths() -> Vec<Width> {
    [Width::Baseline, Width::Avx2, Width::Avx512].into_iter().filter(|&w| w <= width()).collect()
}

/// Detected once by the standard library, then two cached loads.
#[inline(always)]
fn width() -> Width {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Width::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Width::Avx2;
        }
    }
    Width::Baseline
}

/// Defines `$at`, which runs the loop `$base` compiled for the vectors of a
/// given [`Width`] (two more copies of it, each built with one more
/// instruction set enabled), and `$wide`, which runs it at the widest the
/// CPU has.
macro_rules! widest {
    ($(#[$doc:meta])* $wide:ident, $at:ident = $base:ident ($($arg:ident: $ty:ty),*) where $($bound:tt)*) => {
        #[doc = concat!("[`", stringify!($base), "`] on the vectors of `width`.")]
        ///
        /// # Safety
        /// The CPU must have `width`'s instruction set.
        #[inline]
        pub(super) unsafe fn $at<T: Element, F>(width: Width, $($arg: $ty),*) where $($bound)* {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2<T: Element, F>($($arg: $ty),*) where $($bound)* {
                    $base($($arg),*)
                }
                #[target_feature(enable = "avx512f")]
                fn avx512<T: Element, F>($($arg: $ty),*) where $($bound)* {
                    $base($($arg),*)
                }
                match width {
                    // SAFETY: the CPU has the instruction set (the caller's promise).
                    Width::Avx512 => return unsafe { avx512($($arg),*) },
                    Width::Avx2 => return unsafe { avx2($($arg),*) },
                    Width::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = width;
            $base($($arg),*)
        }

        $(#[$doc])*
        #[inline]
        pub(crate) fn $wide<T: Element, F>($($arg: $ty),*) where $($bound)* {
            // SAFETY: `width()` is what the CPU has.
            unsafe { $at(width(), $($arg),*) }
        }
    };
}

widest! {
    /// [`map_loop`], on the widest vectors available.
    map_wide, map_at = map_loop(src: &[T], out: &mut [T], f: &F) where F: Fn(T) -> T
}

widest! {
    /// [`zip_loop`], on the widest vectors available.
    zip_wide, zip_at = zip_loop(a: &[T], b: &[T], out: &mut [T], f: &F) where F: Fn(T, T) -> T
}

widest! {
    /// [`zip3_loop`], on the widest vectors available.
    zip3_wide, zip3_at = zip3_loop(a: &[T], b: &[T], c: &[T], out: &mut [T], f: &F) where F: Fn(T, T, T) -> T
}

widest! {
    /// [`sum2_loop`], on the widest vectors available.
    sum2_wide, sum2_at = sum2_loop(a: &[T], b: &[T], total: &mut T, f: &F) where F: Fn(T, T) -> T
}

widest! {
    /// [`update3_loop`], on the widest vectors available.
    update3_wide, update3_at = update3_loop(a: &mut [T], b: &mut [T], c: &mut [T], d: &[T], f: &F)
        where F: Fn(&mut T, &mut T, &mut T, T)
}
