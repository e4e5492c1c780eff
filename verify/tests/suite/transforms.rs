//! The functional transforms (`gradtape::functional`) against central
//! finite differences in f64, and against each other.
//!
//! - Random functions of three inputs (`a: [3, 4]`, `b: [4]`, `w: [4, 4]`),
//!   each a chain of one block of every op kind (unary, binary with
//!   broadcasting, reduction, matrix product, shape op) in a seeded order;
//!   over the twelve functions every op of the engine appears. `vjp`, `jvp`
//!   and `jacobian` are checked on the `[3, 4]` output against differences
//!   of `f`; `hvp` and `hessian` on a scalar of it against differences of
//!   the gradient (the gradient itself is what gradcheck verifies).
//! - The transforms against each other: `jvp = jacobian · v`,
//!   `hvp = hessian · v`, and the Hessian's blocks symmetric.
//! - Models: the loss Hessian-vector product of the deep autoencoder, the
//!   contractive one with its double-backward penalty (third derivatives of
//!   the forward pass) and the VAE with its noise fixed, against
//!   differences of the loss gradient along `v`.
//!
//! Every comparison goes through `check_close`/`assert_close`, for which a
//! NaN or an infinity on either side is a failure.

use gradtape::functional::{hessian, hvp, jacobian, jvp, vjp};
use gradtape::{grad_values, Tape, Tensor, Var};
use gradtape_kernels::compare::{assert_close, Tol};
use gradtape_models::params::Bound;
use gradtape_verify::cases::{Case, CaseKind, Size};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// A function of some inputs, recorded on the tape it is given: the form
/// every transform takes.
type Func<'a> = &'a dyn for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>;

const EPS: f64 = 1e-6;
/// Central differences against the analytic value: O(eps^2) truncation and
/// O(1e-16 / eps) rounding, relative to the largest entry.
const FD: Tol = Tol { abs: 1e-7, rel: 1e-6 };
/// Two analytic routes to the same numbers, summed in different orders.
const SAME: Tol = Tol { abs: 1e-12, rel: 1e-11 };

// ---------------------------------------------------------------------------
// Random functions built from every op kind

/// Kinds of block, and how many variants each has.
const UNARY: usize = 12;
const BINARY: usize = 5;
const REDUCTION: usize = 6;
const MATMUL: usize = 4;
const SHAPE: usize = 5;

/// One block of each kind (`picks`, in the order `UNARY, BINARY, ...`),
/// applied in `order`.
#[derive(Clone, Debug)]
struct RandomFn {
    order: Vec<usize>,
    picks: [usize; 5],
}

impl RandomFn {
    /// Function `k`: variant `k mod len` of each kind (so that twelve
    /// functions use every variant), blocks in a seeded random order.
    fn new(k: usize) -> RandomFn {
        let mut order: Vec<usize> = (0..5).collect();
        order.shuffle(&mut StdRng::seed_from_u64(0x7a4 + k as u64));
        RandomFn { order, picks: [k % UNARY, k % BINARY, k % REDUCTION, k % MATMUL, k % SHAPE] }
    }

    /// The inputs `a: [3, 4]`, `b: [4]`, `w: [4, 4]`, seeded.
    fn inputs(k: usize) -> Vec<Tensor<f64>> {
        let s = 100 * k as u64;
        vec![
            Tensor::uniform(&[3, 4], -1.0, 1.0, s + 1),
            Tensor::uniform(&[4], -1.0, 1.0, s + 2),
            Tensor::normal(&[4, 4], 0.0, 0.5, s + 3),
        ]
    }

    /// The vector function, `[3, 4]` out.
    fn vector<'t>(&self, xs: &[Var<'t, f64>]) -> Var<'t, f64> {
        let (mut z, b, w) = (xs[0], xs[1], xs[2]);
        for &kind in &self.order {
            z = match kind {
                0 => unary(z, self.picks[0]),
                1 => binary(z, b, self.picks[1]),
                2 => reduction(z, self.picks[2]),
                3 => matmul(z, w, self.picks[3]),
                _ => shape(z, self.picks[4]),
            };
        }
        z
    }

    /// A scalar of it, for the second-order transforms.
    fn scalar<'t>(&self, xs: &[Var<'t, f64>]) -> Var<'t, f64> {
        self.vector(xs).softplus().mean()
    }
}

