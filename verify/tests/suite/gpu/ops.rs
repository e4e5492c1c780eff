//! The parity suite's ops: every op of `ops_gradcheck` on fixed shapes,
//! forward, plain and recorded backward, and a double backward, against
//! the CPU in both precisions.

use super::*;

pub(super) type Func<T> = Box<dyn for<'t> Fn(&[Var<'t, T>]) -> Vec<Var<'t, T>>>;

pub(super) fn op<T: Element>(f: impl for<'t> Fn(&[Var<'t, T>]) -> Vec<Var<'t, T>> + 'static) -> Func<T> {
    Box::new(f)
}

/// One op applied to fixed inputs (on the host).
struct OpCase<T: Element> {
    name: String,
    f: Func<T>,
    inputs: Vec<Tensor<T>>,
}

fn case<T: Element>(name: impl Into<String>, f: Func<T>, inputs: &[&Tensor<T>]) -> OpCase<T> {
    OpCase { name: name.into(), f, inputs: inputs.iter().map(|&x| x.clone()).collect() }
}

/// Uniform in [-1.5, 1.5), drawn in f64 and rounded to `T` (so f32 and f64
/// see the same numbers).
pub(super) fn any<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.5, 1.5, seed).cast()
}

/// Values in (-1.7, -0.2] U [0.2, 1.7): away from the kinks at 0.
pub(super) fn away_from_zero<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.5, 1.5, seed).map(|x| if x >= 0.0 { x + 0.2 } else { x - 0.2 }).cast()
}

/// Values in [0.5, 2): safe for log, sqrt and negative powers.
pub(super) fn positive<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, 0.5, 2.0, seed).cast()
}

/// Distinct values 0.25 apart (exact in f32 too), shuffled: max has one
/// winner.
pub(super) fn distinct<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.25 - 1.0).collect();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    Tensor::from_vec(v, shape).cast()
}

/// Values kept at least 0.1 away from the clamp bounds +-0.5.
pub(super) fn away_from_bounds<T: Element>(shape: &[usize], seed: u64) -> Tensor<T> {
    Tensor::<f64>::uniform(shape, -1.0, 1.0, seed)
        .map(|x| if (x.abs() - 0.5).abs() < 0.1 { x * 0.6 } else { x })
        .cast()
}

/// Shapes for the elementwise ops: a scalar, small and odd sizes, and
/// sizes that need many blocks (100,003 is past one grid of full blocks).
const ELEMENTWISE_SHAPES: &[&[usize]] = &[&[], &[7], &[3, 4, 5], &[1025], &[100_003]];

/// Pairs that broadcast as `ops_gradcheck`'s strategy makes them (axes set
/// to 1, leading axes dropped, either side the smaller), one pair where
/// both sides broadcast, and large ones.
const BROADCAST_PAIRS: &[(&[usize], &[usize])] = &[
    (&[], &[]),
    (&[3], &[]),
    (&[], &[2, 3]),
    (&[2, 3], &[2, 3]),
    (&[2, 3], &[3]),
    (&[3], &[2, 3]),
    (&[2, 3], &[2, 1]),
    (&[1, 3], &[2, 3]),
    (&[2, 3, 4], &[3, 1]),
    (&[2, 1, 4], &[2, 3, 4]),
    (&[2, 1], &[1, 3]),
    (&[33, 1025], &[1025]),
    (&[5, 7, 300], &[7, 1]),
];

/// (full, small) shapes for broadcast_to and sum_to.
const LAYOUT_PAIRS: &[(&[usize], &[usize])] =
    &[(&[2, 3], &[3]), (&[2, 3, 4], &[3, 1]), (&[3, 4], &[1, 4]), (&[33, 1025], &[1025]), (&[4], &[])];

