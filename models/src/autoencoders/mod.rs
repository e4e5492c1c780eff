//! The autoencoder family from the tutorials.
//!
//! An autoencoder squeezes its input through a narrow code and tries to
//! rebuild it: `x -> encode -> z -> decode -> x'`, trained to make `x'`
//! close to `x`. The members differ in what stops them from simply copying:
//!
//! - [`ZeroDigit`]: the smallest possible one, 25-10-25, learning a single
//!   5x5 "zero";
//! - [`DeepAutoencoder`]: several layers and a 12-number code, plus a small
//!   penalty on the code's size;
//! - [`RegularizedAutoencoder`]: weight decay and dropout on the code; with
//!   masking noise on the input it is the denoising autoencoder
//!   ([`RegularizedAutoencoder::denoising`]);
//! - [`ContractiveAutoencoder`]: a penalty on how much the code moves when
//!   the input moves (the Frobenius norm of the encoder's Jacobian), taken
//!   by double backward or in closed form;
//! - [`Vae`]: the encoder outputs a distribution, the code is sampled from
//!   it (reparameterisation), and the loss adds a KL term that keeps the
//!   codes close to a standard normal, so decoding random normal codes
//!   gives new digits.
//!
//! Every model implements [`Autoencoder`]: it owns its [`Params`], has a
//! train/eval switch, and gives `encode`, `decode` and a `loss` that returns
//! the total and its named parts. Randomness inside a step (dropout, noise,
//! the VAE's epsilon) comes from the step's [`StepCtx`], seeded by the
//! training loop, so a run is reproducible bit for bit.

/// The four [`Autoencoder`] methods that are the same in every model, for a
/// model struct with the fields `params: Params<T>` and `training: bool`:
/// `params`, `params_mut`, `set_training` and `is_training`. Written once
/// here and expanded inside each model's `impl Autoencoder<T>` block, so
/// that each model's file shows only what makes it that model.
macro_rules! params_and_training_mode {
    () => {
        fn params(&self) -> &Params<T> {
            &self.params
        }
        fn params_mut(&mut self) -> &mut Params<T> {
            &mut self.params
        }
        fn set_training(&mut self, training: bool) {
            self.training = training;
        }
        fn is_training(&self) -> bool {
            self.training
        }
    };
}

mod contractive;
mod deep;
mod regularized;
mod vae;
mod zero_digit;

pub use contractive::{mean_jacobian_norm, ContractiveAutoencoder, ContractiveConfig, PenaltyMode};
pub use deep::{DeepAutoencoder, DeepConfig};
pub use regularized::{RegularizedAutoencoder, RegularizedConfig};
pub use vae::{Vae, VaeConfig};
pub use zero_digit::{ZeroDigit, ZeroDigitConfig};

use crate::params::{Bound, ParamId, Params};
use gradtape::{Element, Tensor, Var};
use gradtape_kernels::{Device, DrawNumber, DrawStep, LossGuard};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt;
use std::str::FromStr;

/// Randomness for one training or evaluation step, and the device the
/// step runs on (where masks and noise are drawn).
///
/// Two ways to draw: from a generator seeded per step ([`StepCtx::on`]: on
/// a GPU each draw is keyed by a number from it), or numbered
/// ([`StepCtx::clocked`], [`StepCtx::numbered`]: one key for a whole loop,
/// each draw named by its step and its place in the step, see
/// `gradtape_kernels::draws`), which a training loop on a GPU uses so that
/// its steps launch the same kernels with the same arguments every time.
pub struct StepCtx {
    /// The step's generator: dropout masks, masking noise and the VAE's
    /// `eps` are drawn from it (on a GPU, keyed by draws from it), unless
    /// the draws are numbered.
    pub rng: StdRng,
    /// Where the step runs, and so where masks and noise are made.
    pub device: Device,
    /// Numbered draws: the loop's key, the step, and how many the step has
    /// drawn so far.
    numbered: Option<(u64, DrawStep, u64)>,
}

