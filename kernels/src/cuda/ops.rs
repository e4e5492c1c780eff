//! The GPU side of the tensor ops: each function here is what a
//! [`Tensor`] method runs when its operands live on a CUDA device.
//!
//! Every function follows the same three steps: take an output buffer from
//! the device's pool, queue one kernel from `kernels/cuda/*.cu` on the
//! device's stream (or cuBLAS, for matrix products), and wrap the buffer in
//! a tensor. Nothing waits for the GPU and nothing is copied to the host:
//! only [`Tensor::to_vec`], [`Tensor::item`] and [`Tensor::to_cpu`] do that.
//!
//! Kernels are named `<op>_f32` / `<op>_f64`; the shapes and checks are the
//! CPU methods' own (they run before dispatching here), so this file only
//! translates a shape into the arguments a kernel takes.

use super::buffer::expect_ok;
use super::{Buffer, Gpu};
use crate::cuda_source::Strided6;
use crate::element::Element;
use crate::shape::{numel, Shape};
use crate::tensor::Tensor;
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{GemmConfig, StridedBatchedConfig};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Kernel launches and cuBLAS calls queued so far, on every device: the
/// benchmark reads it before and after a training step to report launches
/// per step (the figure that bounds a small network's speed on a GPU).
static LAUNCHES: AtomicU64 = AtomicU64::new(0);

/// How many kernels and cuBLAS calls this process has queued so far (all
/// devices, all threads). Take the difference of two readings to count
/// the launches of the work between them.
pub fn launches() -> u64 {
    LAUNCHES.load(Ordering::Relaxed)
}

/// Counts one launch (a kernel or a cuBLAS call).
pub(super) fn count_launch() {
    LAUNCHES.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: `Strided6` is `#[repr(C)]` plain data laid out as the kernels'
// `struct Strided6` (see `cuda_source`).
unsafe impl DeviceRepr for Strided6 {}

/// Threads per block for every launch.
const BLOCK: u32 = 256;
/// At most this many blocks: the kernels' grid-stride loops cover the rest.
const MAX_GRID: u32 = 4096;
/// A launch for `n` elements: one thread each, up to [`MAX_GRID`] blocks.
fn launch_for(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_GRID as usize) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// `name_f32` or `name_f64`.
fn kernel_name<T: Element>(name: &str) -> String {
    format!("{name}_{}", T::NAME)
}

/// Queues kernel `$name` from `$file` with launch shape `$cfg` and the
/// given arguments, in order. Each argument is bound to a local first (the
/// builder keeps pointers to them until the launch).
macro_rules! launch {
    ($gpu:expr, $file:expr, $name:expr, $cfg:expr; $($arg:expr),* $(,)?) => {{
        let gpu: &Arc<Gpu> = $gpu;
        let name = $name;
        let func = gpu.function($file, &name);
        let mut builder = gpu.stream.launch_builder(&func);
        launch!(@push builder, gpu, name, $cfg; $($arg),*);
    }};
    (@push $b:ident, $gpu:ident, $name:ident, $cfg:expr; $first:expr $(, $rest:expr)*) => {{
        let value = $first;
        $b.arg(value);
        launch!(@push $b, $gpu, $name, $cfg; $($rest),*);
    }};
    (@push $b:ident, $gpu:ident, $name:ident, $cfg:expr;) => {
        // SAFETY: the arguments match the kernel's signature in
        // kernels/cuda (checked against the CPU kernels by the simulation
        // tests), and every buffer holds the elements the kernel indexes.
        count_launch();
        expect_ok(unsafe { $b.launch($cfg) }, &format!("launch of {}", $name));
        wait_if_debugging($gpu, &$name);
    };
}

/// With [`super::set_sync_every_op`] on, waits for the op just queued, so
/// that a fault is reported here, naming `what`.
pub(super) fn wait_if_debugging(gpu: &Gpu, what: &str) {
    if super::sync_every_op() {
        expect_ok(gpu.stream.synchronize(), &format!("{what} (waited for at once)"));
    }
}

/// A matrix dimension for cuBLAS, which takes `int`: refused with the op's
/// sizes above 2^31 - 1 instead of wrapping.
fn blas_int(value: usize, what: &str, (m, k, n): (usize, usize, usize), batches: usize) -> i32 {
    i32::try_from(value).unwrap_or_else(|_| {
        panic!(
            "matmul on a GPU: {what} = {value} is over cuBLAS's limit of 2^31 - 1 \
             (m {m}, k {k}, n {n}, {batches} batches)"
        )
    })
}

/// The GPU a tensor is on (it must be on one).
fn gpu_of<T: Element>(x: &Tensor<T>) -> &Arc<Gpu> {
    x.cuda_buffer().expect("a GPU tensor").gpu()
}

fn buf<T: Element>(x: &Tensor<T>) -> &Buffer<T> {
    x.cuda_buffer().expect("a GPU tensor")
}

/// `[outer, axis_len, inner]`: the view of a shape that a per-axis kernel
/// takes.
fn around_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (numel(&shape[..axis]), shape[axis], numel(&shape[axis + 1..]))
}

