//! The GPU side of the reductions: whole-tensor sums and maxima (a tree of
//! partial results), reductions along an axis, the first-maximum mask, and
//! `sum_to` (the adjoint of a broadcast), each with enough threads for its
//! shape (see `kernels/cuda/reduce.cu`). Part of [`super`]: the same three
//! steps, take a buffer, queue a kernel, wrap the buffer.

use super::*;

/// Elements per thread that a whole-tensor reduction's first launch aims
/// for, and the most partial results it leaves (256 blocks: about two per
/// multiprocessor of an H100 or H200).
const ELEMENTS_PER_PARTIAL: usize = 32;
const MAX_PARTIALS: usize = 256 * BLOCK as usize;
/// At most this many partials are combined by one thread; more are first
/// combined in runs of this many, level by level.
const FINISH_RUN: usize = 256;

/// A whole-tensor reduction (`sum`, `sum_squares`, `max`) as a 0-d tensor:
/// one partial result per thread of a launch sized to the tensor, then, for
/// more than [`FINISH_RUN`] partials, levels of `sum_chunks`/`max_chunks`
/// that combine runs of them, then one thread that combines the rest in
/// order. A fixed tree for each size, no atomics: the same bits on every
/// run. Up to 8,192 elements this is two launches.
pub fn reduce_all<T: Element>(x: &Tensor<T>, partials_kernel: &str, finish_kernel: &str) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let (cfg, mut partials, parts) = first_level::<T>(gpu, n);
    launch!(gpu, "reduce.cu", kernel_name::<T>(partials_kernel), cfg;
        &(n as i64), buf(x).slice(), partials.slice_mut());
    let (partials, parts) = combine_levels(gpu, finish_kernel == "max_finish", partials, parts);
    let mut out = Buffer::<T>::uninit(gpu, 1);
    launch!(gpu, "reduce.cu", kernel_name::<T>(finish_kernel), launch_for(1);
        &(parts as i64), partials.slice(), out.slice_mut());
    Tensor::from_cuda(Shape::from_slice(&[]), out)
}

