//! Elementwise kernels: one function applied to every element (unary), or to
//! matching pairs of elements of two tensors (binary, with NumPy
//! broadcasting).
//!
//! Large tensors are split into chunks that rayon's workers process in
//! parallel. Below [`parallel_threshold`] elements the single-threaded loop
//! wins, because handing work to another thread costs a microsecond or two
//! (much more when the worker has to be woken: see `workers.rs`); the
//! threshold was chosen by measurement (`bench -- elementwise`, recorded in
//! BENCHMARKS.md).

use crate::broadcast::{zip_rows, Rows};
use crate::denormal::FlushDenormals;
use crate::element::Element;
use crate::shape::broadcast_or_panic;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Elements below which elementwise kernels and reductions stay on one
/// thread. Measured on the 2-core development machine with the other worker
/// kept awake, as training runs (`bench -- elementwise`, BENCHMARKS.md): a
/// split pass wins from 2^15 elements. (With a sleeping worker to wake, it
/// took 2^17.)
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 1 << 15;

/// Elements per rayon task once a kernel goes parallel.
const CHUNK: usize = 1 << 13;

static PARALLEL_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_PARALLEL_THRESHOLD);

thread_local! {
    /// A threshold for the calling thread alone, set by
    /// [`with_parallel_threshold`] for the length of one closure.
    static LOCAL_THRESHOLD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The current size threshold for parallel elementwise work: the calling
/// thread's own (inside [`with_parallel_threshold`]) if it has one, else the
/// process-wide one. Kernels read it on the calling thread, before they hand
/// any work to rayon's workers.
pub fn parallel_threshold() -> usize {
    LOCAL_THRESHOLD.with(Cell::get).unwrap_or_else(|| PARALLEL_THRESHOLD.load(Ordering::Relaxed))
}

/// Changes the process-wide threshold, for every thread (the benchmark uses
/// this to measure both sides). Tests use [`with_parallel_threshold`]
/// instead: a test that changed the process-wide value would change it
/// under the tests running beside it.
pub fn set_parallel_threshold(elements: usize) {
    PARALLEL_THRESHOLD.store(elements, Ordering::Relaxed);
}

/// Runs `f` with the threshold set to `elements` on the calling thread
/// only, and puts the thread's previous setting back afterwards (also when
/// `f` panics). `1` forces the threaded paths even on tiny tensors,
/// `usize::MAX` keeps everything on one thread; other threads, and so other
/// tests running at the same time, are not affected.
pub fn with_parallel_threshold<R>(elements: usize, f: impl FnOnce() -> R) -> R {
    /// Puts the previous per-thread setting back when dropped.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOCAL_THRESHOLD.with(|local| local.set(self.0));
        }
    }
    let _restore = Restore(LOCAL_THRESHOLD.with(|local| local.replace(Some(elements))));
    f()
}

/// `out[i] = f(src[i])`, in parallel above the threshold.
pub(crate) fn map_into<T: Element>(src: &[T], out: &mut [T], f: impl Fn(T) -> T + Sync) {
    if src.len() >= parallel_threshold() {
        out.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(o, s)| map_wide(s, o, &f));
    } else {
        map_wide(src, out, &f);
    }
}

/// `out[i] = f(a[i], b[i])` for equal-length slices, parallel above the
/// threshold.
pub(crate) fn zip_into<T: Element>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    if a.len() >= parallel_threshold() {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| zip_wide(a, b, o, &f));
    } else {
        zip_wide(a, b, out, &f);
    }
}

