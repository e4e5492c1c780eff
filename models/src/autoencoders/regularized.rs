//! The regularised autoencoder and its denoising sibling.
//!
//! Network: `784 -H- ReLU -L-` (a linear code of `L` numbers), then
//! `Dropout(p)` on the code, `-H- ReLU -784` (a linear output). Loss:
//! `MSE(x', x) + gamma * sum over the four layers of mean(W^2)`. With the
//! tutorial's defaults (H 64, L 2, p 0.8, gamma 1e-2) the 2-number code can
//! be drawn as a map of the digits.
//!
//! The denoising autoencoder is the same network, trained on inputs with
//! masking noise (each pixel zeroed with probability `noise`, default 0.2)
//! while still asked to reconstruct the clean input. Noise and dropout act
//! only in training mode.

use super::short_number;
use super::{Autoencoder, LossParts, ModelKind, StepCtx};
use crate::init::Init;
use crate::layers::{Dropout, Linear};
use crate::losses::{mean_squared_weights, mse, Reduction};
use crate::params::{Bound, ParamId, Params};
use gradtape::{Act, Element, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Sizes and regularisation of the regularised / denoising autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub struct RegularizedConfig {
    /// Numbers per input (784 for MNIST).
    pub input: usize,
    /// Width `H` of the hidden layer on each side of the code.
    pub hidden: usize,
    /// Numbers per code `L` (2 by default, so the codes can be drawn as a map).
    pub latent: usize,
    /// Dropout probability on the code.
    pub dropout: f64,
    /// Weight of the mean squared weights penalty.
    pub gamma: f64,
    /// Masking-noise rate on the input (0 for the plain regularised model).
    pub noise: f64,
}

impl Default for RegularizedConfig {
    fn default() -> Self {
        RegularizedConfig { input: 784, hidden: 64, latent: 2, dropout: 0.8, gamma: 1e-2, noise: 0.0 }
    }
}

impl RegularizedConfig {
    /// The denoising defaults: the same network with masking noise 0.2.
    pub fn denoising() -> Self {
        RegularizedConfig { noise: 0.2, ..Self::default() }
    }
}

/// Weight decay and dropout; with `noise > 0`, a denoising autoencoder.
#[derive(Clone, Debug)]
pub struct RegularizedAutoencoder<T: Element> {
    params: Params<T>,
    layers: [Linear; 4],
    dropout: Dropout,
    gamma: f64,
    noise: f64,
    training: bool,
}

impl<T: Element> RegularizedAutoencoder<T> {
    /// A model with PyTorch's default initialisation, seeded. Names follow
    /// `nn.Sequential`: `encoder.0`, `encoder.2`, `decoder.1`, `decoder.3`
    /// (the decoder's index 0 is the dropout).
    #[track_caller]
    pub fn new(config: &RegularizedConfig, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&config.noise), "noise rate {} must be in [0, 1)", config.noise);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let (i, h, l) = (config.input, config.hidden, config.latent);
        let init = Init::PytorchDefault;
        let layers = [
            Linear::new(&mut params, "encoder.0", i, h, init, &mut rng),
            Linear::new(&mut params, "encoder.2", h, l, init, &mut rng),
            Linear::new(&mut params, "decoder.1", l, h, init, &mut rng),
            Linear::new(&mut params, "decoder.3", h, i, init, &mut rng),
        ];
        RegularizedAutoencoder {
            params,
            layers,
            dropout: Dropout::new(config.dropout),
            gamma: config.gamma,
            noise: config.noise,
            training: true,
        }
    }

    /// The denoising autoencoder (`config.noise` should be above 0).
    pub fn denoising(config: &RegularizedConfig, seed: u64) -> Self {
        Self::new(config, seed)
    }

    /// The four linear layers, input to output.
    pub fn layers(&self) -> &[Linear; 4] {
        &self.layers
    }

    /// The masking-noise rate.
    pub fn noise(&self) -> f64 {
        self.noise
    }

    /// The penalty weight.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The dropout layer.
    pub fn dropout(&self) -> Dropout {
        self.dropout
    }

    /// A masking-noise mask (1 keeps a pixel, 0 drops it) for `shape`.
    pub fn noise_mask(&self, shape: &[usize], ctx: &mut StepCtx) -> Tensor<T> {
        ctx.bernoulli(shape, 1.0 - self.noise)
    }

    /// A dropout mask for the code, scaled by `1/(1-p)`, drawn from the
    /// step's randomness on the step's device (the numbers of
    /// `Dropout::mask` when the step's generator is seeded on the CPU).
    pub fn dropout_mask(&self, shape: &[usize], ctx: &mut StepCtx) -> Tensor<T> {
        ctx.bernoulli::<T>(shape, 1.0 - self.dropout.p).mul_scalar(T::of(1.0 / (1.0 - self.dropout.p)))
    }

    /// The loss with the random parts given: `noise_mask` multiplies the
    /// input (`None`: clean input), `dropout_mask` (already scaled by
    /// `1/(1-p)`) multiplies the code (`None`: no dropout). The training loss
    /// draws both and calls this; the verification suite passes fixed ones.
    pub fn loss_with_masks<'t>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        noise_mask: Option<&Tensor<T>>,
        dropout_mask: Option<&Tensor<T>>,
    ) -> LossParts<'t, T> {
        let tape = x.tape();
        let input = match noise_mask {
            Some(m) => x * tape.constant(m),
            None => x,
        };
        let code = self.layers[1].forward(p, self.layers[0].forward_act(p, input, Act::Relu));
        let dropped = match dropout_mask {
            Some(m) => code * tape.constant(m),
            None => code,
        };
        let out = self.layers[3].forward(p, self.layers[2].forward_act(p, dropped, Act::Relu));
        let rec = mse(out, x, Reduction::Mean);
        let mut pen = mean_squared_weights(p[self.layers[0].weight]);
        for layer in &self.layers[1..] {
            pen = pen + mean_squared_weights(p[layer.weight]);
        }
        let total = rec.add_scaled(pen, T::of(self.gamma));
        LossParts { total, parts: vec![("mse", rec), ("weights", pen)] }
    }
}

