//! Broadcasting as rows: no index arithmetic per element.
//!
//! An operand broadcast to a larger shape is read through strides that are
//! zero along the axes it repeats on. Neighbouring axes that both operands
//! walk the same way (contiguously, or not at all) merge into one, and what
//! is left is an outer loop over *rows* and an innermost run in which each
//! operand is either contiguous or a single repeated number. The inner loop
//! is then slice-with-slice or slice-with-scalar, which the compiler
//! vectorises; the outer loop pays a few integer divisions per row, not per
//! element.
//!
//! `[n, H] + [H]` (a bias) becomes `n` rows of `H`; `[H, n, 1] * [H, 1, K]`
//! (an outer product per row) becomes `H * n` rows of `K` with the left
//! operand a scalar per row.
//!
//! `sum_to`, the adjoint of broadcasting, walks the same rows the other way:
//! each row of the large tensor is added into its row of the small one, or
//! summed onto its single number.

use crate::element::Element;
use crate::elementwise::{for_each_chunk, map_tasks, map_wide, parallel_threshold, zip_wide};
use crate::reduce::{lane_sum, lane_sum2};
use crate::shape::{Shape, MAX_RANK};

/// Rows of a broadcast between a large tensor of shape `shape` (always
/// read or written contiguously) and up to two operands read through
/// broadcast strides.
#[derive(Debug)]
pub(crate) struct Rows {
    /// Outer axes after merging, outermost first: (length, strides...).
    /// Inline (shapes have at most `MAX_RANK` axes), so that planning a
    /// broadcast allocates nothing.
    outer: [(usize, [usize; 2]); MAX_RANK],
    /// How many entries of `outer` are in use.
    n_outer: usize,
    /// Length of the innermost run.
    pub(crate) len: usize,
    /// Each operand's stride along the innermost run: 1 (contiguous) or 0
    /// (one number repeated).
    pub(crate) inner: [usize; 2],
    /// Number of rows (product of the outer lengths).
    pub(crate) count: usize,
}

/// Row-major strides of `dims` aligned to a shape of rank `rank`, with 0 on
/// every axis where `dims` has length 1 (or does not reach).
fn broadcast_strides(dims: &[usize], rank: usize) -> Shape {
    let mut strides = Shape::default();
    for _ in 0..rank {
        strides.push(0);
    }
    let mut s = 1;
    for (k, &d) in dims.iter().enumerate().rev() {
        let axis = rank - dims.len() + k;
        strides[axis] = if d == 1 { 0 } else { s };
        s *= d;
    }
    strides
}

impl Rows {
    /// The rows of `shape`, with operands of shapes `a` and `b` that
    /// broadcast to it.
    pub(crate) fn new(shape: &[usize], a: &[usize], b: &[usize]) -> Rows {
        let rank = shape.len();
        let (sa, sb) = (broadcast_strides(a, rank), broadcast_strides(b, rank));
        // Merge innermost first, filling `axes` from the inside out.
        let mut axes = [(0usize, [0usize; 2]); MAX_RANK];
        let mut n: usize = 0;
        for k in (0..rank).rev() {
            let (d, s) = (shape[k], [sa[k], sb[k]]);
            if d == 1 {
                continue;
            }
            match n.checked_sub(1).map(|last| &mut axes[last]) {
                // This axis steps over exactly one run of the previous one,
                // for both operands: the two are one axis.
                Some((dl, sl)) if s[0] == sl[0] * *dl && s[1] == sl[1] * *dl => *dl *= d,
                _ => {
                    axes[n] = (d, s);
                    n += 1;
                }
            }
        }
        let (len, inner) = if n == 0 { (1, [0, 0]) } else { axes[0] };
        let n_outer = n.saturating_sub(1);
        let mut outer = [(0usize, [0usize; 2]); MAX_RANK];
        for (o, a) in outer.iter_mut().zip(axes[1..n.max(1)].iter().rev()) {
            *o = *a;
        }
        let count = outer[..n_outer].iter().map(|a| a.0).product();
        Rows { outer, n_outer, len, inner: [inner[0].min(1), inner[1].min(1)], count }
    }

    /// Where row `r` starts in each operand.
    #[inline]
    pub(crate) fn offsets(&self, mut r: usize) -> [usize; 2] {
        let mut off = [0, 0];
        for &(d, s) in self.outer[..self.n_outer].iter().rev() {
            let i = r % d;
            r /= d;
            off[0] += i * s[0];
            off[1] += i * s[1];
        }
        off
    }

    /// Whether the outermost axis moves operand `k` (so that splitting it
    /// splits that operand into disjoint parts).
    fn outermost_moves(&self, k: usize) -> bool {
        self.n_outer > 0 && self.outer[0].1[k] != 0
    }

    /// Rows per task when the whole is worth splitting across threads.
    fn rows_per_task(&self) -> Option<usize> {
        let total = self.count * self.len;
        (total >= parallel_threshold() && self.count > 1)
            .then(|| (self.count / (4 * rayon::current_num_threads())).max(1))
    }
}

