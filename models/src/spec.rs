//! A model described by plain settings, so it can be built from the
//! command line and rebuilt from a checkpoint.
//!
//! [`ModelSpec`] holds the kind and every size and weight a member of the
//! family needs; [`ModelSpec::build`] makes the model, and
//! [`ModelSpec::to_metadata`] / [`ModelSpec::from_metadata`] turn the spec
//! into the string key-value pairs a safetensors checkpoint stores. The
//! defaults are the tutorials' (and `torch_train_ref.py`'s) settings.

use crate::autoencoders::*;
use crate::state_dict::{load_state_dict, StateDict, StateDictError};
use gradtape::Element;
use std::collections::HashMap;

/// The widest layer a spec may ask for.
pub const MAX_WIDTH: usize = 65_536;

/// The most parameters a spec may ask for: 2^26, 256 MiB of f32 weights
/// (768 MiB with Adam's two moments, which is what bounds a checkpoint: see
/// [`crate::checkpoint::MAX_CHECKPOINT_BYTES`]). The tutorial-size models
/// have 0.5 thousand to 240 thousand.
pub const MAX_PARAMETERS: u64 = 1 << 26;

/// A setting of a [`ModelSpec`] that cannot be used: its key (as in
/// [`ModelSpec::to_metadata`]: `widths`, `dropout`, ...) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecProblem {
    /// The setting at fault, by its metadata key (`widths`, `dropout`, ...).
    pub key: &'static str,
    /// What is wrong with it, in words that read after the key
    /// (`0.5 must be in [0, 1)` reads as `dropout 0.5 must be in [0, 1)`).
    pub problem: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.key, self.problem)
    }
}

/// Everything needed to build one autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Which member of the family to build.
    pub kind: ModelKind,
    /// Encoder widths from the input to the code (the deep model uses all
    /// of them; the others use `[input, hidden, latent]`).
    pub widths: Vec<usize>,
    /// Code-size penalty (deep) or Jacobian penalty (contractive).
    pub lambda: f64,
    /// Weight-decay penalty (regularized, denoising).
    pub gamma: f64,
    /// Dropout on the code (regularized, denoising).
    pub dropout: f64,
    /// Masking-noise rate (denoising).
    pub noise: f64,
    /// How the contractive penalty is computed.
    pub penalty: PenaltyMode,
}

/// Training settings that go with a model by default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainDefaults {
    /// Training samples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Passes over the training set.
    pub epochs: usize,
}

impl ModelSpec {
    /// The tutorial's settings for `kind`.
    pub fn default_for(kind: ModelKind) -> ModelSpec {
        let base = ModelSpec {
            kind,
            widths: vec![784, 64, 2],
            lambda: 0.0,
            gamma: 0.0,
            dropout: 0.0,
            noise: 0.0,
            penalty: PenaltyMode::DoubleBackward,
        };
        match kind {
            ModelKind::ZeroDigit => ModelSpec { widths: vec![25, 10], ..base },
            ModelKind::Deep => {
                let d = DeepConfig::default();
                ModelSpec { widths: d.widths, lambda: d.lambda, ..base }
            }
            ModelKind::Regularized | ModelKind::Denoising => {
                let r = if kind == ModelKind::Denoising {
                    RegularizedConfig::denoising()
                } else {
                    RegularizedConfig::default()
                };
                ModelSpec {
                    widths: vec![r.input, r.hidden, r.latent],
                    gamma: r.gamma,
                    dropout: r.dropout,
                    noise: r.noise,
                    ..base
                }
            }
            ModelKind::Contractive => {
                let c = ContractiveConfig::default();
                ModelSpec { widths: vec![c.input, c.hidden], lambda: c.lambda, penalty: c.penalty, ..base }
            }
            ModelKind::Vae => {
                let v = VaeConfig::default();
                ModelSpec { widths: vec![v.input, v.hidden, v.latent], ..base }
            }
        }
    }

    /// The tutorial's batch size, learning rate (Adam) and epochs for `kind`.
    pub fn train_defaults(kind: ModelKind) -> TrainDefaults {
        match kind {
            ModelKind::ZeroDigit => TrainDefaults { batch_size: 1, lr: 1e-2, epochs: 500 },
            ModelKind::Deep | ModelKind::Regularized | ModelKind::Denoising => {
                TrainDefaults { batch_size: 256, lr: 1e-3, epochs: 10 }
            }
            ModelKind::Contractive => TrainDefaults { batch_size: 128, lr: 1e-3, epochs: 10 },
            ModelKind::Vae => TrainDefaults { batch_size: 64, lr: 1e-3, epochs: 10 },
        }
    }

