//! What can go wrong when reading a data set, in words that name the file.
//!
//! Data files come from outside the program, so every problem with them is a
//! [`DataError`] value rather than a panic. Each message starts with the path
//! of the file (or folder) and then says what is wrong with it, for example
//! `train-images-idx3-ubyte.gz: wrong magic number 0x00000801, expected
//! 0x00000803 (an IDX image file)`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The magic number that opens an IDX image file: unsigned bytes, 3 axes.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// The magic number that opens an IDX label file: unsigned bytes, 1 axis.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A problem with a data file or folder.
#[derive(Debug)]
pub enum DataError {
    /// The file could not be opened, read or written.
    Io {
        /// The data file.
        path: PathBuf,
        /// What was being done, as the message says it (`read` or `write`).
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file starts like gzip (bytes 1f 8b) but does not decompress.
    CorruptGzip {
        /// The data file.
        path: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },
    /// The file ends before the header or the data it announces is complete.
    Truncated {
        /// The data file.
        path: PathBuf,
        /// The bytes the header and data need, the header included (after
        /// decompression, for a gzip file).
        expected_bytes: u64,
        /// The bytes there are, counted the same way.
        found_bytes: u64,
        /// What was cut short, in words (`the 16-byte IDX header`, or the
        /// dimensions the header announces).
        what: String,
    },
    /// There are bytes left over after the data the header announces.
    TrailingBytes {
        /// The data file.
        path: PathBuf,
        /// The file's size as the header makes it: the header and the data it announces.
        expected_bytes: u64,
        /// The file's actual size.
        found_bytes: u64,
    },
    /// A compressed file goes on after the data the header announces (how
    /// far is not read: the reader stops one byte past the announced end).
    TrailingData {
        /// The data file.
        path: PathBuf,
        /// The decompressed size the header makes it: the header and the data it announces.
        expected_bytes: u64,
    },
    /// The path is not a regular file: what it is (a folder, a named pipe,
    /// a device).
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead (`a folder`, `a named pipe`, ...).
        what: &'static str,
    },
    /// Labels outside 0..=9 (the pictures colour ten digits).
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// The position of the first bad label, counting from 0.
        index: usize,
        /// The label found there.
        label: u8,
    },
    /// Both the raw and the compressed spelling of one file are in a folder.
    Ambiguous {
        /// One spelling found.
        first: PathBuf,
        /// Another spelling of the same file, also found.
        second: PathBuf,
    },
    /// The first four bytes are not the IDX magic number expected here.
    WrongMagic {
        /// The data file.
        path: PathBuf,
        /// The first four bytes, read as a big-endian number.
        found: u32,
        /// [`IMAGES_MAGIC`] or [`LABELS_MAGIC`], whichever the file should be.
        expected: u32,
    },
    /// The header announces impossible dimensions (zero-sized images, or a
    /// size that does not fit in memory).
    BadDimensions {
        /// The data file.
        path: PathBuf,
        /// What is impossible about them, in words.
        detail: String,
    },
    /// An image file and its label file hold different numbers of items.
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// How many images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// How many labels it holds.
        labels: usize,
    },
    /// The training and test images of one split have different sizes.
    ImageSizeMismatch {
        /// The training image file.
        train_path: PathBuf,
        /// Its images' size, `(rows, columns)`.
        train: (usize, usize),
        /// The test image file.
        test_path: PathBuf,
        /// Its images' size, `(rows, columns)`.
        test: (usize, usize),
    },
    /// The folder given for a data set does not exist.
    MissingDir {
        /// The folder given.
        dir: PathBuf,
    },
    /// Some of the files a data-set folder must hold are not there.
    MissingFiles {
        /// The folder given.
        dir: PathBuf,
        /// The files not found (`train-images-idx3-ubyte[.gz]`, ...).
        missing: Vec<String>,
        /// Every file the folder should hold; equal to `missing` when none was found.
        expected: Vec<String>,
    },
}

/// Describes an IDX magic number in words, for messages.
fn describe_magic(magic: u32) -> &'static str {
    match magic {
        IMAGES_MAGIC => "an IDX image file",
        LABELS_MAGIC => "an IDX label file",
        _ => "not an IDX file of unsigned bytes with 1 or 3 axes",
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, action, source } => {
                write!(f, "{}: cannot {action}: {source}", path.display())
            }
            DataError::CorruptGzip { path, source } => {
                write!(f, "{}: starts like a gzip file but is corrupt or truncated: {source}", path.display())
            }
            DataError::Truncated { path, expected_bytes, found_bytes, what } => write!(
                f,
                "{}: truncated: {what} needs {expected_bytes} bytes but the file has {found_bytes}",
                path.display()
            ),
            DataError::TrailingBytes { path, expected_bytes, found_bytes } => write!(
                f,
                "{}: {} unexpected bytes after the data (the header announces \
                 {expected_bytes} bytes in all, the file has {found_bytes})",
                path.display(),
                found_bytes - expected_bytes
            ),
            DataError::TrailingData { path, expected_bytes } => write!(
                f,
                "{}: the decompressed data goes on past the {expected_bytes} bytes the header announces",
                path.display()
            ),
            DataError::NotAFile { path, what } => {
                write!(f, "{}: not a regular file ({what})", path.display())
            }
            DataError::BadLabel { path, index, label } => {
                write!(f, "{}: label {label} at index {index} is not a digit 0 to 9", path.display())
            }
            DataError::Ambiguous { first, second } => write!(
                f,
                "both {} and {} exist; remove one, so that it is clear which to read",
                first.display(),
                second.display()
            ),
            DataError::WrongMagic { path, found, expected } => write!(
                f,
                "{}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({}); \
                 the file looks like {}",
                path.display(),
                describe_magic(*expected),
                describe_magic(*found)
            ),
            DataError::BadDimensions { path, detail } => {
                write!(f, "{}: bad dimensions: {detail}", path.display())
            }
            DataError::CountMismatch { images_path, images, labels_path, labels } => write!(
                f,
                "image and label counts disagree: {} holds {images} images but {} holds {labels} labels",
                images_path.display(),
                labels_path.display()
            ),
            DataError::ImageSizeMismatch { train_path, train, test_path, test } => write!(
                f,
                "image sizes disagree: {} holds {}x{} images but {} holds {}x{} images",
                train_path.display(),
                train.0,
                train.1,
                test_path.display(),
                test.0,
                test.1
            ),
            DataError::MissingDir { dir } => {
                write!(f, "{}: no such folder (expected a folder of MNIST-format IDX files)", dir.display())
            }
            DataError::MissingFiles { dir, missing, expected } if missing == expected => {
                write!(f, "{}: no MNIST-format IDX files; expected {}", dir.display(), expected.join(", "))
            }
            DataError::MissingFiles { dir, missing, expected } => write!(
                f,
                "{}: missing {}; an MNIST-format folder holds {}",
                dir.display(),
                missing.join(", "),
                expected.join(", ")
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::CorruptGzip { source, .. } => Some(source),
            _ => None,
        }
    }
}
