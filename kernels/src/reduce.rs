//! Reductions: sum, mean and max, over all elements or along one axis.
//!
//! Parallel sums are split into fixed chunks whose partial sums are added in
//! order, so the result does not depend on how rayon schedules the chunks:
//! the same input gives the same bits every time.

use crate::element::Element;
use crate::elementwise::{parallel_threshold, sum2_wide};
use crate::shape::{check_axis, Shape};
use crate::tensor::Tensor;
use ndarray::{Axis, Zip};

const CHUNK: usize = 1 << 13;

/// The shape left after reducing `axis` (kept as length 1 if `keepdim`).
pub fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Shape {
    let mut out = Shape::from_slice(shape);
    if keepdim {
        out[axis] = 1;
    } else {
        out.remove(axis);
    }
    out
}

/// Independent running sums in a lane sum: enough to hide the latency of a
/// floating-point add and to fill a vector register, so the loop vectorises.
const LANES: usize = 16;

/// `sum_i f(a_i, b_i)` over two equal-length slices, in [`LANES`]
/// interleaved running sums added together at the end. A single running
/// sum would make every add wait for the previous one (strict order is what
/// the compiler must keep for floats); the lanes fix an order that is just
/// as deterministic and many times faster.
#[inline(always)]
pub(crate) fn lane_sum2<T: Element>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] = acc[k] + f(xa[k], xb[k]);
        }
    }
    for (k, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        acc[k] = acc[k] + f(x, y);
    }
    acc.iter().fold(T::zero(), |s, &x| s + x)
}

/// `sum_i f(a_i)` in lane sums (see [`lane_sum2`]).
#[inline]
pub(crate) fn lane_sum<T: Element>(a: &[T], f: impl Fn(T) -> T) -> T {
    lane_sum2(a, a, |x, _| f(x))
}

