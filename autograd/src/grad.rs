//! Reverse mode: from the gradient of the outputs to the gradients of the
//! inputs, in one backward sweep over the tape.
//!
//! The sweep walks the tape from the last relevant node down to the first.
//! Each node's gradient is complete when the sweep reaches it (everything
//! that used the node was recorded after it), so the sweep takes it out of
//! its slot, hands it to the node's backward rule, and adds what the rule
//! returns into the slots of the node's inputs. Taking it out frees it as
//! soon as it has been used. A node used twice (fan-out) simply receives two
//! contributions, and adding them is an ordinary `add`, recorded like any
//! other op when the graph is being built.
//!
//! Only nodes that lie on a path from an input to an output are visited: a
//! forward pass over the tape first marks which nodes depend on the inputs,
//! so no gradient is computed for data, targets or masks.
//!
//! `create_graph` picks the [`Algebra`] the rules run in: plain tensors (the
//! sweep records nothing), or variables (the sweep records every step, and
//! the gradients it returns can be differentiated again).

use crate::algebra::Algebra;
use crate::lead::{batched_sweep, Lead};
use crate::op::Op;
use crate::ops::{arith, fused, matmul, reduce, shape, unary};
use crate::tape::{Tape, Var};
use gradtape_kernels::{Element, Shape, Tensor};