// The op families beside the elementwise, shape and matrix ones below, in
// files of their own (declared after `launch!`, which they use).
mod fused;
mod optim;
mod reduce;
pub use fused::{
    add_scaled, bias_act, bias_act_grad, linear_act, linear_input_grad_through_relu, linear_weight_bias_grad,
    loss_sum, loss_sum_grad, outer_sum_squares, outer_sum_squares_grad, three_inputs,
};
pub use optim::{adam, adam_multi, adam_table_uploads, loss_guard, sgd};
pub use reduce::{max_mask, reduce_all, reduce_axis, sum_to};

/// `out = f(x)` for a named function of one number (`exp`, `relu`, ...).
pub fn unary<T: Element>(x: &Tensor<T>, name: &str) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "elementwise.cu", kernel_name::<T>(name), launch_for(n);
            &(n as i64), buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(x.dims(), out)
}

/// `out = f(x, s)` for a named function with one scalar (`add_scalar`,
/// `mul_scalar`, `powf`).
///
/// A constant that [`full`] shares (a backward sweep's seed of ones) times
/// or plus a number is a constant the host knows: the shared constant of
/// that value, made once, with no launch after the first (so the rule of
/// `loss * lambda` hands `lambda` on without a kernel at every step). The
/// same bits as the kernel: one IEEE product or sum, in `T`. A result of
/// zero takes the kernel (a shared zero would be a memset, and `-0`).
pub fn unary_scalar<T: Element>(x: &Tensor<T>, name: &str, s: T) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let folded = match (constants::value_of(buf(x)), name) {
        (Some(v), "mul_scalar") => Some(v * s),
        (Some(v), "add_scalar") => Some(v + s),
        _ => None,
    };
    if let Some(v) = folded.filter(|&v| v != T::zero()) {
        return full(gpu, &x.dims(), v);
    }
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "elementwise.cu", kernel_name::<T>(name), launch_for(n);
            &(n as i64), buf(x).slice(), &s, out.slice_mut());
    }
    Tensor::from_cuda(x.dims(), out)
}

/// `out = f(x, lo, hi)` (`clamp`, `inside_mask`).
pub fn unary_range<T: Element>(x: &Tensor<T>, name: &str, lo: T, hi: T) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "elementwise.cu", kernel_name::<T>(name), launch_for(n);
            &(n as i64), buf(x).slice(), &lo, &hi, out.slice_mut());
    }
    Tensor::from_cuda(x.dims(), out)
}

/// `out = a op b` (`add`, `sub`, `mul`, `div`) with NumPy broadcasting to
/// `shape` (already checked by the caller).
pub fn binary<T: Element>(a: &Tensor<T>, b: &Tensor<T>, name: &str, shape: Shape) -> Tensor<T> {
    let (gpu, n) = (gpu_of(a), numel(&shape));
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        if a.shape() == b.shape() {
            launch!(gpu, "elementwise.cu", kernel_name::<T>(name), launch_for(n);
                &(n as i64), buf(a).slice(), buf(b).slice(), out.slice_mut());
        } else {
            let idx = Strided6::broadcast(&shape, a.shape(), b.shape());
            launch!(gpu, "elementwise.cu", kernel_name::<T>(&format!("{name}_bcast")), launch_for(n);
                &(n as i64), &idx, buf(a).slice(), buf(b).slice(), out.slice_mut());
        }
    }
    Tensor::from_cuda(shape, out)
}

