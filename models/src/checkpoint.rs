//! Saving and loading named parameters as safetensors files.
//!
//! A checkpoint is a list of named tensors, like a PyTorch `state_dict`
//! (`encoder.0.weight`, `encoder.0.bias`, ...), plus a few string key-value
//! pairs of metadata (the epoch, the model's settings). The file format is
//! [safetensors](https://github.com/huggingface/safetensors): an 8-byte
//! header length, a JSON header giving each tensor's dtype, shape and byte
//! range, then the raw little-endian numbers. Python reads our files with
//! `safetensors.torch.load_file(path)` and we read its files.
//!
//! Two promises:
//!
//! - **A save never leaves a broken file.** [`save`] writes to a temporary
//!   file in the same folder, flushes it to disk (`fsync`), then renames it
//!   over `path` in one step. If the program dies half-way, the old
//!   checkpoint is still there, whole.
//! - **A failed load changes nothing.** [`load_into`] checks every expected
//!   tensor (present, right dtype, right shape) before it writes any, so a
//!   wrong or damaged file gives an error that names the file and the tensor
//!   and leaves your parameters as they were.
//!
//! Tensors are `f32` or `f64` ([`CheckpointElement`]); one call reads or
//! writes one precision.
//!
//! Files come from outside, so reading one is bounded: a regular file of at
//! most [`MAX_CHECKPOINT_BYTES`] (not a pipe or `/dev/zero`), a tensor or
//! metadata name given twice in the header is refused rather than the last
//! one silently winning, and every error names the file. Writing is
//! deterministic: the header is written with its keys sorted, so the same
//! tensors and metadata give the same bytes.

use crate::files::{self, OpenError};
use crate::safetensors_header;
use gradtape_kernels::{Element, Tensor};
use safetensors::tensor::{SafeTensors, View};
use safetensors::Dtype;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

mod error;

pub use error::CheckpointError;

/// The largest checkpoint file read: 1 GiB. The largest model a
/// [`crate::spec::ModelSpec`] accepts has [`crate::spec::MAX_PARAMETERS`]
/// (2^26) parameters, and its training checkpoint holds them and Adam's two
/// moments in f32: 3 x 4 x 2^26 bytes = 768 MiB, plus the header. The
/// tutorial-size models' checkpoints are 0.1 to 3 MB.
pub const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;

/// A number type that can be stored in a safetensors file.
pub trait CheckpointElement: Element {
    /// The safetensors dtype (`F32` or `F64`).
    const DTYPE: Dtype;
    /// Appends the little-endian bytes of `self`.
    fn push_le_bytes(self, out: &mut Vec<u8>);
    /// Reads one number from its little-endian bytes.
    fn from_le_slice(bytes: &[u8]) -> Self;
}

