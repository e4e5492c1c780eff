//! The models under test, each with everything its loss needs fixed.
//!
//! A [`Case`] is one autoencoder with its weights, a batch of real digits,
//! and the step's random draws (dropout mask, noise mask, the VAE's `eps`)
//! chosen once, so that the model's real training loss becomes an ordinary
//! deterministic function of the parameters. On a case you can ask for
//!
//! - [`Case::autodiff`]: the loss and gradients the engine computes from the
//!   model's own `loss` (`loss_with_masks` / `loss_with_eps` for the models
//!   that draw randomness, which is what their training `loss` calls);
//! - [`Case::by_hand`]: the same from the derivations in
//!   [`crate::derivations`];
//! - [`Case::finite_differences`], [`Case::gradcheck`] and
//!   [`Case::gradgradcheck`] (f64): the same again from central differences.
//!
//! Two sizes: [`Size::Full`] is the tutorial's model (784 inputs, default
//! widths) on 8 digits; [`Size::Small`] shrinks the digits to 4x4 (5x5 for
//! the zero-digit model) and the widths to a handful, on 3 digits, so that
//! finite differences over every parameter take milliseconds. The PyTorch
//! reference (`verify/reference/`) uses the small sizes too.

use crate::compare::Comparison;
use crate::data::{downsampled_batch, real_batch};
use crate::derivations::{contractive, deep, denoising, regularized, vae, zero_digit, Derived};
use crate::gradcheck::{gradcheck, gradgradcheck, GradcheckError};
use gradtape::{grad_values, Element, Tape, Tensor, Var};
use gradtape_models::autoencoders::{
    Autoencoder, ContractiveAutoencoder, ContractiveConfig, DeepAutoencoder, DeepConfig, PenaltyMode,
    RegularizedAutoencoder, RegularizedConfig, StepCtx, Vae, VaeConfig, ZeroDigit, ZeroDigitConfig,
};
use gradtape_models::params::{Bound, Params};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt;

/// Which model, and for the contractive one, which way of computing its
/// penalty: every row group of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaseKind {
    /// The zero-digit autoencoder (ReLU code, sigmoid output, MSE).
    ZeroDigit,
    /// The deep autoencoder, with its L2 penalty on the code.
    Deep,
    /// The regularised autoencoder, with dropout on the code and its weight penalty.
    Regularized,
    /// The regularised network with masking noise on the input.
    Denoising,
    /// The contractive autoencoder with its penalty by double backward.
    ContractiveDoubleBackward,
    /// The contractive autoencoder with its penalty in closed form.
    ContractiveClosedForm,
    /// The variational autoencoder (BCE plus KL).
    Vae,
}

impl CaseKind {
    /// Every case, in the order the tutorials introduce the models.
    pub const ALL: [CaseKind; 7] = [
        CaseKind::ZeroDigit,
        CaseKind::Deep,
        CaseKind::Regularized,
        CaseKind::Denoising,
        CaseKind::ContractiveDoubleBackward,
        CaseKind::ContractiveClosedForm,
        CaseKind::Vae,
    ];

    /// The name in the report.
    pub fn label(self) -> &'static str {
        match self {
            CaseKind::ZeroDigit => "zero-digit",
            CaseKind::Deep => "deep",
            CaseKind::Regularized => "regularized",
            CaseKind::Denoising => "denoising",
            CaseKind::ContractiveDoubleBackward => "contractive (double backward)",
            CaseKind::ContractiveClosedForm => "contractive (closed form)",
            CaseKind::Vae => "vae",
        }
    }

    /// The model's name in the PyTorch reference file (both contractive
    /// cases share one entry: the function is the same).
    pub fn reference_name(self) -> &'static str {
        match self {
            CaseKind::ContractiveDoubleBackward | CaseKind::ContractiveClosedForm => "contractive",
            other => other.label(),
        }
    }

    /// Whether the model has a sigmoid (whose backward rule the fault
    /// injection test breaks).
    pub fn uses_sigmoid(self) -> bool {
        matches!(
            self,
            CaseKind::ZeroDigit
                | CaseKind::ContractiveDoubleBackward
                | CaseKind::ContractiveClosedForm
                | CaseKind::Vae
        )
    }
}

