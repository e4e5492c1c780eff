//! Files from outside, opened without surprises, and text from them quoted
//! safely.
//!
//! - [`open_regular`] opens a file for reading without blocking, and only
//!   then looks at what it opened: a named pipe (FIFO) would make a plain
//!   `open` wait forever for a writer, so it is opened with `O_NONBLOCK`
//!   and refused by the type of the opened descriptor (which also closes the
//!   gap between checking a path and opening it). Devices, folders and
//!   sockets are refused the same way.
//! - [`existing_kind`] says what an output path already is, without
//!   following a symbolic link, so that a writer can refuse to replace a
//!   device, a pipe or a link (see [`crate::checkpoint::write_atomically`]).
//! - [`printable`] escapes control characters (a newline, a terminal escape)
//!   in names and values read from a file before they are put in a message,
//!   so every message stays one line and never drives the terminal.

use std::fs::File;
use std::io;
use std::path::Path;

/// What a path that is not a regular file is, in words.
pub fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a folder"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Why [`open_regular`] refused.
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be opened or examined.
    Io(io::Error),
    /// It is not a regular file: what it is ([`describe`]).
    NotAFile(&'static str),
}

/// Opens `path` for reading if it is a regular file (a symbolic link to one
/// is followed), and returns it with its size. Never blocks: a named pipe is
/// opened with `O_NONBLOCK` and refused, as are devices and folders.
pub fn open_regular(path: &Path) -> Result<(File, u64), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotAFile(describe(meta.file_type())));
    }
    // A regular file never blocks, so `O_NONBLOCK` changes nothing for it;
    // it is cleared all the same, so the file reads as one opened plainly.
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is a descriptor this function opened and still owns;
        // F_GETFL and F_SETFL only read and set its status flags.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok((file, meta.len()))
}

/// Opens (or creates) `path` for reading and writing, as a lock file is:
/// never through a symbolic link (`O_NOFOLLOW`), never blocking on a named
/// pipe (`O_NONBLOCK`), and only if what it opened is a regular file. The
/// file is not truncated: the caller locks it first.
pub fn open_lock_file(path: &Path) -> Result<File, OpenError> {
    if let Some(what) = existing_kind(path).filter(|&k| k != "a regular file") {
        return Err(OpenError::NotAFile(what));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        // A link that appeared after the check above.
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return OpenError::NotAFile("a symbolic link");
        }
        OpenError::Io(e)
    })?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotAFile(describe(meta.file_type())));
    }
    Ok(file)
}

/// What `path` already is, if anything, without following a symbolic link:
/// `None` if nothing is there, `Some("a regular file")`, `Some("a symbolic
/// link")`, `Some("a named pipe")`, ... (see [`describe`]).
pub fn existing_kind(path: &Path) -> Option<&'static str> {
    std::fs::symlink_metadata(path).ok().map(|m| describe(m.file_type()))
}

/// Whether `path` is free to be written as a whole new file: nothing is
/// there, or a regular file (which a write replaces). Anything else is
/// returned as what it is ([`describe`]): a symbolic link, a device, a
/// named pipe or a folder is never replaced.
pub fn check_replaceable(path: &Path) -> Result<(), &'static str> {
    match existing_kind(path) {
        None | Some("a regular file") => Ok(()),
        Some(other) => Err(other),
    }
}

/// `text` with every control character escaped (`\n`, `\u{1b}`), for
/// quoting a name or a value read from a file in a one-line message.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert_eq!(printable("encoder.0.weight"), "encoder.0.weight");
        assert_eq!(printable("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\\nc");
        assert_eq!(printable("héllo"), "héllo");
    }

    #[test]
    fn a_folder_is_not_opened_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(open_regular(dir.path()), Err(OpenError::NotAFile("a folder"))));
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(open_regular(&file).unwrap().1, 3);
        assert_eq!(check_replaceable(&file), Ok(()));
        assert_eq!(check_replaceable(&dir.path().join("none")), Ok(()));
        assert_eq!(check_replaceable(dir.path()), Err("a folder"));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(check_replaceable(&link), Err("a symbolic link"));
        }
    }
}