/// Calls `row(r, out_row)` for every row `r` of `out` (`rows.len` elements
/// each), in parallel tasks when large.
pub(crate) fn for_each_row<T: Element>(rows: &Rows, out: &mut [T], row: impl Fn(usize, &mut [T]) + Sync) {
    let len = rows.len;
    match rows.rows_per_task() {
        Some(per) => for_each_chunk(out, per * len, &|t, chunk| {
            for (j, o) in chunk.chunks_mut(len).enumerate() {
                row(t * per + j, o);
            }
        }),
        None => out.chunks_mut(len).enumerate().for_each(|(r, o)| row(r, o)),
    }
}

/// `out = f(a, b)` with `a` and `b` broadcast to `out`'s shape.
pub(crate) fn zip_rows<T: Element>(
    rows: &Rows,
    a: &[T],
    b: &[T],
    out: &mut [T],
    f: impl Fn(T, T) -> T + Sync,
) {
    let len = rows.len;
    for_each_row(rows, out, |r, o| {
        let [oa, ob] = rows.offsets(r);
        match rows.inner {
            [1, 1] => zip_wide(&a[oa..oa + len], &b[ob..ob + len], o, &f),
            [0, 1] => map_wide(&b[ob..ob + len], o, &|y| f(a[oa], y)),
            [1, 0] => map_wide(&a[oa..oa + len], o, &|x| f(x, b[ob])),
            _ => o.fill(f(a[oa], b[ob])),
        }
    });
}

/// `out = src` broadcast to `out`'s shape (rows built with `src` as the
/// first operand).
pub(crate) fn copy_rows<T: Element>(rows: &Rows, src: &[T], out: &mut [T]) {
    let len = rows.len;
    for_each_row(rows, out, |r, o| {
        let [os, _] = rows.offsets(r);
        if rows.inner[0] == 1 {
            o.copy_from_slice(&src[os..os + len]);
        } else {
            o.fill(src[os]);
        }
    });
}

/// `out += ` the sum of `big` over the axes `out` is broadcast along (rows
/// built over `big`'s shape with `out` as the first operand). `out` must
/// hold zeros (or a running sum) on entry.
pub(crate) fn sum_rows<T: Element>(rows: &Rows, big: &[T], out: &mut [T]) {
    let len = rows.len;
    reduce_rows(rows, out, |r, out| add_row(rows, &big[r * len..(r + 1) * len], out));
}

/// `out += src` for one row of a `sum_to`: along `out` when the row runs
/// along it, else (the row's elements all land on one output) as one lane
/// sum. The order of additions `sum_to` promises, for every caller.
pub(crate) fn add_row<T: Element>(rows: &Rows, src: &[T], out: &mut [T]) {
    if rows.inner[0] == 1 {
        for (o, &x) in out.iter_mut().zip(src) {
            *o = *o + x;
        }
    } else {
        out[0] = out[0] + lane_sum(src, |x| x);
    }
}

/// `out += ` the sum of `big * other` over the axes `out` is broadcast
/// along, without writing the product out: the gradient of one operand of a
/// broadcasting product. Rows are built over `big`'s shape with `out` first
/// and `other` second.
pub(crate) fn mul_sum_rows<T: Element>(rows: &Rows, big: &[T], other: &[T], out: &mut [T]) {
    let len = rows.len;
    reduce_rows(rows, out, |r, out| {
        let src = &big[r * len..(r + 1) * len];
        let [_, ob] = rows.offsets(r);
        match rows.inner {
            [1, 1] => {
                for ((o, &x), &y) in out.iter_mut().zip(src).zip(&other[ob..ob + len]) {
                    *o = *o + x * y;
                }
            }
            [1, 0] => {
                let y = other[ob];
                for (o, &x) in out.iter_mut().zip(src) {
                    *o = *o + x * y;
                }
            }
            [0, 1] => out[0] = out[0] + lane_sum2(src, &other[ob..ob + len], |x, y| x * y),
            _ => out[0] = out[0] + lane_sum(src, |x| x) * other[ob],
        }
    });
}