impl fmt::Display for CaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The tutorial's sizes, or a few units wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// The default configuration of each model (784 inputs), 8 digits.
    Full,
    /// 16 inputs (25 for the zero-digit model), a few units, 3 digits.
    Small,
}

/// The small sizes, shared with `verify/reference/make_reference.py`
/// (which must say the same; the reference test checks it does).
pub mod small {
    /// Digits in a small batch.
    pub const BATCH: usize = 3;
    /// Digits are shrunk to `SIDE x SIDE` pixels (the zero-digit model takes 5x5).
    pub const SIDE: usize = 4;
    /// Units in the zero-digit model's code.
    pub const ZERO_DIGIT_HIDDEN: usize = 4;
    /// The deep model's encoder widths, from the `SIDE * SIDE` input to the code.
    pub const DEEP_WIDTHS: [usize; 4] = [16, 8, 6, 3];
    /// Weight of the deep model's code penalty.
    pub const DEEP_LAMBDA: f64 = 0.1;
    /// The regularised (and denoising) model's hidden width.
    pub const REGULARIZED_HIDDEN: usize = 6;
    /// The regularised (and denoising) model's code length.
    pub const REGULARIZED_LATENT: usize = 3;
    /// Dropout probability on the regularised (and denoising) model's code.
    pub const REGULARIZED_DROPOUT: f64 = 0.5;
    /// Weight of the regularised (and denoising) model's weight penalty.
    pub const REGULARIZED_GAMMA: f64 = 0.1;
    /// Masking-noise rate of the denoising model.
    pub const DENOISING_NOISE: f64 = 0.25;
    /// Hidden units of the contractive model (and rows of its Jacobian).
    pub const CONTRACTIVE_HIDDEN: usize = 4;
    /// Weight of the contractive model's Jacobian penalty.
    pub const CONTRACTIVE_LAMBDA: f64 = 0.5;
    /// The VAE's hidden width.
    pub const VAE_HIDDEN: usize = 6;
    /// The VAE's code length.
    pub const VAE_LATENT: usize = 3;
}

/// Digits in a full-size batch.
pub const FULL_BATCH: usize = 8;

/// The model of a case.
#[derive(Clone, Debug)]
pub enum Model<T: Element> {
    /// The zero-digit autoencoder.
    ZeroDigit(ZeroDigit<T>),
    /// The deep autoencoder.
    Deep(DeepAutoencoder<T>),
    /// The regularised or the denoising autoencoder.
    Regularized(RegularizedAutoencoder<T>),
    /// The contractive autoencoder, with either way of computing its penalty.
    Contractive(ContractiveAutoencoder<T>),
    /// The variational autoencoder.
    Vae(Vae<T>),
}

/// The random draws of one training step, fixed.
#[derive(Clone, Debug, Default)]
pub struct Draws<T: Element> {
    /// Masking noise on the input, `[n, d]`, 0 or 1 (denoising only).
    pub noise_mask: Option<Tensor<T>>,
    /// Dropout on the code, `[n, L]`, 0 or `1/(1-p)` (regularised and
    /// denoising).
    pub dropout_mask: Option<Tensor<T>>,
    /// The VAE's standard normal noise, `[n, K]`.
    pub eps: Option<Tensor<T>>,
}

/// A model, a batch of real digits and fixed draws.
#[derive(Clone, Debug)]
pub struct Case<T: Element> {
    /// Which model and penalty this case is.
    pub kind: CaseKind,
    /// The model, with its weights.
    pub model: Model<T>,
    /// The batch, `[n, d]`, pixels in [0, 1].
    pub x: Tensor<T>,
    /// The step's random draws, fixed so that every evaluation of the loss
    /// is the same function.
    pub draws: Draws<T>,
}

