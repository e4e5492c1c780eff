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
