//! Fused ops: several plain ops recorded as one node, computed in one pass.
//!
//! Read the plain rules first (`unary.rs`, `arith.rs`, `shape.rs`): a fused
//! op is only a faster way to compute what they compute. Each one here is
//! shown as the composition of plain ops it replaces, and a test
//! (`verify/tests/suite/fused.rs`) checks it against that composition.
//!
//! - `z.bias_act(b, act)` = `act(z + b)`: a linear layer's bias and
//!   activation (`act` one of identity, `relu`, `sigmoid`, `tanh`; `b` a
//!   vector as long as `z`'s last axis). One pass forward instead of two.
//!   Its rule is, in plain rules,
//!
//!   ```text
//!   dz = g * act'(y)            act'(y): step(y), y (1 - y), 1 - y^2, or 1
//!   db = sum_to(dz, b.shape)    the broadcast of b, undone
//!   ```
//!
//!   which a plain backward pass does in one pass too
//!   (`Tensor::bias_act_grad`), and a recorded one records as those plain
//!   ops (`Algebra::bias_act_grad`), so double backward, the contractive
//!   penalty and `gradgradcheck` see ordinary nodes.
//!
//! - `x.linear_act(W, b, act)` = `x.matmul_t(W, false, true).bias_act(b,
//!   act)`: a whole linear layer, `act(x W^T + b)` (`x` `[rows, in]`, `W`
//!   `[out, in]`, `b` `[out]`). For identity and ReLU it is one node
//!   (`Op::Linear`), because a GPU can do it in one call: cuBLASLt's
//!   epilogues add the bias and apply ReLU as the product is written
//!   (`gradtape_kernels::cuda::lt`). Sigmoid and tanh have no epilogue and
//!   record the product and `bias_act`. Its rule is the plain rules of the
//!   two, in their order,
//!
//!   ```text
//!   dz = g * act'(y),  db = sum_to(dz, [out])     bias_act's rule
//!   dx = dz W,         dW = dz^T x                matmul's rules
//!   ```
//!
//!   where, with no activation (`dz = g`), `dW` and `db` come from one call
//!   (`Algebra::linear_weight_bias_grad`; on a GPU the product's BGRADB
//!   epilogue sums the bias gradient while it makes `dW`). Across two
//!   layers, where a ReLU layer's output feeds one product alone, that
//!   product's rule makes `dz W * step(z)` and its row sums, the ReLU
//!   layer's own `dz` and `db`, in one call (`ReluThrough`: on a GPU
//!   cuBLASLt's DRELU_BGRAD, reading the ReLU's mask that the forward
//!   kept), and the ReLU layer's rule takes them as they are.
//!
//! - `mu.reparameterize(logvar, eps)` = `mu + (logvar * 0.5).exp() * eps`:
//!   the variational autoencoder's sample, one pass instead of four. Its
//!   rule is `dmu = g` and `dlogvar = g * eps * exp(logvar * 0.5) * 0.5`
//!   (the plain rules of `mul`, `exp` and `mul_scalar`, in their order), in
//!   one pass (`Tensor::reparameterize_grad`), or those ops when recorded.
//!
//! - `a.loss_sum(b, term, scale)` = `scale * sum_i term(a_i, b_i)`: a loss
//!   over a batch, one number, in one pass (one reduction on a GPU) instead
//!   of one pass per plain op. The terms (`LossTerm`) are the ones
//!   `gradtape_models::losses` writes in plain ops:
//!
//!   ```text
//!   SquaredError         (a - b)^2                          = ((a - b).square())
//!   BinaryCrossEntropy   -(L(1 - a) + b (L(a) - L(1 - a)))  L(x) = x.clamp(e^-101, inf).log().clamp(-100, inf)
//!   GaussianKl           -(1 + b - a^2 - e^b) / 2           = (b.add_scalar(1) - a.square() - b.exp()) * -0.5
//!   ```
//!
//!   so `mse(p, t, Mean)` is `p.loss_sum(t, SquaredError, 1/n)`, where the
//!   plain ops take `(p - t).sum_squares().div_scalar(n)`. Its rule is
//!
//!   ```text
//!   da = g scale dterm/da(a, b)      2 (a - b),  (1 - b) L'(1 - a) - b L'(a),  a
//!   db = g scale dterm/db(a, b)     -2 (a - b),  L(1 - a) - L(a),             (e^b - 1) / 2
//!   ```
//!
//!   with `L'(x) = 1/x` where `L(x) > -100` (`x > e^-100`), else 0: one pass for each
//!   gradient asked for (`Tensor::loss_sum_grad`), or those formulas in
//!   plain ops when recorded (`Algebra::loss_sum_grad`).
//!
//! - `a.add_scaled(b, s)` = `a + b * s`: a loss and its weighted penalty
//!   (`mse + lambda * code_l2`), two tensors of one shape, in one pass
//!   instead of two (the `mul_scalar` and the `add`). Its rule is the two
//!   plain rules, `da = g` and `db = g s`. On a GPU the second is no
//!   launch when `g` is the sweep's seed: a shared constant times a number
//!   is a constant the host knows (`gradtape_kernels::cuda::ops::full`).
//!
//! - `x.norm()` = `x.sum_squares().sqrt()`: the L2 norm of a whole tensor
//!   (`ops/norm.rs` records it), one reduction whose last step takes the
//!   root (on a GPU one launch fewer). Its rule is the two plain rules in
//!   their order, `dx = 2 x (g / y * 0.5)`, in one pass that reads `g` and
//!   `y` where they are (`Tensor::norm_grad`; on a GPU one launch where the
//!   plain rules take three, with the broadcast of `g`), or those two rules
//!   recorded (`Algebra::norm_grad`).
//!
//! - `d.outer_sum_squares(b, scale)` = `(d.square().sum_axis(1) *
//!   b.square().sum_axis(1)).sum() * scale`: the sum of the squares of the
//!   `H` outer products `d[l] b[l]^T` (`d` `[H, m]`, `b` `[H, K]`), which
//!   is `||J||_F^2` for the contractive penalty's Jacobian rows kept as
//!   factors (`JacobianRows::sum_squares`), with the mean over the batch as
//!   its `scale`. One reduction (on a GPU three launches where the plain
//!   ops take nine) that keeps the two row sums `sd`, `sb` for its rule,
//!
//!   ```text
//!   dd[l, i] = g scale sb[l] d[l, i] 2      db[l, c] = g scale sd[l] b[l, c] 2
//!   ```
//!
//!   one pass per factor (`Tensor::outer_sum_squares_grad`), or the plain
//!   rules recorded, the sums made again from the factors
//!   (`Algebra::outer_sum_squares_grad`).
//!
//! - A recorded rule, one node. A `create_graph` sweep records each unary
//!   op's rule, `g * h(x)` (`sigmoid_grad`: `g * (s * (1 - s))`), as one
//!   node `Op::Formula` (`Algebra::fused` on variables), where the plain ops
//!   of the formula are four nodes and four passes, and four more for
//!   their own rules. Its rule is
//!
//!   ```text
//!   dg = G h(x)          the formula itself (it is linear in g)
//!   dx = G g h'(x)       a = G g, then h'(x) as the formula's recorded ops
//!                        would give it: sigmoid a (1 - s) - a s, tanh a t -2, ...
//!   ```
//!
//!   (`formula_grad` below; the table of `h'` is at
//!   `gradtape_kernels::Formula::dx`), one pass each (`Tensor::formula_dx`;
//!   on a GPU the `<name>_dx` kernels), or, recorded again for a third
//!   derivative, the ops of `Algebra::formula_dx`. The masks (abs, relu,
//!   clamp) have no `dx`: zero almost everywhere, as their recorded
//!   constants are.
//!
//! [`without_fusion`] turns all of this off on the calling thread: each
//! fused op then records the plain ops of its composition, and the backward
//! sweep adds every gradient with its own `add` (no product adds into a
//! gradient summed so far). A model trained that way is the unfused path
//! the fused one is checked against (to 1e-6 relative after an epoch, in
//! f64: `verify/tests/suite/fused.rs`), and its tape reads op by op.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::ops::{matmul, unary};
use crate::tape::Var;
use gradtape_kernels::{Act, Element, Formula, LossTerm, Tensor};
use std::cell::Cell;