impl StepCtx {
    /// A context for the CPU whose generator is seeded by `seed`.
    pub fn seeded(seed: u64) -> StepCtx {
        StepCtx::on(seed, Device::Cpu)
    }

    /// A context for `device` whose generator is seeded by `seed`. On a GPU
    /// each mask is drawn there, keyed by one draw from the generator (see
    /// `Tensor::bernoulli_on`).
    pub fn on(seed: u64, device: Device) -> StepCtx {
        StepCtx { rng: StdRng::seed_from_u64(seed), device, numbered: None }
    }

    /// Numbered draws for step `step` of a loop keyed by `key`, on `device`:
    /// the numbers [`StepCtx::clocked`] draws at that step.
    pub fn numbered(key: u64, step: u64, device: Device) -> StepCtx {
        StepCtx { rng: StdRng::seed_from_u64(key), device, numbered: Some((key, DrawStep::At(step), 0)) }
    }

    /// Numbered draws for the step `guard` records next, of a loop keyed by
    /// `key`, on the guard's device: on a GPU the kernels read the step
    /// from the guard there. Drop the context before the guard records the
    /// step's loss (see `gradtape_kernels::StepClock`).
    pub fn clocked(key: u64, guard: &LossGuard) -> StepCtx {
        let device = guard.device();
        StepCtx {
            rng: StdRng::seed_from_u64(key),
            device,
            numbered: Some((key, DrawStep::Clock(guard.clock()), 0)),
        }
    }

    /// The next numbered draw's number, if the draws are numbered.
    fn next_number(&mut self) -> Option<DrawNumber> {
        let (key, step, draws) = self.numbered.as_mut()?;
        let number = DrawNumber { key: *key, step: step.clone(), draw: *draws };
        *draws += 1;
        Some(number)
    }

    /// A Bernoulli mask (ones with probability `p_one`) on the step's device.
    pub fn bernoulli<T: Element>(&mut self, shape: &[usize], p_one: f64) -> Tensor<T> {
        match self.next_number() {
            Some(number) => Tensor::bernoulli_numbered(shape, p_one, &number, self.device),
            None => Tensor::bernoulli_on(shape, p_one, &mut self.rng, self.device),
        }
    }

    /// Standard normal draws on the step's device.
    pub fn normal<T: Element>(&mut self, shape: &[usize]) -> Tensor<T> {
        match self.next_number() {
            Some(number) => Tensor::normal_numbered(shape, 0.0, 1.0, &number, self.device),
            None => Tensor::normal_on(shape, 0.0, 1.0, &mut self.rng, self.device),
        }
    }
}

/// A loss and its named parts (e.g. `mse` and `code_l2`), all recorded.
pub struct LossParts<'t, T: Element> {
    /// The loss to differentiate: the parts combined with their weights
    /// (e.g. `mse + lambda * code_l2`).
    pub total: Var<'t, T>,
    /// Each term by name, before any weight is applied; a loss with one term
    /// has one part, equal to `total`.
    pub parts: Vec<(&'static str, Var<'t, T>)>,
}

impl<'t, T: Element> LossParts<'t, T> {
    /// A loss with no separate parts.
    pub fn single(name: &'static str, total: Var<'t, T>) -> Self {
        LossParts { total, parts: vec![(name, total)] }
    }

    /// The values of the parts, for reporting.
    pub fn values(&self) -> Vec<(&'static str, f64)> {
        self.parts.iter().map(|(n, v)| (*n, v.item().as_f64())).collect()
    }
}

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// 25-10-25 on a 5x5 "zero": the first model of the tutorials ([`ZeroDigit`]).
    ZeroDigit,
    /// 784-128-64-12-64-128-784 by default, with an L2 penalty on the code ([`DeepAutoencoder`]).
    Deep,
    /// A small code (2 numbers by default) with dropout on it and a penalty on
    /// the weights ([`RegularizedAutoencoder`]).
    Regularized,
    /// The regularised network trained on inputs with masking noise.
    Denoising,
    /// A sigmoid encoder with the Jacobian penalty of Rifai et al. ([`ContractiveAutoencoder`]).
    Contractive,
    /// The variational autoencoder of Kingma and Welling ([`Vae`]).
    Vae,
}

