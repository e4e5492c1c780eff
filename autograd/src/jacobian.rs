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
//!
//! ## Rows that are never written out
//!
//! When the structure lasts all the way down to the input, as it does for a
//! layer `h = act(x W^T + b)` differentiated with respect to `x`, the rows
//! are an outer product per hidden unit: `rows[l, i, c] = d[l, i] b[l, c]`
//! with `d = D^T` (`[H, m]`) and `b = op(B)^T` (`[H, K]`).
//! [`jacobian_rows_factored`] hands back the two factors instead of their
//! `H m K` products, and [`JacobianRows::sum_squares`] takes the squared
//! Frobenius norm from them:
//!
//! ```text
//! sum_{l,i,c} (d[l,i] b[l,c])^2 = sum_l (sum_i d[l,i]^2) (sum_c b[l,c]^2)
//! ```
//!
//! `H (m + K)` multiplications instead of `H m K`, and, since the factors are
//! recorded variables, just as differentiable. The factors are still what
//! the backward sweep computed (the activation's backward rule applied to
//! the seed, and the weight the product read); nothing about the activation
//! is assumed.

use crate::algebra::Algebra;
use crate::grad::{dependents, vjp};
use crate::lead::{batched_sweep, Lead};
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
        let start = tape.len();
        let rows = rows_in(tape, output.id, &ids, |id| Var { tape, id }, |t| tape.constant(&t));
        tape.note_recorded_sweep(start..tape.len());
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
    let value = tape.value(x);
    Tensor::zeros_on(&Lead(Shape::from_slice(&[h])).shape(&value.dims()), value.device())
}

/// The rows of a Jacobian as [`jacobian_rows_factored`] returns them.
#[derive(Clone, Copy, Debug)]
pub enum JacobianRows<'t, T: Element> {
    /// `rows[l, i, c] = d[l, i] * b[l, c]`, with `d` of shape `[H, m]` and
    /// `b` of shape `[H, K]`: the rows of a product `A op(B)` with respect to
    /// `A = input` (`[m, K]`), never multiplied out.
    Outer {
        /// The per-row factor on the output side, shape `[H, m]`: `D^T`,
        /// the seed after the backward rules between the output and the product.
        d: Var<'t, T>,
        /// The per-row factor on the input side, shape `[H, K]`: `op(B)^T`,
        /// the matrix the product read.
        b: Var<'t, T>,
    },
    /// The rows written out, shape `[H, input's shape...]`.
    Dense(Var<'t, T>),
}

impl<'t, T: Element> JacobianRows<'t, T> {
    /// The rows written out: shape `[H, input's shape...]`, equal to what
    /// [`jacobian_rows`] returns.
    pub fn dense(&self) -> Var<'t, T> {
        match *self {
            JacobianRows::Outer { d, b } => Cotangent::Outer { d, b }.dense(),
            JacobianRows::Dense(rows) => rows,
        }
    }

    /// The sum of the squares of every row entry, `||J||_F^2` summed over
    /// the samples; for the outer-product form
    /// `sum_l (sum_i d[l,i]^2) (sum_c b[l,c]^2)`, without writing the rows
    /// (the fused op `outer_sum_squares`, one node).
    pub fn sum_squares(&self) -> Var<'t, T> {
        match *self {
            JacobianRows::Outer { d, b } => d.outer_sum_squares(b, T::one()),
            JacobianRows::Dense(rows) => rows.sum_squares(),
        }
    }

    /// `scale` times [`JacobianRows::sum_squares`], one node for the outer
    /// form (`outer_sum_squares` takes the scale in its last step): the
    /// penalty's mean over a batch without a node of its own.
    pub fn scaled_sum_squares(&self, scale: T) -> Var<'t, T> {
        match *self {
            JacobianRows::Outer { d, b } => d.outer_sum_squares(b, scale),
            JacobianRows::Dense(rows) => rows.sum_squares() * scale,
        }
    }
}

