//! `jacobian_rows` (the identity seed kept in structured form) against the
//! dense batched sweep it replaces: `grad_batched` with the one-hot seeds.

use gradtape::{
    grad_batched, grad_values, grad_values_batched, jacobian_rows, jacobian_rows_factored, JacobianRows,
    Tape, Tensor, Var,
};
use gradtape_kernels::compare::{assert_close, pairs, Tol};

type Func = Box<dyn for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>>;

fn f(g: impl for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64> + 'static) -> Func {
    Box::new(g)
}

/// The dense seed: `E[l, ..., k] = 1` where `l == k`, for an output of
/// shape `out`.
fn one_hot_seed(out: &[usize]) -> Tensor<f64> {
    let h = out[out.len() - 1];
    let rest: usize = out[..out.len() - 1].iter().product();
    let mut shape = vec![h];
    shape.extend_from_slice(out);
    let mut e = Tensor::zeros(&shape);
    for l in 0..h {
        for r in 0..rest {
            e.data_mut()[(l * rest + r) * h + l] = 1.0;
        }
    }
    e
}

struct Inputs {
    x: Tensor<f64>,
    w1: Tensor<f64>,
    b1: Tensor<f64>,
    w2: Tensor<f64>,
    x3: Tensor<f64>,
}

fn inputs() -> Inputs {
    Inputs {
        x: Tensor::uniform(&[4, 6], -1.0, 1.0, 1),
        w1: Tensor::normal(&[5, 6], 0.0, 0.6, 2),
        b1: Tensor::normal(&[5], 0.0, 0.5, 3),
        w2: Tensor::normal(&[3, 5], 0.0, 0.6, 4),
        x3: Tensor::uniform(&[2, 3, 4], 0.5, 1.5, 5),
    }
}

/// Graphs that keep the structure to different depths, each with the index
/// of the inputs to differentiate with respect to (`v` = x, w1, b1, w2, x3).
fn cases() -> Vec<(&'static str, Func, Vec<usize>)> {
    vec![
        // Elementwise, then the product into x: structured all the way.
        ("sigmoid_layer", f(|v| (v[0].matmul_t(v[1], false, true) + v[2]).sigmoid()), vec![0]),
        // The product is not transposed: op(B)^T is B^T.
        ("plain_product", f(|v| v[0].matmul(v[1].transpose()).tanh() * 2.0), vec![0]),
        // Two layers: structured down to the second product, dense after.
        (
            "two_layers",
            f(|v| (v[0].matmul_t(v[1], false, true) + v[2]).tanh().matmul_t(v[3], false, true).sigmoid()),
            vec![0],
        ),
        // The weight and bias need their rows too: written out densely.
        ("weight_and_bias", f(|v| (v[0].matmul_t(v[1], false, true) + v[2]).sigmoid()), vec![0, 1, 2]),
        // A reduction in the chain (softmax-like): dense from the division.
        ("reduction", f(|v| v[0].exp() / v[0].exp().sum_axis(1, true)), vec![0]),
        // The same value used twice, and a product of two needed operands.
        ("fan_out", f(|v| v[0].sigmoid() * v[0] + v[0].square()), vec![0]),
        // Three axes: elementwise all the way to the input.
        ("rank_three", f(|v| (v[4].log() * v[4]).softplus()), vec![4]),
        // The output is the input itself.
        ("identity", f(|v| v[0]), vec![0]),
        // An input the output does not depend on.
        ("unused", f(|v| v[0].sigmoid()), vec![0, 3]),
    ]
}

fn leaves<'t>(tape: &'t Tape<f64>, i: &Inputs) -> Vec<Var<'t, f64>> {
    [&i.x, &i.w1, &i.b1, &i.w2, &i.x3].iter().map(|t| tape.param(t)).collect()
}

/// Runs `check(name, create_graph, out, inputs)` for every case, with and
/// without `create_graph`, each on a fresh tape; `inputs` are the leaves the
/// case differentiates with respect to.
fn for_each_case(check: impl for<'t> Fn(&str, bool, Var<'t, f64>, Vec<Var<'t, f64>>)) {
    let data = inputs();
    for (name, func, wrt) in cases() {
        for create_graph in [false, true] {
            let tape = Tape::new();
            let v = leaves(&tape, &data);
            let out = func(&v);
            check(name, create_graph, out, wrt.iter().map(|&k| v[k]).collect());
        }
    }
}

/// A penalty and its gradients, computed two ways, agree: the penalty to
/// `penalty_rtol`, each gradient to 1e-12 of its largest entry.
fn assert_same_penalty(
    what: &str,
    a: (f64, Vec<Tensor<f64>>),
    b: (f64, Vec<Tensor<f64>>),
    penalty_rtol: f64,
) {
    let ((p1, g1), (p2, g2)) = (a, b);
    assert!((p1 - p2).abs() <= penalty_rtol * p2.abs(), "{what}: {p1} vs {p2}");
    for (i, (a, b)) in pairs(what, &g1, &g2).enumerate() {
        assert_close(&format!("{what}: gradient {i}"), a, b, Tol::rel(1e-12));
    }
}

