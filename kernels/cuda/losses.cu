// losses.cu: a fused loss's terms summed in one pass, and both inputs'
// gradients in one pass: the GPU side of kernels/src/fused/losses.rs,
// which gives each term as the plain ops it replaces.
//
// `term` selects the loss (LossTerm::code): 0 squared error (a - b)^2,
// 1 binary cross-entropy -(L(1 - a) + b (L(a) - L(1 - a))) with
// L(x) = max(ln max(x, floor), -100), 2 the Gaussian KL term
// -(1 + b - a^2 - e^b) / 2. The forward's partials are combined by the
// whole-tensor reduction tree of reduce.cu (sum_chunks, then
// sum_finish_scaled, which multiplies by the loss's scale).

#include "common.cuh"

// L(x): ln x, its input clamped up to `floor` (e^-101, passed in so that
// both precisions use the host's value) and its output up to -100.
template <typename T>
__device__ __forceinline__ T clamped_log(T x, T floor) {
    const T inner = x < floor ? floor : x;  // NaN stays NaN
    const T l = gt_log(inner);
    return l < T(-100) ? T(-100) : l;
}

// L'(x): 1 / max(x, floor) where x > slope_floor (e^-100, where L starts to
// move: L(x) > -100 there), else 0, NaN at NaN. Read off x, without a log.
template <typename T>
__device__ __forceinline__ T slope(T x, T floor, T slope_floor) {
    const T inner = x < floor ? floor : x;
    return inside_of(x, slope_floor, -neg_infinity<T>()) / inner;
}

template <typename T>
__device__ __forceinline__ T loss_term(int term, T a, T b, T floor) {
    switch (term) {
        case 0: {
            const T d = a - b;
            return d * d;
        }
        case 1: {
            const T lp = clamped_log(a, floor), l1 = clamped_log(T(1) - a, floor);
            return -(l1 + b * (lp - l1));
        }
        default: return (b + T(1) - a * a - gt_exp(b)) * T(-0.5);
    }
}

template <typename T>
__device__ __forceinline__ T loss_grad_a(int term, T c, T a, T b, T floor, T slope_floor) {
    switch (term) {
        case 0: return (a - b) * (c * T(2));
        case 1: return ((T(1) - b) * slope(T(1) - a, floor, slope_floor) - b * slope(a, floor, slope_floor)) * c;
        default: return a * c;
    }
}

template <typename T>
__device__ __forceinline__ T loss_grad_b(int term, T c, T a, T b, T floor) {
    switch (term) {
        case 0: return -((a - b) * (c * T(2)));
        case 1: return (clamped_log(T(1) - a, floor) - clamped_log(a, floor)) * c;
        default: return (gt_exp(b) - T(1)) * T(0.5) * c;
    }
}

// partials[t] = sum of term(a[i], b[i]) over thread t's elements.
template <typename T>
__device__ void loss_sum_partials(long long n, int term, T floor, const T* a, const T* b, T* partials) {
    const long long t = first_index();
    T acc = T(0);
    GRID_STRIDE_LOOP(i, n) acc += loss_term(term, a[i], b[i], floor);
    partials[t] = acc;
}

// da[i], db[i] = d term / da, d term / db at (a[i], b[i]), times
// c = g[0] * scale (g the loss's gradient, one number on the device: read
// here, so the host never waits for it). Only the outputs asked for are
// written (want_a, want_b); an unwanted one may alias the other.
template <typename T>
__device__ void loss_sum_grad(long long n, int term, T scale, T floor, T slope_floor, const T* g, const T* a,
                              const T* b, int want_a, int want_b, T* da, T* db) {
    const T c = g[0] * scale;
    GRID_STRIDE_LOOP(i, n) {
        if (want_a) da[i] = loss_grad_a(term, c, a[i], b[i], floor, slope_floor);
        if (want_b) db[i] = loss_grad_b(term, c, a[i], b[i], floor);
    }
}

#define LOSS_KERNELS(T, suffix)                                                                            \
    extern "C" __global__ void loss_sum_partials_##suffix(long long n, int term, T floor, const T* a,     \
                                                          const T* b, T* partials) {                      \
        loss_sum_partials<T>(n, term, floor, a, b, partials);                                              \
    }                                                                                                      \
    extern "C" __global__ void loss_sum_grad_##suffix(long long n, int term, T scale, T floor,             \
                                                      T slope_floor, const T* g, const T* a, const T* b,  \
                                                      int want_a, int want_b, T* da, T* db) {              \
        loss_sum_grad<T>(n, term, scale, floor, slope_floor, g, a, b, want_a, want_b, da, db);            \
    }

LOSS_KERNELS(float, f32)
LOSS_KERNELS(double, f64)
