//! The vocabulary backward rules are written in, and why there are two
//! implementations of it.
//!
//! A backward rule turns the gradient of an op's output into gradients of its
//! inputs, e.g. for `y = exp(x)`: `dx = g * y`. That little formula can be
//! evaluated two ways:
//!
//! - on plain [`Tensor`]s: fast, and nothing is recorded. This is the
//!   ordinary backward pass (`create_graph = false`).
//! - on [`Var`]s: every multiplication in the rule is itself recorded on the
//!   tape, so the gradient is a differentiable function of the inputs and can
//!   be differentiated again. This is `create_graph = true`, and it is the
//!   whole trick behind gradients of gradients (the contractive
//!   autoencoder's Jacobian penalty, Hessian-vector products, gradgradcheck).
//!
//! The [`Algebra`] trait lists the operations rules may use, and each rule is
//! written once, generically, against it. Engines that compute backward on
//! raw numbers only (micrograd, minitorch) have just the first
//! implementation, and that is exactly why they cannot take second
//! derivatives.
//!
//! Masks (`step`, `sign`, `inside`, `max_mask`) are derivatives that are zero
//! almost everywhere; on the tape they are recorded as constants.

use crate::tape::Var;
use gradtape_kernels::{Act, Device, Element, Formula, LossTerm, Shape, Tensor};

/// Operations available to backward rules. Implemented eagerly by
/// [`Tensor`] and recordedly by [`Var`].
pub trait Algebra<T: Element>: Clone {
    /// Whether the operations are recorded on a tape ([`Var`]) or done on
    /// plain numbers ([`Tensor`]).
    const RECORDED: bool;
    /// The value's shape (behind the batch axes, in a batched sweep).
    fn shape(&self) -> Shape;
    /// Where the value is (constants a rule makes go there too).
    fn device(&self) -> Device;
    /// The value as a tensor (for anomaly mode's checks).
    fn to_tensor(&self) -> Tensor<T>;
    /// `self + o`, broadcasting.
    fn add(&self, o: &Self) -> Self;
    /// `self - o`, broadcasting.
    fn sub(&self, o: &Self) -> Self;
    /// `self * o`, elementwise, broadcasting.
    fn mul(&self, o: &Self) -> Self;
    /// `self / o`, elementwise, broadcasting.
    fn div(&self, o: &Self) -> Self;
    /// `-self`.
    fn neg(&self) -> Self;
    /// `self * s` for a constant `s`.
    fn scale(&self, s: T) -> Self;
    /// `self + s` for a constant `s`.
    fn add_scalar(&self, s: T) -> Self;
    /// `self^p` for a constant exponent.
    fn powf(&self, p: T) -> Self;
    /// The logistic function (softplus's derivative).
    fn sigmoid(&self) -> Self;
    /// `e^x`.
    fn exp(&self) -> Self;
    /// `ln x`.
    fn log(&self) -> Self;
    /// Clamped into `[lo, hi]`.
    fn clamp(&self, lo: T, hi: T) -> Self;
    /// The matrix product with either side transposed (`ta`, `tb`).
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self;
    /// The last two axes swapped.
    fn transpose(&self) -> Self;
    /// The same numbers in another shape.
    fn reshape(&self, shape: &[usize]) -> Self;
    /// Copied out along broadcast axes to `shape`.
    fn broadcast_to(&self, shape: &[usize]) -> Self;
    /// Summed down to `shape` (the adjoint of `broadcast_to`).
    fn sum_to(&self, shape: &[usize]) -> Self;
    /// The slice at `index` along `axis`, that axis removed.
    fn select(&self, axis: usize, index: usize) -> Self;
    /// Zeros of length `len` along a new `axis`, with `self` at `index` (the adjoint of `select`).
    fn unselect(&self, axis: usize, index: usize, len: usize) -> Self;
    /// `len` entries along `axis` from `start`.
    fn slice_axis(&self, axis: usize, start: usize, len: usize) -> Self;
    /// Zeros of length `total` along `axis`, with `self` from `start` (the adjoint of `slice_axis`).
    fn pad_axis(&self, axis: usize, start: usize, total: usize) -> Self;
    /// 1 where `x > 0`, else 0.
    fn step(&self) -> Self;
    /// The sign of `x` (0 at 0).
    fn sign(&self) -> Self;
    /// 1 where `lo < x < hi`, else 0.
    fn inside(&self, lo: T, hi: T) -> Self;
    /// One-hot at the (first) maximum, overall or along `axis`.
    fn max_mask(&self, axis: Option<usize>) -> Self;