/// The rows of [`jacobian_rows`] for one input, kept as an outer product of
/// two factors when the structured sweep reaches `input` through a matrix
/// product with nothing after it ([`JacobianRows::Outer`]), written out
/// otherwise ([`JacobianRows::Dense`]). `jacobian_rows_factored(y, x,
/// g).dense()` equals `jacobian_rows(y, &[x], g)[0]`.
#[track_caller]
pub fn jacobian_rows_factored<'t, T: Element>(
    output: Var<'t, T>,
    input: Var<'t, T>,
    create_graph: bool,
) -> JacobianRows<'t, T> {
    output.same_tape(&input, "jacobian_rows_factored");
    let tape = output.tape;
    let out_shape = output.shape();
    assert!(
        !out_shape.is_empty(),
        "jacobian_rows_factored: the output must have at least one axis, got a scalar"
    );
    let zeros = || zero_rows(tape, &out_shape, input.id);
    if create_graph {
        let start = tape.len();
        let found = factored_in(tape, output.id, input.id, |id| Var { tape, id }, |t| tape.constant(&t));
        tape.note_recorded_sweep(start..tape.len());
        match found {
            Factored::Outer { d, b } => JacobianRows::Outer { d, b },
            Factored::Dense(rows) => JacobianRows::Dense(rows.unwrap_or_else(|| tape.constant(&zeros()))),
        }
    } else {
        match factored_in(tape, output.id, input.id, |id| tape.value(id), |t| t) {
            Factored::Outer { d, b } => JacobianRows::Outer { d: tape.constant(&d), b: tape.constant(&b) },
            Factored::Dense(rows) => JacobianRows::Dense(tape.constant(&rows.unwrap_or_else(zeros))),
        }
    }
}

/// What [`factored_in`] found, in either algebra.
enum Factored<A> {
    Outer { d: A, b: A },
    Dense(Option<A>),
}

/// The structured sweep; if it ends at `input` with an outer product, the
/// factors, else the ordinary sweep carries on to the dense rows.
fn factored_in<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    output: usize,
    input: usize,
    fetch: impl Fn(usize) -> A,
    lift: impl Fn(Tensor<T>) -> A,
) -> Factored<A> {
    let (ids, mut cotangents) = diagonal_phase(tape, output, &[input], &fetch, &lift);
    if ids == [input] && matches!(cotangents[0], Cotangent::Outer { .. }) {
        if let Some(Cotangent::Outer { d, b }) = cotangents.pop() {
            return Factored::Outer { d, b };
        }
    }
    let dense = cotangents.into_iter().map(Cotangent::dense).collect();
    Factored::Dense(finish(tape, output, &ids, dense, &[input], fetch).pop().flatten())
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
    let (ids, cotangents) = diagonal_phase(tape, output, inputs, &fetch, &lift);
    let seeds = cotangents.into_iter().map(Cotangent::dense).collect();
    finish(tape, output, &ids, seeds, inputs, fetch)
}

/// The ordinary batched sweep from the frontier `ids` with the dense
/// cotangents `seeds`, down to `inputs`.
fn finish<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    output: usize,
    ids: &[usize],
    seeds: Vec<A>,
    inputs: &[usize],
    fetch: impl Fn(usize) -> A,
) -> Vec<Option<A>> {
    let h = tape.value(output).shape().last().copied().unwrap_or(1);
    batched_sweep(tape, ids, seeds, inputs, fetch, Lead(Shape::from_slice(&[h])))
}

/// A batched cotangent on the frontier of the structured sweep: written out,
/// or as the outer product `G[l, i, c] = d[l, i] b[l, c]` left by a matrix
/// product.
enum Cotangent<A> {
    Dense(A),
    Outer { d: A, b: A },
}

impl<A> Cotangent<A> {
    /// The cotangent written out: `d[l, i, 1] * b[l, 1, c]` for the outer
    /// product.
    fn dense<T: Element>(self) -> A
    where
        A: Algebra<T>,
    {
        match self {
            Cotangent::Dense(g) => g,
            Cotangent::Outer { d, b } => {
                let (h, m, k) = (d.shape()[0], d.shape()[1], b.shape()[1]);
                d.reshape(&[h, m, 1]).mul(&b.reshape(&[h, 1, k]))
            }
        }
    }
}

