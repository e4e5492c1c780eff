// reduce.cu: sums and maxima over a whole tensor or along one axis, the
// one-hot mask of the first maximum, and sum_to (the adjoint of a
// broadcast): the GPU side of kernels/src/reduce.rs and layout.rs.
//
// Deterministic without atomics or shared memory (the plain subset: see
// common.cuh):
//
// - A whole-tensor reduction takes two launches. The first gives every
//   thread of its launch one partial result, over the elements its
//   grid-stride loop visits, in increasing order; the caller allocates one
//   partial per thread (grid * block of them). The second is launched with
//   any shape; only the launch's thread 0 works, combining the partials in
//   order. The same input and launch shape give the same bits every time.
// - Along an axis the tensor is viewed as [outer, axis_len, inner] (inner =
//   the product of the axes after it); each output element is one thread,
//   which walks its lane in order.
//
// - Where few outputs each sum many elements (a bias gradient over a batch
//   of 4,096 is 128 sums of 4,096), one thread per output would leave the
//   GPU idle and walk a long serial loop. The `_chunks` kernels split each
//   output's elements into `chunks` consecutive runs, one thread per
//   (run, output), writing partials[run * n_out + output]; `*_strided_finish`
//   then combines each output's runs in order. A whole tensor's partials
//   are combined the same way, `sum_chunks`/`max_chunks` taking runs of
//   consecutive partials, until few enough are left for one thread. Every
//   split is a fixed function of the shape, so the bits are the same on
//   every run.
//
// NaN: max propagates NaN (as PyTorch's max), and the mask of the maximum
// marks the first NaN if there is one.

#include "common.cuh"

// ---- whole tensor: partials, then one thread ---------------------------------

// partials[t] = sum of x[i] (or x[i]^2) over thread t's elements.
template <typename T, bool SQUARES>
__device__ void sum_partials(long long n, const T* x, T* partials) {
    const long long t = first_index();
    T acc = T(0);
    GRID_STRIDE_LOOP(i, n) acc += SQUARES ? x[i] * x[i] : x[i];
    partials[t] = acc;
}

// partials[t] = max of x[i] over thread t's elements (-inf if none).
template <typename T>
__device__ void max_partials(long long n, const T* x, T* partials) {
    const long long t = first_index();
    T acc = neg_infinity<T>();
    GRID_STRIDE_LOOP(i, n) acc = nan_max(acc, x[i]);
    partials[t] = acc;
}

// out[0] = partials[0] + partials[1] + ... (in order), by thread 0 alone.
template <typename T>
__device__ void sum_finish(long long parts, const T* partials, T* out) {
    GRID_STRIDE_LOOP(i, 1) {
        T acc = T(0);
        for (long long p = 0; p < parts; ++p) acc += partials[p];
        out[i] = acc;
    }
}

// out[0] = (partials[0] + partials[1] + ...) * scale: a fused loss's last
// step (losses.cu), the sum in the same order as sum_finish.
template <typename T>
__device__ void sum_finish_scaled(long long parts, T scale, const T* partials, T* out) {
    GRID_STRIDE_LOOP(i, 1) {
        T acc = T(0);
        for (long long p = 0; p < parts; ++p) acc += partials[p];
        out[i] = acc * scale;
    }
}

// out[0] = sqrt(partials[0] + partials[1] + ...): the L2 norm's last step
// (fused.cu's norm_grad is its rule), the sum in the same order as
// sum_finish.
template <typename T>
__device__ void sum_finish_sqrt(long long parts, const T* partials, T* out) {
    GRID_STRIDE_LOOP(i, 1) {
        T acc = T(0);
        for (long long p = 0; p < parts; ++p) acc += partials[p];
        out[i] = gt_sqrt(acc);
    }
}

// out[0] = max of the partials, by thread 0 alone.
template <typename T>
__device__ void max_finish(long long parts, const T* partials, T* out) {
    GRID_STRIDE_LOOP(i, 1) {
        T acc = neg_infinity<T>();
        for (long long p = 0; p < parts; ++p) acc = nan_max(acc, partials[p]);
        out[i] = acc;
    }
}

// out[c] = combination of in[c * chunk .. min(n_in, (c + 1) * chunk)], in
// order: one level of a whole tensor's reduction tree.
template <typename T, bool MAX>
__device__ void combine_chunks(long long n_out, long long n_in, long long chunk, const T* in, T* out) {
    GRID_STRIDE_LOOP(c, n_out) {
        const long long end = (c + 1) * chunk < n_in ? (c + 1) * chunk : n_in;
        T acc = MAX ? neg_infinity<T>() : T(0);
        for (long long i = c * chunk; i < end; ++i) acc = MAX ? nan_max(acc, in[i]) : acc + in[i];
        out[c] = acc;
    }
}