/// Unary ops, each on values where it is smooth (`abs`, `relu` and
/// `clamp` away from their kinks).
fn unary<'t>(z: Var<'t, f64>, pick: usize) -> Var<'t, f64> {
    match pick {
        0 => z.sigmoid(),
        1 => z.tanh(),
        2 => z.softplus(),
        3 => z.mul_scalar(0.5).exp(),
        4 => z.square().add_scalar(1.0).log(),
        5 => z.square().add_scalar(0.5).sqrt(),
        6 => z.square().add_scalar(1.0).powf(-0.75),
        7 => z.square().add_scalar(0.5).abs().div_scalar(2.0),
        8 => z.square().add_scalar(0.1).relu() * z,
        9 => z.tanh().clamp(-2.0, 2.0),
        10 => z.square().add_scalar(1.0).rdiv_scalar(1.0),
        _ => z.neg().rsub_scalar(1.0),
    }
}

/// Binary ops with `b: [4]` broadcast along the rows of `z: [3, 4]`.
fn binary<'t>(z: Var<'t, f64>, b: Var<'t, f64>, pick: usize) -> Var<'t, f64> {
    match pick {
        0 => z * b,
        1 => z + b,
        2 => z - b.tanh(),
        3 => z / b.square().add_scalar(1.0),
        _ => b.reshape(&[1, 4]) * z * z,
    }
}

/// Reductions, broadcast back onto `z`.
fn reduction<'t>(z: Var<'t, f64>, pick: usize) -> Var<'t, f64> {
    match pick {
        0 => z - z.mean_axis(0, true),
        1 => z * z.sum_axis(1, true).tanh(),
        2 => z + z.max_axis(1, true),
        3 => z * z.mean().tanh(),
        4 => z + z.sum().mul_scalar(0.1),
        _ => z * z.norm().mul_scalar(0.3),
    }
}

/// Matrix products with `w: [4, 4]`, transposed or not.
fn matmul<'t>(z: Var<'t, f64>, w: Var<'t, f64>, pick: usize) -> Var<'t, f64> {
    match pick {
        0 => z.matmul(w),
        1 => z.matmul_t(w, false, true),
        2 => w.matmul_t(z, false, true).transpose(),
        _ => z.matmul(w.matmul_t(w, true, false)).mul_scalar(0.5),
    }
}

/// Shape ops, every element of `z` still reaching the output.
fn shape<'t>(z: Var<'t, f64>, pick: usize) -> Var<'t, f64> {
    match pick {
        0 => z.transpose().reshape(&[3, 4]),
        1 => z.slice_axis(1, 1, 2).pad_axis(1, 1, 4) + z,
        2 => z.row(0).broadcast_to(&[3, 4]) * z,
        3 => z.select(1, 2).unselect(1, 2, 4) + z.tanh(),
        _ => z.reshape(&[12]).reshape(&[2, 6]).transpose().reshape(&[3, 4]),
    }
}

/// The twelve random functions with their inputs.
fn random_functions() -> Vec<(RandomFn, Vec<Tensor<f64>>)> {
    (0..UNARY).map(|k| (RandomFn::new(k), RandomFn::inputs(k))).collect()
}

// ---------------------------------------------------------------------------
// Finite differences (f64, central)

/// `f` evaluated on fresh leaves.
fn eval(f: Func, xs: &[Tensor<f64>]) -> Tensor<f64> {
    let tape = Tape::new();
    let vars: Vec<_> = xs.iter().map(|x| tape.param(x)).collect();
    f(&tape, &vars).value()
}

/// The gradient of a scalar `f`, by one plain backward sweep.
fn gradient(f: Func, xs: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    let tape = Tape::new();
    let vars: Vec<_> = xs.iter().map(|x| tape.param(x)).collect();
    grad_values(&[f(&tape, &vars)], &vars, None)
}