/// `f(&mut a[i], &mut b[i], &mut c[i], d[i])` for every `i`: three arrays
/// updated in place from a fourth in one pass over memory, the shape of an
/// optimiser's step (parameter, two moments; gradient). On wide vectors
/// like the other kernels, and split across rayon workers from a quarter of
/// [`parallel_threshold`] elements, because each element moves seven numbers
/// through memory where a unary kernel moves two.
///
/// Subnormal numbers are flushed to zero while it runs, on every thread that
/// takes part ([`crate::denormal::FlushDenormals`] explains why optimisers
/// want that; the flag is per thread, so setting it on the caller's thread
/// alone would leave the workers' chunks slow and rounded differently).
///
/// Panics if the four lengths differ.
#[track_caller]
pub fn update3_flush_denormals<T: Element>(
    a: &mut [T],
    b: &mut [T],
    c: &mut [T],
    d: &[T],
    f: impl Fn(&mut T, &mut T, &mut T, T) + Sync,
) {
    let n = a.len();
    assert!(
        b.len() == n && c.len() == n && d.len() == n,
        "update3_flush_denormals: lengths differ: {n}, {}, {} and {}",
        b.len(),
        c.len(),
        d.len()
    );
    if n >= parallel_threshold() / 4 {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks_mut(CHUNK))
            .zip(c.par_chunks_mut(CHUNK).zip(d.par_chunks(CHUNK)))
            .for_each(|((a, b), (c, d))| {
                let _flush = FlushDenormals::new();
                update3_wide(a, b, c, d, &f)
            });
    } else {
        let _flush = FlushDenormals::new();
        update3_wide(a, b, c, d, &f);
    }
}

// ---- wide vectors where the CPU has them ----------------------------------
//
// The crate is built for baseline x86-64, whose vectors hold four f32s
// (SSE2). The loops below are compiled twice more, with AVX2 (eight f32s per
// vector) and with AVX-512 (sixteen), and the widest copy the CPU supports is
// picked at run time. The kernels (`fastmath`) are branch-free and contain
// no `a * b + c` that the compiler may fuse (Rust never contracts float
// arithmetic on its own, even where the wider instruction sets have fused
// multiply-adds), so every copy produces the same bits.

#[inline(always)]
fn map_loop<T: Element>(src: &[T], out: &mut [T], f: &impl Fn(T) -> T) {
    for (o, &s) in out.iter_mut().zip(src) {
        *o = f(s);
    }
}

#[inline(always)]
fn zip_loop<T: Element>(a: &[T], b: &[T], out: &mut [T], f: &impl Fn(T, T) -> T) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = f(a, b);
    }
}

