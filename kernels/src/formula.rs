//! The fused backward formulas, by name.
//!
//! A backward rule like sigmoid's, `dx = g * s (1 - s)`, is one pass over
//! two same-shaped tensors. On the CPU the rule hands that formula over as a
//! Rust closure, which the elementwise loop inlines; a GPU cannot run a Rust
//! closure, so each formula also has a name here, and the name picks its
//! kernel in `kernels/cuda/activations.cu`. [`Tensor::zip_formula`] takes
//! both and runs whichever fits where the tensors are. The kernels are
//! checked against the same formulas on the CPU by the simulation tests
//! (`kernels/tests/cuda_sim/grads.rs`).

use crate::element::Element;
use crate::elementwise::zip3_into as zip3;
use crate::tensor::Tensor;

/// A backward formula `out = f(g, x)`: `g` the incoming gradient, `x` the
/// tensor the rule reads (the op's input, or its output where noted).
///
/// [`FormulaKind`] (made by the derive) lists every formula by name alone;
/// the kernel-simulation tests iterate over it, so a formula with no CUDA
/// kernel, or no simulation test, fails them.
#[derive(Clone, Copy, Debug, PartialEq, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(FormulaKind),
    vis(pub),
    derive(Hash, strum::EnumIter),
    doc = "A [`Formula`] without its scalars: which formula, by name ([`FormulaKind::name`]). \
           The variants are [`Formula`]'s, documented there.",
    allow(missing_docs)
)]
pub enum Formula<T> {
    /// `g * x^(p-1) * p`.
    PowGrad(T),
    /// `g / y * 0.5`, `y = sqrt(x)` the output.
    SqrtGrad,
    /// `g * x * 2`.
    SquareGrad,
    /// `g * sign(x)`.
    AbsGrad,
    /// `g * (s * (1 - s))`, `s` the output.
    SigmoidGrad,
    /// `g * (1 - t * t)`, `t` the output.
    TanhGrad,
    /// `g * step(x)`.
    ReluGrad,
    /// `g * sigmoid(x)`.
    SoftplusGrad,
    /// `g * inside(x, lo, hi)`.
    ClampGrad(T, T),
    /// `2 * x * g` (the gradient of a sum of squares).
    SumSquaresGrad,
}

impl FormulaKind {
    /// The kernel's name (without the `_f32`/`_f64` suffix), which is also
    /// how errors name the formula.
    pub fn name(self) -> &'static str {
        match self {
            FormulaKind::PowGrad => "pow_grad",
            FormulaKind::SqrtGrad => "sqrt_grad",
            FormulaKind::SquareGrad => "square_grad",
            FormulaKind::AbsGrad => "abs_grad",
            FormulaKind::SigmoidGrad => "sigmoid_grad",
            FormulaKind::TanhGrad => "tanh_grad",
            FormulaKind::ReluGrad => "relu_grad",
            FormulaKind::SoftplusGrad => "softplus_grad",
            FormulaKind::ClampGrad => "clamp_grad",
            FormulaKind::SumSquaresGrad => "sum_squares_grad",
        }
    }

    /// The kernel of the formula's derivative in `x`
    /// ([`Tensor::formula_dx`]), or `None` where that derivative is zero
    /// almost everywhere (the masks of abs, relu and clamp).
    pub fn dx_name(self) -> Option<&'static str> {
        match self {
            FormulaKind::PowGrad => Some("pow_grad_dx"),
            FormulaKind::SqrtGrad => Some("sqrt_grad_dx"),
            FormulaKind::SquareGrad => Some("square_grad_dx"),
            FormulaKind::SigmoidGrad => Some("sigmoid_grad_dx"),
            FormulaKind::TanhGrad => Some("tanh_grad_dx"),
            FormulaKind::SoftplusGrad => Some("softplus_grad_dx"),
            FormulaKind::SumSquaresGrad => Some("sum_squares_grad_dx"),
            FormulaKind::AbsGrad | FormulaKind::ReluGrad | FormulaKind::ClampGrad => None,
        }
    }

    /// Every formula, in the order of the enum.
    pub fn all() -> impl Iterator<Item = FormulaKind> {
        <FormulaKind as strum::IntoEnumIterator>::iter()
    }
}

impl<T: Element> Formula<T> {
    /// The kernel's name (without the `_f32`/`_f64` suffix), which is also
    /// how errors name the formula.
    pub fn name(&self) -> &'static str {
        FormulaKind::from(self).name()
    }

    /// The scalars the kernel takes after its two tensors.
    pub fn params(&self) -> Vec<T> {
        match *self {
            Formula::PowGrad(p) => vec![p],
            Formula::ClampGrad(lo, hi) => vec![lo, hi],
            _ => Vec::new(),
        }
    }
}

