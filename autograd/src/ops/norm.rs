//! Norms: `d/dx ||x|| = x / ||x||`, undefined at `x = 0`. Row norms are
//! built from the primitive ops (so their gradients, and gradients of their
//! gradients, come from the rules of `square`, `sum_axis` and `sqrt`); the
//! norm of a whole tensor is the fused op `norm` (`fused.rs`), which is
//! `sum_squares().sqrt()` in one reduction and whose rule is those two
//! plain rules in one pass.

use crate::tape::Var;
use gradtape_kernels::Element;

impl<'t, T: Element> Var<'t, T> {
    /// The Euclidean (L2) norm of all elements, `sqrt(sum x^2)`, recorded
    /// as one node (the fused op of `fused.rs`; `sum_squares().sqrt()` in
    /// plain ops, as inside [`without_fusion`](crate::without_fusion)).
    #[track_caller]
    pub fn norm(self) -> Var<'t, T> {
        if !crate::ops::fused::fusion_enabled() {
            return self.sum_squares().sqrt();
        }
        self.record(self.value().norm(), crate::op::Op::Norm(self.id))
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