#[inline(always)]
fn update3_loop<T: Element>(
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
enum Width {
    Baseline,
    Avx2,
    Avx512,
}

/// Every width this CPU has, narrowest first (for the tests).
#[cfg(test)]
fn widths() -> Vec<Width> {
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
        unsafe fn $at<T: Element, F>(width: Width, $($arg: $ty),*) where $($bound)* {
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
    /// [`update3_loop`], on the widest vectors available.
    update3_wide, update3_at = update3_loop(a: &mut [T], b: &mut [T], c: &mut [T], d: &[T], f: &F)
        where F: Fn(&mut T, &mut T, &mut T, T)
}

impl<T: Element> Tensor<T> {
    /// Applies `f` to every element.
    ///
    /// A Rust closure runs on the CPU only: on a GPU tensor this panics
    /// (use a named op, which has a kernel, or [`Tensor::to_cpu`]).
    #[track_caller]
    pub fn map(&self, f: impl Fn(T) -> T + Sync) -> Tensor<T> {
        self.refuse_closure_on_cuda("map");
        Tensor::from_fill_shape(self.dims(), |out| map_into(self.data(), out, f))
    }

    /// Applies `f` to pairs of elements, broadcasting the two shapes against
    /// each other. `op` names the operation in the error when they do not
    /// broadcast.
    #[track_caller]
    pub fn zip_with(&self, other: &Tensor<T>, op: &str, f: impl Fn(T, T) -> T + Sync) -> Tensor<T> {
        self.same_device(other, op);
        self.refuse_closure_on_cuda(op);
        if self.same_shape(other) {
            return Tensor::from_fill_shape(self.dims(), |out| zip_into(self.data(), other.data(), out, f));
        }
        let shape = broadcast_or_panic(op, self.shape(), other.shape());
        if other.len() == 1 && other.rank() <= shape.len() && self.shape() == shape.as_slice() {
            let b = other.data()[0];
            return self.map(|a| f(a, b));
        }
        if self.len() == 1 && self.rank() <= shape.len() && other.shape() == shape.as_slice() {
            let a = self.data()[0];
            return other.map(|b| f(a, b));
        }
        let rows = Rows::new(&shape, self.shape(), other.shape());
        Tensor::from_fill_shape(shape, |out| zip_rows(&rows, self.data(), other.data(), out, f))
    }

    /// Panics if this tensor is on a GPU: `op` was given a Rust closure.
    #[inline(always)]
    #[track_caller]
    fn refuse_closure_on_cuda(&self, op: &str) {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            panic!(
                "{op}: a Rust closure cannot run on {} (shape {:?}): use a named op, or .to_cpu() first",
                self.device(),
                self.shape()
            );
        }
        let _ = op;
    }

    /// The GPU result of a named binary op, if both operands are on a GPU;
    /// panics naming the op if they are on two devices, or do not
    /// broadcast.
    #[cfg(feature = "cuda")]
    #[track_caller]
    fn binary_on_cuda(&self, other: &Tensor<T>, op: &str) -> Option<Tensor<T>> {
        if !self.same_device(other, op).is_cuda() {
            return None;
        }
        let shape = broadcast_or_panic(op, self.shape(), other.shape());
        Some(crate::cuda::ops::binary(self, other, op, shape))
    }

    /// Elementwise sum, broadcasting.
    #[track_caller]
    pub fn add(&self, other: &Tensor<T>) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if let Some(out) = self.binary_on_cuda(other, "add") {
            return out;
        }
        self.zip_with(other, "add", |a, b| a + b)
    }

    /// `self += other` for tensors of one shape, in place where the buffer
    /// is not shared (gradient accumulation); a new tensor on a GPU.
    #[track_caller]
    pub fn add_assign(&mut self, other: &Tensor<T>) {
        assert!(
            self.same_shape(other),
            "add_assign: shapes {:?} and {:?} differ",
            self.shape(),
            other.shape()
        );
        if self.same_device(other, "add_assign").is_cuda() {
            *self = self.add(other);
            return;
        }
        for (a, &b) in self.data_mut().iter_mut().zip(other.data()) {
            *a = *a + b;
        }
    }

    /// Elementwise difference, broadcasting.
    #[track_caller]
    pub fn sub(&self, other: &Tensor<T>) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if let Some(out) = self.binary_on_cuda(other, "sub") {
            return out;
        }
        self.zip_with(other, "sub", |a, b| a - b)
    }

    /// Elementwise product, broadcasting.
    #[track_caller]
    pub fn mul(&self, other: &Tensor<T>) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if let Some(out) = self.binary_on_cuda(other, "mul") {
            return out;
        }
        self.zip_with(other, "mul", |a, b| a * b)
    }

    /// Elementwise quotient, broadcasting.
    #[track_caller]
    pub fn div(&self, other: &Tensor<T>) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if let Some(out) = self.binary_on_cuda(other, "div") {
            return out;
        }
        self.zip_with(other, "div", |a, b| a / b)
    }

    /// `-x`.
    pub fn neg(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "neg");
        }
        self.map(|x| -x)
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: T) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_scalar(self, "add_scalar", s);
        }
        self.map(|x| x + s)
    }

    /// `x * s`.
    pub fn mul_scalar(&self, s: T) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_scalar(self, "mul_scalar", s);
        }
        self.map(|x| x * s)
    }

    /// `e^x`.
    pub fn exp(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "exp");
        }
        self.map(T::exp_k)
    }

    /// Natural logarithm.
    pub fn ln(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "ln");
        }
        self.map(T::ln_k)
    }

    /// `x^p` for a constant exponent.
    pub fn powf(&self, p: T) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_scalar(self, "powf", p);
        }
        self.map(|x| x.powf(p))
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "sqrt");
        }
        self.map(|x| x.sqrt())
    }

    /// `x^2`.
    pub fn square(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "square");
        }
        self.map(|x| x * x)
    }

    /// `|x|`.
    pub fn abs(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "abs");
        }
        self.map(|x| x.abs())
    }

    /// -1, 0 or 1 by the sign of `x` (0 at 0, NaN at NaN).
    pub fn sign(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "sign");
        }
        self.map(sign)
    }

    /// The logistic function `1 / (1 + e^-x)`, computed without overflow for
    /// large negative `x`.
    pub fn sigmoid(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "sigmoid");
        }
        self.map(sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "tanh");
        }
        self.map(T::tanh_k)
    }

    /// `max(x, 0)`, and NaN at NaN (as PyTorch's `relu`).
    pub fn relu(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "relu");
        }
        self.map(relu)
    }

    /// 1 where `x > 0`, 0 where `x <= 0` (the derivative of ReLU, taking 0
    /// at 0), NaN at NaN.
    pub fn step(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "step");
        }
        self.map(step)
    }

    /// `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)` so it neither
    /// overflows nor loses precision.
    pub fn softplus(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary(self, "softplus");
        }
        self.map(|x| relu(x) + (-x.abs()).exp().ln_1p())
    }

    /// Clamps every element into `[lo, hi]`; NaN stays NaN (as PyTorch's
    /// `clamp`; `x.max(lo).min(hi)` would turn it into `lo`).
    pub fn clamp(&self, lo: T, hi: T) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_range(self, "clamp", lo, hi);
        }
        self.map(|x| clamp(x, lo, hi))
    }

    /// 1 where `lo < x < hi`, 0 where `x <= lo` or `x >= hi` (the derivative
    /// of clamp), NaN at NaN.
    pub fn inside_mask(&self, lo: T, hi: T) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::unary_range(self, "inside_mask", lo, hi);
        }
        self.map(|x| inside(x, lo, hi))
    }
}