/// Every op of the engine with its inputs, in `T`.
fn op_cases<T: Element>() -> Vec<OpCase<T>> {
    let s = T::of;
    let mut cases = Vec::new();
    for (k, &shape) in ELEMENTWISE_SHAPES.iter().enumerate() {
        let seed = 10 + k as u64;
        let (x, nz, pos, xc) = (
            any(shape, seed),
            away_from_zero(shape, seed),
            positive(shape, seed),
            away_from_bounds(shape, seed),
        );
        let unary: Vec<(&str, Func<T>, &Tensor<T>)> = vec![
            ("neg", op(|v| vec![-v[0]]), &x),
            ("add_scalar", op(move |v| vec![v[0] + s(0.7)]), &x),
            ("sub_scalar", op(move |v| vec![v[0] - s(0.7)]), &x),
            ("mul_scalar", op(move |v| vec![v[0] * s(-1.3)]), &x),
            ("div_scalar", op(move |v| vec![v[0] / s(2.5)]), &x),
            ("scalar_sub", op(move |v| vec![v[0].rsub_scalar(s(3.0))]), &x),
            ("scalar_div", op(move |v| vec![v[0].rdiv_scalar(s(2.0))]), &nz),
            ("scalar_add_mul", op(move |v| vec![v[0] * s(2.0) + s(1.0)]), &x),
            ("exp", op(|v| vec![v[0].exp()]), &x),
            ("log", op(|v| vec![v[0].log()]), &pos),
            ("pow_2.5", op(move |v| vec![v[0].powf(s(2.5))]), &pos),
            ("pow_-1.5", op(move |v| vec![v[0].powf(s(-1.5))]), &pos),
            ("sqrt", op(|v| vec![v[0].sqrt()]), &pos),
            ("square", op(|v| vec![v[0].square()]), &x),
            ("abs", op(|v| vec![v[0].abs()]), &nz),
            ("sigmoid", op(|v| vec![v[0].sigmoid()]), &x),
            ("tanh", op(|v| vec![v[0].tanh()]), &x),
            ("relu", op(|v| vec![v[0].relu()]), &nz),
            ("softplus", op(|v| vec![v[0].softplus()]), &x),
            ("clamp", op(move |v| vec![v[0].clamp(s(-0.5), s(0.5))]), &xc),
        ];
        for (name, f, input) in unary {
            cases.push(case(format!("{name} on {shape:?}"), f, &[input]));
        }
    }
    for (k, &(sa, sb)) in BROADCAST_PAIRS.iter().enumerate() {
        let seed = 100 + k as u64;
        let (a, b, bnz) = (any(sa, seed), any(sb, seed + 1), away_from_zero(sb, seed + 2));
        let on = format!("on {sa:?} and {sb:?}");
        cases.push(case(format!("add {on}"), op(|v| vec![v[0] + v[1]]), &[&a, &b]));
        cases.push(case(format!("sub {on}"), op(|v| vec![v[0] - v[1]]), &[&a, &b]));
        cases.push(case(format!("mul {on}"), op(|v| vec![v[0] * v[1]]), &[&a, &b]));
        cases.push(case(format!("div {on}"), op(|v| vec![v[0] / v[1]]), &[&a, &bnz]));
        cases.push(case(format!("fan_out {on}"), op(|v| vec![v[0] * v[0] + v[0] * v[1]]), &[&a, &b]));
    }
    let reduction_shapes: &[&[usize]] = &[&[7], &[3, 4, 5], &[2, 1, 3], &[7, 1025]];
    for (k, &shape) in reduction_shapes.iter().enumerate() {
        let seed = 200 + k as u64;
        let (x, d) = (any(shape, seed), distinct(shape, seed));
        cases.push(case(format!("sum on {shape:?}"), op(|v| vec![v[0].sum()]), &[&x]));
        cases.push(case(format!("sum_squares on {shape:?}"), op(|v| vec![v[0].sum_squares()]), &[&x]));
        cases.push(case(format!("mean on {shape:?}"), op(|v| vec![v[0].mean()]), &[&x]));
        cases.push(case(format!("max on {shape:?}"), op(|v| vec![v[0].max()]), &[&d]));
        for axis in 0..shape.len() {
            for keepdim in [false, true] {
                let on = format!("axis {axis} keepdim {keepdim} on {shape:?}");
                cases.push(case(
                    format!("sum_axis {on}"),
                    op(move |v| vec![v[0].sum_axis(axis, keepdim)]),
                    &[&x],
                ));
                cases.push(case(
                    format!("mean_axis {on}"),
                    op(move |v| vec![v[0].mean_axis(axis, keepdim)]),
                    &[&x],
                ));
                cases.push(case(
                    format!("max_axis {on}"),
                    op(move |v| vec![v[0].max_axis(axis, keepdim)]),
                    &[&d],
                ));
            }
        }
    }
    // A whole-tensor reduction over many blocks (two launches on the GPU).
    // Positive terms: an f32 sum of 100,003 signed terms cancels, and the
    // CPU's and the GPU's orders of summation would differ by more than
    // 1e-5 of the result for reasons that are not bugs.
    let big = positive::<T>(&[100_003], 300);
    cases.push(case("sum on [100003]", op(|v| vec![v[0].sum()]), &[&big]));
    cases.push(case("sum_squares on [100003]", op(|v| vec![v[0].sum_squares()]), &[&big]));
    cases.push(case("mean on [100003]", op(|v| vec![v[0].mean()]), &[&big]));
    let big_distinct = distinct::<T>(&[100_003], 301);
    cases.push(case("max on [100003]", op(|v| vec![v[0].max()]), &[&big_distinct]));
    // Few outputs over long lanes: the GPU splits each lane into runs
    // (reduce_axis, sum_to and mul_sum_to, as in a bias gradient over a big
    // batch) and sums to one number over the whole launch. Positive terms,
    // for the reason above.
    let tall = positive::<T>(&[2100, 3], 302);
    let (row, tall_distinct) = (positive::<T>(&[3], 303), distinct::<T>(&[2100, 3], 304));
    cases.push(case("sum_axis 0 on [2100, 3]", op(|v| vec![v[0].sum_axis(0, false)]), &[&tall]));
    cases.push(case("mean_axis 0 on [2100, 3]", op(|v| vec![v[0].mean_axis(0, true)]), &[&tall]));
    cases.push(case("max_axis 0 on [2100, 3]", op(|v| vec![v[0].max_axis(0, false)]), &[&tall_distinct]));
    cases.push(case("add (bias) on [2100, 3] and [3]", op(|v| vec![v[0] + v[1]]), &[&tall, &row]));
    cases.push(case("mul (scale) on [2100, 3] and [3]", op(|v| vec![v[0] * v[1]]), &[&tall, &row]));
    let one = positive::<T>(&[], 305);
    cases.push(case("mul on [2100, 3] and []", op(|v| vec![v[0] * v[1]]), &[&tall, &one]));
    // The fused ops (autograd/src/ops/fused.rs), in both kernels' paths:
    // one pass over a batch, and a bias gradient split into runs.
    let (z, b) = (any::<T>(&[7, 5], 306), any::<T>(&[5], 307));
    for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let name = act.name();
        cases.push(case(
            format!("bias_act {name} on [7, 5]"),
            op(move |v| vec![v[0].bias_act(v[1], act)]),
            &[&z, &b],
        ));
        cases.push(case(
            format!("bias_act {name} on [2100, 3]"),
            op(move |v| vec![v[0].bias_act(v[1], act)]),
            &[&tall, &row],
        ));
    }
    // A whole linear layer: identity and ReLU through cuBLASLt's BIAS and
    // RELU_BIAS epilogues (and BGRADB for identity's weight and bias
    // gradients), sigmoid and tanh through the gemm and bias_act; x, W and
    // b all inputs. A layer of 2100 rows too.
    let (lx, lw, lb) = (any::<T>(&[7, 5], 320), any::<T>(&[3, 5], 321), any::<T>(&[3], 322));
    let (tall_x, tall_w) = (any::<T>(&[2100, 4], 323), any::<T>(&[6, 4], 324));
    let tall_b = any::<T>(&[6], 325);
    for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let name = act.name();
        let layer = op(move |v| vec![v[0].linear_act(v[1], v[2], act)]);
        cases.push(case(format!("linear_act {name} [7, 5] x [3, 5]^T"), layer, &[&lx, &lw, &lb]));
        let layer = op(move |v| vec![v[0].linear_act(v[1], v[2], act)]);
        cases.push(case(
            format!("linear_act {name} [2100, 4] x [6, 4]^T"),
            layer,
            &[&tall_x, &tall_w, &tall_b],
        ));
    }
    // Two layers, the first ReLU: on a GPU the second layer's product
    // makes the first's pre-activation gradient and bias gradient through
    // its ReLU mask (cuBLASLt's DRELU_BGRAD, `fused::ReluThrough`), whether
    // the second is a linear_act (identity, ReLU) or the product and
    // bias_act (tanh). And the same first layer used twice, where it must
    // not (its gradient is a sum).
    let (w2, b2) = (any::<T>(&[4, 3], 326), any::<T>(&[4], 327));
    for (name, second) in [("identity", Act::Identity), ("relu", Act::Relu), ("tanh", Act::Tanh)] {
        let chain = op(move |v| vec![v[0].linear_act(v[1], v[2], Act::Relu).linear_act(v[3], v[4], second)]);
        cases.push(case(format!("linear_act relu then {name}"), chain, &[&lx, &lw, &lb, &w2, &b2]));
    }
    let twice = op(|v| {
        let h = v[0].linear_act(v[1], v[2], Act::Relu);
        vec![h.linear_act(v[3], v[4], Act::Identity) + h.linear_act(v[3], v[4], Act::Relu)]
    });
    cases.push(case("linear_act relu used by two layers", twice, &[&lx, &lw, &lb, &w2, &b2]));
    // The reparameterisation, eps given as a third input (read as a
    // constant, so it gets no gradient on either device).
    let (mu, logvar, eps) = (any::<T>(&[7, 5], 312), any::<T>(&[7, 5], 313), any::<T>(&[7, 5], 314));
    cases.push(case(
        "reparameterize on [7, 5]",
        op(|v| vec![v[0].reparameterize(v[1], &v[2].value())]),
        &[&mu, &logvar, &eps],
    ));
    // A loss and its weighted penalty, one pass: one number (as the models
    // use it), a small matrix and many blocks.
    for (shape, seed) in [(&[][..], 315u64), (&[7, 5][..], 317), (&[100_003][..], 319)] {
        let (a, b) = (any::<T>(shape, seed), any::<T>(shape, seed + 1));
        let f = op(|v| vec![v[0].add_scaled(v[1], T::of(-0.37))]);
        cases.push(case(format!("add_scaled on {shape:?}"), f, &[&a, &b]));
    }
    // The fused losses: one reduction over a few elements and over many
    // blocks (with a level of sum_chunks), and the one-pass gradients.
    // Probabilities in [0.1, 0.9) for cross-entropy; positive terms only.
    for term in LossTerm::ALL {
        let name = term.name();
        for (shape, seed) in [(&[7usize, 5][..], 308u64), (&[2100, 3][..], 310)] {
            let a = match term {
                LossTerm::BinaryCrossEntropy => Tensor::<f64>::uniform(shape, 0.1, 0.9, seed).cast(),
                _ => any::<T>(shape, seed),
            };
            let b = match term {
                LossTerm::BinaryCrossEntropy => Tensor::<f64>::uniform(shape, 0.0, 1.0, seed + 1).cast(),
                _ => any::<T>(shape, seed + 1),
            };
            cases.push(case(
                format!("loss_sum {name} on {shape:?}"),
                op(move |v| vec![v[0].loss_sum(v[1], term, T::of(0.5))]),
                &[&a, &b],
            ));
        }
    }

    for (k, &(full, small)) in LAYOUT_PAIRS.iter().enumerate() {
        let seed = 400 + k as u64;
        let (xs, xf) = (any::<T>(small, seed), any::<T>(full, seed + 1));
        let (f2, s2) = (full.to_vec(), small.to_vec());
        cases.push(case(
            format!("broadcast_to {small:?} -> {full:?}"),
            op(move |v| vec![v[0].broadcast_to(&f2)]),
            &[&xs],
        ));
        cases.push(case(
            format!("sum_to {full:?} -> {small:?}"),
            op(move |v| vec![v[0].sum_to(&s2)]),
            &[&xf],
        ));
        let n = xf.len();
        cases.push(case(format!("reshape_flat {full:?}"), op(move |v| vec![v[0].reshape(&[n])]), &[&xf]));
        let rev: Vec<usize> = full.iter().rev().copied().collect();
        cases.push(case(format!("reshape_reversed {full:?}"), op(move |v| vec![v[0].reshape(&rev)]), &[&xf]));
        if full.len() >= 2 {
            cases.push(case(format!("transpose {full:?}"), op(|v| vec![v[0].transpose()]), &[&xf]));
        }
        for (axis, &len) in full.iter().enumerate() {
            let index = (seed as usize) % len;
            let start = (seed as usize / 7) % len;
            let take = len - start;
            let on = format!("axis {axis} of {full:?}");
            cases.push(case(format!("select {on}"), op(move |v| vec![v[0].select(axis, index)]), &[&xf]));
            cases.push(case(
                format!("slice_axis {on}"),
                op(move |v| vec![v[0].slice_axis(axis, start, take)]),
                &[&xf],
            ));
            cases.push(case(
                format!("pad_axis {on}"),
                op(move |v| vec![v[0].pad_axis(axis, 1, len + 2)]),
                &[&xf],
            ));
            let picked = xf.select(axis, index);
            cases.push(case(
                format!("unselect {on}"),
                op(move |v| vec![v[0].unselect(axis, index, len)]),
                &[&picked],
            ));
        }
    }

    for (k, &(m, kk, n)) in [(1, 1, 1), (2, 3, 4), (65, 130, 33)].iter().enumerate() {
        for ta in [false, true] {
            for tb in [false, true] {
                let seed = 500 + 4 * k as u64 + 2 * ta as u64 + tb as u64;
                let a_shape = if ta { [kk, m] } else { [m, kk] };
                let b_shape = if tb { [n, kk] } else { [kk, n] };
                let (a, b) = (any::<T>(&a_shape, seed), any::<T>(&b_shape, seed + 100));
                let name = format!("matmul_t {m}x{kk}x{n} ta {ta} tb {tb}");
                cases.push(case(name, op(move |v| vec![v[0].matmul_t(v[1], ta, tb)]), &[&a, &b]));
            }
        }
    }
    let batched: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[4, 5]),
        (&[2, 3, 4], &[1, 4, 5]),
        (&[2, 3, 4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 5]),
    ];
    for (k, &(sa, sb)) in batched.iter().enumerate() {
        let (a, b) = (any::<T>(sa, 600 + k as u64), any::<T>(sb, 650 + k as u64));
        cases.push(case(
            format!("batched matmul {sa:?} x {sb:?}"),
            op(|v| vec![v[0].matmul(v[1])]),
            &[&a, &b],
        ));
    }

    for &(m, n) in &[(4usize, 5usize), (64, 784)] {
        let (a, b) = (any::<T>(&[m], 700), any::<T>(&[n], 701));
        cases.push(case(format!("outer {m} x {n}"), op(|v| vec![v[0].outer(v[1])]), &[&a, &b]));
        let w = away_from_zero::<T>(&[m, n], 702);
        let on = format!("on [{m}, {n}]");
        cases.push(case(format!("norm {on}"), op(|v| vec![v[0].norm()]), &[&w]));
        cases.push(case(format!("frobenius_norm {on}"), op(|v| vec![v[0].frobenius_norm()]), &[&w]));
        cases.push(case(format!("row_norms {on}"), op(|v| vec![v[0].row_norms()]), &[&w]));
        cases.push(case(format!("column {on}"), op(|v| vec![v[0].column(0)]), &[&w]));
        cases.push(case(format!("row {on}"), op(move |v| vec![v[0].row(m - 1)]), &[&w]));
    }

    // The contractive penalty's sum of squares of outer products: small,
    // cae_mnist's shape (64 rows of 128 and 784) and rows longer than one
    // chunk of the kernel on both sides.
    for &(h, m, k) in &[(3usize, 4usize, 5usize), (64, 128, 784), (5, 700, 1100)] {
        let (d, b) = (any::<T>(&[h, m], 720), any::<T>(&[h, k], 721));
        cases.push(case(
            format!("outer_sum_squares [{h}, {m}] [{h}, {k}]"),
            op(|v| vec![v[0].outer_sum_squares(v[1], T::of(0.25))]),
            &[&d, &b],
        ));
    }

    // A unary op's rule as a create_graph sweep records it: one formula
    // node `f(g, x)` (Op::Formula); the recorded and double sweeps run its
    // rule (the formula again for g, the `<name>_dx` kernels for x).
    type Unary<T> = for<'t> fn(Var<'t, T>) -> Var<'t, T>;
    let unary: [(&str, Unary<T>, bool); 10] = [
        ("sigmoid_grad", |x| x.sigmoid(), false),
        ("tanh_grad", |x| x.tanh(), false),
        ("relu_grad", |x| x.relu(), false),
        ("softplus_grad", |x| x.softplus(), false),
        ("abs_grad", |x| x.abs(), false),
        ("clamp_grad", |x| x.clamp(T::of(-2.0), T::of(0.1)), false),
        ("square_grad", |x| x.square(), false),
        ("sqrt_grad", |x| x.sqrt(), true),
        ("pow_grad", |x| x.powf(T::of(2.5)), true),
        ("sum_squares_grad", |x| x.sum_squares(), false),
    ];
    for (name, f, positive_only) in unary {
        // sum_squares's node takes its gradient as one number: its double
        // backward sums over the whole input (in f32 to 1e-5 only when short).
        let shape = if name == "sum_squares_grad" { [4usize, 5] } else { [3, 1025] };
        let x = if positive_only { positive::<T>(&shape, 710) } else { away_from_zero::<T>(&shape, 710) };
        let g = any::<T>(&shape, 711);
        let node = op(move |v| {
            let y = f(v[1]);
            let loss = if y.shape().is_empty() { y * v[0].sum() } else { (y * v[0]).sum() };
            grad(&[loss], &[v[1]], None, true)
        });
        cases.push(case(format!("{name} node on {shape:?}"), node, &[&g, &x]));
    }
    cases
}

