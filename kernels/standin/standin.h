// standin.h: what the parts of the CPU stand-in for the CUDA driver and
// cuBLAS share (kernels/standin/, built by kernels/build.rs under the
// `cuda-standin` feature, loaded only by tests and the counting bench).
//
// The stand-in is a shared library that cudarc opens where it would open
// NVIDIA's libcuda.so (and libcublas.so). Device memory is host memory, a
// device pointer is a host address, and a kernel launch plays the grid on
// the calling CPU thread, running the same kernel source (kernels/cuda/*.cu)
// compiled as C++. It is strict where a GPU is strict, and stricter where
// that names a bug sooner: see memory.cpp and driver.cpp.

#ifndef GRADTAPE_STANDIN_H
#define GRADTAPE_STANDIN_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#define GT_EXPORT extern "C" __attribute__((visibility("default")))
// Shared with the cuBLAS stand-in (libcublas.so links against libcuda.so).
#define GT_SHARED __attribute__((visibility("default")))

namespace gt {

// The CUresult codes the stand-in returns (values from cuda.h).
enum Result : int {
    SUCCESS = 0,
    ERROR_INVALID_VALUE = 1,
    ERROR_OUT_OF_MEMORY = 2,
    ERROR_NOT_INITIALIZED = 3,
    ERROR_INVALID_DEVICE = 101,
    ERROR_INVALID_IMAGE = 200,
    ERROR_INVALID_CONTEXT = 201,
    ERROR_NO_BINARY_FOR_GPU = 209,
    ERROR_INVALID_HANDLE = 400,
    ERROR_NOT_FOUND = 500,
    ERROR_ILLEGAL_ADDRESS = 700,
    ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    ERROR_INVALID_ADDRESS_SPACE = 717,
    ERROR_NOT_SUPPORTED = 801,
    ERROR_UNKNOWN = 999,
};

// Prints "gradtape CUDA stand-in: <call>: <message>" to stderr, so that an
// error code reaching the Rust side always comes with its reason.
GT_SHARED void report(const char* call, const std::string& message);

// printf into a std::string.
GT_SHARED std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// ---- memory (memory.cpp) ----------------------------------------------------

// A new allocation of `bytes` (at least 1) whose last byte sits against an
// inaccessible guard page; 0 when the host is out of memory.
GT_SHARED std::uintptr_t allocate(std::size_t bytes);
// Frees an allocation by its base address: its pages become inaccessible
// and its addresses are never handed out again. Returns false (after a
// report naming `call`) if `base` is not the start of a live allocation.
GT_SHARED bool release(std::uintptr_t base, const char* call);
// Checks that [address, address + bytes) lies inside one live allocation.
// On failure, reports why (outside every allocation, in a freed one, past
// an allocation's end by N bytes) under `call` and `what`, and returns false.
GT_SHARED bool check_range(std::uintptr_t address, std::size_t bytes, const char* call, const std::string& what);
// Says which allocation (live or freed) an address is in or next to, for a
// fault report.
GT_SHARED std::string describe_address(std::uintptr_t address);

// ---- fault capture (memory.cpp) ---------------------------------------------

// Runs `body(arg)` with SIGSEGV/SIGBUS caught on this thread: an access to a
// guard page or a freed allocation ends `body` early and returns false,
// with the faulting address in `*fault`. Faults outside such a call go to
// the handler that was installed before.
GT_SHARED bool run_guarded(void (*body)(void*), void* arg, std::uintptr_t* fault);

// ---- counters (driver.cpp) --------------------------------------------------

enum Counter {
    LAUNCHES,      // cuLaunchKernel
    BLAS_CALLS,    // every cuBLAS gemm
    ALLOCATIONS,   // cuMemAlloc_v2 / cuMemAllocAsync
    FREES,         // cuMemFree_v2 / cuMemFreeAsync
    HOST_TO_DEVICE,
    DEVICE_TO_HOST,
    DEVICE_TO_DEVICE,
    MEMSETS,
    SYNCS,         // cuStreamSynchronize / cuCtxSynchronize / cuEventSynchronize
    COUNTER_COUNT,
};
GT_SHARED void count(Counter which);

// The context current on the calling thread (nullptr if none): cuBLAS and
// function lookups are refused without one, as they must be bound first.
GT_SHARED void* current_context();

// Whether GRADTAPE_STANDIN_TRACE is set (not "0"): then every launch and
// gemm is written to stderr, one line each, to see where a step's calls go.
GT_SHARED bool trace_enabled();

// ---- the call log (driver.cpp) ----------------------------------------------
//
// While a thread's log is on (gt_standin_log(1)), every launch and cuBLAS
// call that thread makes is appended to it: its name and a digest of all it
// was given (grid, block and each argument's value; a gemm's sizes, scalars
// and pointers). Two training steps whose logs are equal made the same calls
// with the same arguments, which is what replaying a step as one CUDA graph
// needs.

// A 64-bit FNV-1a digest, fed value by value.
struct Digest {
    unsigned long long h = 14695981039346656037ull;
    void add(const void* bytes, std::size_t n) {
        const unsigned char* b = static_cast<const unsigned char*>(bytes);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    }
    template <typename T>
    void value(const T& v) {
        add(&v, sizeof v);
    }
};

// Appends a call to the calling thread's log, if it is on: its name, the
// digest of all it was given, and the digest of all but the buffers'
// addresses.
GT_SHARED void log_call(const char* name, unsigned long long digest, unsigned long long values);

}  // namespace gt

#endif  // GRADTAPE_STANDIN_H