/// A backward formula `out = f(g, x)` of two same-shaped tensors, by name
/// (`sigmoid_grad`, ...), with its scalar parameters (none, `p`, or
/// `lo, hi`).
pub fn formula<T: Element>(g: &Tensor<T>, x: &Tensor<T>, name: &str, params: &[T]) -> Tensor<T> {
    let (gpu, n) = (gpu_of(g), g.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let (gs, xs, n64) = (buf(g).slice(), buf(x).slice(), n as i64);
        let name = kernel_name::<T>(name);
        match params {
            [] => launch!(gpu, "activations.cu", name, launch_for(n); &n64, gs, xs, out.slice_mut()),
            [p] => launch!(gpu, "activations.cu", name, launch_for(n); &n64, gs, xs, p, out.slice_mut()),
            [lo, hi] => {
                launch!(gpu, "activations.cu", name, launch_for(n); &n64, gs, xs, lo, hi, out.slice_mut())
            }
            _ => unreachable!("formulas take at most two scalars"),
        }
    }
    Tensor::from_cuda(g.dims(), out)
}

/// A formula's derivative in `x` (`<name>_dx` in `activations.cu`, one
/// launch): `out[i] = G[i] g[i] h'(x[i])`, the three of one shape, `params`
/// the formula's scalars (pow's exponent).
pub fn formula_dx<T: Element>(
    big_g: &Tensor<T>,
    g: &Tensor<T>,
    x: &Tensor<T>,
    name: &str,
    params: &[T],
) -> Tensor<T> {
    let (gpu, n) = (gpu_of(big_g), big_g.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let (bs, gs, xs, n64) = (buf(big_g).slice(), buf(g).slice(), buf(x).slice(), n as i64);
        let name = kernel_name::<T>(name);
        match params {
            [] => launch!(gpu, "activations.cu", name, launch_for(n); &n64, bs, gs, xs, out.slice_mut()),
            [p] => launch!(gpu, "activations.cu", name, launch_for(n); &n64, bs, gs, xs, p, out.slice_mut()),
            _ => unreachable!("the formulas with a derivative in x take at most one scalar"),
        }
    }
    Tensor::from_cuda(big_g.dims(), out)
}

/// `x` repeated to `shape` (already checked to be a broadcast of it).
pub fn broadcast_to<T: Element>(x: &Tensor<T>, shape: &[usize]) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), numel(shape));
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let idx = Strided6::broadcast(shape, x.shape(), &[]);
        launch!(gpu, "shape.cu", kernel_name::<T>("broadcast_to"), launch_for(n);
            &(n as i64), &idx, buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(Shape::from_slice(shape), out)
}

/// Where [`gather_rows`] starts in the index: at a row number known on
/// the host, or at the batch a training loop's guard says is next.
pub enum GatherStart<'a> {
    /// At this row number of the index.
    At(usize),
    /// At batch `guard[5] mod batches`, worked out on the device from the
    /// guard's step clock (`crate::guard`).
    Clock {
        /// The guard's six numbers ([`crate::LossGuard::flag`]).
        guard: &'a Tensor<f64>,
        /// The rows of a batch.
        batch_rows: usize,
        /// How many batches the index holds.
        batches: usize,
    },
}

/// Rows of `x` (each `cols` long) picked by `idx` from `start` into a tensor
/// of `shape` (`gather_rows` in `shape.cu`: one launch).
pub fn gather_rows<T: Element>(
    x: &Tensor<T>,
    idx: &Buffer<i64>,
    start: GatherStart,
    cols: usize,
    shape: Shape,
) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), numel(&shape));
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let (start, batch_rows, batches, clock) = match start {
            GatherStart::At(row) => (row, 0, 1, 0u64),
            GatherStart::Clock { guard, batch_rows, batches } => {
                (0, batch_rows, batches, guard_address(gpu, Some(guard)))
            }
        };
        launch!(gpu, "shape.cu", kernel_name::<T>("gather_rows"), launch_for(n);
            &(n as i64), &(cols as i64), idx.slice(), &(start as i64), &(batch_rows as i64), &(batches as i64),
            &clock, buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(shape, out)
}

