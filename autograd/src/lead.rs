//! Batched cotangents: many backward sweeps in one.
//!
//! A backward sweep computes one vector-Jacobian product `v^T J`. To get
//! many (every row of a Jacobian, say), PyTorch offers
//! `torch.autograd.grad(..., is_grads_batched=True)` and JAX `vmap` over a
//! VJP: stack the `v`s along a new leading axis and sweep once.
//!
//! Most backward rules need no change for that. Elementwise rules multiply
//! the gradient by something of the op's shape, and NumPy broadcasting lines
//! the trailing axes up, leaving the leading batch axis alone. Matrix
//! products treat it as one more batch axis. What does need care is every
//! rule that names a shape or an axis: "reshape to the input's shape" must
//! become "reshape to (batch, input's shape)", axis `k` becomes axis `k + 1`,
//! and "sum back to the input's shape" must not sum over the batch. [`Lead`]
//! carries the leading batch shape and does those three translations; in an
//! ordinary sweep it is empty and each translation does nothing.

use crate::algebra::Algebra;
use gradtape_kernels::{Element, Shape};

/// The leading axes every gradient carries in a batched sweep (none in an
/// ordinary one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Lead(pub(crate) Shape);

impl Lead {
    /// No batch axes: an ordinary sweep.
    pub(crate) fn none() -> Lead {
        Lead(Shape::default())
    }

    /// Whether this is an ordinary (unbatched) sweep.
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_empty()
    }

    fn rank(&self) -> usize {
        self.0.len()
    }

    /// The gradient shape for a node of shape `shape`: `(lead..., shape...)`.
    pub(crate) fn shape(&self, shape: &[usize]) -> Shape {
        self.0.iter().chain(shape).copied().collect()
    }

    /// Axis `axis` of a node is axis `axis + lead rank` of its gradient.
    pub(crate) fn axis(&self, axis: usize) -> usize {
        axis + self.rank()
    }

    /// The gradient's shape after the lead, with ones inserted after the
    /// lead so that it has `rank` axes there.
    fn aligned(&self, inner: &[usize], rank: usize) -> Shape {
        let ones = rank.saturating_sub(inner.len());
        self.0.iter().copied().chain(std::iter::repeat_n(1, ones)).chain(inner.iter().copied()).collect()
    }

    /// `g.sum_to(shape)`, summing only over the axes after the lead.
    pub(crate) fn sum_to<T: Element, A: Algebra<T>>(&self, g: &A, shape: &[usize]) -> A {
        if self.rank() == 0 {
            return g.sum_to(shape);
        }
        let gs = g.shape();
        let inner = &gs[self.rank()..];
        // Line the node's axes up with the gradient's last ones, then sum.
        let target = self.aligned(shape, inner.len());
        let summed = if gs == target { g.clone() } else { g.sum_to(&target) };
        let want = self.shape(shape);
        if summed.shape() == want {
            summed
        } else {
            summed.reshape(&want)
        }
    }

    /// `g.broadcast_to(shape)`, broadcasting only the axes after the lead.
    pub(crate) fn broadcast_to<T: Element, A: Algebra<T>>(&self, g: &A, shape: &[usize]) -> A {
        if self.rank() == 0 {
            return g.broadcast_to(shape);
        }
        let gs = g.shape();
        let aligned = self.aligned(&gs[self.rank()..], shape.len());
        let g = if aligned == gs { g.clone() } else { g.reshape(&aligned) };
        g.broadcast_to(&self.shape(shape))
    }

    /// `g.reshape(shape)` behind the lead.
    pub(crate) fn reshape<T: Element, A: Algebra<T>>(&self, g: &A, shape: &[usize]) -> A {
        g.reshape(&self.shape(shape))
    }
}
