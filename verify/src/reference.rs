//! The outside witness: the losses and gradients PyTorch computes for small
//! versions of the same models.
//!
//! `verify/reference/make_reference.py` builds every autoencoder in PyTorch
//! at the small sizes of [`crate::cases::small`], with fixed weights, three
//! real digits and fixed draws (dropout mask, noise mask, `eps`), and stores
//! all of it, with PyTorch's loss and gradients, in
//! `verify/reference/reference.safetensors` (float64). That file is compiled
//! into this crate, so checking against it needs no Python; only
//! regenerating it does (see `verify/reference/README.md`).
//!
//! [`Reference::case`] turns one entry into a [`Case`] (the gradtape model
//! with PyTorch's weights, batch and draws), and [`Reference::compare`]
//! compares both the engine's autodiff and the hand derivation with
//! PyTorch's numbers.

use crate::cases::{small, Case, CaseKind, Size};
use crate::compare::Comparison;
use gradtape::Tensor;
use gradtape_kernels::compare::{check_close, Tol};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};

/// The reference data, as committed.
static FILE: &[u8] = include_bytes!("../reference/reference.safetensors");

/// Where the file lives in the repository (for messages).
pub const PATH: &str = "verify/reference/reference.safetensors";

/// Agreement required with PyTorch: relative, per parameter.
pub const TOLERANCE: f64 = 1e-6;

/// The tensors and metadata of a reference file.
#[derive(Clone, Debug)]
pub struct Reference {
    tensors: BTreeMap<String, Tensor<f64>>,
    metadata: HashMap<String, String>,
}

/// One model's numbers against PyTorch's.
#[derive(Clone, Debug)]
pub struct ReferenceComparison {
    /// gradtape's autodiff (on the model's real loss) against PyTorch.
    pub autodiff: Comparison,
    /// The hand derivation against PyTorch.
    pub hand: Comparison,
}

impl ReferenceComparison {
    /// Whether both agree with PyTorch to [`TOLERANCE`].
    pub fn within_tolerance(&self) -> bool {
        self.autodiff.within(TOLERANCE) && self.hand.within(TOLERANCE)
    }
}

impl Reference {
    /// The reference data compiled into this crate.
    pub fn embedded() -> Result<Reference, String> {
        Reference::parse(FILE)
    }