/// Everything one device computes for an op case, copied to the host.
struct Results<T: Element> {
    values: Vec<Tensor<T>>,
    plain: Vec<Tensor<T>>,
    recorded: Vec<Tensor<T>>,
    double: Vec<Tensor<T>>,
}

/// Runs `f` on `inputs` (on their device): its values, the plain backward
/// sweep and the recorded one with `seeds` as `grad_outputs`, and the
/// gradient of `sum_i <recorded_i, dirs_i>` (a double backward).
fn run_op<T: Element>(
    f: &Func<T>,
    inputs: &[Tensor<T>],
    seeds: &[Tensor<T>],
    dirs: &[Tensor<T>],
) -> Results<T> {
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    let outs = f(&vars);
    let values = outs.iter().map(|o| o.value().to_cpu()).collect();
    let plain = grad_values(&outs, &vars, Some(seeds)).iter().map(Tensor::to_cpu).collect();
    let seed_vars: Vec<_> = seeds.iter().map(|s| tape.constant(s)).collect();
    let grads = grad(&outs, &vars, Some(&seed_vars), true);
    let recorded = grads.iter().map(|g| g.value().to_cpu()).collect();
    let inner = grads
        .iter()
        .zip(dirs)
        .map(|(g, d)| (*g * tape.constant(d)).sum())
        .reduce(|a, b| a + b)
        .expect("every op case has an input");
    let double = grad(&[inner], &vars, None, false).iter().map(|g| g.value().to_cpu()).collect();
    Results { values, plain, recorded, double }
}