/// `xs + t vs`, input by input.
fn shifted(xs: &[Tensor<f64>], vs: &[Tensor<f64>], t: f64) -> Vec<Tensor<f64>> {
    xs.iter().zip(vs).map(|(x, v)| x.add(&v.mul_scalar(t))).collect()
}

/// `(g(x + eps v) - g(x - eps v)) / (2 eps)` for a `g` returning tensors.
fn directional<R>(g: impl Fn(&[Tensor<f64>]) -> R, xs: &[Tensor<f64>], vs: &[Tensor<f64>]) -> Vec<Tensor<f64>>
where
    R: IntoIterator<Item = Tensor<f64>>,
{
    let plus = g(&shifted(xs, vs, EPS));
    let minus = g(&shifted(xs, vs, -EPS));
    plus.into_iter().zip(minus).map(|(p, m)| p.sub(&m).mul_scalar(0.5 / EPS)).collect()
}

/// The one-hot tangents `e_{k, j}`: zero everywhere but element `j` of
/// input `k`.
fn one_hot(xs: &[Tensor<f64>], k: usize, j: usize) -> Vec<Tensor<f64>> {
    let mut vs: Vec<Tensor<f64>> = xs.iter().map(|x| Tensor::zeros(x.shape())).collect();
    vs[k].data_mut()[j] = 1.0;
    vs
}

/// Column `(k, j)` of a Jacobian from differences of `g`, written into
/// blocks laid out `[g's shape..., x_k's shape...]` (one list per output of
/// `g`, one block per input).
fn numeric_jacobian<R>(g: impl Fn(&[Tensor<f64>]) -> R, xs: &[Tensor<f64>]) -> Vec<Vec<Tensor<f64>>>
where
    R: IntoIterator<Item = Tensor<f64>>,
{
    let outs: Vec<Tensor<f64>> = g(xs).into_iter().collect();
    let mut blocks: Vec<Vec<Tensor<f64>>> = outs
        .iter()
        .map(|o| xs.iter().map(|x| Tensor::zeros(&[o.shape(), x.shape()].concat())).collect())
        .collect();
    for (k, x) in xs.iter().enumerate() {
        for j in 0..x.len() {
            for (o, column) in directional(&g, xs, &one_hot(xs, k, j)).iter().enumerate() {
                let block = blocks[o][k].data_mut();
                for (e, &d) in column.data().iter().enumerate() {
                    block[e * x.len() + j] = d;
                }
            }
        }
    }
    blocks
}

/// `sum_j M_j v_j` for blocks `M_j` of shape `[out..., x_j...]`, as a
/// tensor of shape `out`.
fn contract(blocks: &[Tensor<f64>], vs: &[Tensor<f64>], out: &[usize]) -> Tensor<f64> {
    let m: usize = out.iter().product();
    let mut r = vec![0.0; m];
    for (b, v) in blocks.iter().zip(vs) {
        let n = v.len();
        for (o, ro) in r.iter_mut().enumerate() {
            *ro += b.data()[o * n..(o + 1) * n].iter().zip(v.data()).map(|(a, c)| a * c).sum::<f64>();
        }
    }
    Tensor::from_vec(r, out)
}

/// Seeded random tangents, one per input.
fn tangents(xs: &[Tensor<f64>], seed: u64) -> Vec<Tensor<f64>> {
    xs.iter().enumerate().map(|(k, x)| Tensor::normal(x.shape(), 0.0, 1.0, seed + k as u64)).collect()
}

// ---------------------------------------------------------------------------
// Every transform against finite differences

#[test]
fn the_random_functions_use_every_variant_of_every_op_kind() {
    let fns = random_functions();
    for (kind, len) in [UNARY, BINARY, REDUCTION, MATMUL, SHAPE].into_iter().enumerate() {
        for pick in 0..len {
            assert!(fns.iter().any(|(f, _)| f.picks[kind] == pick), "kind {kind} variant {pick} unused");
        }
    }
}