impl CheckpointElement for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn push_le_bytes(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le_slice(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
}

impl CheckpointElement for f64 {
    const DTYPE: Dtype = Dtype::F64;
    fn push_le_bytes(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le_slice(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
}

/// The named tensors and metadata read from a file by [`load`].
#[derive(Clone, Debug)]
pub struct Checkpoint<T: Element = f32> {
    /// The tensors, by name (sorted).
    pub tensors: BTreeMap<String, Tensor<T>>,
    /// The string key-value pairs stored with them (empty if none).
    pub metadata: HashMap<String, String>,
    path: PathBuf,
}

impl<T: CheckpointElement> Checkpoint<T> {
    /// The file this checkpoint was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.tensors.get(name)
    }

    /// Copies the tensors named in `targets` into them, after checking that
    /// every one is present with the target's shape; on error nothing is
    /// written. Tensors in the file that no target names are ignored (use
    /// [`load_into`] to treat them as an error).
    pub fn copy_into<S: AsRef<str>>(
        &self,
        targets: &mut [(S, &mut Tensor<T>)],
    ) -> Result<(), CheckpointError> {
        self.check(targets)?;
        self.write(targets);
        Ok(())
    }

    /// Checks that every target is present with the target's shape.
    fn check<S: AsRef<str>>(&self, targets: &[(S, &mut Tensor<T>)]) -> Result<(), CheckpointError> {
        let missing: Vec<String> = targets
            .iter()
            .map(|(name, _)| name.as_ref())
            .filter(|name| !self.tensors.contains_key(*name))
            .map(str::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(CheckpointError::MissingTensors {
                path: self.path.clone(),
                missing,
                available: self.tensors.keys().cloned().collect(),
            });
        }
        for (name, target) in targets {
            let stored = &self.tensors[name.as_ref()];
            if stored.shape() != target.shape() {
                return Err(CheckpointError::WrongShape {
                    path: self.path.clone(),
                    name: name.as_ref().to_string(),
                    expected: target.shape().to_vec(),
                    found: stored.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Copies the stored numbers into checked targets.
    fn write<S: AsRef<str>>(&self, targets: &mut [(S, &mut Tensor<T>)]) {
        for (name, target) in targets.iter_mut() {
            // Onto the target's device: a GPU run resumes from a checkpoint
            // read into host memory, and a CPU run from one a GPU wrote.
            **target = self.tensors[name.as_ref()].to(target.device());
        }
    }
}

/// A tensor's bytes, ready for the safetensors writer.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Saves named tensors (and optional metadata) to `path` as safetensors,
/// atomically: a temporary file in the same folder, `fsync`, then a rename.
/// On error `path` is untouched and no temporary file is left behind.
pub fn save<T: CheckpointElement, S: AsRef<str>>(
    path: impl AsRef<Path>,
    tensors: &[(S, &Tensor<T>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let mut raws: BTreeMap<&str, Raw> = BTreeMap::new();
    for (name, tensor) in tensors {
        let name = name.as_ref();
        let why = if name.is_empty() {
            Some("the name is empty")
        } else if name == "__metadata__" {
            Some("the name is reserved for the metadata")
        } else if raws.contains_key(name) {
            Some("the name is given twice")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(CheckpointError::BadName { path: path.to_path_buf(), name: name.to_string(), why });
        }
        let mut bytes = Vec::with_capacity(tensor.len() * std::mem::size_of::<T>());
        // Copied to the host first when it is on a GPU.
        for &x in tensor.to_cpu().data() {
            x.push_le_bytes(&mut bytes);
        }
        let raw = Raw { dtype: T::DTYPE, shape: tensor.shape().to_vec(), bytes };
        raws.insert(name, raw);
    }
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (*n, r)), metadata)
        .map_err(|e| e.to_string())
        .and_then(|bytes| safetensors_header::canonical(&bytes))
        .map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("could not serialize: {e}"),
        })?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path` (a unique name,
/// `.<name>.XXXXXX.tmp`, the name cut short when it is long so that the
/// temporary name stays within the 255 bytes a file name may have), syncs
/// it, and renames it over `path`. If anything fails, the temporary file is
/// deleted and `path` is as it was: a full disk leaves the previous file
/// whole. An existing `path` that is not a regular file (a symbolic link, a
/// device, a named pipe, a folder) is refused, never replaced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    write_atomically_with(path, bytes, |file, bytes| file.write_all(bytes))
}

/// The longest part of the final name kept in a temporary name: with the
/// dot, the `.XXXXXX` and the `.tmp` it stays under 255 bytes.
const TEMP_NAME_KEPT: usize = 200;

/// The temporary-name prefix [`write_atomically`] uses for `file_name`:
/// `.<name>.`, the name cut to at most [`TEMP_NAME_KEPT`] bytes (at a
/// character boundary).
fn temp_prefix(file_name: &str) -> String {
    let mut end = file_name.len().min(TEMP_NAME_KEPT);
    while !file_name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.", &file_name[..end])
}

/// Whether `name` is a temporary file [`write_atomically`] made for the
/// file `target` (`.<target>.XXXXXX.tmp`) and did not rename: one an
/// interrupted write left behind.
pub fn is_temporary_for(name: &str, target: &str) -> bool {
    let prefix = temp_prefix(target);
    name.strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|middle| middle.len() == 6 && middle.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// [`write_atomically`] with the writing itself given as `write`, so that a
/// test can make it fail half-way, as a full disk does.
pub fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut std::fs::File, &[u8]) -> io::Result<()>,
) -> Result<(), CheckpointError> {
    let io_err = |action: &'static str| {
        move |source: io::Error| CheckpointError::Io { path: path.to_path_buf(), action, source }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_err("write")(io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"))
    })?;
    let not_a_file = |what| CheckpointError::NotAFile { path: path.to_path_buf(), what };
    files::check_replaceable(path).map_err(not_a_file)?;
    // Temporary files are created private (0600); a checkpoint is an
    // ordinary file, readable like any other the user writes.
    #[cfg(unix)]
    let permissions = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    };
    let prefix = temp_prefix(&file_name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(permissions);
    let mut tmp = builder.tempfile_in(dir).map_err(io_err("create a temporary file beside it"))?;
    write(tmp.as_file_mut(), bytes).map_err(io_err("write"))?;
    tmp.as_file().sync_all().map_err(io_err("sync to disk"))?;
    // Checked again just before the rename: what appeared at `path` while
    // the bytes were written is not replaced either.
    files::check_replaceable(path).map_err(not_a_file)?;
    tmp.persist(path).map_err(|e| io_err("rename the temporary file into place")(e.error))?;
    // Make the rename itself durable (best effort: not every system lets a
    // folder be opened and synced).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the whole of `path`, which must be a regular file of at most
/// `limit` bytes. The file is opened without blocking and its type checked
/// on the opened descriptor ([`files::open_regular`]), so a named pipe is
/// refused rather than waited on. The limit is checked on the file's size
/// first and then on what is actually read (a file that grows while it is
/// read is refused too), so no more than `limit + 1` bytes are ever held.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, CheckpointError> {
    let io_err = |action: &'static str| {
        move |source: io::Error| CheckpointError::Io { path: path.to_path_buf(), action, source }
    };
    let too_large = |size: u64| CheckpointError::TooLarge { path: path.to_path_buf(), size, limit };
    let (file, len) = files::open_regular(path).map_err(|e| match e {
        OpenError::Io(source) => io_err("read")(source),
        OpenError::NotAFile(what) => CheckpointError::NotAFile { path: path.to_path_buf(), what },
    })?;
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_err("read"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads every tensor of a safetensors file; all must have dtype `T`.
pub fn load<T: CheckpointElement>(path: impl AsRef<Path>) -> Result<Checkpoint<T>, CheckpointError> {
    let path = path.as_ref();
    load_from_bytes(&read_bounded(path, MAX_CHECKPOINT_BYTES)?, path)
}

/// [`load`] of a file's bytes already in memory; `path` names it in errors
/// (and in the [`Checkpoint`]).
pub fn load_from_bytes<T: CheckpointElement>(
    bytes: &[u8],
    path: &Path,
) -> Result<Checkpoint<T>, CheckpointError> {
    safetensors_header::check_unique_names(bytes)
        .map_err(|detail| CheckpointError::Corrupt { path: path.to_path_buf(), detail })?;
    let corrupt = |e: safetensors::SafeTensorError| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let file = SafeTensors::deserialize(bytes).map_err(corrupt)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        if view.dtype() != T::DTYPE {
            return Err(CheckpointError::WrongDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: T::DTYPE,
                found: view.dtype(),
            });
        }
        let size = std::mem::size_of::<T>();
        let data: Vec<T> = view.data().chunks_exact(size).map(T::from_le_slice).collect();
        let tensor = Tensor::try_from_vec(data, view.shape()).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("tensor `{name}`: {e}"),
        })?;
        tensors.insert(name.to_string(), tensor);
    }
    Ok(Checkpoint {
        tensors,
        metadata: header.metadata().clone().unwrap_or_default(),
        path: path.to_path_buf(),
    })
}

/// Loads a checkpoint into existing tensors, matched by name, and returns
/// its metadata.
///
/// Every target is checked first (present, dtype `T`, same shape), and the
/// file must hold no tensor that no target names; only if all is well is
/// anything written. On error the targets are unchanged.
pub fn load_into<T: CheckpointElement, S: AsRef<str>>(
    path: impl AsRef<Path>,
    targets: &mut [(S, &mut Tensor<T>)],
) -> Result<HashMap<String, String>, CheckpointError> {
    let checkpoint = load::<T>(path)?;
    checkpoint.check(targets)?;
    let unexpected: Vec<String> = checkpoint
        .tensors
        .keys()
        .filter(|k| !targets.iter().any(|(name, _)| name.as_ref() == k.as_str()))
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(CheckpointError::UnexpectedTensors { path: checkpoint.path, unexpected });
    }
    checkpoint.write(targets);
    Ok(checkpoint.metadata)
}