// out[o] = combination over c of partials[c * n_out + o], in order (divided
// by `divisor` for sums: 1, or the axis length for a mean).
template <typename T, bool MAX>
__device__ void strided_finish(long long n_out, long long chunks, T divisor, const T* partials, T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        T acc = MAX ? neg_infinity<T>() : T(0);
        for (long long c = 0; c < chunks; ++c) {
            acc = MAX ? nan_max(acc, partials[c * n_out + o]) : acc + partials[c * n_out + o];
        }
        out[o] = MAX ? acc : acc / divisor;
    }
}

// ---- the first maximum: partials of (value, index), then one thread ------------

// The mask entry of a maximum's winner: 1, or NaN where the winner is NaN
// (as kernels/src/reduce.rs's `mark`), so that the gradient through a NaN
// maximum is NaN on both devices.
template <typename T>
__device__ __forceinline__ T mark_of(T winner) {
    return is_nan(winner) ? winner : T(1);
}

// Whether (x, i) beats the best so far (best, at): a larger value, or the
// first NaN; ties go to the smaller index. at < 0 means nothing seen yet.
template <typename T>
__device__ __forceinline__ bool beats(T x, long long i, T best, long long at) {
    if (at < 0) return true;
    if (is_nan(best)) return is_nan(x) && i < at;
    if (is_nan(x)) return true;
    return x > best || (x == best && i < at);
}

// (values[t], indices[t]) = first maximum among thread t's elements
// (index -1 if it has none).
template <typename T>
__device__ void argmax_partials(long long n, const T* x, T* values, long long* indices) {
    const long long t = first_index();
    T best = neg_infinity<T>();
    long long at = -1;
    GRID_STRIDE_LOOP(i, n) {
        if (beats(x[i], i, best, at)) {
            best = x[i];
            at = i;
        }
    }
    values[t] = best;
    indices[t] = at;
}

// (values_out[c], indices_out[c]) = the first maximum among partials
// c * chunk .. min(n_in, (c + 1) * chunk): one level of the first-maximum
// search's tree, as combine_chunks is of a sum's.
template <typename T>
__device__ void argmax_chunks(long long n_out, long long n_in, long long chunk, const T* values,
                              const long long* indices, T* values_out, long long* indices_out) {
    GRID_STRIDE_LOOP(c, n_out) {
        T best = neg_infinity<T>();
        long long where = -1;
        const long long end = (c + 1) * chunk < n_in ? (c + 1) * chunk : n_in;
        for (long long p = c * chunk; p < end; ++p) {
            if (indices[p] >= 0 && beats(values[p], indices[p], best, where)) {
                best = values[p];
                where = indices[p];
            }
        }
        values_out[c] = best;
        indices_out[c] = where;
    }
}

// at[0] = the index of the first maximum over all partials (-1 if empty).
template <typename T>
__device__ void argmax_finish(long long parts, const T* values, const long long* indices, long long* at) {
    GRID_STRIDE_LOOP(i, 1) {
        T best = neg_infinity<T>();
        long long where = -1;
        for (long long p = 0; p < parts; ++p) {
            if (indices[p] >= 0 && beats(values[p], indices[p], best, where)) {
                best = values[p];
                where = indices[p];
            }
        }
        at[i] = where;
    }
}

// out[i] = 1 at index at[0], 0 elsewhere: the one-hot mask of max_all.
template <typename T>
__device__ void one_hot(long long n, const long long* at, const T* x, T* out) {
    const long long hot = at[0];
    const T mark = mark_of(x[hot]);
    GRID_STRIDE_LOOP(i, n) out[i] = (i == hot) ? mark : T(0);
}

// ---- along one axis: [outer, axis_len, inner] -----------------------------------

// Where lane o (an index of the [outer, inner] result) starts in x.
__device__ __forceinline__ long long lane_start(long long o, long long axis_len, long long inner) {
    return (o / inner) * axis_len * inner + o % inner;
}

// out[o] = sum over the lane (divided by axis_len if MEAN).
template <typename T, bool MEAN>
__device__ void sum_axis(long long n_out, long long axis_len, long long inner, const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const T* lane = x + lane_start(o, axis_len, inner);
        T acc = T(0);
        for (long long k = 0; k < axis_len; ++k) acc += lane[k * inner];
        out[o] = MEAN ? acc / T(axis_len) : acc;
    }
}