/// Runs `add_row(r, out_row)` for every row `r` of a reduction onto `out`
/// (the first operand of `rows`), where `out_row` starts at the row's first
/// element of `out`.
///
/// Each output element's terms are added in row order, so the result is the
/// same whatever the number of threads: when the outermost axis moves
/// through `out`, tasks own disjoint parts of it; otherwise each task sums a
/// fixed block of rows into its own partial result, and the partials are
/// added in order.
pub(crate) fn reduce_rows<T: Element>(rows: &Rows, out: &mut [T], add_row: impl Fn(usize, &mut [T]) + Sync) {
    let at = |r: usize, base: usize| rows.offsets(r)[0] - base;
    if rows.rows_per_task().is_none() {
        for r in 0..rows.count {
            add_row(r, &mut out[at(r, 0)..]);
        }
    } else if rows.outermost_moves(0) {
        // Split the outermost axis: each index owns one block of `out`.
        let (d, s) = rows.outer[0];
        let rows_each = rows.count / d;
        let covered = (d * s[0]).min(out.len());
        for_each_chunk(&mut out[..covered], s[0], &|i, block| {
            for r in i * rows_each..(i + 1) * rows_each {
                add_row(r, &mut block[at(r, i * s[0])..]);
            }
        });
    } else {
        // Fixed blocks of rows, each summed into its own partial.
        const BLOCK_ELEMENTS: usize = 1 << 15;
        let per = (BLOCK_ELEMENTS / rows.len).max(1);
        let blocks = rows.count.div_ceil(per);
        let partials: Vec<Vec<T>> = map_tasks(blocks, &|k| {
            let mut part = vec![T::zero(); out.len()];
            for r in k * per..((k + 1) * per).min(rows.count) {
                add_row(r, &mut part[at(r, 0)..]);
            }
            part
        });
        for part in partials {
            for (o, p) in out.iter_mut().zip(part) {
                *o = *o + p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::elementwise::with_parallel_threshold;
    use crate::tensor::Tensor;
    use proptest::prelude::*;

    /// Reference: the element of `t` that output index `idx` reads under
    /// NumPy broadcasting.
    fn at_broadcast(t: &Tensor<f64>, idx: &[usize]) -> f64 {
        let lead = idx.len() - t.rank();
        let own: Vec<usize> =
            t.shape().iter().enumerate().map(|(k, &d)| if d == 1 { 0 } else { idx[lead + k] }).collect();
        t.at(&own)
    }

    fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
        let mut all = vec![vec![]];
        for &d in shape {
            all = all.into_iter().flat_map(|p| (0..d).map(move |i| [p.clone(), vec![i]].concat())).collect();
        }
        all
    }

    /// Two shapes that broadcast: a random output shape, and each operand
    /// keeping or collapsing each axis (and maybe dropping leading ones).
    fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
        prop::collection::vec(1usize..5, 0..5).prop_flat_map(|out| {
            let r = out.len();
            (
                Just(out),
                prop::collection::vec(any::<bool>(), r),
                prop::collection::vec(any::<bool>(), r),
                0..=r,
                0..=r,
            )
                .prop_map(|(out, ka, kb, da, db)| {
                    let pick = |keep: &[bool], drop: usize| -> Vec<usize> {
                        (drop..out.len()).map(|k| if keep[k] { out[k] } else { 1 }).collect()
                    };
                    let (a, b) = (pick(&ka, da), pick(&kb, db));
                    (out, a, b)
                })
        })
    }

    proptest! {
        #[test]
        fn broadcast_kernels_match_the_index_definition((out, a, b) in shapes(), parallel in any::<bool>()) {
            // parallel: force the threaded paths even on tiny tensors (on
            // this test's thread only; other tests keep the default).
            let ta = Tensor::<f64>::normal(&a, 0.0, 1.0, 1);
            let tb = Tensor::<f64>::normal(&b, 0.0, 1.0, 2);
            let big = Tensor::<f64>::normal(&out, 0.0, 1.0, 3);
            let (prod, full, summed, mul_summed) =
                with_parallel_threshold(if parallel { 1 } else { usize::MAX }, || {
                    let prod = ta.mul(&tb).sub(&tb);
                    let full = ta.broadcast_to(&crate::shape::broadcast_shapes(&a, &out).unwrap());
                    (prod, full, big.sum_to(&a), big.mul_sum_to(&tb, &a))
                });
            let shape = crate::shape::broadcast_shapes(&a, &b).unwrap();
            prop_assert_eq!(prod.shape(), shape.as_slice());
            for idx in indices(&shape) {
                let (x, y) = (at_broadcast(&ta, &idx), at_broadcast(&tb, &idx));
                prop_assert_eq!(prod.at(&idx), x * y - y);
            }
            for idx in indices(full.shape()) {
                prop_assert_eq!(full.at(&idx), at_broadcast(&ta, &idx));
            }
            // sum_to: every element of `big` lands on the element of `a`'s
            // shape it would have been broadcast from.
            let mut want = Tensor::<f64>::zeros(&a);
            let mut want_mul = Tensor::<f64>::zeros(&a);
            for idx in indices(&out) {
                let lead = idx.len() - a.len();
                let own: Vec<usize> = a.iter().enumerate().map(|(k, &d)| if d == 1 { 0 } else { idx[lead + k] }).collect();
                let flat = own.iter().zip(a.iter()).fold(0, |f, (&i, &d)| f * d + i);
                want.data_mut()[flat] += big.at(&idx);
                want_mul.data_mut()[flat] += big.at(&idx) * at_broadcast(&tb, &idx);
            }
            prop_assert!(summed.max_abs_diff(&want) <= 1e-12);
            prop_assert!(mul_summed.max_abs_diff(&want_mul) <= 1e-12);
        }
    }
}
