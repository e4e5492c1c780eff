// cublas.cpp: the cuBLAS calls gradtape makes, on the CPU (built as the
// stand-in's libcublas.so, linked against its libcuda.so for memory checks
// and counters).
//
// The matrix products follow cuBLAS's documented definition, not gradtape's
// use of it, so that a wrong argument in kernels/src/cuda/ops.rs gives a
// wrong answer or an error here, as it would on a GPU:
//
//     C = alpha op(A) op(B) + beta C, all column-major,
//
// with op(A) m x k, op(B) k x n, C m x n; element (i, j) of a matrix X with
// leading dimension ldx is X[i + j ldx]; op(X) = X for CUBLAS_OP_N and X^T
// for CUBLAS_OP_T (and X^H = X^T for CUBLAS_OP_C on real numbers). The
// documented checks return CUBLAS_STATUS_INVALID_VALUE: m, n, k or the batch
// count below 0, lda < max(1, m) for op N (max(1, k) for op T), ldb <
// max(1, k) for op N (max(1, n) for op T), ldc < max(1, m). When beta is 0,
// C is not read (a NaN there does not spread). The strided-batched form
// does batch p with A + p strideA, B + p strideB, C + p strideC.
//
// Beyond the definition, the stand-in checks that every matrix it touches
// lies inside a live device allocation, and that a CUDA context is current
// on the calling thread (cuBLAS works in the thread's current context; a
// call from a thread that never bound one is a bug on any device but 0).

#include "blas.h"
#include "gemm.h"

#include <cstring>
#include <vector>

namespace {

struct Handle {
    void* context;  // current when it was created
    void* stream;
};

gt::LiveSet handles;

int need_handle(const char* call, Handle* handle) {
    REQUIRE(handles.has(handle), STATUS_NOT_INITIALIZED, call, "%p is not a live cuBLAS handle", (void*)handle);
    void* current = gt::current_context();
    REQUIRE(current != nullptr, STATUS_EXECUTION_FAILED, call,
            "no CUDA context is current on this thread: bind the device's context before calling cuBLAS");
    REQUIRE(current == handle->context, STATUS_EXECUTION_FAILED, call,
            "the handle was created in another device's context than the one current on this thread");
    return STATUS_SUCCESS;
}

// The stored extent, in elements, of a column-major rows x cols matrix
// with leading dimension ld: the last element is at (rows - 1) + (cols - 1) ld.
long long extent(long long rows, long long cols, long long ld) { return (rows - 1) + (cols - 1) * ld; }

template <typename T>
struct Gemm {
    const char* call;
    int transa, transb;
    long long m, n, k;
    T alpha;
    const T* a;
    long long lda, stride_a;
    const T* b;
    long long ldb, stride_b;
    T beta;
    T* c;
    long long ldc, stride_c;
    long long batches;

    static void run(void* arg) {
        const Gemm& g = *static_cast<const Gemm*>(arg);
        const bool ta = g.transa != OP_N, tb = g.transb != OP_N;
        std::vector<T> sum;
        for (long long p = 0; p < g.batches; ++p) {
            const gt::Operand<T> a{g.a + p * g.stride_a, g.lda, ta}, b{g.b + p * g.stride_b, g.ldb, tb};
            T* c = g.c + p * g.stride_c;
            for (long long j = 0; j < g.n; ++j) {
                gt::product_column(a, b, g.m, g.k, j, sum);
                for (long long i = 0; i < g.m; ++i) {
                    T& out = c[i + j * g.ldc];
                    out = gt::scaled(g.alpha, sum[(std::size_t)i], g.beta, &out);
                }
            }
        }
    }

