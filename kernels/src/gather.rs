//! Rows by index: a training batch gathered where the data set already is.
//!
//! A training loop visits the examples in a shuffled order, a batch at a
//! time. Gathering each batch on the host and copying it to a GPU costs a
//! host-to-device copy per step. Instead the data set is copied to the
//! device once, the epoch's order once per epoch ([`RowIndex`]), and each
//! batch is gathered there by [`Tensor::gather_rows`]: one launch, no copy.
//! On the CPU the same call copies the rows, as `Dataset::select` does.

use crate::device::Device;
use crate::element::Element;
use crate::guard::LossGuard;
use crate::tensor::Tensor;
use std::ops::Range;

/// A list of row numbers, on a device (see the module doc).
#[derive(Clone)]
pub struct RowIndex {
    host: Vec<usize>,
    /// The largest row number (checked against a tensor's rows on each use).
    max: Option<usize>,
    #[cfg(feature = "cuda")]
    device_copy: Option<crate::cuda::Buffer<i64>>,
}

impl std::fmt::Debug for RowIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowIndex({} rows on {})", self.host.len(), self.device())
    }
}

impl RowIndex {
    /// The row numbers `rows`, copied to `device` (one copy on a GPU; none
    /// on the CPU).
    #[track_caller]
    pub fn new(rows: &[usize], device: Device) -> RowIndex {
        let max = rows.iter().copied().max();
        #[cfg(feature = "cuda")]
        let device_copy = match device {
            Device::Cuda(ordinal) => {
                let gpu =
                    crate::cuda::open(ordinal).unwrap_or_else(|e| panic!("RowIndex::new({device}): {e}"));
                let as_i64: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                Some(crate::cuda::Buffer::upload(&gpu, &as_i64))
            }
            Device::Cpu => None,
        };
        #[cfg(not(feature = "cuda"))]
        assert!(!device.is_cuda(), "RowIndex::new({device}): {}", crate::device::DeviceError::NotBuilt);
        RowIndex {
            host: rows.to_vec(),
            max,
            #[cfg(feature = "cuda")]
            device_copy,
        }
    }

    /// How many row numbers it holds.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }

    /// The row numbers, on the host.
    pub fn rows(&self) -> &[usize] {
        &self.host
    }

    /// Where the copy the kernels read is.
    pub fn device(&self) -> Device {
        #[cfg(feature = "cuda")]
        if let Some(copy) = &self.device_copy {
            return Device::Cuda(copy.gpu().ordinal);
        }
        Device::Cpu
    }

    #[cfg(feature = "cuda")]
    pub(crate) fn device_copy(&self) -> Option<&crate::cuda::Buffer<i64>> {
        self.device_copy.as_ref()
    }
}

impl<T: Element> Tensor<T> {
    /// The rows `index.rows()[range]` of this `[n, ...]` tensor, in that
    /// order, as a new `[range.len(), ...]` tensor (PyTorch's
    /// `x[idx[a:b]]`): one pass, one launch on a GPU. Panics, at the caller,
    /// if the tensor is 0-d, the range runs past the index, a row number is
    /// past the tensor's rows, or the index is on another device.
    #[track_caller]
    pub fn gather_rows(&self, index: &RowIndex, range: Range<usize>) -> Tensor<T> {
        let (shape, cols) = self.gather_shape(index, &range);
        #[cfg(feature = "cuda")]
        if let Some(copy) = index.device_copy() {
            let start = crate::cuda::ops::GatherStart::At(range.start);
            return crate::cuda::ops::gather_rows(self, copy, start, cols, shape);
        }
        self.gather_on_host(index, range, cols, shape)
    }

    /// The batch a training loop's next step takes: batch `b = guard.steps()
    /// mod batches` of the index, cut in `batches = ceil(index.len() /
    /// batch)` batches of `batch` rows (the last may be shorter), gathered as
    /// [`Tensor::gather_rows`] gathers `b * batch..` (PyTorch's
    /// `x[idx[b*batch:(b+1)*batch]]`). The guard is the one the loop records
    /// its losses in, so `b` counts the loop's steps.
    ///
    /// On a GPU the kernel reads `b` from the guard's step clock on the
    /// device, so this launch is the same at every step of the loop, as a
    /// step replayed as one CUDA graph needs; the result is the same as
    /// `gather_rows` with `b` worked out on the host. Panics, at the caller,
    /// as `gather_rows` does, if `batch` is 0 or the index is empty, or if
    /// the guard is on another device.
    #[track_caller]
    pub fn gather_batch(&self, index: &RowIndex, batch: usize, guard: &LossGuard) -> Tensor<T> {
        assert!(batch > 0 && !index.is_empty(), "gather_batch: batches of {batch} rows of {index:?}");
        assert!(
            guard.device() == self.device(),
            "gather_batch: the guard is on {} but the tensor on {}",
            guard.device().describe(),
            self.device().describe()
        );
        let batches = index.len().div_ceil(batch);
        let b = (guard.steps() % batches as u64) as usize;
        let range = b * batch..((b + 1) * batch).min(index.len());
        let (shape, cols) = self.gather_shape(index, &range);
        #[cfg(feature = "cuda")]
        if let Some(copy) = index.device_copy() {
            let start =
                crate::cuda::ops::GatherStart::Clock { guard: guard.flag(), batch_rows: batch, batches };
            return crate::cuda::ops::gather_rows(self, copy, start, cols, shape);
        }
        self.gather_on_host(index, range, cols, shape)
    }

