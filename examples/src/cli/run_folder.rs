//! The run folder of `gradtape train`: what it holds, checked before any
//! work; one process at a time in it; and no temporary files left over.
//!
//! - [`check_outputs`]: every file `train` writes there (the checkpoint,
//!   the pictures, `history.csv`, `index.html`, `tape.dot`, `tape.svg`)
//!   and the lock file, where one already exists, must be a regular file:
//!   a symbolic link, a device or a named pipe in their place is refused
//!   before anything is read or trained (exit code 2).
//! - [`lock`]: an exclusive lock on [`LOCK_FILE`], opened without following
//!   a link and only if it is a regular file, so the process id written
//!   into it never lands in another file.
//! - [`remove_stale_temporaries`]: under the lock, the temporary files an
//!   interrupted write left (`.checkpoint.safetensors.XXXXXX.tmp`, ...) are
//!   removed; no other process can be writing them.

use super::CliError;
use gradtape_models::checkpoint::is_temporary_for;
use gradtape_models::files::{self, OpenError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file a running `train` holds in its run folder.
pub const LOCK_FILE: &str = ".gradtape-train.lock";

/// The checkpoint file inside a run folder.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

/// Every file `train` writes in its run folder.
pub const OUTPUTS: &[&str] = &[
    "checkpoint.safetensors",
    "history.csv",
    "index.html",
    "reconstructions.png",
    "filters.png",
    "latent.png",
    "generations.png",
    "denoising.png",
    "loss.png",
    "tape.dot",
    "tape.svg",
];

/// Refuses a run folder in which one of [`OUTPUTS`], or the lock file,
/// exists and is not a regular file (a symbolic link, a device, a named
/// pipe, a folder), naming it.
pub fn check_outputs(out: &Path) -> Result<(), CliError> {
    for name in OUTPUTS.iter().chain([&LOCK_FILE]) {
        let path = out.join(name);
        if let Err(what) = files::check_replaceable(&path) {
            return Err(CliError::usage(format!(
                "--out: {} is {what}, not a regular file; a run folder's files are written whole and never \
                 through a link or onto a device or pipe: remove it or choose another --out",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The run folder, made if needed and locked for this process: a second
/// `train` into it fails at once, naming the holder. The lock is the
/// operating system's (`File::try_lock`), so it goes with the process
/// however the process ends. Making the lock file is also the check that
/// the folder can be written, before any training. The lock file is opened
/// with `O_NOFOLLOW` and must be a regular file
/// ([`files::open_lock_file`]); it is truncated only once locked.
pub fn lock(out: &Path) -> Result<std::fs::File, CliError> {
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::usage(format!("--out: cannot create {}: {e}", out.display())))?;
    let path = out.join(LOCK_FILE);
    let mut file = files::open_lock_file(&path).map_err(|e| match e {
        OpenError::NotAFile(what) => CliError::usage(format!(
            "--out: {} is {what}, not a regular file; remove it (a train run makes its own)",
            path.display()
        )),
        OpenError::Io(e) => CliError::usage(format!("--out: cannot write in {}: {e}", out.display())),
    })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = files::printable(holder.trim());
            let who =
                if holder.is_empty() { "another process".to_string() } else { format!("process {holder}") };
            return Err(CliError::usage(format!(
                "--out: {} is in use by {who} (a train run holds {}); wait for it or choose another --out",
                out.display(),
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CliError::usage(format!("--out: cannot lock {}: {e}", path.display())))
        }
    }
    let pid = std::process::id().to_string();
    let written = file.set_len(0).and_then(|()| file.seek(std::io::SeekFrom::Start(0))).and_then(|_| {
        file.write_all(pid.as_bytes())?;
        file.flush()
    });
    written.map_err(|e| CliError::usage(format!("--out: cannot write in {}: {e}", out.display())))?;
    Ok(file)
}

/// Removes the temporary files that interrupted writes of [`OUTPUTS`] left
/// in `out` (regular files named `.<output>.XXXXXX.tmp`); call it holding
/// the lock. Returns how many were removed.
pub fn remove_stale_temporaries(out: &Path) -> Result<usize, CliError> {
    let entries = std::fs::read_dir(out)
        .map_err(|e| CliError::failure(format!("reading the run folder {}: {e}", out.display())))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && OUTPUTS.iter().any(|target| is_temporary_for(name, target)) {
            std::fs::remove_file(entry.path()).map_err(|e| {
                CliError::failure(format!(
                    "removing the stale temporary file {}: {e}",
                    entry.path().display()
                ))
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}
