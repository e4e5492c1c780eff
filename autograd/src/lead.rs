//! Batched cotangents: many backward sweeps in one, without the rules
//! knowing.
//!
//! A backward sweep computes one vector-Jacobian product `v^T J`. To get
//! many (every row of a Jacobian, say), PyTorch offers
//! `torch.autograd.grad(..., is_grads_batched=True)` and JAX `vmap` over a
//! VJP: stack the `v`s along a new leading axis and sweep once.
//!
//! The backward rules are written for one cotangent: "reshape the gradient
//! to the input's shape", "sum it back to the input's shape", "axis `k`".
//! With a batch axis in front, each of those must act behind it: reshape
//! to `(batch, input's shape)`, never sum over the batch, axis `k + 1`.
//! Rather than teach every rule that, the batched sweep runs the unchanged
//! rules in another [`Algebra`]: [`Batched`], a gradient together with the
//! batch axes it carries ([`Lead`]). Its `shape()` is the shape *behind*
//! the batch axes, so a rule sees the shapes it would see in an ordinary
//! sweep, and each shape or axis operation is translated on the way down:
//!
//! | the rule asks for     | `Batched` does                                  |
//! |-----------------------|-------------------------------------------------|
//! | `g.reshape(s)`        | reshape to `(lead..., s...)`                    |
//! | `g.sum_to(s)`         | sum to `(lead..., s...)`, never over the lead   |
//! | `g.broadcast_to(s)`   | broadcast to `(lead..., s...)`                  |
//! | `g.select(axis, ..)`  | the same on `axis + lead rank` (and `unselect`, |
//! |                       | `slice_axis`, `pad_axis`, `max_mask`)           |
//! | `g.mul(x)` and kin    | line the axes after the lead up with `x`'s,     |
//! |                       | then the ordinary broadcasting product          |
//!
//! The values the rules read (a node's input or output) carry no batch axes;
//! a binary op between one of them and a batched gradient broadcasts over
//! the batch like NumPy would, once the gradient's own axes are lined up
//! with the value's. Matrix products treat the batch as one more batch axis.
//! An ordinary sweep never meets this type: it runs the rules on plain
//! tensors or variables, and costs nothing for batching's sake.

use crate::algebra::Algebra;
use crate::grad::sweep;
use crate::tape::Tape;
use gradtape_kernels::{Device, Element, Formula, Shape, Tensor};
use std::marker::PhantomData;

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

    /// The lead followed by `inner`, with ones inserted after the lead so
    /// that `rank` axes follow it.
    fn aligned(&self, inner: &[usize], rank: usize) -> Shape {
        let ones = rank.saturating_sub(inner.len());
        self.0.iter().copied().chain(std::iter::repeat_n(1, ones)).chain(inner.iter().copied()).collect()
    }
}

/// The backward sweep with the batched cotangents `seeds` (each with the
/// batch axes `lead` in front of its output's shape): the ordinary
/// [`sweep`], run in the [`Batched`] algebra, so every rule acts behind the
/// batch axes. With no batch axes it is the ordinary sweep itself.
pub(crate) fn batched_sweep<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    outputs: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    fetch: impl Fn(usize) -> A,
    lead: Lead,
) -> Vec<Option<A>> {
    if lead.is_none() {
        return sweep(tape, outputs, seeds, inputs, fetch);
    }
    let seeds = seeds.into_iter().map(|g| Batched::new(g, lead)).collect();
    let fetch = |id: usize| Batched::new(fetch(id), Lead::none());
    let found = sweep::<T, Batched<T, A>>(tape, outputs, seeds, inputs, fetch);
    found.into_iter().map(|g| g.map(|g| g.value)).collect()
}

/// A value of the algebra `A` whose first axes are the batch axes `lead`
/// (none for the node values a rule reads, the batch for a gradient).
#[derive(Clone)]
pub(crate) struct Batched<T: Element, A: Algebra<T>> {
    value: A,
    lead: Lead,
    element: PhantomData<T>,
}

impl<T: Element, A: Algebra<T>> Batched<T, A> {
    fn new(value: A, lead: Lead) -> Self {
        Batched { value, lead, element: PhantomData }
    }

    /// The same batch axes on another value.
    fn with(&self, value: A) -> Self {
        Batched::new(value, self.lead)
    }

    /// The value with ones inserted after the lead so that `rank` axes
    /// follow it: lined up, axis for axis, with any value of that rank.
    /// A value without batch axes is left alone (broadcasting adds its
    /// leading ones).
    fn lined_up(&self, rank: usize) -> A {
        let inner = self.shape();
        if self.lead.is_none() || inner.len() >= rank {
            self.value.clone()
        } else {
            self.value.reshape(&self.lead.aligned(&inner, rank))
        }
    }

    /// Both operands of a binary op lined up, and the batch axes of the
    /// result.
    fn pair(&self, o: &Self) -> (A, A, Lead) {
        let rank = self.shape().len().max(o.shape().len());
        let lead = if self.lead.is_none() { o.lead } else { self.lead };
        (self.lined_up(rank), o.lined_up(rank), lead)
    }

    fn binary(&self, o: &Self, f: impl FnOnce(&A, &A) -> A) -> Self {
        let (a, b, lead) = self.pair(o);
        Batched::new(f(&a, &b), lead)
    }
}

