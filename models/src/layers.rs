//! Layers: a linear map, activations, and dropout.
//!
//! A layer holds no tensors itself, only the [`ParamId`]s of its parameters
//! in the model's [`Params`]; its `forward` takes the parameters as bound on
//! the current tape.

use crate::init::Init;
use crate::params::{Bound, ParamId, Params};
use gradtape::{Act, Element, Tensor, Var};
use gradtape_kernels::Device;
use rand::Rng;

/// `y = x W^T + b`, with `W` stored `[out, in]` as in PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// The weight `W`, shape `[out_features, in_features]`, named `{name}.weight`.
    pub weight: ParamId,
    /// The bias `b`, shape `[out_features]`, named `{name}.bias`.
    pub bias: ParamId,
    /// Numbers per input row (PyTorch's `in_features`).
    pub in_features: usize,
    /// Numbers per output row (PyTorch's `out_features`).
    pub out_features: usize,
}

impl Linear {
    /// Registers `{name}.weight` and `{name}.bias` in `params`, initialised
    /// by `init` from `rng`: any [`Rng`], such as a seeded
    /// `StdRng::seed_from_u64(seed)` from the re-exported
    /// [`gradtape_models::rand`](crate::rand) for weights that are the same
    /// on every run.
    pub fn new<T: Element>(
        params: &mut Params<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        init: Init,
        rng: &mut impl Rng,
    ) -> Linear {
        let w = init.weight(in_features, out_features, rng);
        let b = init.bias(in_features, out_features, rng);
        Linear {
            weight: params.add(format!("{name}.weight"), w),
            bias: params.add(format!("{name}.bias"), b),
            in_features,
            out_features,
        }
    }

    /// `x W^T + b` for a batch `x` of shape `[n, in]`; the transpose is read
    /// through strides, not copied. One fused op, `linear_act` with no
    /// activation (the same numbers as `x.matmul_t(W, false, true) + b`; on
    /// a GPU the product adds the bias as it is written).
    #[track_caller]
    pub fn forward<'t, T: Element>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        x.linear_act(p[self.weight], p[self.bias], Act::Identity)
    }

    /// `act(x W^T + b)`: [`Linear::forward`] followed by an activation, by
    /// the fused op `linear_act` (the same numbers as
    /// `act.apply(self.forward(p, x))`): on the CPU the product and one
    /// pass for the bias and the activation; on a GPU, for identity and
    /// ReLU, one cuBLASLt call whose epilogue adds the bias and applies the
    /// ReLU as it writes the product.
    #[track_caller]
    pub fn forward_act<'t, T: Element>(&self, p: &Bound<'t, T>, x: Var<'t, T>, act: Act) -> Var<'t, T> {
        x.linear_act(p[self.weight], p[self.bias], act)
    }
}

/// An elementwise nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`, into `(0, 1)`.
    Sigmoid,
    /// The hyperbolic tangent, into `(-1, 1)`.
    Tanh,
    /// `x` unchanged: a linear layer.
    Identity,
}

impl Activation {
    /// The same activation, for the fused op ([`Linear::forward_act`]).
    pub fn fused(self) -> Act {
        match self {
            Activation::Relu => Act::Relu,
            Activation::Sigmoid => Act::Sigmoid,
            Activation::Tanh => Act::Tanh,
            Activation::Identity => Act::Identity,
        }
    }

    /// Applies the activation.
    pub fn apply<'t, T: Element>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Identity => x,
        }
    }
}

/// Inverted dropout: in training, each element is zeroed with probability
/// `p` and the survivors are scaled by `1 / (1 - p)`, so the expected value
/// is unchanged and evaluation needs no rescaling. In evaluation it is the
/// identity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// The probability of zeroing each element, in `[0, 1)` (PyTorch's `p`).
    pub p: f64,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64) -> Dropout {
        assert!((0.0..1.0).contains(&p), "dropout: p = {p} must be in [0, 1)");
        Dropout { p }
    }

    /// The scaled keep-mask for a tensor of `shape`: `1/(1-p)` with
    /// probability `1-p`, else 0.
    pub fn mask<T: Element>(&self, shape: &[usize], rng: &mut impl Rng) -> Tensor<T> {
        self.mask_on(shape, rng, Device::Cpu)
    }

    /// [`Dropout::mask`] drawn on `device` (see `Tensor::bernoulli_on`).
    pub fn mask_on<T: Element>(&self, shape: &[usize], rng: &mut impl Rng, device: Device) -> Tensor<T> {
        let scale = T::of(1.0 / (1.0 - self.p));
        Tensor::bernoulli_on(shape, 1.0 - self.p, rng, device).mul_scalar(scale)
    }

    /// Applies dropout in training mode (drawing a mask from `rng`), or
    /// nothing in evaluation mode.
    pub fn apply<'t, T: Element>(&self, x: Var<'t, T>, training: bool, rng: &mut impl Rng) -> Var<'t, T> {
        if !training || self.p == 0.0 {
            return x;
        }
        let mask = self.mask_on(&x.shape(), rng, x.value().device());
        x * x.tape().constant(&mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradtape::Tape;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn linear_computes_x_w_transpose_plus_b_with_pytorch_names() {
        let mut params = Params::<f64>::new();
        let mut rng = StdRng::seed_from_u64(1);
        let lin = Linear::new(&mut params, "encoder.0", 3, 2, Init::PytorchDefault, &mut rng);
        assert_eq!(params.names(), &["encoder.0.weight".to_string(), "encoder.0.bias".to_string()]);
        assert_eq!(params.get(lin.weight).shape(), &[2, 3]);
        let tape = Tape::new();
        let p = params.bind(&tape);
        let x = tape.constant(&Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]));
        let y = lin.forward(&p, x).value();
        let (w, b) = (params.get(lin.weight), params.get(lin.bias));
        for j in 0..2 {
            let want = (0..3).map(|i| w.at(&[j, i]) * (i + 1) as f64).sum::<f64>() + b.at(&[j]);
            assert!((y.at(&[0, j]) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn dropout_keeps_the_mean_and_zeroes_about_p_of_the_elements() {
        let d = Dropout::new(0.8);
        let tape = Tape::<f64>::new();
        let x = tape.constant(&Tensor::ones(&[200, 100]));
        let mut rng = StdRng::seed_from_u64(3);
        let y = d.apply(x, true, &mut rng).value();
        let zeros = y.data().iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        let mean = y.data().iter().sum::<f64>() / y.len() as f64;
        assert!((zeros - 0.8).abs() < 0.01, "zero fraction {zeros}");
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!(y.data().iter().all(|&v| v == 0.0 || (v - 5.0).abs() < 1e-12));
        let e = d.apply(x, false, &mut rng).value();
        assert!(e.data().iter().all(|&v| v == 1.0), "evaluation mode is the identity");
    }

    #[test]
    fn dropout_masks_are_reproducible_by_seed() {
        let d = Dropout::new(0.5);
        let a: Tensor<f32> = d.mask(&[4, 8], &mut StdRng::seed_from_u64(11));
        let b: Tensor<f32> = d.mask(&[4, 8], &mut StdRng::seed_from_u64(11));
        assert_eq!(a, b);
        // And the seed matters: a mask that ignored it would pass the above.
        let c: Tensor<f32> = d.mask(&[4, 8], &mut StdRng::seed_from_u64(12));
        assert_ne!(a, c);
    }
}
