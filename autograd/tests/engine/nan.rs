//! NaN goes through every op and every backward rule as IEEE arithmetic
//! would take it: a NaN input gives a NaN output, and a NaN gradient where
//! the derivative depends on the NaN (PyTorch's `relu(NaN)` is NaN too).
//! ReLU used to turn NaN into 0, so NaN weights vanished from the loss.
//!
//! Each op is run on a tensor whose first element is NaN, through both
//! sweeps (plain and recorded), and the other elements must stay finite.

use gradtape::{grad, grad_values, Tape, Tensor, Var};

type Func = Box<dyn for<'t> Fn(Var<'t, f64>) -> Var<'t, f64>>;

fn f(g: impl for<'t> Fn(Var<'t, f64>) -> Var<'t, f64> + 'static) -> Func {
    Box::new(g)
}

/// `[NaN, rest...]`.
fn with_nan_first(rest: &[f64]) -> Tensor<f64> {
    let mut v = vec![f64::NAN];
    v.extend_from_slice(rest);
    let n = v.len();
    Tensor::from_vec(v, &[n])
}

/// The output of `f(x)` and its gradient for `grad_outputs` all equal to
/// the one number in `seed`, by the plain sweep and by the recorded one.
fn run(func: &Func, x: &Tensor<f64>, seed: &Tensor<f64>) -> (Tensor<f64>, Tensor<f64>, Tensor<f64>) {
    let tape = Tape::new();
    let v = tape.param(x);
    let y = func(v);
    let go = seed.broadcast_to(&y.shape());
    let plain = grad_values(&[y], &[v], Some(std::slice::from_ref(&go))).remove(0);
    let recorded = grad(&[y], &[v], Some(&[tape.constant(&go)]), true)[0].value();
    (y.value(), plain, recorded)
}

/// Elementwise ops: NaN in, NaN out at that element only, and NaN in the
/// gradient at that element only (unless the derivative is a constant), by
/// both sweeps.
#[test]
fn every_elementwise_op_and_rule_lets_nan_through() {
    // Positive rest, so log and sqrt stay finite; one value inside and one
    // outside the clamp bounds, and one on each side of ReLU's kink is
    // covered by the next test.
    let x = with_nan_first(&[0.3, 1.7]);
    // (name, op, whether the derivative depends on x: that of a linear op
    // is a constant, finite even at NaN)
    let ops: Vec<(&str, Func, bool)> = vec![
        ("neg", f(|v| -v), false),
        ("add_scalar", f(|v| v + 0.5), false),
        ("mul_scalar", f(|v| v * 3.0), false),
        ("div_scalar", f(|v| v / 3.0), false),
        ("scalar_sub", f(|v| 1.0 - v), false),
        ("scalar_div", f(|v| 1.0 / v), true),
        ("exp", f(|v| v.exp()), true),
        ("log", f(|v| v.log()), true),
        ("powf", f(|v| v.powf(2.5)), true),
        ("sqrt", f(|v| v.sqrt()), true),
        ("square", f(|v| v.square()), true),
        ("abs", f(|v| v.abs()), true),
        ("sigmoid", f(|v| v.sigmoid()), true),
        ("tanh", f(|v| v.tanh()), true),
        ("relu", f(|v| v.relu()), true),
        ("softplus", f(|v| v.softplus()), true),
        ("clamp", f(|v| v.clamp(-1.0, 1.0)), true),
        ("mul_self", f(|v| v * v), true),
        ("div_self", f(|v| v / (v + 5.0)), true),
    ];
    let ones = Tensor::scalar(1.0);
    for (name, op, depends) in &ops {
        let (y, plain, recorded) = run(op, &x, &ones);
        assert!(y.data()[0].is_nan(), "{name}: forward at NaN gave {}", y.data()[0]);
        assert!(y.data()[1..].iter().all(|v| v.is_finite()), "{name}: forward {:?}", y.data());
        for (sweep, g) in [("plain", &plain), ("recorded", &recorded)] {
            assert_eq!(g.data()[0].is_nan(), *depends, "{name}: {sweep} gradient at NaN is {}", g.data()[0]);
            assert!(g.data()[1..].iter().all(|v| v.is_finite()), "{name}: {sweep} gradient {:?}", g.data());
        }
    }
}