#[test]
fn vjp_matches_finite_differences_on_random_functions() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.vector(v);
        let u = Tensor::normal(&[3, 4], 0.0, 1.0, 50 + k as u64);
        let (y, got) = vjp(f, xs, &u);
        assert_close(&format!("function {k} {rf:?}: vjp's value"), &y, &eval(f, xs), Tol::EXACT);
        // <u, f(x)> is a scalar whose gradient is u^T J.
        let numeric = numeric_jacobian(|x| [eval(f, x).mul(&u).sum_all()], xs).remove(0);
        for (i, (g, n)) in got.iter().zip(&numeric).enumerate() {
            assert_close(&format!("function {k} {rf:?}: vjp, input {i}"), g, &n.reshape(g.shape()), FD);
        }
    }
}

#[test]
fn jvp_matches_finite_differences_on_random_functions() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.vector(v);
        let vs = tangents(xs, 60 + 10 * k as u64);
        let (y, got) = jvp(f, xs, &vs);
        assert_close(&format!("function {k}: jvp's value"), &y, &eval(f, xs), Tol::EXACT);
        let numeric = directional(|x| [eval(f, x)], xs, &vs).remove(0);
        assert_close(&format!("function {k} {rf:?}: jvp"), &got, &numeric, FD);
    }
}

#[test]
fn jacobian_matches_finite_differences_on_random_functions() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.vector(v);
        let got = jacobian(f, xs);
        let numeric = numeric_jacobian(|x| [eval(f, x)], xs).remove(0);
        assert_eq!(got.len(), 3, "one block per input");
        for (i, (g, n)) in got.iter().zip(&numeric).enumerate() {
            assert_eq!(g.shape(), [&[3, 4], xs[i].shape()].concat(), "layout [out..., in...]");
            assert_close(&format!("function {k} {rf:?}: jacobian, input {i}"), g, n, FD);
        }
    }
}

#[test]
fn hvp_matches_finite_differences_of_the_gradient_on_random_functions() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.scalar(v);
        let vs = tangents(xs, 70 + 10 * k as u64);
        let (y, got) = hvp(f, xs, &vs);
        assert_close(&format!("function {k}: hvp's value"), &y, &eval(f, xs), Tol::EXACT);
        let numeric = directional(|x| gradient(f, x), xs, &vs);
        for (i, (g, n)) in got.iter().zip(&numeric).enumerate() {
            assert_close(&format!("function {k} {rf:?}: hvp, input {i}"), g, n, FD);
        }
    }
}

#[test]
fn hessian_matches_finite_differences_of_the_gradient_on_random_functions() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.scalar(v);
        let got = hessian(f, xs);
        // Row block i: the Jacobian of gradient i.
        let numeric = numeric_jacobian(|x| gradient(f, x), xs);
        assert_eq!(got.len(), 3, "one row of blocks per input");
        for (i, (row, nrow)) in got.iter().zip(&numeric).enumerate() {
            assert_eq!(row.len(), 3, "one block per pair of inputs");
            for (j, (h, n)) in row.iter().zip(nrow).enumerate() {
                assert_eq!(h.shape(), [xs[i].shape(), xs[j].shape()].concat(), "layout [x_i..., x_j...]");
                assert_close(&format!("function {k} {rf:?}: hessian block ({i}, {j})"), h, n, FD);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The transforms against each other

#[test]
fn jvp_is_the_jacobian_times_the_tangent() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.vector(v);
        let vs = tangents(xs, 80 + 10 * k as u64);
        let (_, jv) = jvp(f, xs, &vs);
        let j = jacobian(f, xs);
        assert_close(&format!("function {k}: jvp against J v"), &jv, &contract(&j, &vs, &[3, 4]), SAME);
    }
}

#[test]
fn hvp_is_the_hessian_times_the_tangent() {
    for (k, (rf, xs)) in random_functions().iter().enumerate() {
        let f: Func = &|_, v| rf.scalar(v);
        let vs = tangents(xs, 90 + 10 * k as u64);
        let (_, hv) = hvp(f, xs, &vs);
        let h = hessian(f, xs);
        for (i, (got, row)) in hv.iter().zip(&h).enumerate() {
            let want = contract(row, &vs, xs[i].shape());
            assert_close(&format!("function {k}: hvp against H v, input {i}"), got, &want, SAME);
        }
    }
}

