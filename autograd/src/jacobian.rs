//! Every row of a Jacobian in one sweep, without multiplying by zeros.
//!
//! The rows of `dy/dx` for an output `y` of shape `[n, H]` are the `H`
//! vector-Jacobian products with the one-hot cotangents `e_l` ("unit `l` of
//! every sample"): `grad_batched` with the seed `E[l, i, k] = δ_lk`. For a
//! batch of independent samples, row `l` of result `i` is then
//! `dy[i, l] / dx[i, :]`: every row of every per-sample Jacobian, which is
//! what the contractive autoencoder's penalty needs.
//!
//! Swept densely, that seed is mostly zeros, and the sweep does `H` times
//! the work it needs to. Through `h = sigmoid(x W^T + b)` the batched
//! gradient just before the product is `E ⊙ s'` (one non-zero in every `H`),
//! and the product `(E ⊙ s') W` then spends `H` multiply-adds per useful one.
//!
//! This module keeps the seed in its structured form for as long as the
//! structure lasts. A batched cotangent of the form
//! `G[l, ..., k] = δ_lk D[..., k]` is stored as its diagonal `D`, which has
//! the node's own shape, and:
//!
//! - through an **elementwise** op whose inputs have the output's shape the
//!   Jacobian is diagonal, so `G` keeps its form and the new `D` is the
//!   ordinary backward rule applied to `D` itself;
//! - through a **matrix product** `C = A op(B)` (into `A`, with `B` a plain
//!   matrix), `(G op(B)^T)[l, i, c] = D[i, l] op(B)^T[l, c]`: an outer
//!   product per row, one multiplication per entry instead of `H`;
//! - anywhere else (a reshape, a reduction, an operand that broadcasts), `G`
//!   is written out densely as `E ⊙ D` and handed to the ordinary batched
//!   sweep, which finishes the job.
//!
//! Each rule above is exact, so the result equals `grad_batched` with the
//! dense seed (bit for bit when the arithmetic is the same; the tests check
//! it). With `create_graph` every step is recorded, and the rows can be
//! differentiated again.

use crate::algebra::Algebra;
use crate::grad::{dependents, sweep, vjp};
use crate::lead::Lead;
use crate::op::Op;
use crate::tape::{Tape, Var};
use gradtape_kernels::{Element, Shape, Tensor};

/// All rows of the Jacobian of `output` (shape `[..., H]`, `H` its last
/// axis) with respect to each of `inputs`: result `k` has shape
/// `[H, input_k's shape...]` and its slice `l` is the gradient of
/// `output[..., l].sum()`. It equals [`crate::grad_batched`] with the one-hot
/// seeds `E[l, ..., k] = δ_lk`, computed without sweeping the zeros.
///
/// For `output = f(x)` on a batch of independent samples (row `i` of the
/// output depends on row `i` of `x` only), `result[l, i, :]` is
/// `d output[i, l] / d x[i, :]`: row `l` of sample `i`'s Jacobian, in the
/// manner of TensorFlow's `batch_jacobian`.
///
/// With `create_graph` the rows are recorded and can be differentiated
/// again (the contractive penalty's use); without it they come back as
/// constants.
#[track_caller]
pub fn jacobian_rows<'t, T: Element>(
    output: Var<'t, T>,
    inputs: &[Var<'t, T>],
    create_graph: bool,
) -> Vec<Var<'t, T>> {
    for x in inputs {
        output.same_tape(x, "jacobian_rows");
    }
    let tape = output.tape;
    let out_shape = output.shape();
    assert!(!out_shape.is_empty(), "jacobian_rows: the output must have at least one axis, got a scalar");
    let ids: Vec<usize> = inputs.iter().map(|v| v.id).collect();
    if create_graph {
        let rows = rows_in(tape, output.id, &ids, |id| Var { tape, id }, |t| tape.constant(&t));
        rows.iter()
            .zip(&ids)
            .map(|(g, &x)| g.unwrap_or_else(|| tape.constant(&zero_rows(tape, &out_shape, x))))
            .collect()
    } else {
        let rows = rows_in(tape, output.id, &ids, |id| tape.value(id), |t| t);
        rows.into_iter()
            .zip(&ids)
            .map(|(g, &x)| tape.constant(&g.unwrap_or_else(|| zero_rows(tape, &out_shape, x))))
            .collect()
    }
}

