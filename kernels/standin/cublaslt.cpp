// cublaslt.cpp: the cuBLASLt calls gradtape makes, on the CPU (built as the
// stand-in's libcublasLt.so, linked against its libcuda.so for memory checks
// and counters).
//
// cuBLASLt's matmul is cuBLAS's gemm with an epilogue: a step applied to
// each output as it is written. From NVIDIA's documentation of
// cublasLtMatmul and cublasLtEpilogue_t, with Z = alpha op(A) op(B) + beta C
// (column-major, C not read when beta is 0; D m x n; op(A) m x k, op(B)
// k x n, each operand's stored shape given by its matrix layout):
//
//     DEFAULT   D = Z
//     BIAS      D(i, j) = Z(i, j) + bias[i]              bias: m numbers
//     RELU_BIAS D(i, j) = max(Z(i, j) + bias[i], 0)     the bias first
//     RELU_AUX_BIAS  as RELU_BIAS, and the ReLU's mask into the aux buffer:
//               bit i + j ld of it (byte (i + j ld) / 8, bit (i + j ld) % 8)
//               set where Z(i, j) + bias[i] > 0
//     DRELU_BGRAD  D(i, j) = Z(i, j) if that bit of the aux buffer is set,
//               else 0; bias[i] = sum_j D(i, j)      (m numbers: D's row sums)
//     BGRADA    D = Z, bias[i] = sum_l op(A)(i, l)       over the gemm's k
//     BGRADB    D = Z, bias[j] = sum_l op(B)(l, j)       over the gemm's k
//
// with `bias` at the descriptor's BIAS_POINTER, of D's type, and the aux
// buffer at EPILOGUE_AUX_POINTER with EPILOGUE_AUX_LD, in bits (elements of
// the mask), a multiple of 128 and at least m, as NVIDIA requires. The bit
// order within a byte is the stand-in's (NVIDIA documents the mask as
// opaque: only what its own RELU_AUX writes is read by its DRELU, as
// gradtape does). The other epilogues (GELU and the rest) are refused with
// CUBLAS_STATUS_NOT_SUPPORTED and a report, not computed wrong. Only the
// types gradtape uses are accepted: R_32F with CUBLAS_COMPUTE_32F and R_64F
// with CUBLAS_COMPUTE_64F, host pointer mode, column order, one batch.
//
// As in cublas.cpp, every matrix and the bias must lie inside a live device
// allocation, and a CUDA context must be current on the calling thread.
// cublasLtMatmulAlgoGetHeuristic checks the problem as cublasLtMatmul would
// and offers one algorithm that needs no workspace; cublasLtMatmul takes that
// algorithm or NULL (cuBLASLt's implicit heuristic).

#include "blas.h"
#include "gemm.h"

#include <cstring>

