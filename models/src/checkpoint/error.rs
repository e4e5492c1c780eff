//! What can go wrong saving or loading a checkpoint, and the one-line
//! message for each: every message names the file, and where it can the
//! tensor or metadata entry.

use crate::files::printable;
use safetensors::Dtype;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// A problem saving or loading a checkpoint; every message names the file.
#[derive(Debug)]
pub enum CheckpointError {
    /// The file could not be read, written, synced or renamed.
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What was being done, as the message says it (`read`, `write`,
        /// `sync to disk`, ...).
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The bytes are not a valid safetensors file (corrupt or truncated).
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// The safetensors parser's account of what is wrong.
        detail: String,
    },
    /// A tensor is stored in another precision than the one asked for.
    WrongDtype {
        /// The checkpoint file.
        path: PathBuf,
        /// The first tensor found in the other precision.
        name: String,
        /// The precision asked for (the element type of the load).
        expected: Dtype,
        /// The precision the tensor is stored in.
        found: Dtype,
    },
    /// Tensors the caller expects are not in the file.
    MissingTensors {
        /// The checkpoint file.
        path: PathBuf,
        /// The names asked for that the file lacks.
        missing: Vec<String>,
        /// Every name the file does hold, sorted, to help spot a misspelling.
        available: Vec<String>,
    },
    /// The file holds tensors the caller did not ask for ([`load_into`](super::load_into) is
    /// strict, like PyTorch's `load_state_dict`).
    UnexpectedTensors {
        /// The checkpoint file.
        path: PathBuf,
        /// The names in the file that no target has.
        unexpected: Vec<String>,
    },
    /// A tensor's shape in the file differs from the target's.
    WrongShape {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor whose shape differs.
        name: String,
        /// The target's shape.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
    },
    /// A name cannot be saved: empty, `__metadata__` (reserved by the
    /// format), or given twice.
    BadName {
        /// The checkpoint file.
        path: PathBuf,
        /// The name refused.
        name: String,
        /// Which of the three it is, as the message says it.
        why: &'static str,
    },
    /// The path is not a regular file: what it is (a folder, a named pipe,
    /// a device; for an output, a symbolic link too).
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead (`a folder`, `a named pipe`, ...).
        what: &'static str,
    },
    /// The file mixes precisions: `f64_name` is F64 and `f32_name` F32.
    MixedDtypes {
        /// The checkpoint file.
        path: PathBuf,
        /// A tensor stored as F64.
        f64_name: String,
        /// A tensor stored as F32.
        f32_name: String,
    },
    /// The file is larger than [`MAX_CHECKPOINT_BYTES`](super::MAX_CHECKPOINT_BYTES).
    TooLarge {
        /// The checkpoint file.
        path: PathBuf,
        /// Its size in bytes (or what was read of it before the limit was passed).
        size: u64,
        /// The limit in bytes, [`MAX_CHECKPOINT_BYTES`](super::MAX_CHECKPOINT_BYTES) for [`load`](super::load).
        limit: u64,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        match self {
            Io { path, action, source } => write!(f, "{}: cannot {action}: {source}", path.display()),
            Corrupt { path, detail } => {
                write!(f, "{}: not a valid safetensors file (corrupt or truncated): {detail}", path.display())
            }
            WrongDtype { path, name, expected, found } => write!(
                f,
                "{}: tensor `{}` is stored as {found}, expected {expected}",
                path.display(),
                printable(name)
            ),
            MixedDtypes { path, f64_name, f32_name } => write!(
                f,
                "{}: tensor `{}` is stored as F64 but `{}` as F32; save every tensor in one precision \
                 (float32 or float64)",
                path.display(),
                printable(f64_name),
                printable(f32_name)
            ),
            MissingTensors { path, missing, available } => write!(
                f,
                "{}: missing tensor(s) {}; the file holds {}",
                path.display(),
                quoted(missing),
                if available.is_empty() { "no tensors".to_string() } else { quoted(available) }
            ),
            UnexpectedTensors { path, unexpected } => write!(
                f,
                "{}: unexpected tensor(s) {} that the model does not have",
                path.display(),
                quoted(unexpected)
            ),
            WrongShape { path, name, expected, found } => write!(
                f,
                "{}: tensor `{}` has shape {found:?} in the file, expected {expected:?}",
                path.display(),
                printable(name)
            ),
            BadName { path, name, why } => {
                write!(f, "{}: cannot save tensor `{}`: {why}", path.display(), printable(name))
            }
            NotAFile { path, what } => write!(f, "{}: not a regular file ({what})", path.display()),
            TooLarge { path, size, limit } => write!(
                f,
                "{}: {size} bytes, over the {limit}-byte limit for a checkpoint (1 GiB)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{}`", printable(n))).collect::<Vec<_>>().join(", ")
}