/// The rows for an input no output depends on: zeros of shape `[H, x...]`.
fn zero_rows<T: Element>(tape: &Tape<T>, out_shape: &[usize], x: usize) -> Tensor<T> {
    let h = out_shape[out_shape.len() - 1];
    Tensor::zeros(&Lead(Shape::from_slice(&[h])).shape(&tape.value(x).dims()))
}

/// The two phases, in either algebra: the structured sweep down from the
/// output, then the ordinary batched sweep from wherever the structure
/// ended. `lift` turns a tensor into a constant of the algebra.
fn rows_in<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    output: usize,
    inputs: &[usize],
    fetch: impl Fn(usize) -> A,
    lift: impl Fn(Tensor<T>) -> A,
) -> Vec<Option<A>> {
    let (ids, seeds) = diagonal_phase(tape, output, inputs, &fetch, &lift);
    let h = tape.value(output).shape().last().copied().unwrap_or(1);
    sweep(tape, &ids, seeds, inputs, fetch, Lead(Shape::from_slice(&[h])))
}

/// Sweeps the diagonal form `D` of the identity seed down from `output` for
/// as long as the structure lasts. Returns the frontier: nodes and the dense
/// batched cotangents the ordinary sweep must continue from.
fn diagonal_phase<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    output: usize,
    inputs: &[usize],
    fetch: &impl Fn(usize) -> A,
    lift: &impl Fn(Tensor<T>) -> A,
) -> (Vec<usize>, Vec<A>) {
    let mut frontier: (Vec<usize>, Vec<A>) = (Vec::new(), Vec::new());
    let Some((lo, depends)) = dependents(tape, inputs, output) else { return frontier };
    let needed = |p: usize| p >= lo && depends[p - lo];
    if !needed(output) {
        return frontier;
    }
    let shape_of = |id: usize| tape.value(id).dims();
    let h = shape_of(output).last().copied().unwrap_or(1);
    let mut diag: Vec<Option<A>> = vec![None; output - lo + 1];
    diag[output - lo] = Some(lift(Tensor::ones(&shape_of(output))));

    for i in (lo..=output).rev() {
        let Some(d) = diag[i - lo].take() else { continue };
        let op = tape.op(i);
        let node_shape = shape_of(i);
        let operands = op.inputs();
        let needed_operands = || operands.iter().flatten().copied().filter(|&p| needed(p));
        if inputs.contains(&i) {
            // The input's own rows; the ordinary sweep carries on from here
            // if the input also depends on another input.
            push(&mut frontier, i, densify(&d, h, lift));
        } else if is_elementwise(&op) && needed_operands().all(|p| shape_of(p) == node_shape) {
            // d(out)/d(in) is diagonal: apply the ordinary rule to D.
            for (p, dp) in vjp(op, i, &d, fetch, &needed, &Lead::none()).into_iter().flatten() {
                let slot = &mut diag[p - lo];
                *slot = Some(match slot.take() {
                    Some(acc) => acc.accumulate(&dp),
                    None => dp,
                });
            }
        } else if let Some((a, rows)) = through_product(&op, &d, fetch, &needed, &shape_of) {
            push(&mut frontier, a, rows);
        } else {
            push(&mut frontier, i, densify(&d, h, lift));
        }
    }
    frontier
}

fn push<A>(frontier: &mut (Vec<usize>, Vec<A>), id: usize, g: A) {
    frontier.0.push(id);
    frontier.1.push(g);
}