impl<T: Element> Case<T> {
    /// A case with freshly initialised weights (seeded, the model's own
    /// initialiser), the first digits of the built-in training set, and
    /// seeded draws. The same seed gives the same numbers in f32 and f64
    /// (rounded), so the two precisions check the same function.
    pub fn new(kind: CaseKind, size: Size, seed: u64) -> Self {
        let model = new_model::<T>(kind, size, seed);
        let n = match size {
            Size::Full => FULL_BATCH,
            Size::Small => small::BATCH,
        };
        let x = match (kind, size) {
            (CaseKind::ZeroDigit, _) => downsampled_batch(n, 5),
            (_, Size::Full) => real_batch(n),
            (_, Size::Small) => downsampled_batch(n, small::SIDE),
        };
        let d = x.shape()[1];
        let mut draws = Draws::default();
        match &model {
            Model::Regularized(m) => {
                let mut rng = StdRng::seed_from_u64(seed ^ 0xd0);
                draws.dropout_mask = Some(m.dropout().mask(&[n, m.latent_dim()], &mut rng));
                if kind == CaseKind::Denoising {
                    let mut ctx = StepCtx::seeded(seed ^ 0x5e);
                    draws.noise_mask = Some(m.noise_mask(&[n, d], &mut ctx));
                }
            }
            Model::Vae(m) => draws.eps = Some(Tensor::normal(&[n, m.latent_dim()], 0.0, 1.0, seed ^ 0xe5)),
            _ => {}
        }
        Case { kind, model, x, draws }
    }

    /// The model's parameters.
    pub fn params(&self) -> &Params<T> {
        match &self.model {
            Model::ZeroDigit(m) => m.params(),
            Model::Deep(m) => m.params(),
            Model::Regularized(m) => m.params(),
            Model::Contractive(m) => m.params(),
            Model::Vae(m) => m.params(),
        }
    }

    /// The same, mutable (to load the reference weights).
    pub fn params_mut(&mut self) -> &mut Params<T> {
        match &mut self.model {
            Model::ZeroDigit(m) => m.params_mut(),
            Model::Deep(m) => m.params_mut(),
            Model::Regularized(m) => m.params_mut(),
            Model::Contractive(m) => m.params_mut(),
            Model::Vae(m) => m.params_mut(),
        }
    }

    /// The model's real training loss on `x` with this case's draws, for
    /// parameters `p` (bound on `x`'s tape).
    pub fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        // These three draw no randomness; the context goes unused.
        let mut ctx = StepCtx::seeded(0);
        let d = &self.draws;
        match &self.model {
            Model::ZeroDigit(m) => m.loss(p, x, &mut ctx).total,
            Model::Deep(m) => m.loss(p, x, &mut ctx).total,
            Model::Contractive(m) => m.loss(p, x, &mut ctx).total,
            Model::Regularized(m) => {
                m.loss_with_masks(p, x, d.noise_mask.as_ref(), d.dropout_mask.as_ref()).total
            }
            Model::Vae(m) => m.loss_with_eps(p, x, d.eps.as_ref().expect("a VAE case has eps")).total,
        }
    }

    /// The loss and its gradients by autodiff: one tape, one backward sweep.
    pub fn autodiff(&self) -> (T, Vec<Tensor<T>>) {
        let tape = Tape::new();
        let p = self.params().bind(&tape);
        let x = tape.constant(&self.x);
        let loss = self.loss(&p, x);
        (loss.item(), grad_values(&[loss], p.vars(), None))
    }

    /// The loss and its gradients by the hand derivation for this model.
    pub fn by_hand(&self) -> Derived<T> {
        let (x, d) = (&self.x, &self.draws);
        match &self.model {
            Model::ZeroDigit(m) => zero_digit::by_hand(m, x),
            Model::Deep(m) => deep::by_hand(m, x),
            Model::Regularized(m) => match &d.noise_mask {
                Some(noise) => denoising::by_hand(m, x, noise, d.dropout_mask.as_ref()),
                None => regularized::by_hand(m, x, d.dropout_mask.as_ref()),
            },
            Model::Contractive(m) => contractive::by_hand(m, x),
            Model::Vae(m) => vae::by_hand(m, x, d.eps.as_ref().expect("a VAE case has eps")),
        }
    }

    /// Autodiff against the hand derivation (the reference).
    pub fn hand_vs_autodiff(&self) -> Comparison {
        let (loss, grads) = self.autodiff();
        let hand = self.by_hand();
        Comparison::new(self.params().names(), (loss, &grads), (hand.loss, &hand.grads))
    }
}

impl Case<f64> {
    /// The loss as a function of the parameter tensors `values` (in the
    /// model's order), evaluated on a fresh tape.
    pub fn loss_at(&self, values: &[Tensor<f64>]) -> f64 {
        let tape = Tape::new();
        let p = Bound::from_vars(values.iter().map(|v| tape.param(v)).collect());
        let x = tape.constant(&self.x);
        self.loss(&p, x).item()
    }