/// The first launch of a whole-tensor reduction over `n` elements: its
/// shape, the buffer for its partials (one per thread) and their count.
pub(super) fn first_level<T: Element>(gpu: &Arc<Gpu>, n: usize) -> (LaunchConfig, Buffer<T>, usize) {
    let block = BLOCK as usize;
    let parts = n.div_ceil(ELEMENTS_PER_PARTIAL).next_multiple_of(block).clamp(block, MAX_PARTIALS);
    let cfg = LaunchConfig {
        grid_dim: ((parts / block) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    (cfg, Buffer::<T>::uninit(gpu, parts), parts)
}

/// Combines `parts` partials (sums, or maxima if `max`) in runs of
/// [`FINISH_RUN`], level by level, until at most that many are left for the
/// one thread of the last launch.
pub(super) fn combine_levels<T: Element>(
    gpu: &Arc<Gpu>,
    max: bool,
    mut partials: Buffer<T>,
    mut parts: usize,
) -> (Buffer<T>, usize) {
    let combine = if max { "max_chunks" } else { "sum_chunks" };
    while parts > FINISH_RUN {
        let next = parts.div_ceil(FINISH_RUN);
        let mut level = Buffer::<T>::uninit(gpu, next);
        launch!(gpu, "reduce.cu", kernel_name::<T>(combine), launch_for(next);
            &(next as i64), &(parts as i64), &(FINISH_RUN as i64), partials.slice(), level.slice_mut());
        (partials, parts) = (level, next);
    }
    (partials, parts)
}

/// A reduction of `per` elements into each of `n_out` outputs is split
/// into runs when `per` is at least this long...
const SPLIT_FROM: usize = 512;
/// ...into runs of about this many elements...
const RUN: usize = 64;
/// ...for about this many threads in all.
const SPLIT_THREADS: usize = 65_536;

/// How many runs each output's `per` elements are split into (1: none).
pub(super) fn runs_for(n_out: usize, per: usize) -> usize {
    if per < SPLIT_FROM {
        return 1;
    }
    per.div_ceil(RUN).min(SPLIT_THREADS.div_ceil(n_out)).max(1)
}

/// The second launch of a split reduction: `out[o]` combines the `runs`
/// partials of output `o` in order (`max`, or the sum divided by
/// `divisor`).
pub(super) fn strided_finish<T: Element>(
    gpu: &Arc<Gpu>,
    max: bool,
    n_out: usize,
    runs: usize,
    divisor: T,
    partials: &Buffer<T>,
    out_shape: Shape,
) -> Tensor<T> {
    let mut out = Buffer::<T>::uninit(gpu, n_out);
    let name = if max { "max_strided_finish" } else { "sum_strided_finish" };
    launch!(gpu, "reduce.cu", kernel_name::<T>(name), launch_for(n_out);
        &(n_out as i64), &(runs as i64), &divisor, partials.slice(), out.slice_mut());
    Tensor::from_cuda(out_shape, out)
}

/// A reduction along `axis` (`sum_axis`, `mean_axis`, `max_axis`) to
/// `out_shape`, one thread per output element.
pub fn reduce_axis<T: Element>(x: &Tensor<T>, axis: usize, name: &str, out_shape: Shape) -> Tensor<T> {
    let gpu = gpu_of(x);
    let (outer, len, inner) = around_axis(x.shape(), axis);
    let n_out = outer * inner;
    let runs = runs_for(n_out, len);
    if n_out > 0 && runs > 1 {
        // Few outputs, long lanes: runs of each lane in parallel, then each
        // output's runs combined in order.
        let max = name == "max_axis";
        let mut partials = Buffer::<T>::uninit(gpu, n_out * runs);
        let chunks = if max { "max_axis_chunks" } else { "sum_axis_chunks" };
        launch!(gpu, "reduce.cu", kernel_name::<T>(chunks), launch_for(n_out * runs);
            &(n_out as i64), &(len as i64), &(inner as i64), &(runs as i64), buf(x).slice(), partials.slice_mut());
        let divisor = if name == "mean_axis" { T::of(len as f64) } else { T::one() };
        return strided_finish(gpu, max, n_out, runs, divisor, &partials, out_shape);
    }
    let mut out = Buffer::<T>::uninit(gpu, n_out);
    if n_out > 0 {
        launch!(gpu, "reduce.cu", kernel_name::<T>(name), launch_for(n_out);
            &(n_out as i64), &(len as i64), &(inner as i64), buf(x).slice(), out.slice_mut());
    }
    Tensor::from_cuda(out_shape, out)
}

/// The one-hot mask of the first maximum, overall or along `axis`.
pub fn max_mask<T: Element>(x: &Tensor<T>, axis: Option<usize>) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n == 0 {
        return Tensor::from_cuda(x.dims(), out);
    }
    match axis {
        Some(axis) => {
            let (outer, len, inner) = around_axis(x.shape(), axis);
            let lanes = outer * inner;
            let runs = runs_for(lanes, len);
            if runs > 1 {
                // Few long lanes: each lane's runs searched in parallel, the
                // runs combined per lane in order, then the mask written one
                // thread per element.
                let mut values = Buffer::<T>::uninit(gpu, lanes * runs);
                let mut indices = Buffer::<i64>::uninit(gpu, lanes * runs);
                launch!(gpu, "reduce.cu", kernel_name::<T>("argmax_axis_chunks"), launch_for(lanes * runs);
                    &(lanes as i64), &(len as i64), &(inner as i64), &(runs as i64), buf(x).slice(),
                    values.slice_mut(), indices.slice_mut());
                let mut at = Buffer::<i64>::uninit(gpu, lanes);
                launch!(gpu, "reduce.cu", kernel_name::<T>("argmax_axis_finish"), launch_for(lanes);
                    &(lanes as i64), &(runs as i64), values.slice(), indices.slice(), at.slice_mut());
                launch!(gpu, "reduce.cu", kernel_name::<T>("one_hot_axis"), launch_for(n);
                    &(n as i64), &(len as i64), &(inner as i64), at.slice(), buf(x).slice(), out.slice_mut());
            } else {
                launch!(gpu, "reduce.cu", kernel_name::<T>("max_mask_axis"), launch_for(lanes);
                    &(lanes as i64), &(len as i64), &(inner as i64), buf(x).slice(), out.slice_mut());
            }
        }
        None => {
            // As a whole-tensor sum: partials sized to the tensor, levels of
            // runs, then one thread (a fixed tree: the same winner every run).
            let (cfg, mut values, mut parts) = first_level::<T>(gpu, n);
            let mut indices = Buffer::<i64>::uninit(gpu, parts);
            launch!(gpu, "reduce.cu", kernel_name::<T>("argmax_partials"), cfg;
                &(n as i64), buf(x).slice(), values.slice_mut(), indices.slice_mut());
            while parts > FINISH_RUN {
                let next = parts.div_ceil(FINISH_RUN);
                let (mut level_values, mut level_indices) =
                    (Buffer::<T>::uninit(gpu, next), Buffer::<i64>::uninit(gpu, next));
                launch!(gpu, "reduce.cu", kernel_name::<T>("argmax_chunks"), launch_for(next);
                    &(next as i64), &(parts as i64), &(FINISH_RUN as i64), values.slice(), indices.slice(),
                    level_values.slice_mut(), level_indices.slice_mut());
                (values, indices, parts) = (level_values, level_indices, next);
            }
            let mut at = Buffer::<i64>::uninit(gpu, 1);
            launch!(gpu, "reduce.cu", kernel_name::<T>("argmax_finish"), launch_for(1);
                &(parts as i64), values.slice(), indices.slice(), at.slice_mut());
            launch!(gpu, "reduce.cu", kernel_name::<T>("one_hot"), launch_for(n);
                &(n as i64), at.slice(), buf(x).slice(), out.slice_mut());
        }
    }
    Tensor::from_cuda(x.dims(), out)
}

/// `sum_to(x, shape)` (with `other = None`) or `mul_sum_to(x, other,
/// shape)`: one thread per output element sums what was broadcast to it.
pub fn sum_to<T: Element>(x: &Tensor<T>, other: Option<&Tensor<T>>, shape: &[usize]) -> Tensor<T> {
    let (gpu, n_out) = (gpu_of(x), numel(shape));
    let runs = if n_out > 0 { runs_for(n_out, x.len() / n_out) } else { 1 };
    if runs > 1 {
        // Few outputs that each sum many elements (a bias gradient over a
        // large batch): runs in parallel, then combined in order.
        let mut partials = Buffer::<T>::uninit(gpu, n_out * runs);
        match other {
            None => {
                let idx = Strided6::sum_to(x.shape(), shape, &[]);
                launch!(gpu, "reduce.cu", kernel_name::<T>("sum_to_chunks"), launch_for(n_out * runs);
                    &(n_out as i64), &(runs as i64), &idx, buf(x).slice(), partials.slice_mut());
            }
            Some(other) => {
                let idx = Strided6::sum_to(x.shape(), shape, other.shape());
                launch!(gpu, "reduce.cu", kernel_name::<T>("mul_sum_to_chunks"), launch_for(n_out * runs);
                    &(n_out as i64), &(runs as i64), &idx, buf(x).slice(), buf(other).slice(),
                    partials.slice_mut());
            }
        }
        return strided_finish(gpu, false, n_out, runs, T::one(), &partials, Shape::from_slice(shape));
    }
    let mut out = Buffer::<T>::uninit(gpu, n_out);
    if n_out > 0 {
        match other {
            None => {
                let idx = Strided6::sum_to(x.shape(), shape, &[]);
                launch!(gpu, "reduce.cu", kernel_name::<T>("sum_to"), launch_for(n_out);
                    &(n_out as i64), &idx, buf(x).slice(), out.slice_mut());
            }
            Some(other) => {
                let idx = Strided6::sum_to(x.shape(), shape, other.shape());
                launch!(gpu, "reduce.cu", kernel_name::<T>("mul_sum_to"), launch_for(n_out);
                    &(n_out as i64), &idx, buf(x).slice(), buf(other).slice(), out.slice_mut());
            }
        }
    }
    Tensor::from_cuda(Shape::from_slice(shape), out)
}
