//! The first autoencoder of the tutorials: 25 pixels of a 5x5 "zero", a
//! 10-unit ReLU code, 25 sigmoid outputs, mean squared error.

use super::{Autoencoder, LossParts, ModelKind, StepCtx};
use crate::init::Init;
use crate::layers::Linear;
use crate::losses::{mse, Reduction};
use crate::params::{Bound, ParamId, Params};
use gradtape::{Act, Element, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Sizes of the zero-digit model.
#[derive(Clone, Debug, PartialEq)]
pub struct ZeroDigitConfig {
    /// Units in the ReLU code (10 by default); the input is always the 25 pixels.
    pub hidden: usize,
}

impl Default for ZeroDigitConfig {
    fn default() -> Self {
        ZeroDigitConfig { hidden: 10 }
    }
}

/// 25-10-25: ReLU code, sigmoid output.
#[derive(Clone, Debug)]
pub struct ZeroDigit<T: Element> {
    params: Params<T>,
    encoder: Linear,
    decoder: Linear,
    training: bool,
}

impl<T: Element> ZeroDigit<T> {
    /// A model with PyTorch's default initialisation, seeded.
    pub fn new(config: &ZeroDigitConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let encoder = Linear::new(&mut params, "encoder", 25, config.hidden, Init::PytorchDefault, &mut rng);
        let decoder = Linear::new(&mut params, "decoder", config.hidden, 25, Init::PytorchDefault, &mut rng);
        ZeroDigit { params, encoder, decoder, training: true }
    }

    /// The 5x5 "zero" the tutorial trains on, as a `[1, 25]` batch.
    pub fn digit() -> Tensor<T> {
        let pixels = [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0];
        Tensor::from_vec(pixels.iter().map(|&p| T::of(p as f64)).collect(), &[1, 25])
    }
}

impl<T: Element> Autoencoder<T> for ZeroDigit<T> {
    fn kind(&self) -> ModelKind {
        ModelKind::ZeroDigit
    }
    params_and_training_mode!();
    fn input_dim(&self) -> usize {
        25
    }
    fn latent_dim(&self) -> usize {
        self.encoder.out_features
    }
    fn first_layer(&self) -> ParamId {
        self.encoder.weight
    }
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.encoder.forward_act(p, x, Act::Relu)
    }
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.decoder.forward_act(p, z, Act::Sigmoid)
    }
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T> {
        let y = self.decode(p, self.encode(p, x, ctx), ctx);
        LossParts::single("mse", mse(y, x, Reduction::Mean))
    }
    fn describe(&self) -> String {
        format!("zero-digit 25-{}-25, ReLU code, sigmoid output, MSE", self.encoder.out_features)
    }
}
