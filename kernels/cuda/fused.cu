// fused.cu: a linear layer's bias and activation in one pass, and its
// backward (the activation's derivative and the bias gradient) in one pass:
// the GPU side of kernels/src/fused.rs, which shows each as the plain ops it
// replaces.
//
// `act` selects the activation: 0 identity, 1 ReLU, 2 sigmoid, 3 tanh
// (Act::code in fused.rs). The derivative is taken from the output y, as
// the plain rules do: step(y), y (1 - y), 1 - y^2, 1.

#include "common.cuh"

template <typename T>
__device__ __forceinline__ T activate(int act, T v) {
    switch (act) {
        case 1: return v > T(0) ? v : (is_nan(v) ? v : T(0));
        case 2: return sigmoid_of(v);
        case 3: return gt_tanh(v);
        default: return v;
    }
}

template <typename T>
__device__ __forceinline__ T derivative_from_output(int act, T y) {
    switch (act) {
        case 1: return step_of(y);
        case 2: return y * (T(1) - y);
        case 3: return T(1) - y * y;
        default: return T(1);
    }
}

// out[i] = act(z[i] + b[i % cols]) over n = rows * cols elements.
template <typename T>
__device__ void bias_act(long long n, long long cols, int act, const T* z, const T* b, T* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = activate(act, z[i] + b[i % cols]);
}

// Thread (c, j) of runs * cols: for the rows of run c (chunk_range),
// dz[r, j] = g[r, j] * act'(y[r, j]), and partials[c * cols + j] = the sum
// of those dz in row order. With runs = 1, partials is db itself; otherwise
// sum_strided_finish (reduce.cu) combines the runs in order.
template <typename T>
__device__ void bias_act_grad(long long cols, long long rows, long long runs, int act, const T* g, const T* y,
                              T* dz, T* partials) {
    GRID_STRIDE_LOOP(t, cols * runs) {
        const long long c = t / cols, j = t % cols;
        long long begin, end;
        chunk_range(c, runs, rows, &begin, &end);
        T acc = T(0);
        for (long long r = begin; r < end; ++r) {
            const long long at = r * cols + j;
            const T d = g[at] * derivative_from_output(act, y[at]);
            dz[at] = d;
            acc += d;
        }
        partials[t] = acc;
    }
}

#define FUSED_KERNELS(T, suffix)                                                                           \
    extern "C" __global__ void bias_act_##suffix(long long n, long long cols, int act, const T* z,         \
                                                 const T* b, T* out) {                                     \
        bias_act<T>(n, cols, act, z, b, out);                                                              \
    }                                                                                                      \
    extern "C" __global__ void bias_act_grad_##suffix(long long cols, long long rows, long long runs,      \
                                                      int act, const T* g, const T* y, T* dz,             \
                                                      T* partials) {                                       \
        bias_act_grad<T>(cols, rows, runs, act, g, y, dz, partials);                                       \
    }

FUSED_KERNELS(float, f32)
FUSED_KERNELS(double, f64)

// out = a + b * s, the plain ops' order (b.mul_scalar(s), then add): a loss
// and its weighted penalty in one launch.
template <typename T>
__device__ void add_scaled(long long n, const T* a, const T* b, T s, T* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = a[i] + b[i] * s;
}

#define ADD_SCALED_KERNEL(T, suffix)                                                                       \
    extern "C" __global__ void add_scaled_##suffix(long long n, const T* a, const T* b, T s, T* out) {    \
        add_scaled<T>(n, a, b, s, out);                                                                    \
    }

ADD_SCALED_KERNEL(float, f32)
ADD_SCALED_KERNEL(double, f64)

// The reparameterisation of a Gaussian sample: out = mu + exp(logvar * 0.5)
// * eps, in the plain ops' order (kernels/src/fused.rs), and its rule for
// logvar, d = g * eps * exp(logvar * 0.5) * 0.5, the plain rules' order (mu's
// is g itself).
template <typename T>
__device__ void reparameterize(long long n, const T* mu, const T* logvar, const T* eps, T* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = mu[i] + gt_exp(logvar[i] * T(0.5)) * eps[i];
}

template <typename T>
__device__ void reparameterize_grad(long long n, const T* g, const T* logvar, const T* eps, T* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = g[i] * eps[i] * gt_exp(logvar[i] * T(0.5)) * T(0.5);
}

#define REPARAMETERIZE_KERNELS(T, suffix)                                                                  \
    extern "C" __global__ void reparameterize_##suffix(long long n, const T* mu, const T* logvar,          \
                                                       const T* eps, T* out) {                             \
        reparameterize<T>(n, mu, logvar, eps, out);                                                        \
    }                                                                                                      \
    extern "C" __global__ void reparameterize_grad_##suffix(long long n, const T* g, const T* logvar,      \
                                                            const T* eps, T* out) {                        \
        reparameterize_grad<T>(n, g, logvar, eps, out);                                                    \
    }