    /// Checks a gather of `index.rows()[range]` from this tensor (see
    /// [`Tensor::gather_rows`]) and gives its shape and row length.
    #[track_caller]
    fn gather_shape(&self, index: &RowIndex, range: &Range<usize>) -> (crate::shape::Shape, usize) {
        assert!(self.rank() >= 1, "gather_rows: the tensor is 0-d; it needs rows");
        assert!(
            range.start <= range.end && range.end <= index.len(),
            "gather_rows: rows {range:?} of an index of {} row numbers",
            index.len()
        );
        let rows = self.shape()[0];
        if let Some(max) = index.max {
            assert!(max < rows, "gather_rows: row number {max} is past the tensor's {rows} rows");
        }
        assert!(
            index.device() == self.device(),
            "gather_rows: the index is on {} but the tensor on {}",
            index.device().describe(),
            self.device().describe()
        );
        let mut shape = self.dims();
        shape[0] = range.len();
        (shape, self.shape()[1..].iter().product())
    }

    fn gather_on_host(
        &self,
        index: &RowIndex,
        range: Range<usize>,
        cols: usize,
        shape: crate::shape::Shape,
    ) -> Tensor<T> {
        let data = self.data();
        Tensor::from_fill_shape(shape, |out| {
            for (o, &r) in out.chunks_exact_mut(cols.max(1)).zip(&index.host[range]) {
                o.copy_from_slice(&data[r * cols..(r + 1) * cols]);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Tensor<f64> {
        Tensor::from_vec((0..12).map(f64::from).collect(), &[4, 3])
    }

    #[test]
    fn rows_come_out_in_the_index_order() {
        let index = RowIndex::new(&[3, 0, 2, 2], Device::Cpu);
        let got = grid().gather_rows(&index, 1..4);
        assert_eq!(got.shape(), &[3, 3]);
        assert_eq!(got.data(), &[0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 6.0, 7.0, 8.0]);
        assert_eq!(grid().gather_rows(&index, 2..2).shape(), &[0, 3]);
    }

    #[test]
    fn a_row_past_the_end_or_a_range_past_the_index_is_refused() {
        let late =
            std::panic::catch_unwind(|| grid().gather_rows(&RowIndex::new(&[1, 4], Device::Cpu), 0..1));
        let message = *late.expect_err("row 4 of 4 rows").downcast::<String>().unwrap();
        assert!(message.contains("row number 4 is past the tensor's 4 rows"), "{message}");
        let long = std::panic::catch_unwind(|| grid().gather_rows(&RowIndex::new(&[1], Device::Cpu), 0..2));
        let message = *long.expect_err("2 rows of 1").downcast::<String>().unwrap();
        assert!(message.contains("rows 0..2 of an index of 1 row numbers"), "{message}");
    }

    /// `gather_batch` takes the batch the guard's step count names, the
    /// last one shorter, and starts over after the last.
    #[test]
    fn the_next_batch_is_the_one_the_guards_steps_name() {
        let index = RowIndex::new(&[3, 0, 2, 1, 1], Device::Cpu);
        let mut guard = LossGuard::on(Device::Cpu);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(grid().gather_batch(&index, 2, &guard));
            guard.record(&Tensor::<f64>::scalar(1.0), 1.0);
        }
        for (k, range) in [0..2, 2..4, 4..5, 0..2].into_iter().enumerate() {
            assert_eq!(
                got[k].to_vec(),
                grid().gather_rows(&index, range.clone()).to_vec(),
                "step {k}: {range:?}"
            );
        }
        let none = std::panic::catch_unwind(|| grid().gather_batch(&index, 0, &LossGuard::on(Device::Cpu)));
        let message = *none.expect_err("batches of 0 rows").downcast::<String>().unwrap();
        assert!(message.contains("gather_batch: batches of 0 rows"), "{message}");
    }
}