thread_local! {
    /// Whether fused ops are recorded as fused nodes on this thread.
    static FUSION: Cell<bool> = const { Cell::new(true) };
}

/// Whether this thread records fused ops as one node each (the default), or
/// the plain ops they replace (inside [`without_fusion`]).
pub fn fusion_enabled() -> bool {
    FUSION.with(Cell::get)
}

/// Runs `f` with fusion off on the calling thread: `bias_act`,
/// `linear_act`, `reparameterize`, `add_scaled`, `loss_sum`, `norm`, `outer_sum_squares` and a
/// recorded rule's formula record the plain ops of their compositions (see
/// this module's doc), and a backward sweep adds each gradient that
/// reaches a node through a matrix product with an `add` of its own. The same numbers up to rounding, more nodes and more passes:
/// for checking a fused result, or reading a graph op by op. Fusion is
/// back on when `f` returns or panics.
pub fn without_fusion<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FUSION.with(|on| on.set(self.0));
        }
    }
    let _restore = Restore(FUSION.with(|on| on.replace(false)));
    f()
}

impl<'t, T: Element> Var<'t, T> {
    /// `act(self + b)` in one pass, `b` a vector as long as `self`'s last
    /// axis: the same value as `(self + b)` followed by the activation
    /// (`.relu()`, `.sigmoid()`, `.tanh()`), recorded as one node.
    #[track_caller]
    pub fn bias_act(self, b: Var<'t, T>, act: Act) -> Var<'t, T> {
        self.same_tape(&b, "bias_act");
        if !fusion_enabled() {
            let pre = self + b;
            return match act {
                Act::Identity => pre,
                Act::Relu => pre.relu(),
                Act::Sigmoid => pre.sigmoid(),
                Act::Tanh => pre.tanh(),
            };
        }
        let v = self.value().bias_act(&b.value(), act);
        self.record(v, Op::BiasAct { z: self.id, b: b.id, act })
    }

    /// `act(self W^T + b)`, a whole linear layer: `self` `[rows, in]`, `w`
    /// `[out, in]` (PyTorch's layout), `b` `[out]`. The same value as
    /// `self.matmul_t(w, false, true).bias_act(b, act)`. With identity or
    /// ReLU it is one node, whose product adds the bias and applies the
    /// ReLU as it is written on a GPU (cuBLASLt's epilogues; see
    /// `Tensor::linear_act`); sigmoid and tanh have no such epilogue, and
    /// record the product and `bias_act` (two nodes, which the Jacobian's
    /// structured sweep reads through), as does an input of another rank.
    /// So does ReLU in anomaly mode: the epilogue writes 0 for a NaN before
    /// the ReLU, where the `relu` op lets it through for the check to see.
    #[track_caller]
    pub fn linear_act(self, w: Var<'t, T>, b: Var<'t, T>, act: Act) -> Var<'t, T> {
        self.same_tape(&w, "linear_act");
        self.same_tape(&b, "linear_act");
        let has_epilogue = match act {
            Act::Identity => true,
            Act::Relu => !self.tape.anomaly_detection(),
            Act::Sigmoid | Act::Tanh => false,
        };
        if !fusion_enabled() || !has_epilogue || self.shape().len() != 2 {
            return self.matmul_t(w, false, true).bias_act(b, act);
        }
        let (v, mask) = self.value().linear_act_with_mask(&w.value(), &b.value(), act);
        let mask = mask.map(|m| self.tape.constant(&m).id);
        self.record(v, Op::Linear { x: self.id, w: w.id, b: b.id, act, mask })
    }

