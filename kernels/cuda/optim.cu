// optim.cu: the optimisers' updates, in place, one thread per parameter
// element (the plain subset: see common.cuh). The formulas, and their order
// of operations, are those of models/src/optim/adam.rs and sgd.rs. SGD's
// scalars are passed in rounded to T. Adam's are worked out here, in
// double, from its hyperparameters and the step t (adam_scalars below), by
// the same operations as kernels/src/optim.rs's AdamStep::scalars on the
// host; t comes from the guard's step clock on the device, so a training
// step's launches carry nothing that changes from one step to the next.
//
// The CPU flushes subnormal numbers to zero during these updates (FTZ/DAZ,
// see kernels/src/denormal.rs); the GPU keeps them unless the kernels are
// compiled with --ftz=true. That can move a result only where a moment is
// below 1e-38 (f32), far under anything an update can see.

// Every update takes the training loop's guard (`skip` for SGD, `guard` for
// Adam; loss_guard below, kernels/src/guard.rs): while its [0] is nonzero, a
// loss was not finite and nothing is updated, so the weights stay those of
// before that step without the host waiting to look at the loss. A null
// guard never skips.

#include "common.cuh"

// Whether the update is to be skipped (see above).
__device__ __forceinline__ bool skipped(const double* skip) {
    return skip != 0 && skip[0] != 0.0;
}

// The scalars of Adam's step t, rounded to T (AdamStep::scalars on the
// host): the betas and 1 - beta, eps, the weight decay, and
//   step_size = lr / (1 - beta1^t)      bc2_sqrt = sqrt(1 - beta2^t)
// in double, as PyTorch works them out in Python. beta^t is `pow`: the C
// library's on the CPU (the host's bits exactly), CUDA's on a GPU (within
// 2 units in the last place of the exact power, as PyTorch's capturable
// Adam, which also works its corrections out on the device).
template <typename T>
struct AdamScalars {
    T beta1, keep1, beta2, keep2, eps, step_size, bc2_sqrt, wd;
};

template <typename T>
__device__ __forceinline__ AdamScalars<T> adam_scalars(double lr, double beta1, double beta2, double eps,
                                                       double wd, long long t) {
    AdamScalars<T> s;
    s.beta1 = (T)beta1;
    s.keep1 = (T)(1.0 - beta1);
    s.beta2 = (T)beta2;
    s.keep2 = (T)(1.0 - beta2);
    s.eps = (T)eps;
    s.step_size = (T)(lr / (1.0 - gt_pow(beta1, (double)t)));
    s.bc2_sqrt = (T)gt_sqrt(1.0 - gt_pow(beta2, (double)t));
    s.wd = (T)wd;
    return s;
}

// Adam's step t: `t_base` plus, with a guard, the steps it has recorded
// (guard[5], advanced by loss_guard before each step's update). The host
// passes t_base = t - (the guard's records so far), the same number at
// every step of a loop.
__device__ __forceinline__ long long adam_t(long long t_base, const double* guard) {
    return guard != 0 ? t_base + (long long)guard[5] : t_base;
}

// Adam (with L2 weight decay when `decay` is nonzero), for each element:
//   g <- g + wd p                                   (if decay)
//   m <- beta1 m + (1 - beta1) g
//   v <- beta2 v + (1 - beta2) g^2
//   p <- p - step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t).
template <typename T>
__device__ __forceinline__ void adam_element(long long i, T* p, T* m, T* v, const T* g, const AdamScalars<T>& s,
                                             int decay) {
    const T grad = decay ? g[i] + s.wd * p[i] : g[i];
    const T m_new = s.beta1 * m[i] + s.keep1 * grad;
    const T v_new = s.beta2 * v[i] + s.keep2 * grad * grad;
    m[i] = m_new;
    v[i] = v_new;
    p[i] = p[i] - s.step_size * (m_new / (gt_sqrt(v_new) / s.bc2_sqrt + s.eps));
}

template <typename T>
__device__ void adam(long long n, T* p, T* m, T* v, const T* g, double lr, double beta1, double beta2, double eps,
                     double wd, int decay, long long t_base, const double* guard) {
    if (skipped(guard)) return;
    const AdamScalars<T> s = adam_scalars<T>(lr, beta1, beta2, eps, wd, adam_t(t_base, guard));
    GRID_STRIDE_LOOP(i, n) adam_element(i, p, m, v, g, s, decay);
}

