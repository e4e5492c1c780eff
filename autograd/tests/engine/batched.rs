//! Batched cotangents (`grad_batched`) agree with one sweep per cotangent,
//! for every op, with and without `create_graph`.

use gradtape::{grad, grad_batched, grad_values, grad_values_batched, Tape, Tensor, Var};
use gradtape_kernels::compare::{assert_close, pairs, Tol};

type Func = Box<dyn for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>>;

fn f(g: impl for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64> + 'static) -> Func {
    Box::new(g)
}

/// Every op family, applied to inputs of shapes [3, 4] and [4] (a bias).
fn cases() -> Vec<(&'static str, Func)> {
    vec![
        ("elementwise", f(|v| (v[0] * v[1]).sigmoid().exp() + v[0].tanh() * 2.0)),
        ("div_pow_sqrt", f(|v| (v[0].square() + 1.0).sqrt() / (v[1].square() + 0.5).powf(1.5))),
        ("matmul_bias", f(|v| v[0].matmul_t(v[0], false, true).softplus().matmul(v[0]) + v[1])),
        ("matmul_transposed", f(|v| v[0].matmul_t(v[0], true, false).relu())),
        ("sum_mean_axis", f(|v| v[0].sum_axis(1, true) * v[0].mean_axis(0, false))),
        ("max", f(|v| v[0].max_axis(0, false) + v[0].max() + v[0].sum() + v[0].mean())),
        ("reshape_transpose", f(|v| v[0].reshape(&[4, 3]).transpose() * v[1])),
        ("broadcast_sum_to", f(|v| v[1].broadcast_to(&[2, 3, 4]).sum_to(&[3, 1]) * v[0])),
        (
            "select_unselect",
            f(|v| v[0].column(2).unselect(1, 0, 2) * v[0].slice_axis(1, 0, 2) + v[0].row(1).sum()),
        ),
        ("slice_pad", f(|v| v[0].slice_axis(1, 1, 2).pad_axis(0, 1, 5).abs())),
        ("norms", f(|v| v[0].row_norms() * v[1].norm())),
        ("sum_squares", f(|v| v[0] * v[1].sum_squares() + (v[0] * v[1]).sum_squares())),
    ]
}

#[test]
fn a_batched_sweep_equals_one_sweep_per_cotangent_for_every_op() {
    let x = Tensor::<f64>::uniform(&[3, 4], -1.5, 1.5, 1).map(|v| if v.abs() < 0.1 { v + 0.3 } else { v });
    let b = Tensor::<f64>::uniform(&[4], -1.0, 1.0, 2);
    for (name, func) in cases() {
        let tape = Tape::new();
        let (xv, bv) = (tape.param(&x), tape.param(&b));
        let out = func(&[xv, bv]);
        let batch = 5;
        let mut shape = vec![batch];
        shape.extend_from_slice(&out.shape());
        let cot = Tensor::<f64>::normal(&shape, 0.0, 1.0, 3);
        let batched = grad_values_batched(&[out], &[xv, bv], std::slice::from_ref(&cot));
        for k in 0..batch {
            let one = grad_values(&[out], &[xv, bv], Some(&[cot.select(0, k)]));
            for (i, (all, g)) in pairs(name, &batched, &one).enumerate() {
                let what = format!("{name}: input {i}, cotangent {k}");
                assert_close(&what, &all.select(0, k), g, Tol::rel(1e-12));
            }
        }
    }
}

#[test]
fn batched_gradients_can_be_differentiated_again() {
    // The contractive penalty: all Jacobian rows of h = sigmoid(x W^T + b)
    // from one batched sweep, squared and summed, then differentiated with
    // respect to W and b; against the per-row loop.
    let (n, d, hdim) = (4, 6, 3);
    let x = Tensor::<f64>::uniform(&[n, d], 0.0, 1.0, 5);
    let w = Tensor::<f64>::normal(&[hdim, d], 0.0, 0.5, 6);
    let bias = Tensor::<f64>::normal(&[hdim], 0.0, 0.5, 7);
    let penalty_and_grads = |batched: bool| {
        let tape = Tape::new();
        let (wv, bv, xv) = (tape.param(&w), tape.param(&bias), tape.constant(&x));
        let h = (xv.matmul_t(wv, false, true) + bv).sigmoid();
        let pen = if batched {
            // Cotangent j is one-hot on hidden unit j for every sample.
            let mut eye = Tensor::zeros(&[hdim, n, hdim]);
            for j in 0..hdim {
                for s in 0..n {
                    eye.data_mut()[(j * n + s) * hdim + j] = 1.0;
                }
            }
            let rows = grad_batched(&[h], &[xv], &[tape.constant(&eye)], true)[0];
            assert_eq!(rows.shape().as_slice(), &[hdim, n, d]);
            rows.square().sum()
        } else {
            let mut total = tape.scalar(0.0);
            for j in 0..hdim {
                total = total + grad(&[h.column(j).sum()], &[xv], None, true)[0].square().sum();
            }
            total
        };
        let g = grad_values(&[pen], &[wv, bv], None);
        (pen.item(), g)
    };
    let (p1, g1) = penalty_and_grads(true);
    let (p2, g2) = penalty_and_grads(false);
    assert!((p1 - p2).abs() <= 1e-12 * p2.abs(), "{p1} vs {p2}");
    for (i, (a, b)) in pairs("penalty gradients", &g1, &g2).enumerate() {
        assert_close(&format!("penalty gradient {i}"), a, b, Tol::rel(1e-12));
    }
}

#[test]
fn an_unused_input_gets_batched_zeros() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::ones(&[2]));
    let unused = tape.param(&Tensor::ones(&[3]));
    let g = grad_values_batched(&[x * 2.0], &[x, unused], &[Tensor::ones(&[4, 2])]);
    assert_eq!(g[0].shape(), &[4, 2]);
    assert_eq!(g[1].shape(), &[4, 3]);
    assert!(g[1].data().iter().all(|&v| v == 0.0));
}

#[test]
#[should_panic(expected = "grad_batched: grad_outputs[0] has shape [2]; it must be (batch, [2])")]
fn batched_cotangents_need_a_leading_axis() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::ones(&[2]));
    let _ = grad_values_batched(&[x * 2.0], &[x], &[Tensor::ones(&[2])]);
}
