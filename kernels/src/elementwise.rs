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

/// Runs `task(i, piece)` for each `chunk`-long piece of `out` in order
/// (`i` counting from 0, the last piece maybe shorter), on rayon's workers.
///
/// Every parallel kernel hands its loop to rayon through here, as a `dyn`
/// task. A rayon pipeline is a lot of code, and a generic one is compiled
/// once per kernel closure, again in every crate that instantiates the
/// kernel (most of the engine's ops are generic, so compiled where they are
/// used): with 500 such pipelines, rayon's plumbing was nearly half of the
/// code the test binaries compiled. Behind `dyn`, each element type has one.
/// A call through `dyn` per piece of thousands of elements costs nothing
/// measurable.
pub(crate) fn for_each_chunk<T: Send>(out: &mut [T], chunk: usize, task: &(dyn Fn(usize, &mut [T]) + Sync)) {
    out.par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, piece)| task(i, piece));
}

/// `task(i)` for `i` in `0..n` on rayon's workers, the results in order: the
/// reductions' partial sums (one rayon pipeline per result type; see
/// [`for_each_chunk`]).
pub(crate) fn map_tasks<R: Send>(n: usize, task: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    (0..n).into_par_iter().map(task).collect()
}

/// `out[i] = f(src[i])`, in parallel above the threshold.
pub(crate) fn map_into<T: Element>(src: &[T], out: &mut [T], f: impl Fn(T) -> T + Sync) {
    if src.len() >= parallel_threshold() {
        for_each_chunk(out, CHUNK, &|i, o| map_wide(&src[i * CHUNK..][..o.len()], o, &f));
    } else {
        map_wide(src, out, &f);
    }
}

/// `out[i] = f(a[i], b[i])` for equal-length slices, parallel above the
/// threshold.
pub(crate) fn zip_into<T: Element>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    if a.len() >= parallel_threshold() {
        for_each_chunk(out, CHUNK, &|i, o| {
            let at = i * CHUNK..i * CHUNK + o.len();
            zip_wide(&a[at.clone()], &b[at], o, &f)
        });
    } else {
        zip_wide(a, b, out, &f);
    }
}

/// `out[i] = f(a[i], b[i], c[i])` for equal-length slices, parallel above
/// the threshold (a fused op of three tensors).
pub(crate) fn zip3_into<T: Element>(
    a: &[T],
    b: &[T],
    c: &[T],
    out: &mut [T],
    f: impl Fn(T, T, T) -> T + Sync,
) {
    if a.len() >= parallel_threshold() {
        for_each_chunk(out, CHUNK, &|i, o| {
            let at = i * CHUNK..i * CHUNK + o.len();
            zip3_wide(&a[at.clone()], &b[at.clone()], &c[at], o, &f)
        });
    } else {
        zip3_wide(a, b, c, out, &f);
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

mod piecewise;
#[cfg(test)]
mod tests;
mod wide;

pub use piecewise::{clamp, inside, relu, sigmoid, sign, step};
pub(crate) use wide::{map_wide, sum2_wide, update3_wide, zip3_wide, zip_wide};

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

    /// The natural logarithm, `ln x`. Named `log` as in PyTorch and NumPy,
    /// and as `Var::log` is on the tape (in the `gradtape` crate).
    pub fn log(&self) -> Tensor<T> {
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