// ---- the piecewise functions, one number at a time ------------------------
//
// Each is written as a chain of selects (no `&&`, no early return), so the
// loops that apply them stay branch-free and vectorise, and each lets NaN
// through: a comparison with NaN is false, so the last arm, which returns
// `x` itself, is the one NaN takes. (`x > 0 ? x : 0` would turn NaN into 0,
// and `f64::max` drops NaN.)

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vector_width_gives_the_same_bits_as_the_baseline_loops() {
        let x: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * 2.5e-4 * (1.0 + (i % 7) as f32)).collect();
        let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 0.25).collect();
        type Kernel = (&'static str, fn(f32) -> f32);
        let kernels: [Kernel; 5] = [
            ("exp", f32::exp_k),
            ("ln", f32::ln_k),
            ("tanh", f32::tanh_k),
            ("sigmoid", f32::sigmoid_k),
            ("expm1", crate::fastmath::expm1),
        ];
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        let widths = widths();
        eprintln!("vector widths on this CPU: {widths:?}");
        for &width in &widths {
            for (name, f) in kernels {
                let (mut wide, mut base) = (vec![0.0; x.len()], vec![0.0; x.len()]);
                // SAFETY: `widths()` lists only what this CPU has (so do the calls below).
                unsafe { map_at(width, &x, &mut wide, &f) };
                map_loop(&x, &mut base, &f);
                assert!(same(&wide, &base), "{name} at {width:?}");
            }
            let grad = |g: f32, s: f32| g * (s * (1.0 - s));
            let (mut wide, mut base) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            unsafe { zip_at(width, &x, &y, &mut wide, &grad) };
            zip_loop(&x, &y, &mut base, &grad);
            assert!(same(&wide, &base), "sigmoid's rule at {width:?}");
            // Adam's shape of update, with a square root and a division.
            let adam = |p: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
                *m = 0.9 * *m + 0.1 * g;
                *v = 0.999 * *v + 0.001 * g * g;
                *p -= 1e-3 * *m / (v.sqrt() + 1e-8);
            };
            let mut wide = [x.clone(), y.clone(), x.iter().map(|v| v * v).collect::<Vec<f32>>()];
            let mut base = wide.clone();
            let [p, m, v] = &mut wide;
            unsafe { update3_at(width, p, m, v, &y, &adam) };
            let [p, m, v] = &mut base;
            update3_loop(p, m, v, &y, &adam);
            for (w, b) in wide.iter().zip(&base) {
                assert!(same(w, b), "Adam's update at {width:?}");
            }
        }
    }

    /// Runs the optimiser-shaped pass on `n` elements and returns the three
    /// updated arrays.
    fn run_update3(n: usize) -> [Vec<f32>; 3] {
        let mut a: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let mut b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 1e-39).collect(); // subnormal
        let mut c: Vec<f32> = (0..n).map(|i| (i % 11) as f32).collect();
        let d: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        update3_flush_denormals(&mut a, &mut b, &mut c, &d, |a, b, c, d| {
            *b = *b * 0.5 + d;
            *c = (*c + d * d).sqrt();
            *a -= 0.01 * *b / (*c + 1e-8);
        });
        [a, b, c]
    }

    #[test]
    fn update3_updates_every_element_once_serially_and_in_parallel_alike() {
        let n = 1 << 15;
        // Above the pass's own (quarter) threshold: parallel.
        let [a, b, c] = with_parallel_threshold(4 * n, || run_update3(n));
        for i in [0, 1, 4, 5, 8191, 8192, n - 1] {
            let d = (i % 7) as f32 - 3.0;
            // The subnormal input reads as 0 under the flush.
            let want_b = 0.0 * 0.5 + d;
            let want_c = ((i % 11) as f32 + d * d).sqrt();
            let want_a = ((i % 13) as f32 * 0.1 - 0.6) - 0.01 * want_b / (want_c + 1e-8);
            assert_eq!((a[i], b[i], c[i]), (want_a, want_b, want_c), "element {i}");
        }
        // Serial (short) and parallel (long) runs agree element for element.
        let short = with_parallel_threshold(usize::MAX, || run_update3(1000));
        for k in 0..3 {
            assert_eq!(&short[k][..], &[a.as_slice(), b.as_slice(), c.as_slice()][k][..1000]);
        }
    }

    #[test]
    #[should_panic(expected = "update3_flush_denormals: lengths differ: 3, 3, 2 and 3")]
    fn update3_names_mismatched_lengths() {
        let (mut a, mut b, mut c) = (vec![0f32; 3], vec![0f32; 3], vec![0f32; 2]);
        update3_flush_denormals(&mut a, &mut b, &mut c, &[0.0; 3], |_, _, _, _| {});
    }

    #[test]
    fn binary_ops_broadcast_like_numpy() {
        let a = Tensor::<f64>::arange(6).reshape(&[2, 3]);
        let b = Tensor::<f64>::from_vec(vec![10.0, 20.0, 30.0], &[3]);
        assert_eq!(a.add(&b).to_vec(), vec![10.0, 21.0, 32.0, 13.0, 24.0, 35.0]);
        let c = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]);
        assert_eq!(a.mul(&c).to_vec(), vec![0.0, 1.0, 2.0, 6.0, 8.0, 10.0]);
        let s = Tensor::<f64>::scalar(2.0);
        assert_eq!(s.sub(&a).to_vec(), vec![2.0, 1.0, 0.0, -1.0, -2.0, -3.0]);
        let col = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]);
        let row = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
        assert_eq!(col.mul(&row).shape(), &[2, 3]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
    fn mismatched_shapes_name_the_op_and_both_shapes() {
        let _ = Tensor::<f32>::zeros(&[2, 3]).add(&Tensor::zeros(&[2]));
    }

    #[test]
    fn parallel_and_serial_paths_agree() {
        let a = Tensor::<f32>::normal(&[100_000], 0.0, 1.0, 1);
        let b = Tensor::<f32>::normal(&[100_000], 0.0, 1.0, 2);
        // Both sides forced, so that neither depends on the default
        // threshold (100,000 elements is below it).
        let par = with_parallel_threshold(1, || a.mul(&b).sigmoid());
        let serial = with_parallel_threshold(usize::MAX, || a.mul(&b).sigmoid());
        let by_hand: Vec<f32> = a.data().iter().zip(b.data()).map(|(x, y)| sigmoid(x * y)).collect();
        assert_eq!(par.to_vec(), by_hand);
        assert_eq!(serial.to_vec(), by_hand);
    }

    #[test]
    fn a_thread_local_threshold_holds_inside_the_closure_only_and_on_this_thread_only() {
        let outside = parallel_threshold();
        with_parallel_threshold(7, || {
            assert_eq!(parallel_threshold(), 7);
            with_parallel_threshold(9, || assert_eq!(parallel_threshold(), 9));
            assert_eq!(parallel_threshold(), 7, "the inner setting is undone");
            let other = std::thread::spawn(parallel_threshold).join().unwrap();
            assert_ne!(other, 7, "another thread does not see this thread's setting");
        });
        assert_eq!(parallel_threshold(), outside);
        let caught = std::panic::catch_unwind(|| with_parallel_threshold(3, || panic!("inside")));
        assert!(caught.is_err());
        assert_eq!(parallel_threshold(), outside, "undone after a panic too");
    }

    #[test]
    fn nan_goes_through_every_elementwise_kernel_and_mask() {
        // PyTorch gives NaN for each of these at NaN; `x > 0 ? x : 0` and
        // `f64::max` would have given a number.
        let t = Tensor::<f64>::from_vec(vec![f64::NAN, -2.0, 0.0, 3.0], &[4]);
        let t32 = t.cast::<f32>();
        type Kernel = (&'static str, fn(&Tensor<f64>) -> Tensor<f64>);
        let kernels: [Kernel; 12] = [
            ("relu", Tensor::relu),
            ("step", Tensor::step),
            ("sign", Tensor::sign),
            ("abs", Tensor::abs),
            ("clamp", |t| t.clamp(-1.0, 1.0)),
            ("inside_mask", |t| t.inside_mask(-1.0, 1.0)),
            ("softplus", Tensor::softplus),
            ("sigmoid", Tensor::sigmoid),
            ("tanh", Tensor::tanh),
            ("exp", Tensor::exp),
            ("sqrt of abs", |t| t.abs().sqrt()),
            ("square", Tensor::square),
        ];
        for (name, k) in kernels {
            let out = k(&t);
            assert!(out.data()[0].is_nan(), "{name}(NaN) = {}", out.data()[0]);
            assert!(out.data()[1..].iter().all(|v| !v.is_nan()), "{name}: {:?}", out.data());
        }
        // f32 has its own fast kernels.
        for (name, out) in [
            ("exp", t32.exp()),
            ("ln", t32.ln()),
            ("tanh", t32.tanh()),
            ("sigmoid", t32.sigmoid()),
            ("softplus", t32.softplus()),
            ("relu", t32.relu()),
            ("clamp", t32.clamp(-1.0, 1.0)),
        ] {
            assert!(out.data()[0].is_nan(), "{name}(NaN) in f32 = {}", out.data()[0]);
        }
        // Away from NaN the values are the usual ones.
        assert_eq!(t.relu().to_vec()[1..], [0.0, 0.0, 3.0]);
        assert_eq!(t.step().to_vec()[1..], [0.0, 0.0, 1.0]);
        assert_eq!(t.sign().to_vec()[1..], [-1.0, 0.0, 1.0]);
        assert_eq!(t.clamp(-1.0, 1.0).to_vec()[1..], [-1.0, 0.0, 1.0]);
        assert_eq!(t.inside_mask(-1.0, 1.0).to_vec()[1..], [0.0, 1.0, 0.0]);
        let edges = Tensor::<f64>::from_vec(vec![-1.0, 1.0, f64::NEG_INFINITY, f64::INFINITY, -0.0], &[5]);
        assert_eq!(edges.inside_mask(-1.0, 1.0).to_vec(), [0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(edges.step().to_vec(), [0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(edges.sign().to_vec(), [-1.0, 1.0, -1.0, 1.0, 0.0]);
        assert_eq!(edges.relu().to_vec(), [0.0, 1.0, 0.0, f64::INFINITY, 0.0]);
        assert_eq!(edges.clamp(-0.5, 0.5).to_vec(), [-0.5, 0.5, -0.5, 0.5, 0.0]);
    }

    #[test]
    fn sigmoid_and_softplus_are_stable_at_extremes() {
        let t = Tensor::<f32>::from_vec(vec![-200.0, 0.0, 200.0], &[3]);
        let s = t.sigmoid().to_vec();
        assert!(s[0] >= 0.0 && s[0] < 1e-37, "sigmoid(-200) = {}", s[0]);
        assert_eq!(&s[1..], &[0.5, 1.0]);
        let s64 = t.cast::<f64>().sigmoid().to_vec();
        assert!(s64[0] > 0.0 && s64[0] < 1e-86 && s64[2] == 1.0);
        let sp = t.softplus().to_vec();
        assert_eq!(sp[0], 0.0);
        assert!((sp[1] - 2f32.ln()).abs() < 1e-7);
        assert_eq!(sp[2], 200.0);
    }
}