namespace {

// cudaDataType_t, cublasComputeType_t (library_types.h, cublas_api.h).
enum : int { R_32F = 0, R_64F = 1 };
enum : int { COMPUTE_32F = 68, COMPUTE_64F = 70 };

// cublasLtEpilogue_t.
enum : unsigned { EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4, EPILOGUE_RELU_BIAS = 6, EPILOGUE_RELU_AUX_BIAS = 134,
                  EPILOGUE_DRELU_BGRAD = 152, EPILOGUE_BGRADA = 256, EPILOGUE_BGRADB = 512 };

// cublasLtMatmulDescAttributes_t.
enum : int {
    DESC_COMPUTE_TYPE = 0,
    DESC_SCALE_TYPE = 1,
    DESC_POINTER_MODE = 2,
    DESC_TRANSA = 3,
    DESC_TRANSB = 4,
    DESC_TRANSC = 5,
    DESC_EPILOGUE = 7,
    DESC_BIAS_POINTER = 8,
    DESC_EPILOGUE_AUX_POINTER = 11,
    DESC_EPILOGUE_AUX_LD = 12,
    DESC_BIAS_DATA_TYPE = 26,
};

// cublasLtMatrixLayoutAttribute_t.
enum : int { LAYOUT_TYPE = 0, LAYOUT_ORDER = 1, LAYOUT_ROWS = 2, LAYOUT_COLS = 3, LAYOUT_LD = 4,
             LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6 };
enum : int { ORDER_COL = 0 };

// cublasLtMatmulPreferenceAttributes_t.
enum : int { PREF_SEARCH_MODE = 0, PREF_MAX_WORKSPACE_BYTES = 1 };

struct Handle {
    int magic;
};
struct MatmulDesc {
    int compute, scale, pointer_mode = 0, transa = OP_N, transb = OP_N, transc = OP_N;
    unsigned epilogue = EPILOGUE_DEFAULT;
    const void* bias = nullptr;
    int bias_type = -1;  // -1: D's type
    void* aux = nullptr;
    long long aux_ld = 0;  // in bits
};
struct Layout {
    int type;
    unsigned long long rows, cols;
    long long ld;
    int order = ORDER_COL;
    int batches = 1;
    long long batch_stride = 0;
};
struct Preference {
    unsigned long long max_workspace = 0;
};

// The algorithm the heuristic offers: cublasLtMatmulAlgo_t is 8 opaque
// 64-bit words; the stand-in marks its own so that a stray one is caught.
constexpr unsigned long long ALGO_MAGIC = 0x67742d6c742d616cull;  // "gt-lt-al"
struct Algo {
    unsigned long long data[8];
};
struct HeuristicResult {
    Algo algo;
    std::size_t workspace_size;
    int state;
    float waves_count;
    int reserved[4];
};

gt::LiveSet live;  // handles and descriptors not yet destroyed

template <typename X>
X* make() {
    X* x = new X{};
    live.add(x);
    return x;
}

bool is_live(const void* x) {
    return live.has(x);
}

template <typename X>
int destroy(const char* call, X* x) {
    if (x == nullptr) return STATUS_SUCCESS;  // as cuBLASLt: destroying NULL does nothing
    REQUIRE(live.remove(x), STATUS_INVALID_VALUE, call, "%p is not a live object of this kind", (const void*)x);
    delete x;
    return STATUS_SUCCESS;
}

// Reads an attribute's value from (buf, size), checking its size.
template <typename V>
bool read_attr(const char* call, int attr, const void* buf, std::size_t size, V* out) {
    if (buf == nullptr || size != sizeof(V)) {
        gt::report(call, gt::format("attribute %d: %zu bytes at %p, expected %zu", attr, size, buf, sizeof(V)));
        return false;
    }
    std::memcpy(out, buf, sizeof(V));
    return true;
}

const char* epilogue_name(unsigned e) {
    switch (e) {
        case EPILOGUE_DEFAULT: return "DEFAULT";
        case EPILOGUE_BIAS: return "BIAS";
        case EPILOGUE_RELU_BIAS: return "RELU_BIAS";
        case EPILOGUE_RELU_AUX_BIAS: return "RELU_AUX_BIAS";
        case EPILOGUE_DRELU_BGRAD: return "DRELU_BGRAD";
        case EPILOGUE_BGRADA: return "BGRADA";
        case EPILOGUE_BGRADB: return "BGRADB";
        default: return "unsupported";
    }
}

// The problem a descriptor and four layouts describe, checked.
struct Problem {
    int type;
    bool ta, tb;
    long long m, n, k;
    unsigned epilogue;
};

int check_problem(const char* call, const MatmulDesc* d, const Layout* la, const Layout* lb, const Layout* lc,
                  const Layout* ld, Problem* p) {
    REQUIRE(is_live(d), STATUS_INVALID_VALUE, call, "%p is not a live matmul descriptor", (const void*)d);
    for (const Layout* l : {la, lb, lc, ld})
        REQUIRE(is_live(l), STATUS_INVALID_VALUE, call, "%p is not a live matrix layout", (const void*)l);
    const int type = ld->type;
    REQUIRE((type == R_32F && d->compute == COMPUTE_32F) || (type == R_64F && d->compute == COMPUTE_64F),
            STATUS_NOT_SUPPORTED, call,
            "the stand-in does R_32F with CUBLAS_COMPUTE_32F and R_64F with CUBLAS_COMPUTE_64F; got type %d, "
            "compute %d",
            type, d->compute);
    REQUIRE(d->scale == type, STATUS_NOT_SUPPORTED, call, "scale type %d is not D's type %d", d->scale, type);
    for (const Layout* l : {la, lb, lc})
        REQUIRE(l->type == type, STATUS_NOT_SUPPORTED, call, "a layout's type %d is not D's type %d", l->type,
                type);
    REQUIRE(d->pointer_mode == 0, STATUS_NOT_SUPPORTED, call, "pointer mode %d: the stand-in does host scalars only",
            d->pointer_mode);
    REQUIRE(d->transa >= OP_N && d->transa <= OP_C && d->transb >= OP_N && d->transb <= OP_C, STATUS_INVALID_VALUE,
            call, "transa %d / transb %d is not CUBLAS_OP_N, _T or _C", d->transa, d->transb);
    REQUIRE(d->transc == OP_N, STATUS_NOT_SUPPORTED, call, "TRANSC %d: only CUBLAS_OP_N", d->transc);
    for (const Layout* l : {la, lb, lc, ld}) {
        REQUIRE(l->order == ORDER_COL, STATUS_NOT_SUPPORTED, call, "order %d: the stand-in does column order only",
                l->order);
        REQUIRE(l->batches == 1, STATUS_NOT_SUPPORTED, call, "batch count %d: the stand-in does one batch",
                l->batches);
        REQUIRE(l->ld >= (long long)(l->rows > 1 ? l->rows : 1), STATUS_INVALID_VALUE, call,
                "ld %lld < max(1, rows %llu)", l->ld, l->rows);
    }
    const bool ta = d->transa != OP_N, tb = d->transb != OP_N;
    const long long m = (long long)ld->rows, n = (long long)ld->cols;
    const long long k = (long long)(ta ? la->rows : la->cols);
    REQUIRE((long long)(ta ? la->cols : la->rows) == m, STATUS_INVALID_VALUE, call,
            "A is %llu x %llu (transa %d), D has %lld rows", la->rows, la->cols, d->transa, m);
    REQUIRE((long long)(tb ? lb->rows : lb->cols) == n && (long long)(tb ? lb->cols : lb->rows) == k,
            STATUS_INVALID_VALUE, call, "B is %llu x %llu (transb %d); op(B) must be k %lld x n %lld", lb->rows,
            lb->cols, d->transb, k, n);
    REQUIRE(lc->rows == ld->rows && lc->cols == ld->cols, STATUS_INVALID_VALUE, call,
            "C is %llu x %llu, D %llu x %llu", lc->rows, lc->cols, ld->rows, ld->cols);
    const unsigned e = d->epilogue;
    REQUIRE(e == EPILOGUE_DEFAULT || e == EPILOGUE_BIAS || e == EPILOGUE_RELU_BIAS || e == EPILOGUE_RELU_AUX_BIAS ||
                e == EPILOGUE_DRELU_BGRAD || e == EPILOGUE_BGRADA || e == EPILOGUE_BGRADB,
            STATUS_NOT_SUPPORTED, call,
            "epilogue %u: the stand-in does DEFAULT, BIAS, RELU_BIAS, RELU_AUX_BIAS, DRELU_BGRAD, BGRADA and BGRADB",
            e);
    if (e == EPILOGUE_RELU_AUX_BIAS || e == EPILOGUE_DRELU_BGRAD)
        REQUIRE(d->aux_ld % 128 == 0 && d->aux_ld >= (long long)ld->rows, STATUS_INVALID_VALUE, call,
                "EPILOGUE_AUX_LD %lld: must be a multiple of 128 and at least the %llu rows of D", d->aux_ld,
                ld->rows);
    REQUIRE(d->bias_type == -1 || d->bias_type == type, STATUS_NOT_SUPPORTED, call,
            "bias type %d is not D's type %d", d->bias_type, type);
    *p = Problem{type, ta, tb, m, n, k, e};
    return STATUS_SUCCESS;
}

template <typename T>
struct Matmul {
    Problem p;
    T alpha, beta;
    gt::Operand<T> a, b;
    const T* c;
    long long ldc;
    T* d;
    long long ldd;
    T* bias;
    unsigned char* aux;
    long long aux_ld;

