//! The checks on a `grad` call's arguments, and the seeds and zeros the
//! sweep starts and ends with: off the reading path, each a few lines.

use crate::lead::Lead;
use crate::tape::{Tape, Var};
use gradtape_kernels::{Element, Shape, Tensor};

/// Node indices of the outputs and inputs of a `grad` call.
pub(super) struct Ids {
    pub(super) outputs: Vec<usize>,
    pub(super) inputs: Vec<usize>,
}

impl Ids {
    pub(super) fn of<T: Element>(outputs: &[Var<'_, T>], inputs: &[Var<'_, T>]) -> Ids {
        Ids { outputs: outputs.iter().map(|v| v.id).collect(), inputs: inputs.iter().map(|v| v.id).collect() }
    }
}

pub(super) fn shapes_of_vars<T: Element>(vars: &[Var<'_, T>]) -> Vec<Shape> {
    vars.iter().map(|v| v.shape()).collect()
}

pub(super) fn shapes_of_tensors<T: Element>(tensors: &[Tensor<T>]) -> Vec<Shape> {
    tensors.iter().map(|t| t.dims()).collect()
}

/// The gradient of an input the outputs do not depend on: zeros of its
/// shape (behind the batch axes, if any), on its device.
pub(super) fn zeros_for<T: Element>(tape: &Tape<T>, x: usize, lead: Lead) -> Tensor<T> {
    let value = tape.value(x);
    Tensor::zeros_on(&lead.shape(&value.dims()), value.device())
}

#[track_caller]
pub(super) fn check_same_tape<'t, T: Element>(
    outputs: &[Var<'t, T>],
    inputs: &[Var<'t, T>],
) -> Option<&'t Tape<T>> {
    let first = outputs.first().or(inputs.first())?;
    for v in outputs.iter().chain(inputs) {
        first.same_tape(v, "grad");
    }
    Some(first.tape)
}

/// Checks `grad_outputs` against the outputs' shapes and returns the batch
/// axes they carry: none, or (for a batched call) one leading axis of the
/// same length for all.
#[track_caller]
pub(super) fn check_grad_outputs<T: Element>(
    tape: &Tape<T>,
    out_ids: &[usize],
    shapes: &[Shape],
    batched: bool,
) -> Lead {
    assert_eq!(
        out_ids.len(),
        shapes.len(),
        "grad: {} outputs but {} grad_outputs",
        out_ids.len(),
        shapes.len()
    );
    let nodes = tape.nodes.borrow();
    let mut lead: Option<Lead> = None;
    for (k, (&o, s)) in out_ids.iter().zip(shapes).enumerate() {
        let want = nodes[o].value.shape();
        if !batched {
            assert!(
                want == s.as_slice(),
                "grad: grad_outputs[{k}] has shape {s:?} but output {k} has shape {want:?}"
            );
            continue;
        }
        assert!(
            s.len() == want.len() + 1 && &s[1..] == want,
            "grad_batched: grad_outputs[{k}] has shape {s:?}; it must be (batch, {want:?})"
        );
        let this = Lead(Shape::from_slice(&s[..1]));
        if let Some(l) = lead {
            assert!(
                l == this,
                "grad_batched: grad_outputs have different batch lengths {:?} and {:?}",
                l.0,
                this.0
            );
        }
        lead = Some(this);
    }
    lead.unwrap_or_else(Lead::none)
}

#[track_caller]
pub(super) fn ones_for_scalars<T: Element>(tape: &Tape<T>, out_ids: &[usize]) -> Vec<Tensor<T>> {
    let nodes = tape.nodes.borrow();
    out_ids
        .iter()
        .enumerate()
        .map(|(k, &o)| {
            let shape = nodes[o].value.shape();
            assert!(
                nodes[o].value.len() == 1,
                "grad: output {k} has shape {shape:?}; pass grad_outputs for outputs that are not scalars"
            );
            Tensor::full_on(shape, T::one(), nodes[o].value.device())
        })
        .collect()
}
