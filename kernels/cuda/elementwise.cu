// elementwise.cu: unary maps and binary arithmetic, the GPU side of
// kernels/src/elementwise.rs.
//
// Every kernel is one grid-stride loop, one thread per output element (see
// common.cuh for the plain subset all kernels keep to). Each op is a small
// template `op_<name>` with the formula, and a macro stamps out the two
// entry points `<name>_f32` and `<name>_f64` that the runtime loader calls.
//
// Argument order, everywhere: element count, input pointers, scalars,
// output pointer. An output may alias its input (in-place): each element is
// read and written by the same thread.
//
// NaN follows IEEE, as PyTorch does: a NaN input gives a NaN output for
// every op here (relu, clamp, abs, sign, step and inside_mask included), as
// on the CPU.

#include "common.cuh"

// ---- unary, no parameter ----------------------------------------------------

template <typename T>
__device__ __forceinline__ T op_neg(T x) {
    return -x;
}
template <typename T>
__device__ __forceinline__ T op_exp(T x) {
    return gt_exp(x);
}
template <typename T>
__device__ __forceinline__ T op_ln(T x) {
    return gt_log(x);
}
template <typename T>
__device__ __forceinline__ T op_sqrt(T x) {
    return gt_sqrt(x);
}
template <typename T>
__device__ __forceinline__ T op_square(T x) {
    return x * x;
}
template <typename T>
__device__ __forceinline__ T op_abs(T x) {
    return gt_abs(x);
}
// -1, 0 or 1 by the sign of x (0 at +-0, NaN at NaN).
template <typename T>
__device__ __forceinline__ T op_sign(T x) {
    return sign_of(x);
}
template <typename T>
__device__ __forceinline__ T op_sigmoid(T x) {
    return sigmoid_of(x);
}
template <typename T>
__device__ __forceinline__ T op_tanh(T x) {
    return gt_tanh(x);
}
// max(x, 0), NaN for NaN.
template <typename T>
__device__ __forceinline__ T op_relu(T x) {
    if (x > T(0)) return x;
    return is_nan(x) ? x : T(0);
}
// 1 where x > 0, else 0 (the derivative of relu, 0 at the kink), NaN for NaN.
template <typename T>
__device__ __forceinline__ T op_step(T x) {
    return step_of(x);
}
// ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): never overflows, and keeps its
// precision for large negative x.
template <typename T>
__device__ __forceinline__ T op_softplus(T x) {
    return op_relu(x) + gt_log1p(gt_exp(-gt_abs(x)));
}

// out[i] = op_<name>(x[i])
#define UNARY_KERNEL(name)                                                                  \
    extern "C" __global__ void name##_f32(long long n, const float* x, float* out) {        \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i]);                                    \
    }                                                                                       \
    extern "C" __global__ void name##_f64(long long n, const double* x, double* out) {      \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i]);                                    \
    }

UNARY_KERNEL(neg)
UNARY_KERNEL(exp)
UNARY_KERNEL(ln)
UNARY_KERNEL(sqrt)
UNARY_KERNEL(square)
UNARY_KERNEL(abs)
UNARY_KERNEL(sign)
UNARY_KERNEL(sigmoid)
UNARY_KERNEL(tanh)
UNARY_KERNEL(relu)
UNARY_KERNEL(step)
UNARY_KERNEL(softplus)

// ---- unary with scalars -------------------------------------------------------

template <typename T>
__device__ __forceinline__ T op_add_scalar(T x, T s) {
    return x + s;
}
template <typename T>
__device__ __forceinline__ T op_mul_scalar(T x, T s) {
    return x * s;
}
template <typename T>
__device__ __forceinline__ T op_powf(T x, T p) {
    return gt_pow(x, p);
}
// x clamped into [lo, hi]; NaN stays NaN.
template <typename T>
__device__ __forceinline__ T op_clamp(T x, T lo, T hi) {
    if (x < lo) return lo;
    if (x > hi) return hi;
    return x;
}
// 1 where lo < x < hi, else 0 (the derivative of clamp), NaN for NaN.
template <typename T>
__device__ __forceinline__ T op_inside_mask(T x, T lo, T hi) {
    return inside_of(x, lo, hi);
}

// out[i] = op_<name>(x[i], s)
#define SCALAR_KERNEL(name)                                                                   \
    extern "C" __global__ void name##_f32(long long n, const float* x, float s, float* out) {   \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i], s);                                   \
    }                                                                                         \
    extern "C" __global__ void name##_f64(long long n, const double* x, double s, double* out) { \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i], s);                                   \
    }

SCALAR_KERNEL(add_scalar)
SCALAR_KERNEL(mul_scalar)
SCALAR_KERNEL(powf)

// out[i] = op_<name>(x[i], lo, hi)
#define RANGE_KERNEL(name)                                                                             \
    extern "C" __global__ void name##_f32(long long n, const float* x, float lo, float hi, float* out) {   \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i], lo, hi);                                       \
    }                                                                                                  \
    extern "C" __global__ void name##_f64(long long n, const double* x, double lo, double hi, double* out) { \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(x[i], lo, hi);                                       \
    }

RANGE_KERNEL(clamp)
RANGE_KERNEL(inside_mask)

// ---- binary arithmetic ------------------------------------------------------------

template <typename T>
__device__ __forceinline__ T op_add(T a, T b) {
    return a + b;
}
template <typename T>
__device__ __forceinline__ T op_sub(T a, T b) {
    return a - b;
}
template <typename T>
__device__ __forceinline__ T op_mul(T a, T b) {
    return a * b;
}
template <typename T>
__device__ __forceinline__ T op_div(T a, T b) {
    return a / b;
}

// Two kernels per op:
//   <name>_f32(n, a, b, out):           equal shapes, out[i] = a[i] op b[i];
//   <name>_bcast_f32(n, idx, a, b, out): out has shape idx.shape (n elements,
//       row-major) and reads a and b through idx.stride_a and idx.stride_b
//       (0 on the axes they are broadcast along).
#define BINARY_KERNELS_T(name, T, suffix)                                                              \
    extern "C" __global__ void name##_##suffix(long long n, const T* a, const T* b, T* out) {           \
        GRID_STRIDE_LOOP(i, n) out[i] = op_##name(a[i], b[i]);                                         \
    }                                                                                                  \
    extern "C" __global__ void name##_bcast_##suffix(long long n, Strided6 idx, const T* a, const T* b, \
                                                     T* out) {                                         \
        GRID_STRIDE_LOOP(i, n) {                                                                       \
            long long ia, ib;                                                                          \
            strided_offsets(idx, i, &ia, &ib);                                                         \
            out[i] = op_##name(a[ia], b[ib]);                                                          \
        }                                                                                              \
    }
#define BINARY_KERNELS(name)              \
    BINARY_KERNELS_T(name, float, f32)    \
    BINARY_KERNELS_T(name, double, f64)

BINARY_KERNELS(add)
BINARY_KERNELS(sub)
BINARY_KERNELS(mul)
BINARY_KERNELS(div)
