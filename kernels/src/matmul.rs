//! Matrix products through matrixmultiply, split across rayon workers.
//!
//! `matmul_t(a, b, ta, tb)` computes `op(a) @ op(b)` where `op` transposes
//! the last two axes when its flag is set. A transposed operand is never
//! copied: matrixmultiply reads every operand through a row stride and a
//! column stride, and transposing is just swapping the two.
//!
//! Leading axes are batch axes and broadcast like NumPy's `matmul`. When only
//! the left operand has batch axes (a batch of inputs times one weight
//! matrix), the batch is folded into the rows and the whole product is one
//! GEMM.
//!
//! matrixmultiply's own threading does not split the shapes these networks
//! use, so large products are split here instead: the output's rows (or
//! columns, if there are more of those) are divided into one block per rayon
//! worker, and each worker runs single-threaded matrixmultiply on its block.

use crate::element::Element;
use crate::shape::{broadcast_shapes, numel, Shape};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Products with fewer multiply-adds than this stay on one thread. Measured
/// with `bench -- gemm_threshold` (BENCHMARKS.md) with the other worker kept
/// awake, as training runs: splitting a square product across the two cores
/// first pays between 48^3 and 64^3 multiply-adds (between 96^3 and 128^3
/// when the worker had to be woken).
pub const DEFAULT_GEMM_PARALLEL_MACS: usize = 1 << 18;

static GEMM_PARALLEL_MACS: AtomicUsize = AtomicUsize::new(DEFAULT_GEMM_PARALLEL_MACS);

/// Changes the size (in multiply-adds, `m*k*n`) above which products are
/// split across threads; for benchmarks.
pub fn set_gemm_parallel_macs(macs: usize) {
    GEMM_PARALLEL_MACS.store(macs, Ordering::Relaxed);
}

/// A raw pointer that may cross to another thread: each worker writes a
/// disjoint block of the output, so sharing it is sound.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// One strided matrix operand: base pointer, row stride, column stride.
#[derive(Clone, Copy)]
struct Operand<T> {
    ptr: *const T,
    rs: isize,
    cs: isize,
}
unsafe impl<T> Send for Operand<T> {}
unsafe impl<T> Sync for Operand<T> {}

/// `c (m x n, row-major, contiguous) = a (m x k) @ b (k x n) + beta c`, in
/// parallel blocks when large (`beta` is 0 or 1; with 0, `c` is not read).
///
/// # Safety
/// `a` and `b` must address valid `m x k` and `k x n` matrices and `c` must
/// point at `m * n` writable elements that alias neither.
unsafe fn gemm_blocked<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: Operand<T>,
    b: Operand<T>,
    beta: T,
    c: *mut T,
) {
    let threads = rayon::current_num_threads();
    let macs = m * k * n;
    if threads < 2 || macs < GEMM_PARALLEL_MACS.load(Ordering::Relaxed) || (m < 16 && n < 16) {
        T::gemm(m, k, n, T::one(), a.ptr, a.rs, a.cs, b.ptr, b.rs, b.cs, beta, c, n as isize, 1);
        return;
    }
    let c = SendPtr(c);
    if m >= n {
        // Split the rows: each block is a horizontal band of a and of c.
        let band = m.div_ceil(threads);
        (0..m.div_ceil(band)).into_par_iter().for_each(|i| {
            let (a, b, c) = (a, b, c);
            let r0 = i * band;
            let rows = band.min(m - r0);
            T::gemm(
                rows,
                k,
                n,
                T::one(),
                a.ptr.offset(r0 as isize * a.rs),
                a.rs,
                a.cs,
                b.ptr,
                b.rs,
                b.cs,
                beta,
                c.0.add(r0 * n),
                n as isize,
                1,
            );
        });
    } else {
        // Split the columns: each block is a vertical band of b and of c.
        let band = n.div_ceil(threads);
        (0..n.div_ceil(band)).into_par_iter().for_each(|j| {
            let (a, b, c) = (a, b, c);
            let c0 = j * band;
            let cols = band.min(n - c0);
            T::gemm(
                m,
                k,
                cols,
                T::one(),
                a.ptr,
                a.rs,
                a.cs,
                b.ptr.offset(c0 as isize * b.cs),
                b.rs,
                b.cs,
                beta,
                c.0.add(c0),
                n as isize,
                1,
            );
        });
    }
}

