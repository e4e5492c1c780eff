//! Every fused op against the plain ops it replaces (`autograd/src/ops/fused.rs`).
//!
//! `z.bias_act(b, act)` must compute `act(z + b)`: the forward value, the
//! plain backward sweep's gradients of `z` and `b`, the recorded sweep's,
//! and a double backward through the recorded one. The forward and the
//! plain and recorded gradients are the same formulas in the same order as
//! the plain ops', so they must agree bit for bit on the CPU; a double
//! backward sums its terms in another order (the fused node's rule gives
//! `dz` and `db` at once, where the plain ops accumulate them through the
//! add), so it must agree to 1e-14 relative in f64.
//!
//! Shapes: small, a batch large enough for the kernels to split across
//! workers (60,000 elements), rank 3, and one column.

use gradtape::{grad, grad_values, Act, Element, Tape, Tensor, Var};
use gradtape_kernels::compare::{check_close, Tol};

const ACTS: [Act; 4] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];
const SHAPES: &[&[usize]] = &[&[7, 5], &[300, 200], &[4, 6, 5], &[9, 1]];

fn plain<'t, T: Element>(z: Var<'t, T>, b: Var<'t, T>, act: Act) -> Var<'t, T> {
    let pre = z + b;
    match act {
        Act::Identity => pre,
        Act::Relu => pre.relu(),
        Act::Sigmoid => pre.sigmoid(),
        Act::Tanh => pre.tanh(),
    }
}

/// Forward, plain gradients, recorded gradients, double-backward gradients
/// of `sum(y * w)` (and of `sum(dz * u) + sum(db * v)`), by `f`.
fn run<T: Element>(
    z: &Tensor<T>,
    b: &Tensor<T>,
    w: &Tensor<T>,
    f: impl for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
) -> [Vec<Tensor<T>>; 4] {
    let tape = Tape::new();
    let (zv, bv) = (tape.param(z), tape.param(b));
    let y = f(zv, bv);
    let loss = (y * tape.constant(w)).sum();
    let plain = grad_values(&[loss], &[zv, bv], None);
    let recorded = grad(&[loss], &[zv, bv], None, true);
    let (u, v) = (tape.constant(&w.map(|x| x * T::of(0.5))), tape.constant(&b.map(|x| x + T::one())));
    let inner = (recorded[0] * u).sum() + (recorded[1] * v).sum();
    let double = grad_values(&[inner], &[zv, bv], None);
    [vec![y.value()], plain, recorded.iter().map(|g| g.value()).collect(), double]
}

fn composition_matches<T: Element>() {
    for &shape in SHAPES {
        let cols = shape[shape.len() - 1];
        for act in ACTS {
            // Away from ReLU's kink, as gradchecks are.
            let z =
                Tensor::<f64>::uniform(shape, -1.5, 1.5, 1).map(|x| if x.abs() < 0.1 { x + 0.3 } else { x });
            let z: Tensor<T> = z.cast();
            let b: Tensor<T> = Tensor::<f64>::uniform(&[cols], -0.05, 0.05, 2).cast();
            let w: Tensor<T> = Tensor::<f64>::uniform(shape, -1.0, 1.0, 3).cast();
            let fused = run(&z, &b, &w, |z, b| z.bias_act(b, act));
            let composed = run(&z, &b, &w, |z, b| plain(z, b, act));
            let what = |part: &str, i: usize| {
                format!("bias_act {} on {shape:?}: {part} {i} ({})", act.name(), T::NAME)
            };
            for (k, part) in
                ["forward", "plain gradient", "recorded gradient", "double backward"].iter().enumerate()
            {
                let tol =
                    if k == 3 { Tol::rel(if T::NAME == "f64" { 1e-14 } else { 1e-6 }) } else { Tol::EXACT };
                for (i, (a, e)) in fused[k].iter().zip(&composed[k]).enumerate() {
                    check_close(&what(part, i), a, e, tol).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
}

#[test]
fn bias_act_is_its_composition_bit_for_bit_in_f64() {
    composition_matches::<f64>();
}

#[test]
fn bias_act_is_its_composition_bit_for_bit_in_f32() {
    composition_matches::<f32>();
}
