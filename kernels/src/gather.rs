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
        let cols: usize = self.shape()[1..].iter().product();
        #[cfg(feature = "cuda")]
        if let Some(copy) = index.device_copy() {
            return crate::cuda::ops::gather_rows(self, copy, range.start, cols, shape);
        }
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
}