/// The (rows, cols) of the last two axes after an optional transpose.
fn matrix_dims(shape: &[usize], transposed: bool) -> (usize, usize) {
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    if transposed {
        (c, r)
    } else {
        (r, c)
    }
}

/// Row and column strides of the last two axes of a contiguous tensor, after
/// an optional transpose (which swaps them).
fn matrix_strides(shape: &[usize], transposed: bool) -> (isize, isize) {
    let cols = shape[shape.len() - 1] as isize;
    if transposed {
        (1, cols)
    } else {
        (cols, 1)
    }
}

/// Offset of the matrix at flat batch index `flat` of the broadcast batch
/// shape `batch`, inside an operand whose own batch shape is `own`.
pub(crate) fn batch_offset(flat: usize, batch: &[usize], own: &[usize], matrix_len: usize) -> usize {
    let mut rem = flat;
    let mut offset = 0;
    let mut stride = matrix_len;
    for axis in (0..batch.len()).rev() {
        let idx = rem % batch[axis];
        rem /= batch[axis];
        let lead = batch.len() - own.len();
        if axis >= lead {
            let d = own[axis - lead];
            if d != 1 {
                offset += idx * stride;
            }
            stride *= d;
        }
    }
    offset
}

impl<T: Element> Tensor<T> {
    /// `self @ other` (see [`Tensor::matmul_t`]).
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        self.matmul_t(other, false, false)
    }

    /// `op(self) @ op(other)`, where `op` transposes the last two axes when
    /// its flag is set (read through strides, never copied). Both operands
    /// need at least two axes; leading axes broadcast as batch axes.
    #[track_caller]
    pub fn matmul_t(&self, other: &Tensor<T>, ta: bool, tb: bool) -> Tensor<T> {
        self.product(other, ta, tb, None)
    }

    /// `acc + op(self) @ op(other)`, the sum made by the product itself
    /// (the BLAS's `C = A B + beta C` with `beta = 1`): one pass over the
    /// output instead of a product and an add. A backward sweep adds a
    /// gradient that reaches a node through a matrix product to the one
    /// already summed there this way. `acc` must have the product's shape
    /// and device; it is written in place unless another tensor shares it
    /// (then it is copied first).
    ///
    /// The same numbers as `acc.add(&self.matmul_t(other, ta, tb))`, though
    /// not always the same bits: where the BLAS sums the inner axis in
    /// blocks, `acc` joins the first block's sum instead of the total.
    #[track_caller]
    pub fn matmul_t_add_to(&self, other: &Tensor<T>, ta: bool, tb: bool, acc: Tensor<T>) -> Tensor<T> {
        self.product(other, ta, tb, Some(acc))
    }

    /// [`Tensor::matmul_t`], or [`Tensor::matmul_t_add_to`] with `acc`.
    #[track_caller]
    fn product(&self, other: &Tensor<T>, ta: bool, tb: bool, acc: Option<Tensor<T>>) -> Tensor<T> {
        let (sa, sb) = (self.shape(), other.shape());
        assert!(
            sa.len() >= 2 && sb.len() >= 2,
            "matmul: needs operands with at least 2 axes, got shapes {sa:?} and {sb:?}"
        );
        let (m, k) = matrix_dims(sa, ta);
        let (k2, n) = matrix_dims(sb, tb);
        assert!(
            k == k2,
            "matmul: shapes {sa:?}{} and {sb:?}{} do not match: inner lengths {k} and {k2}",
            if ta { "^T" } else { "" },
            if tb { "^T" } else { "" }
        );
        let (batch_a, batch_b) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        let Some(batch) = broadcast_shapes(batch_a, batch_b) else {
            panic!("matmul: batch axes of shapes {sa:?} and {sb:?} do not broadcast")
        };
        let mut out_shape: Shape = batch;
        out_shape.push(m);
        out_shape.push(n);
        if let Some(acc) = &acc {
            assert!(
                acc.shape() == &out_shape[..],
                "matmul_t_add_to: the sum so far has shape {:?}, the product of {sa:?} and {sb:?} {:?}",
                acc.shape(),
                &out_shape[..]
            );
            self.same_device(acc, "matmul_t_add_to");
        }
        #[cfg(feature = "cuda")]
        if self.same_device(other, "matmul").is_cuda() {
            return crate::cuda::ops::matmul(self, other, ta, tb, (m, k, n), &batch, out_shape, acc);
        }
        let (rsa, csa) = matrix_strides(sa, ta);
        let (rsb, csb) = matrix_strides(sb, tb);
        let b_op = |offset: usize| Operand { ptr: other.data()[offset..].as_ptr(), rs: rsb, cs: csb };
        let batches = numel(&batch);
        let adds = acc.is_some();
        let beta = if adds { T::one() } else { T::zero() };
        // matrixmultiply with beta = 0 never reads C, so a recycled buffer
        // with old numbers in it is fine; every element is written.
        let fill = |out: &mut [T]| {
            if k == 0 || out.is_empty() {
                if !adds {
                    out.fill(T::zero());
                }
            } else if !ta && numel(batch_b) == 1 {
                // A batch of row-major matrices times one matrix: one tall GEMM.
                let a = Operand { ptr: self.data().as_ptr(), rs: rsa, cs: csa };
                unsafe { gemm_blocked(batches * m, k, n, a, b_op(0), beta, out.as_mut_ptr()) };
            } else {
                let (len_a, len_b) = (m * k, k * n);
                for i in 0..batches {
                    let oa = batch_offset(i, &batch, batch_a, len_a);
                    let ob = batch_offset(i, &batch, batch_b, len_b);
                    let a = Operand { ptr: self.data()[oa..].as_ptr(), rs: rsa, cs: csa };
                    unsafe { gemm_blocked(m, k, n, a, b_op(ob), beta, out[i * m * n..].as_mut_ptr()) };
                }
            }
        };
        match acc {
            None => Tensor::from_fill(&out_shape, fill),
            Some(mut acc) => {
                fill(acc.data_mut());
                acc
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, for reference.
    fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a.at(&[i, p]) * b.at(&[p, j])).sum();
            }
        }
        Tensor::from_vec(out, &[m, n])
    }

    #[test]
    fn matmul_matches_the_triple_loop_in_every_transpose_combination() {
        let a = Tensor::<f64>::normal(&[7, 5], 0.0, 1.0, 1);
        let b = Tensor::<f64>::normal(&[5, 3], 0.0, 1.0, 2);
        let want = naive(&a, &b);
        assert!(a.matmul(&b).max_abs_diff(&want) < 1e-12);
        assert!(a.transpose().matmul_t(&b, true, false).max_abs_diff(&want) < 1e-12);
        assert!(a.matmul_t(&b.transpose(), false, true).max_abs_diff(&want) < 1e-12);
        assert!(a.transpose().matmul_t(&b.transpose(), true, true).max_abs_diff(&want) < 1e-12);
    }

    #[test]
    fn large_products_split_across_threads_agree_with_serial() {
        for (m, k, n) in [(300, 70, 40), (20, 90, 400)] {
            let a = Tensor::<f64>::normal(&[m, k], 0.0, 1.0, 3);
            let b = Tensor::<f64>::normal(&[k, n], 0.0, 1.0, 4);
            let fast = a.matmul(&b);
            let bt = b.transpose();
            let slow = a.matmul_t(&bt, false, true);
            assert!(fast.max_abs_diff(&slow) < 1e-10);
            assert!(fast.max_abs_diff(&naive(&a, &b)) < 1e-10);
        }
    }

    #[test]
    fn batched_matmul_broadcasts_batch_axes() {
        let a = Tensor::<f64>::normal(&[2, 3, 4, 5], 0.0, 1.0, 5);
        let b = Tensor::<f64>::normal(&[3, 5, 2], 0.0, 1.0, 6);
        let c = a.matmul(&b);
        assert_eq!(c.shape(), &[2, 3, 4, 2]);
        for i in 0..2 {
            for j in 0..3 {
                let ai = a.select(0, i).select(0, j);
                let bj = b.select(0, j);
                let want = naive(&ai, &bj);
                assert!(c.select(0, i).select(0, j).max_abs_diff(&want) < 1e-12);
            }
        }
        // Batch on the left only: folded into one GEMM.
        let w = Tensor::<f64>::normal(&[5, 2], 0.0, 1.0, 7);
        let d = a.matmul(&w);
        let want = naive(&a.select(0, 1).select(0, 2), &w);
        assert!(d.select(0, 1).select(0, 2).max_abs_diff(&want) < 1e-12);
    }

    /// The product added to a sum inside the BLAS call is the sum plus the
    /// product: every transpose, a product split across workers, an inner
    /// axis long enough for the BLAS to sum it in blocks, batch axes.
    #[test]
    fn a_product_added_inside_the_blas_is_the_sum_plus_the_product() {
        for (m, k, n) in [(7, 5, 3), (300, 70, 40), (20, 900, 30)] {
            let a = Tensor::<f64>::normal(&[m, k], 0.0, 1.0, 8);
            let b = Tensor::<f64>::normal(&[k, n], 0.0, 1.0, 9);
            let acc = Tensor::<f64>::normal(&[m, n], 0.0, 1.0, 10);
            let want = acc.add(&a.matmul(&b));
            let (at, bt) = (a.transpose(), b.transpose());
            for (x, y, ta, tb) in [
                (&a, &b, false, false),
                (&at, &b, true, false),
                (&a, &bt, false, true),
                (&at, &bt, true, true),
            ] {
                let got = x.matmul_t_add_to(y, ta, tb, acc.clone());
                let diff = got.max_abs_diff(&want);
                assert!(diff <= 1e-13 * k as f64, "{m}x{k}x{n} ta {ta} tb {tb}: off by {diff}");
            }
        }
        let a = Tensor::<f64>::normal(&[2, 3, 4, 5], 0.0, 1.0, 11);
        let b = Tensor::<f64>::normal(&[3, 5, 2], 0.0, 1.0, 12);
        let acc = Tensor::<f64>::normal(&[2, 3, 4, 2], 0.0, 1.0, 13);
        assert!(
            a.matmul_t_add_to(&b, false, false, acc.clone()).max_abs_diff(&acc.add(&a.matmul(&b))) < 1e-12
        );
        // An empty inner axis adds nothing.
        let (e1, e2) = (Tensor::<f64>::zeros(&[4, 0]), Tensor::<f64>::zeros(&[0, 2]));
        let acc = Tensor::<f64>::normal(&[4, 2], 0.0, 1.0, 14);
        assert_eq!(e1.matmul_t_add_to(&e2, false, false, acc.clone()).data(), acc.data());
    }

    /// A sum that another tensor shares is copied before the product is
    /// added to it: the other tensor keeps its numbers.
    #[test]
    fn a_shared_sum_is_left_as_it_was() {
        let a = Tensor::<f32>::normal(&[6, 4], 0.0, 1.0, 15);
        let b = Tensor::<f32>::normal(&[4, 3], 0.0, 1.0, 16);
        let acc = Tensor::<f32>::normal(&[6, 3], 0.0, 1.0, 17);
        let kept = acc.clone();
        let before = acc.to_vec();
        let sum = a.matmul_t_add_to(&b, false, false, acc);
        assert_eq!(kept.to_vec(), before);
        assert_ne!(sum.to_vec(), before);
    }

    #[test]
    #[should_panic(
        expected = "matmul_t_add_to: the sum so far has shape [3, 3], the product of [2, 4] and [4, 3] [2, 3]"
    )]
    fn a_sum_of_another_shape_is_refused_naming_the_shapes() {
        let _ = Tensor::<f32>::zeros(&[2, 4]).matmul_t_add_to(
            &Tensor::zeros(&[4, 3]),
            false,
            false,
            Tensor::zeros(&[3, 3]),
        );
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] do not match: inner lengths 3 and 4")]
    fn mismatched_inner_lengths_name_both_shapes() {
        let _ = Tensor::<f32>::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
    }
}
