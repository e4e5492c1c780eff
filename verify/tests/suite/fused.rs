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

use gradtape::{grad, grad_values, Act, Element, LossTerm, Tape, Tensor, Var};
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

// ---- the fused losses ------------------------------------------------------

/// `scale * sum_i term(a_i, b_i)` in plain ops, as `gradtape_models::losses`
/// wrote each loss before it was fused (see `autograd/src/ops/fused.rs`).
fn plain_loss<'t, T: Element>(a: Var<'t, T>, b: Var<'t, T>, term: LossTerm, scale: T) -> Var<'t, T> {
    let one = T::one();
    let sum = match term {
        LossTerm::SquaredError => (a - b).sum_squares(),
        LossTerm::BinaryCrossEntropy => {
            let (floor, inf) = (gradtape_kernels::fused::log_floor::<T>(), T::infinity());
            let clamped_log = |x: Var<'t, T>| x.clamp(floor, inf).log().clamp(T::of(-100.0), inf);
            let (lp, l1) = (clamped_log(a), clamped_log(a.rsub_scalar(one)));
            (l1 + b * (lp - l1)).sum().neg()
        }
        LossTerm::GaussianKl => (b.add_scalar(one) - a.square() - b.exp()).sum() * T::of(-0.5),
    };
    sum * scale
}

/// Forward, plain gradients, recorded gradients, and the double backward
/// of `sum(da * u) + sum(db * v)`, for the loss `f(a, b)`.
fn run_loss<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: impl for<'t> Fn(Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
) -> [Vec<Tensor<T>>; 4] {
    let tape = Tape::new();
    let (av, bv) = (tape.param(a), tape.param(b));
    let loss = f(av, bv);
    let plain = grad_values(&[loss], &[av, bv], None);
    let recorded = grad(&[loss], &[av, bv], None, true);
    let (u, v) = (tape.constant(&a.map(|x| x * T::of(0.5))), tape.constant(&b.map(|x| x + T::one())));
    let inner = (recorded[0] * u).sum() + (recorded[1] * v).sum();
    let double = grad_values(&[inner], &[av, bv], None);
    [vec![loss.value()], plain, recorded.iter().map(|g| g.value()).collect(), double]
}

/// The forward bit for bit (the same terms, summed in the same chunks and
/// lanes, then scaled); the gradients, whose formulas are written in
/// another order, to 1e-14 relative in f64 (1e-6 in f32).
fn loss_composition_matches<T: Element>() {
    for &shape in SHAPES {
        for term in LossTerm::ALL {
            let (a, b): (Tensor<f64>, Tensor<f64>) = match term {
                // Probabilities with a few exact 0s and 1s (the clamps'
                // region) among them, and targets in [0, 1].
                LossTerm::BinaryCrossEntropy => (
                    Tensor::<f64>::uniform(shape, -0.2, 1.2, 4).map(|x| x.clamp(0.0, 1.0)),
                    Tensor::uniform(shape, 0.0, 1.0, 5),
                ),
                _ => (Tensor::uniform(shape, -1.5, 1.5, 4), Tensor::uniform(shape, -1.0, 1.0, 5)),
            };
            let (a, b): (Tensor<T>, Tensor<T>) = (a.cast(), b.cast());
            let scale = T::of(1.0 / 3.0);
            let fused = run_loss(&a, &b, |a, b| a.loss_sum(b, term, scale));
            let composed = run_loss(&a, &b, |a, b| plain_loss(a, b, term, scale));
            for (k, part) in
                ["forward", "plain gradient", "recorded gradient", "double backward"].iter().enumerate()
            {
                let tol =
                    if k == 0 { Tol::EXACT } else { Tol::rel(if T::NAME == "f64" { 1e-14 } else { 1e-6 }) };
                for (i, (got, want)) in fused[k].iter().zip(&composed[k]).enumerate() {
                    let what = format!("loss_sum {} on {shape:?}: {part} {i} ({})", term.name(), T::NAME);
                    check_close(&what, got, want, tol).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
}

#[test]
fn loss_sum_is_its_composition_in_f64() {
    loss_composition_matches::<f64>();
}

#[test]
fn loss_sum_is_its_composition_in_f32() {
    loss_composition_matches::<f32>();
}

// ---- the reparameterisation -------------------------------------------------

/// `mu.reparameterize(logvar, eps)` against `mu + (logvar * 0.5).exp() *
/// eps`: the forward and the plain and recorded gradients bit for bit (the
/// same formulas in the same order), the double backward to 1e-14 in f64.
fn reparameterize_composition_matches<T: Element>() {
    for &shape in SHAPES {
        let mu: Tensor<T> = Tensor::<f64>::uniform(shape, -1.5, 1.5, 6).cast();
        let logvar: Tensor<T> = Tensor::<f64>::uniform(shape, -2.0, 2.0, 7).cast();
        let eps: Tensor<T> = Tensor::<f64>::normal(shape, 0.0, 1.0, 8).cast();
        let w: Tensor<T> = Tensor::<f64>::uniform(shape, -1.0, 1.0, 9).cast();
        let fused = run(&mu, &logvar, &w, |m, l| m.reparameterize(l, &eps));
        let composed = run(&mu, &logvar, &w, |m, l| m + (l * T::of(0.5)).exp() * m.tape().constant(&eps));
        for (k, part) in
            ["forward", "plain gradient", "recorded gradient", "double backward"].iter().enumerate()
        {
            let tol = if k == 3 { Tol::rel(if T::NAME == "f64" { 1e-14 } else { 1e-6 }) } else { Tol::EXACT };
            for (i, (got, want)) in fused[k].iter().zip(&composed[k]).enumerate() {
                let what = format!("reparameterize on {shape:?}: {part} {i} ({})", T::NAME);
                check_close(&what, got, want, tol).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn reparameterize_is_its_composition_bit_for_bit_in_f64() {
    reparameterize_composition_matches::<f64>();
}

#[test]
fn reparameterize_is_its_composition_bit_for_bit_in_f32() {
    reparameterize_composition_matches::<f32>();
}