/// Sweeps the diagonal form `D` of the identity seed down from `output` for
/// as long as the structure lasts. Returns the frontier: nodes and the
/// batched cotangents the ordinary sweep must continue from.
fn diagonal_phase<T: Element, A: Algebra<T>>(
    tape: &Tape<T>,
    output: usize,
    inputs: &[usize],
    fetch: &impl Fn(usize) -> A,
    lift: &impl Fn(Tensor<T>) -> A,
) -> (Vec<usize>, Vec<Cotangent<A>>) {
    let mut frontier: (Vec<usize>, Vec<Cotangent<A>>) = (Vec::new(), Vec::new());
    let Some((lo, depends)) = dependents(tape, inputs, output) else { return frontier };
    let needed = |p: usize| p >= lo && depends[p - lo];
    if !needed(output) {
        return frontier;
    }
    let shape_of = |id: usize| tape.value(id).dims();
    let h = shape_of(output).last().copied().unwrap_or(1);
    let mut diag: Vec<Option<A>> = vec![None; output - lo + 1];
    let ones = Tensor::full_on(&shape_of(output), T::one(), tape.value(output).device());
    diag[output - lo] = Some(lift(ones));

    for i in (lo..=output).rev() {
        let Some(d) = diag[i - lo].take() else { continue };
        let op = tape.op(i);
        let node_shape = shape_of(i);
        let operands = op.inputs();
        let needed_operands = || operands.iter().flatten().copied().filter(|&p| needed(p));
        if inputs.contains(&i) {
            // The input's own rows; the ordinary sweep carries on from here
            // if the input also depends on another input.
            push(&mut frontier, i, Cotangent::Dense(densify(&d, h, lift)));
        } else if is_elementwise(&op) && needed_operands().all(|p| shape_of(p) == node_shape) {
            // d(out)/d(in) is diagonal: apply the ordinary rule to D.
            for (p, dp) in vjp(op, i, &d, fetch, &needed, &|_| None, &crate::ops::fused::ReluThrough::never())
                .into_iter()
                .flatten()
            {
                let slot = &mut diag[p - lo];
                *slot = Some(match slot.take() {
                    Some(acc) => acc.accumulate(&dp),
                    None => dp,
                });
            }
        } else if let Some((a, rows)) = through_product(&op, &d, fetch, &needed, &shape_of) {
            push(&mut frontier, a, rows);
        } else {
            push(&mut frontier, i, Cotangent::Dense(densify(&d, h, lift)));
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
///
/// Every op is classified here, with no wildcard arm: a new op must be added
/// to one side or the other, or the build fails. (An elementwise op left on
/// the `false` side would still give the right rows, through the slower
/// dense sweep.)
fn is_elementwise<T>(op: &Op<T>) -> bool {
    use Op::*;
    match op {
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
        | BiasAct { .. }
        | AddScaled { .. }
        | Reparameterize { .. }
        | Formula { .. } => true,
        Leaf { .. }
        | SumAll(_)
        | SumSquares(_)
        | MeanAll(_)
        | MaxAll(_)
        | SumAxis { .. }
        | MeanAxis { .. }
        | MaxAxis { .. }
        | Reshape(_)
        | Transpose(_)
        | BroadcastTo(_)
        | SumTo(_)
        | Select { .. }
        | Unselect { .. }
        | Slice { .. }
        | Pad { .. }
        | MatMul { .. }
        | Linear { .. }
        | LossSum { .. }
        | OuterSumSquares { .. }
        | Norm(_) => false,
    }
}

/// `C = A op(B)` with the structured cotangent `δ_lk D[i, k]` on `C`, `A` a
/// plain `[m, K]` matrix that leads to the inputs and `B` a `[K, H]`-shaped
/// (after `op`) matrix that does not: the dense batched gradient of `A`,
///
/// `dA[l, i, c] = sum_k δ_lk D[i, k] op(B)^T[k, c] = D[i, l] op(B)^T[l, c]`,
///
/// kept as its two factors `D^T` (`[H, m]`) and `op(B)^T` (`[H, K]`).
fn through_product<T: Element, A: Algebra<T>>(
    op: &Op<T>,
    d: &A,
    fetch: &impl Fn(usize) -> A,
    needed: &impl Fn(usize) -> bool,
    shape_of: &impl Fn(usize) -> Shape,
) -> Option<(usize, Cotangent<A>)> {
    // `lhs` and `rhs` are the node ids of A and B; `d` and `b` below are
    // the two factors of the rows.
    let Op::MatMul { a: lhs, b: rhs, ta: false, tb } = *op else { return None };
    let (sa, sb) = (shape_of(lhs), shape_of(rhs));
    if !needed(lhs) || needed(rhs) || sa.len() != 2 || sb.len() != 2 {
        return None;
    }
    // op(B)^T is B itself when the product read B transposed.
    let b = if tb { fetch(rhs) } else { fetch(rhs).transpose() }; // [H, K]
    Some((lhs, Cotangent::Outer { d: d.transpose(), b }))
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
    lift(e.to(d.device())).mul(d)
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
        let (ids, mut seeds) = diagonal_phase(&tape, h.id, &[x.id], &|id| tape.value(id), &|t| t);
        assert_eq!(ids, vec![x.id]);
        let Some(Cotangent::Outer { d, b }) = seeds.pop() else { panic!("expected the outer-product form") };
        assert_eq!((d.shape(), b.shape()), (&[3usize, 4][..], &[3usize, 6][..]));
    }

    #[test]
    fn a_reshape_ends_the_structure_where_it_stands() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&Tensor::uniform(&[2, 3], -1.0, 1.0, 1));
        let r = x.reshape(&[3, 2]);
        let y = r.tanh();
        let (ids, mut seeds) = diagonal_phase(&tape, y.id, &[x.id], &|id| tape.value(id), &|t| t);
        assert_eq!(ids, vec![r.id]);
        let Some(Cotangent::Dense(g)) = seeds.pop() else { panic!("expected a dense cotangent") };
        assert_eq!(g.shape(), &[2, 3, 2]);
    }
}