    /// A Gaussian sample by reparameterisation, `self + exp(logvar / 2) *
    /// eps` (`self` the mean, `eps` drawn from `N(0, 1)`), in one pass: the
    /// same numbers as `self + (logvar * 0.5).exp() * eps` in plain ops,
    /// recorded as one node. `eps` is recorded as a constant (no gradient
    /// flows to it). All three must have one shape.
    #[track_caller]
    pub fn reparameterize(self, logvar: Var<'t, T>, eps: &Tensor<T>) -> Var<'t, T> {
        self.same_tape(&logvar, "reparameterize");
        let eps = self.tape.constant(eps);
        if !fusion_enabled() {
            return self + (logvar * T::of(0.5)).exp() * eps;
        }
        let v = self.value().reparameterize(&logvar.value(), &eps.value());
        self.record(v, Op::Reparameterize { mu: self.id, logvar: logvar.id, eps: eps.id })
    }

    /// `self + b * s` in one pass, as one node: the same value as
    /// `self + b * s` in plain ops (a `mul_scalar` and an `add`, two
    /// nodes), for two tensors of one shape, as a loss and its weighted
    /// penalty are.
    /// Panics, at the caller, unless the shapes are equal (the plain ops
    /// broadcast; this one does not).
    #[track_caller]
    pub fn add_scaled(self, b: Var<'t, T>, s: T) -> Var<'t, T> {
        self.same_tape(&b, "add_scaled");
        if !fusion_enabled() {
            let (sa, sb) = (self.shape(), b.shape());
            assert!(sa == sb, "add_scaled: shapes {sa:?} and {sb:?} differ (it does not broadcast)");
            return self + b * s;
        }
        let v = self.value().add_scaled(&b.value(), s);
        self.record(v, Op::AddScaled { a: self.id, b: b.id, s })
    }

    /// `scale * sum_l (sum_i self[l,i]^2) (sum_c b[l,c]^2)` as one node:
    /// the sum of the squares of every entry of the `H` outer products
    /// `self[l] b[l]^T` (`self` `[H, m]`, `b` `[H, K]`), without the
    /// `H m K` products (the contractive penalty's Jacobian rows, kept as
    /// factors by `jacobian_rows_factored`). The same value as
    /// `(self.square().sum_axis(1) * b.square().sum_axis(1)).sum() * scale`
    /// up to the order of the sums. Panics, at the caller, unless both are
    /// matrices with one row per product.
    #[track_caller]
    pub fn outer_sum_squares(self, b: Var<'t, T>, scale: T) -> Var<'t, T> {
        self.same_tape(&b, "outer_sum_squares");
        if !fusion_enabled() {
            let sums = (self.square().sum_axis(1, false) * b.square().sum_axis(1, false)).sum();
            return if scale == T::one() { sums } else { sums * scale };
        }
        let [v, d_rows, b_rows] = self.value().outer_sum_squares(&b.value(), scale);
        let (d_rows, b_rows) = (self.tape.constant(&d_rows), self.tape.constant(&b_rows));
        self.record(
            v,
            Op::OuterSumSquares { d: self.id, b: b.id, scale, d_rows: d_rows.id, b_rows: b_rows.id },
        )
    }

    /// `scale * sum_i term(self_i, b_i)` in one pass, as a 0-d node: a loss
    /// over a batch (`self` the prediction or the mean, `b` the target or
    /// the log-variance; see [`LossTerm`]). The same value as the plain ops
    /// of the module doc, recorded as one node. Panics, at the caller,
    /// unless the shapes are equal (a loss never broadcasts).
    #[track_caller]
    pub fn loss_sum(self, b: Var<'t, T>, term: LossTerm, scale: T) -> Var<'t, T> {
        self.same_tape(&b, "loss_sum");
        if !fusion_enabled() {
            return loss_sum_in_plain_ops(self, b, term, scale);
        }
        let v = self.value().loss_sum(&b.value(), term, scale);
        self.record(v, Op::LossSum { a: self.id, b: b.id, term, scale })
    }
}

/// `scale * sum_i term(a_i, b_i)` in the plain ops of the module doc (what
/// `loss_sum` records without fusion).
#[track_caller]
fn loss_sum_in_plain_ops<'t, T: Element>(
    a: Var<'t, T>,
    b: Var<'t, T>,
    term: LossTerm,
    scale: T,
) -> Var<'t, T> {
    let (ga, gb) = (a.shape(), b.shape());
    assert!(ga == gb, "loss_sum: shapes {ga:?} and {gb:?} differ (a loss never broadcasts)");
    let one = T::one();
    let sum = match term {
        LossTerm::SquaredError => (a - b).sum_squares(),
        LossTerm::BinaryCrossEntropy => {
            let (floor, inf) = (gradtape_kernels::fused::log_floor::<T>(), T::infinity());
            let clamped_log = |x: Var<'t, T>| x.clamp(floor, inf).log().clamp(T::of(-100.0), inf);
            let (log_a, log_1ma) = (clamped_log(a), clamped_log(a.rsub_scalar(one)));
            (log_1ma + b * (log_a - log_1ma)).sum().neg()
        }
        LossTerm::GaussianKl => (b.add_scalar(one) - a.square() - b.exp()).sum() * T::of(-0.5),
    };
    sum * scale
}

// ---- backward rules -------------------------------------------------------

/// y = act(z + b):
/// dz = g * act'(y) (step(y), y (1 - y), 1 - y^2, or 1: from the output, as
/// the plain rules of relu, sigmoid and tanh), db = sum_to(dz, b.shape).
/// Both in one call, since db is made from dz.
pub(crate) fn bias_act_grad<T: Element, A: Algebra<T>>(
    g: &A,
    y: &A,
    act: Act,
    z: usize,
    b: usize,
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    let (need_z, need_b) = (need(z), need(b));
    if !need_z && !need_b {
        return [None, None];
    }
    let (dz, db) = act_grad(g, y, act, need_b);
    [need_z.then_some((z, dz)), db.map(|db| (b, db))]
}

/// `dz = g * act'(y)`, and with `need_b` also `db = sum_to(dz, b.shape)`
/// (one pass for both: `Algebra::bias_act_grad`). Without the bias (as in
/// the rows of an input Jacobian), dz alone: the activation's own plain
/// rule, written in its output.
fn act_grad<T: Element, A: Algebra<T>>(g: &A, y: &A, act: Act, need_b: bool) -> (A, Option<A>) {
    if !need_b {
        let dz = match act {
            Act::Identity => g.clone(),
            Act::Relu => unary::relu_grad(g, y),
            Act::Sigmoid => unary::sigmoid_grad(g, y),
            Act::Tanh => unary::tanh_grad(g, y),
        };
        return (dz, None);
    }
    let bias_len = y.shape()[y.shape().len() - 1];
    let (dz, db) = g.bias_act_grad(y, act, bias_len);
    (dz, Some(db))
}

/// y = act(x W^T + b), z = x W^T + b:
/// dz = g * act'(y), db = sum_to(dz, [out])    (bias_act's rule)
/// dx = dz W, dW = dz^T x                      (matmul's rules)
///
/// With no activation (identity), `dz` is `g` and `dW` and `db` come from
/// one call (`Algebra::linear_weight_bias_grad`: on a GPU the product's
/// epilogue sums the bias gradient), unless the sweep has already summed a
/// gradient for `W` (a weight used twice), which the product then adds to
/// (`sum_so_far`, as for any matrix product).
///
/// Across layers (`ReluThrough`): where `x` is a ReLU layer's output used
/// here alone, `dx` goes through that layer's ReLU in the same product,
/// `dz_x = (dz W) * step(z_x)`, with its bias gradient beside it
/// (`Algebra::linear_input_grad_through_relu`; one call on a GPU), and the
/// sweep hands both to that layer's rule, which then has its `dz` and `db`
/// without a pass of its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_grad<T: Element, A: Algebra<T>>(
    g: &A,
    y: &A,
    [x, w]: [&A; 2],
    act: Act,
    [out, xi, wi, bi]: [usize; 4],
    need: &dyn Fn(usize) -> bool,
    sum_so_far: &dyn Fn(usize) -> Option<A>,
    relu: &ReluThrough<'_, A>,
) -> [Option<(usize, A)>; 3] {
    let (need_x, need_w, need_b) = (need(xi), need(wi), need(bi));
    let through_relu = (relu.take)(out);
    if !need_x && !need_w && !need_b {
        return [None, None, None];
    }
    let w_so_far = if need_w { sum_so_far(wi) } else { None };
    let (dz, dw, db) = if let Some(db) = through_relu {
        // The next layer's product already applied this layer's ReLU.
        let dw = need_w.then(|| matmul::matmul_grad_rhs(g, x, false, true, w_so_far));
        (g.clone(), dw, need_b.then_some(db))
    } else if act == Act::Identity && need_w && need_b && w_so_far.is_none() {
        let (dw, db) = g.linear_weight_bias_grad(x);
        (g.clone(), Some(dw), Some(db))
    } else {
        let (dz, db) = act_grad(g, y, act, need_b);
        let dw = need_w.then(|| matmul::matmul_grad_rhs(&dz, x, false, true, w_so_far));
        (dz, dw, db)
    };
    let dx = need_x.then(|| product_into(&dz, w, xi, sum_so_far, relu));
    [dx.map(|d| (xi, d)), dw.map(|d| (wi, d)), db.map(|d| (bi, d))]
}

/// `dz W`, the gradient of the input `xi` of `z = x W^T` (a linear layer's
/// product), through `xi`'s own ReLU where the sweep allows (`ReluThrough`),
/// else as `matmul`'s rule.
pub(crate) fn product_into<T: Element, A: Algebra<T>>(
    dz: &A,
    w: &A,
    xi: usize,
    sum_so_far: &dyn Fn(usize) -> Option<A>,
    relu: &ReluThrough<'_, A>,
) -> A {
    if let Some(mask) = (relu.mask)(xi) {
        if let Some((dz_x, db_x)) = dz.linear_input_grad_through_relu(w, &mask) {
            (relu.deliver)(xi, db_x);
            return dz_x;
        }
    }
    matmul::matmul_grad_lhs(dz, w, false, true, sum_so_far(xi))
}

/// What a backward sweep offers a linear layer's rule across layers: a ReLU
/// layer's output `x` used by one product alone can get the gradient of its
/// pre-activation from that product directly (on a GPU, cuBLASLt's
/// DRELU_BGRAD epilogue applies the ReLU's derivative and sums the bias
/// gradient as it writes `dz W`), where the product would make `dL/dx` and
/// the ReLU layer's rule would make `dz` and `db` from it in a pass of its
/// own.
pub(crate) struct ReluThrough<'a, A> {
    /// The ReLU mask of node `x`'s layer, where its gradient may come as its
    /// pre-activation's: `x` a ReLU `linear_act` with a mask, its one use
    /// the asking product, and not an input or output of the sweep.
    pub(crate) mask: &'a dyn Fn(usize) -> Option<A>,
    /// Hands the sweep that layer's bias gradient, made with its
    /// pre-activation's.
    pub(crate) deliver: &'a dyn Fn(usize, A),
    /// Takes a layer's bias gradient if its gradient came as its
    /// pre-activation's (the layer's own rule asks).
    pub(crate) take: &'a dyn Fn(usize) -> Option<A>,
}

