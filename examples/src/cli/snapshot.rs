//! Training checkpoints: the model's parameters, the optimiser's state and
//! the run's settings and history, in one safetensors file.
//!
//! Tensors keep their `state_dict` names (`encoder.0.weight`); optimiser
//! state is stored under `optimizer.` (`optimizer.adam.m.0`). The metadata
//! holds the model spec (so `sample` and `reconstruct` can rebuild the
//! model), the epoch, the seed, the training settings and the per-epoch
//! losses. Saving is atomic (temporary file, then rename), so an
//! interrupted run never leaves a broken checkpoint.

use super::CliError;
use gradtape::Tensor;
use gradtape_models::autoencoders::Autoencoder;
use gradtape_models::checkpoint::{self, Checkpoint};
use gradtape_models::optim::Optimizer;
use gradtape_models::spec::ModelSpec;
use std::collections::HashMap;
use std::path::Path;

/// Marks a file as one of ours.
pub const FORMAT: &str = "gradtape-training-checkpoint-1";
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Run settings stored beside the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub epoch: usize,
    pub seed: u64,
    pub lr: f64,
    pub batch_size: usize,
    pub train_losses: Vec<f64>,
    pub test_losses: Vec<f64>,
}

/// Writes a training checkpoint atomically.
pub fn save(
    path: &Path,
    spec: &ModelSpec,
    model: &dyn Autoencoder<f32>,
    opt: &dyn Optimizer<f32>,
    info: &RunInfo,
) -> Result<(), CliError> {
    let state = opt.state();
    let mut tensors: Vec<(String, &Tensor<f32>)> =
        model.params().named().into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    tensors.extend(state.iter().map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)));
    let mut meta = spec.to_metadata();
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
    meta.insert("format".into(), FORMAT.into());
    meta.insert("epoch".into(), info.epoch.to_string());
    meta.insert("seed".into(), info.seed.to_string());
    meta.insert("lr".into(), format!("{:e}", info.lr));
    meta.insert("batch_size".into(), info.batch_size.to_string());
    meta.insert("train_loss".into(), list(&info.train_losses));
    meta.insert("test_loss".into(), list(&info.test_losses));
    checkpoint::save(path, &tensors, Some(meta))
        .map_err(|e| CliError::failure(format!("saving checkpoint: {e}")))
}

/// A checkpoint read back: the spec, the run info, and the file's tensors.
pub struct Loaded {
    pub spec: ModelSpec,
    pub info: RunInfo,
    pub file: Checkpoint<f32>,
}

/// Reads a training checkpoint; every problem is a one-line error naming
/// `flag` and the file.
pub fn load(path: &Path, flag: &str) -> Result<Loaded, CliError> {
    let file: Checkpoint<f32> =
        checkpoint::load(path).map_err(|e| CliError::usage(format!("{flag}: {e}")))?;
    let meta = &file.metadata;
    let bad = |what: String| CliError::usage(format!("{flag}: {}: {what}", path.display()));
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad("not a gradtape training checkpoint (no format entry)".into()));
    }
    let spec = ModelSpec::from_metadata(meta).map_err(bad)?;
    let field = |key: &str| meta.get(key).cloned().unwrap_or_default();
    let list = |key: &str| -> Result<Vec<f64>, CliError> {
        let v = field(key);
        if v.is_empty() {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(|x| x.parse::<f64>().map_err(|_| bad(format!("metadata '{key}' is malformed"))))
            .collect()
    };
    let info = RunInfo {
        epoch: field("epoch").parse().map_err(|_| bad("metadata 'epoch' is malformed".into()))?,
        seed: field("seed").parse().map_err(|_| bad("metadata 'seed' is malformed".into()))?,
        lr: field("lr").parse().map_err(|_| bad("metadata 'lr' is malformed".into()))?,
        batch_size: field("batch_size")
            .parse()
            .map_err(|_| bad("metadata 'batch_size' is malformed".into()))?,
        train_losses: list("train_loss")?,
        test_losses: list("test_loss")?,
    };
    Ok(Loaded { spec, info, file })
}

impl Loaded {
    /// Copies the weights into `model` (checking every name and shape first,
    /// so a mismatch changes nothing).
    pub fn restore_model(&self, model: &mut dyn Autoencoder<f32>, flag: &str) -> Result<(), CliError> {
        let mut targets = model.params_mut().named_mut();
        self.file.copy_into(&mut targets).map_err(|e| CliError::usage(format!("{flag}: {e}")))
    }

    /// The optimiser's state, with its names as the optimiser wrote them.
    pub fn optimizer_state(&self) -> Vec<(String, Tensor<f32>)> {
        self.file
            .tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(OPTIMIZER_PREFIX).map(|n| (n.to_string(), t.clone())))
            .collect()
    }

    /// The metadata as stored.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.file.metadata
    }
}