    bool mask(long long i, long long j) const {
        const long long bit = i + j * aux_ld;
        return (aux[bit / 8] >> (bit % 8)) & 1;
    }

    static void run(void* arg) {
        const Matmul& g = *static_cast<const Matmul*>(arg);
        const Problem& p = g.p;
        std::vector<T> sum;
        std::vector<T> column((std::size_t)p.m);
        for (long long j = 0; j < p.n; ++j) {
            gt::product_column(g.a, g.b, p.m, p.k, j, sum);
            // D is written after C is read (C may be D).
            for (long long i = 0; i < p.m; ++i)
                column[(std::size_t)i] = gt::scaled(g.alpha, sum[(std::size_t)i], g.beta, g.c + i + j * g.ldc);
            for (long long i = 0; i < p.m; ++i) {
                T z = column[(std::size_t)i];
                if (p.epilogue == EPILOGUE_BIAS) z = z + g.bias[i];
                if (p.epilogue == EPILOGUE_RELU_BIAS || p.epilogue == EPILOGUE_RELU_AUX_BIAS) {
                    z = z + g.bias[i];
                    const bool on = z > T(0);
                    z = on ? z : T(0);
                    if (p.epilogue == EPILOGUE_RELU_AUX_BIAS) {
                        const long long bit = i + j * g.aux_ld;
                        const unsigned char flag = (unsigned char)(1u << (bit % 8));
                        g.aux[bit / 8] = on ? (unsigned char)(g.aux[bit / 8] | flag)
                                            : (unsigned char)(g.aux[bit / 8] & ~flag);
                    }
                }
                if (p.epilogue == EPILOGUE_DRELU_BGRAD && !g.mask(i, j)) z = T(0);
                g.d[i + j * g.ldd] = z;
            }
        }
        if (p.epilogue == EPILOGUE_DRELU_BGRAD) {
            for (long long i = 0; i < p.m; ++i) {
                T s = T(0);
                for (long long j = 0; j < p.n; ++j) s += g.d[i + j * g.ldd];
                g.bias[i] = s;
            }
        }
        if (p.epilogue == EPILOGUE_BGRADA) {
            for (long long i = 0; i < p.m; ++i) {
                T s = T(0);
                for (long long l = 0; l < p.k; ++l) s += g.a.at(i, l);
                g.bias[i] = s;
            }
        }
        if (p.epilogue == EPILOGUE_BGRADB) {
            for (long long j = 0; j < p.n; ++j) {
                T s = T(0);
                for (long long l = 0; l < p.k; ++l) s += g.b.at(l, j);
                g.bias[j] = s;
            }
        }
    }
};

template <typename T>
int execute(const char* call, const MatmulDesc* desc, const Problem& p, const void* alpha, const void* a,
            const Layout* la, const void* b, const Layout* lb, const void* beta, const void* c, const Layout* lc,
            void* d, const Layout* ld) {
    REQUIRE(alpha && beta, STATUS_INVALID_VALUE, call, "alpha or beta is null");
    Matmul<T> g{p,
                *static_cast<const T*>(alpha),
                *static_cast<const T*>(beta),
                {static_cast<const T*>(a), la->ld, p.ta},
                {static_cast<const T*>(b), lb->ld, p.tb},
                static_cast<const T*>(c),
                lc->ld,
                static_cast<T*>(d),
                ld->ld,
                static_cast<T*>(const_cast<void*>(desc->bias)),
                static_cast<unsigned char*>(desc->aux),
                desc->aux_ld};
    const bool uses_bias = p.epilogue != EPILOGUE_DEFAULT;
    REQUIRE(!uses_bias || g.bias != nullptr, STATUS_INVALID_VALUE, call, "epilogue %s needs BIAS_POINTER",
            epilogue_name(p.epilogue));
    gt::count(gt::BLAS_CALLS);
    gt::Digest dg;
    for (long long x : {(long long)p.ta, (long long)p.tb, p.m, p.n, p.k, la->ld, lb->ld, lc->ld, ld->ld,
                        (long long)p.epilogue, desc->aux_ld})
        dg.value(x);
    dg.value(g.alpha), dg.value(g.beta);
    const unsigned long long values = dg.h;
    dg.value(a), dg.value(b), dg.value(c), dg.value(d), dg.value(desc->bias), dg.value(desc->aux);
    gt::log_call(call, dg.h, values);
    if (gt::trace_enabled())
        std::fprintf(stderr, "gt-standin: %s m %lld n %lld k %lld transa %d transb %d epilogue %s\n", call, p.m, p.n,
                     p.k, (int)p.ta, (int)p.tb, epilogue_name(p.epilogue));
    if (p.m == 0 || p.n == 0) return STATUS_SUCCESS;
    auto check = [&](const void* x, long long rows, long long cols, long long ldx, const char* which) {
        const std::size_t bytes = (std::size_t)((rows - 1) + (cols - 1) * ldx + 1) * sizeof(T);
        return gt::check_range((std::uintptr_t)x, bytes, call,
                               gt::format("matrix %s (%lld x %lld, ld %lld)", which, rows, cols, ldx));
    };
    const bool reads_ab = p.k > 0;
    if (reads_ab && (!check(a, (long long)la->rows, (long long)la->cols, la->ld, "A") ||
                     !check(b, (long long)lb->rows, (long long)lb->cols, lb->ld, "B")))
        return STATUS_INVALID_VALUE;
    if (g.beta != T(0) && !check(c, p.m, p.n, lc->ld, "C")) return STATUS_INVALID_VALUE;
    if (!check(d, p.m, p.n, ld->ld, "D")) return STATUS_INVALID_VALUE;
    if (p.epilogue == EPILOGUE_RELU_AUX_BIAS || p.epilogue == EPILOGUE_DRELU_BGRAD) {
        REQUIRE(g.aux != nullptr, STATUS_INVALID_VALUE, call, "epilogue %s needs EPILOGUE_AUX_POINTER",
                epilogue_name(p.epilogue));
        const std::size_t bytes = (std::size_t)((g.aux_ld * (p.n - 1) + p.m + 7) / 8);
        if (!gt::check_range((std::uintptr_t)g.aux, bytes, call,
                             gt::format("the ReLU mask (%lld x %lld bits, ld %lld)", p.m, p.n, g.aux_ld)))
            return STATUS_INVALID_VALUE;
    }
    if (uses_bias) {
        const long long len = p.epilogue == EPILOGUE_BGRADB ? p.n : p.m;
        if (!gt::check_range((std::uintptr_t)g.bias, (std::size_t)len * sizeof(T), call,
                             gt::format("the bias vector (%lld numbers, epilogue %s)", len,
                                        epilogue_name(p.epilogue))))
            return STATUS_INVALID_VALUE;
    }
    if (g.beta == T(0)) g.c = g.d;  // not read
    std::uintptr_t fault = 0;
    if (!gt::run_guarded(&Matmul<T>::run, &g, &fault)) {
        gt::report(call, gt::format("touched 0x%llx, %s", (unsigned long long)fault,
                                    gt::describe_address(fault).c_str()));
        return STATUS_EXECUTION_FAILED;
    }
    return STATUS_SUCCESS;
}

}  // namespace

