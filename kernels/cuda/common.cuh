// common.cuh: what every kernel file shares.
//
// The kernels are written in a plain subset of CUDA C++ so that the same
// source compiles three ways: by NVRTC for the GPU, by nvcc, and by an
// ordinary C++ compiler for the CPU simulation that `cargo test` runs
// (cpu_sim.h supplies threadIdx, blockIdx, ... there). The subset:
//
//   - one thread per output element, walked by a grid-stride loop, so that a
//     launch covers every element exactly once whatever its grid and block;
//   - no shared memory, no __syncthreads, no warp intrinsics, no atomics;
//   - no headers under NVRTC: its maths functions (expf, exp, ...) are
//     built in, and the type-generic wrappers below pick the float or the
//     double one.
//
// Sizes and indices are `long long`: a tensor may hold more than 2^31
// elements, and the Rust side passes lengths as i64.

#ifndef GRADTAPE_COMMON_CUH
#define GRADTAPE_COMMON_CUH

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#include "cpu_sim.h"
#endif

// The most axes a tensor may have (MAX_RANK in kernels/src/shape.rs).
#define MAX_RANK 6

// ---- the grid-stride loop --------------------------------------------------

// This thread's first element: its place in the whole launch.
__device__ __forceinline__ long long first_index() {
    return (long long)blockIdx.x * (long long)blockDim.x + (long long)threadIdx.x;
}

// How far a thread jumps to its next element: the number of threads in the
// launch. Thread t visits t, t + S, t + 2S, ...: every index below n is
// visited by exactly one thread, for any grid and block.
__device__ __forceinline__ long long index_stride() {
    return (long long)gridDim.x * (long long)blockDim.x;
}

#define GRID_STRIDE_LOOP(i, n) for (long long i = first_index(); i < (long long)(n); i += index_stride())

// ---- type-generic maths -----------------------------------------------------
//
// One name for both precisions, so a template body reads like the formula.

__device__ __forceinline__ float gt_exp(float x) { return expf(x); }
__device__ __forceinline__ double gt_exp(double x) { return exp(x); }
__device__ __forceinline__ float gt_log(float x) { return logf(x); }
__device__ __forceinline__ double gt_log(double x) { return log(x); }
__device__ __forceinline__ float gt_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double gt_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float gt_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double gt_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float gt_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double gt_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float gt_pow(float x, float p) { return powf(x, p); }
__device__ __forceinline__ double gt_pow(double x, double p) { return pow(x, p); }
__device__ __forceinline__ float gt_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double gt_abs(double x) { return fabs(x); }

template <typename T>
__device__ __forceinline__ bool is_nan(T x) {
    return x != x;
}

// -infinity, from its bits (no INFINITY macro without headers).
template <typename T>
__device__ __forceinline__ T neg_infinity();
template <>
__device__ __forceinline__ float neg_infinity<float>() {
    return __int_as_float((int)0xff800000u);
}
template <>
__device__ __forceinline__ double neg_infinity<double>() {
    return __longlong_as_double((long long)0xfff0000000000000ull);
}

// max that propagates NaN (IEEE maximum, as PyTorch's max): a NaN on either
// side gives NaN.
template <typename T>
__device__ __forceinline__ T nan_max(T m, T x) {
    return (x > m || is_nan(x)) ? x : m;
}

// The logistic function 1 / (1 + e^-x), stable for both signs: e^-x is only
// taken where it cannot overflow.
template <typename T>
__device__ __forceinline__ T sigmoid_of(T x) {
    if (x >= T(0)) {
        return T(1) / (T(1) + gt_exp(-x));
    }
    const T e = gt_exp(x);
    return e / (T(1) + e);  // also NaN for NaN
}

// ---- masks (the derivatives of the piecewise functions) ---------------------
//
// Each lets NaN through, as kernels/src/elementwise.rs's relu, step, sign
// and inside do: a comparison with NaN is false, so NaN takes the last arm.

// 1 where x > 0, 0 where x <= 0, NaN at NaN.
template <typename T>
__device__ __forceinline__ T step_of(T x) {
    if (x > T(0)) return T(1);
    return is_nan(x) ? x : T(0);
}

// -1, 0 or 1 by the sign of x (0 at +-0), NaN at NaN.
template <typename T>
__device__ __forceinline__ T sign_of(T x) {
    if (x > T(0)) return T(1);
    if (x < T(0)) return T(-1);
    return is_nan(x) ? x : T(0);
}

// 1 strictly inside (lo, hi), 0 at or beyond the bounds, NaN at NaN.
template <typename T>
__device__ __forceinline__ T inside_of(T x, T lo, T hi) {
    if (x > lo && x < hi) return T(1);
    return is_nan(x) ? x : T(0);
}

// ---- strided and broadcast indexing ----------------------------------------
//
// Up to MAX_RANK axes, passed by value. `shape` is the row-major shape being
// walked (usually the output's); `stride_a` and `stride_b` say how far each
// of two operands moves per step along each axis, in elements: 0 on an axis
// the operand is broadcast along (or does not have), its own row-major
// stride otherwise, or anything else for a strided view.
struct Strided6 {
    int rank;
    long long shape[MAX_RANK];
    long long stride_a[MAX_RANK];
    long long stride_b[MAX_RANK];
};

// Where row-major index `i` of `s.shape` lands in operands a and b.
__device__ __forceinline__ void strided_offsets(const Strided6& s, long long i, long long* a, long long* b) {
    long long oa = 0, ob = 0;
    for (int k = s.rank - 1; k >= 0; --k) {
        const long long len = s.shape[k];
        const long long at = i % len;
        i /= len;
        oa += at * s.stride_a[k];
        ob += at * s.stride_b[k];
    }
    *a = oa;
    *b = ob;
}

// ---- runs -----------------------------------------------------------------------

// The run [begin, end) of `len` elements that chunk c of `chunks` takes.
__device__ __forceinline__ void chunk_range(long long c, long long chunks, long long len, long long* begin,
                                            long long* end) {
    const long long per = (len + chunks - 1) / chunks;
    *begin = c * per < len ? c * per : len;
    *end = (c + 1) * per < len ? (c + 1) * per : len;
}

#endif  // GRADTAPE_COMMON_CUH