// out[o] = max over the lane (NaN if it holds one).
template <typename T>
__device__ void max_axis(long long n_out, long long axis_len, long long inner, const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n_out) {
        const T* lane = x + lane_start(o, axis_len, inner);
        T acc = neg_infinity<T>();
        for (long long k = 0; k < axis_len; ++k) acc = nan_max(acc, lane[k * inner]);
        out[o] = acc;
    }
}

// out (shape of x) = 1 at the first maximum of each lane, 0 elsewhere. One
// thread per lane writes that lane's axis_len elements: each exactly once.
template <typename T>
__device__ void max_mask_axis(long long n_lanes, long long axis_len, long long inner, const T* x, T* out) {
    GRID_STRIDE_LOOP(o, n_lanes) {
        const long long start = lane_start(o, axis_len, inner);
        T best = neg_infinity<T>();
        long long at = -1;
        for (long long k = 0; k < axis_len; ++k) {
            if (beats(x[start + k * inner], k, best, at)) {
                best = x[start + k * inner];
                at = k;
            }
        }
        const T mark = mark_of(best);
        for (long long k = 0; k < axis_len; ++k) out[start + k * inner] = (k == at) ? mark : T(0);
    }
}

// Few long lanes (the same split as axis_chunks): thread (c, o) finds the
// first maximum of run c of lane o, (values, indices)[c * n_lanes + o], the
// index counted along the lane (-1 for an empty run).
template <typename T>
__device__ void argmax_axis_chunks(long long n_lanes, long long axis_len, long long inner, long long chunks,
                                   const T* x, T* values, long long* indices) {
    GRID_STRIDE_LOOP(t, n_lanes * chunks) {
        const long long c = t / n_lanes, o = t % n_lanes;
        const T* lane = x + lane_start(o, axis_len, inner);
        long long begin, end;
        chunk_range(c, chunks, axis_len, &begin, &end);
        T best = neg_infinity<T>();
        long long at = -1;
        for (long long k = begin; k < end; ++k) {
            if (beats(lane[k * inner], k, best, at)) {
                best = lane[k * inner];
                at = k;
            }
        }
        values[t] = best;
        indices[t] = at;
    }
}

// at[o] = the first maximum of lane o over its runs, in order (one thread per
// lane; a lane has only `chunks` runs to look at).
template <typename T>
__device__ void argmax_axis_finish(long long n_lanes, long long chunks, const T* values, const long long* indices,
                                   long long* at) {
    GRID_STRIDE_LOOP(o, n_lanes) {
        T best = neg_infinity<T>();
        long long where = -1;
        for (long long c = 0; c < chunks; ++c) {
            const long long t = c * n_lanes + o;
            if (indices[t] >= 0 && beats(values[t], indices[t], best, where)) {
                best = values[t];
                where = indices[t];
            }
        }
        at[o] = where;
    }
}

// out[i] = 1 (NaN for a NaN winner) where element i is its lane's winner
// at[lane], 0 elsewhere: one thread per element of x.
template <typename T>
__device__ void one_hot_axis(long long n, long long axis_len, long long inner, const long long* at, const T* x,
                             T* out) {
    GRID_STRIDE_LOOP(i, n) {
        const long long k = (i / inner) % axis_len;
        const long long lane = (i / (inner * axis_len)) * inner + i % inner;
        out[i] = (k == at[lane]) ? mark_of(x[i]) : T(0);
    }
}

// partials[c * n_out + o] = sum (MAX: max) of run c of lane o's elements.
template <typename T, bool MAX>
__device__ void axis_chunks(long long n_out, long long axis_len, long long inner, long long chunks, const T* x,
                            T* partials) {
    GRID_STRIDE_LOOP(t, n_out * chunks) {
        const long long c = t / n_out, o = t % n_out;
        const T* lane = x + lane_start(o, axis_len, inner);
        long long begin, end;
        chunk_range(c, chunks, axis_len, &begin, &end);
        T acc = MAX ? neg_infinity<T>() : T(0);
        for (long long k = begin; k < end; ++k) acc = MAX ? nan_max(acc, lane[k * inner]) : acc + lane[k * inner];
        partials[t] = acc;
    }
}