impl ModelKind {
    /// Every kind, in the order the tutorials introduce them.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::ZeroDigit,
        ModelKind::Deep,
        ModelKind::Regularized,
        ModelKind::Denoising,
        ModelKind::Contractive,
        ModelKind::Vae,
    ];

    /// The command-line name (`zero-digit`, `deep`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::ZeroDigit => "zero-digit",
            ModelKind::Deep => "deep",
            ModelKind::Regularized => "regularized",
            ModelKind::Denoising => "denoising",
            ModelKind::Contractive => "contractive",
            ModelKind::Vae => "vae",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL.iter().copied().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown model '{s}'; expected one of: {}", names.join(", "))
        })
    }
}

/// What every autoencoder offers. `Send`, so that a training loop can run
/// on a rayon worker ([`crate::train::fit`]).
pub trait Autoencoder<T: Element>: Send {
    /// Which model this is.
    fn kind(&self) -> ModelKind;
    /// The parameters, in a fixed order with PyTorch-style names.
    fn params(&self) -> &Params<T>;
    /// The same, mutable (for the optimiser and for loading checkpoints).
    fn params_mut(&mut self) -> &mut Params<T>;
    /// Numbers per input (784 for MNIST).
    fn input_dim(&self) -> usize;
    /// Numbers per code.
    fn latent_dim(&self) -> usize;
    /// The first layer's weight `[hidden, input]`: the encoder's filters.
    fn first_layer(&self) -> ParamId;
    /// Switches dropout and input noise on (`true`) or off (`false`).
    fn set_training(&mut self, training: bool);
    /// Whether the model is in training mode.
    fn is_training(&self) -> bool;
    /// The code of a batch `[n, input]` (the mean, for the VAE in eval mode).
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> Var<'t, T>;
    /// The reconstruction of a batch of codes `[n, latent]`.
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, ctx: &mut StepCtx) -> Var<'t, T>;
    /// The training loss on a clean batch `x`, with its named parts. Noise
    /// and dropout apply only in training mode.
    ///
    /// Every model takes a [`StepCtx`], even those that draw nothing
    /// (zero-digit, deep and contractive never read it), so that one
    /// signature serves the whole family behind `dyn Autoencoder` and a
    /// training loop need not know which model draws: pass
    /// `&mut StepCtx::seeded(0)` to a deterministic model. The VAE draws
    /// its `eps` from it even in evaluation mode (its loss is an estimate).
    ///
    /// ```
    /// use gradtape::{Tape, Tensor};
    /// use gradtape_models::autoencoders::{Autoencoder, DeepAutoencoder, DeepConfig, StepCtx};
    ///
    /// let config = DeepConfig { widths: vec![6, 4, 2], lambda: 1e-5 };
    /// let model = DeepAutoencoder::<f64>::new(&config, 0);
    /// let batch = Tensor::uniform(&[3, 6], 0.0, 1.0, 1);
    /// let tape = Tape::new();
    /// let p = model.params().bind(&tape);
    /// let parts = model.loss(&p, tape.constant(&batch), &mut StepCtx::seeded(0));
    /// let grads = parts.total.backward(); // one gradient per parameter
    /// assert_eq!(grads.len(), model.params().len());
    /// assert!(parts.total.item() > 0.0);
    /// ```
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T>;
    /// A one-line description of the architecture.
    fn describe(&self) -> String;
}

/// A setting as a description shows it: as written (`0.001`, `1000000`)
/// when that is short, else in exponent form (`1e-320`, `1e308`), never
/// hundreds of digits.
pub fn short_number(x: f64) -> String {
    let plain = x.to_string();
    if plain.len() <= 12 {
        plain
    } else {
        format!("{x:e}")
    }
}
