// masks.cu: random masks (dropout, masking noise) and Gaussian draws (a VAE's
// eps), from the counter-based generator in philox.cuh.
//
// Element i depends only on (seed, counter, i): `counter` numbers the calls
// made with one seed (the caller bumps it for every mask it draws), and each
// thread computes its own elements' bits from scratch. Nothing depends on
// the launch shape, so a mask is the same on any GPU, in the CPU simulation,
// and from kernels/src/philox.rs. One grid-stride loop, one thread per
// element (the plain subset: see common.cuh).

#include "common.cuh"
#include "philox.cuh"

// out[i] = 1 with probability threshold / 2^32, else 0: element i's 32
// random bits compared with threshold = round(p * 2^32) (0 never fires,
// 2^32 always does), as kernels/src/tensor.rs's fill_mask does.
template <typename T>
__device__ void bernoulli(long long n, unsigned long long seed, unsigned long long counter,
                          unsigned long long threshold, T* out) {
    GRID_STRIDE_LOOP(i, n) {
        const unsigned long long bits = philox_bits(seed, counter, (unsigned long long)i);
        out[i] = bits < threshold ? T(1) : T(0);
    }
}

// out[i] = mean + stddev * z_i, z_i standard normal (worked out in double, then
// rounded to T, as Tensor::normal does).
template <typename T>
__device__ void normal(long long n, unsigned long long seed, unsigned long long counter, double mean, double stddev,
                       T* out) {
    GRID_STRIDE_LOOP(i, n) out[i] = (T)(mean + stddev * philox_normal(seed, counter, (unsigned long long)i));
}

#define MASK_KERNELS(T, suffix)                                                                           \
    extern "C" __global__ void bernoulli_##suffix(long long n, unsigned long long seed,                   \
                                                  unsigned long long counter, unsigned long long threshold, \
                                                  T* out) {                                               \
        bernoulli<T>(n, seed, counter, threshold, out);                                                   \
    }                                                                                                     \
    extern "C" __global__ void normal_##suffix(long long n, unsigned long long seed,                      \
                                               unsigned long long counter, double mean, double stddev, T* out) { \
        normal<T>(n, seed, counter, mean, stddev, out);                                                      \
    }

MASK_KERNELS(float, f32)
MASK_KERNELS(double, f64)
