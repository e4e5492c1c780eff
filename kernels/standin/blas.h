// blas.h: what the two BLAS stand-ins share (cublas.cpp for cuBLAS,
// cublaslt.cpp for cuBLASLt): the status codes they return, the transpose
// codes, the check that reports and returns, and the set of live objects
// (handles, descriptors) that every call checks its arguments against.

#ifndef GRADTAPE_STANDIN_BLAS_H
#define GRADTAPE_STANDIN_BLAS_H

#include "standin.h"

#include <mutex>
#include <set>

// cublasStatus_t (cuBLAS and cuBLASLt return the same codes).
enum BlasStatus : int {
    STATUS_SUCCESS = 0,
    STATUS_NOT_INITIALIZED = 1,
    STATUS_INVALID_VALUE = 7,
    STATUS_EXECUTION_FAILED = 13,
    STATUS_NOT_SUPPORTED = 15,
};

// cublasOperation_t.
enum BlasOp : int { OP_N = 0, OP_T = 1, OP_C = 2 };

namespace gt {

// The objects made and not yet destroyed, by address: a pointer a caller
// hands back is checked here before it is read.
class LiveSet {
  public:
    void add(const void* x) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_.insert(x);
    }
    bool has(const void* x) {
        std::lock_guard<std::mutex> lock(mutex_);
        return x != nullptr && live_.count(x) == 1;
    }
    // Whether `x` was live (it is not any more).
    bool remove(const void* x) {
        std::lock_guard<std::mutex> lock(mutex_);
        return live_.erase(x) == 1;
    }

  private:
    std::mutex mutex_;
    std::set<const void*> live_;
};

}  // namespace gt

// Unless `cond` holds: report `call` and the formatted message, and return
// `code` from the calling function.
#define REQUIRE(cond, code, call, ...)                 \
    do {                                               \
        if (!(cond)) {                                 \
            gt::report(call, gt::format(__VA_ARGS__)); \
            return code;                               \
        }                                              \
    } while (0)

#endif  // GRADTAPE_STANDIN_BLAS_H
