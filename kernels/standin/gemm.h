// gemm.h: the matrix product that both cuBLAS stand-ins compute (cublas.cpp
// for cuBLAS's gemm, cublaslt.cpp for cuBLASLt's matmul), from cuBLAS's
// column-major definition: element (i, j) of a stored matrix X with leading
// dimension ld is X[i + j ld], and op(X) is X or its transpose.

#ifndef GRADTAPE_STANDIN_GEMM_H
#define GRADTAPE_STANDIN_GEMM_H

#include <cstddef>
#include <vector>

namespace gt {

// A stored matrix read through op(): op(X)(i, l).
template <typename T>
struct Operand {
    const T* x;
    long long ld;
    bool transposed;
    T at(long long i, long long l) const { return transposed ? x[l + i * ld] : x[i + l * ld]; }
};

// Column j of op(A) op(B), m rows, into `sum`: each entry summed over
// l = 0, 1, ..., k - 1 in that order (l outermost, so that op N reads A
// down its columns).
template <typename T>
void product_column(const Operand<T>& a, const Operand<T>& b, long long m, long long k, long long j,
                    std::vector<T>& sum) {
    sum.assign((std::size_t)m, T(0));
    for (long long l = 0; l < k; ++l) {
        const T bl = b.at(l, j);
        for (long long i = 0; i < m; ++i) sum[(std::size_t)i] += a.at(i, l) * bl;
    }
}

// alpha s + beta c, with c not read when beta is 0 (a NaN there does not
// spread), as cuBLAS documents.
template <typename T>
T scaled(T alpha, T s, T beta, const T* c) {
    return beta == T(0) ? alpha * s : alpha * s + beta * *c;
}

}  // namespace gt

#endif  // GRADTAPE_STANDIN_GEMM_H
