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
use crate::anomaly::{AnomalyChecks, NoChecks, SweepChecks};
use crate::lead::{batched_sweep, Lead};
use crate::op::Op;
use crate::ops::{arith, fused, matmul, reduce, shape, unary};
use crate::tape::{Tape, Var};
use gradtape_kernels::{Element, Shape, Tensor};
use std::cell::{OnceCell, RefCell};

mod args;

use args::{
    check_grad_outputs, check_same_tape, ones_for_scalars, shapes_of_tensors, shapes_of_vars, zeros_for, Ids,
};

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
///
/// ```
/// use gradtape::{grad, Tape, Tensor};
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
/// let y = x.powf(3.0).sum(); // sum of x^3
/// // dy/dx = 3 x^2, recorded (create_graph) so it can be differentiated again
/// let dx = grad(&[y], &[x], None, true)[0];
/// assert_eq!(dx.value().data(), &[3.0, 12.0]);
/// // d/dx sum(3 x^2) = 6 x
/// let ddx = grad(&[dx.sum()], &[x], None, false)[0];
/// assert_eq!(ddx.value().data(), &[6.0, 12.0]);
/// ```
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

/// The sweep on variables: recorded if `create_graph`, otherwise on
/// tensors with the results read in as constants.
///
/// The two modes differ in one line, `value_of`: what a rule gets when it
/// asks for a node's value. Here it is a `Var` pointing at the node, so the
/// rules run in the `Var` algebra and record every step; in
/// [`swept_values`] it is the node's tensor, and nothing is recorded.
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
    let value_of = |id: usize| Var { tape, id };
    let start = tape.len();
    let found = batched_sweep(tape, &ids.outputs, seeds, &ids.inputs, value_of, lead);
    tape.note_recorded_sweep(start..tape.len());
    found
        .into_iter()
        .zip(&ids.inputs)
        .map(|(g, &x)| g.unwrap_or_else(|| tape.constant(&zeros_for(tape, x, lead))))
        .collect()
}

/// The sweep on plain tensors.
fn swept_values<T: Element>(tape: &Tape<T>, ids: &Ids, seeds: Vec<Tensor<T>>, lead: Lead) -> Vec<Tensor<T>> {
    let value_of = |id: usize| tape.value(id);
    let found = batched_sweep(tape, &ids.outputs, seeds, &ids.inputs, value_of, lead);
    found.into_iter().zip(&ids.inputs).map(|(g, &x)| g.unwrap_or_else(|| zeros_for(tape, x, lead))).collect()
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

/// How many times each node from `lo` on is an input of a later node that
/// depends on an input (`depends`, from [`dependents`]): the uses through
/// which a sweep can bring it a gradient.
fn uses_in_range<T: Element>(tape: &Tape<T>, lo: usize, depends: &[bool]) -> Vec<u32> {
    let mut uses = vec![0u32; depends.len()];
    let nodes = tape.nodes.borrow();
    for (k, _) in depends.iter().enumerate().filter(|(_, &d)| d) {
        for p in nodes[lo + k].op.inputs().into_iter().flatten().filter(|&p| p >= lo) {
            uses[p - lo] += 1;
        }
    }
    uses
}

/// The backward sweep itself, generic over what gradients are made of.
/// Returns, for each input, its gradient or `None` if no output depends on it.
///
/// `value_of(i)` gives node `i`'s value in the sweep's algebra: the tensor
/// on the tape, or a `Var` pointing at it (see `swept_vars` and
/// `swept_values`).
pub(crate) fn sweep<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    outputs: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    value_of: impl Fn(usize) -> A,
) -> Vec<Option<A>> {
    // One copy of the loop for each mode, chosen once per sweep: the
    // ordinary one's checks are empty functions and compile away.
    if tape.anomaly_detection() {
        sweep_watched(tape, outputs, seeds, inputs, value_of, AnomalyChecks::start(tape))
    } else {
        sweep_watched(tape, outputs, seeds, inputs, value_of, NoChecks)
    }
}

