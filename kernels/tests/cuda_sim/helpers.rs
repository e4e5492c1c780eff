//! Inputs, launch shapes and comparisons shared by the simulation tests.

use gradtape_kernels::cuda_sim::launch;
use gradtape_kernels::{Element, Tensor};

/// Launch shapes, (grid, block): one thread alone, one small block, a few
/// blocks, and more threads than most inputs have elements.
pub const LAUNCHES: &[(u32, u32)] = &[(1, 1), (1, 7), (3, 32), (1000, 256)];

/// Element counts: one, a handful, just under and over a power of two, and
/// a large prime.
pub const SIZES: &[usize] = &[1, 7, 1023, 1025, 100_003];

/// An element type the simulated kernels take.
pub trait Float: Element {
    /// Relative tolerance where the CPU and the kernel use different
    /// implementations of exp, ln, tanh or sigmoid.
    const MATH_RTOL: f64;
    /// Tolerance of a sum, relative to the sum of the terms' magnitudes:
    /// the kernel and the CPU add in different orders. In f32 a launch of
    /// one thread adds 100,003 terms in sequence, which measured 1.6e-5 of
    /// the magnitudes away from the CPU's lane sums; 1e-4 leaves room. That
    /// is loose enough to hide one missing term, so indexing is proven by
    /// the f64 run of the same template, at 1e-12.
    const SUM_RTOL: f64;
}
impl Float for f32 {
    const MATH_RTOL: f64 = 1e-6;
    const SUM_RTOL: f64 = 1e-4;
}
impl Float for f64 {
    const MATH_RTOL: f64 = 1e-12;
    const SUM_RTOL: f64 = 1e-12;
}

/// `n` deterministic test values: a few special ones (zeros of both signs,
/// +-1, large and small magnitudes), then normal draws scaled by `scale`.
pub fn values<T: Element>(n: usize, scale: f64, seed: u64) -> Vec<T> {
    let special = [0.0, -0.0, 1.0, -1.0, 30.0, -30.0, 1e-3, -1e-3, 95.0, -95.0];
    let drawn = Tensor::<f64>::normal(&[n], 0.0, scale, seed);
    (0..n).map(|i| T::of(if i < special.len() { special[i] } else { drawn.data()[i] })).collect()
}

/// `n` positive values in roughly (0.01, 20).
pub fn positive<T: Element>(n: usize, seed: u64) -> Vec<T> {
    values::<f64>(n, 1.0, seed).into_iter().map(|x| T::of(x.abs().min(20.0) + 0.01)).collect()
}

/// Runs `kernel(out)` under every launch shape, each time into a fresh
/// buffer of `len` NaNs (so an element no thread wrote shows up as NaN), and
/// returns each result with its launch shape.
pub fn each_launch<O: Copy>(
    len: usize,
    fill: O,
    mut kernel: impl FnMut(*mut O),
) -> Vec<((u32, u32), Vec<O>)> {
    LAUNCHES
        .iter()
        .map(|&(grid, block)| {
            let mut out = vec![fill; len];
            let p = out.as_mut_ptr();
            launch(grid, block, || kernel(p));
            ((grid, block), out)
        })
        .collect()
}

/// Asserts `got` matches `want` element by element: equal (with NaN equal
/// to NaN), or within `rtol * |want| + atol`. A NaN on one side only always
/// fails.
#[track_caller]
pub fn check<T: Element>(what: &str, got: &[T], want: &[T], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64(), w.as_f64());
        let ok = g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= rtol * w.abs() + atol;
        assert!(
            ok,
            "{what}: element {i} of {}: kernel {g:e}, CPU {w:e} (rtol {rtol:e}, atol {atol:e})",
            got.len()
        );
    }
}

/// [`check`] with no tolerance: the same numbers (NaN equal to NaN; +0
/// equal to -0).
#[track_caller]
pub fn check_exact<T: Element>(what: &str, got: &[T], want: &[T]) {
    check(what, got, want, 0.0, 0.0)
}

/// The absolute tolerance that lets a result which underflows on one side
/// and not the other pass (f32 only; 0 for f64).
pub fn underflow<T: Element>() -> f64 {
    if T::NAME == "f32" {
        1e-37
    } else {
        0.0
    }
}
