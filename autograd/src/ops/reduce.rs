//! Reductions: sum, mean and max, over everything or along one axis.
//!
//! Backward of a reduction spreads the output gradient back over the
//! elements that were reduced: evenly for sum (each element contributed with
//! weight 1) and mean (weight 1/n), and only to the winner for max. When the
//! axis was dropped (`keepdim = false`) it is first put back with length 1 so
//! that the gradient broadcasts along it.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::reduce::reduced_shape;
use gradtape_kernels::{Element, Formula};

impl<'t, T: Element> Var<'t, T> {
    /// Sum of all elements (a 0-d result).
    #[track_caller]
    pub fn sum(self) -> Var<'t, T> {
        self.record(self.value().sum_all(), Op::SumAll(self.id))
    }

    /// Sum of the squares of all elements (a 0-d result): the squared L2
    /// norm, `(x ** 2).sum()` in one pass and one node.
    #[track_caller]
    pub fn sum_squares(self) -> Var<'t, T> {
        self.record(self.value().sum_squares(), Op::SumSquares(self.id))
    }

    /// Mean of all elements (a 0-d result).
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        self.record(self.value().mean_all(), Op::MeanAll(self.id))
    }

    /// Largest element (a 0-d result).
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        self.record(self.value().max_all(), Op::MaxAll(self.id))
    }

    /// Sum along `axis`, keeping it with length 1 if `keepdim`.
    #[track_caller]
    pub fn sum_axis(self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.record(self.value().sum_axis(axis, keepdim), Op::SumAxis { x: self.id, axis })
    }

    /// Mean along `axis`.
    #[track_caller]
    pub fn mean_axis(self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.record(self.value().mean_axis(axis, keepdim), Op::MeanAxis { x: self.id, axis })
    }

    /// Largest element along `axis`.
    #[track_caller]
    pub fn max_axis(self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.record(self.value().max_axis(axis, keepdim), Op::MaxAxis { x: self.id, axis })
    }
}

// ---- backward rules -------------------------------------------------------

/// d/dx_i sum(x) = 1: the gradient is copied to every element.
pub(crate) fn sum_all_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.broadcast_to(&x.shape())
}

/// d/dx_i sum(x^2) = 2 x_i. `g` is one number, and the product broadcasts
/// it in the same pass that doubles `x`.
pub(crate) fn sum_squares_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    let two = T::of(2.0);
    g.fused(x, Formula::SumSquaresGrad, move |g, x| two * x * g, |g, x| x.mul(g).scale(two))
}

/// d/dx_i mean(x) = 1/n.
pub(crate) fn mean_all_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    let shape = x.shape();
    let n = shape.iter().product::<usize>();
    // Scaled while it is one number, then copied out: one pass, not two.
    g.scale(T::one() / T::of(n as f64)).broadcast_to(&shape)
}

/// d/dx_i max(x) = 1 for the (first) largest element, 0 elsewhere.
pub(crate) fn max_all_grad<T: Element, A: Algebra<T>>(g: &A, x: &A) -> A {
    g.broadcast_to(&x.shape()).mul(&x.max_mask(None))
}

/// The output gradient with the reduced axis restored (length 1) and
/// broadcast back over it.
fn spread<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize) -> A {
    let shape = x.shape();
    g.reshape(&reduced_shape(&shape, axis, true)).broadcast_to(&shape)
}

/// d/dx_ij sum_j x_ij = 1 along the summed axis.
pub(crate) fn sum_axis_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize) -> A {
    spread(g, x, axis)
}

/// d/dx_ij mean_j x_ij = 1/n along the averaged axis.
pub(crate) fn mean_axis_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize) -> A {
    let n = x.shape()[axis];
    spread(&g.scale(T::one() / T::of(n as f64)), x, axis)
}

/// d/dx_ij max_j x_ij = 1 for the (first) winner of each lane, else 0.
pub(crate) fn max_axis_grad<T: Element, A: Algebra<T>>(g: &A, x: &A, axis: usize) -> A {
    spread(g, x, axis).mul(&x.max_mask(Some(axis)))
}