REPARAMETERIZE_KERNELS(float, f32)
REPARAMETERIZE_KERNELS(double, f64)

// The rule of the L2 norm y = sqrt(sum x^2), from its gradient g (one
// number, read here on the device): out[i] = 2 * x[i] * (g / y * 0.5), the
// plain rules of sqrt and sum_squares in their order.
template <typename T>
__device__ void norm_grad(long long n, const T* x, const T* g, const T* y, T* out) {
    const T s = g[0] / y[0] * T(0.5);
    GRID_STRIDE_LOOP(i, n) out[i] = T(2) * x[i] * s;
}

#define NORM_KERNELS(T, suffix)                                                                            \
    extern "C" __global__ void norm_grad_##suffix(long long n, const T* x, const T* g, const T* y, T* out) { \
        norm_grad<T>(n, x, g, y, out);                                                                     \
    }

NORM_KERNELS(float, f32)
NORM_KERNELS(double, f64)

// The squared Frobenius norm of H outer products, scale * sum_l (sum_i
// d[l,i]^2) (sum_c b[l,c]^2), d [H, m] and b [H, K] (the rows of a layer's
// Jacobian kept as factors: autograd's JacobianRows). Three launches: the
// rows' sums of squares in chunks, then each row's two sums (kept for the
// rule) and one partial per thread of their products, then the
// whole-tensor reduction's finish (reduce.cu's sum_finish_scaled).

// Thread t of H * (cd + cb) sums the squares of chunk j = t % (cd + cb) of
// row l = t / (cd + cb): d's row for the first cd chunks, b's after them.
template <typename T>
__device__ void outer_sum_squares_chunks(long long rows, long long m, long long k, long long chunk,
                                         long long cd, long long cb, const T* d, const T* b, T* out) {
    GRID_STRIDE_LOOP(t, rows * (cd + cb)) {
        const long long l = t / (cd + cb), j = t % (cd + cb);
        const bool of_d = j < cd;
        const T* row = of_d ? d + l * m : b + l * k;
        const long long len = of_d ? m : k;
        const long long start = (of_d ? j : j - cd) * chunk;
        const long long end = start + chunk < len ? start + chunk : len;
        T acc = T(0);
        for (long long i = start; i < end; ++i) acc += row[i] * row[i];
        out[t] = acc;
    }
}

// sd[l] and sb[l], each row's chunks summed in order, and thread t's
// partial sum of sd[l] * sb[l] over its rows (grid-stride, as sum_partials).
template <typename T>
__device__ void outer_sum_squares_rows(long long rows, long long cd, long long cb, const T* chunks, T* sd, T* sb,
                                       T* partials) {
    const long long t = first_index();
    T acc = T(0);
    GRID_STRIDE_LOOP(l, rows) {
        T a = T(0), c = T(0);
        for (long long j = 0; j < cd; ++j) a += chunks[l * (cd + cb) + j];
        for (long long j = 0; j < cb; ++j) c += chunks[l * (cd + cb) + cd + j];
        sd[l] = a;
        sb[l] = c;
        acc += a * c;
    }
    partials[t] = acc;
}

// Its rule, for one factor x ([H, cols]) from the gradient g (one number,
// read here) and the other factor's row sums: out[l, i] = g scale
// other_rows[l] x[l, i] 2, the plain rules of mul_scalar, sum, mul, sum_axis
// and square in their order.
template <typename T>
__device__ void outer_sum_squares_grad(long long n, long long cols, T scale, const T* g, const T* x,
                                       const T* other_rows, T* out) {
    const T s = g[0] * scale;
    GRID_STRIDE_LOOP(i, n) out[i] = s * other_rows[i / cols] * x[i] * T(2);
}

#define OUTER_SUM_SQUARES_KERNELS(T, suffix)                                                               \
    extern "C" __global__ void outer_sum_squares_chunks_##suffix(long long rows, long long m, long long k,  \
                                                                 long long chunk, long long cd,            \
                                                                 long long cb, const T* d, const T* b,     \
                                                                 T* out) {                                 \
        outer_sum_squares_chunks<T>(rows, m, k, chunk, cd, cb, d, b, out);                                 \
    }                                                                                                      \
    extern "C" __global__ void outer_sum_squares_rows_##suffix(long long rows, long long cd, long long cb,   \
                                                               const T* chunks, T* sd, T* sb, T* partials) { \
        outer_sum_squares_rows<T>(rows, cd, cb, chunks, sd, sb, partials);                                 \
    }                                                                                                      \
    extern "C" __global__ void outer_sum_squares_grad_##suffix(long long n, long long cols, T scale,         \
                                                               const T* g, const T* x, const T* other_rows, \
                                                               T* out) {                                   \
        outer_sum_squares_grad<T>(n, cols, scale, g, x, other_rows, out);                                  \
    }

OUTER_SUM_SQUARES_KERNELS(float, f32)
OUTER_SUM_SQUARES_KERNELS(double, f64)
