//! Training checkpoints: the model's parameters, the optimiser's state and
//! the run's settings and history, in one safetensors file.
//!
//! Tensors keep their `state_dict` names (`encoder.0.weight`); optimiser
//! state is stored under `optimizer.` (`optimizer.adam.m.0`). The metadata
//! holds the model spec (so `sample` and `reconstruct` can rebuild the
//! model), the epoch, the seed, the training settings and the per-epoch
//! losses, and what the run trained on (the data's size and checksum and
//! the `--train-limit` / `--test-limit` that cut it), so that `--resume`
//! can refuse to continue a run on other data. Saving is atomic (temporary
//! file, then rename), so an interrupted run or a full disk never leaves a
//! broken checkpoint, and deterministic (sorted metadata, nothing
//! time-dependent), so equal runs give equal files.

use super::CliError;
use gradtape::Tensor;
use gradtape_models::autoencoders::Autoencoder;
use gradtape_models::autoencoders::ModelKind;
use gradtape_models::checkpoint::{self, Checkpoint};
use gradtape_models::files::printable;
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::spec::ModelSpec;
use gradtape_models::state_dict::{first_non_finite, read_state_dict, StateDict};
use std::collections::HashMap;
use std::path::Path;

/// Marks a file as one of ours.
pub const FORMAT: &str = "gradtape-training-checkpoint-1";
/// The prefix of the optimiser's state entries (`optimizer.adam.m.0`).
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Run settings stored beside the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// Epochs completed (0 before the first); `--resume` carries on after it.
    pub epoch: usize,
    /// The run's seed (`--seed`), from which every shuffle and random draw is derived.
    pub seed: u64,
    /// Adam's learning rate (`--lr`).
    pub lr: f64,
    /// Training images per step (`--batch-size`); never 0.
    pub batch_size: usize,
    /// The mean training loss of each completed epoch, one entry per epoch.
    pub train_losses: Vec<f64>,
    /// The test loss after each completed epoch, one entry per epoch.
    pub test_losses: Vec<f64>,
    /// What the run trained and was tested on (absent in checkpoints of
    /// older versions, which cannot be resumed).
    pub data: Option<DataIdentity>,
}

/// The data a run used, as far as a resume must match it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataIdentity {
    /// `built-in` or the `--data` folder (shown, not compared: a folder
    /// may move).
    pub source: String,
    /// Training and test images used (after the limits).
    pub train_images: usize,
    /// Test images used (after the limits).
    pub test_images: usize,
    /// `--train-limit` and `--test-limit` as given.
    pub train_limit: Option<usize>,
    /// `--test-limit` as given; `None` when the flag was not given.
    pub test_limit: Option<usize>,
    /// CRC-32 of every pixel and label used, train then test.
    pub checksum: u32,
}

impl DataIdentity {
    /// The identity of the data sets a run uses.
    pub fn of(
        source: String,
        train: &gradtape_models::data::Dataset,
        test: &gradtape_models::data::Dataset,
        train_limit: Option<usize>,
        test_limit: Option<usize>,
    ) -> DataIdentity {
        let mut crc = crc32fast::Hasher::new();
        let mut bytes = Vec::with_capacity(4 * 4096);
        for set in [train, test] {
            // The pixels' little-endian bytes, a few thousand at a time (one
            // `update` per pixel cost more than the checksum itself).
            for chunk in set.images.data().chunks(4096) {
                bytes.clear();
                bytes.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                crc.update(&bytes);
            }
            crc.update(&set.labels);
        }
        DataIdentity {
            source,
            train_images: train.len(),
            test_images: test.len(),
            train_limit,
            test_limit,
            checksum: crc.finalize(),
        }
    }

    /// The entries that differ from `saved`, as `what: now X, the checkpoint's Y`.
    pub fn differences(&self, saved: &DataIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.train_limit != saved.train_limit {
            out.push(format!(
                "--train-limit {} (the checkpoint's run had {})",
                limit_text(self.train_limit),
                limit_text(saved.train_limit)
            ));
        }
        if self.test_limit != saved.test_limit {
            out.push(format!(
                "--test-limit {} (the checkpoint's run had {})",
                limit_text(self.test_limit),
                limit_text(saved.test_limit)
            ));
        }
        if (self.train_images, self.test_images, self.checksum)
            != (saved.train_images, saved.test_images, saved.checksum)
        {
            out.push(format!(
                "--data {}: {} training and {} test images, checksum {:08x} (the checkpoint's run used {}: {} and \
                 {}, checksum {:08x})",
                self.source,
                self.train_images,
                self.test_images,
                self.checksum,
                printable(&saved.source),
                saved.train_images,
                saved.test_images,
                saved.checksum
            ));
        }
        out
    }
}

