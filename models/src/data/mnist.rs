//! A train/test split of MNIST-format data: built in, or from a folder.
//!
//! MNIST and the data sets that copy its format (Fashion-MNIST, KMNIST, ...)
//! ship as four files, the same names everywhere:
//!
//! ```text
//! train-images-idx3-ubyte[.gz]   train-labels-idx1-ubyte[.gz]
//! t10k-images-idx3-ubyte[.gz]    t10k-labels-idx1-ubyte[.gz]
//! ```
//!
//! [`MnistSplit::from_dir`] finds them in a folder (compressed or not; the
//! `train-images.idx3-ubyte` spelling of some mirrors works too).
//! [`MnistSplit::embedded`] decodes the 10,000 real digits compiled into the
//! library from `models/data/mnist-10k/` (see `SOURCE.md` there for where
//! they come from), so examples and tests run on a fresh machine.

use super::idx::{decode_idx_images, decode_idx_labels, read_idx_images, read_idx_labels};
use super::{DataError, Dataset};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST
/// (60,000 + 10,000 images, `apt-get install dataset-fashion-mnist`).
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

static EMBEDDED_FILES: [&[u8]; 4] = [
    include_bytes!("../../data/mnist-10k/train-images-idx3-ubyte.gz"),
    include_bytes!("../../data/mnist-10k/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../data/mnist-10k/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../data/mnist-10k/t10k-labels-idx1-ubyte.gz"),
];

/// A training set and a test set of the same image size.
#[derive(Clone, Debug)]
pub struct MnistSplit {
    /// The examples to learn from.
    pub train: Dataset,
    /// The held-out examples to evaluate on.
    pub test: Dataset,
}

impl MnistSplit {
    /// The 10,000 real MNIST digits built into the library: 8,000 train and
    /// 2,000 test, 28x28. Decoded once per process; later calls share the
    /// pixel storage.
    pub fn embedded() -> MnistSplit {
        static CACHE: OnceLock<MnistSplit> = OnceLock::new();
        CACHE
            .get_or_init(|| {
                let names: Vec<PathBuf> =
                    FILES.iter().map(|f| PathBuf::from(format!("<embedded mnist-10k>/{f}.gz"))).collect();
                let decode = |i: usize, j: usize| -> Result<Dataset, DataError> {
                    let images = decode_idx_images(EMBEDDED_FILES[i], &names[i])?;
                    let labels = decode_idx_labels(EMBEDDED_FILES[j], &names[j])?;
                    Dataset::from_parts(images, labels, &names[i], &names[j])
                };
                let split = decode(0, 1).and_then(|train| {
                    let test = decode(2, 3)?;
                    Ok(MnistSplit { train, test })
                });
                split.unwrap_or_else(|e| panic!("the embedded MNIST data is broken: {e}"))
            })
            .clone()
    }

    /// Reads the four MNIST-format files from `dir` (each raw or
    /// gzip-compressed), e.g. [`FASHION_MNIST_DIR`].
    pub fn from_dir(dir: &Path) -> Result<MnistSplit, DataError> {
        if !dir.is_dir() {
            return Err(DataError::MissingDir { dir: dir.to_path_buf() });
        }
        let found: Vec<Option<PathBuf>> =
            FILES.iter().map(|f| find_file(dir, f)).collect::<Result<_, _>>()?;
        let missing: Vec<String> =
            FILES.iter().zip(&found).filter(|(_, p)| p.is_none()).map(|(f, _)| format!("{f}[.gz]")).collect();
        if !missing.is_empty() {
            return Err(DataError::MissingFiles {
                dir: dir.to_path_buf(),
                missing,
                expected: FILES.iter().map(|f| format!("{f}[.gz]")).collect(),
            });
        }
        let paths: Vec<PathBuf> = found.into_iter().flatten().collect();
        let train = Dataset::from_parts(
            read_idx_images(&paths[0])?,
            read_idx_labels(&paths[1])?,
            &paths[0],
            &paths[1],
        )?;
        let test = Dataset::from_parts(
            read_idx_images(&paths[2])?,
            read_idx_labels(&paths[3])?,
            &paths[2],
            &paths[3],
        )?;
        for (set, labels) in [(&train, &paths[1]), (&test, &paths[3])] {
            if let Some((index, &label)) = set.labels.iter().enumerate().find(|(_, &l)| l > 9) {
                return Err(DataError::BadLabel { path: labels.clone(), index, label });
            }
        }
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(DataError::ImageSizeMismatch {
                train_path: paths[0].clone(),
                train: (train.rows, train.cols),
                test_path: paths[2].clone(),
                test: (test.rows, test.cols),
            });
        }
        Ok(MnistSplit { train, test })
    }
}

/// The one of `name`, `name.gz` and the dotted spelling
/// (`train-images.idx3-ubyte[.gz]`) that exists in `dir`; two of them is an
/// error (which one was meant?).
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>, DataError> {
    let dotted = name.replacen("-idx", ".idx", 1);
    let present: Vec<PathBuf> =
        [name.to_string(), format!("{name}.gz"), dotted.clone(), format!("{dotted}.gz")]
            .into_iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .collect();
    match present.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        [first, second, ..] => Err(DataError::Ambiguous { first: first.clone(), second: second.clone() }),
    }
}
