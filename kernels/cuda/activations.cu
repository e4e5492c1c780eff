// activations.cu: the fused backward formulas of the unary rules
// (autograd/src/ops/unary.rs) and of sum_squares (autograd/src/ops/reduce.rs).
//
// Each rule's plain backward pass is one pointwise formula of the incoming
// gradient g and one saved tensor (the input x, or the op's output y), both
// of the same shape: out[i] = f(g[i], x[i]). One grid-stride loop, one thread
// per element (the plain subset: see common.cuh). The formulas are written in
// the same order of operations as the CPU rules, so f64 results agree to the
// bit wherever the maths library does.
//
// Entry points: <rule>_f32 / <rule>_f64 (n, g, x, [scalars], out).
// NaN: the masked rules (relu_grad, abs_grad, clamp_grad) are the
// gradient times a mask that is NaN where x is NaN, as the CPU rules and
// the recorded ones (g * step(x), ...) are: NaN in, NaN out, as in IEEE
// arithmetic and PyTorch.
//
// exp_grad (g * y) and log_grad (g / x) are plain mul and div
// (elementwise.cu).

#include "common.cuh"

// d/dx x^p = p x^(p-1):                 g * x^(p-1) * p
template <typename T>
__device__ __forceinline__ T rule_pow_grad(T g, T x, T p) {
    return g * gt_pow(x, p - T(1)) * p;
}

// d/dx sqrt(x) = 1 / (2 sqrt(x)):       g / y * 0.5, y = sqrt(x)
template <typename T>
__device__ __forceinline__ T rule_sqrt_grad(T g, T y) {
    return g / y * T(0.5);
}

// d/dx x^2 = 2x:                        g * x * 2
template <typename T>
__device__ __forceinline__ T rule_square_grad(T g, T x) {
    return g * x * T(2);
}

// d/dx |x| = sign(x), 0 at 0:           g * sign(x)  (NaN where x is NaN)
template <typename T>
__device__ __forceinline__ T rule_abs_grad(T g, T x) {
    return g * sign_of(x);
}
// d/dx sigmoid(x) = s (1 - s):          g * (s * (1 - s)), s the output
template <typename T>
__device__ __forceinline__ T rule_sigmoid_grad(T g, T s) {
    return g * (s * (T(1) - s));
}

// d/dx tanh(x) = 1 - t^2:               g * (1 - t * t), t the output
template <typename T>
__device__ __forceinline__ T rule_tanh_grad(T g, T t) {
    return g * (T(1) - t * t);
}

// d/dx relu(x) = 1 if x > 0 else 0:     g * step(x)  (NaN where x is NaN)
template <typename T>
__device__ __forceinline__ T rule_relu_grad(T g, T x) {
    return g * step_of(x);
}
// d/dx ln(1 + e^x) = sigmoid(x):        g * sigmoid(x)
template <typename T>
__device__ __forceinline__ T rule_softplus_grad(T g, T x) {
    return g * sigmoid_of(x);
}

// d/dx clamp(x, lo, hi) = 1 strictly inside (lo, hi), else 0:
//                                       g * inside(x)  (NaN where x is NaN)
template <typename T>
__device__ __forceinline__ T rule_clamp_grad(T g, T x, T lo, T hi) {
    return g * inside_of(x, lo, hi);
}
// d/dx_i sum_j x_j^2 = 2 x_i:           2 * x * g
template <typename T>
__device__ __forceinline__ T rule_sum_squares_grad(T g, T x) {
    return T(2) * x * g;
}

// out[i] = rule_<name>(g[i], x[i])
#define GRAD_KERNEL(name)                                                                                 \
    extern "C" __global__ void name##_f32(long long n, const float* g, const float* x, float* out) {       \
        GRID_STRIDE_LOOP(i, n) out[i] = rule_##name(g[i], x[i]);                                          \
    }                                                                                                     \
    extern "C" __global__ void name##_f64(long long n, const double* g, const double* x, double* out) {    \
        GRID_STRIDE_LOOP(i, n) out[i] = rule_##name(g[i], x[i]);                                          \
    }