// ---- sum_to: undoing a broadcast --------------------------------------------------
//
// `big` is contiguous with shape idx.shape; out is the smaller shape it was
// broadcast from, read through idx.stride_a (0 on the summed axes, nonzero on
// the kept ones). out[o] = sum of big (times other, read through
// idx.stride_b, if WITH_OTHER) over every big element that out[o] was
// broadcast to, in big's row-major order.
//
// Chunked (`sum_to_chunks`): thread (c, o) sums run c of the `per` elements
// of output o into partials[c * n_out + o]; chunks = 1 is the plain sum_to.
template <typename T, bool WITH_OTHER>
__device__ void sum_to(long long n_out, long long chunks, Strided6 idx, const T* big, const T* other, T* out) {
    long long per = 1;  // big elements per output element
    for (int k = 0; k < idx.rank; ++k)
        if (idx.stride_a[k] == 0) per *= idx.shape[k];
    GRID_STRIDE_LOOP(t, n_out * chunks) {
        const long long c = t / n_out, o = t % n_out;
        long long begin, end;
        chunk_range(c, chunks, per, &begin, &end);
        T acc = T(0);
        for (long long j = begin; j < end; ++j) {
            // Innermost axis first: kept axes take their index from o,
            // summed axes from j.
            long long ro = o, rj = j, at_big = 0, big_stride = 1, at_other = 0;
            for (int k = idx.rank - 1; k >= 0; --k) {
                const long long len = idx.shape[k];
                long long i;
                if (idx.stride_a[k] != 0) {
                    i = ro % len;
                    ro /= len;
                } else {
                    i = rj % len;
                    rj /= len;
                }
                at_big += i * big_stride;
                big_stride *= len;
                at_other += i * idx.stride_b[k];
            }
            acc += WITH_OTHER ? big[at_big] * other[at_other] : big[at_big];
        }
        out[t] = acc;
    }
}

// ---- entry points --------------------------------------------------------------------