    /// The gradient of the loss by central differences, one parameter
    /// element at a time: `(L(w + eps) - L(w - eps)) / (2 eps)`.
    pub fn finite_differences(&self, eps: f64) -> Vec<Tensor<f64>> {
        let mut values = self.params().tensors().to_vec();
        let mut grads = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let mut g = Tensor::zeros(values[i].shape());
            for j in 0..values[i].len() {
                let w = values[i].data()[j];
                values[i].data_mut()[j] = w + eps;
                let plus = self.loss_at(&values);
                values[i].data_mut()[j] = w - eps;
                let minus = self.loss_at(&values);
                values[i].data_mut()[j] = w;
                g.data_mut()[j] = (plus - minus) / (2.0 * eps);
            }
            grads.push(g);
        }
        grads
    }

    /// [`gradcheck`] of the model's loss as a function of all its
    /// parameters (the batch and the draws held fixed).
    pub fn gradcheck(&self) -> Result<(), GradcheckError> {
        gradcheck(|vars| self.loss_of_vars(vars), self.params().tensors())
    }

    /// [`gradgradcheck`] of the same function: its gradient with respect to
    /// the parameters, recorded with `create_graph`, checked against finite
    /// differences. For the contractive autoencoder in double-backward mode
    /// this differentiates through the recorded Jacobian penalty.
    pub fn gradgradcheck(&self) -> Result<(), GradcheckError> {
        gradgradcheck(|vars| self.loss_of_vars(vars), self.params().tensors())
    }

    fn loss_of_vars<'t>(&self, vars: &[Var<'t, f64>]) -> Vec<Var<'t, f64>> {
        let tape = vars[0].tape();
        let p = Bound::from_vars(vars.to_vec());
        vec![self.loss(&p, tape.constant(&self.x))]
    }
}

fn new_model<T: Element>(kind: CaseKind, size: Size, seed: u64) -> Model<T> {
    use small::*;
    let full = size == Size::Full;
    let regularized = |noise: f64| {
        if full {
            RegularizedConfig { noise, ..RegularizedConfig::default() }
        } else {
            RegularizedConfig {
                input: SIDE * SIDE,
                hidden: REGULARIZED_HIDDEN,
                latent: REGULARIZED_LATENT,
                dropout: REGULARIZED_DROPOUT,
                gamma: REGULARIZED_GAMMA,
                noise,
            }
        }
    };
    let contractive = |penalty: PenaltyMode| {
        let config = if full {
            ContractiveConfig { penalty, ..ContractiveConfig::default() }
        } else {
            ContractiveConfig {
                input: SIDE * SIDE,
                hidden: CONTRACTIVE_HIDDEN,
                lambda: CONTRACTIVE_LAMBDA,
                penalty,
            }
        };
        Model::Contractive(ContractiveAutoencoder::new(&config, seed))
    };
    match kind {
        CaseKind::ZeroDigit => {
            let config =
                if full { ZeroDigitConfig::default() } else { ZeroDigitConfig { hidden: ZERO_DIGIT_HIDDEN } };
            Model::ZeroDigit(ZeroDigit::new(&config, seed))
        }
        CaseKind::Deep => {
            let config = if full {
                DeepConfig::default()
            } else {
                DeepConfig { widths: DEEP_WIDTHS.to_vec(), lambda: DEEP_LAMBDA }
            };
            Model::Deep(DeepAutoencoder::new(&config, seed))
        }
        CaseKind::Regularized => Model::Regularized(RegularizedAutoencoder::new(&regularized(0.0), seed)),
        CaseKind::Denoising => {
            let noise = if full { RegularizedConfig::denoising().noise } else { DENOISING_NOISE };
            Model::Regularized(RegularizedAutoencoder::denoising(&regularized(noise), seed))
        }
        CaseKind::ContractiveDoubleBackward => contractive(PenaltyMode::DoubleBackward),
        CaseKind::ContractiveClosedForm => contractive(PenaltyMode::ClosedForm),
        CaseKind::Vae => {
            let config = if full {
                VaeConfig::default()
            } else {
                VaeConfig { input: SIDE * SIDE, hidden: VAE_HIDDEN, latent: VAE_LATENT }
            };
            Model::Vae(Vae::new(&config, seed))
        }
    }
}