    /// Reads a reference file's bytes (float64 safetensors).
    pub fn parse(bytes: &[u8]) -> Result<Reference, String> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| format!("{PATH}: {e}"))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("{PATH}: {e}"))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.iter() {
            if view.dtype() != Dtype::F64 {
                return Err(format!("{PATH}: tensor {name} is {:?}, expected F64", view.dtype()));
            }
            let data: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let tensor =
                Tensor::try_from_vec(data, view.shape()).map_err(|e| format!("{PATH}: {name}: {e}"))?;
            tensors.insert(name.to_string(), tensor);
        }
        Ok(Reference { tensors, metadata: header.metadata().clone().unwrap_or_default() })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor<f64>, String> {
        self.tensors.get(name).ok_or_else(|| format!("{PATH} has no tensor {name}; regenerate it"))
    }

    /// A metadata entry (the sizes, the PyTorch version, ...).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The PyTorch version that made the file.
    pub fn torch_version(&self) -> &str {
        self.metadata("torch").unwrap_or("unknown")
    }

    /// Checks that the file was made for the sizes in [`crate::cases::small`].
    pub fn check_sizes(&self) -> Result<(), String> {
        let int = |v: usize| v.to_string();
        let float = |v: f64| v;
        let expected_ints = [
            ("batch", int(small::BATCH)),
            ("side", int(small::SIDE)),
            ("zero-digit.hidden", int(small::ZERO_DIGIT_HIDDEN)),
            ("deep.widths", small::DEEP_WIDTHS.map(|w| w.to_string()).join(",")),
            ("regularized.hidden", int(small::REGULARIZED_HIDDEN)),
            ("regularized.latent", int(small::REGULARIZED_LATENT)),
            ("contractive.hidden", int(small::CONTRACTIVE_HIDDEN)),
            ("vae.hidden", int(small::VAE_HIDDEN)),
            ("vae.latent", int(small::VAE_LATENT)),
        ];
        for (key, want) in expected_ints {
            let got = self.metadata(key).unwrap_or("(missing)");
            if got != want {
                return Err(format!("{PATH} was made with {key} = {got}, but the Rust side uses {want}"));
            }
        }
        let expected_floats = [
            ("deep.lambda", float(small::DEEP_LAMBDA)),
            ("regularized.dropout", float(small::REGULARIZED_DROPOUT)),
            ("regularized.gamma", float(small::REGULARIZED_GAMMA)),
            ("denoising.noise", float(small::DENOISING_NOISE)),
            ("contractive.lambda", float(small::CONTRACTIVE_LAMBDA)),
        ];
        for (key, want) in expected_floats {
            let got = self.metadata(key).and_then(|v| v.parse::<f64>().ok());
            if got != Some(want) {
                return Err(format!("{PATH} was made with {key} = {got:?}, but the Rust side uses {want}"));
            }
        }
        Ok(())
    }

    /// The gradtape model of `kind` at the small size, with PyTorch's
    /// weights, batch and draws loaded. Fails if the file's parameters do
    /// not match the model's names and shapes one for one, or if its batch
    /// is not the first real digits of the built-in data.
    pub fn case(&self, kind: CaseKind) -> Result<Case<f64>, String> {
        self.check_sizes()?;
        let name = kind.reference_name();
        let mut case = Case::<f64>::new(kind, Size::Small, 0);
        let own_batch = case.x.clone();
        let prefix = format!("{name}/param/");
        let in_file = self.tensors.keys().filter(|k| k.starts_with(&prefix)).count();
        if in_file != case.params().len() {
            return Err(format!(
                "{PATH}: {name} has {in_file} parameters, gradtape's model has {}",
                case.params().len()
            ));
        }
        for (pname, target) in case.params_mut().named_mut() {
            let stored = self.tensor(&format!("{prefix}{pname}"))?;
            if stored.shape() != target.shape() {
                return Err(format!(
                    "{PATH}: {name} parameter {pname} has shape {:?}, gradtape's has {:?}",
                    stored.shape(),
                    target.shape()
                ));
            }
            *target = stored.clone();
        }
        case.x = self.tensor(&format!("{name}/x"))?.clone();
        let same_batch = case.x.shape() == own_batch.shape()
            && check_close("batch", &case.x, &own_batch, Tol::abs(1e-12)).is_ok();
        if !same_batch {
            return Err(format!("{PATH}: the batch of {name} is not the first real digits, shrunk"));
        }
        let optional = |key: &str| self.tensors.get(&format!("{name}/{key}")).cloned();
        case.draws.noise_mask = optional("noise_mask");
        case.draws.dropout_mask = optional("dropout_mask");
        case.draws.eps = optional("eps");
        for (key, required) in [
            ("noise_mask", kind == CaseKind::Denoising),
            ("dropout_mask", matches!(kind, CaseKind::Regularized | CaseKind::Denoising)),
            ("eps", kind == CaseKind::Vae),
        ] {
            if required && optional(key).is_none() {
                return Err(format!("{PATH}: {name} has no {key}"));
            }
        }
        Ok(case)
    }

    /// PyTorch's loss and gradients for `kind`, in gradtape's parameter
    /// order (`names`).
    pub fn expected(&self, kind: CaseKind, names: &[String]) -> Result<(f64, Vec<Tensor<f64>>), String> {
        let name = kind.reference_name();
        let loss = self.tensor(&format!("{name}/loss"))?.item();
        let grads = names
            .iter()
            .map(|p| self.tensor(&format!("{name}/grad/{p}")).cloned())
            .collect::<Result<_, _>>()?;
        Ok((loss, grads))
    }

    /// gradtape's autodiff and the hand derivation, each against PyTorch.
    pub fn compare(&self, kind: CaseKind) -> Result<ReferenceComparison, String> {
        let case = self.case(kind)?;
        let names = case.params().names();
        let (loss, grads) = self.expected(kind, names)?;
        let (auto_loss, auto) = case.autodiff();
        let hand = case.by_hand();
        Ok(ReferenceComparison {
            autodiff: Comparison::new(names, (auto_loss, &auto), (loss, &grads)),
            hand: Comparison::new(names, (hand.loss, &hand.grads), (loss, &grads)),
        })
    }
}