impl<'a, A: 'a> ReluThrough<'a, A> {
    /// Never: for sweeps that do not track uses (the Jacobian's).
    pub(crate) fn never() -> ReluThrough<'a, A> {
        ReluThrough { mask: &|_| None, deliver: &|_, _| {}, take: &|_| None }
    }
}

/// y = scale sum_l sd[l] sb[l], sd[l] = sum_i d[l,i]^2, sb[l] = sum_c b[l,c]^2:
/// dd[l,i] = g scale sb[l] 2 d[l,i], db[l,c] = g scale sd[l] 2 b[l,c]
/// (`rows` the two sums the forward kept).
pub(crate) fn outer_sum_squares_grad<T: Element, A: Algebra<T>>(
    g: &A,
    [d, b]: [&A; 2],
    [d_rows, b_rows]: [&A; 2],
    scale: T,
    [di, bi]: [usize; 2],
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    [
        need(di).then(|| (di, g.outer_sum_squares_grad(d, b, b_rows, scale))),
        need(bi).then(|| (bi, g.outer_sum_squares_grad(b, d, d_rows, scale))),
    ]
}

/// out = f(g, x) = g h(x), a backward formula recorded as one node:
/// dg = f(G, x) (the formula itself: it is linear in g), dx = G g h'(x)
/// (`Algebra::formula_dx`; none for a mask), each summed back to its
/// input's shape where the formula broadcast it (a sum's one-number g).
pub(crate) fn formula_grad<T: Element, A: Algebra<T>>(
    big_g: &A,
    g: &A,
    x: &A,
    formula: Formula<T>,
    [gi, xi]: [usize; 2],
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    let fit = |d: A, like: &A| if d.shape() == like.shape() { d } else { d.sum_to(&like.shape()) };
    let dg = need(gi).then(|| (gi, fit(unary::formula(big_g, x, formula), g)));
    let dx = if need(xi) { big_g.formula_dx(g, x, formula).map(|d| (xi, fit(d, x))) } else { None };
    [dg, dx]
}

