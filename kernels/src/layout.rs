//! Kernels that move elements around without arithmetic (or with only the
//! sums that undo a broadcast): transpose, broadcast, sum-to, and selecting,
//! slicing and their inverses along one axis.

use crate::broadcast::{copy_rows, mul_sum_rows, sum_rows, Rows};
use crate::element::Element;
use crate::shape::{broadcasts_to, check_axis, numel, Shape};
use crate::tensor::Tensor;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

impl<T: Element> Tensor<T> {
    /// Swaps the last two axes (a matrix transpose, batched over any leading
    /// axes). Copies into row-major order.
    #[track_caller]
    pub fn transpose(&self) -> Tensor<T> {
        let r = self.rank();
        assert!(r >= 2, "transpose: needs at least 2 axes, got shape {:?}", self.shape());
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::transpose(self);
        }
        let mut v = self.view();
        v.swap_axes(r - 2, r - 1);
        Tensor::from_array(v.as_standard_layout().into_owned())
    }

    /// Repeats the tensor along axes of length 1 (and new leading axes) to
    /// reach `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
        assert!(
            broadcasts_to(self.shape(), shape),
            "broadcast_to: shape {:?} does not broadcast to {:?}",
            self.shape(),
            shape
        );
        if self.shape() == shape {
            return self.clone();
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::broadcast_to(self, shape);
        }
        if self.len() == 1 {
            return Tensor::full(shape, self.data()[0]);
        }
        let rows = Rows::new(shape, self.shape(), &[]);
        Tensor::from_fill(shape, |out| copy_rows(&rows, self.data(), out))
    }

    /// Sums over the axes that a broadcast to this tensor's shape would have
    /// added, so that the result has `shape`. This is the one place where the
    /// gradient of a broadcast is undone: d/dx of `broadcast_to(x)` is
    /// `sum_to(g, x.shape)`.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        assert!(
            broadcasts_to(shape, self.shape()),
            "sum_to: shape {:?} cannot be summed to {:?}",
            self.shape(),
            shape
        );
        if self.shape() == shape {
            return self.clone();
        }
        // To one number: the whole-tensor reduction, which on a GPU spreads
        // over many threads (the per-output kernel would run one thread).
        if numel(shape) == 1 {
            return self.sum_all().reshape(shape);
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::sum_to(self, None, shape);
        }
        let rows = Rows::new(self.shape(), shape, &[]);
        Tensor::from_fill(shape, |out| {
            out.fill(T::zero());
            sum_rows(&rows, self.data(), out);
        })
    }

    /// `(self * other).sum_to(shape)` without writing out the product: the
    /// gradient of a broadcast operand of `a * b` is `sum_to(g * b)`, and
    /// this does it in one pass. `other` must broadcast to `self`'s shape and
    /// `shape` must broadcast to it too.
    #[track_caller]
    pub fn mul_sum_to(&self, other: &Tensor<T>, shape: &[usize]) -> Tensor<T> {
        assert!(
            broadcasts_to(shape, self.shape()) && broadcasts_to(other.shape(), self.shape()),
            "mul_sum_to: shapes {:?} (other) and {:?} (target) must both broadcast to {:?}",
            other.shape(),
            shape,
            self.shape()
        );
        #[cfg(feature = "cuda")]
        if self.same_device(other, "mul_sum_to").is_cuda() {
            if numel(shape) == 1 {
                // To one number: the product, then the whole-tensor sum
                // (spread over the GPU, not one thread).
                return self.mul(other).sum_all().reshape(shape);
            }
            return crate::cuda::ops::sum_to(self, Some(other), shape);
        }
        let rows = Rows::new(self.shape(), shape, other.shape());
        Tensor::from_fill(shape, |out| {
            out.fill(T::zero());
            mul_sum_rows(&rows, self.data(), other.data(), out);
        })
    }

    /// Picks index `index` along `axis`, removing that axis: for a matrix,
    /// `select(1, j)` is column `j` (`h[:, j]`), `select(0, i)` is row `i`.
    #[track_caller]
    pub fn select(&self, axis: usize, index: usize) -> Tensor<T> {
        check_axis("select", self.shape(), axis);
        assert!(
            index < self.shape()[axis],
            "select: index {index} out of range for axis {axis} of shape {:?}",
            self.shape()
        );
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::select(self, axis, index, self.shape()[axis], false);
        }
        Tensor::from_array(self.view().index_axis(Axis(axis), index).as_standard_layout().into_owned())
    }

    /// The inverse of [`Tensor::select`]: a tensor of zeros with a new axis
    /// of length `len` at `axis`, holding `self` at `index` along it.
    #[track_caller]
    pub fn unselect(&self, axis: usize, index: usize, len: usize) -> Tensor<T> {
        assert!(axis <= self.rank(), "unselect: axis {axis} out of range for shape {:?}", self.shape());
        assert!(index < len, "unselect: index {index} out of range for length {len}");
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::select(self, axis, index, len, true);
        }
        let mut shape = Shape::from_slice(self.shape());
        shape.insert(axis, len);
        let mut out = ArrayD::<T>::zeros(IxDyn(&shape));
        out.index_axis_mut(Axis(axis), index).assign(&self.view());
        Tensor::from_array(out)
    }

    /// Elements `start .. start + len` along `axis`.
    #[track_caller]
    pub fn slice_axis(&self, axis: usize, start: usize, len: usize) -> Tensor<T> {
        check_axis("slice", self.shape(), axis);
        assert!(
            start + len <= self.shape()[axis],
            "slice: range {start}..{} out of range for axis {axis} of shape {:?}",
            start + len,
            self.shape()
        );
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::slice_or_pad(self, axis, start, len, false);
        }
        let v = self.view();
        let s = v.slice_axis(Axis(axis), Slice::from(start..start + len));
        Tensor::from_array(s.as_standard_layout().into_owned())
    }

    /// The inverse of [`Tensor::slice_axis`]: pads with zeros along `axis` so
    /// that `self` sits at `start` in an axis of length `total`.
    #[track_caller]
    pub fn pad_axis(&self, axis: usize, start: usize, total: usize) -> Tensor<T> {
        check_axis("pad", self.shape(), axis);
        let len = self.shape()[axis];
        assert!(start + len <= total, "pad: {len} elements at {start} do not fit in {total}");
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::slice_or_pad(self, axis, start, total, true);
        }
        let mut shape = Shape::from_slice(self.shape());
        shape[axis] = total;
        let mut out = ArrayD::<T>::zeros(IxDyn(&shape));
        out.slice_axis_mut(Axis(axis), Slice::from(start..start + len)).assign(&self.view());
        Tensor::from_array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_the_last_two_axes() {
        let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
        let tt = t.transpose();
        assert_eq!(tt.shape(), &[3, 2]);
        assert_eq!(tt.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let b = Tensor::<f64>::arange(12).reshape(&[2, 2, 3]).transpose();
        assert_eq!(b.shape(), &[2, 3, 2]);
        assert_eq!(b.at(&[1, 2, 0]), 8.0);
    }

    #[test]
    fn broadcast_then_sum_to_round_trips() {
        let b = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        let big = b.broadcast_to(&[2, 4, 3]);
        assert_eq!(big.shape(), &[2, 4, 3]);
        assert_eq!(big.sum_to(&[3]).to_vec(), vec![8.0, 16.0, 24.0]);
        assert_eq!(big.sum_to(&[4, 1]).to_vec(), vec![12.0; 4]);
        assert_eq!(big.sum_to(&[]).item(), 48.0);
    }

    #[test]
    fn select_slice_and_their_inverses() {
        let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
        assert_eq!(t.select(1, 2).to_vec(), vec![2.0, 5.0]);
        assert_eq!(t.select(0, 1).to_vec(), vec![3.0, 4.0, 5.0]);
        let u = t.select(1, 2).unselect(1, 2, 3);
        assert_eq!(u.to_vec(), vec![0.0, 0.0, 2.0, 0.0, 0.0, 5.0]);
        let s = t.slice_axis(1, 1, 2);
        assert_eq!(s.to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
        assert_eq!(s.pad_axis(1, 1, 3).to_vec(), vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    }

    #[test]
    #[should_panic(expected = "select: index 3 out of range for axis 1 of shape [2, 3]")]
    fn select_out_of_range_names_the_op() {
        let _ = Tensor::<f32>::zeros(&[2, 3]).select(1, 3);
    }
}