    /// An elementwise formula of two values, given twice: as a function of
    /// numbers (`pointwise`, evaluated by tensors in one pass over memory)
    /// and as a composition of recorded ops (`recorded`, used by variables
    /// so the result can be differentiated again). The two operands
    /// broadcast against each other like any binary op: mostly they have
    /// one shape (a gradient and the value it flows through), but a
    /// reduction's rule passes its one-number gradient against the whole
    /// input. The two forms must agree, and each check proves one thing
    /// only:
    ///
    /// - gradcheck runs the plain sweep, so it proves `pointwise` right
    ///   (against finite differences of the forward op);
    /// - gradgradcheck differentiates the recorded sweep against finite
    ///   differences of the recorded sweep itself, so it proves that
    ///   `recorded` is differentiated correctly, *not* that it computes the
    ///   right value: a `recorded` off by a constant factor passes it;
    /// - `recorded_matches_plain` (gradtape-verify) runs both sweeps on the
    ///   same inputs and proves that `recorded` gives the value of
    ///   `pointwise`; the op tests run it on every op, and demand equal bits
    ///   where the two forms are the same formula in the same order, as
    ///   every rule written through this method is.
    ///
    /// `formula` names the same formula once more, for devices that cannot
    /// run a Rust closure: on a GPU, tensors run its kernel instead of
    /// `pointwise` (see `gradtape_kernels::formula`). Variables record it
    /// as one node of that name (`Op::Formula`, whose value is `pointwise`'s
    /// and whose rule is in `ops/fused.rs`), and record `recorded` only
    /// inside [`crate::without_fusion`]: there, the checks above hold
    /// `recorded` to `pointwise`, and `verify/tests/suite/fused.rs` holds
    /// the node to `recorded`.
    fn fused(
        &self,
        other: &Self,
        formula: Formula<T>,
        pointwise: impl Fn(T, T) -> T + Sync,
        recorded: impl FnOnce(&Self, &Self) -> Self,
    ) -> Self;

    /// The rule, for `x`, of a formula recorded as a node of its own
    /// (`Op::Formula`: `f(g, x) = g h(x)`, which a `create_graph` sweep
    /// records for a unary op's rule): from the gradient `self` (`G`) of
    /// that node, `G g h'(x)`, or `None` for a mask (abs, relu, clamp),
    /// whose derivative is zero almost everywhere. Written here as the
    /// derivative of the formula's recorded ops, in the order the sweep
    /// would take them (`a = G g` first; the table is at
    /// `gradtape_kernels::Formula::dx`), which variables record; tensors do
    /// it in one pass. The result has the broadcast shape of the three.
    fn formula_dx(&self, g: &Self, x: &Self, formula: Formula<T>) -> Option<Self> {
        let (one, two, half) = (T::one(), T::of(2.0), T::of(0.5));
        let a = self.mul(g);
        Some(match formula {
            Formula::PowGrad(p) => {
                let q = p - one;
                a.scale(p).mul(&x.powf(q - one).scale(q))
            }
            Formula::SqrtGrad => a.scale(half).div(&x.mul(x)).neg(),
            Formula::SquareGrad | Formula::SumSquaresGrad => a.scale(two),
            Formula::SigmoidGrad => a.mul(&x.neg().add_scalar(one)).sub(&a.mul(x)),
            Formula::TanhGrad => a.mul(x).scale(-two),
            Formula::SoftplusGrad => crate::ops::unary::sigmoid_grad(&a, &x.sigmoid()),
            Formula::AbsGrad | Formula::ReluGrad | Formula::ClampGrad(..) => return None,
        })
    }

    /// The rule of the fused op `outer_sum_squares` (`ops/fused.rs`) for
    /// one factor `x` (`[H, cols]`), from the gradient `self` (one number):
    /// `g scale r[l] x[l, i] 2`, `r` the other factor's row sums of squares.
    /// Written here as the plain rules it fuses, with `r` made again from
    /// `other` (so that it is differentiable), which variables record;
    /// tensors read the sums the forward kept (`other_rows`), in one pass.
    fn outer_sum_squares_grad(&self, x: &Self, other: &Self, other_rows: &Self, scale: T) -> Self {
        let _ = other_rows;
        let rows = other.mul(other).sum_to(&[other.shape()[0], 1]);
        self.scale(scale).mul(&rows).mul(x).scale(T::of(2.0))
    }

    /// `self + other`, reusing `self`'s storage where that is possible
    /// (gradient accumulation).
    fn accumulate(self, other: &Self) -> Self {
        self.add(other)
    }