#define REDUCE_KERNELS(T, suffix)                                                                         \
    extern "C" __global__ void sum_partials_##suffix(long long n, const T* x, T* partials) {              \
        sum_partials<T, false>(n, x, partials);                                                           \
    }                                                                                                     \
    extern "C" __global__ void sum_squares_partials_##suffix(long long n, const T* x, T* partials) {      \
        sum_partials<T, true>(n, x, partials);                                                            \
    }                                                                                                     \
    extern "C" __global__ void max_partials_##suffix(long long n, const T* x, T* partials) {              \
        max_partials<T>(n, x, partials);                                                                  \
    }                                                                                                     \
    extern "C" __global__ void sum_finish_##suffix(long long parts, const T* partials, T* out) {          \
        sum_finish<T>(parts, partials, out);                                                              \
    }                                                                                                     \
    extern "C" __global__ void sum_finish_scaled_##suffix(long long parts, T scale, const T* partials,     \
                                                          T* out) {                                        \
        sum_finish_scaled<T>(parts, scale, partials, out);                                                 \
    }                                                                                                      \
    extern "C" __global__ void sum_finish_sqrt_##suffix(long long parts, const T* partials, T* out) {     \
        sum_finish_sqrt<T>(parts, partials, out);                                                         \
    }                                                                                                     \
    extern "C" __global__ void max_finish_##suffix(long long parts, const T* partials, T* out) {          \
        max_finish<T>(parts, partials, out);                                                              \
    }                                                                                                     \
    extern "C" __global__ void argmax_partials_##suffix(long long n, const T* x, T* values,               \
                                                        long long* indices) {                             \
        argmax_partials<T>(n, x, values, indices);                                                        \
    }                                                                                                     \
    extern "C" __global__ void argmax_chunks_##suffix(long long n_out, long long n_in, long long chunk,   \
                                                      const T* values, const long long* indices,          \
                                                      T* values_out, long long* indices_out) {            \
        argmax_chunks<T>(n_out, n_in, chunk, values, indices, values_out, indices_out);                   \
    }                                                                                                     \
    extern "C" __global__ void argmax_finish_##suffix(long long parts, const T* values,                   \
                                                      const long long* indices, long long* at) {          \
        argmax_finish<T>(parts, values, indices, at);                                                     \
    }                                                                                                     \
    extern "C" __global__ void one_hot_##suffix(long long n, const long long* at, const T* x, T* out) {   \
        one_hot<T>(n, at, x, out);                                                                        \
    }                                                                                                     \
    extern "C" __global__ void sum_axis_##suffix(long long n_out, long long axis_len, long long inner,    \
                                                 const T* x, T* out) {                                    \
        sum_axis<T, false>(n_out, axis_len, inner, x, out);                                               \
    }                                                                                                     \
    extern "C" __global__ void mean_axis_##suffix(long long n_out, long long axis_len, long long inner,   \
                                                  const T* x, T* out) {                                   \
        sum_axis<T, true>(n_out, axis_len, inner, x, out);                                                \
    }                                                                                                     \
    extern "C" __global__ void max_axis_##suffix(long long n_out, long long axis_len, long long inner,    \
                                                 const T* x, T* out) {                                    \
        max_axis<T>(n_out, axis_len, inner, x, out);                                                      \
    }                                                                                                     \
    extern "C" __global__ void max_mask_axis_##suffix(long long n_lanes, long long axis_len,              \
                                                      long long inner, const T* x, T* out) {              \
        max_mask_axis<T>(n_lanes, axis_len, inner, x, out);                                               \
    }                                                                                                     \
    extern "C" __global__ void argmax_axis_chunks_##suffix(long long n_lanes, long long axis_len,          \
                                                           long long inner, long long chunks, const T* x, \
                                                           T* values, long long* indices) {               \
        argmax_axis_chunks<T>(n_lanes, axis_len, inner, chunks, x, values, indices);                      \
    }                                                                                                     \
    extern "C" __global__ void argmax_axis_finish_##suffix(long long n_lanes, long long chunks,            \
                                                           const T* values, const long long* indices,     \
                                                           long long* at) {                               \
        argmax_axis_finish<T>(n_lanes, chunks, values, indices, at);                                      \
    }                                                                                                     \
    extern "C" __global__ void one_hot_axis_##suffix(long long n, long long axis_len, long long inner,     \
                                                     const long long* at, const T* x, T* out) {           \
        one_hot_axis<T>(n, axis_len, inner, at, x, out);                                                  \
    }                                                                                                     \
    extern "C" __global__ void sum_to_##suffix(long long n_out, Strided6 idx, const T* big, T* out) {     \
        sum_to<T, false>(n_out, 1, idx, big, big, out);                                                   \
    }                                                                                                     \
    extern "C" __global__ void mul_sum_to_##suffix(long long n_out, Strided6 idx, const T* big,           \
                                                   const T* other, T* out) {                              \
        sum_to<T, true>(n_out, 1, idx, big, other, out);                                                  \
    }                                                                                                     \
    extern "C" __global__ void sum_to_chunks_##suffix(long long n_out, long long chunks, Strided6 idx,     \
                                                      const T* big, T* partials) {                        \
        sum_to<T, false>(n_out, chunks, idx, big, big, partials);                                         \
    }                                                                                                     \
    extern "C" __global__ void mul_sum_to_chunks_##suffix(long long n_out, long long chunks,              \
                                                          Strided6 idx, const T* big, const T* other,     \
                                                          T* partials) {                                  \
        sum_to<T, true>(n_out, chunks, idx, big, other, partials);                                        \
    }                                                                                                     \
    extern "C" __global__ void sum_axis_chunks_##suffix(long long n_out, long long axis_len,              \
                                                        long long inner, long long chunks, const T* x,    \
                                                        T* partials) {                                    \
        axis_chunks<T, false>(n_out, axis_len, inner, chunks, x, partials);                               \
    }                                                                                                     \
    extern "C" __global__ void max_axis_chunks_##suffix(long long n_out, long long axis_len,              \
                                                        long long inner, long long chunks, const T* x,    \
                                                        T* partials) {                                    \
        axis_chunks<T, true>(n_out, axis_len, inner, chunks, x, partials);                                \
    }                                                                                                     \
    extern "C" __global__ void sum_strided_finish_##suffix(long long n_out, long long chunks, T divisor,  \
                                                           const T* partials, T* out) {                   \
        strided_finish<T, false>(n_out, chunks, divisor, partials, out);                                  \
    }                                                                                                     \
    extern "C" __global__ void max_strided_finish_##suffix(long long n_out, long long chunks, T divisor,  \
                                                           const T* partials, T* out) {                   \
        strided_finish<T, true>(n_out, chunks, divisor, partials, out);                                   \
    }                                                                                                     \
    extern "C" __global__ void sum_chunks_##suffix(long long n_out, long long n_in, long long chunk,      \
                                                   const T* in, T* out) {                                 \
        combine_chunks<T, false>(n_out, n_in, chunk, in, out);                                            \
    }                                                                                                     \
    extern "C" __global__ void max_chunks_##suffix(long long n_out, long long n_in, long long chunk,      \
                                                   const T* in, T* out) {                                 \
        combine_chunks<T, true>(n_out, n_in, chunk, in, out);                                             \
    }

REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(double, f64)