#[test]
fn jacobian_rows_equal_the_dense_one_hot_sweep_bit_for_bit() {
    for_each_case(|name, create_graph, out, xs| {
        let fast = jacobian_rows(out, &xs, create_graph);
        let dense = grad_values_batched(&[out], &xs, &[one_hot_seed(&out.shape())]);
        for (k, (a, b)) in pairs(name, &fast, &dense).enumerate() {
            let what = format!("{name} (create_graph {create_graph}): input {k}");
            assert_close(&what, &a.value(), b, Tol::EXACT);
        }
    });
}

#[test]
fn the_rows_of_independent_samples_are_their_own_jacobians() {
    // h = sigmoid(x W^T + b): row l of sample i's Jacobian is
    // h_il (1 - h_il) W[l, :], which is what result[l, i, :] must hold.
    let data = inputs();
    let tape = Tape::new();
    let v = leaves(&tape, &data);
    let h = (v[0].matmul_t(v[1], false, true) + v[2]).sigmoid();
    let rows = jacobian_rows(h, &[v[0]], false)[0].value();
    assert_eq!(rows.shape(), &[5, 4, 6]);
    let hv = h.value();
    for l in 0..5 {
        for i in 0..4 {
            let s = hv.at(&[i, l]) * (1.0 - hv.at(&[i, l]));
            for c in 0..6 {
                let want = s * data.w1.at(&[l, c]);
                assert!((rows.at(&[l, i, c]) - want).abs() <= 1e-15, "row {l}, sample {i}, column {c}");
            }
        }
    }
}

#[test]
fn the_contractive_penalty_differentiates_like_the_dense_sweep() {
    // sum of squared rows, differentiated with respect to the weights and
    // bias; once through jacobian_rows, once through grad_batched.
    let data = inputs();
    let penalty_and_grads = |structured: bool| {
        let tape = Tape::new();
        let v = leaves(&tape, &data);
        let x = tape.constant(&data.x);
        let h = (x.matmul_t(v[1], false, true) + v[2]).sigmoid();
        let rows = if structured {
            jacobian_rows(h, &[x], true)[0]
        } else {
            grad_batched(&[h], &[x], &[tape.constant(&one_hot_seed(&h.shape()))], true)[0]
        };
        let pen = rows.square().sum();
        (pen.item(), grad_values(&[pen], &[v[1], v[2]], None))
    };
    assert_same_penalty("structured vs dense", penalty_and_grads(true), penalty_and_grads(false), 1e-14);
}

#[test]
#[should_panic(expected = "jacobian_rows: the output must have at least one axis")]
fn a_scalar_output_is_refused() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::ones(&[2]));
    let _ = jacobian_rows(x.sum(), &[x], false);
}

#[test]
fn factored_rows_written_out_equal_the_rows_bit_for_bit() {
    // Every single-input case: the factored form, written out, is exactly
    // what jacobian_rows returns; the layer-shaped cases stay factored.
    for_each_case(|name, create_graph, out, xs| {
        let x = xs[0];
        let factored = jacobian_rows_factored(out, x, create_graph);
        let expect_outer = matches!(name, "sigmoid_layer" | "plain_product" | "weight_and_bias");
        assert_eq!(matches!(factored, JacobianRows::Outer { .. }), expect_outer, "{name}");
        let rows = jacobian_rows(out, &[x], create_graph)[0].value();
        assert_close(
            &format!("{name} (create_graph {create_graph})"),
            &factored.dense().value(),
            &rows,
            Tol::EXACT,
        );
    });
}

#[test]
fn the_factored_sum_of_squares_and_its_gradient_match_the_written_out_rows() {
    // The contractive penalty once from the factors, once from the rows
    // written out, then differentiated with respect to weight and bias.
    let data = inputs();
    for act in ["sigmoid", "tanh", "softplus"] {
        let penalty_and_grads = |factored: bool| {
            let tape = Tape::new();
            let v = leaves(&tape, &data);
            let x = tape.constant(&data.x);
            let pre = x.matmul_t(v[1], false, true) + v[2];
            let h = match act {
                "sigmoid" => pre.sigmoid(),
                "tanh" => pre.tanh(),
                _ => pre.softplus(),
            };
            let rows = jacobian_rows_factored(h, x, true);
            assert!(matches!(rows, JacobianRows::Outer { .. }), "{act}");
            let pen = if factored { rows.sum_squares() } else { rows.dense().sum_squares() };
            (pen.item(), grad_values(&[pen], &[v[1], v[2]], None))
        };
        assert_same_penalty(act, penalty_and_grads(true), penalty_and_grads(false), 1e-13);
    }
}
