//! Mini-batches: shuffle the example indices with a seed, then cut them into
//! groups of `batch_size`.
//!
//! One pass of [`Batches`] is one epoch: every example appears exactly once.
//! The order comes from a seeded generator (`StdRng` and a Fisher-Yates
//! shuffle), so the same seed gives the same batches on the same machine. A
//! training loop usually passes `seed + epoch` so that each epoch sees a new
//! order that can still be reproduced.
//!
//! When the number of examples is not a multiple of the batch size, the last
//! batch is smaller; [`LastBatch`] says whether to keep it or drop it (like
//! PyTorch's `drop_last`).

use super::Dataset;
use gradtape_kernels::Tensor;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What to do with a last batch smaller than the batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastBatch {
    /// Yield it: every example is seen once per epoch.
    Keep,
    /// Skip it: every batch has exactly `batch_size` examples.
    Drop,
}

/// One mini-batch: the images as a `[b, rows*cols]` tensor, their labels,
/// and which examples of the data set they are.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[b, rows*cols]` pixels in `[0, 1]`.
    pub images: Tensor<f32>,
    /// The `b` labels, in the same order as the rows of `images`.
    pub labels: Vec<u8>,
    /// The index in the data set of each row.
    pub indices: Vec<usize>,
}

/// An iterator over the mini-batches of one epoch; see the module doc.
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    last: LastBatch,
    next: usize,
}

impl<'a> Batches<'a> {
    /// Batches in an order shuffled by `seed`.
    #[track_caller]
    pub fn new(data: &'a Dataset, batch_size: usize, seed: u64, last: LastBatch) -> Self {
        Self::with_rng(data, batch_size, &mut StdRng::seed_from_u64(seed), last)
    }

    /// Batches in an order shuffled by `rng` (for one generator that drives
    /// a whole run).
    #[track_caller]
    pub fn with_rng(data: &'a Dataset, batch_size: usize, rng: &mut impl Rng, last: LastBatch) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(rng);
        Self::from_order(data, batch_size, order, last)
    }

    /// Batches in the data set's own order, not shuffled (for evaluation).
    #[track_caller]
    pub fn in_order(data: &'a Dataset, batch_size: usize, last: LastBatch) -> Self {
        Self::from_order(data, batch_size, (0..data.len()).collect(), last)
    }

    #[track_caller]
    fn from_order(data: &'a Dataset, batch_size: usize, order: Vec<usize>, last: LastBatch) -> Self {
        assert!(batch_size > 0, "Batches: batch_size must be at least 1");
        Batches { data, order, batch_size, last, next: 0 }
    }

    /// The order in which this epoch visits the examples.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// How many batches the epoch has in all.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        match self.last {
            LastBatch::Keep => n.div_ceil(self.batch_size),
            LastBatch::Drop => n / self.batch_size,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let remaining = self.order.len() - self.next;
        let take = remaining.min(self.batch_size);
        if take == 0 || (take < self.batch_size && self.last == LastBatch::Drop) {
            self.next = self.order.len();
            return None;
        }
        let indices = self.order[self.next..self.next + take].to_vec();
        self.next += take;
        let sub = self.data.select(&indices);
        Some(Batch { images: sub.images, labels: sub.labels, indices })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let done = self.next.div_ceil(self.batch_size);
        let left = self.num_batches().saturating_sub(done);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}