impl<T: Element> Autoencoder<T> for RegularizedAutoencoder<T> {
    fn kind(&self) -> ModelKind {
        if self.noise > 0.0 {
            ModelKind::Denoising
        } else {
            ModelKind::Regularized
        }
    }
    params_and_training_mode!();
    fn input_dim(&self) -> usize {
        self.layers[0].in_features
    }
    fn latent_dim(&self) -> usize {
        self.layers[1].out_features
    }
    fn first_layer(&self) -> ParamId {
        self.layers[0].weight
    }
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.layers[1].forward(p, self.layers[0].forward_act(p, x, Act::Relu))
    }
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, ctx: &mut StepCtx) -> Var<'t, T> {
        let z = self.dropout.apply(z, self.training, &mut ctx.rng);
        self.layers[3].forward(p, self.layers[2].forward_act(p, z, Act::Relu))
    }
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T> {
        let shape = x.shape();
        let noise = (self.training && self.noise > 0.0).then(|| self.noise_mask(&shape, ctx));
        let code_shape = [shape[0], self.latent_dim()];
        let drop = (self.training && self.dropout.p > 0.0).then(|| self.dropout_mask(&code_shape, ctx));
        self.loss_with_masks(p, x, noise.as_ref(), drop.as_ref())
    }
    fn describe(&self) -> String {
        let [a, b, _, _] = &self.layers;
        let base = format!(
            "{}-{}-{} ReLU encoder, Dropout({}) on the code, {}-{}-{} ReLU decoder, MSE + {} * sum mean(W^2)",
            a.in_features,
            a.out_features,
            b.out_features,
            short_number(self.dropout.p),
            b.out_features,
            a.out_features,
            a.in_features,
            short_number(self.gamma)
        );
        if self.noise > 0.0 {
            format!("denoising {base}, masking noise {}", short_number(self.noise))
        } else {
            format!("regularized {base}")
        }
    }
}
