//! Every fused op against the plain ops it replaces (`autograd/src/ops/fused.rs`).
//! The composition each is checked against is the one the op records inside
//! `without_fusion`, written once, in that module.
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

use gradtape::{grad, grad_values, without_fusion, Act, Element, LossTerm, OpKind, Tape, Tensor, Var};
use gradtape_kernels::compare::{check_close, Tol};
use gradtape_kernels::Device;
use gradtape_models::autoencoders::*;
use gradtape_models::data::MnistSplit;
use gradtape_models::optim::{Adam, Optimizer};

const ACTS: [Act; 4] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];
const SHAPES: &[&[usize]] = &[&[7, 5], &[300, 200], &[4, 6, 5], &[9, 1]];

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
            let composed = run(&z, &b, &w, |z, b| without_fusion(|| z.bias_act(b, act)));
            let tols = [Tol::EXACT, Tol::EXACT, Tol::EXACT, double_backward_tol::<T>()];
            parts_match(&format!("bias_act {} on {shape:?}", act.name()), &fused, &composed, tols);
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
            let composed = run_loss(&a, &b, |a, b| without_fusion(|| a.loss_sum(b, term, scale)));
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
        let composed = run(&mu, &logvar, &w, |m, l| without_fusion(|| m.reparameterize(l, &eps)));
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

// ---- a loss and its weighted penalty ------------------------------------------

/// `a.add_scaled(b, s)` against `a + b * s` (a `mul_scalar` and an `add`):
/// the same product and sum per element, the rules `g` and `g s`, so all
/// four parts bit for bit (the double backward of a linear op is zero both
/// ways), on the shapes above and on one number, as the models use it. The
/// fused tape holds one `AddScaled` node and no `MulScalar` or `Add`.
fn add_scaled_composition_matches<T: Element>() {
    for &shape in SHAPES.iter().chain([&[][..]].iter()) {
        let a: Tensor<T> = Tensor::<f64>::uniform(shape, -1.5, 1.5, 81).cast();
        let b: Tensor<T> = Tensor::<f64>::uniform(shape, -1.5, 1.5, 82).cast();
        let w: Tensor<T> = Tensor::<f64>::uniform(shape, -1.0, 1.0, 83).cast();
        let s = T::of(-0.37);
        let fused = run(&a, &b, &w, |a, b| a.add_scaled(b, s));
        let composed = run(&a, &b, &w, |a, b| without_fusion(|| a.add_scaled(b, s)));
        parts_match(&format!("add_scaled on {shape:?}"), &fused, &composed, [Tol::EXACT; 4]);
    }
    let tape = Tape::<T>::new();
    let (a, b) = (tape.param(&Tensor::scalar(T::one())), tape.param(&Tensor::scalar(T::of(2.0))));
    let _ = a.add_scaled(b, T::of(0.5));
    assert_eq!(tape.op_kinds(), [OpKind::Leaf, OpKind::Leaf, OpKind::AddScaled]);
}

#[test]
fn add_scaled_is_its_composition_bit_for_bit_in_f64() {
    add_scaled_composition_matches::<f64>();
}

#[test]
fn add_scaled_is_its_composition_bit_for_bit_in_f32() {
    add_scaled_composition_matches::<f32>();
}

#[test]
#[should_panic(expected = "add_scaled: shapes [2, 3] and [3] differ (it does not broadcast)")]
fn add_scaled_refuses_two_shapes_naming_both() {
    let tape = Tape::<f32>::new();
    let _ = tape.constant(&Tensor::zeros(&[2, 3])).add_scaled(tape.constant(&Tensor::zeros(&[3])), 2.0);
}

#[test]
#[should_panic(expected = "add_scaled: shapes [2, 3] and [3] differ (it does not broadcast)")]
fn add_scaled_refuses_two_shapes_without_fusion_too() {
    let tape = Tape::<f32>::new();
    let (a, b) = (tape.constant(&Tensor::zeros(&[2, 3])), tape.constant(&Tensor::zeros(&[3])));
    let _ = without_fusion(|| a.add_scaled(b, 2.0));
}