// Adam for every parameter of a model in one launch (a multi-tensor
// update). `table` holds `count` rows of five 64-bit words, one row per
// parameter: its length n, then the device addresses of p, m, v and g.
// Element i of the `total` elements of all parameters together belongs to
// the first parameter whose running length passes it; each element gets
// exactly the update `adam` gives it.
template <typename T>
__device__ void adam_multi(long long count, long long total, const unsigned long long* table, double lr,
                           double beta1, double beta2, double eps, double wd, int decay, long long t_base,
                           const double* guard) {
    if (skipped(guard)) return;
    const AdamScalars<T> s = adam_scalars<T>(lr, beta1, beta2, eps, wd, adam_t(t_base, guard));
    GRID_STRIDE_LOOP(i, total) {
        long long k = 0, start = 0;
        while (k + 1 < count && i >= start + (long long)table[5 * k]) {
            start += (long long)table[5 * k];
            ++k;
        }
        const unsigned long long* row = table + 5 * k;
        adam_element(i - start, (T*)row[1], (T*)row[2], (T*)row[3], (const T*)row[4], s, decay);
    }
}

// Plain SGD (no momentum), for each element:
//   p <- p - lr (g + wd p)     (g alone if not decay)
template <typename T>
__device__ void sgd(long long n, T* p, const T* g, T lr, T wd, int decay, const double* skip) {
    if (skipped(skip)) return;
    GRID_STRIDE_LOOP(i, n) {
        const T grad = decay ? g[i] + wd * p[i] : g[i];
        p[i] = p[i] - lr * grad;
    }
}

// SGD with momentum, as torch.optim.SGD, for each element:
//   g   <- g + wd p                                   (if decay)
//   buf <- g                                          (first step)
//   buf <- momentum buf + (1 - dampening) g           (later steps)
//   d   <- g + momentum buf  (nesterov)  or  buf      (otherwise)
//   p   <- p - lr d
// `keep` is 1 - dampening.
template <typename T>
__device__ void sgd_momentum(long long n, T* p, T* buf, const T* g, T lr, T wd, int decay, T momentum, T keep,
                             int nesterov, int first, const double* skip) {
    if (skipped(skip)) return;
    GRID_STRIDE_LOOP(i, n) {
        const T grad = decay ? g[i] + wd * p[i] : g[i];
        const T b = first ? grad : momentum * buf[i] + keep * grad;
        buf[i] = b;
        const T d = nesterov ? grad + momentum * b : b;
        p[i] = p[i] - lr * d;
    }
}

// The training loop's guard, one thread, after each step's loss (queued,
// so the host never waits for the loss). `state` is six doubles:
//   [0] 0 while every loss so far was finite, then 1 for good (the skip
//       flag the updates above read)
//   [1] the index of the first step whose loss was not finite (-1 before)
//   [2] the sum of loss * weight over the steps before it
//   [3] the sum of their weights (samples)
//   [4] that first non-finite loss
//   [5] how many steps it has recorded: the step clock Adam reads
template <typename T>
__device__ void loss_guard(const T* loss, double* state, double weight) {
    GRID_STRIDE_LOOP(i, 1) {
        if (state[0] == 0.0) {
            const double l = (double)loss[0];
            if (l - l == 0.0) {  // finite: inf - inf and NaN - NaN are NaN
                state[2] += l * weight;
                state[3] += weight;
            } else {
                state[0] = 1.0;
                state[1] = state[5];
                state[4] = l;
            }
        }
        state[5] += 1.0;
    }
}

#define OPTIM_KERNELS(T, suffix)                                                                              \
    extern "C" __global__ void adam_##suffix(long long n, T* p, T* m, T* v, const T* g, double lr, double beta1, \
                                             double beta2, double eps, double wd, int decay, long long t_base, \
                                             const double* guard) {                                           \
        adam<T>(n, p, m, v, g, lr, beta1, beta2, eps, wd, decay, t_base, guard);                              \
    }                                                                                                         \
    extern "C" __global__ void adam_multi_##suffix(long long count, long long total,                         \
                                                   const unsigned long long* table, double lr, double beta1,  \
                                                   double beta2, double eps, double wd, int decay,            \
                                                   long long t_base, const double* guard) {                   \
        adam_multi<T>(count, total, table, lr, beta1, beta2, eps, wd, decay, t_base, guard);                  \
    }                                                                                                         \
    extern "C" __global__ void sgd_##suffix(long long n, T* p, const T* g, T lr, T wd, int decay,             \
                                            const double* skip) {                                             \
        sgd<T>(n, p, g, lr, wd, decay, skip);                                                                 \
    }                                                                                                         \
    extern "C" __global__ void sgd_momentum_##suffix(long long n, T* p, T* buf, const T* g, T lr, T wd,       \
                                                     int decay, T momentum, T keep, int nesterov, int first,  \
                                                     const double* skip) {                                    \
        sgd_momentum<T>(n, p, buf, g, lr, wd, decay, momentum, keep, nesterov, first, skip);                  \
    }                                                                                                         \
    extern "C" __global__ void loss_guard_##suffix(const T* loss, double* state, double weight) {             \
        loss_guard<T>(loss, state, weight);                                                                   \
    }

OPTIM_KERNELS(float, f32)
OPTIM_KERNELS(double, f64)