/// A data limit as the metadata and the messages write it: the number, or
/// `none`.
fn limit_text(limit: Option<usize>) -> String {
    limit.map_or("none".to_string(), |n| n.to_string())
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
    if let Some(d) = &info.data {
        meta.insert("data".into(), d.source.clone());
        meta.insert("data_train_images".into(), d.train_images.to_string());
        meta.insert("data_test_images".into(), d.test_images.to_string());
        meta.insert("data_crc32".into(), format!("{:08x}", d.checksum));
        meta.insert("train_limit".into(), limit_text(d.train_limit));
        meta.insert("test_limit".into(), limit_text(d.test_limit));
    }
    checkpoint::save(path, &tensors, Some(meta)).map_err(|e| {
        let kept = if info.epoch > 1 {
            format!("the checkpoint of epoch {} is intact", info.epoch - 1)
        } else {
            "no checkpoint was written".to_string()
        };
        CliError::failure(format!("saving the checkpoint of epoch {}: {e}; {kept}", info.epoch))
    })
}

/// `tensor `name`[i, j] is NaN` for the first number in `tensors` that is
/// not finite, if any.
pub fn non_finite<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor<f32>)>) -> Option<String> {
    first_non_finite(tensors).map(|(name, index, x)| format!("tensor `{}`{index:?} is {x}", printable(&name)))
}

/// Weights for a model from a safetensors file (`--weights`,
/// `--init-from`): float32 or float64, and a gradtape checkpoint's
/// optimiser state (`optimizer.*`) left out. See [`weights_of`].
pub fn read_weights(path: &Path, flag: &str) -> Result<StateDict<f32>, CliError> {
    let tensors = read_state_dict(path).map_err(|e| CliError::usage(format!("{flag}: {e}")))?;
    weights_of(tensors, path, flag)
}

/// The weights among named tensors read from `path`: the optimiser state of
/// a gradtape checkpoint is left out (a new run starts Adam anew, and
/// `sample`, `reconstruct` and `encode` need none), and every number must be
/// finite (a NaN weight is bad input, named by its tensor and index).
pub fn weights_of(tensors: StateDict<f32>, path: &Path, flag: &str) -> Result<StateDict<f32>, CliError> {
    let weights: StateDict<f32> =
        tensors.into_iter().filter(|(name, _)| !name.starts_with(OPTIMIZER_PREFIX)).collect();
    if let Some(what) = non_finite(weights.iter().map(|(n, t)| (n.as_str(), t))) {
        return Err(CliError::usage(format!("{flag}: {}: {what}; weights must be finite", path.display())));
    }
    Ok(weights)
}

/// The model of `kind` that `tensors` describe (its sizes read off their
/// shapes), within the limits on widths and parameters a model from any
/// other source has ([`ModelSpec::check`]): checked before anything is
/// allocated, for `--weights` and `--init-from` alike.
pub fn sized_spec(
    kind: ModelKind,
    tensors: &StateDict<f32>,
    path: &Path,
    flag: &str,
) -> Result<ModelSpec, CliError> {
    let spec = ModelSpec::sized_from(kind, tensors);
    spec.check().map_err(|p| {
        CliError::usage(format!(
            "{flag}: {}: the tensors' shapes give {} {}",
            path.display(),
            p.key,
            p.problem
        ))
    })?;
    Ok(spec)
}

/// A checkpoint read back: the spec, the run info, and the file's tensors.
pub struct Loaded {
    /// The model the checkpoint holds, as its metadata describes it.
    pub spec: ModelSpec,
    /// The run's settings and history from the metadata.
    pub info: RunInfo,
    /// The checkpoint itself: the model's and the optimiser's tensors, and the metadata.
    pub file: Checkpoint<f32>,
}

/// Reads a training checkpoint; every problem is a one-line error naming
/// `flag` and the file.
pub fn load(path: &Path, flag: &str) -> Result<Loaded, CliError> {
    let file: Checkpoint<f32> =
        checkpoint::load(path).map_err(|e| CliError::usage(format!("{flag}: {e}")))?;
    from_checkpoint(file, flag)
}