impl<T: Element> Tensor<T> {
    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_all(self, "sum_partials", "sum_finish");
        }
        Tensor::scalar(self.chunked_sum(|x| x))
    }

    /// Sum of the squares of all elements (the squared L2 or Frobenius
    /// norm), as a 0-d tensor, in one pass.
    pub fn sum_squares(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_all(self, "sum_squares_partials", "sum_finish");
        }
        Tensor::scalar(self.chunked_sum(|x| x * x))
    }

    /// `sum_i f(x_i)`: fixed chunks (in parallel when large) whose partial
    /// sums are added in order, so the bits do not depend on scheduling
    /// ([`Tensor::chunked_sum2`] with the tensor twice).
    fn chunked_sum(&self, f: impl Fn(T) -> T + Sync) -> T {
        self.chunked_sum2(self, |x, _| f(x))
    }

    /// `sum_i f(self_i, other_i)` over two equal-length tensors: fixed
    /// chunks (in parallel when large) whose partial sums are added in
    /// order, the same chunks and lanes as [`Tensor::sum_all`], so the same
    /// bits as summing the tensor of `f(self_i, other_i)` without writing it
    /// out.
    ///
    /// Each chunk's lane sum runs on the widest vectors the CPU has
    /// (`elementwise::sum2_wide`), which add in the same order.
    pub(crate) fn chunked_sum2(&self, other: &Tensor<T>, f: impl Fn(T, T) -> T + Sync) -> T {
        let (a, b) = (self.data(), other.data());
        debug_assert_eq!(a.len(), b.len());
        let chunk_sum = |a: &[T], b: &[T]| {
            let mut total = T::zero();
            sum2_wide(a, b, &mut total, &f);
            total
        };
        if a.len() >= parallel_threshold() {
            let partial: Vec<T> = crate::elementwise::map_tasks(a.len().div_ceil(CHUNK), &|i| {
                let at = i * CHUNK..((i + 1) * CHUNK).min(a.len());
                chunk_sum(&a[at.clone()], &b[at])
            });
            partial.into_iter().fold(T::zero(), |s, x| s + x)
        } else {
            a.chunks(CHUNK).zip(b.chunks(CHUNK)).fold(T::zero(), |s, (a, b)| s + chunk_sum(a, b))
        }
    }

    /// Mean of all elements, as a 0-d tensor.
    pub fn mean_all(&self) -> Tensor<T> {
        let n = T::of(self.len() as f64);
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return self.sum_all().mul_scalar(T::one() / n);
        }
        Tensor::scalar(self.sum_all().item() / n)
    }

    /// Largest element, as a 0-d tensor; NaN if any element is NaN (as
    /// PyTorch's `max`).
    #[track_caller]
    pub fn max_all(&self) -> Tensor<T> {
        assert!(!self.is_empty(), "max: tensor of shape {:?} is empty", self.shape());
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_all(self, "max_partials", "max_finish");
        }
        Tensor::scalar(self.data().iter().copied().fold(T::neg_infinity(), max_nan))
    }

    /// Sum along `axis`.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        check_axis("sum", self.shape(), axis);
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_axis(
                self,
                axis,
                "sum_axis",
                reduced_shape(self.shape(), axis, keepdim),
            );
        }
        let out = self.view().sum_axis(Axis(axis));
        Tensor::from_array(out).reshape(&reduced_shape(self.shape(), axis, keepdim))
    }

    /// Mean along `axis`.
    #[track_caller]
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        check_axis("mean", self.shape(), axis);
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_axis(
                self,
                axis,
                "mean_axis",
                reduced_shape(self.shape(), axis, keepdim),
            );
        }
        let n = T::of(self.shape()[axis] as f64);
        self.sum_axis(axis, keepdim).map(|x| x / n)
    }

    /// Largest element along `axis`; NaN in a lane that holds one.
    #[track_caller]
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        check_axis("max", self.shape(), axis);
        assert!(self.shape()[axis] > 0, "max: axis {axis} of shape {:?} is empty", self.shape());
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_axis(
                self,
                axis,
                "max_axis",
                reduced_shape(self.shape(), axis, keepdim),
            );
        }
        let out = self.view().fold_axis(Axis(axis), T::neg_infinity(), |&m, &x| max_nan(m, x));
        Tensor::from_array(out).reshape(&reduced_shape(self.shape(), axis, keepdim))
    }

    /// A one-hot mask marking the first largest element, over the whole
    /// tensor (`axis = None`) or along each lane of `axis`. It is how the
    /// gradient of max flows: only to the element that won.
    ///
    /// NaN wins, as it does in [`Tensor::max_all`]: where the tensor (or a
    /// lane) holds NaN, the first NaN is marked, and marked with NaN rather
    /// than 1, like the other masks (`step`, `sign`, `inside_mask`), so that
    /// the gradient it lets through is NaN too.
    #[track_caller]
    pub fn max_mask(&self, axis: Option<usize>) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            if let Some(axis) = axis {
                check_axis("max", self.shape(), axis);
            }
            return crate::cuda::ops::max_mask(self, axis);
        }
        let mut out = Tensor::zeros(self.shape());
        match axis {
            None => {
                let (mut best, mut at) = (T::neg_infinity(), 0);
                for (i, &x) in self.data().iter().enumerate() {
                    if beats(x, best) || i == 0 {
                        best = x;
                        at = i;
                    }
                }
                if !self.is_empty() {
                    out.data_mut()[at] = mark(best);
                }
            }
            Some(axis) => {
                check_axis("max", self.shape(), axis);
                let src = self.view();
                let mut dst = out.view_mut();
                Zip::from(dst.lanes_mut(Axis(axis))).and(src.lanes(Axis(axis))).for_each(|mut o, l| {
                    let mut at = 0;
                    for (i, &x) in l.iter().enumerate() {
                        if beats(x, l[at]) {
                            at = i;
                        }
                    }
                    if !l.is_empty() {
                        o[at] = mark(l[at]);
                    }
                });
            }
        }
        out
    }
}

/// The larger of two numbers, NaN if either is (`f64::max` drops NaN).
#[inline(always)]
fn max_nan<T: Element>(m: T, x: T) -> T {
    if x > m || x.is_nan() {
        x
    } else {
        m
    }
}

