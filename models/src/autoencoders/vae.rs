//! The variational autoencoder (Kingma and Welling, 2014), as in the
//! tutorial: `784 -128- ReLU` to a mean `mu` and a log-variance `logvar`
//! (100 numbers each), a code sampled by reparameterisation
//! `z = mu + exp(logvar / 2) * eps` with `eps ~ N(0, I)`, and a decoder
//! `-128- ReLU -784- sigmoid`. Loss per sample:
//!
//! ```text
//! BCE(x', x) summed over pixels + KL(N(mu, exp(logvar)) || N(0, I))
//! KL = -1/2 sum (1 + logvar - mu^2 - exp(logvar))
//! ```
//!
//! averaged over the batch. Writing the sample as `mu + sigma * eps` moves
//! the randomness into an input, so gradients flow to `mu` and `logvar`.
//! Weights use the tutorial's Xavier variant `N(0, 1/(fan_in/2))`, biases
//! zero. In evaluation mode `encode` returns `mu`.

use super::{Autoencoder, LossParts, ModelKind, StepCtx};
use crate::init::Init;
use crate::layers::Linear;
use crate::params::{Bound, ParamId, Params};
use gradtape::{Act, Element, LossTerm, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Sizes of the VAE (`784-128-100` by default; the paper's `784-400-20`
/// also works).
#[derive(Clone, Debug, PartialEq)]
pub struct VaeConfig {
    /// Numbers per input (784 for MNIST).
    pub input: usize,
    /// Width of the one hidden layer in the encoder and in the decoder.
    pub hidden: usize,
    /// Numbers per code: the length of `mu`, of `logvar` and of `z`.
    pub latent: usize,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig { input: 784, hidden: 128, latent: 100 }
    }
}

/// The variational autoencoder.
#[derive(Clone, Debug)]
pub struct Vae<T: Element> {
    params: Params<T>,
    hidden: Linear,
    mu: Linear,
    logvar: Linear,
    dec_hidden: Linear,
    dec_out: Linear,
    training: bool,
}

/// The encoder's outputs for a batch.
pub struct Posterior<'t, T: Element> {
    pub mu: Var<'t, T>,
    pub logvar: Var<'t, T>,
}

impl<T: Element> Vae<T> {
    /// A model with the tutorial's Xavier initialisation, seeded.
    pub fn new(config: &VaeConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let (i, h, z) = (config.input, config.hidden, config.latent);
        let init = Init::XavierTutorial;
        let hidden = Linear::new(&mut params, "encoder.hidden", i, h, init, &mut rng);
        let mu = Linear::new(&mut params, "encoder.mu", h, z, init, &mut rng);
        let logvar = Linear::new(&mut params, "encoder.logvar", h, z, init, &mut rng);
        let dec_hidden = Linear::new(&mut params, "decoder.hidden", z, h, init, &mut rng);
        let dec_out = Linear::new(&mut params, "decoder.out", h, i, init, &mut rng);
        Vae { params, hidden, mu, logvar, dec_hidden, dec_out, training: true }
    }

    /// The layers in order: encoder hidden, mu, logvar, decoder hidden,
    /// decoder output.
    pub fn layers(&self) -> [Linear; 5] {
        [self.hidden, self.mu, self.logvar, self.dec_hidden, self.dec_out]
    }

    /// `mu` and `logvar` for a batch.
    pub fn posterior<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Posterior<'t, T> {
        let h = self.hidden.forward_act(p, x, Act::Relu);
        Posterior { mu: self.mu.forward(p, h), logvar: self.logvar.forward(p, h) }
    }

    /// `z = mu + exp(logvar / 2) * eps`: in plain ops
    /// `q.mu + (q.logvar * 0.5).exp() * eps`, recorded as the one fused node
    /// `reparameterize` (the same numbers, one pass instead of four).
    pub fn reparameterize<'t>(&self, q: &Posterior<'t, T>, eps: &Tensor<T>) -> Var<'t, T> {
        q.mu.reparameterize(q.logvar, eps)
    }

    /// The loss for a given `eps` (shape `[n, latent]`): the training loss
    /// draws `eps` and calls this; the verification suite passes a fixed one.
    pub fn loss_with_eps<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, eps: &Tensor<T>) -> LossParts<'t, T> {
        let q = self.posterior(p, x);
        let z = self.reparameterize(&q, eps);
        let out = self.decode_var(p, z);
        let n = T::of(x.shape()[0] as f64);
        // bce(out, x, Sum) / n and kl_diag_gaussian(mu, logvar) / n, each
        // one fused node with its 1/n (the same numbers, fewer passes).
        let per_sample = T::one() / n;
        let rec = out.loss_sum(x, LossTerm::BinaryCrossEntropy, per_sample);
        let kl = q.mu.loss_sum(q.logvar, LossTerm::GaussianKl, per_sample);
        LossParts { total: rec + kl, parts: vec![("bce", rec), ("kl", kl)] }
    }

    fn decode_var<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>) -> Var<'t, T> {
        self.dec_out.forward_act(p, self.dec_hidden.forward_act(p, z, Act::Relu), Act::Sigmoid)
    }
}

impl<T: Element> Autoencoder<T> for Vae<T> {
    fn kind(&self) -> ModelKind {
        ModelKind::Vae
    }
    params_and_training_mode!();
    fn input_dim(&self) -> usize {
        self.hidden.in_features
    }
    fn latent_dim(&self) -> usize {
        self.mu.out_features
    }
    fn first_layer(&self) -> ParamId {
        self.hidden.weight
    }
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> Var<'t, T> {
        let q = self.posterior(p, x);
        if self.training {
            let eps = ctx.normal(&q.mu.shape());
            self.reparameterize(&q, &eps)
        } else {
            q.mu
        }
    }
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.decode_var(p, z)
    }
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T> {
        let eps = ctx.normal(&[x.shape()[0], self.latent_dim()]);
        self.loss_with_eps(p, x, &eps)
    }
    fn describe(&self) -> String {
        format!(
            "vae {}-{}-({},{}) / {}-{}-{}, ReLU, sigmoid output, BCE (sum) + KL per sample",
            self.hidden.in_features,
            self.hidden.out_features,
            self.mu.out_features,
            self.logvar.out_features,
            self.mu.out_features,
            self.hidden.out_features,
            self.hidden.in_features
        )
    }
}
