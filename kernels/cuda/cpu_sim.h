// cpu_sim.h: just enough of CUDA for the kernel files to compile as plain
// C++ and run on the CPU (the `kernel-sim` feature of gradtape-kernels).
//
// A "launch" on the CPU is a loop, in Rust (kernels/src/cuda_sim.rs), over
// every (block, thread) pair: it sets gridDim/blockDim once and
// blockIdx/threadIdx before each call, through the C functions defined in
// cpu_sim.cpp, then calls the kernel as an ordinary function. Threads run
// one after another; the plain subset the kernels keep to (no shared
// memory, no synchronisation, no atomics) is what makes that faithful.
//
// The launch variables are thread_local, so Rust tests running in parallel
// threads each simulate their own launch.

#ifndef GRADTAPE_CPU_SIM_H
#define GRADTAPE_CPU_SIM_H

#include <cmath>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};

// Defined once, in cpu_sim.cpp.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

// The maths functions the kernels call, from the C library.
using std::cos;
using std::exp;
using std::fabs;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;

// CUDA's bit casts.
inline float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
inline double __longlong_as_double(long long bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}
// 64-bit product's high word of two 32-bit numbers.
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}

#endif  // GRADTAPE_CPU_SIM_H