/// Whether `x` takes the place of the current winner `best` of a max: it is
/// larger, or it is the first NaN.
#[inline(always)]
fn beats<T: Element>(x: T, best: T) -> bool {
    x > best || (x.is_nan() && !best.is_nan())
}

/// The mask entry of a max's winner: 1, or NaN for a NaN winner.
#[inline(always)]
fn mark<T: Element>(winner: T) -> T {
    if winner.is_nan() {
        winner
    } else {
        T::one()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::with_parallel_threshold;

    #[test]
    fn reductions_over_all_and_one_axis() {
        let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
        assert_eq!(t.sum_all().item(), 15.0);
        assert_eq!(t.mean_all().item(), 2.5);
        assert_eq!(t.max_all().item(), 5.0);
        assert_eq!(t.sum_axis(0, false).to_vec(), vec![3.0, 5.0, 7.0]);
        assert_eq!(t.sum_axis(1, true).shape(), &[2, 1]);
        assert_eq!(t.sum_axis(1, true).to_vec(), vec![3.0, 12.0]);
        assert_eq!(t.mean_axis(1, false).to_vec(), vec![1.0, 4.0]);
        assert_eq!(t.max_axis(0, false).to_vec(), vec![3.0, 4.0, 5.0]);
        assert_eq!(t.max_mask(Some(1)).to_vec(), vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.max_mask(None).to_vec(), vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn max_and_its_mask_let_nan_through() {
        let nan = f64::NAN;
        let t = Tensor::<f64>::from_vec(vec![1.0, nan, 5.0, 2.0, 3.0, nan], &[2, 3]);
        assert!(t.max_all().item().is_nan());
        let along_rows = t.max_axis(1, false).to_vec();
        assert!(along_rows[0].is_nan() && along_rows[1].is_nan(), "{along_rows:?}");
        let down = t.max_axis(0, false).to_vec();
        assert_eq!(down[0], 2.0);
        assert!(down[1].is_nan() && down[2].is_nan(), "{down:?}");
        // The first NaN is marked, with NaN; every other entry is 0.
        let mask = t.max_mask(None).to_vec();
        assert!(mask[1].is_nan());
        assert!([0, 2, 3, 4, 5].iter().all(|&i| mask[i] == 0.0), "{mask:?}");
        let mask = t.max_mask(Some(1)).to_vec();
        assert!(mask[1].is_nan() && mask[5].is_nan());
        assert!([0, 2, 3, 4].iter().all(|&i| mask[i] == 0.0), "{mask:?}");
        // A NaN first in a lane still wins against a larger number after it.
        let first = Tensor::<f64>::from_vec(vec![nan, 9.0], &[2]);
        assert!(first.max_all().item().is_nan());
        assert!(first.max_mask(None).to_vec()[0].is_nan());
        assert_eq!(first.max_mask(None).to_vec()[1], 0.0);
        assert!(first.max_mask(Some(0)).to_vec()[0].is_nan());
        let sum = t.sum_all().item();
        assert!(sum.is_nan(), "sums propagate by IEEE arithmetic: {sum}");
    }

    #[test]
    fn parallel_sum_is_deterministic_and_close_to_serial() {
        let t = Tensor::<f32>::uniform(&[300_000], 0.0, 1.0, 9);
        let a = with_parallel_threshold(1, || t.sum_all().item());
        let b = with_parallel_threshold(1, || t.sum_all().item());
        assert_eq!(a.to_bits(), b.to_bits());
        // One thread adds the same chunks' partial sums in the same order.
        let one_thread = with_parallel_threshold(usize::MAX, || t.sum_all().item());
        assert_eq!(a.to_bits(), one_thread.to_bits());
        let serial: f64 = t.data().iter().map(|&x| x as f64).sum();
        assert!(((a as f64) - serial).abs() / serial < 1e-5);
    }

    #[test]
    #[should_panic(expected = "sum: axis 2 is out of range for shape [2, 3]")]
    fn bad_axis_names_the_op() {
        let _ = Tensor::<f32>::zeros(&[2, 3]).sum_axis(2, false);
    }
}
