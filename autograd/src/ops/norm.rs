//! Norms, built from the primitive ops (so their gradients, and gradients of
//! their gradients, come for free from the rules of `sum_squares`, `square`,
//! `sum_axis` and `sqrt`): `d/dx ||x|| = x / ||x||`, undefined at `x = 0`.

use crate::tape::Var;
use gradtape_kernels::Element;

impl<'t, T: Element> Var<'t, T> {
    /// The Euclidean (L2) norm of all elements, `sqrt(sum x^2)`.
    #[track_caller]
    pub fn norm(self) -> Var<'t, T> {
        self.sum_squares().sqrt()
    }

    /// The Frobenius norm of a matrix: the L2 norm of its elements.
    #[track_caller]
    pub fn frobenius_norm(self) -> Var<'t, T> {
        self.norm()
    }

    /// L2 norm of each row (`[n, k] -> [n]`): the per-sample length of a
    /// batch of codes.
    #[track_caller]
    pub fn row_norms(self) -> Var<'t, T> {
        let r = self.shape().len();
        self.square().sum_axis(r - 1, false).sqrt()
    }
}