/// Ops whose output element `j` depends on input element `j` alone (when the
/// inputs have the output's shape).
fn is_elementwise<T>(op: &Op<T>) -> bool {
    use Op::*;
    matches!(
        op,
        Add(..)
            | Sub(..)
            | Mul(..)
            | Div(..)
            | Neg(_)
            | AddScalar(_)
            | MulScalar(..)
            | Exp(_)
            | Log(_)
            | Pow(..)
            | Sqrt(_)
            | Square(_)
            | Abs(_)
            | Sigmoid(_)
            | Tanh(_)
            | Relu(_)
            | Softplus(_)
            | Clamp(..)
    )
}

/// `C = A op(B)` with the structured cotangent `δ_lk D[i, k]` on `C`, `A` a
/// plain `[m, K]` matrix that leads to the inputs and `B` a `[K, H]`-shaped
/// (after `op`) matrix that does not: the dense batched gradient of `A`,
///
/// `dA[l, i, c] = sum_k δ_lk D[i, k] op(B)^T[k, c] = D[i, l] op(B)^T[l, c]`,
///
/// as the broadcast product `D^T[l, i, 1] * op(B)^T[l, 1, c]`.
fn through_product<T: Element, A: Algebra<T>>(
    op: &Op<T>,
    d: &A,
    fetch: &impl Fn(usize) -> A,
    needed: &impl Fn(usize) -> bool,
    shape_of: &impl Fn(usize) -> Shape,
) -> Option<(usize, A)> {
    let Op::MatMul { a, b, ta: false, tb } = *op else { return None };
    let (sa, sb) = (shape_of(a), shape_of(b));
    if !needed(a) || needed(b) || sa.len() != 2 || sb.len() != 2 {
        return None;
    }
    let (m, h) = (d.shape()[0], d.shape()[1]);
    // op(B)^T is B itself when the product read B transposed.
    let b_rows = if tb { fetch(b) } else { fetch(b).transpose() }; // [H, K]
    let k = b_rows.shape()[1];
    let d_t = d.transpose().reshape(&[h, m, 1]);
    Some((a, d_t.mul(&b_rows.reshape(&[h, 1, k]))))
}

/// The dense batched cotangent `E ⊙ D` (`E[l, ..., k] = δ_lk`) of shape
/// `[H, D's shape...]`.
fn densify<T: Element, A: Algebra<T>>(d: &A, h: usize, lift: &impl Fn(Tensor<T>) -> A) -> A {
    let rank = d.shape().len();
    let mut e_shape = vec![h];
    e_shape.extend(std::iter::repeat_n(1, rank - 1));
    e_shape.push(h);
    let e = Tensor::from_fill(&e_shape, |e| {
        e.fill(T::zero());
        for l in 0..h {
            e[l * h + l] = T::one();
        }
    });
    lift(e).mul(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigmoid_layer_keeps_the_structure_down_to_its_input() {
        // h = sigmoid(x W^T + b) with respect to x: the diagonal phase should
        // end at x itself, with the rows of the product, never having
        // written out the [H, n, H] seed.
        let tape = Tape::<f64>::new();
        let x = tape.constant(&Tensor::uniform(&[4, 6], -1.0, 1.0, 1));
        let w = tape.param(&Tensor::normal(&[3, 6], 0.0, 1.0, 2));
        let b = tape.param(&Tensor::normal(&[3], 0.0, 1.0, 3));
        let h = (x.matmul_t(w, false, true) + b).sigmoid();
        let (ids, seeds) = diagonal_phase(&tape, h.id, &[x.id], &|id| tape.value(id), &|t| t);
        assert_eq!(ids, vec![x.id]);
        assert_eq!(seeds[0].shape(), &[3, 4, 6]);
    }

    #[test]
    fn a_reshape_ends_the_structure_where_it_stands() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&Tensor::uniform(&[2, 3], -1.0, 1.0, 1));
        let r = x.reshape(&[3, 2]);
        let y = r.tanh();
        let (ids, seeds) = diagonal_phase(&tape, y.id, &[x.id], &|id| tape.value(id), &|t| t);
        assert_eq!(ids, vec![r.id]);
        assert_eq!(seeds[0].shape(), &[2, 3, 2]);
    }
}