/// Runs every op case on the CPU and on `device` and compares all four
/// results; returns the number of cases. Panics naming the first op,
/// result and tensor that differ.
pub(super) fn ops_match_the_cpu<T: Precision>(device: Device) -> usize {
    let cases = op_cases::<T>();
    for (k, c) in cases.iter().enumerate() {
        let out_shapes: Vec<Vec<usize>> = {
            let tape = Tape::new();
            let vars: Vec<_> = c.inputs.iter().map(|x| tape.param(x)).collect();
            (c.f)(&vars).iter().map(|o| o.shape().to_vec()).collect()
        };
        let seeds: Vec<Tensor<T>> =
            out_shapes.iter().enumerate().map(|(i, s)| any(s, 9000 + 10 * k as u64 + i as u64)).collect();
        let dirs: Vec<Tensor<T>> = c
            .inputs
            .iter()
            .enumerate()
            .map(|(i, x)| any(x.shape(), 7000 + 10 * k as u64 + i as u64))
            .collect();
        let cpu = run_op(&c.f, &c.inputs, &seeds, &dirs);
        let moved = |ts: &[Tensor<T>]| -> Vec<Tensor<T>> { ts.iter().map(|t| t.to(device)).collect() };
        let there = run_op(&c.f, &moved(&c.inputs), &moved(&seeds), &moved(&dirs));
        let pairs = [
            ("forward", &there.values, &cpu.values),
            ("plain backward", &there.plain, &cpu.plain),
            ("create_graph backward", &there.recorded, &cpu.recorded),
            ("double backward", &there.double, &cpu.double),
        ];
        for (what, got, want) in pairs {
            assert_eq!(got.len(), want.len(), "{} {}: {what}: result count", T::NAME, c.name);
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let name = format!("{} {}: {what} #{i} on {device}", T::NAME, c.name);
                check_close(&name, g, w, T::TOL).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    cases.len()
}

#[test]
fn every_op_forward_and_backward_matches_the_cpu_in_f32() {
    let Some(device) = gpu() else { return };
    let n = ops_match_the_cpu::<f32>(device);
    println!("{n} op cases agree in f32");
}

#[test]
fn every_op_forward_and_backward_matches_the_cpu_in_f64() {
    let Some(device) = gpu() else { return };
    let n = ops_match_the_cpu::<f64>(device);
    println!("{n} op cases agree in f64");
}

/// Every op the engine has (every `OpKind`) is recorded by some case of
/// [`op_cases`], so the parity suite runs it on the device. A new op fails
/// here until it has a case. Runs on every machine (it only records).
#[test]
fn every_op_has_a_parity_case() {
    let mut covered: Vec<gradtape::OpKind> = Vec::new();
    for case in op_cases::<f64>() {
        let tape = Tape::new();
        let vars: Vec<Var<'_, f64>> = case.inputs.iter().map(|x| tape.param(x)).collect();
        (case.f)(&vars);
        covered.extend(tape.op_kinds());
    }
    let missing: Vec<gradtape::OpKind> =
        gradtape::OpKind::all().filter(|kind| !covered.contains(kind)).collect();
    assert!(missing.is_empty(), "ops with no case in op_cases (verify/tests/suite/gpu/ops.rs): {missing:?}");
}