    /// The width of the first hidden layer.
    pub fn hidden(&self) -> usize {
        self.widths[1]
    }

    /// The code size.
    pub fn latent(&self) -> usize {
        match self.kind {
            ModelKind::ZeroDigit | ModelKind::Contractive => self.widths[1],
            _ => *self.widths.last().expect("widths is never empty"),
        }
    }

    /// Sets the first hidden width (`--hidden`).
    pub fn set_hidden(&mut self, hidden: usize) {
        self.widths[1] = hidden;
    }

    /// Sets the code size (`--latent`); for models whose code is their
    /// hidden layer (zero-digit, contractive) that is the same number.
    pub fn set_latent(&mut self, latent: usize) {
        match self.kind {
            ModelKind::ZeroDigit | ModelKind::Contractive => self.widths[1] = latent,
            _ => *self.widths.last_mut().expect("widths is never empty") = latent,
        }
    }

    /// Checks the settings; the error names the setting (`dropout 2 must
    /// be in [0, 1)`). See [`ModelSpec::check`] for the setting's key.
    pub fn validate(&self) -> Result<(), String> {
        self.check().map_err(|p| p.to_string())
    }

    /// Checks the settings: every width in `1..=`[`MAX_WIDTH`], enough of
    /// them for the kind, at most [`MAX_PARAMETERS`] parameters in all, the
    /// rates in `[0, 1)` and the penalty weights finite and not negative.
    /// Nothing is allocated, so a spec from a flag or a file is checked
    /// before its model is built.
    pub fn check(&self) -> Result<(), SpecProblem> {
        let problem = |key: &'static str, problem: String| Err(SpecProblem { key, problem });
        let need = match self.kind {
            ModelKind::ZeroDigit | ModelKind::Contractive | ModelKind::Deep => 2,
            _ => 3,
        };
        let exact = match self.kind {
            ModelKind::Deep => None,
            _ => Some(need),
        };
        if self.widths.len() < need || exact.is_some_and(|n| self.widths.len() != n) {
            let want = if exact.is_some() { "exactly" } else { "at least" };
            return problem("widths", format!("{:?}: {} needs {want} {need} widths", self.widths, self.kind));
        }
        if let Some(w) = self.widths.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return problem("widths", format!("{:?}: width {w} is not in 1..={MAX_WIDTH}", self.widths));
        }
        if self.kind == ModelKind::ZeroDigit && self.widths[0] != 25 {
            return problem(
                "widths",
                format!("{:?}: the zero-digit model's input is 25 pixels", self.widths),
            );
        }
        let count = self.parameter_count();
        if count > MAX_PARAMETERS as u128 {
            return problem(
                "widths",
                format!(
                    "{:?}: {count} parameters, over the limit of {MAX_PARAMETERS} (2^26, 256 MiB of f32)",
                    self.widths
                ),
            );
        }
        for (key, v) in [("dropout", self.dropout), ("noise", self.noise)] {
            if !(0.0..1.0).contains(&v) {
                return problem(key, format!("{v} must be in [0, 1)"));
            }
        }
        for (key, v) in [("lambda", self.lambda), ("gamma", self.gamma)] {
            if !v.is_finite() || v < 0.0 {
                return problem(key, format!("{v} must be finite and not negative"));
            }
        }
        Ok(())
    }

    /// How many numbers the model's weights and biases hold, computed from
    /// the widths alone (exact for any widths, so a huge request is caught
    /// before anything is allocated).
    pub fn parameter_count(&self) -> u128 {
        let w: Vec<u128> = self.widths.iter().map(|&w| w as u128).collect();
        // Each encoder layer a -> b has a*b + b numbers, its decoder mirror
        // b -> a has b*a + a.
        let mirrored: u128 = w.windows(2).map(|p| 2 * p[0] * p[1] + p[0] + p[1]).sum();
        match self.kind {
            // The VAE's encoder has a second head (log-variance) beside mu.
            ModelKind::Vae if w.len() == 3 => mirrored + w[1] * w[2] + w[2],
            _ => mirrored,
        }
    }

    /// Builds the model with seeded initial weights, in f32 (training).
    /// For another precision (f64, to check gradients) use
    /// [`ModelSpec::build_in`]`::<f64>`: a trait object cannot be generic
    /// over the number type, so the precision is chosen by the call.
    pub fn build(&self, seed: u64) -> Box<dyn Autoencoder<f32>> {
        self.build_in::<f32>(seed)
    }

    /// Builds the model from named tensors (a PyTorch `state_dict`), checked
    /// like `load_state_dict(strict=True)`: the error lists every missing,
    /// unexpected and mis-shaped name. The model is in training mode, as
    /// [`ModelSpec::build`] leaves it. Use [`ModelSpec::sized_from`] first to
    /// take the sizes from the tensors.
    pub fn build_from<T: Element, U: Element>(
        &self,
        tensors: &StateDict<U>,
    ) -> Result<Box<dyn Autoencoder<T>>, StateDictError> {
        let mut model = self.build_in::<T>(0);
        let widths: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        let name = format!("{} ({})", self.kind, widths.join("-"));
        load_state_dict(model.params_mut(), tensors, &name)?;
        Ok(model)
    }

    /// The tutorial's settings for `kind` with the layer sizes read off the
    /// shapes of a state dict's weights (`encoder.0.weight` is
    /// `[hidden, input]`, ...), so that a PyTorch model of any width builds
    /// without its sizes being given. Sizes whose tensor is absent or not a
    /// matrix keep their default; [`ModelSpec::build_from`] then names it.
    pub fn sized_from<U: Element>(kind: ModelKind, tensors: &StateDict<U>) -> ModelSpec {
        let mut spec = ModelSpec::default_for(kind);
        let dims = |name: &str| -> Option<(usize, usize)> {
            let t = tensors.get(&format!("{name}.weight"))?;
            (t.shape().len() == 2).then(|| (t.shape()[0], t.shape()[1]))
        };
        let read = |first: &str, rest: &[&str]| -> Option<Vec<usize>> {
            let (out, inp) = dims(first)?;
            let mut widths = vec![inp, out];
            for name in rest {
                widths.push(dims(name)?.0);
            }
            Some(widths)
        };
        let widths = match kind {
            ModelKind::ZeroDigit => read("encoder", &[]),
            ModelKind::Contractive => read("encoder", &[]),
            ModelKind::Regularized | ModelKind::Denoising => read("encoder.0", &["encoder.2"]),
            ModelKind::Vae => read("encoder.hidden", &["encoder.mu"]),
            ModelKind::Deep => {
                let layers = (0..).take_while(|i| dims(&format!("encoder.{}", 2 * i)).is_some()).count();
                let rest: Vec<String> = (1..layers).map(|i| format!("encoder.{}", 2 * i)).collect();
                let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                read("encoder.0", &rest)
            }
        };
        // The zero-digit model's input is fixed at 25; a file that says
        // otherwise is reported as mis-shaped by `build_from`.
        if let Some(mut w) = widths {
            if kind == ModelKind::ZeroDigit {
                w[0] = 25;
            }
            if !w.contains(&0) {
                spec.widths = w;
            }
        }
        spec
    }

    /// [`ModelSpec::build`] in any precision (f64 for checking).
    pub fn build_in<T: Element>(&self, seed: u64) -> Box<dyn Autoencoder<T>> {
        let w = &self.widths;
        match self.kind {
            ModelKind::ZeroDigit => Box::new(ZeroDigit::new(&ZeroDigitConfig { hidden: w[1] }, seed)),
            ModelKind::Deep => {
                Box::new(DeepAutoencoder::new(&DeepConfig { widths: w.clone(), lambda: self.lambda }, seed))
            }
            ModelKind::Regularized | ModelKind::Denoising => {
                let noise = if self.kind == ModelKind::Denoising { self.noise } else { 0.0 };
                let config = RegularizedConfig {
                    input: w[0],
                    hidden: w[1],
                    latent: w[2],
                    dropout: self.dropout,
                    gamma: self.gamma,
                    noise,
                };
                Box::new(RegularizedAutoencoder::new(&config, seed))
            }
            ModelKind::Contractive => {
                let config = ContractiveConfig {
                    input: w[0],
                    hidden: w[1],
                    lambda: self.lambda,
                    penalty: self.penalty,
                };
                Box::new(ContractiveAutoencoder::new(&config, seed))
            }
            ModelKind::Vae => {
                Box::new(Vae::new(&VaeConfig { input: w[0], hidden: w[1], latent: w[2] }, seed))
            }
        }
    }

    /// The spec as checkpoint metadata (`model`, `widths`, ...).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let widths: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        let penalty = match self.penalty {
            PenaltyMode::DoubleBackward => "double-backward",
            PenaltyMode::DoubleBackwardRows => "double-backward-rows",
            PenaltyMode::DoubleBackwardLoop => "double-backward-loop",
            PenaltyMode::ClosedForm => "closed-form",
        };
        [
            ("model", self.kind.name().to_string()),
            ("widths", widths.join(",")),
            ("lambda", self.lambda.to_string()),
            ("gamma", self.gamma.to_string()),
            ("dropout", self.dropout.to_string()),
            ("noise", self.noise.to_string()),
            ("penalty", penalty.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Reads a spec back from checkpoint metadata; the error names the
    /// missing or malformed key.
    pub fn from_metadata(meta: &HashMap<String, String>) -> Result<ModelSpec, String> {
        let get = |key: &str| meta.get(key).ok_or_else(|| format!("metadata has no '{key}' entry"));
        let num = |key: &str| -> Result<f64, String> {
            get(key)?
                .parse::<f64>()
                .map_err(|_| format!("metadata '{key}' = {:?} is not a number", meta[key]))
        };
        let kind: ModelKind = get("model")?.parse()?;
        let widths = get("widths")?
            .split(',')
            .map(|w| {
                w.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("metadata 'widths' = {:?} is malformed", meta["widths"]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ModelSpec {
            kind,
            widths,
            lambda: num("lambda")?,
            gamma: num("gamma")?,
            dropout: num("dropout")?,
            noise: num("noise")?,
            penalty: get("penalty")?.parse()?,
        };
        spec.check().map_err(|p| format!("metadata '{}': {}", p.key, p.problem))?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_metadata_and_builds() {
        for kind in ModelKind::ALL {
            let mut spec = ModelSpec::default_for(kind);
            spec.set_latent(3);
            spec.validate().unwrap();
            let back = ModelSpec::from_metadata(&spec.to_metadata()).unwrap();
            assert_eq!(back, spec);
            let model = spec.build(0);
            assert_eq!(model.kind(), kind);
            assert_eq!(model.latent_dim(), 3, "{kind}");
        }
    }

    /// A model's own parameters as a state dict.
    fn state_dict_of(model: &dyn Autoencoder<f32>) -> StateDict<f32> {
        model.params().named().into_iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
    }

    #[test]
    fn every_kind_builds_from_its_state_dict_with_the_sizes_read_off_the_shapes() {
        for kind in ModelKind::ALL {
            let mut spec = ModelSpec::default_for(kind);
            spec.widths = match kind {
                ModelKind::ZeroDigit => vec![25, 3],
                ModelKind::Contractive => vec![20, 5],
                ModelKind::Deep => vec![20, 9, 7, 4],
                _ => vec![20, 6, 3],
            };
            let source = spec.build(7);
            let dict = state_dict_of(source.as_ref());
            let sized = ModelSpec::sized_from(kind, &dict);
            assert_eq!(sized.widths, spec.widths, "{kind}");
            let built = sized.build_from::<f64, f32>(&dict).unwrap();
            assert_eq!(built.kind(), kind);
            for ((n, a), (m, b)) in built.params().named().into_iter().zip(source.params().named()) {
                assert_eq!(n, m);
                assert_eq!(a, &b.cast::<f64>(), "{kind} {n}");
            }
        }
    }

    #[test]
    fn a_state_dict_that_does_not_fit_is_refused_with_every_problem_named() {
        let spec = ModelSpec { widths: vec![16, 8, 6, 3], ..ModelSpec::default_for(ModelKind::Deep) };
        let mut dict = state_dict_of(spec.build(0).as_ref());
        dict.remove("encoder.2.bias");
        dict.remove("decoder.4.weight");
        dict.insert("encoder.1.weight".into(), gradtape::Tensor::zeros(&[2, 2]));
        dict.insert("decoder.0.bias".into(), gradtape::Tensor::zeros(&[5]));
        dict.insert("encoder.0.weight".into(), gradtape::Tensor::zeros(&[16, 8]));
        let err = spec.build_from::<f32, f32>(&dict).err().expect("refused");
        assert_eq!(err.missing, ["encoder.2.bias", "decoder.4.weight"]);
        assert_eq!(err.unexpected, ["encoder.1.weight"]);
        assert_eq!(
            err.mis_shaped,
            [
                ("encoder.0.weight".to_string(), vec![8, 16], vec![16, 8]),
                ("decoder.0.bias".to_string(), vec![6], vec![5])
            ]
        );
        let message = err.to_string();
        for name in
            ["encoder.2.bias", "decoder.4.weight", "encoder.1.weight", "encoder.0.weight", "decoder.0.bias"]
        {
            assert!(message.contains(&format!("`{name}`")), "{message}");
        }
        assert!(message.contains("deep (16-8-6-3)"), "{message}");
    }

    #[test]
    fn bad_metadata_names_the_key() {
        let mut meta = ModelSpec::default_for(ModelKind::Deep).to_metadata();
        meta.insert("widths".into(), "784,x".into());
        assert!(ModelSpec::from_metadata(&meta).unwrap_err().contains("widths"));
        meta.remove("model");
        assert!(ModelSpec::from_metadata(&meta).unwrap_err().contains("'model'"));
    }
}
