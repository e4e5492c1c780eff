// shape.cu: kernels that move elements without arithmetic: transpose,
// broadcast_to and strided copies, select/unselect and slice/pad along an
// axis (the GPU side of kernels/src/layout.rs).
//
// One thread per output element, grid-stride loops (the plain subset: see
// common.cuh). Every output is contiguous and row-major; each thread works
// out which input element (if any) its output element comes from. Along an
// axis, tensors are viewed as [outer, axis_len, inner], inner being the
// product of the axes after it.

#include "common.cuh"

// x: [batch, rows, cols] -> out: [batch, cols, rows].
template <typename T>
__device__ void transpose(long long n, long long rows, long long cols, const T* x, T* out) {
    const long long plane = rows * cols;
    GRID_STRIDE_LOOP(o, n) {
        const long long b = o / plane, r = o % plane;
        const long long j = r / rows, i = r % rows;  // out[b, j, i] = x[b, i, j]
        out[o] = x[b * plane + i * cols + j];
    }
}

// out (shape idx.shape, n elements) = x read through idx.stride_a. With
// stride 0 on repeated axes this is broadcast_to; with permuted or stepped
// strides it makes any strided view contiguous.
template <typename T>
__device__ void strided_copy(long long n, Strided6 idx, const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n) {
        long long ia, ib;
        strided_offsets(idx, o, &ia, &ib);
        out[o] = x[ia];
    }
}

// x: [outer, axis_len, inner] -> out: [outer, inner], index `index` of the axis.
template <typename T>
__device__ void select(long long n_out, long long axis_len, long long inner, long long index, const T* x,
                       T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const long long outer_i = o / inner, inner_i = o % inner;
        out[o] = x[(outer_i * axis_len + index) * inner + inner_i];
    }
}

// The inverse of select: x: [outer, inner] -> out: [outer, axis_len, inner],
// x at `index` along the axis, zeros elsewhere.
template <typename T>
__device__ void unselect(long long n_out, long long axis_len, long long inner, long long index, const T* x,
                         T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const long long inner_i = o % inner, k = (o / inner) % axis_len, outer_i = o / (inner * axis_len);
        out[o] = (k == index) ? x[outer_i * inner + inner_i] : T(0);
    }
}

// x: [outer, src_len, inner] -> out: [outer, len, inner], elements
// start .. start + len of the axis.
template <typename T>
__device__ void slice_axis(long long n_out, long long src_len, long long len, long long inner, long long start,
                           const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const long long inner_i = o % inner, k = (o / inner) % len, outer_i = o / (inner * len);
        out[o] = x[(outer_i * src_len + start + k) * inner + inner_i];
    }
}

// The inverse of slice_axis: x: [outer, src_len, inner] -> out:
// [outer, total, inner], x at start .. start + src_len, zeros elsewhere.
template <typename T>
__device__ void pad_axis(long long n_out, long long src_len, long long total, long long inner, long long start,
                         const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const long long inner_i = o % inner, k = (o / inner) % total, outer_i = o / (inner * total);
        const long long from = k - start;
        out[o] = (from >= 0 && from < src_len) ? x[(outer_i * src_len + from) * inner + inner_i] : T(0);
    }
}

// out[r, :] = x[idx[start + r], :] for the n_out = rows * cols elements of
// out: rows of a [N, cols] tensor picked by a list of row numbers on the
// device (a training batch gathered from a data set kept there). The row
// numbers were checked against N on the host.
//
// With a `clock` (a training loop's guard: clock[5] is the steps it has
// recorded, kernels/src/guard.rs), `start` is worked out here instead:
// batch b = clock[5] mod batches starts at b * batch_rows. The launch's
// arguments are then the same at every step of a loop.
template <typename T>
__device__ void gather_rows(long long n_out, long long cols, const long long* idx, long long start,
                            long long batch_rows, long long batches, const double* clock, const T* x, T* out) {
    if (clock != 0) start = ((long long)clock[5] % batches) * batch_rows;
    GRID_STRIDE_LOOP(o, n_out) {
        const long long r = o / cols, j = o % cols;
        out[o] = x[idx[start + r] * cols + j];
    }
}

#define SHAPE_KERNELS(T, suffix)                                                                             \
    extern "C" __global__ void transpose_##suffix(long long n, long long rows, long long cols, const T* x,   \
                                                  T* out) {                                                  \
        transpose<T>(n, rows, cols, x, out);                                                                 \
    }                                                                                                        \
    extern "C" __global__ void strided_copy_##suffix(long long n, Strided6 idx, const T* x, T* out) {        \
        strided_copy<T>(n, idx, x, out);                                                                     \
    }                                                                                                        \
    extern "C" __global__ void broadcast_to_##suffix(long long n, Strided6 idx, const T* x, T* out) {        \
        strided_copy<T>(n, idx, x, out);                                                                     \
    }                                                                                                        \
    extern "C" __global__ void select_##suffix(long long n_out, long long axis_len, long long inner,         \
                                               long long index, const T* x, T* out) {                        \
        select<T>(n_out, axis_len, inner, index, x, out);                                                    \
    }                                                                                                        \
    extern "C" __global__ void unselect_##suffix(long long n_out, long long axis_len, long long inner,       \
                                                 long long index, const T* x, T* out) {                      \
        unselect<T>(n_out, axis_len, inner, index, x, out);                                                  \
    }                                                                                                        \
    extern "C" __global__ void slice_axis_##suffix(long long n_out, long long src_len, long long len,        \
                                                   long long inner, long long start, const T* x, T* out) {   \
        slice_axis<T>(n_out, src_len, len, inner, start, x, out);                                            \
    }                                                                                                        \
    extern "C" __global__ void pad_axis_##suffix(long long n_out, long long src_len, long long total,        \
                                                 long long inner, long long start, const T* x, T* out) {     \
        pad_axis<T>(n_out, src_len, total, inner, start, x, out);                                            \
    }                                                                                                        \
    extern "C" __global__ void gather_rows_##suffix(long long n_out, long long cols, const long long* idx,    \
                                                    long long start, long long batch_rows, long long batches, \
                                                    const double* clock, const T* x, T* out) {               \
        gather_rows<T>(n_out, cols, idx, start, batch_rows, batches, clock, x, out);                         \
    }

SHAPE_KERNELS(float, f32)
SHAPE_KERNELS(double, f64)
