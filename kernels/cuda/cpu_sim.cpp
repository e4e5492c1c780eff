// cpu_sim.cpp: the launch variables of cpu_sim.h, and the two C functions
// through which the Rust simulation sets them (kernels/src/cuda_sim.rs).

#include "cpu_sim.h"

thread_local uint3 threadIdx = {0, 0, 0};
thread_local uint3 blockIdx = {0, 0, 0};
thread_local dim3 blockDim = {1, 1, 1};
thread_local dim3 gridDim = {1, 1, 1};

// Starts a launch of `grid` blocks of `block` threads (x only).
extern "C" void gt_sim_set_launch(unsigned int grid, unsigned int block) {
    gridDim = dim3{grid, 1, 1};
    blockDim = dim3{block, 1, 1};
}

// Makes the calling thread act as thread `thread` of block `block`.
extern "C" void gt_sim_set_thread(unsigned int block, unsigned int thread) {
    blockIdx = uint3{block, 0, 0};
    threadIdx = uint3{thread, 0, 0};
}