/// Gradients of `outputs` with respect to `inputs`, one per input, in the
/// spirit of `torch.autograd.grad`.
///
/// - `grad_outputs`: the vector `v` in the vector-Jacobian product
///   `v^T J`, one per output with the output's shape. `None` means ones,
///   which is only allowed when every output has a single element (a loss).
/// - `create_graph`: if `true`, the backward sweep is itself recorded on the
///   tape and the returned gradients are differentiable functions of
///   everything they depend on (including `grad_outputs`). If `false`,
///   nothing but the results is recorded: each gradient is returned as a
///   constant leaf.
///
/// An input that the outputs do not depend on gets a gradient of zeros (not
/// an error, and not `None` as PyTorch would give with `allow_unused`).
#[track_caller]
pub fn grad<'t, T: Element>(
    outputs: &[Var<'t, T>],
    inputs: &[Var<'t, T>],
    grad_outputs: Option<&[Var<'t, T>]>,
    create_graph: bool,
) -> Vec<Var<'t, T>> {
    let Some(tape) = check_same_tape(outputs, inputs) else { return Vec::new() };
    let ids = Ids::of(outputs, inputs);
    if let Some(go) = grad_outputs {
        check_grad_outputs(tape, &ids.outputs, &shapes_of_vars(go), false);
        return swept_vars(tape, &ids, go.to_vec(), Lead::none(), create_graph);
    }
    let ones = ones_for_scalars(tape, &ids.outputs);
    if create_graph {
        let seeds = ones.iter().map(|t| tape.constant(t)).collect();
        swept_vars(tape, &ids, seeds, Lead::none(), true)
    } else {
        // Record nothing but the results: the seeds stay plain tensors.
        swept_values(tape, &ids, ones, Lead::none()).iter().map(|g| tape.constant(g)).collect()
    }
}

/// Many vector-Jacobian products in one sweep, like
/// `torch.autograd.grad(..., is_grads_batched=True)`: each of
/// `grad_outputs` has one extra leading axis of length `B` (the same `B` for
/// all), and each returned gradient has that axis too, holding the `B`
/// products. With `create_graph` the results can be differentiated again.
///
/// All rows of a Jacobian `dh/dx` come out of one call by passing the
/// identity, reshaped, as the batch of cotangents; the contractive
/// autoencoder does exactly that.
#[track_caller]
pub fn grad_batched<'t, T: Element>(
    outputs: &[Var<'t, T>],
    inputs: &[Var<'t, T>],
    grad_outputs: &[Var<'t, T>],
    create_graph: bool,
) -> Vec<Var<'t, T>> {
    let Some(tape) = check_same_tape(outputs, inputs) else { return Vec::new() };
    let ids = Ids::of(outputs, inputs);
    let lead = check_grad_outputs(tape, &ids.outputs, &shapes_of_vars(grad_outputs), true);
    swept_vars(tape, &ids, grad_outputs.to_vec(), lead, create_graph)
}

/// Like [`grad`] with `create_graph = false`, but returns plain tensors and
/// records nothing at all on the tape. This is the ordinary backward pass of
/// a training step.
#[track_caller]
pub fn grad_values<'t, T: Element>(
    outputs: &[Var<'t, T>],
    inputs: &[Var<'t, T>],
    grad_outputs: Option<&[Tensor<T>]>,
) -> Vec<Tensor<T>> {
    let Some(tape) = check_same_tape(outputs, inputs) else { return Vec::new() };
    let ids = Ids::of(outputs, inputs);
    let seeds = match grad_outputs {
        Some(go) => {
            check_grad_outputs(tape, &ids.outputs, &shapes_of_tensors(go), false);
            go.to_vec()
        }
        None => ones_for_scalars(tape, &ids.outputs),
    };
    #[allow(unused_mut)]
    let mut grads = swept_values(tape, &ids, seeds, Lead::none());
    #[cfg(feature = "fault-injection")]
    if crate::fault::nan_in_gradients() {
        // Deliberately wrong (test builds only): one NaN entry.
        if let Some(first) = grads.first_mut().filter(|g| !g.is_empty()) {
            first.data_mut()[0] = T::nan();
        }
    }
    grads
}

/// [`grad_batched`] on plain tensors, recording nothing.
#[track_caller]
pub fn grad_values_batched<'t, T: Element>(
    outputs: &[Var<'t, T>],
    inputs: &[Var<'t, T>],
    grad_outputs: &[Tensor<T>],
) -> Vec<Tensor<T>> {
    let Some(tape) = check_same_tape(outputs, inputs) else { return Vec::new() };
    let ids = Ids::of(outputs, inputs);
    let lead = check_grad_outputs(tape, &ids.outputs, &shapes_of_tensors(grad_outputs), true);
    swept_values(tape, &ids, grad_outputs.to_vec(), lead)
}

/// Node indices of the outputs and inputs of a `grad` call.
struct Ids {
    outputs: Vec<usize>,
    inputs: Vec<usize>,
}

impl Ids {
    fn of<T: Element>(outputs: &[Var<'_, T>], inputs: &[Var<'_, T>]) -> Ids {
        Ids { outputs: outputs.iter().map(|v| v.id).collect(), inputs: inputs.iter().map(|v| v.id).collect() }
    }
}

fn shapes_of_vars<T: Element>(vars: &[Var<'_, T>]) -> Vec<Shape> {
    vars.iter().map(|v| v.shape()).collect()
}

fn shapes_of_tensors<T: Element>(tensors: &[Tensor<T>]) -> Vec<Shape> {
    tensors.iter().map(|t| t.dims()).collect()
}

/// The sweep on variables: recorded if `create_graph`, otherwise on
/// tensors with the results read in as constants.
fn swept_vars<'t, T: Element>(
    tape: &'t Tape<T>,
    ids: &Ids,
    seeds: Vec<Var<'t, T>>,
    lead: Lead,
    create_graph: bool,
) -> Vec<Var<'t, T>> {
    if !create_graph {
        let seeds = seeds.iter().map(|v| v.value()).collect();
        return swept_values(tape, ids, seeds, lead).iter().map(|g| tape.constant(g)).collect();
    }
    let fetch = |id: usize| Var { tape, id };
    let start = tape.len();
    let found = batched_sweep(tape, &ids.outputs, seeds, &ids.inputs, fetch, lead);
    tape.note_recorded_sweep(start..tape.len());
    found
        .into_iter()
        .zip(&ids.inputs)
        .map(|(g, &x)| g.unwrap_or_else(|| tape.constant(&zeros_for(tape, x, lead))))
        .collect()
}

/// The sweep on plain tensors.
fn swept_values<T: Element>(tape: &Tape<T>, ids: &Ids, seeds: Vec<Tensor<T>>, lead: Lead) -> Vec<Tensor<T>> {
    let fetch = |id: usize| tape.value(id);
    let found = batched_sweep(tape, &ids.outputs, seeds, &ids.inputs, fetch, lead);
    found.into_iter().zip(&ids.inputs).map(|(g, &x)| g.unwrap_or_else(|| zeros_for(tape, x, lead))).collect()
}

/// Anomaly mode's forward checks switched off for the length of a sweep,
/// and back on when it ends (or panics).
struct PausedAnomaly<'a, T: Element>(&'a Tape<T>);

impl<'a, T: Element> PausedAnomaly<'a, T> {
    fn new(tape: &'a Tape<T>) -> Self {
        tape.anomaly.set(false);
        PausedAnomaly(tape)
    }
}

impl<T: Element> Drop for PausedAnomaly<'_, T> {
    fn drop(&mut self) {
        self.0.anomaly.set(true);
    }
}

/// The gradient of an input the outputs do not depend on: zeros of its
/// shape (behind the batch axes, if any), on its device.
fn zeros_for<T: Element>(tape: &Tape<T>, x: usize, lead: Lead) -> Tensor<T> {
    let value = tape.value(x);
    Tensor::zeros_on(&lead.shape(&value.dims()), value.device())
}

/// The gradients of a scalar loss with respect to every parameter leaf on its
/// tape, as returned by [`Var::backward`].
pub struct Gradients<T: Element> {
    ids: Vec<usize>,
    grads: Vec<Tensor<T>>,
}

impl<T: Element> Gradients<T> {
    /// The gradient for parameter `p`, if `p` is a parameter leaf of the tape.
    pub fn get(&self, p: Var<'_, T>) -> Option<&Tensor<T>> {
        self.ids.iter().position(|&id| id == p.id).map(|k| &self.grads[k])
    }

    /// The gradients in the order the parameters were read onto the tape.
    pub fn into_vec(self) -> Vec<Tensor<T>> {
        self.grads
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether the tape had no parameters.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

impl<T: Element> std::ops::Index<Var<'_, T>> for Gradients<T> {
    type Output = Tensor<T>;
    #[track_caller]
    fn index(&self, p: Var<'_, T>) -> &Tensor<T> {
        match self.get(p) {
            Some(g) => g,
            None => panic!("gradients: node {} is not a parameter leaf", p.id),
        }
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Backward pass from a scalar loss: gradients for every parameter leaf
    /// (made by [`Tape::param`]) recorded before it. Records nothing. The
    /// convenience counterpart of PyTorch's `loss.backward()`, except that
    /// the gradients are returned rather than stored on the parameters.
    #[track_caller]
    pub fn backward(self) -> Gradients<T> {
        let ids: Vec<usize> = {
            let nodes = self.tape.nodes.borrow();
            (0..=self.id).filter(|&i| matches!(nodes[i].op, Op::Leaf { param: true })).collect()
        };
        let params: Vec<Var<'t, T>> = ids.iter().map(|&id| Var { tape: self.tape, id }).collect();
        let grads = grad_values(&[self], &params, None);
        Gradients { ids, grads }
    }
}

#[track_caller]
fn check_same_tape<'t, T: Element>(outputs: &[Var<'t, T>], inputs: &[Var<'t, T>]) -> Option<&'t Tape<T>> {
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
fn check_grad_outputs<T: Element>(
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
fn ones_for_scalars<T: Element>(tape: &Tape<T>, out_ids: &[usize]) -> Vec<Tensor<T>> {
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

/// Which nodes between the first input and node `hi` depend on some input:
/// one forward pass over that stretch of the tape. Returns the first input's
/// index `lo` and a flag per node `lo..=hi`, or `None` when no input comes
/// before `hi`.
pub(crate) fn dependents<T: Element>(
    tape: &Tape<T>,
    inputs: &[usize],
    hi: usize,
) -> Option<(usize, Vec<bool>)> {
    let lo = *inputs.iter().min()?;
    if lo > hi {
        return None;
    }
    let mut depends = vec![false; hi - lo + 1];
    for &i in inputs.iter().filter(|&&i| i <= hi) {
        depends[i - lo] = true;
    }
    let nodes = tape.nodes.borrow();
    for i in lo..=hi {
        if !depends[i - lo] {
            depends[i - lo] = nodes[i].op.inputs().iter().flatten().any(|&p| p >= lo && depends[p - lo]);
        }
    }
    Some((lo, depends))
}

/// The backward sweep itself, generic over what gradients are made of.
/// Returns, for each input, its gradient or `None` if no output depends on it.
pub(crate) fn sweep<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    outputs: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    fetch: impl Fn(usize) -> A,
) -> Vec<Option<A>> {
    // One copy of the loop for each mode, chosen once per sweep: the
    // ordinary one has anomaly mode's checks compiled out. (Checked inside
    // the one loop, a rule's results had to be kept in memory across the
    // check and copied once more per node, with the mode off too.)
    if tape.anomaly_detection() {
        sweep_in_mode::<T, A, true>(tape, outputs, seeds, inputs, fetch)
    } else {
        sweep_in_mode::<T, A, false>(tape, outputs, seeds, inputs, fetch)
    }
}

/// [`sweep`], with anomaly mode's checks when `ANOMALY` is true.
fn sweep_in_mode<T: Element, A: Algebra<T>, const ANOMALY: bool>(
    tape: &Tape<T>,
    outputs: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    fetch: impl Fn(usize) -> A,
) -> Vec<Option<A>> {
    let mut result: Vec<Option<A>> = vec![None; inputs.len()];
    let Some(&hi) = outputs.iter().max() else { return result };
    // Forward pass over the tape: which nodes depend on some input?
    let Some((lo, depends)) = dependents(tape, inputs, hi) else { return result };
    let n = hi - lo + 1;
    let mut is_input = vec![false; n];
    for &i in inputs.iter().filter(|&&i| i >= lo && i <= hi) {
        is_input[i - lo] = true;
    }
    let needed = |p: usize| p >= lo && depends[p - lo];

    // One slot per node in range; a slot is emptied when its node is visited.
    let mut grads: Vec<Option<A>> = vec![None; n];
    let accumulate = |grads: &mut Vec<Option<A>>, node: usize, g: A| {
        // Undo broadcasting: sum the gradient down to the node's own shape.
        // This is the one place it is undone (`mul_grad` does it early).
        let broadcast_from: Option<Shape> = {
            let nodes = tape.nodes.borrow();
            let target = nodes[node].value.dims();
            (g.shape() != target).then_some(target)
        };
        let g = match broadcast_from {
            Some(target) => g.sum_to(&target),
            None => g,
        };
        let slot = &mut grads[node - lo];
        *slot = Some(match slot.take() {
            Some(acc) => acc.accumulate(&g),
            None => g,
        });
    };
    // Anomaly mode checks each rule's result here, against the op it
    // belongs to; the ops a recorded sweep makes are not checked again as
    // forward ops (that would blame a line inside a rule).
    let anomaly = ANOMALY;
    let _forward_checks_paused = anomaly.then(|| PausedAnomaly::new(tape));
    for (&o, seed) in outputs.iter().zip(seeds) {
        if anomaly {
            tape.check_seed(o, &seed.to_tensor());
        }
        if needed(o) {
            accumulate(&mut grads, o, seed);
        }
    }
    for i in (lo..=hi).rev() {
        let Some(g) = grads[i - lo].take() else {
            continue;
        };
        if is_input[i - lo] {
            for (k, &x) in inputs.iter().enumerate() {
                if x == i {
                    result[k] = Some(g.clone());
                }
            }
        }
        let produced = vjp(tape.op(i), i, &g, &fetch, &needed);
        if anomaly {
            let values: Vec<(usize, Tensor<T>)> =
                produced.iter().flatten().map(|(p, gp)| (*p, gp.to_tensor())).collect();
            tape.check_backward(i, &g.to_tensor(), &values);
        }
        for (p, gp) in produced.into_iter().flatten() {
            accumulate(&mut grads, p, gp);
        }
    }
    result
}

/// Gradients of one op's inputs from the gradient `g` of its output (node
/// `out`): the vector-Jacobian product. Each arm calls the rule written
/// beside the op's forward function. `value_of(i)` fetches node `i`'s value
/// (a tensor or a variable), for an input or for the output itself
/// (`value_of(out)`: the rules of exp, sqrt, sigmoid, tanh and div's
/// divisor are written in their output); `need(i)` says whether input `i`
/// leads to any input of interest.
pub(crate) fn vjp<T: Element, A: Algebra<T>>(
    op: Op<T>,
    out: usize,
    g: &A,
    value_of: &impl Fn(usize) -> A,
    need: &impl Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    use Op::*;
    let one = |i: usize, rule: &dyn Fn() -> A| [need(i).then(|| (i, rule())), None];
    let two = |a: usize, ra: &dyn Fn() -> A, b: usize, rb: &dyn Fn() -> A| {
        [need(a).then(|| (a, ra())), need(b).then(|| (b, rb()))]
    };
    let produced = match op {
        Leaf { .. } => [None, None],
        Add(a, b) => two(a, &|| arith::add_grad(g), b, &|| arith::add_grad(g)),
        Sub(a, b) => two(a, &|| arith::add_grad(g), b, &|| arith::sub_grad_rhs(g)),
        Mul(a, b) => two(a, &|| arith::mul_grad(g, &value_of(b), &value_of(a)), b, &|| {
            arith::mul_grad(g, &value_of(a), &value_of(b))
        }),
        Div(a, b) => two(a, &|| arith::div_grad_lhs(g, &value_of(b)), b, &|| {
            arith::div_grad_rhs(g, &value_of(out), &value_of(b))
        }),
        Neg(a) => one(a, &|| arith::neg_grad(g)),
        AddScalar(a) => one(a, &|| arith::add_grad(g)),
        MulScalar(a, s) => one(a, &|| arith::mul_scalar_grad(g, s)),
        Exp(a) => one(a, &|| unary::exp_grad(g, &value_of(out))),
        Log(a) => one(a, &|| unary::log_grad(g, &value_of(a))),
        Pow(a, p) => one(a, &|| unary::pow_grad(g, &value_of(a), p)),
        Sqrt(a) => one(a, &|| unary::sqrt_grad(g, &value_of(out))),
        Square(a) => one(a, &|| unary::square_grad(g, &value_of(a))),
        Abs(a) => one(a, &|| unary::abs_grad(g, &value_of(a))),
        Sigmoid(a) => one(a, &|| unary::sigmoid_grad(g, &value_of(out))),
        Tanh(a) => one(a, &|| unary::tanh_grad(g, &value_of(out))),
        Relu(a) => one(a, &|| unary::relu_grad(g, &value_of(a))),
        Softplus(a) => one(a, &|| unary::softplus_grad(g, &value_of(a))),
        Clamp(a, lo, hi) => one(a, &|| unary::clamp_grad(g, &value_of(a), lo, hi)),
        SumAll(a) => one(a, &|| reduce::sum_all_grad(g, &value_of(a))),
        SumSquares(a) => one(a, &|| reduce::sum_squares_grad(g, &value_of(a))),
        MeanAll(a) => one(a, &|| reduce::mean_all_grad(g, &value_of(a))),
        MaxAll(a) => one(a, &|| reduce::max_all_grad(g, &value_of(a))),
        SumAxis { x: a, axis, .. } => one(a, &|| reduce::sum_axis_grad(g, &value_of(a), axis)),
        MeanAxis { x: a, axis, .. } => one(a, &|| reduce::mean_axis_grad(g, &value_of(a), axis)),
        MaxAxis { x: a, axis, .. } => one(a, &|| reduce::max_axis_grad(g, &value_of(a), axis)),
        Reshape(a) => one(a, &|| shape::reshape_grad(g, &value_of(a))),
        Transpose(a) => one(a, &|| shape::transpose_grad(g)),
        BroadcastTo(a) => one(a, &|| shape::broadcast_to_grad(g, &value_of(a))),
        SumTo(a) => one(a, &|| shape::sum_to_grad(g, &value_of(a))),
        Select { x: a, axis, index } => one(a, &|| shape::select_grad(g, &value_of(a), axis, index)),
        Unselect { x: a, axis, index } => one(a, &|| shape::unselect_grad(g, axis, index)),
        Slice { x: a, axis, start } => one(a, &|| shape::slice_grad(g, &value_of(a), axis, start)),
        Pad { x: a, axis, start } => one(a, &|| shape::pad_grad(g, &value_of(a), axis, start)),
        MatMul { a, b, ta, tb } => two(a, &|| matmul::matmul_grad_lhs(g, &value_of(b), ta, tb), b, &|| {
            matmul::matmul_grad_rhs(g, &value_of(a), ta, tb)
        }),
        BiasAct { z, b, act } => fused::bias_act_grad(g, &value_of(out), act, z, b, need),
    };
    // Test builds can break a rule on purpose, here rather than inside the
    // rules, so that each rule reads as its formula (see `fault.rs`).
    #[cfg(feature = "fault-injection")]
    let produced = produced.map(|slot| slot.map(|(i, gi)| (i, crate::fault::tamper(&op, gi))));
    produced
}