#[test]
fn the_hessian_is_symmetric_and_its_blocks_are_the_one_input_hessians() {
    for (k, (rf, xs)) in random_functions().iter().enumerate().take(4) {
        let f: Func = &|_, v| rf.scalar(v);
        let h = hessian(f, xs);
        for i in 0..3 {
            for j in 0..3 {
                let (ni, nj) = (xs[i].len(), xs[j].len());
                let transposed = h[j][i].reshape(&[nj, ni]).transpose().reshape(h[i][j].shape());
                assert_close(
                    &format!("function {k}: H[{i}][{j}] = H[{j}][{i}]^T"),
                    &h[i][j],
                    &transposed,
                    SAME,
                );
            }
            // The Hessian in x_i alone, the others held fixed, is block (i, i).
            let alone = hessian(
                |tape, v| {
                    let mut all: Vec<Var<f64>> = xs.iter().map(|x| tape.constant(x)).collect();
                    all[i] = v[0];
                    rf.scalar(&all)
                },
                std::slice::from_ref(&xs[i]),
            );
            assert_close(&format!("function {k}: hessian in input {i} alone"), &alone[0][0], &h[i][i], SAME);
        }
    }
}

#[test]
fn an_input_the_function_ignores_gets_zeros_from_every_transform() {
    let xs = vec![Tensor::uniform(&[2, 3], -1.0, 1.0, 1), Tensor::uniform(&[4], -1.0, 1.0, 2)];
    let vs = tangents(&xs, 3);
    let f: Func = &|_, v| v[0].sigmoid().sum_axis(0, false);
    let s: Func = &|_, v| v[0].tanh().square().sum();
    let zeros = |shape: &[usize]| Tensor::zeros(shape);
    let (_, g) = vjp(f, &xs, &Tensor::ones(&[3]));
    assert_close("vjp, unused input", &g[1], &zeros(&[4]), Tol::EXACT);
    assert_close("jacobian, unused input", &jacobian(f, &xs)[1], &zeros(&[3, 4]), Tol::EXACT);
    let (_, hv) = hvp(s, &xs, &vs);
    assert_close("hvp, unused input", &hv[1], &zeros(&[4]), Tol::EXACT);
    let h = hessian(s, &xs);
    assert_close("hessian (1, 1), unused input", &h[1][1], &zeros(&[4, 4]), Tol::EXACT);
    assert_close("hessian (0, 1), unused input", &h[0][1], &zeros(&[2, 3, 4]), Tol::EXACT);
    // ... and a tangent along the unused input changes nothing.
    let only_unused = vec![zeros(&[2, 3]), vs[1].clone()];
    assert_close("jvp along the unused input", &jvp(f, &xs, &only_unused).1, &zeros(&[3]), Tol::EXACT);
}

#[test]
fn closed_forms_of_a_function_of_two_numbers() {
    // f(x, y) = x^2 y + exp(y): grad (2xy, x^2 + e^y), Hessian
    // [[2y, 2x], [2x, e^y]].
    let (x, y) = (0.7, -0.4);
    let xs = vec![Tensor::scalar(x), Tensor::scalar(y)];
    let f: Func = &|_, v| v[0].square() * v[1] + v[1].exp();
    let num = |a: f64| Tensor::scalar(a);
    let (_, g) = vjp(f, &xs, &num(1.0));
    assert_close("df/dx", &g[0], &num(2.0 * x * y), Tol::abs(1e-15));
    assert_close("df/dy", &g[1], &num(x * x + y.exp()), Tol::abs(1e-15));
    let h = hessian(f, &xs);
    let want = [[2.0 * y, 2.0 * x], [2.0 * x, y.exp()]];
    for i in 0..2 {
        for j in 0..2 {
            assert_close(&format!("H[{i}][{j}]"), &h[i][j], &num(want[i][j]), Tol::abs(1e-15));
        }
    }
    let v = [1.0, -2.0];
    let (_, hv) = hvp(f, &xs, &[num(v[0]), num(v[1])]);
    let (_, jv) = jvp(f, &xs, &[num(v[0]), num(v[1])]);
    assert_close("(Hv)_x", &hv[0], &num(want[0][0] * v[0] + want[0][1] * v[1]), Tol::abs(1e-15));
    assert_close("(Hv)_y", &hv[1], &num(want[1][0] * v[0] + want[1][1] * v[1]), Tol::abs(1e-15));
    assert_close("jvp", &jv, &num(2.0 * x * y * v[0] + (x * x + y.exp()) * v[1]), Tol::abs(1e-15));
}

