// driver_memory.cpp: the driver's memory entry points (allocation, copies,
// memsets), on the guarded host memory of memory.cpp. Every pointer is
// checked against the live allocations before it is touched.

#include "driver.h"

#include <cstring>

using namespace gt;

// ---- memory -------------------------------------------------------------------

GT_EXPORT int cuMemGetInfo_v2(std::size_t* free_bytes, std::size_t* total) {
    if (int r = need_context("cuMemGetInfo_v2")) return r;
    REQUIRE(free_bytes && total, ERROR_INVALID_VALUE, "cuMemGetInfo_v2", "null pointer");
    *free_bytes = TOTAL_MEMORY;
    *total = TOTAL_MEMORY;
    return SUCCESS;
}

// Allocations on this thread still to be refused as out of memory
// (gt_standin_fail_next_allocations, for tests of what the caller does then).
thread_local unsigned failing_allocations = 0;

int alloc(const char* call, CUdeviceptr* ptr, std::size_t bytes) {
    REQUIRE(ptr, ERROR_INVALID_VALUE, call, "null pointer");
    REQUIRE(bytes > 0, ERROR_INVALID_VALUE, call, "an allocation of 0 bytes");
    if (failing_allocations > 0) {
        failing_allocations -= 1;
        report(call, format("out of memory for %zu bytes (a test asked for this failure)", bytes));
        return ERROR_OUT_OF_MEMORY;
    }
    const std::uintptr_t base = allocate(bytes);
    REQUIRE(base != 0, ERROR_OUT_OF_MEMORY, call, "out of memory allocating %zu bytes", bytes);
    count(ALLOCATIONS);
    *ptr = base;
    return SUCCESS;
}

GT_EXPORT int cuMemAlloc_v2(CUdeviceptr* ptr, std::size_t bytes) {
    if (int r = need_context("cuMemAlloc_v2")) return r;
    return alloc("cuMemAlloc_v2", ptr, bytes);
}

GT_EXPORT int cuMemAllocAsync(CUdeviceptr* ptr, std::size_t bytes, void* stream) {
    if (int r = need_stream("cuMemAllocAsync", stream)) return r;
    return alloc("cuMemAllocAsync", ptr, bytes);
}

GT_EXPORT int cuMemFree_v2(CUdeviceptr ptr) {
    if (int r = need_context("cuMemFree_v2")) return r;
    if (!release(ptr, "cuMemFree_v2")) return ERROR_INVALID_VALUE;
    count(FREES);
    return SUCCESS;
}

GT_EXPORT int cuMemFreeAsync(CUdeviceptr ptr, void* stream) {
    if (int r = need_stream("cuMemFreeAsync", stream)) return r;
    if (!release(ptr, "cuMemFreeAsync")) return ERROR_INVALID_VALUE;
    count(FREES);
    return SUCCESS;
}

int memset8(const char* call, CUdeviceptr dst, unsigned char value, std::size_t n) {
    if (n == 0) return SUCCESS;
    if (!check_range(dst, n, call, "destination")) return ERROR_INVALID_VALUE;
    std::memset((void*)dst, value, n);
    count(MEMSETS);
    return SUCCESS;
}

GT_EXPORT int cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, std::size_t n) {
    if (int r = need_context("cuMemsetD8_v2")) return r;
    return memset8("cuMemsetD8_v2", dst, value, n);
}

GT_EXPORT int cuMemsetD8Async(CUdeviceptr dst, unsigned char value, std::size_t n, void* stream) {
    if (int r = need_stream("cuMemsetD8Async", stream)) return r;
    return memset8("cuMemsetD8Async", dst, value, n);
}

int copy_htod(const char* call, CUdeviceptr dst, const void* src, std::size_t n) {
    if (n == 0) return SUCCESS;
    REQUIRE(src, ERROR_INVALID_VALUE, call, "null host source");
    if (!check_range(dst, n, call, "destination")) return ERROR_INVALID_VALUE;
    std::memcpy((void*)dst, src, n);
    count(HOST_TO_DEVICE);
    return SUCCESS;
}

int copy_dtoh(const char* call, void* dst, CUdeviceptr src, std::size_t n) {
    if (n == 0) return SUCCESS;
    REQUIRE(dst, ERROR_INVALID_VALUE, call, "null host destination");
    if (!check_range(src, n, call, "source")) return ERROR_INVALID_VALUE;
    std::memcpy(dst, (const void*)src, n);
    count(DEVICE_TO_HOST);
    return SUCCESS;
}

int copy_dtod(const char* call, CUdeviceptr dst, CUdeviceptr src, std::size_t n) {
    if (n == 0) return SUCCESS;
    if (!check_range(src, n, call, "source") || !check_range(dst, n, call, "destination")) {
        return ERROR_INVALID_VALUE;
    }
    std::memmove((void*)dst, (const void*)src, n);
    count(DEVICE_TO_DEVICE);
    return SUCCESS;
}

GT_EXPORT int cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, std::size_t n) {
    if (int r = need_context("cuMemcpyHtoD_v2")) return r;
    return copy_htod("cuMemcpyHtoD_v2", dst, src, n);
}
GT_EXPORT int cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, std::size_t n, void* stream) {
    if (int r = need_stream("cuMemcpyHtoDAsync_v2", stream)) return r;
    return copy_htod("cuMemcpyHtoDAsync_v2", dst, src, n);
}
GT_EXPORT int cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t n) {
    if (int r = need_context("cuMemcpyDtoH_v2")) return r;
    return copy_dtoh("cuMemcpyDtoH_v2", dst, src, n);
}
GT_EXPORT int cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, std::size_t n, void* stream) {
    if (int r = need_stream("cuMemcpyDtoHAsync_v2", stream)) return r;
    return copy_dtoh("cuMemcpyDtoHAsync_v2", dst, src, n);
}
GT_EXPORT int cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t n) {
    if (int r = need_context("cuMemcpyDtoD_v2")) return r;
    return copy_dtod("cuMemcpyDtoD_v2", dst, src, n);
}
GT_EXPORT int cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t n, void* stream) {
    if (int r = need_stream("cuMemcpyDtoDAsync_v2", stream)) return r;
    return copy_dtod("cuMemcpyDtoDAsync_v2", dst, src, n);
}

// Makes the next `count` allocations on the calling thread fail with
// CUDA_ERROR_OUT_OF_MEMORY (the stand-in's memory is the host's, so a test
// cannot fill it the way a GPU's fills).
GT_EXPORT void gt_standin_fail_next_allocations(unsigned count) { failing_allocations = count; }