    int execute(Handle* handle) {
        if (int r = need_handle(call, handle)) return r;
        REQUIRE(transa >= OP_N && transa <= OP_C && transb >= OP_N && transb <= OP_C, STATUS_INVALID_VALUE, call,
                "transa %d / transb %d is not CUBLAS_OP_N, _T or _C", transa, transb);
        REQUIRE(m >= 0 && n >= 0 && k >= 0 && batches >= 0, STATUS_INVALID_VALUE, call,
                "negative size: m %lld, n %lld, k %lld, batchCount %lld", m, n, k, batches);
        const long long a_rows = transa == OP_N ? m : k, a_cols = transa == OP_N ? k : m;
        const long long b_rows = transb == OP_N ? k : n, b_cols = transb == OP_N ? n : k;
        REQUIRE(lda >= (a_rows > 1 ? a_rows : 1), STATUS_INVALID_VALUE, call,
                "lda %lld < max(1, %lld), the rows of A as stored (transa %d, m %lld, k %lld)", lda, a_rows, transa,
                m, k);
        REQUIRE(ldb >= (b_rows > 1 ? b_rows : 1), STATUS_INVALID_VALUE, call,
                "ldb %lld < max(1, %lld), the rows of B as stored (transb %d, k %lld, n %lld)", ldb, b_rows, transb,
                k, n);
        REQUIRE(ldc >= (m > 1 ? m : 1), STATUS_INVALID_VALUE, call, "ldc %lld < max(1, m = %lld)", ldc, m);
        gt::count(gt::BLAS_CALLS);
        gt::Digest d;
        for (long long x : {(long long)transa, (long long)transb, m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c,
                            batches})
            d.value(x);
        d.value(alpha), d.value(beta);
        const unsigned long long values = d.h;
        d.value(a), d.value(b), d.value(c);
        gt::log_call(call, d.h, values);
        if (gt::trace_enabled())
            std::fprintf(stderr, "gt-standin: %s m %lld n %lld k %lld transa %d transb %d batches %lld\n", call, m, n, k,
                         transa, transb, batches);
        if (m == 0 || n == 0 || batches == 0) return STATUS_SUCCESS;
        const bool reads_ab = k > 0 && alpha != T(0);
        for (long long p = 0; p < batches; ++p) {
            auto check = [&](const T* x, long long stride, long long rows, long long cols, long long ld,
                             const char* which) {
                const std::uintptr_t start = (std::uintptr_t)(x + p * stride);
                const std::size_t bytes = (std::size_t)(extent(rows, cols, ld) + 1) * sizeof(T);
                return gt::check_range(start, bytes, call,
                                       gt::format("matrix %s of batch %lld (%lld x %lld, ld %lld)", which, p, rows,
                                                  cols, ld));
            };
            if (reads_ab && (!check(a, stride_a, a_rows, a_cols, lda, "A") ||
                             !check(b, stride_b, b_rows, b_cols, ldb, "B"))) {
                return STATUS_INVALID_VALUE;
            }
            if (!check(c, stride_c, m, n, ldc, "C")) return STATUS_INVALID_VALUE;
        }
        Gemm copy = *this;
        if (!reads_ab) copy.k = 0;
        std::uintptr_t fault = 0;
        if (!gt::run_guarded(&Gemm::run, &copy, &fault)) {
            gt::report(call, gt::format("touched 0x%llx, %s", (unsigned long long)fault,
                                        gt::describe_address(fault).c_str()));
            return STATUS_EXECUTION_FAILED;
        }
        return STATUS_SUCCESS;
    }
};

}  // namespace

GT_EXPORT int cublasCreate_v2(Handle** handle) {
    REQUIRE(handle, STATUS_INVALID_VALUE, "cublasCreate_v2", "null pointer");
    void* current = gt::current_context();
    REQUIRE(current != nullptr, STATUS_NOT_INITIALIZED, "cublasCreate_v2", "no CUDA context is current on this thread");
    Handle* h = new Handle{current, nullptr};
    handles.add(h);
    *handle = h;
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasDestroy_v2(Handle* handle) {
    REQUIRE(handles.remove(handle), STATUS_NOT_INITIALIZED, "cublasDestroy_v2", "%p is not a live handle",
            (void*)handle);
    delete handle;
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasSetStream_v2(Handle* handle, void* stream) {
    REQUIRE(handles.has(handle), STATUS_NOT_INITIALIZED, "cublasSetStream_v2", "%p is not a live handle",
            (void*)handle);
    handle->stream = stream;
    return STATUS_SUCCESS;
}

namespace {
// One gemm entry point's body, for either precision: checks the scalars'
// pointers, then runs the definition above. The plain gemm is the
// strided-batched one with one batch.
template <typename T>
int gemm_entry(const char* call, Handle* handle, int transa, int transb, int m, int n, int k, const T* alpha,
               const T* a, int lda, long long stride_a, const T* b, int ldb, long long stride_b, const T* beta, T* c,
               int ldc, long long stride_c, int batches) {
    REQUIRE(alpha && beta, STATUS_INVALID_VALUE, call, "alpha or beta is null");
    Gemm<T> g{call, transa, transb, m, n, k, *alpha, a, lda, stride_a, b, ldb, stride_b, *beta, c, ldc,
              stride_c, batches};
    return g.execute(handle);
}
}  // namespace

GT_EXPORT int cublasSgemmStridedBatched(Handle* handle, int transa, int transb, int m, int n, int k,
                                        const float* alpha, const float* a, int lda, long long stride_a,
                                        const float* b, int ldb, long long stride_b, const float* beta, float* c,
                                        int ldc, long long stride_c, int batches) {
    return gemm_entry("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                      stride_b, beta, c, ldc, stride_c, batches);
}

GT_EXPORT int cublasDgemmStridedBatched(Handle* handle, int transa, int transb, int m, int n, int k,
                                        const double* alpha, const double* a, int lda, long long stride_a,
                                        const double* b, int ldb, long long stride_b, const double* beta, double* c,
                                        int ldc, long long stride_c, int batches) {
    return gemm_entry("cublasDgemmStridedBatched", handle, transa, transb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                      stride_b, beta, c, ldc, stride_c, batches);
}

GT_EXPORT int cublasSgemm_v2(Handle* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                             const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    return gemm_entry("cublasSgemm_v2", handle, transa, transb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0,
                      1);
}

GT_EXPORT int cublasDgemm_v2(Handle* handle, int transa, int transb, int m, int n, int k, const double* alpha,
                             const double* a, int lda, const double* b, int ldb, const double* beta, double* c,
                             int ldc) {
    return gemm_entry("cublasDgemm_v2", handle, transa, transb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0,
                      1);
}

GT_EXPORT const char* cublasGetStatusName(int status) {
    switch (status) {
        case STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

GT_EXPORT const char* cublasGetStatusString(int status) { return cublasGetStatusName(status); }