/// Reads the run out of a checkpoint already loaded (its metadata checked
/// entry by entry, its tensors against the model the metadata describes).
pub fn from_checkpoint(file: Checkpoint<f32>, flag: &str) -> Result<Loaded, CliError> {
    let path = file.path().to_path_buf();
    let path = path.as_path();
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
    let whole = |key: &str| -> Result<usize, CliError> {
        let v = field(key);
        v.parse::<usize>().map_err(|_| bad(format!("metadata '{key}' = {v:?} is not a whole number")))
    };
    let lr: f64 = field("lr").parse().map_err(|_| bad("metadata 'lr' is malformed".into()))?;
    if let Err(e) = Adam::<f32>::try_new(lr) {
        return Err(bad(format!("metadata 'lr': {e}")));
    }
    let batch_size = whole("batch_size")?;
    if batch_size == 0 {
        return Err(bad("metadata 'batch_size' is 0".into()));
    }
    let epoch = whole("epoch")?;
    let (train_losses, test_losses) = (list("train_loss")?, list("test_loss")?);
    for (key, v) in [("train_loss", &train_losses), ("test_loss", &test_losses)] {
        if v.len() != epoch {
            return Err(bad(format!("metadata '{key}' has {} values for {epoch} epochs", v.len())));
        }
    }
    let data = if meta.contains_key("data_crc32") {
        let limit = |key: &str| -> Result<Option<usize>, CliError> {
            match field(key).as_str() {
                "none" => Ok(None),
                _ => whole(key).map(Some),
            }
        };
        let crc = field("data_crc32");
        Some(DataIdentity {
            source: field("data"),
            train_images: whole("data_train_images")?,
            test_images: whole("data_test_images")?,
            train_limit: limit("train_limit")?,
            test_limit: limit("test_limit")?,
            checksum: u32::from_str_radix(&crc, 16)
                .map_err(|_| bad(format!("metadata 'data_crc32' = {crc:?} is malformed")))?,
        })
    } else {
        None
    };
    let info = RunInfo {
        epoch,
        seed: field("seed")
            .parse()
            .map_err(|_| bad(format!("metadata 'seed' = {:?} is not a whole number", field("seed"))))?,
        lr,
        batch_size,
        train_losses,
        test_losses,
        data,
    };
    // The tensors are compared with the model the metadata describes before
    // the model is built (its sizes come from the metadata, so a small file
    // must not make it allocate a large model).
    let sized = ModelSpec::sized_from(spec.kind, &file.tensors);
    if sized.widths != spec.widths {
        return Err(bad(format!(
            "metadata 'widths' says {:?} but the tensors are those of {:?}",
            spec.widths, sized.widths
        )));
    }
    let weights = file.tensors.iter().filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX));
    if let Some(what) = non_finite(weights.map(|(n, t)| (n.as_str(), t))) {
        return Err(bad(format!("{what}; a checkpoint's weights are finite")));
    }
    Ok(Loaded { spec, info, file })
}

impl Loaded {
    /// Copies the weights into `model` (checking every name and shape first,
    /// so a mismatch changes nothing).
    pub fn restore_model(&self, model: &mut dyn Autoencoder<f32>, flag: &str) -> Result<(), CliError> {
        let mut targets = model.params_mut().named_mut();
        self.file.copy_into(&mut targets).map_err(|e| CliError::usage(format!("{flag}: {e}")))
    }

    /// Loads the optimiser's state into `opt`, checked against the model's
    /// parameters; a checkpoint without any is refused (a resume that
    /// restarted Adam from zero would not be the run it continues).
    pub fn restore_optimizer(
        &self,
        opt: &mut dyn Optimizer<f32>,
        model: &dyn Autoencoder<f32>,
        flag: &str,
    ) -> Result<(), CliError> {
        let state = self.optimizer_state();
        let bad = |what: String| CliError::usage(format!("{flag}: {}: {what}", self.file.path().display()));
        if state.is_empty() && self.info.epoch > 0 {
            return Err(bad(
                "holds no optimiser state (`optimizer.*`), so the run cannot resume exactly".into()
            ));
        }
        opt.load_state(&state).map_err(|e| bad(format!("optimiser state: {e}")))?;
        let shapes: Vec<&[usize]> = model.params().named().into_iter().map(|(_, t)| t.shape()).collect();
        opt.check_fits(&shapes).map_err(|e| bad(format!("optimiser state: {e}")))
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
