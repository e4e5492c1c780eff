//! Models from named tensors: weights saved by PyTorch come in.
//!
//! Every model names its parameters as the matching PyTorch module's
//! `state_dict` does (`encoder.0.weight`, `encoder.mu.bias`, ...), so a file
//! written by `safetensors.torch.save_file(model.state_dict(), path)` loads by
//! name. [`load_state_dict`] is PyTorch's `load_state_dict(strict=True)`:
//! every parameter must be there with its shape, nothing else may be, and a
//! refusal lists **all** the missing, unexpected and mis-shaped names at once
//! (then changes nothing). [`crate::spec::ModelSpec::build_from`] builds a
//! model from a state dict, and [`crate::spec::ModelSpec::sized_from`] reads
//! the layer sizes off the tensors' shapes, so a PyTorch model of any width
//! loads without its sizes being typed in. [`read_state_dict`] reads a file
//! in float32 or float64 (`model.double().state_dict()`).

use crate::checkpoint::{self, CheckpointError};
use crate::files::printable;
use crate::params::Params;
use gradtape::{Element, Tensor};
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Named tensors, like a PyTorch `state_dict`.
pub type StateDict<T> = BTreeMap<String, Tensor<T>>;

/// Why a state dict does not fit a model: every problem, not the first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDictError {
    /// The model it was meant for (`deep 16-8-6-3`, ...), for the message.
    pub model: String,
    /// Parameters of the model that the state dict lacks.
    pub missing: Vec<String>,
    /// Tensors of the state dict that the model has no parameter for.
    pub unexpected: Vec<String>,
    /// `(name, the model's shape, the state dict's shape)` where they differ.
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl StateDictError {
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mis_shaped.is_empty()
    }
}

impl fmt::Display for StateDictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |names: &[String]| {
            names.iter().map(|n| format!("`{}`", printable(n))).collect::<Vec<_>>().join(", ")
        };
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing {}", list(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected {}", list(&self.unexpected)));
        }
        if !self.mis_shaped.is_empty() {
            let shapes: Vec<String> = self
                .mis_shaped
                .iter()
                .map(|(n, want, got)| {
                    format!("`{}` is {got:?} in the file, the model's is {want:?}", printable(n))
                })
                .collect();
            parts.push(format!("wrong shape: {}", shapes.join(", ")));
        }
        write!(f, "the weights do not fit the {} model: {}", self.model, parts.join("; "))
    }
}

impl std::error::Error for StateDictError {}

/// Checks `tensors` against `params` by name and shape, as PyTorch's
/// `load_state_dict(strict=True)` does, collecting every problem.
pub fn check_state_dict<T: Element, U: Element>(
    params: &Params<T>,
    tensors: &StateDict<U>,
    model: &str,
) -> Result<(), StateDictError> {
    let mut err = StateDictError { model: model.to_string(), ..Default::default() };
    for (name, target) in params.named() {
        match tensors.get(name) {
            None => err.missing.push(name.to_string()),
            Some(t) if t.shape() != target.shape() => {
                err.mis_shaped.push((name.to_string(), target.shape().to_vec(), t.shape().to_vec()))
            }
            Some(_) => {}
        }
    }
    err.unexpected = tensors.keys().filter(|k| params.by_name(k).is_none()).cloned().collect();
    if err.is_empty() {
        Ok(())
    } else {
        Err(err)
    }
}

/// Copies `tensors` into `params` by name (converted to `T`, onto the
/// parameters' device) after [`check_state_dict`]; on error nothing changes.
pub fn load_state_dict<T: Element, U: Element>(
    params: &mut Params<T>,
    tensors: &StateDict<U>,
    model: &str,
) -> Result<(), StateDictError> {
    check_state_dict(params, tensors, model)?;
    for (name, target) in params.named_mut() {
        *target = tensors[name].cast::<T>().to(target.device());
    }
    Ok(())
}

/// Reads every tensor of a safetensors file as `f32`, whether it was
/// stored in float32 (PyTorch's default) or float64; a file that mixes the
/// two is refused naming one tensor of each. The file is read as
/// [`checkpoint::load`] reads one: a regular file (never a pipe, which
/// would block) of at most [`checkpoint::MAX_CHECKPOINT_BYTES`].
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<StateDict<f32>, CheckpointError> {
    let path = path.as_ref();
    state_dict_from_bytes(&checkpoint::read_bounded(path, checkpoint::MAX_CHECKPOINT_BYTES)?, path)
}

/// [`read_state_dict`] of a file's bytes already in memory; `path` names it
/// in errors.
pub fn state_dict_from_bytes(bytes: &[u8], path: &Path) -> Result<StateDict<f32>, CheckpointError> {
    match checkpoint::load_from_bytes::<f32>(bytes, path) {
        Ok(file) => Ok(file.tensors),
        Err(CheckpointError::WrongDtype { found: Dtype::F64, name: f64_name, .. }) => {
            match checkpoint::load_from_bytes::<f64>(bytes, path) {
                Ok(file) => Ok(file.tensors.into_iter().map(|(k, t)| (k, t.cast())).collect()),
                Err(CheckpointError::WrongDtype { found: Dtype::F32, name: f32_name, .. }) => {
                    Err(CheckpointError::MixedDtypes { path: path.to_path_buf(), f64_name, f32_name })
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The first number in `tensors` (in the order given) that is NaN or
/// infinite: the tensor's name, the number's index in it (one entry per
/// axis) and its value.
pub fn first_non_finite<'a, T: Element + 'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor<T>)>,
) -> Option<(String, Vec<usize>, f64)> {
    tensors
        .into_iter()
        .find_map(|(name, t)| find(t, |x| !x.is_finite()).map(|(index, x)| (name.to_string(), index, x)))
}

/// The first number of `t` for which `bad` holds: its index (one entry per
/// axis) and its value.
pub fn find<T: Element>(t: &Tensor<T>, bad: impl Fn(f64) -> bool) -> Option<(Vec<usize>, f64)> {
    let host = t.to_cpu();
    let flat = host.data().iter().position(|x| bad(x.as_f64()))?;
    let mut index = vec![0; t.shape().len()];
    let mut rest = flat;
    for (axis, &len) in t.shape().iter().enumerate().rev() {
        index[axis] = rest % len.max(1);
        rest /= len.max(1);
    }
    Some((index, host.data()[flat].as_f64()))
}