/// [`sweep`], with `watch` looking at each seed and each rule's result
/// (anomaly mode's checks, or nothing).
fn sweep_watched<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    outputs: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    value_of: impl Fn(usize) -> A,
    watch: impl SweepChecks<T>,
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
    let grads: RefCell<Vec<Option<A>>> = RefCell::new(vec![None; n]);
    // A node receives a gradient: summed down to the node's own shape
    // (undoing broadcasting: this is the one place it is undone, `mul_grad`
    // does it early), then added to what the node's slot already holds.
    let unbroadcast_and_add = |node: usize, g: A| {
        let broadcast_from: Option<Shape> = {
            let nodes = tape.nodes.borrow();
            let target = nodes[node].value.dims();
            (g.shape() != target).then_some(target)
        };
        let g = match broadcast_from {
            Some(target) => g.sum_to(&target),
            None => g,
        };
        let slot = &mut grads.borrow_mut()[node - lo];
        *slot = Some(match slot.take() {
            Some(acc) => acc.accumulate(&g),
            None => g,
        });
    };
    // What a node's slot holds so far, taken out: a matrix product's rule
    // adds its contribution to it inside the product (unless fusion is off).
    let fuse = fused::fusion_enabled();
    let sum_so_far = |node: usize| if fuse { grads.borrow_mut()[node - lo].take() } else { None };
    // A ReLU layer's output used by one product alone may get its
    // pre-activation's gradient from that product, its bias gradient kept
    // here for its own rule (`fused::ReluThrough`). The uses are counted
    // the first time a layer with a mask asks (only a GPU makes masks).
    let uses: OnceCell<Vec<u32>> = OnceCell::new();
    let relu_bias: RefCell<Vec<Option<A>>> = RefCell::new(vec![None; n]);
    let relu_mask = |x: usize| -> Option<A> {
        let Op::Linear { act: gradtape_kernels::Act::Relu, mask: Some(m), .. } = tape.op(x) else {
            return None;
        };
        let used_once = || uses.get_or_init(|| uses_in_range(tape, lo, &depends))[x - lo] == 1;
        let alone = fuse && x >= lo && !is_input[x - lo] && !outputs.contains(&x) && used_once();
        alone.then(|| value_of(m))
    };
    let relu = fused::ReluThrough {
        mask: &relu_mask,
        deliver: &|x, db| relu_bias.borrow_mut()[x - lo] = Some(db),
        take: &|x| relu_bias.borrow_mut()[x - lo].take(),
    };
    for (&o, seed) in outputs.iter().zip(seeds) {
        watch.seed(o, &seed);
        if needed(o) {
            unbroadcast_and_add(o, seed);
        }
    }
    for i in (lo..=hi).rev() {
        let Some(g) = grads.borrow_mut()[i - lo].take() else {
            continue;
        };
        if is_input[i - lo] {
            for (k, &x) in inputs.iter().enumerate() {
                if x == i {
                    result[k] = Some(g.clone());
                }
            }
        }
        let produced = vjp(tape.op(i), i, &g, &value_of, &needed, &sum_so_far, &relu);
        watch.rule(i, &g, &produced);
        for (p, gp) in produced.into_iter().flatten() {
            unbroadcast_and_add(p, gp);
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
/// leads to any input of interest. `sum_so_far(i)` takes out the gradient
/// the sweep has summed for input `i` so far, if any: a matrix product's
/// rule returns its contribution with that sum added (by the product
/// itself), every other rule leaves the adding to the sweep.
pub(crate) fn vjp<T: Element, A: Algebra<T>>(
    op: Op<T>,
    out: usize,
    g: &A,
    value_of: &dyn Fn(usize) -> A,
    need: &dyn Fn(usize) -> bool,
    sum_so_far: &dyn Fn(usize) -> Option<A>,
    relu: &fused::ReluThrough<'_, A>,
) -> [Option<(usize, A)>; 3] {
    use Op::*;
    let unary_rule = |i: usize, rule: &dyn Fn() -> A| [need(i).then(|| (i, rule())), None, None];
    let binary_rule = |a: usize, ra: &dyn Fn() -> A, b: usize, rb: &dyn Fn() -> A| {
        [need(a).then(|| (a, ra())), need(b).then(|| (b, rb())), None]
    };
    // The fused rules of two inputs give two results.
    let two = |[a, b]: [Option<(usize, A)>; 2]| [a, b, None];
    let produced = match op {
        Leaf { .. } => [None, None, None],
        Add(a, b) => binary_rule(a, &|| arith::add_grad(g), b, &|| arith::add_grad(g)),
        Sub(a, b) => binary_rule(a, &|| arith::add_grad(g), b, &|| arith::sub_grad_rhs(g)),
        Mul(a, b) => binary_rule(a, &|| arith::mul_grad(g, &value_of(b), &value_of(a)), b, &|| {
            arith::mul_grad(g, &value_of(a), &value_of(b))
        }),
        Div(a, b) => binary_rule(a, &|| arith::div_grad_lhs(g, &value_of(b)), b, &|| {
            arith::div_grad_rhs(g, &value_of(out), &value_of(b))
        }),
        Neg(a) => unary_rule(a, &|| arith::neg_grad(g)),
        AddScalar(a) => unary_rule(a, &|| arith::add_grad(g)),
        MulScalar(a, s) => unary_rule(a, &|| arith::mul_scalar_grad(g, s)),
        Exp(a) => unary_rule(a, &|| unary::exp_grad(g, &value_of(out))),
        Log(a) => unary_rule(a, &|| unary::log_grad(g, &value_of(a))),
        Pow(a, p) => unary_rule(a, &|| unary::pow_grad(g, &value_of(a), p)),
        Sqrt(a) => unary_rule(a, &|| unary::sqrt_grad(g, &value_of(out))),
        Square(a) => unary_rule(a, &|| unary::square_grad(g, &value_of(a))),
        Abs(a) => unary_rule(a, &|| unary::abs_grad(g, &value_of(a))),
        Sigmoid(a) => unary_rule(a, &|| unary::sigmoid_grad(g, &value_of(out))),
        Tanh(a) => unary_rule(a, &|| unary::tanh_grad(g, &value_of(out))),
        Relu(a) => unary_rule(a, &|| unary::relu_grad(g, &value_of(a))),
        Softplus(a) => unary_rule(a, &|| unary::softplus_grad(g, &value_of(a))),
        Clamp(a, lo, hi) => unary_rule(a, &|| unary::clamp_grad(g, &value_of(a), lo, hi)),
        SumAll(a) => unary_rule(a, &|| reduce::sum_all_grad(g, &value_of(a))),
        SumSquares(a) => unary_rule(a, &|| reduce::sum_squares_grad(g, &value_of(a))),
        MeanAll(a) => unary_rule(a, &|| reduce::mean_all_grad(g, &value_of(a))),
        MaxAll(a) => unary_rule(a, &|| reduce::max_all_grad(g, &value_of(a))),
        SumAxis { x: a, axis, .. } => unary_rule(a, &|| reduce::sum_axis_grad(g, &value_of(a), axis)),
        MeanAxis { x: a, axis, .. } => unary_rule(a, &|| reduce::mean_axis_grad(g, &value_of(a), axis)),
        MaxAxis { x: a, axis, .. } => unary_rule(a, &|| reduce::max_axis_grad(g, &value_of(a), axis)),
        Reshape(a) => unary_rule(a, &|| shape::reshape_grad(g, &value_of(a))),
        Transpose(a) => unary_rule(a, &|| shape::transpose_grad(g)),
        BroadcastTo(a) => unary_rule(a, &|| shape::broadcast_to_grad(g, &value_of(a))),
        SumTo(a) => unary_rule(a, &|| shape::sum_to_grad(g, &value_of(a))),
        Select { x: a, axis, index } => unary_rule(a, &|| shape::select_grad(g, &value_of(a), axis, index)),
        Unselect { x: a, axis, index } => unary_rule(a, &|| shape::unselect_grad(g, axis, index)),
        Slice { x: a, axis, start } => unary_rule(a, &|| shape::slice_grad(g, &value_of(a), axis, start)),
        Pad { x: a, axis, start } => unary_rule(a, &|| shape::pad_grad(g, &value_of(a), axis, start)),
        MatMul { a, b, ta: false, tb: true } => {
            // `x W^T`, a linear layer's product: `dx` may go through x's ReLU.
            binary_rule(a, &|| fused::product_into(g, &value_of(b), a, sum_so_far, relu), b, &|| {
                matmul::matmul_grad_rhs(g, &value_of(a), false, true, sum_so_far(b))
            })
        }
        MatMul { a, b, ta, tb } => {
            binary_rule(a, &|| matmul::matmul_grad_lhs(g, &value_of(b), ta, tb, sum_so_far(a)), b, &|| {
                matmul::matmul_grad_rhs(g, &value_of(a), ta, tb, sum_so_far(b))
            })
        }
        BiasAct { z, b, act } => two(fused::bias_act_grad(g, &value_of(out), act, z, b, need)),
        Linear { x, w, b, act, .. } => fused::linear_grad(
            g,
            &value_of(out),
            [&value_of(x), &value_of(w)],
            act,
            [out, x, w, b],
            need,
            sum_so_far,
            relu,
        ),
        Reparameterize { mu, logvar, eps } => {
            two(fused::reparameterize_grad(g, &value_of(logvar), &value_of(eps), [mu, logvar], need))
        }
        LossSum { a, b, term, scale } => {
            two(fused::loss_sum_grad(g, &value_of(a), &value_of(b), term, scale, [a, b], need))
        }
        Norm(a) => unary_rule(a, &|| g.norm_grad(&value_of(out), &value_of(a))),
        AddScaled { a, b, s } => two(fused::add_scaled_grad(g, s, [a, b], need)),
        OuterSumSquares { d, b, scale, d_rows, b_rows } => two(fused::outer_sum_squares_grad(
            g,
            [&value_of(d), &value_of(b)],
            [&value_of(d_rows), &value_of(b_rows)],
            scale,
            [d, b],
            need,
        )),
        Formula { formula, g: gi, x } => {
            two(fused::formula_grad(g, &value_of(gi), &value_of(x), formula, [gi, x], need))
        }
    };
    // Test builds can break a rule on purpose, here rather than inside the
    // rules, so that each rule reads as its formula (see `fault.rs`).
    #[cfg(feature = "fault-injection")]
    let produced = produced.map(|slot| slot.map(|(i, gi)| (i, crate::fault::tamper(&op, gi))));
    produced
}

// ---- the other entry points: batched cotangents, and plain tensors out ----

/// Many vector-Jacobian products in one sweep, like
/// `torch.autograd.grad(..., is_grads_batched=True)`: each of
/// `grad_outputs` has one extra leading axis of length `B` (the same `B` for
/// all), and each returned gradient has that axis too, holding the `B`
/// products. With `create_graph` the results can be differentiated again.
///
/// All rows of a Jacobian `dh/dx` come out of one call by passing the
/// identity, reshaped, as the batch of cotangents; the contractive
/// autoencoder does exactly that.
///
/// ```
/// use gradtape::{grad_batched, Tape, Tensor};
///
/// // h = tanh(W x): its Jacobian dh/dx, one row per output, in one sweep.
/// let tape = Tape::<f64>::new();
/// let w = tape.constant(&Tensor::from_vec(vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0], &[3, 2]));
/// let x = tape.param(&Tensor::from_vec(vec![0.1, -0.2], &[2, 1]));
/// let h = w.matmul(x).tanh(); // [3, 1]
/// let eye = tape.constant(&Tensor::from_vec(
///     vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
///     &[3, 3, 1], // a batch of 3 cotangents shaped like h
/// ));
/// let rows = grad_batched(&[h], &[x], &[eye], false)[0].value(); // [3, 2, 1]
/// // row i is (1 - h_i^2) W[i, :]
/// let (hv, wv) = (h.value(), w.value());
/// for i in 0..3 {
///     for j in 0..2 {
///         let want = (1.0 - hv.data()[i].powi(2)) * wv.data()[i * 2 + j];
///         assert!((rows.data()[i * 2 + j] - want).abs() < 1e-15);
///     }
/// }
/// ```
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