impl<T: Element> Formula<T> {
    /// A formula's derivative in `x`, times the gradient `big_g` of its
    /// result: `G g h'(x)` for the formula `g h(x)`. This is the second
    /// half of the rule of a recorded formula (a node `f(g, x)`, made by a
    /// `create_graph` sweep; its rule for `g` is the formula itself). Each
    /// is written as the recorded ops the sweep would otherwise have
    /// differentiated, in the same order, with `a = G g` first:
    ///
    /// ```text
    /// pow_grad       g x^q p, q = p - 1     (a p) (x^(q-1) q)
    /// sqrt_grad      g / y 0.5              -((a 0.5) / (y y))
    /// square_grad    g x 2                  a 2
    /// sigmoid_grad   g s (1 - s)            a (1 - s) - a s
    /// tanh_grad      g (1 - t t)            (a t) -2
    /// softplus_grad  g sigmoid(x)           a (s (1 - s)), s = sigmoid(x)
    /// sum_squares    2 x g                  a 2
    /// ```
    ///
    /// The masks (abs, relu, clamp) have none ([`FormulaKind::dx_name`]);
    /// for them this is zero. Always inlined: in the CPU pass each loop
    /// fixes the formula, and the `match` must fold away for the loop to
    /// vectorise (called from seven loops in one crate, it was not inlined
    /// otherwise: 1.7% more instructions per cae_mnist step).
    #[inline(always)]
    pub fn dx(&self, big_g: T, g: T, x: T) -> T {
        let a = big_g * g;
        let (one, two, half) = (T::one(), T::of(2.0), T::of(0.5));
        match *self {
            Formula::PowGrad(p) => {
                let q = p - one;
                a * p * (x.powf(q - one) * q)
            }
            Formula::SqrtGrad => -(a * half / (x * x)),
            Formula::SquareGrad | Formula::SumSquaresGrad => a * two,
            Formula::SigmoidGrad => a * (one - x) - a * x,
            Formula::TanhGrad => a * x * -two,
            Formula::SoftplusGrad => {
                let s = crate::elementwise::sigmoid(x);
                a * (s * (one - s))
            }
            Formula::AbsGrad | Formula::ReluGrad | Formula::ClampGrad(..) => T::zero(),
        }
    }
}

impl<T: Element> Tensor<T> {
    /// The derivative in `x` of the formula node `formula(g, x)`, from the
    /// gradient `self` of its result: `out[i] = formula.dx(G[i], g[i],
    /// x[i])` ([`Formula::dx`]) in one pass (on a GPU, the kernel
    /// `<name>_dx`), the three broadcast against each other; `None` for a
    /// mask, whose derivative is zero almost everywhere.
    #[track_caller]
    pub fn formula_dx(&self, g: &Tensor<T>, x: &Tensor<T>, formula: Formula<T>) -> Option<Tensor<T>> {
        let name = FormulaKind::from(&formula).dx_name()?;
        self.same_device(g, name);
        self.same_device(x, name);
        let shape = crate::shape::broadcast_or_panic(name, self.shape(), g.shape());
        let shape = crate::shape::broadcast_or_panic(name, &shape, x.shape());
        let spread = |t: &Tensor<T>| if t.shape() == &shape[..] { t.clone() } else { t.broadcast_to(&shape) };
        let (big_g, g, x) = (spread(self), spread(g), spread(x));
        #[cfg(feature = "cuda")]
        if big_g.is_cuda() {
            return Some(crate::cuda::ops::formula_dx(&big_g, &g, &x, name, &formula.params()));
        }
        let (a, b, c) = (big_g.data(), g.data(), x.data());
        Some(Tensor::from_fill_shape(big_g.dims(), |out| T::formula_dx_pass(formula, a, b, c, out)))
    }
}

/// The CPU pass of [`Tensor::formula_dx`]: `out[i] = formula.dx(a[i], b[i],
/// c[i])`, one loop per formula with the formula fixed, so that the
/// compiler inlines `dx` with the `match` resolved and vectorises each.
///
/// Called through [`Element::formula_dx_pass`], whose two implementations
/// (f32, f64) instantiate it here, once: seven vectorised loops per
/// precision are too much code to compile again in every crate that runs a
/// sweep (a generic function is compiled where it is used, with its types).
pub(crate) fn formula_dx_pass<T: Element>(formula: Formula<T>, a: &[T], b: &[T], c: &[T], out: &mut [T]) {
    match formula {
        Formula::PowGrad(p) => zip3(a, b, c, out, |u, v, w| Formula::PowGrad(p).dx(u, v, w)),
        Formula::SqrtGrad => zip3(a, b, c, out, |u, v, w| Formula::SqrtGrad.dx(u, v, w)),
        Formula::SquareGrad => zip3(a, b, c, out, |u, v, w| Formula::SquareGrad.dx(u, v, w)),
        Formula::SigmoidGrad => zip3(a, b, c, out, |u, v, w| Formula::SigmoidGrad.dx(u, v, w)),
        Formula::TanhGrad => zip3(a, b, c, out, |u, v, w| Formula::TanhGrad.dx(u, v, w)),
        Formula::SoftplusGrad => zip3(a, b, c, out, |u, v, w| Formula::SoftplusGrad.dx(u, v, w)),
        Formula::SumSquaresGrad => zip3(a, b, c, out, |u, v, w| Formula::SumSquaresGrad.dx(u, v, w)),
        Formula::AbsGrad | Formula::ReluGrad | Formula::ClampGrad(..) => {
            unreachable!("{}: a mask has no derivative in x", formula.name())
        }
    }
}

impl<T: Element> Tensor<T> {
    /// `out[i] = formula(self[i], other[i])`, `self` being the gradient `g`:
    /// `pointwise` is the same formula on numbers, run on the CPU; on a GPU
    /// the formula's kernel runs. The shapes broadcast (the gradient of a
    /// sum is one number).
    #[track_caller]
    pub fn zip_formula(
        &self,
        other: &Tensor<T>,
        formula: Formula<T>,
        pointwise: impl Fn(T, T) -> T + Sync,
    ) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.same_device(other, formula.name()).is_cuda() {
            // The kernels take two tensors of one shape.
            let shape = crate::shape::broadcast_or_panic(formula.name(), self.shape(), other.shape());
            let (g, x) = (self.broadcast_to(&shape), other.broadcast_to(&shape));
            return crate::cuda::ops::formula(&g, &x, formula.name(), &formula.params());
        }
        self.zip_with(other, formula.name(), pointwise)
    }
}
