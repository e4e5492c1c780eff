//! The deep autoencoder: 784-128-64-12-64-128-784 with ReLU between layers,
//! a linear 12-number code, a Tanh output, and the loss
//! `MSE(x', x) + lambda * ||code||_2`.

use super::short_number;
use super::{Autoencoder, LossParts, ModelKind, StepCtx};
use crate::init::Init;
use crate::layers::Linear;
use crate::losses::{code_l2, mse, Reduction};
use crate::params::{Bound, ParamId, Params};
use gradtape::{Act, Element, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Widths and penalty of the deep autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepConfig {
    /// Encoder widths from the input to the code; the decoder mirrors them.
    pub widths: Vec<usize>,
    /// Weight of the code's L2 norm in the loss.
    pub lambda: f64,
}

impl Default for DeepConfig {
    fn default() -> Self {
        DeepConfig { widths: vec![784, 128, 64, 12], lambda: 1e-5 }
    }
}

/// A stack of linear layers, ReLU between them, Tanh at the output.
#[derive(Clone, Debug)]
pub struct DeepAutoencoder<T: Element> {
    params: Params<T>,
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
    lambda: f64,
    training: bool,
}

impl<T: Element> DeepAutoencoder<T> {
    /// A model with PyTorch's default initialisation, seeded. Parameters are
    /// named like `nn.Sequential` state dicts: `encoder.0`, `encoder.2`, ...
    #[track_caller]
    pub fn new(config: &DeepConfig, seed: u64) -> Self {
        let w = &config.widths;
        assert!(w.len() >= 2, "deep autoencoder: needs at least an input and a code width, got {w:?}");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let encoder = (0..w.len() - 1)
            .map(|i| {
                Linear::new(
                    &mut params,
                    &format!("encoder.{}", 2 * i),
                    w[i],
                    w[i + 1],
                    Init::PytorchDefault,
                    &mut rng,
                )
            })
            .collect();
        let decoder = (0..w.len() - 1)
            .map(|i| {
                let (a, b) = (w[w.len() - 1 - i], w[w.len() - 2 - i]);
                Linear::new(&mut params, &format!("decoder.{}", 2 * i), a, b, Init::PytorchDefault, &mut rng)
            })
            .collect();
        DeepAutoencoder { params, encoder, decoder, lambda: config.lambda, training: true }
    }

    /// The encoder's layers (for the hand derivation).
    pub fn encoder_layers(&self) -> &[Linear] {
        &self.encoder
    }

    /// The decoder's layers.
    pub fn decoder_layers(&self) -> &[Linear] {
        &self.decoder
    }

    /// The weight of the code penalty.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
}

impl<T: Element> Autoencoder<T> for DeepAutoencoder<T> {
    fn kind(&self) -> ModelKind {
        ModelKind::Deep
    }
    params_and_training_mode!();
    fn input_dim(&self) -> usize {
        self.encoder[0].in_features
    }
    fn latent_dim(&self) -> usize {
        self.encoder[self.encoder.len() - 1].out_features
    }
    fn first_layer(&self) -> ParamId {
        self.encoder[0].weight
    }
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        let last = self.encoder.len() - 1;
        self.encoder.iter().enumerate().fold(x, |h, (i, layer)| {
            layer.forward_act(p, h, if i < last { Act::Relu } else { Act::Identity })
        })
    }
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        let last = self.decoder.len() - 1;
        self.decoder
            .iter()
            .enumerate()
            .fold(z, |h, (i, layer)| layer.forward_act(p, h, if i < last { Act::Relu } else { Act::Tanh }))
    }
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T> {
        let code = self.encode(p, x, ctx);
        let out = self.decode(p, code, ctx);
        let rec = mse(out, x, Reduction::Mean);
        let pen = code_l2(code);
        let total = rec.add_scaled(pen, T::of(self.lambda));
        LossParts { total, parts: vec![("mse", rec), ("code_l2", pen)] }
    }
    fn describe(&self) -> String {
        let mut widths: Vec<String> = self.encoder.iter().map(|l| l.in_features.to_string()).collect();
        widths.extend(self.decoder.iter().map(|l| l.in_features.to_string()));
        widths.push(self.input_dim().to_string());
        format!(
            "deep {}, ReLU, Tanh output, MSE + {} * ||code||",
            widths.join("-"),
            short_number(self.lambda)
        )
    }
}