    /// `acc + op(self) @ op(other)`, summed to `acc`'s shape: a gradient
    /// that reaches a node through a matrix product, added to the one
    /// already summed there. Written here as the product and the add, which
    /// variables record; tensors add inside the product (a BLAS's
    /// `beta = 1`), one pass over the output instead of two.
    fn matmul_t_add_to(&self, other: &Self, ta: bool, tb: bool, acc: Self) -> Self {
        product_then_add(self, other, ta, tb, acc)
    }

    /// `(self * other).sum_to(shape)`; tensors do it without writing the
    /// product out.
    fn mul_sum_to(&self, other: &Self, shape: &[usize]) -> Self {
        self.mul(other).sum_to(shape)
    }

    /// The rule of the fused op `bias_act` (`ops/fused.rs`): from the
    /// gradient `self` of `y = act(z + b)`, `(dz, db)`. Written here as the
    /// plain rules it fuses, which variables record; tensors do both in one
    /// pass.
    fn bias_act_grad(&self, y: &Self, act: Act, bias_len: usize) -> (Self, Self) {
        let one = T::one();
        let dz = match act {
            Act::Identity => self.clone(),
            Act::Relu => self.mul(&y.step()),
            Act::Sigmoid => self.mul(&y.mul(&y.neg().add_scalar(one))),
            Act::Tanh => self.mul(&y.mul(y).neg().add_scalar(one)),
        };
        let db = dz.sum_to(&[bias_len]);
        (dz, db)
    }

    /// A linear layer's weight and bias gradients (the fused op
    /// `linear_act`, `ops/fused.rs`), from the gradient `self` of its
    /// pre-activation `x W^T + b` and its input `x`: `dW = self^T x` and
    /// `db = sum_to(self, [out])`, the plain rules of `matmul` and the
    /// bias's broadcast, which variables record; tensors make both in one
    /// call on a GPU.
    fn linear_weight_bias_grad(&self, x: &Self) -> (Self, Self) {
        let out = self.shape()[self.shape().len() - 1];
        (self.matmul_t(x, true, false), self.sum_to(&[out]))
    }

    /// The gradient of a ReLU layer's pre-activation from the gradient
    /// `self` of the next layer's, through its weight `w` and the ReLU's
    /// `mask`, with its bias gradient: `((self w) * step(z), its row sums)`
    /// in one call, or `None` where that cannot be done (variables record
    /// the plain rules instead; tensors do it on a GPU, see
    /// `fused::ReluThrough`).
    fn linear_input_grad_through_relu(&self, _w: &Self, _mask: &Self) -> Option<(Self, Self)> {
        None
    }

    /// The rule of the fused op `reparameterize` (`ops/fused.rs`) for
    /// `logvar`, from the gradient `self` of `mu + exp(logvar / 2) * eps`:
    /// `g * eps * exp(logvar / 2) / 2`, the plain rules of `mul`, `exp` and
    /// `mul_scalar` in their order, which variables record; tensors do it in
    /// one pass.
    fn reparameterize_grad(&self, logvar: &Self, eps: &Self) -> Self {
        let half = T::of(0.5);
        self.mul(eps).mul(&logvar.scale(half).exp()).scale(half)
    }

    /// The rule of the fused op `norm` (`ops/fused.rs`), from the gradient
    /// `self` of `y = sqrt(sum x^2)`: `dx = 2 x (g / y * 0.5)`, the plain
    /// rules of `sqrt` and `sum_squares` in their order, which variables
    /// record; tensors do it in one pass.
    fn norm_grad(&self, y: &Self, x: &Self) -> Self {
        crate::ops::reduce::sum_squares_grad(&crate::ops::unary::sqrt_grad(self, y), x)
    }

    /// The rule of the fused loss `loss_sum` (`ops/fused.rs`): from the
    /// gradient `self` of `scale * sum_i term(a_i, b_i)` (one number), the
    /// gradients of `a` and `b` that `want` asks for. Written there as plain
    /// ops, which variables record; tensors do each in one pass.
    fn loss_sum_grad(
        &self,
        a: &Self,
        b: &Self,
        term: LossTerm,
        scale: T,
        want: [bool; 2],
    ) -> [Option<Self>; 2] {
        crate::ops::fused::loss_sum_grad_in_plain_ops(self, a, b, term, scale, want)
    }
}

