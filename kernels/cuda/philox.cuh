// philox.cuh: Philox4x32-10, a counter-based random number generator
// (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011; the Random123 library).
//
// A counter-based generator is a keyed bijection: four 32-bit words of
// counter and two of key go in, four 32-bit words of random bits come out,
// and there is no state. So element i of a mask can be computed by whichever
// thread owns i, from (seed, call counter, i) alone: the same seed gives the
// same bits whatever the launch shape, on the GPU, in the CPU simulation and
// in the Rust reference (kernels/src/philox.rs), which must agree bit for
// bit.
//
// One round: two 32x32 -> 64-bit multiplications, their halves mixed with
// the other two words and the key; the key is bumped by the Weyl constants
// between rounds. Ten rounds.

#ifndef GRADTAPE_PHILOX_CUH
#define GRADTAPE_PHILOX_CUH

#include "common.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // golden ratio
#define PHILOX_W1 0xBB67AE85u  // sqrt(3) - 1

struct Philox4 {
    unsigned int w[4];
};

// Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1).
__device__ __forceinline__ Philox4 philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                                  unsigned int c3, unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        const unsigned int hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    Philox4 out = {{c0, c1, c2, c3}};
    return out;
}

// The block of four words numbered `block` in the stream (seed, counter):
// key = seed, counter words = (block, counter), low words first.
__device__ __forceinline__ Philox4 philox_block(unsigned long long seed, unsigned long long counter,
                                                 unsigned long long block) {
    return philox4x32_10((unsigned int)block, (unsigned int)(block >> 32), (unsigned int)counter,
                         (unsigned int)(counter >> 32), (unsigned int)seed, (unsigned int)(seed >> 32));
}

// The 32 random bits of element i: word i % 4 of block i / 4.
__device__ __forceinline__ unsigned int philox_bits(unsigned long long seed, unsigned long long counter,
                                                    unsigned long long i) {
    const Philox4 b = philox_block(seed, counter, i / 4);
    return b.w[i % 4];
}

// A standard normal draw for element i, from all four words of block i by
// the Box-Muller transform, in double precision:
//   u1 = (top 53 bits of w1:w0 + 1/2) / 2^53   in (0, 1), never 0
//   u2 = (top 53 bits of w3:w2) / 2^53         in [0, 1)
//   z  = sqrt(-2 ln u1) cos(2 pi u2)
__device__ __forceinline__ double philox_normal(unsigned long long seed, unsigned long long counter,
                                                unsigned long long i) {
    const Philox4 b = philox_block(seed, counter, i);
    const double two_pow_minus_53 = 1.0 / 9007199254740992.0;
    const unsigned long long a = (((unsigned long long)b.w[1] << 32) | b.w[0]) >> 11;
    const unsigned long long c = (((unsigned long long)b.w[3] << 32) | b.w[2]) >> 11;
    const double u1 = ((double)a + 0.5) * two_pow_minus_53;
    const double u2 = (double)c * two_pow_minus_53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif  // GRADTAPE_PHILOX_CUH