/// y = a + b s:
/// da = g, db = g s (the plain rules of `add` and `mul_scalar`).
pub(crate) fn add_scaled_grad<T: Element, A: Algebra<T>>(
    g: &A,
    s: T,
    [a, b]: [usize; 2],
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    [need(a).then(|| (a, g.clone())), need(b).then(|| (b, g.scale(s)))]
}

/// z = mu + exp(logvar / 2) eps:
/// dmu = g, dlogvar = g eps exp(logvar / 2) / 2 (eps is a constant).
pub(crate) fn reparameterize_grad<T: Element, A: Algebra<T>>(
    g: &A,
    logvar: &A,
    eps: &A,
    [mu, lv]: [usize; 2],
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    [need(mu).then(|| (mu, g.clone())), need(lv).then(|| (lv, g.reparameterize_grad(logvar, eps)))]
}

/// y = scale * sum_i term(a_i, b_i):
/// da = g scale dterm/da, db = g scale dterm/db (the formulas are in the
/// module doc), for the inputs that lead to an input of interest.
pub(crate) fn loss_sum_grad<T: Element, A: Algebra<T>>(
    g: &A,
    a: &A,
    b: &A,
    term: LossTerm,
    scale: T,
    [ia, ib]: [usize; 2],
    need: &dyn Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    let [da, db] = g.loss_sum_grad(a, b, term, scale, [need(ia), need(ib)]);
    [da.map(|d| (ia, d)), db.map(|d| (ib, d))]
}

