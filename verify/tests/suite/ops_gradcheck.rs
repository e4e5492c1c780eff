//! gradcheck and gradgradcheck on every op of the engine, on random shapes
//! (proptest), including broadcasting, at points away from kinks.
//!
//! Every op is checked three times: its first derivative against central
//! differences (`gradcheck`), its backward rule's own derivative, which
//! exists only because the rule is recorded on the tape (`gradgradcheck`),
//! and the recorded rule's value against the plain rule's
//! (`recorded_matches_plain`): gradgradcheck compares the recorded rule only
//! with finite differences of itself, so a recorded rule off by a constant
//! factor would pass it.

use gradtape::{grad, grad_values, Act, LossTerm, OpKind, Tape, Tensor, Var};
use gradtape_kernels::compare::Tol;
use gradtape_verify::{gradcheck, gradgradcheck, recorded_matches_plain, GradcheckError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::Mutex;

type Func = Box<dyn for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>>;

fn op(f: impl for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>> + 'static) -> Func {
    Box::new(f)
}

/// Runs all three checks and turns a failure into a proptest failure that
/// names the op.
fn check(name: &str, f: &Func, inputs: &[Tensor<f64>]) -> Result<(), TestCaseError> {
    note_coverage(f, inputs);
    let shapes: Vec<_> = inputs.iter().map(|x| x.shape().to_vec()).collect();
    gradcheck(|v| f(v), inputs)
        .map_err(|e| TestCaseError::fail(format!("{name} on {shapes:?}: gradcheck: {e}")))?;
    gradgradcheck(|v| f(v), inputs)
        .map_err(|e| TestCaseError::fail(format!("{name} on {shapes:?}: gradgradcheck: {e}")))?;
    recorded_matches_plain(|v| f(v), inputs, agreement(name))
        .map_err(|e| TestCaseError::fail(format!("{name} on {shapes:?}: recorded against plain: {e}")))?;
    Ok(())
}

/// Every kind of op that some case of this file has recorded (see
/// `every_op_has_a_gradcheck_case` at the end).
static COVERED: Mutex<Vec<OpKind>> = Mutex::new(Vec::new());

/// Records `f` once on a fresh tape and notes which kinds of op it used.
fn note_coverage(f: &Func, inputs: &[Tensor<f64>]) {
    let tape = Tape::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.param(x)).collect();
    f(&vars);
    let mut covered = COVERED.lock().unwrap_or_else(|e| e.into_inner());
    for kind in tape.op_kinds() {
        if !covered.contains(&kind) {
            covered.push(kind);
        }
    }
}

/// How closely the recorded sweep must reproduce the plain one for op
/// `name`. The elementwise rules evaluate one formula both ways (through
/// `Algebra::fused`, in the same order of operations), so their results
/// must be equal. Rules whose plain form sums differently (a broadcast
/// operand's gradient through `mul_sum_to`, reductions, matmul) may differ
/// in the last bits: 1e-14 relative to the gradient's largest entry.
fn agreement(name: &str) -> Tol {
    const SAME_FORMULA: &[&str] = &[
        "neg",
        "add_scalar",
        "sub_scalar",
        "mul_scalar",
        "div_scalar",
        "scalar_sub",
        "scalar_div",
        "scalar_add_mul",
        "exp",
        "log",
        "pow_2.5",
        "pow_-1.5",
        "sqrt",
        "square",
        "abs",
        "sigmoid",
        "tanh",
        "relu",
        "softplus",
        "clamp",
        "bias_act",
    ];
    if SAME_FORMULA.contains(&name) {
        Tol::EXACT
    } else {
        Tol::rel(1e-14)
    }
}

/// Values in (-1.7, -0.2] U [0.2, 1.7): away from the kinks at 0.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform(shape, -1.5, 1.5, seed).map(|x| if x >= 0.0 { x + 0.2 } else { x - 0.2 })
}

/// Values in [0.5, 2): safe for log, sqrt and negative powers.
fn positive(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform(shape, 0.5, 2.0, seed)
}

/// Distinct values at least 0.25 apart, in random order: max has a unique
/// winner that a nudge of 1e-6 cannot change.
fn distinct(shape: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.25 - 1.0).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    Tensor::from_vec(v, shape)
}