/// The sweep adds a gradient that reaches a node through a matrix product
/// inside the product (`sum_so_far`, a BLAS's `beta = 1`). Against the same
/// gradients written out by hand (each product, then the adds), to 1e-14
/// relative in f64: the BLAS may sum the inner axis in blocks, and the sum
/// so far then joins the first block. Cases: `x` feeding two products and
/// a square; `x @ x^T` (both operands one node); a weight shared by two
/// products of which one is batched (its gradient summed over the batch,
/// the path that adds after the product); and the double backward of the
/// same, through the recorded sweep.
#[test]
fn gradients_added_inside_a_product_are_the_products_and_the_adds() {
    let tol = Tol::rel(1e-14);
    let x = Tensor::<f64>::uniform(&[40, 30], -1.0, 1.0, 31);
    let w1 = Tensor::<f64>::uniform(&[20, 30], -1.0, 1.0, 32);
    let w2 = Tensor::<f64>::uniform(&[30, 600], -1.0, 1.0, 33);
    let (g1, g2) =
        (Tensor::<f64>::uniform(&[40, 20], -1.0, 1.0, 34), Tensor::<f64>::uniform(&[40, 600], -1.0, 1.0, 35));
    let tape = Tape::new();
    let (xv, w1v, w2v) = (tape.param(&x), tape.param(&w1), tape.param(&w2));
    let loss = (xv.square() * 0.5).sum()
        + (xv.matmul_t(w1v, false, true) * tape.constant(&g1)).sum()
        + (xv.matmul(w2v) * tape.constant(&g2)).sum();
    let got = grad_values(&[loss], &[xv, w1v, w2v], None);
    // d/dx = x + g1 w1 + g2 w2^T; d/dw1 = g1^T x; d/dw2 = x^T g2.
    let dx = x.add(&g1.matmul(&w1)).add(&g2.matmul_t(&w2, false, true));
    let want = [dx, g1.matmul_t(&x, true, false), x.matmul_t(&g2, true, false)];
    for (i, (a, e)) in got.iter().zip(&want).enumerate() {
        check_close(&format!("two products and a square: gradient {i}"), a, e, tol)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    // Both operands one node: d/dx sum((x x^T) * g) = (g + g^T) x.
    let g = Tensor::<f64>::uniform(&[40, 40], -1.0, 1.0, 36);
    let tape = Tape::new();
    let xv = tape.param(&x);
    let loss = (xv.matmul_t(xv, false, true) * tape.constant(&g)).sum();
    let got = grad_values(&[loss], &[xv], None);
    let want = g.matmul(&x).add(&g.matmul_t(&x, true, false));
    check_close("x @ x^T", &got[0], &want, tol).unwrap_or_else(|e| panic!("{e}"));

    // A weight shared by a batched product and a plain one.
    let xb = Tensor::<f64>::uniform(&[3, 40, 30], -1.0, 1.0, 37);
    let gb = Tensor::<f64>::uniform(&[3, 40, 20], -1.0, 1.0, 38);
    let tape = Tape::new();
    let (xbv, xv, w1v) = (tape.param(&xb), tape.param(&x), tape.param(&w1));
    let loss = (xbv.matmul_t(w1v, false, true) * tape.constant(&gb)).sum()
        + (xv.matmul_t(w1v, false, true) * tape.constant(&g1)).sum();
    let got = grad_values(&[loss], &[w1v], None);
    let batched = gb.reshape(&[120, 20]).matmul_t(&xb.reshape(&[120, 30]), true, false);
    let want = g1.matmul_t(&x, true, false).add(&batched);
    check_close("a weight shared by a batched product", &got[0], &want, tol)
        .unwrap_or_else(|e| panic!("{e}"));

    // Double backward: the recorded sweep adds as ops; its gradient of
    // sum(dx * u) is u with respect to x and g1^T u with respect to w1.
    let u = Tensor::<f64>::uniform(&[40, 30], -1.0, 1.0, 39);
    let tape = Tape::new();
    let (xv, w1v) = (tape.param(&x), tape.param(&w1));
    let loss = (xv.square() * 0.5).sum() + (xv.matmul_t(w1v, false, true) * tape.constant(&g1)).sum();
    let dx = grad(&[loss], &[xv], None, true)[0];
    check_close("recorded dx", &dx.value(), &x.add(&g1.matmul(&w1)), tol).unwrap_or_else(|e| panic!("{e}"));
    let inner = (dx * tape.constant(&u)).sum();
    let got = grad_values(&[inner], &[xv, w1v], None);
    check_close("double backward, x", &got[0], &u, tol).unwrap_or_else(|e| panic!("{e}"));
    check_close("double backward, w1", &got[1], &g1.matmul_t(&u, true, false), tol)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The fused norm against `sum_squares().sqrt()`: the forward, the plain
/// and the recorded gradients bit for bit (the same formulas in the same
/// order), the double backward to 1e-14 relative in f64 (1e-6 in f32).
fn norm_composition_matches<T: Element>() {
    for &shape in SHAPES {
        let x: Tensor<T> = Tensor::<f64>::uniform(shape, -1.5, 1.5, 41).cast();
        let run = |fused: bool| {
            let tape = Tape::new();
            let xv = tape.param(&x);
            let y = if fused { xv.norm() } else { without_fusion(|| xv.norm()) };
            let plain = grad_values(&[y], &[xv], None);
            let recorded = grad(&[y], &[xv], None, true);
            let u = tape.constant(&x.map(|v| v * T::of(0.5) + T::one()));
            let double = grad_values(&[(recorded[0] * u).sum()], &[xv], None);
            [vec![y.value()], plain, vec![recorded[0].value()], double]
        };
        let (fused, composed) = (run(true), run(false));
        let tols = [Tol::EXACT, Tol::EXACT, Tol::EXACT, double_backward_tol::<T>()];
        parts_match(&format!("norm on {shape:?}"), &fused, &composed, tols);
    }
}

#[test]
fn norm_is_its_composition_bit_for_bit_in_f64() {
    norm_composition_matches::<f64>();
}

#[test]
fn norm_is_its_composition_bit_for_bit_in_f32() {
    norm_composition_matches::<f32>();
}

/// Checks the four parts [`run`] and its kin return (forward, plain
/// gradients, recorded gradients, double backward), one tensor at a time,
/// with each part's tolerance.
fn parts_match<T: Element>(
    what: &str,
    fused: &[Vec<Tensor<T>>; 4],
    composed: &[Vec<Tensor<T>>; 4],
    tols: [Tol; 4],
) {
    for (k, part) in ["forward", "plain gradient", "recorded gradient", "double backward"].iter().enumerate()
    {
        assert_eq!(fused[k].len(), composed[k].len(), "{what}: {part}: counts differ");
        for (i, (a, e)) in fused[k].iter().zip(&composed[k]).enumerate() {
            check_close(&format!("{what}: {part} {i} ({})", T::NAME), a, e, tols[k])
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// The double backward's tolerance: 1e-14 relative in f64, 1e-6 in f32.
fn double_backward_tol<T: Element>() -> Tol {
    Tol::rel(if T::NAME == "f64" { 1e-14 } else { 1e-6 })
}

/// A whole linear layer, `x.linear_act(W, b, act)`, against the product
/// and `bias_act` (which `without_fusion` records as the product, an add
/// and the activation): x, W and b all parameters, the loss `sum(y * u)`.
/// On the CPU the forward and both sweeps' gradients are the same
/// formulas in the same order (bit for bit); the double backward sums in
/// another order (1e-14 relative in f64).
fn linear_composition_matches<T: Element>() {
    for &(rows, inner, out) in &[(7usize, 5usize, 3usize), (256, 64, 12), (1, 1, 1), (300, 128, 200)] {
        for act in ACTS {
            let x: Tensor<T> = Tensor::<f64>::uniform(&[rows, inner], -1.0, 1.0, 71).cast();
            let w: Tensor<T> = Tensor::<f64>::uniform(&[out, inner], -1.0, 1.0, 72).cast();
            let b: Tensor<T> = Tensor::<f64>::uniform(&[out], -0.5, 0.5, 73).cast();
            let u: Tensor<T> = Tensor::<f64>::uniform(&[rows, out], -1.0, 1.0, 74).cast();
            let run = |fused: bool| {
                let tape = Tape::new();
                let (xv, wv, bv) = (tape.param(&x), tape.param(&w), tape.param(&b));
                let f = || xv.linear_act(wv, bv, act);
                let y = if fused { f() } else { without_fusion(f) };
                let loss = (y * tape.constant(&u)).sum();
                let inputs = [xv, wv, bv];
                let plain = grad_values(&[loss], &inputs, None);
                let recorded = grad(&[loss], &inputs, None, true);
                let inner_loss = recorded.iter().map(|g| (*g * *g).sum()).reduce(|a, c| a + c).unwrap();
                let double = grad_values(&[inner_loss], &inputs, None);
                let kinds = tape.op_kinds();
                ([vec![y.value()], plain, recorded.iter().map(|g| g.value()).collect(), double], kinds)
            };
            let ((fused, kinds), (composed, plain_kinds)) = (run(true), run(false));
            let one_node = matches!(act, Act::Identity | Act::Relu);
            assert_eq!(kinds.contains(&OpKind::Linear), one_node, "{act:?}: {kinds:?}");
            assert!(!plain_kinds.contains(&OpKind::Linear), "without fusion: {plain_kinds:?}");
            let what = format!("linear_act {} x [{rows}, {inner}] W [{out}, {inner}]", act.name());
            parts_match(
                &what,
                &fused,
                &composed,
                [Tol::EXACT, Tol::EXACT, Tol::EXACT, double_backward_tol::<T>()],
            );
        }
    }
}

#[test]
fn linear_act_is_its_composition_in_f64() {
    linear_composition_matches::<f64>();
}

#[test]
fn linear_act_is_its_composition_in_f32() {
    linear_composition_matches::<f32>();
}

/// `outer_sum_squares` against `(d.square().sum_axis(1) *
/// b.square().sum_axis(1)).sum() * scale`: the sums are taken in another
/// order (row by row, then the products), so the forward, the gradients and
/// a double backward agree to 1e-14 relative in f64 (1e-5 in f32).
fn outer_sum_squares_matches<T: Element>() {
    for &(h, m, k) in &[(3usize, 4usize, 5usize), (64, 128, 784), (1, 1, 1), (7, 300, 2)] {
        let d: Tensor<T> = Tensor::<f64>::uniform(&[h, m], -1.5, 1.5, 61).cast();
        let b: Tensor<T> = Tensor::<f64>::uniform(&[h, k], -1.5, 1.5, 62).cast();
        let run = |fused: bool| {
            let tape = Tape::new();
            let (dv, bv) = (tape.param(&d), tape.param(&b));
            let f = || dv.outer_sum_squares(bv, T::of(0.375));
            let y = if fused { f() } else { without_fusion(f) };
            let plain = grad_values(&[y], &[dv, bv], None);
            let recorded = grad(&[y], &[dv, bv], None, true);
            let (u, v) = (tape.constant(&d.map(|e| e * T::of(0.5))), tape.constant(&b.map(|e| e + T::one())));
            let double = grad_values(&[(recorded[0] * u).sum() + (recorded[1] * v).sum()], &[dv, bv], None);
            [vec![y.value()], plain, recorded.iter().map(|g| g.value()).collect(), double]
        };
        let (fused, composed) = (run(true), run(false));
        let tol = Tol::rel(if T::NAME == "f64" { 1e-14 } else { 1e-5 });
        parts_match(&format!("outer_sum_squares [{h}, {m}] [{h}, {k}]"), &fused, &composed, [tol; 4]);
    }
}

#[test]
fn outer_sum_squares_is_its_composition_in_f64() {
    outer_sum_squares_matches::<f64>();
}

#[test]
fn outer_sum_squares_is_its_composition_in_f32() {
    outer_sum_squares_matches::<f32>();
}

/// A unary op's recorded rule is one formula node (`sigmoid_grad`,
/// `g s (1 - s)`, ...) where `without_fusion` records the plain ops of its
/// composition. Checked for every op with a formula: the recorded
/// gradient bit for bit (the node's value is the plain sweep's pass), its
/// gradients (the node's rule, for `g` and for `x`) and their gradients
/// (the node's recorded rule) to 1e-14 relative, in f64. `sum_squares`
/// takes its gradient as one number, broadcast.
#[test]
fn formula_nodes_are_their_composition() {
    type Unary = for<'t> fn(Var<'t, f64>) -> Var<'t, f64>;
    let ops: [(&str, Unary, bool); 10] = [
        ("sigmoid", |x| x.sigmoid(), false),
        ("tanh", |x| x.tanh(), false),
        ("relu", |x| x.relu(), false),
        ("softplus", |x| x.softplus(), false),
        ("abs", |x| x.abs(), false),
        ("clamp", |x| x.clamp(-0.5, 0.8), false),
        ("square", |x| x.square(), false),
        ("sqrt", |x| x.sqrt(), true),
        ("powf", |x| x.powf(2.5), true),
        ("sum_squares", |x| x.sum_squares(), false),
    ];
    for (name, op, positive) in ops {
        for &shape in &SHAPES[..3] {
            let x = Tensor::<f64>::uniform(shape, -1.5, 1.5, 51).map(|v| {
                if positive {
                    v.abs() + 0.2
                } else if v.abs() < 0.1 {
                    v + 0.3
                } else {
                    v
                }
            });
            let w = Tensor::<f64>::uniform(shape, -1.0, 1.0, 52);
            let (u, v) = (w.map(|e| e * 0.5 + 0.25), x.map(|e| e * 0.3 - 0.1));
            let run = |fused: bool| {
                let tape = Tape::new();
                let (xv, wv) = (tape.param(&x), tape.param(&w));
                let y = op(xv);
                let loss = if y.shape().is_empty() { y * wv.sum() } else { (y * wv).sum() };
                let sweep = || grad(&[loss], &[xv], None, true)[0];
                let first = if fused { sweep() } else { without_fusion(sweep) };
                let nodes = tape.op_kinds().iter().filter(|&&k| k == OpKind::Formula).count();
                assert_eq!(nodes > 0, fused, "{name}: {nodes} formula nodes (fused: {fused})");
                let inner = (first * tape.constant(&u)).sum();
                let second = grad(&[inner], &[xv, wv], None, true);
                let outer = (second[0] * tape.constant(&v)).sum() + (second[1] * tape.constant(&u)).sum();
                let third = grad_values(&[outer], &[xv, wv], None);
                [vec![first.value()], second.iter().map(|g| g.value()).collect(), third]
            };
            let (fused, composed) = (run(true), run(false));
            for (k, part) in ["recorded gradient", "its gradients", "their gradients"].iter().enumerate() {
                let tol = if k == 0 { Tol::EXACT } else { Tol::rel(1e-14) };
                for (i, (a, e)) in fused[k].iter().zip(&composed[k]).enumerate() {
                    let what = format!("{name}'s formula node on {shape:?}: {part} {i}");
                    check_close(&what, a, e, tol).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
}

// ---- whole models, with and without fusion --------------------------------

/// One epoch of `model` in f64 on `train` (batches of 64 in order, Adam
/// 1e-3, one seed per step for the draws), then its loss on `test` in
/// evaluation mode. Returns the epoch's mean training loss, the test loss,
/// and the nodes the first step recorded.
fn one_epoch(
    mut model: Box<dyn Autoencoder<f64>>,
    train: &Tensor<f64>,
    test: &Tensor<f64>,
) -> (f64, f64, usize) {
    let (mut opt, mut tape) = (Adam::<f64>::new(1e-3), Tape::new());
    let (batch, rows) = (64, train.shape()[0]);
    let (mut sum, mut nodes) = (0.0, 0);
    for (k, start) in (0..rows).step_by(batch).enumerate() {
        tape.clear();
        let grads = {
            let p = model.params().bind(&tape);
            let x = tape.constant(&train.slice_axis(0, start, batch.min(rows - start)));
            let loss = model.loss(&p, x, &mut StepCtx::on(k as u64, Device::Cpu)).total;
            sum += loss.item();
            nodes = if k == 0 { tape.len() } else { nodes };
            grad_values(&[loss], p.vars(), None)
        };
        tape.clear();
        opt.step(&mut model.params_mut().tensors_mut(), &grads);
    }
    model.set_training(false);
    tape.clear();
    let p = model.params().bind(&tape);
    let test_loss = model.loss(&p, tape.constant(test), &mut StepCtx::on(0, Device::Cpu)).total.item();
    (sum / rows.div_ceil(batch) as f64, test_loss, nodes)
}

/// Every model trained for one epoch in f64 with its fused ops and fused
/// gradient sums, and again inside `without_fusion` (every fused op as the
/// plain ops it replaces, every gradient added by its own `add`): the
/// losses agree to 1e-6 relative (the bound; rounding alone
/// separates them), and the fused step records fewer nodes, so the switch
/// did switch.
#[test]
fn every_model_trains_the_same_epoch_with_and_without_fusion() {
    let split = MnistSplit::embedded();
    let (train, test) =
        (split.train.take(320).images.cast::<f64>(), split.test.take(100).images.cast::<f64>());
    let zeros = || ZeroDigit::<f64>::digit().broadcast_to(&[64, 25]);
    let cae = |penalty| ContractiveConfig { hidden: 32, penalty, ..ContractiveConfig::default() };
    type Make = Box<dyn Fn() -> Box<dyn Autoencoder<f64>>>;
    let models: Vec<(&str, Make, bool)> = vec![
        ("zero_digit", Box::new(|| Box::new(ZeroDigit::<f64>::new(&ZeroDigitConfig::default(), 1))), true),
        ("deep", Box::new(|| Box::new(DeepAutoencoder::<f64>::new(&DeepConfig::default(), 2))), false),
        (
            "dropout",
            Box::new(|| Box::new(RegularizedAutoencoder::<f64>::new(&RegularizedConfig::default(), 3))),
            false,
        ),
        (
            "denoising",
            Box::new(|| {
                Box::new(RegularizedAutoencoder::<f64>::denoising(&RegularizedConfig::denoising(), 4))
            }),
            false,
        ),
        (
            "contractive, double backward",
            Box::new(move || {
                Box::new(ContractiveAutoencoder::<f64>::new(&cae(PenaltyMode::DoubleBackward), 5))
            }),
            false,
        ),
        (
            "contractive, closed form",
            Box::new(move || Box::new(ContractiveAutoencoder::<f64>::new(&cae(PenaltyMode::ClosedForm), 5))),
            false,
        ),
        ("vae", Box::new(|| Box::new(Vae::<f64>::new(&VaeConfig::default(), 6))), false),
    ];
    for (name, make, on_zeros) in models {
        let (train, test) = if on_zeros { (zeros(), zeros()) } else { (train.clone(), test.clone()) };
        let fused = one_epoch(make(), &train, &test);
        let plain = without_fusion(|| one_epoch(make(), &train, &test));
        for (what, a, b) in [("mean training loss", fused.0, plain.0), ("test loss", fused.1, plain.1)] {
            assert!(
                a.is_finite() && (a - b).abs() <= 1e-6 * b.abs(),
                "{name}: {what} {a} fused, {b} without fusion"
            );
        }
        assert!(fused.2 < plain.2, "{name}: {} nodes fused, {} without fusion", fused.2, plain.2);
    }
}