#[test]
#[should_panic(expected = "jvp: tangent 1 has shape [3] but input 1 has shape [4]")]
fn a_tangent_of_the_wrong_shape_is_refused_by_name() {
    let xs = vec![Tensor::<f64>::zeros(&[2]), Tensor::zeros(&[4])];
    let vs = vec![Tensor::zeros(&[2]), Tensor::zeros(&[3])];
    let _ = jvp(|_, v| v[0] + v[1].sum(), &xs, &vs);
}

#[test]
#[should_panic(expected = "hessian: f must return a single number")]
fn a_hessian_of_a_vector_function_is_refused() {
    let _ = hessian(|_, v| v[0].sigmoid(), &[Tensor::<f64>::zeros(&[3])]);
}

// ---------------------------------------------------------------------------
// Models: the loss Hessian-vector product

/// `H v` of `case`'s training loss with respect to all its parameters,
/// checked against `(∇L(w + eps v) - ∇L(w - eps v)) / (2 eps)`; returns
/// `H v`.
fn check_model_hvp(kind: CaseKind, seed: u64) -> Vec<Tensor<f64>> {
    let case = Case::<f64>::new(kind, Size::Small, seed);
    let loss: Func = &|tape, ps| case.loss(&Bound::from_vars(ps.to_vec()), tape.constant(&case.x));
    let ws = case.params().tensors();
    let vs = tangents(ws, seed ^ 0x77);
    let (l, hv) = hvp(loss, ws, &vs);
    assert_close(&format!("{kind}: the loss"), &l, &eval(loss, ws), Tol::EXACT);
    let numeric = directional(|w| gradient(loss, w), ws, &vs);
    let names = case.params().names();
    assert_eq!(hv.len(), names.len(), "{kind}: one product per parameter");
    for ((h, n), name) in hv.iter().zip(&numeric).zip(names) {
        assert_close(&format!("{kind}: Hv for {name}"), h, n, FD);
    }
    assert!(hv.iter().any(|h| h.data().iter().any(|&e| e != 0.0)), "{kind}: H v is all zeros");
    hv
}

#[test]
fn the_deep_autoencoders_loss_hvp_matches_differences_of_its_gradient() {
    check_model_hvp(CaseKind::Deep, 11);
}

#[test]
fn the_contractive_autoencoders_loss_hvp_through_its_double_backward_penalty_matches() {
    // The penalty is a recorded gradient; its Hessian-vector product takes
    // third derivatives of the forward pass.
    check_model_hvp(CaseKind::ContractiveDoubleBackward, 12);
}

#[test]
fn the_contractive_hvp_is_the_same_with_the_penalty_by_double_backward_or_in_closed_form() {
    let by_double_backward = check_model_hvp(CaseKind::ContractiveDoubleBackward, 13);
    let closed_form = check_model_hvp(CaseKind::ContractiveClosedForm, 13);
    for (k, (a, b)) in by_double_backward.iter().zip(&closed_form).enumerate() {
        assert_close(&format!("contractive Hv, parameter {k}"), a, b, SAME);
    }
}

#[test]
fn the_vaes_loss_hvp_with_its_noise_fixed_matches_differences_of_its_gradient() {
    check_model_hvp(CaseKind::Vae, 14);
}
