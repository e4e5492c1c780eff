// masks.cu: random masks (dropout, masking noise) and Gaussian draws (a VAE's
// eps), from the counter-based generator in philox.cuh.
//
// Element i depends only on (seed, counter, i): `counter` numbers the calls
// made with one seed (the caller bumps it for every mask it draws), and each
// thread computes its own elements' bits from scratch.
//
// With a `clock` (a training loop's guard: clock[5] is the steps it has
// recorded, kernels/src/guard.rs), the step's number is added here, as
// counter + (clock[5] << STEP_SHIFT): the caller passes the draw's number
// within the step, the same at every step, and the launch's arguments do
// not change from one step to the next (kernels/src/draws.rs). Nothing depends on
// the launch shape, so a mask is the same on any GPU, in the CPU simulation,
// and from kernels/src/philox.rs. One grid-stride loop, one thread per
// element (the plain subset: see common.cuh).

#include "common.cuh"
#include "philox.cuh"

// The counter of a step's draw k is (step << STEP_SHIFT) + k (STEP_SHIFT in
// kernels/src/draws.rs).
#define STEP_SHIFT 20

// The stream a launch draws from: `counter`, plus the step clock's count in
// the high bits when there is one.
__device__ __forceinline__ unsigned long long stream_of(unsigned long long counter, const double* clock) {
    return clock != 0 ? counter + ((unsigned long long)clock[5] << STEP_SHIFT) : counter;
}

// out[i] = 1 with probability threshold / 2^32, else 0: element i's 32
// random bits compared with threshold = round(p * 2^32) (0 never fires,
// 2^32 always does), as kernels/src/tensor.rs's fill_mask does.
template <typename T>
__device__ void bernoulli(long long n, unsigned long long seed, unsigned long long counter, const double* clock,
                          unsigned long long threshold, T* out) {
    counter = stream_of(counter, clock);
    GRID_STRIDE_LOOP(i, n) {
        const unsigned long long bits = philox_bits(seed, counter, (unsigned long long)i);
        out[i] = bits < threshold ? T(1) : T(0);
    }
}

// out[i] = mean + stddev * z_i, z_i standard normal (worked out in double, then
// rounded to T, as Tensor::normal does).
template <typename T>
__device__ void normal(long long n, unsigned long long seed, unsigned long long counter, const double* clock,
                       double mean, double stddev, T* out) {
    counter = stream_of(counter, clock);
    GRID_STRIDE_LOOP(i, n) out[i] = (T)(mean + stddev * philox_normal(seed, counter, (unsigned long long)i));
}

#define MASK_KERNELS(T, suffix)                                                                           \
    extern "C" __global__ void bernoulli_##suffix(long long n, unsigned long long seed,                   \
                                                  unsigned long long counter, const double* clock,        \
                                                  unsigned long long threshold, T* out) {                 \
        bernoulli<T>(n, seed, counter, clock, threshold, out);                                            \
    }                                                                                                     \
    extern "C" __global__ void normal_##suffix(long long n, unsigned long long seed,                      \
                                               unsigned long long counter, const double* clock,           \
                                               double mean, double stddev, T* out) {                      \
        normal<T>(n, seed, counter, clock, mean, stddev, out);                                            \
    }

MASK_KERNELS(float, f32)
MASK_KERNELS(double, f64)