/// Values kept at least 0.1 away from the clamp bounds +-0.5.
fn away_from_bounds(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform(shape, -1.0, 1.0, seed).map(
        |x: f64| {
            if (x.abs() - 0.5).abs() < 0.1 {
                x * 0.6
            } else {
                x
            }
        },
    )
}

fn shape_strategy(min_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=3, min_rank..=3)
}

/// A shape and another that broadcasts against it: some axes set to 1 and
/// some leading axes dropped.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape_strategy(0).prop_flat_map(|s| {
        let rank = s.len();
        (Just(s), prop::collection::vec(any::<bool>(), rank), 0..=rank, any::<bool>()).prop_map(
            |(s, ones, drop, swap)| {
                let other: Vec<usize> =
                    s.iter().zip(&ones).map(|(&d, &one)| if one { 1 } else { d }).skip(drop).collect();
                if swap {
                    (other, s)
                } else {
                    (s, other)
                }
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn elementwise_unary_ops_pass_all_three_checks(shape in shape_strategy(0), seed in any::<u64>()) {
        let any = Tensor::uniform(&shape, -1.5, 1.5, seed);
        let nz = away_from_zero(&shape, seed);
        let pos = positive(&shape, seed);
        let cases: Vec<(&str, Func, &Tensor<f64>)> = vec![
            ("neg", op(|v| vec![-v[0]]), &any),
            ("add_scalar", op(|v| vec![v[0] + 0.7]), &any),
            ("sub_scalar", op(|v| vec![v[0] - 0.7]), &any),
            ("mul_scalar", op(|v| vec![v[0] * -1.3]), &any),
            ("div_scalar", op(|v| vec![v[0] / 2.5]), &any),
            ("scalar_sub", op(|v| vec![3.0 - v[0]]), &any),
            ("scalar_div", op(|v| vec![2.0 / v[0]]), &nz),
            ("scalar_add_mul", op(|v| vec![2.0 * v[0] + 1.0]), &any),
            ("exp", op(|v| vec![v[0].exp()]), &any),
            ("log", op(|v| vec![v[0].log()]), &pos),
            ("pow_2.5", op(|v| vec![v[0].powf(2.5)]), &pos),
            ("pow_-1.5", op(|v| vec![v[0].powf(-1.5)]), &pos),
            ("sqrt", op(|v| vec![v[0].sqrt()]), &pos),
            ("square", op(|v| vec![v[0].square()]), &any),
            ("abs", op(|v| vec![v[0].abs()]), &nz),
            ("sigmoid", op(|v| vec![v[0].sigmoid()]), &any),
            ("tanh", op(|v| vec![v[0].tanh()]), &any),
            ("relu", op(|v| vec![v[0].relu()]), &nz),
            ("softplus", op(|v| vec![v[0].softplus()]), &any),
        ];
        for (name, f, x) in &cases {
            check(name, f, &[(*x).clone()])?;
        }
        let xc = away_from_bounds(&shape, seed);
        check("clamp", &op(|v| vec![v[0].clamp(-0.5, 0.5)]), &[xc])?;
    }

    #[test]
    fn binary_ops_pass_all_three_checks_with_broadcasting((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let a = Tensor::uniform(&sa, -1.5, 1.5, seed);
        let b = Tensor::uniform(&sb, -1.5, 1.5, seed.wrapping_add(1));
        let bnz = away_from_zero(&sb, seed.wrapping_add(2));
        check("add", &op(|v| vec![v[0] + v[1]]), &[a.clone(), b.clone()])?;
        check("sub", &op(|v| vec![v[0] - v[1]]), &[a.clone(), b.clone()])?;
        check("mul", &op(|v| vec![v[0] * v[1]]), &[a.clone(), b.clone()])?;
        check("div", &op(|v| vec![v[0] / v[1]]), &[a.clone(), bnz])?;
        // Fan-out: the same variable used twice accumulates its gradients.
        check("fan_out", &op(|v| vec![v[0] * v[0] + v[0] * v[1]]), &[a.clone(), b])?;
    }

    #[test]
    fn reductions_pass_all_three_checks(shape in shape_strategy(1), seed in any::<u64>(), keepdim in any::<bool>()) {
        let x = Tensor::uniform(&shape, -1.5, 1.5, seed);
        let d = distinct(&shape, seed);
        check("sum", &op(|v| vec![v[0].sum()]), std::slice::from_ref(&x))?;
        check("sum_squares", &op(|v| vec![v[0].sum_squares()]), std::slice::from_ref(&x))?;
        check("mean", &op(|v| vec![v[0].mean()]), std::slice::from_ref(&x))?;
        check("max", &op(|v| vec![v[0].max()]), std::slice::from_ref(&d))?;
        for axis in 0..shape.len() {
            check("sum_axis", &op(move |v| vec![v[0].sum_axis(axis, keepdim)]), std::slice::from_ref(&x))?;
            check("mean_axis", &op(move |v| vec![v[0].mean_axis(axis, keepdim)]), std::slice::from_ref(&x))?;
            check("max_axis", &op(move |v| vec![v[0].max_axis(axis, keepdim)]), std::slice::from_ref(&d))?;
        }
    }

    #[test]
    fn layout_ops_pass_all_three_checks((full, small) in broadcast_pair(), seed in any::<u64>()) {
        // broadcast_pair may swap; make `full` the larger shape.
        let (full, small) = if full.iter().product::<usize>() >= small.iter().product::<usize>()
            && gradtape::Shape::from_slice(&full) == gradtape_kernels_broadcast(&full, &small) {
            (full, small)
        } else {
            (small, full)
        };
        let xs = Tensor::uniform(&small, -1.5, 1.5, seed);
        let xf = Tensor::uniform(&full, -1.5, 1.5, seed.wrapping_add(1));
        let f2 = full.clone();
        check("broadcast_to", &op(move |v| vec![v[0].broadcast_to(&f2)]), &[xs])?;
        let s2 = small.clone();
        check("sum_to", &op(move |v| vec![v[0].sum_to(&s2)]), std::slice::from_ref(&xf))?;
        let n = xf.len();
        check("reshape_flat", &op(move |v| vec![v[0].reshape(&[n])]), std::slice::from_ref(&xf))?;
        let rev: Vec<usize> = full.iter().rev().copied().collect();
        check("reshape_reversed", &op(move |v| vec![v[0].reshape(&rev)]), std::slice::from_ref(&xf))?;
        // Transpose needs two axes: a shorter `full` is read as one row.
        let xt = if full.len() >= 2 { xf.clone() } else { xf.reshape(&[1, xf.len()]) };
        check("transpose", &op(|v| vec![v[0].transpose()]), &[xt])?;
        for (axis, &len) in full.iter().enumerate() {
            let index = seed as usize % len;
            check("select", &op(move |v| vec![v[0].select(axis, index)]), std::slice::from_ref(&xf))?;
            let start = (seed as usize / 7) % len;
            let take = len - start;
            check("slice_axis", &op(move |v| vec![v[0].slice_axis(axis, start, take)]), std::slice::from_ref(&xf))?;
            check("pad_axis", &op(move |v| vec![v[0].pad_axis(axis, 1, len + 2)]), std::slice::from_ref(&xf))?;
            let picked = xf.select(axis, index);
            check("unselect", &op(move |v| vec![v[0].unselect(axis, index, len)]), &[picked])?;
        }
    }

    #[test]
    fn matmul_passes_all_three_checks_in_every_transpose_combination(
        m in 1usize..=3, k in 1usize..=3, n in 1usize..=3, seed in any::<u64>(), ta in any::<bool>(), tb in any::<bool>()
    ) {
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let a = Tensor::uniform(&a_shape, -1.0, 1.0, seed);
        let b = Tensor::uniform(&b_shape, -1.0, 1.0, seed.wrapping_add(1));
        check("matmul_t", &op(move |v| vec![v[0].matmul_t(v[1], ta, tb)]), &[a, b])?;
    }

    #[test]
    fn batched_matmul_with_broadcast_batch_axes_passes_all_three_checks(
        batch in 1usize..=2, m in 1usize..=2, k in 1usize..=3, n in 1usize..=2, seed in any::<u64>(), shared in any::<bool>()
    ) {
        let a = Tensor::uniform(&[batch, m, k], -1.0, 1.0, seed);
        let b_shape: Vec<usize> = if shared { vec![k, n] } else { vec![1, k, n] };
        let b = Tensor::uniform(&b_shape, -1.0, 1.0, seed.wrapping_add(1));
        check("batched_matmul", &op(|v| vec![v[0].matmul(v[1])]), &[a.clone(), b])?;
        let c = Tensor::uniform(&[batch, k, n], -1.0, 1.0, seed.wrapping_add(2));
        check("batched_matmul_both", &op(|v| vec![v[0].matmul(v[1])]), &[a, c])?;
    }

    #[test]
    fn fused_bias_act_passes_all_three_checks(
        rows in 1usize..=4, cols in 1usize..=4, rank3 in any::<bool>(), seed in any::<u64>(), act in 0usize..4
    ) {
        let act = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh][act];
        let shape: Vec<usize> = if rank3 { vec![2, rows, cols] } else { vec![rows, cols] };
        // z away from 0 and b small: z + b stays off ReLU's kink.
        let z = away_from_zero(&shape, seed);
        let b = Tensor::uniform(&[cols], -0.05, 0.05, seed.wrapping_add(1));
        check("bias_act", &op(move |v| vec![v[0].bias_act(v[1], act)]), &[z, b])?;
    }

    /// A whole linear layer, `act(x W^T + b)`: one node for identity and
    /// ReLU (`Op::Linear`), the product and `bias_act` for the others; x,
    /// W and b all inputs.
    #[test]
    fn fused_linear_act_passes_all_three_checks(
        rows in 1usize..=4, inner in 1usize..=4, out in 1usize..=4, seed in any::<u64>(), act in 0usize..4
    ) {
        let act = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh][act];
        let x = Tensor::<f64>::uniform(&[rows, inner], -1.0, 1.0, seed);
        let w = Tensor::uniform(&[out, inner], -1.0, 1.0, seed.wrapping_add(1));
        let b = Tensor::uniform(&[out], -1.0, 1.0, seed.wrapping_add(2));
        // Off ReLU's kink, where the finite differences would straddle it.
        let z = x.matmul_t(&w, false, true).add(&b);
        prop_assume!(z.data().iter().all(|v| v.abs() > 1e-3));
        check("linear_act", &op(move |v| vec![v[0].linear_act(v[1], v[2], act)]), &[x, w, b])?;
    }

    #[test]
    fn fused_reparameterize_passes_all_three_checks(n in 1usize..=5, rank2 in any::<bool>(), seed in any::<u64>()) {
        let shape: Vec<usize> = if rank2 { vec![2, n] } else { vec![n] };
        let (mu, logvar) = (Tensor::uniform(&shape, -1.5, 1.5, seed), Tensor::uniform(&shape, -1.0, 1.0, seed.wrapping_add(1)));
        // eps is a constant of the op, not an input.
        let eps = Tensor::uniform(&shape, -2.0, 2.0, seed.wrapping_add(2));
        check("reparameterize", &op(move |v| vec![v[0].reparameterize(v[1], &eps)]), &[mu, logvar])?;
    }

    #[test]
    fn fused_add_scaled_passes_all_three_checks(n in 1usize..=5, rank in 0usize..=2, s in -2.0f64..2.0, seed in any::<u64>()) {
        let shape: Vec<usize> = [2, n][..rank].to_vec();
        let (a, b) = (Tensor::uniform(&shape, -1.5, 1.5, seed), Tensor::uniform(&shape, -1.5, 1.5, seed.wrapping_add(1)));
        check("add_scaled", &op(move |v| vec![v[0].add_scaled(v[1], s)]), &[a, b])?;
    }

    #[test]
    fn fused_outer_sum_squares_passes_all_three_checks(h in 1usize..=4, m in 1usize..=4, k in 1usize..=4, seed in any::<u64>()) {
        let (d, b) = (Tensor::uniform(&[h, m], -1.5, 1.5, seed), Tensor::uniform(&[h, k], -1.5, 1.5, seed.wrapping_add(1)));
        check("outer_sum_squares", &op(|v| vec![v[0].outer_sum_squares(v[1], 0.7)]), &[d, b])?;
    }

    /// A unary op's rule as a create_graph sweep records it: one formula
    /// node `f(g, x)` (`Op::Formula`), here with `g` an input (the op's
    /// rule for `g`) and `x` the op's input or output (its rule for `x`).
    #[test]
    fn formula_nodes_pass_all_three_checks(n in 1usize..=5, rank2 in any::<bool>(), seed in any::<u64>(), which in 0usize..10) {
        type Unary = for<'t> fn(Var<'t, f64>) -> Var<'t, f64>;
        let ops: [(&str, Unary, bool); 10] = [
            ("sigmoid_grad", |x| x.sigmoid(), false),
            ("tanh_grad", |x| x.tanh(), false),
            ("relu_grad", |x| x.relu(), false),
            ("softplus_grad", |x| x.softplus(), false),
            ("abs_grad", |x| x.abs(), false),
            // The kinks at -2 and 0.1 are outside away_from_zero's values.
            ("clamp_grad", |x| x.clamp(-2.0, 0.1), false),
            ("square_grad", |x| x.square(), false),
            ("sqrt_grad", |x| x.sqrt(), true),
            ("pow_grad", |x| x.powf(2.5), true),
            ("sum_squares_grad", |x| x.sum_squares(), false),
        ];
        let (name, f, positive) = ops[which];
        let shape: Vec<usize> = if rank2 { vec![2, n] } else { vec![n] };
        let x = if positive { self::positive(&shape, seed) } else { away_from_zero(&shape, seed) };
        let g = Tensor::uniform(&shape, -1.0, 1.0, seed.wrapping_add(1));
        check(name, &op(move |v| {
            let y = f(v[1]);
            let loss = if y.shape().is_empty() { y * v[0].sum() } else { (y * v[0]).sum() };
            vec![grad(&[loss], &[v[1]], None, true)[0]]
        }), &[g, x])?;
    }

    #[test]
    fn fused_loss_sum_passes_all_three_checks(
        n in 1usize..=5, rank2 in any::<bool>(), seed in any::<u64>(), term in 0usize..3
    ) {
        let term = LossTerm::ALL[term];
        let shape: Vec<usize> = if rank2 { vec![2, n] } else { vec![n] };
        let (a, b) = loss_inputs(term, &shape, seed);
        check("loss_sum", &op(move |v| vec![v[0].loss_sum(v[1], term, 0.7)]), &[a, b])?;
    }

    #[test]
    fn outer_product_and_norms_pass_all_three_checks(m in 1usize..=4, n in 1usize..=4, seed in any::<u64>()) {
        let a = Tensor::uniform(&[m], -1.5, 1.5, seed);
        let b = Tensor::uniform(&[n], -1.5, 1.5, seed.wrapping_add(1));
        check("outer", &op(|v| vec![v[0].outer(v[1])]), &[a, b])?;
        let w = away_from_zero(&[m, n], seed);
        check("norm", &op(|v| vec![v[0].norm()]), std::slice::from_ref(&w))?;
        check("frobenius_norm", &op(|v| vec![v[0].frobenius_norm()]), std::slice::from_ref(&w))?;
        check("row_norms", &op(|v| vec![v[0].row_norms()]), std::slice::from_ref(&w))?;
        check("column", &op(|v| vec![v[0].column(0)]), std::slice::from_ref(&w))?;
        check("row", &op(move |v| vec![v[0].row(m - 1)]), &[w])?;
    }
}

