//! Ops that rearrange elements: reshape, transpose, broadcast, sum-to,
//! select and slice.
//!
//! Their backward rules come in inverse pairs, which makes them easy to
//! trust: the gradient of a reshape is the reshape back; of a transpose, the
//! transpose; of a broadcast, the sum that undoes it (and vice versa); of
//! picking one column, putting that column back into zeros (and vice versa);
//! of slicing, padding with zeros (and vice versa).

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::Element;

impl<'t, T: Element> Var<'t, T> {
    /// Same elements, new shape.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        self.record(self.value().reshape(shape), Op::Reshape(self.id))
    }

    /// Swaps the last two axes.
    #[track_caller]
    pub fn transpose(self) -> Var<'t, T> {
        self.record(self.value().transpose(), Op::Transpose(self.id))
    }

    /// Repeats along length-1 (and new leading) axes to reach `shape`.
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        self.record(self.value().broadcast_to(shape), Op::BroadcastTo(self.id))
    }

    /// Sums away the axes a broadcast to this shape would have added.
    #[track_caller]
    pub fn sum_to(self, shape: &[usize]) -> Var<'t, T> {
        self.record(self.value().sum_to(shape), Op::SumTo(self.id))
    }

    /// Index `index` along `axis`, dropping the axis. For a batch of hidden
    /// codes `h` of shape `[n, k]`, `h.select(1, j)` is `h[:, j]`.
    #[track_caller]
    pub fn select(self, axis: usize, index: usize) -> Var<'t, T> {
        self.record(self.value().select(axis, index), Op::Select { x: self.id, axis, index })
    }

    /// Column `j` of a matrix: `self[:, j]`.
    #[track_caller]
    pub fn column(self, j: usize) -> Var<'t, T> {
        self.select(1, j)
    }

    /// Row `i` of a matrix: `self[i, :]`.
    #[track_caller]
    pub fn row(self, i: usize) -> Var<'t, T> {
        self.select(0, i)
    }

    /// The inverse of `select`: zeros with a new axis of length `len` at
    /// `axis`, holding this value at `index`.
    #[track_caller]
    pub fn unselect(self, axis: usize, index: usize, len: usize) -> Var<'t, T> {
        let v = self.value().unselect(axis, index, len);
        self.record(v, Op::Unselect { x: self.id, axis, index })
    }

    /// Elements `start .. start + len` along `axis`.
    #[track_caller]
    pub fn slice_axis(self, axis: usize, start: usize, len: usize) -> Var<'t, T> {
        let v = self.value().slice_axis(axis, start, len);
        self.record(v, Op::Slice { x: self.id, axis, start })
    }

    /// The inverse of `slice_axis`: zero-padding to length `total` along
    /// `axis`, with this value starting at `start`.
    #[track_caller]
    pub fn pad_axis(self, axis: usize, start: usize, total: usize) -> Var<'t, T> {
        let v = self.value().pad_axis(axis, start, total);
        self.record(v, Op::Pad { x: self.id, axis, start })
    }
}

// ---- backward rules -------------------------------------------------------

/// Reshape moves no numbers: the gradient is reshaped back.
pub(crate) fn reshape_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.reshape(&x.shape())
}

/// d(X^T) = (dX)^T.
pub(crate) fn transpose_grad<T: Element, A: Algebra<T>>(g: &A) -> A {
    g.transpose()
}

/// Each input element was copied to several outputs: add their gradients.
pub(crate) fn broadcast_to_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.sum_to(&x.shape())
}

/// Each output was a sum of inputs with weight 1: copy the gradient back.
pub(crate) fn sum_to_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.broadcast_to(&x.shape())
}

/// Only the selected slice was used: its gradient goes back in place,
/// zeros elsewhere.
pub(crate) fn select_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize, index: usize) -> A {
    g.unselect(axis, index, x.shape()[axis])
}

/// The zeros around the value carry no gradient: pick its slice back out.
pub(crate) fn unselect_grad<T: Element, A: Algebra<T>>(g: &A, axis: usize, index: usize) -> A {
    g.select(axis, index)
}

/// The slice's gradient goes back in place, zeros elsewhere.
pub(crate) fn slice_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize, start: usize) -> A {
    g.pad_axis(axis, start, x.shape()[axis])
}

/// The padding carries no gradient: cut the value's part back out.
pub(crate) fn pad_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize, start: usize) -> A {
    g.slice_axis(axis, start, x.shape()[axis])
}