GRAD_KERNEL(sqrt_grad)
GRAD_KERNEL(square_grad)
GRAD_KERNEL(abs_grad)
GRAD_KERNEL(sigmoid_grad)
GRAD_KERNEL(tanh_grad)
GRAD_KERNEL(relu_grad)
GRAD_KERNEL(softplus_grad)
GRAD_KERNEL(sum_squares_grad)

// out[i] = rule_pow_grad(g[i], x[i], p)
extern "C" __global__ void pow_grad_f32(long long n, const float* g, const float* x, float p, float* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_pow_grad(g[i], x[i], p);
}
extern "C" __global__ void pow_grad_f64(long long n, const double* g, const double* x, double p, double* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_pow_grad(g[i], x[i], p);
}

// out[i] = rule_clamp_grad(g[i], x[i], lo, hi)
extern "C" __global__ void clamp_grad_f32(long long n, const float* g, const float* x, float lo, float hi,
                                          float* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_clamp_grad(g[i], x[i], lo, hi);
}
extern "C" __global__ void clamp_grad_f64(long long n, const double* g, const double* x, double lo, double hi,
                                          double* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_clamp_grad(g[i], x[i], lo, hi);
}

// The second derivatives of the formulas above, for a formula recorded as a
// node of its own (autograd's Op::Formula, made by a create_graph sweep):
// that node's rule for x is G * d/dx f(g, x), with G the gradient of its
// result. a = G * g first, then the recorded ops the sweep would otherwise
// differentiate, in their order (kernels/src/formula.rs, Formula::dx). The
// masks (abs, relu, clamp) have none: zero almost everywhere.
template <typename T>
__device__ __forceinline__ T rule_pow_grad_dx(T G, T g, T x, T p) {
    const T a = G * g;
    const T q = p - T(1);
    return a * p * (gt_pow(x, q - T(1)) * q);
}
template <typename T>
__device__ __forceinline__ T rule_sqrt_grad_dx(T G, T g, T y) {
    const T a = G * g;
    return -(a * T(0.5) / (y * y));
}
template <typename T>
__device__ __forceinline__ T rule_square_grad_dx(T G, T g, T /* x */) {
    return G * g * T(2);
}
template <typename T>
__device__ __forceinline__ T rule_sigmoid_grad_dx(T G, T g, T s) {
    const T a = G * g;
    return a * (T(1) - s) - a * s;
}
template <typename T>
__device__ __forceinline__ T rule_tanh_grad_dx(T G, T g, T t) {
    return G * g * t * T(-2);
}
template <typename T>
__device__ __forceinline__ T rule_softplus_grad_dx(T G, T g, T x) {
    const T a = G * g;
    const T s = sigmoid_of(x);
    return a * (s * (T(1) - s));
}
template <typename T>
__device__ __forceinline__ T rule_sum_squares_grad_dx(T G, T g, T /* x */) {
    return G * g * T(2);
}

// out[i] = rule_<name>_dx(G[i], g[i], x[i])
#define GRAD_DX_KERNEL(name)                                                                              \
    extern "C" __global__ void name##_dx_f32(long long n, const float* G, const float* g, const float* x,  \
                                             float* out) {                                                \
        GRID_STRIDE_LOOP(i, n) out[i] = rule_##name##_dx(G[i], g[i], x[i]);                               \
    }                                                                                                     \
    extern "C" __global__ void name##_dx_f64(long long n, const double* G, const double* g, const double* x, \
                                             double* out) {                                               \
        GRID_STRIDE_LOOP(i, n) out[i] = rule_##name##_dx(G[i], g[i], x[i]);                               \
    }

GRAD_DX_KERNEL(sqrt_grad)
GRAD_DX_KERNEL(square_grad)
GRAD_DX_KERNEL(sigmoid_grad)
GRAD_DX_KERNEL(tanh_grad)
GRAD_DX_KERNEL(softplus_grad)
GRAD_DX_KERNEL(sum_squares_grad)

// out[i] = rule_pow_grad_dx(G[i], g[i], x[i], p)
extern "C" __global__ void pow_grad_dx_f32(long long n, const float* G, const float* g, const float* x, float p,
                                           float* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_pow_grad_dx(G[i], g[i], x[i], p);
}
extern "C" __global__ void pow_grad_dx_f64(long long n, const double* G, const double* g, const double* x,
                                           double p, double* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = rule_pow_grad_dx(G[i], g[i], x[i], p);
}