/// The last two axes swapped.
pub fn transpose<T: Element>(x: &Tensor<T>) -> Tensor<T> {
    let (gpu, n, r) = (gpu_of(x), x.len(), x.rank());
    let (rows, cols) = (x.shape()[r - 2], x.shape()[r - 1]);
    let mut shape = x.dims();
    shape.swap(r - 2, r - 1);
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "shape.cu", kernel_name::<T>("transpose"), launch_for(n);
            &(n as i64), &(rows as i64), &(cols as i64), buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(shape, out)
}

/// `select` (`inverse = false`: drop `axis`, keep `index`) or `unselect`
/// (`inverse = true`: a new axis of `len`, zeros but at `index`).
pub fn select<T: Element>(x: &Tensor<T>, axis: usize, index: usize, len: usize, inverse: bool) -> Tensor<T> {
    let gpu = gpu_of(x);
    let mut shape = x.dims();
    let (inner, name) = if inverse {
        shape.insert(axis, len);
        (numel(&x.shape()[axis..]), "unselect")
    } else {
        shape.remove(axis);
        (numel(&x.shape()[axis + 1..]), "select")
    };
    let n_out = numel(&shape);
    let mut out = Buffer::<T>::uninit(gpu, n_out);
    if n_out > 0 {
        launch!(gpu, "shape.cu", kernel_name::<T>(name), launch_for(n_out);
            &(n_out as i64), &(len as i64), &(inner as i64), &(index as i64), buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(shape, out)
}

/// `slice_axis` (`pad = false`: elements `start..start + len` of `axis`) or
/// `pad_axis` (`pad = true`: `x` at `start` in an axis of length `len`).
pub fn slice_or_pad<T: Element>(
    x: &Tensor<T>,
    axis: usize,
    start: usize,
    len: usize,
    pad: bool,
) -> Tensor<T> {
    let gpu = gpu_of(x);
    let (_, src_len, inner) = around_axis(x.shape(), axis);
    let mut shape = x.dims();
    shape[axis] = len;
    let n_out = numel(&shape);
    let name = if pad { "pad_axis" } else { "slice_axis" };
    let mut out = Buffer::<T>::uninit(gpu, n_out);
    if n_out > 0 {
        launch!(gpu, "shape.cu", kernel_name::<T>(name), launch_for(n_out);
            &(n_out as i64), &(src_len as i64), &(len as i64), &(inner as i64), &(start as i64),
            buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(shape, out)
}

/// A mask of ones (where the element's 32 counter-based random bits fall
/// below `threshold`) and zeros: element `i` depends on `(seed, counter,
/// i)` alone.
pub fn bernoulli<T: Element>(
    gpu: &Arc<Gpu>,
    shape: &[usize],
    (seed, counter, clock): (u64, u64, Option<&Tensor<f64>>),
    threshold: u64,
) -> Tensor<T> {
    let n = numel(shape);
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let clock = guard_address(gpu, clock);
        launch!(gpu, "masks.cu", kernel_name::<T>("bernoulli"), launch_for(n);
            &(n as i64), &seed, &counter, &clock, &threshold, out.slice_mut());
    }
    Tensor::from_cuda(Shape::from_slice(shape), out)
}

/// The device address of a guard's six numbers (see `crate::guard`), for a
/// kernel's `clock` argument or an update's `skip`/`guard`; 0, a null
/// pointer, for none.
fn guard_address(gpu: &Arc<Gpu>, guard: Option<&Tensor<f64>>) -> u64 {
    use cudarc::driver::DevicePtr;
    guard.map_or(0, |state| buf(state).slice().device_ptr(&gpu.stream).0)
}

/// Normal draws `mean + std z` from the same counter-based generator.
pub fn normal<T: Element>(
    gpu: &Arc<Gpu>,
    shape: &[usize],
    (seed, counter, clock): (u64, u64, Option<&Tensor<f64>>),
    mean: f64,
    std: f64,
) -> Tensor<T> {
    let n = numel(shape);
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        let clock = guard_address(gpu, clock);
        launch!(gpu, "masks.cu", kernel_name::<T>("normal"), launch_for(n);
            &(n as i64), &seed, &counter, &clock, &mean, &std, out.slice_mut());
    }
    Tensor::from_cuda(Shape::from_slice(shape), out)
}

/// A constant on the device.
///
/// Zeros are a memset of a fresh buffer. Any other value is `0 * x +
/// value` on one (one launch, no host copy), made once per thread for small
/// lengths and then shared: a backward sweep's seed of ones is asked for at
/// every training step, and a shared buffer is never written in place (a
/// write copies it first), so handing out the same ones again is safe.
pub fn full<T: Element>(gpu: &Arc<Gpu>, shape: &[usize], value: T) -> Tensor<T> {
    let n = numel(shape);
    if value == T::zero() {
        return Tensor::from_cuda(Shape::from_slice(shape), Buffer::zeros(gpu, n));
    }
    let made = || {
        let zeros = Tensor::from_cuda(Shape::from_slice(&[n]), Buffer::<T>::zeros(gpu, n));
        buf(&unary_scalar(&zeros, "add_scalar", value)).clone()
    };
    let buffer =
        if n <= constants::MAX_LEN { constants::shared(gpu.ordinal, n, value, made) } else { made() };
    Tensor::from_cuda(Shape::from_slice(shape), buffer)
}

/// The small constants [`full`] shares, per thread.
mod constants {
    use super::Buffer;
    use crate::element::Element;
    use std::any::{Any, TypeId};
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Constants up to this many elements are shared.
    pub(super) const MAX_LEN: usize = 1 << 16;
    /// At most this many are kept per thread (all are dropped when a new
    /// one would pass it: shapes that vary stop being kept soon).
    const MAX_KEPT: usize = 16;

    /// (device, element type, length, the value's bits).
    type Key = (usize, TypeId, usize, u64);

    thread_local! {
        static KEPT: RefCell<HashMap<Key, Box<dyn Any>>> = RefCell::new(HashMap::new());
    }

    /// The value of every element of `buffer`, if it is one of the
    /// constants kept here (never written in place: the clone kept here
    /// makes a write copy it first).
    pub(super) fn value_of<T: Element>(buffer: &Buffer<T>) -> Option<T> {
        if buffer.len() > MAX_LEN {
            return None;
        }
        KEPT.with(|kept| {
            kept.borrow().iter().find_map(|((.., bits), b)| {
                let same = b.downcast_ref::<Buffer<T>>()?.same_as(buffer);
                same.then(|| T::of(f64::from_bits(*bits)))
            })
        })
    }

    /// The constant `value` of `n` elements on device `ordinal`, from
    /// `make` the first time.
    pub(super) fn shared<T: Element>(
        ordinal: usize,
        n: usize,
        value: T,
        make: impl FnOnce() -> Buffer<T>,
    ) -> Buffer<T> {
        let key = (ordinal, TypeId::of::<T>(), n, value.as_f64().to_bits());
        KEPT.with(|kept| {
            if let Some(b) = kept.borrow().get(&key).and_then(|b| b.downcast_ref::<Buffer<T>>()) {
                return b.clone();
            }
            let b = make();
            let mut kept = kept.borrow_mut();
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
            kept.insert(key, Box::new(b.clone()));
            b
        })
    }
}

/// `op(a) @ op(b)` through cuBLAS, `out_shape` being `batch + [m, n]`
/// (shapes checked by the caller); with `acc`, `acc + op(a) @ op(b)` in
/// `acc`'s buffer (cuBLAS's `beta = 1`; copied first if shared).
///
/// cuBLAS is column-major, and a row-major matrix read column-major is its
/// transpose. So the row-major product `C = op(A) op(B)` is computed as the
/// column-major `C^T = op(B)^T op(A)^T`: the operands swapped, `m` and `n`
/// exchanged, each operand's transpose flag passed through as cuBLAS's own
/// (a transposed operand is never copied). Batch axes go through the
/// strided-batched call, with a stride of 0 for an operand shared by every
/// batch; other broadcasts of the batch axes loop over the batches.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    ta: bool,
    tb: bool,
    (m, k, n): (usize, usize, usize),
    batch: &[usize],
    out_shape: Shape,
    acc: Option<Tensor<T>>,
) -> Tensor<T> {
    let gpu = gpu_of(a);
    // cuBLAS works in the calling thread's current context, which cudarc
    // does not set before a gemm.
    gpu.bind();
    let total = numel(&out_shape);
    if total == 0 || k == 0 {
        // Nothing to multiply: the sum as it was, or an empty or zero product.
        return acc.unwrap_or_else(|| {
            let out = if total == 0 { Buffer::uninit(gpu, 0) } else { Buffer::zeros(gpu, total) };
            Tensor::from_cuda(out_shape, out)
        });
    }
    let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
    let (batch_a, batch_b) = (&a.shape()[..a.rank() - 2], &b.shape()[..b.rank() - 2]);
    let batches = numel(batch);
    // A batch of row-major matrices times one matrix: the batch folds into
    // the rows, one product of batches * m rows.
    let (rows, batches, fold) =
        if !ta && numel(batch_b) == 1 { (batches * m, 1, true) } else { (m, batches, false) };
    let int = |value: usize, what: &str| blas_int(value, what, (m, k, n), batches);
    let gemm = GemmConfig {
        transa: op(tb),
        transb: op(ta),
        m: int(n, "n"),
        n: int(rows, "the rows (batches folded in)"),
        k: int(k, "k"),
        alpha: T::one(),
        lda: int(if tb { k } else { n }, "lda"),
        ldb: int(if ta { m } else { k }, "ldb"),
        beta: if acc.is_some() { T::one() } else { T::zero() },
        ldc: int(n, "ldc"),
    };
    let mut result = match acc {
        Some(acc) => acc,
        None => Tensor::from_cuda(out_shape, Buffer::<T>::uninit(gpu, total)),
    };
    let out = result.cuda_buffer_mut();
    let own_stride = |own: &[usize], len: usize| if numel(own) == 1 { 0 } else { len as i64 };
    let uniform = |own: &[usize]| numel(own) == 1 || own == batch;
    if fold || (uniform(batch_a) && uniform(batch_b)) {
        let cfg = StridedBatchedConfig {
            gemm,
            batch_size: int(batches, "the batch count"),
            stride_a: own_stride(batch_b, k * n),
            stride_b: if fold { 0 } else { own_stride(batch_a, m * k) },
            stride_c: (rows * n) as i64,
        };
        // SAFETY: the strides and leading dimensions describe matrices inside
        // the operands' buffers (shapes checked by Tensor::matmul_t).
        count_launch();
        expect_ok(
            unsafe {
                T::gemm_strided_batched(&gpu.blas, cfg, buf(b).slice(), buf(a).slice(), out.slice_mut())
            },
            "cuBLAS gemm",
        );
        wait_if_debugging(gpu, "cuBLAS gemm");
    } else {
        for i in 0..batches {
            let oa = crate::matmul::batch_offset(i, batch, batch_a, m * k);
            let ob = crate::matmul::batch_offset(i, batch, batch_b, k * n);
            let cfg = StridedBatchedConfig { gemm, batch_size: 1, stride_a: 0, stride_b: 0, stride_c: 0 };
            let (sa, sb) = (buf(a).slice().slice(oa..), buf(b).slice().slice(ob..));
            let mut sc = out.slice_mut().slice_mut(i * m * n..);
            // SAFETY: as above, one batch at a time.
            count_launch();
            expect_ok(unsafe { T::gemm_strided_batched(&gpu.blas, cfg, &sb, &sa, &mut sc) }, "cuBLAS gemm");
            wait_if_debugging(gpu, "cuBLAS gemm");
        }
    }
    result
}