impl<T: Element, A: Algebra<T>> Algebra<T> for Batched<T, A> {
    const RECORDED: bool = A::RECORDED;
    /// The shape behind the batch axes: what the rule would see unbatched.
    fn shape(&self) -> Shape {
        Shape::from_slice(&self.value.shape()[self.lead.rank()..])
    }
    fn device(&self) -> Device {
        self.value.device()
    }
    fn to_tensor(&self) -> Tensor<T> {
        self.value.to_tensor()
    }
    fn add(&self, o: &Self) -> Self {
        self.binary(o, |a, b| a.add(b))
    }
    fn sub(&self, o: &Self) -> Self {
        self.binary(o, |a, b| a.sub(b))
    }
    fn mul(&self, o: &Self) -> Self {
        self.binary(o, |a, b| a.mul(b))
    }
    fn div(&self, o: &Self) -> Self {
        self.binary(o, |a, b| a.div(b))
    }
    fn neg(&self) -> Self {
        self.with(self.value.neg())
    }
    fn scale(&self, s: T) -> Self {
        self.with(self.value.scale(s))
    }
    fn add_scalar(&self, s: T) -> Self {
        self.with(self.value.add_scalar(s))
    }
    fn powf(&self, p: T) -> Self {
        self.with(self.value.powf(p))
    }
    fn sigmoid(&self) -> Self {
        self.with(self.value.sigmoid())
    }
    fn exp(&self) -> Self {
        self.with(self.value.exp())
    }
    fn log(&self) -> Self {
        self.with(self.value.log())
    }
    fn clamp(&self, lo: T, hi: T) -> Self {
        self.with(self.value.clamp(lo, hi))
    }
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self {
        self.binary(o, |a, b| a.matmul_t(b, ta, tb))
    }
    fn transpose(&self) -> Self {
        self.with(self.value.transpose())
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        self.with(self.value.reshape(&self.lead.shape(shape)))
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        let rank = shape.len();
        self.with(self.lined_up(rank).broadcast_to(&self.lead.shape(shape)))
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        if self.lead.is_none() {
            return self.with(self.value.sum_to(shape));
        }
        // Line the node's axes up with the gradient's last ones, sum over
        // the rest (never the lead), then drop the ones that were kept.
        let inner = self.shape();
        let target = self.lead.aligned(shape, inner.len());
        let summed =
            if self.value.shape() == target { self.value.clone() } else { self.value.sum_to(&target) };
        let want = self.lead.shape(shape);
        self.with(if summed.shape() == want { summed } else { summed.reshape(&want) })
    }
    fn select(&self, axis: usize, index: usize) -> Self {
        self.with(self.value.select(axis + self.lead.rank(), index))
    }
    fn unselect(&self, axis: usize, index: usize, len: usize) -> Self {
        self.with(self.value.unselect(axis + self.lead.rank(), index, len))
    }
    fn slice_axis(&self, axis: usize, start: usize, len: usize) -> Self {
        self.with(self.value.slice_axis(axis + self.lead.rank(), start, len))
    }
    fn pad_axis(&self, axis: usize, start: usize, total: usize) -> Self {
        self.with(self.value.pad_axis(axis + self.lead.rank(), start, total))
    }
    fn step(&self) -> Self {
        self.with(self.value.step())
    }
    fn sign(&self) -> Self {
        self.with(self.value.sign())
    }
    fn inside(&self, lo: T, hi: T) -> Self {
        self.with(self.value.inside(lo, hi))
    }
    fn max_mask(&self, axis: Option<usize>) -> Self {
        let rank = self.lead.rank();
        match axis {
            _ if rank == 0 => self.with(self.value.max_mask(axis)),
            Some(axis) => self.with(self.value.max_mask(Some(axis + rank))),
            None => {
                // The maximum of each batch entry: flatten what follows the
                // lead into one axis and take the mask along it.
                let full = self.value.shape();
                let flat = self.lead.shape(&[full[rank..].iter().product()]);
                self.with(self.value.reshape(&flat).max_mask(Some(rank)).reshape(&full))
            }
        }
    }
    fn fused(
        &self,
        other: &Self,
        formula: Formula<T>,
        pointwise: impl Fn(T, T) -> T + Sync,
        recorded: impl FnOnce(&Self, &Self) -> Self,
    ) -> Self {
        let (a, b, lead) = self.pair(other);
        let (lead_a, lead_b) = (self.lead, other.lead);
        let value = a.fused(&b, formula, pointwise, |a, b| {
            recorded(&Batched::new(a.clone(), lead_a), &Batched::new(b.clone(), lead_b)).value
        });
        Batched::new(value, lead)
    }
    fn accumulate(self, other: &Self) -> Self {
        if self.lead == other.lead && self.value.shape() == other.value.shape() {
            let lead = self.lead;
            Batched::new(self.value.accumulate(&other.value), lead)
        } else {
            self.add(other)
        }
    }
    fn mul_sum_to(&self, other: &Self, shape: &[usize]) -> Self {
        if self.lead.is_none() && other.lead.is_none() {
            self.with(self.value.mul_sum_to(&other.value, shape))
        } else {
            self.mul(other).sum_to(shape)
        }
    }
}