/// `loss_sum`'s rule in plain ops (`Algebra::loss_sum_grad`'s default,
/// which variables record, so a loss can be differentiated twice):
///
/// ```text
/// SquaredError         da = 2 g scale (a - b)                     db = -da
/// BinaryCrossEntropy   da = g scale ((1 - b) L'(1 - a) - b L'(a))  db = g scale (L(1 - a) - L(a))
/// GaussianKl           da = g scale a                             db = g scale (e^b - 1) / 2
/// ```
///
/// with `L(x) = max(ln max(x, e^-101), -100)` and `L'(x) = [x > e^-100] /
/// max(x, e^-101)` (where `L(x) > -100`), the mask recorded as a constant as
/// every mask is.
pub(crate) fn loss_sum_grad_in_plain_ops<T: Element, A: Algebra<T>>(
    g: &A,
    a: &A,
    b: &A,
    term: LossTerm,
    scale: T,
    want: [bool; 2],
) -> [Option<A>; 2] {
    let (one, two, half) = (T::one(), T::of(2.0), T::of(0.5));
    let c = g.scale(scale);
    match term {
        LossTerm::SquaredError => {
            // d/da (a - b)^2 = 2 (a - b) = -d/db
            let da = c.scale(two).mul(&a.sub(b));
            let db = want[1].then(|| da.neg());
            [want[0].then_some(da), db]
        }
        LossTerm::BinaryCrossEntropy => {
            // L(x) = max(ln max(x, e^-101), -100), L'(x) = [x > e^-100] / max(x, e^-101)
            let (floor, inf) = (gradtape_kernels::fused::log_floor::<T>(), T::infinity());
            let clamped_log = |x: &A| x.clamp(floor, inf).log().clamp(T::of(-100.0), inf);
            let slope_floor = gradtape_kernels::fused::slope_floor::<T>();
            let slope = |x: &A| x.inside(slope_floor, inf).div(&x.clamp(floor, inf));
            let one_minus_a = a.neg().add_scalar(one);
            // d/da = (1 - b) L'(1 - a) - b L'(a),  d/db = L(1 - a) - L(a)
            let da = want[0].then(|| {
                let from_1ma = b.neg().add_scalar(one).mul(&slope(&one_minus_a));
                c.mul(&from_1ma.sub(&b.mul(&slope(a))))
            });
            [da, want[1].then(|| c.mul(&clamped_log(&one_minus_a).sub(&clamped_log(a))))]
        }
        LossTerm::GaussianKl => {
            // d/da -(1 + b - a^2 - e^b)/2 = a,  d/db = (e^b - 1)/2
            [want[0].then(|| c.mul(a)), want[1].then(|| c.mul(&b.exp().add_scalar(-one).scale(half)))]
        }
    }
}