/// Where a rule's mask is 0 (ReLU left of the kink, clamp outside its
/// bounds, abs at 0) a NaN arriving from above still comes out as NaN:
/// `NaN * 0` is NaN, and the rules multiply by their masks rather than
/// choosing 0.
#[test]
fn a_nan_incoming_gradient_is_not_masked_to_zero() {
    let x = Tensor::from_vec(vec![-2.0, 0.0, 0.4], &[3]);
    let seed = Tensor::scalar(f64::NAN);
    let ops: Vec<(&str, Func)> = vec![
        ("relu", f(|v| v.relu())),
        ("clamp", f(|v| v.clamp(-1.0, 0.2))),
        ("abs", f(|v| v.abs())),
        ("max", f(|v| v.max())),
    ];
    for (name, op) in &ops {
        let (_, plain, recorded) = run(op, &x, &seed);
        for (sweep, g) in [("plain", &plain), ("recorded", &recorded)] {
            assert!(g.data().iter().all(|v| v.is_nan()), "{name}: {sweep} gradient {:?}", g.data());
        }
    }
}

/// Reductions, binary ops with broadcasting, and matmul: NaN reaches the
/// output and the gradients that depend on it.
#[test]
fn reductions_broadcasting_and_matmul_let_nan_through() {
    let x = Tensor::from_vec(vec![f64::NAN, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]);
    // (name, op, whether d out / d x[0] depends on x[0] itself)
    let ops: Vec<(&str, Func, bool)> = vec![
        ("max", f(|v| v.max()), true),
        ("max_axis_1", f(|v| v.max_axis(1, false).sum()), true),
        ("max_axis_0", f(|v| v.max_axis(0, true).sum()), true),
        ("sum_squares", f(|v| v.sum_squares()), true),
        ("mean_of_square", f(|v| v.square().mean()), true),
        // The derivative of a sum is 1 whatever the input: the output is
        // NaN, the gradient is not.
        ("sum", f(|v| v.sum()), false),
        ("sum_axis", f(|v| v.sum_axis(0, false).sum()), false),
    ];
    for (name, op, depends) in &ops {
        let (y, plain, recorded) = run(op, &x, &Tensor::scalar(1.0));
        assert!(y.data().iter().any(|v| v.is_nan()), "{name}: forward {:?}", y.data());
        for (sweep, g) in [("plain", &plain), ("recorded", &recorded)] {
            assert_eq!(g.data()[0].is_nan(), *depends, "{name}: {sweep} gradient {:?}", g.data());
            assert!(g.data()[1..].iter().all(|v| v.is_finite()), "{name}: {sweep} gradient {:?}", g.data());
        }
    }

    // Binary, broadcasting a [3] row against [2, 3], and matmul: the NaN
    // in `a` reaches the gradient of `b` through `d(a * b)/db = a`.
    let tape = Tape::new();
    let a = tape.param(&x);
    let b = tape.param(&Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]));
    let w = tape.param(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]));
    let loss = (a * b).matmul(w).relu().sum() + ((a - b) / (b + 3.0)).sum();
    assert!(loss.value().item().is_nan());
    let plain = grad_values(&[loss], &[b, w], None);
    let recorded: Vec<Tensor<f64>> = grad(&[loss], &[b, w], None, true).iter().map(|g| g.value()).collect();
    for (sweep, g) in [("plain", &plain), ("recorded", &recorded)] {
        assert!(g[0].data()[0].is_nan(), "{sweep}: d loss / d b[0] is {:?}", g[0].data());
        assert!(
            g[1].data()[0].is_nan() && g[1].data()[1].is_nan(),
            "{sweep}: d loss / d w[0, :] {:?}",
            g[1].data()
        );
    }
}