/// Inputs for a fused loss away from its clamps: any values for squared
/// error, probabilities in [0.1, 0.9) and targets in [0, 1) for
/// cross-entropy, log-variances in [-1, 1) for the KL term.
fn loss_inputs(term: LossTerm, shape: &[usize], seed: u64) -> (Tensor<f64>, Tensor<f64>) {
    let b = match term {
        LossTerm::SquaredError => Tensor::uniform(shape, -1.5, 1.5, seed.wrapping_add(1)),
        LossTerm::BinaryCrossEntropy => Tensor::uniform(shape, 0.0, 1.0, seed.wrapping_add(1)),
        LossTerm::GaussianKl => Tensor::uniform(shape, -1.0, 1.0, seed.wrapping_add(1)),
    };
    let a = match term {
        LossTerm::BinaryCrossEntropy => Tensor::uniform(shape, 0.1, 0.9, seed),
        _ => Tensor::uniform(shape, -1.5, 1.5, seed),
    };
    (a, b)
}

/// The broadcast of two shapes (a helper for the strategy above).
fn gradtape_kernels_broadcast(a: &[usize], b: &[usize]) -> gradtape::Shape {
    gradtape_kernels::broadcast_shapes(a, b).expect("strategy makes broadcastable shapes")
}

#[test]
fn detach_stops_gradients_and_gradcheck_notices() {
    // d/dx [x * detach(x)] is detach(x) = x analytically, but the function's
    // true derivative is 2x: gradcheck must report the mismatch. This is
    // also the proof that gradcheck can fail.
    let x = Tensor::from_vec(vec![0.5, -1.25, 2.0], &[3]);
    let err = gradcheck(|v| vec![v[0] * v[0].detach()], std::slice::from_ref(&x)).unwrap_err();
    match err {
        GradcheckError::Mismatch { analytic, numeric, input_element, output_element, .. } => {
            assert_eq!(input_element, output_element);
            let xi = x.data()[input_element];
            assert!((analytic - xi).abs() < 1e-12);
            assert!((numeric - 2.0 * xi).abs() < 1e-6);
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    let tape = Tape::new();
    let v = tape.param(&x);
    let g = grad_values(&[(v.detach() * 3.0).sum()], &[v], None);
    assert_eq!(g[0].to_vec(), vec![0.0; 3]);
}

/// Third derivatives of sigmoid, tanh and exp by three nested `grad` calls,
/// against their closed forms.
#[test]
fn third_derivatives_match_closed_forms() {
    let x0 = Tensor::<f64>::uniform(&[7], -2.0, 2.0, 42);
    type Closed = fn(f64) -> f64;
    let cases: Vec<(&str, Func, Closed)> = vec![
        (
            "sigmoid",
            op(|v| vec![v[0].sigmoid()]),
            // s''' = s(1-s)(1 - 6s + 6s^2)
            |x| {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s) * (1.0 - 6.0 * s + 6.0 * s * s)
            },
        ),
        (
            "tanh",
            op(|v| vec![v[0].tanh()]),
            // t''' = (1 - t^2)(6t^2 - 2)
            |x| {
                let t = x.tanh();
                (1.0 - t * t) * (6.0 * t * t - 2.0)
            },
        ),
        ("exp", op(|v| vec![v[0].exp()]), |x| x.exp()),
    ];
    for (name, f, closed) in cases {
        let tape = Tape::new();
        let x = tape.param(&x0);
        let y = f(&[x])[0].sum();
        let d1 = grad(&[y], &[x], None, true)[0];
        let d2 = grad(&[d1.sum()], &[x], None, true)[0];
        let d3 = grad(&[d2.sum()], &[x], None, false)[0].value();
        for (i, &xi) in x0.data().iter().enumerate() {
            let want = closed(xi);
            assert!((d3.data()[i] - want).abs() < 1e-12, "{name}''' at {xi}: {} vs {want}", d3.data()[i]);
        }
    }
}

/// Every op the engine has (every variant of `Op`, as `OpKind` lists them)
/// is recorded by some case above, so it passes gradcheck, gradgradcheck
/// and the recorded-against-plain comparison. A new op fails here until it
/// has a case. Runs each family of cases once more, then compares.
#[test]
fn every_op_has_a_gradcheck_case() {
    elementwise_unary_ops_pass_all_three_checks();
    binary_ops_pass_all_three_checks_with_broadcasting();
    reductions_pass_all_three_checks();
    layout_ops_pass_all_three_checks();
    matmul_passes_all_three_checks_in_every_transpose_combination();
    batched_matmul_with_broadcast_batch_axes_passes_all_three_checks();
    fused_bias_act_passes_all_three_checks();
    fused_linear_act_passes_all_three_checks();
    fused_loss_sum_passes_all_three_checks();
    fused_reparameterize_passes_all_three_checks();
    fused_add_scaled_passes_all_three_checks();
    formula_nodes_pass_all_three_checks();
    fused_outer_sum_squares_passes_all_three_checks();
    outer_product_and_norms_pass_all_three_checks();
    let covered = COVERED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let missing: Vec<OpKind> = OpKind::all().filter(|kind| !covered.contains(kind)).collect();
    assert!(
        missing.is_empty(),
        "ops with no gradcheck/gradgradcheck case in verify/tests/suite/ops_gradcheck.rs: {missing:?}"
    );
}