impl<T: Element> Algebra<T> for Tensor<T> {
    const RECORDED: bool = false;
    fn shape(&self) -> Shape {
        self.dims()
    }
    fn device(&self) -> Device {
        Tensor::device(self)
    }
    fn to_tensor(&self) -> Tensor<T> {
        self.clone()
    }
    fn add(&self, o: &Self) -> Self {
        Tensor::add(self, o)
    }
    fn sub(&self, o: &Self) -> Self {
        Tensor::sub(self, o)
    }
    fn mul(&self, o: &Self) -> Self {
        Tensor::mul(self, o)
    }
    fn div(&self, o: &Self) -> Self {
        Tensor::div(self, o)
    }
    fn neg(&self) -> Self {
        Tensor::neg(self)
    }
    fn scale(&self, s: T) -> Self {
        self.mul_scalar(s)
    }
    fn add_scalar(&self, s: T) -> Self {
        Tensor::add_scalar(self, s)
    }
    fn powf(&self, p: T) -> Self {
        Tensor::powf(self, p)
    }
    fn sigmoid(&self) -> Self {
        Tensor::sigmoid(self)
    }
    fn exp(&self) -> Self {
        Tensor::exp(self)
    }
    fn log(&self) -> Self {
        Tensor::log(self)
    }
    fn clamp(&self, lo: T, hi: T) -> Self {
        Tensor::clamp(self, lo, hi)
    }
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self {
        Tensor::matmul_t(self, o, ta, tb)
    }
    fn transpose(&self) -> Self {
        Tensor::transpose(self)
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        Tensor::reshape(self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Tensor::broadcast_to(self, shape)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        Tensor::sum_to(self, shape)
    }
    fn select(&self, axis: usize, index: usize) -> Self {
        Tensor::select(self, axis, index)
    }
    fn unselect(&self, axis: usize, index: usize, len: usize) -> Self {
        Tensor::unselect(self, axis, index, len)
    }
    fn slice_axis(&self, axis: usize, start: usize, len: usize) -> Self {
        Tensor::slice_axis(self, axis, start, len)
    }
    fn pad_axis(&self, axis: usize, start: usize, total: usize) -> Self {
        Tensor::pad_axis(self, axis, start, total)
    }
    fn step(&self) -> Self {
        Tensor::step(self)
    }
    fn sign(&self) -> Self {
        Tensor::sign(self)
    }
    fn inside(&self, lo: T, hi: T) -> Self {
        self.inside_mask(lo, hi)
    }
    fn max_mask(&self, axis: Option<usize>) -> Self {
        Tensor::max_mask(self, axis)
    }
    fn fused(
        &self,
        other: &Self,
        formula: Formula<T>,
        pointwise: impl Fn(T, T) -> T + Sync,
        _recorded: impl FnOnce(&Self, &Self) -> Self,
    ) -> Self {
        self.zip_formula(other, formula, pointwise)
    }
    fn mul_sum_to(&self, other: &Self, shape: &[usize]) -> Self {
        Tensor::mul_sum_to(self, other, shape)
    }
    fn bias_act_grad(&self, y: &Self, act: Act, _bias_len: usize) -> (Self, Self) {
        Tensor::bias_act_grad(self, y, act)
    }
    fn linear_weight_bias_grad(&self, x: &Self) -> (Self, Self) {
        Tensor::linear_weight_bias_grad(self, x)
    }
    fn linear_input_grad_through_relu(&self, w: &Self, mask: &Self) -> Option<(Self, Self)> {
        Tensor::linear_input_grad_through_relu(self, w, mask)
    }
    fn loss_sum_grad(
        &self,
        a: &Self,
        b: &Self,
        term: LossTerm,
        scale: T,
        want: [bool; 2],
    ) -> [Option<Self>; 2] {
        Tensor::loss_sum_grad(self, a, b, term, scale, want)
    }
    fn reparameterize_grad(&self, logvar: &Self, eps: &Self) -> Self {
        Tensor::reparameterize_grad(self, logvar, eps)
    }
    fn norm_grad(&self, y: &Self, x: &Self) -> Self {
        Tensor::norm_grad(self, y, x)
    }
    fn formula_dx(&self, g: &Self, x: &Self, formula: Formula<T>) -> Option<Self> {
        Tensor::formula_dx(self, g, x, formula)
    }
    fn outer_sum_squares_grad(&self, x: &Self, _other: &Self, other_rows: &Self, scale: T) -> Self {
        Tensor::outer_sum_squares_grad(self, x, other_rows, scale)
    }
    fn accumulate(mut self, other: &Self) -> Self {
        if self.same_shape(other) {
            // Copy on write: in place unless the buffer is shared.
            self.add_assign(other);
            self
        } else {
            Tensor::add(&self, other)
        }
    }
    fn matmul_t_add_to(&self, other: &Self, ta: bool, tb: bool, acc: Self) -> Self {
        // Two matrices (a linear layer's products): the product has the
        // sum's shape, and the BLAS adds it in.
        let rows = |s: &[usize], t: bool| if t { s[1] } else { s[0] };
        let cols = |s: &[usize], t: bool| if t { s[0] } else { s[1] };
        let (sa, sb) = (self.shape(), other.shape());
        if sa.len() == 2 && sb.len() == 2 && acc.shape() == [rows(sa, ta), cols(sb, tb)] {
            return Tensor::matmul_t_add_to(self, other, ta, tb, acc);
        }
        product_then_add(self, other, ta, tb, acc)
    }
}

/// `acc + op(x) @ op(y)` as a product, summed to `acc`'s shape where the
/// product broadcast a batch axis, then an add: `matmul_t_add_to` where the
/// product cannot add into `acc` itself.
fn product_then_add<T: Element, A: Algebra<T>>(x: &A, y: &A, tx: bool, ty: bool, acc: A) -> A {
    let product = x.matmul_t(y, tx, ty);
    let target = acc.shape();
    let product = if product.shape() == target { product } else { product.sum_to(&target) };
    acc.accumulate(&product)
}

impl<'t, T: Element> Algebra<T> for Var<'t, T> {
    const RECORDED: bool = true;
    fn shape(&self) -> Shape {
        Var::shape(self)
    }
    fn device(&self) -> Device {
        self.value().device()
    }
    fn to_tensor(&self) -> Tensor<T> {
        self.value()
    }
    fn add(&self, o: &Self) -> Self {
        *self + *o
    }
    fn sub(&self, o: &Self) -> Self {
        *self - *o
    }
    fn mul(&self, o: &Self) -> Self {
        *self * *o
    }
    fn div(&self, o: &Self) -> Self {
        *self / *o
    }
    fn neg(&self) -> Self {
        -*self
    }
    fn scale(&self, s: T) -> Self {
        Var::mul_scalar(*self, s)
    }
    fn add_scalar(&self, s: T) -> Self {
        Var::add_scalar(*self, s)
    }
    fn powf(&self, p: T) -> Self {
        Var::powf(*self, p)
    }
    fn sigmoid(&self) -> Self {
        Var::sigmoid(*self)
    }
    fn exp(&self) -> Self {
        Var::exp(*self)
    }
    fn log(&self) -> Self {
        Var::log(*self)
    }
    fn clamp(&self, lo: T, hi: T) -> Self {
        Var::clamp(*self, lo, hi)
    }
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self {
        Var::matmul_t(*self, *o, ta, tb)
    }
    fn transpose(&self) -> Self {
        Var::transpose(*self)
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        Var::reshape(*self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Var::broadcast_to(*self, shape)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        Var::sum_to(*self, shape)
    }
    fn select(&self, axis: usize, index: usize) -> Self {
        Var::select(*self, axis, index)
    }
    fn unselect(&self, axis: usize, index: usize, len: usize) -> Self {
        Var::unselect(*self, axis, index, len)
    }
    fn slice_axis(&self, axis: usize, start: usize, len: usize) -> Self {
        Var::slice_axis(*self, axis, start, len)
    }
    fn pad_axis(&self, axis: usize, start: usize, total: usize) -> Self {
        Var::pad_axis(*self, axis, start, total)
    }
    fn step(&self) -> Self {
        self.tape.constant(&self.value().step())
    }
    fn sign(&self) -> Self {
        self.tape.constant(&self.value().sign())
    }
    fn inside(&self, lo: T, hi: T) -> Self {
        self.tape.constant(&self.value().inside_mask(lo, hi))
    }
    fn max_mask(&self, axis: Option<usize>) -> Self {
        self.tape.constant(&self.value().max_mask(axis))
    }
    fn fused(
        &self,
        other: &Self,
        formula: Formula<T>,
        pointwise: impl Fn(T, T) -> T + Sync,
        recorded: impl FnOnce(&Self, &Self) -> Self,
    ) -> Self {
        // One node, `f(g, x)`, whose value is the plain sweep's pass (the
        // same bits) and whose rule is `Op::Formula`'s; the plain ops of the
        // composition without fusion.
        if !crate::ops::fused::fusion_enabled() {
            return recorded(self, other);
        }
        let value = self.value().zip_formula(&other.value(), formula, pointwise);
        self.record(value, crate::op::Op::Formula { formula, g: self.id, x: other.id })
    }
}
