//! What the commands print and where they write, checked before any work.
//!
//! - **Standard output only reports.** The results are files; what a
//!   command prints says what it did. A write to stdout that fails (a
//!   closed pipe, as in `gradtape train ... | head -1`, or a full disk) is
//!   dropped, and later lines are not tried: the command goes on and ends
//!   as it would have, its files written, with no panic and no message. A
//!   training run keeps training and writing its checkpoints (see
//!   [`say`]).
//! - **An output path is a file name in a folder that exists**, and what
//!   is already there is a regular file that the command replaces whole
//!   (`gradtape_models::checkpoint::write_atomically`). A folder, a name
//!   ending in `/`, a symbolic link, a device or a named pipe is refused
//!   before any work, with exit code 2 ([`check_output_file`]): a link is
//!   not written through, because replacing it would drop the link and
//!   writing its target would change a file the command was not given.
//! - **Two outputs of one command never share a path** ([`check_distinct`]).
//! - **Numbers are echoed short** ([`num`]): `1e-320`, not 320 digits.

use super::CliError;
use gradtape_models::files;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout has failed: nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout; a failure (a closed pipe, a full disk) is
/// dropped and stops later lines. Use through [`say!`](crate::say).
pub fn say(line: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}

/// `println!` for the commands: see [`say`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::say(format_args!($($arg)*))
    };
}

/// A number as a flag's value is echoed: as written (`0.001`, `1000000`)
/// when that is short, else in exponent form (`1e-320`, `1e308`).
pub fn num(x: f64) -> String {
    gradtape_models::autoencoders::short_number(x)
}

/// Refuses an output path that cannot be written as a whole new file,
/// before any work: a folder, a name ending in `/`, a path in a folder that
/// does not exist, or an existing symbolic link, device or named pipe.
/// `flag` names the option.
pub fn check_output_file(path: &Path, flag: &str) -> Result<(), CliError> {
    let shown = path.display();
    let text = path.as_os_str().to_string_lossy();
    if path.is_dir() {
        return Err(CliError::usage(format!("{flag}: {shown} is a folder; give a file name")));
    }
    if text.ends_with('/') || path.file_name().is_none() {
        return Err(CliError::usage(format!("{flag}: {shown} names a folder, not a file; give a file name")));
    }
    if let Err(what) = files::check_replaceable(path) {
        return Err(CliError::usage(format!(
            "{flag}: {shown} exists and is {what}, not a regular file; it is not replaced (give another \
             file name)"
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(CliError::usage(format!(
            "{flag}: there is no folder {} to write {shown} in",
            parent.display()
        )));
    }
    Ok(())
}

/// The path a file will have once written, for comparing two outputs: its
/// folder resolved (it exists: [`check_output_file`] came first) and its
/// name.
fn resolved(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = parent.canonicalize().unwrap_or_else(|_| parent.to_path_buf());
    match path.file_name() {
        Some(name) => folder.join(name),
        None => folder,
    }
}

/// Refuses two outputs of one command on one path: `(flag, path)` pairs,
/// each already checked with [`check_output_file`].
pub fn check_distinct(outputs: &[(&str, &Path)]) -> Result<(), CliError> {
    for (i, (flag_a, a)) in outputs.iter().enumerate() {
        for (flag_b, b) in &outputs[i + 1..] {
            if resolved(a) == resolved(b) {
                return Err(CliError::usage(format!(
                    "{flag_b}: {} is also where {flag_a} goes; give the two outputs different names",
                    b.display()
                )));
            }
        }
    }
    Ok(())
}