GT_EXPORT int cublasLtCreate(Handle** handle) {
    REQUIRE(handle, STATUS_INVALID_VALUE, "cublasLtCreate", "null pointer");
    *handle = make<Handle>();
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasLtDestroy(Handle* handle) {
    REQUIRE(handle == nullptr || is_live(handle), STATUS_NOT_INITIALIZED, "cublasLtDestroy",
            "%p is not a live handle", (void*)handle);
    return destroy("cublasLtDestroy", handle);
}

GT_EXPORT int cublasLtMatmulDescCreate(MatmulDesc** desc, int compute, int scale) {
    REQUIRE(desc, STATUS_INVALID_VALUE, "cublasLtMatmulDescCreate", "null pointer");
    MatmulDesc* d = make<MatmulDesc>();
    d->compute = compute;
    d->scale = scale;
    *desc = d;
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasLtMatmulDescDestroy(MatmulDesc* desc) { return destroy("cublasLtMatmulDescDestroy", desc); }

GT_EXPORT int cublasLtMatmulDescSetAttribute(MatmulDesc* desc, int attr, const void* buf, std::size_t size) {
    const char* call = "cublasLtMatmulDescSetAttribute";
    REQUIRE(is_live(desc), STATUS_INVALID_VALUE, call, "%p is not a live matmul descriptor", (void*)desc);
    bool ok = true;
    switch (attr) {
        case DESC_COMPUTE_TYPE: ok = read_attr(call, attr, buf, size, &desc->compute); break;
        case DESC_SCALE_TYPE: ok = read_attr(call, attr, buf, size, &desc->scale); break;
        case DESC_POINTER_MODE: ok = read_attr(call, attr, buf, size, &desc->pointer_mode); break;
        case DESC_TRANSA: ok = read_attr(call, attr, buf, size, &desc->transa); break;
        case DESC_TRANSB: ok = read_attr(call, attr, buf, size, &desc->transb); break;
        case DESC_TRANSC: ok = read_attr(call, attr, buf, size, &desc->transc); break;
        case DESC_EPILOGUE: ok = read_attr(call, attr, buf, size, &desc->epilogue); break;
        case DESC_BIAS_POINTER: ok = read_attr(call, attr, buf, size, &desc->bias); break;
        case DESC_BIAS_DATA_TYPE: ok = read_attr(call, attr, buf, size, &desc->bias_type); break;
        case DESC_EPILOGUE_AUX_POINTER: ok = read_attr(call, attr, buf, size, &desc->aux); break;
        case DESC_EPILOGUE_AUX_LD: ok = read_attr(call, attr, buf, size, &desc->aux_ld); break;
        default:
            gt::report(call, gt::format("attribute %d is not one the stand-in implements", attr));
            return STATUS_NOT_SUPPORTED;
    }
    return ok ? STATUS_SUCCESS : STATUS_INVALID_VALUE;
}

GT_EXPORT int cublasLtMatrixLayoutCreate(Layout** layout, int type, unsigned long long rows, unsigned long long cols,
                                         long long ld) {
    REQUIRE(layout, STATUS_INVALID_VALUE, "cublasLtMatrixLayoutCreate", "null pointer");
    Layout* l = make<Layout>();
    l->type = type, l->rows = rows, l->cols = cols, l->ld = ld;
    *layout = l;
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasLtMatrixLayoutDestroy(Layout* layout) { return destroy("cublasLtMatrixLayoutDestroy", layout); }

GT_EXPORT int cublasLtMatrixLayoutSetAttribute(Layout* layout, int attr, const void* buf, std::size_t size) {
    const char* call = "cublasLtMatrixLayoutSetAttribute";
    REQUIRE(is_live(layout), STATUS_INVALID_VALUE, call, "%p is not a live matrix layout", (void*)layout);
    bool ok = true;
    switch (attr) {
        case LAYOUT_TYPE: ok = read_attr(call, attr, buf, size, &layout->type); break;
        case LAYOUT_ORDER: ok = read_attr(call, attr, buf, size, &layout->order); break;
        case LAYOUT_ROWS: ok = read_attr(call, attr, buf, size, &layout->rows); break;
        case LAYOUT_COLS: ok = read_attr(call, attr, buf, size, &layout->cols); break;
        case LAYOUT_LD: ok = read_attr(call, attr, buf, size, &layout->ld); break;
        case LAYOUT_BATCH_COUNT: ok = read_attr(call, attr, buf, size, &layout->batches); break;
        case LAYOUT_STRIDED_BATCH_OFFSET: ok = read_attr(call, attr, buf, size, &layout->batch_stride); break;
        default:
            gt::report(call, gt::format("attribute %d is not one the stand-in implements", attr));
            return STATUS_NOT_SUPPORTED;
    }
    return ok ? STATUS_SUCCESS : STATUS_INVALID_VALUE;
}

GT_EXPORT int cublasLtMatmulPreferenceCreate(Preference** pref) {
    REQUIRE(pref, STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceCreate", "null pointer");
    *pref = make<Preference>();
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasLtMatmulPreferenceDestroy(Preference* pref) {
    return destroy("cublasLtMatmulPreferenceDestroy", pref);
}

GT_EXPORT int cublasLtMatmulPreferenceSetAttribute(Preference* pref, int attr, const void* buf, std::size_t size) {
    const char* call = "cublasLtMatmulPreferenceSetAttribute";
    REQUIRE(is_live(pref), STATUS_INVALID_VALUE, call, "%p is not a live preference", (void*)pref);
    if (attr == PREF_MAX_WORKSPACE_BYTES)
        return read_attr(call, attr, buf, size, &pref->max_workspace) ? STATUS_SUCCESS : STATUS_INVALID_VALUE;
    if (attr == PREF_SEARCH_MODE) {
        int mode = 0;
        return read_attr(call, attr, buf, size, &mode) ? STATUS_SUCCESS : STATUS_INVALID_VALUE;
    }
    gt::report(call, gt::format("attribute %d is not one the stand-in implements", attr));
    return STATUS_NOT_SUPPORTED;
}

GT_EXPORT int cublasLtMatmulAlgoGetHeuristic(Handle* handle, MatmulDesc* desc, Layout* la, Layout* lb, Layout* lc,
                                             Layout* ld, Preference* pref, int requested, HeuristicResult* results,
                                             int* returned) {
    const char* call = "cublasLtMatmulAlgoGetHeuristic";
    REQUIRE(is_live(handle), STATUS_NOT_INITIALIZED, call, "%p is not a live handle", (void*)handle);
    REQUIRE(is_live(pref), STATUS_INVALID_VALUE, call, "%p is not a live preference", (void*)pref);
    REQUIRE(requested >= 1 && results && returned, STATUS_INVALID_VALUE, call,
            "requested %d results into %p (count at %p)", requested, (void*)results, (void*)returned);
    Problem p;
    if (int r = check_problem(call, desc, la, lb, lc, ld, &p)) return r;
    std::memset(results, 0, sizeof(HeuristicResult));
    results[0].algo.data[0] = ALGO_MAGIC;
    results[0].workspace_size = 0;
    results[0].state = STATUS_SUCCESS;
    results[0].waves_count = 1.0f;
    *returned = 1;
    return STATUS_SUCCESS;
}

GT_EXPORT int cublasLtMatmul(Handle* handle, MatmulDesc* desc, const void* alpha, const void* a, Layout* la,
                             const void* b, Layout* lb, const void* beta, const void* c, Layout* lc, void* d,
                             Layout* ld, const Algo* algo, void* workspace, std::size_t workspace_bytes,
                             void* stream) {
    (void)workspace, (void)workspace_bytes, (void)stream;
    const char* call = "cublasLtMatmul";
    REQUIRE(is_live(handle), STATUS_NOT_INITIALIZED, call, "%p is not a live handle", (void*)handle);
    REQUIRE(gt::current_context() != nullptr, STATUS_EXECUTION_FAILED, call,
            "no CUDA context is current on this thread: bind the device's context before calling cuBLASLt");
    REQUIRE(algo == nullptr || algo->data[0] == ALGO_MAGIC, STATUS_INVALID_VALUE, call,
            "the algorithm at %p did not come from cublasLtMatmulAlgoGetHeuristic", (const void*)algo);
    Problem p;
    if (int r = check_problem(call, desc, la, lb, lc, ld, &p)) return r;
    if (p.type == R_32F) return execute<float>(call, desc, p, alpha, a, la, b, lb, beta, c, lc, d, ld);
    return execute<double>(call, desc, p, alpha, a, la, b, lb, beta, c, lc, d, ld);
}
