//! `Tensor<T>`: an n-dimensional array with shared, copy-on-write storage.
//!
//! A tensor is a shape plus a contiguous row-major buffer behind an `Arc`.
//! Cloning a tensor clones the `Arc`, never the numbers, so a tape can hold a
//! parameter as a leaf without copying it. Writing through
//! [`Tensor::data_mut`] copies the buffer only if someone else still shares
//! it (`Arc::make_mut`), so an optimiser that updates a parameter after the
//! tape is gone writes in place.
//!
//! The buffer lives on a [`Device`]: host memory, or (with the `cuda`
//! feature) a GPU's memory. A tensor's ops run where its numbers are, so a
//! model moved to a GPU with [`Tensor::to`] computes there without any
//! change above this crate. The accessors that hand out host memory
//! ([`Tensor::data`], [`Tensor::data_mut`], [`Tensor::view`]) panic on a GPU
//! tensor, saying to call [`Tensor::to_cpu`] first; those that return owned
//! values ([`Tensor::to_vec`], [`Tensor::item`], [`Tensor::at`]) copy from
//! the GPU (a synchronisation, like PyTorch's `.item()`).
//!
//! # `Tensor`'s methods, by family
//!
//! A tensor computes; it records nothing (for gradients, read it onto a
//! tape: `gradtape::Tape::param`). Each method runs on the tensor's device.
//!
//! | family | methods | file |
//! |---|---|---|
//! | making one | `from_vec`, `try_from_vec`, `from_fill`, `from_array`, `full`, `zeros`, `ones`, `scalar`, `arange`; random: `uniform`, `normal`, `bernoulli` (from a seed) and their `_with` forms (from your generator); on a device: `full_on`, `zeros_on`, `normal_on`, `bernoulli_on` | `tensor/create.rs` (`from_array`: `tensor.rs`) |
//! | reading it | `shape`, `dims`, `rank`, `len`, `is_empty`, `data`, `data_mut`, `to_vec`, `item`, `at`, `view`, `view_mut`, `max_abs_diff` | `tensor.rs` |
//! | storage and device | `device`, `is_cuda`, `to`, `to_cpu`, `cast`, `reshape`, `is_shared`, `shares_storage_with` | `tensor.rs` |
//! | arithmetic (broadcasting) | `add`, `sub`, `mul`, `div`, `neg`, `add_scalar`, `mul_scalar`, `add_assign` | `elementwise.rs` |
//! | elementwise functions | `exp`, `log` (natural), `powf`, `sqrt`, `square`, `abs`, `sign`, `sigmoid`, `tanh`, `relu`, `step`, `softplus`, `clamp`, `inside_mask`; any closure on the CPU: `map`, `zip_with` | `elementwise.rs` |
//! | reductions | `sum_all`, `sum_squares`, `mean_all`, `max_all`, `sum_axis`, `mean_axis`, `max_axis`, `max_mask` | `reduce.rs` |
//! | layout | `transpose`, `broadcast_to`, `sum_to`, `mul_sum_to`, `select`, `unselect`, `slice_axis`, `pad_axis` | `layout.rs` |
//! | products | `matmul` (batched), `matmul_t` | `matmul.rs` |
//! | fused passes | `bias_act`, `bias_act_grad`, `zip_formula` | `fused.rs`, `formula.rs` |
//! | optimiser updates | `adam_update`, `adam_update_all`, `sgd_update` | `optim.rs` |
//!
//! A tensor has no operators (`+`, `*`): its arithmetic is by method, so
//! that every allocation is visible. A dot product is
//! `x.mul(&y).sum_all()`, a mean `x.mean_all()`.

use crate::device::Device;
use crate::element::Element;
use crate::shape::{numel, Shape};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

mod create;
#[cfg(test)]
mod tests;

pub use create::MASK_STREAM;

/// An n-dimensional array of `f32` or `f64`, row-major and contiguous.
pub struct Tensor<T: Element> {
    shape: Shape,
    store: Store<T>,
}

/// Where a tensor's elements are. Without the `cuda` feature there is one
/// variant, and matching on it costs nothing.
enum Store<T: Element> {
    /// Host memory. Never dropped in place: [`Drop`] hands a uniquely owned
    /// buffer back to the thread's [`crate::pool`] instead.
    Host(ManuallyDrop<Arc<Vec<T>>>),
    /// Memory on a CUDA device, shared between clones like the host buffer.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::Buffer<T>),
}

impl<T: Element> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        let store = match &self.store {
            Store::Host(data) => Store::Host(ManuallyDrop::new(Arc::clone(data))),
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => Store::Cuda(buffer.clone()),
        };
        Tensor { shape: self.shape, store }
    }
}

impl<T: Element> Drop for Tensor<T> {
    // Without the `cuda` feature the store is always on the host.
    #[allow(irrefutable_let_patterns)]
    fn drop(&mut self) {
        if let Store::Host(data) = &mut self.store {
            // SAFETY: `data` is taken exactly once, here, and never used again.
            let data = unsafe { ManuallyDrop::take(data) };
            if Arc::strong_count(&data) == 1 && Arc::weak_count(&data) == 0 {
                T::with_pool(|pool| pool.give(data));
            }
        }
    }
}

/// CUDA device `ordinal`, opened for `op`; panics at the caller with the
/// reason if it cannot be (`Device::cuda` returns that reason as an error).
#[cfg(feature = "cuda")]
#[track_caller]
pub(crate) fn opened_gpu(op: &str, ordinal: usize) -> Arc<crate::cuda::Gpu> {
    crate::cuda::open(ordinal).unwrap_or_else(|e| panic!("{op}({}): {e}", Device::Cuda(ordinal)))
}

/// The panic of `op` asked for a CUDA device in a build without CUDA.
#[cfg(not(feature = "cuda"))]
#[track_caller]
fn cuda_not_built(op: &str, ordinal: usize) -> ! {
    panic!("{op}({}): {}", Device::Cuda(ordinal), crate::device::DeviceError::NotBuilt)
}

impl<T: Element> Tensor<T> {
    /// A host tensor over `data`.
    fn host(shape: Shape, data: Arc<Vec<T>>) -> Self {
        Tensor { shape, store: Store::Host(ManuallyDrop::new(data)) }
    }

    /// A tensor over a GPU buffer holding `numel(shape)` elements.
    #[cfg(feature = "cuda")]
    pub(crate) fn from_cuda(shape: Shape, buffer: crate::cuda::Buffer<T>) -> Self {
        debug_assert_eq!(buffer.len(), numel(&shape));
        Tensor { shape, store: Store::Cuda(buffer) }
    }

    /// The GPU buffer, if this tensor is on a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn cuda_buffer(&self) -> Option<&crate::cuda::Buffer<T>> {
        match &self.store {
            Store::Host(_) => None,
            Store::Cuda(buffer) => Some(buffer),
        }
    }

    /// The GPU buffer for writing (copied first if shared), if this tensor
    /// is on a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn cuda_buffer_mut(&mut self) -> &mut crate::cuda::Buffer<T> {
        match &mut self.store {
            Store::Cuda(buffer) => buffer,
            Store::Host(_) => panic!("cuda_buffer_mut: a host tensor"),
        }
    }

    /// Whether this tensor is on a GPU (always false without the `cuda`
    /// feature).
    #[inline(always)]
    pub fn is_cuda(&self) -> bool {
        match &self.store {
            Store::Host(_) => false,
            #[cfg(feature = "cuda")]
            Store::Cuda(_) => true,
        }
    }

    /// The device both operands of `op` are on; panics at the caller naming
    /// the op and both devices if they differ.
    #[inline(always)]
    #[track_caller]
    pub fn same_device(&self, other: &Tensor<T>, op: &str) -> Device {
        let (a, b) = (self.device(), other.device());
        if a != b {
            panic!(
                "{op}: operands on different devices: {a} and {b} (shapes {:?} and {:?})",
                self.shape, other.shape
            );
        }
        a
    }

    /// The host buffer; panics at the caller on a GPU tensor, naming `op`.
    #[inline(always)]
    #[track_caller]
    fn host_buffer(&self, op: &str) -> &Arc<Vec<T>> {
        let _ = op; // named in the GPU case only
        match &self.store {
            Store::Host(data) => data,
            #[cfg(feature = "cuda")]
            Store::Cuda(_) => panic!(
                "{op}: this tensor (shape {:?}) is on {}; its numbers are not in host memory: \
                 call .to_cpu() first",
                self.shape,
                self.device()
            ),
        }
    }

    /// Where the elements are.
    pub fn device(&self) -> Device {
        match &self.store {
            Store::Host(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => Device::Cuda(buffer.ordinal()),
        }
    }

    /// The same tensor on `device`: shared (no copy) if it is already there,
    /// else copied. Panics if `device` cannot be used (a CUDA device in a
    /// build without CUDA, or one [`Device::cuda`] would refuse): get the
    /// device from [`Device::cuda`] first, which reports why as an error.
    #[track_caller]
    pub fn to(&self, device: Device) -> Tensor<T> {
        if self.device() == device {
            return self.clone();
        }
        match device {
            Device::Cpu => self.to_cpu(),
            #[cfg(feature = "cuda")]
            Device::Cuda(ordinal) => {
                let gpu = opened_gpu("to", ordinal);
                let host = self.to_cpu();
                Tensor::from_cuda(self.shape, crate::cuda::Buffer::upload(&gpu, host.data()))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("to", n),
        }
    }

    /// The same tensor in host memory (shared if it already is).
    pub fn to_cpu(&self) -> Tensor<T> {
        match &self.store {
            Store::Host(_) => self.clone(),
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => Tensor::from_vec(buffer.download(), &self.shape),
        }
    }

    /// The axis lengths.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Whether two tensors have the same shape (cheaper than comparing
    /// slices).
    pub fn same_shape(&self, other: &Tensor<T>) -> bool {
        self.shape == other.shape
    }

    /// The shape as a `Copy` value.
    pub fn dims(&self) -> Shape {
        self.shape
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in row-major order. Panics on a GPU tensor (see the
    /// module docs): call [`Tensor::to_cpu`] first, or [`Tensor::to_vec`].
    #[track_caller]
    pub fn data(&self) -> &[T] {
        self.host_buffer("data")
    }

    /// Mutable access to the elements; copies the buffer first only if it is
    /// shared with another tensor (copy on write).
    #[track_caller]
    pub fn data_mut(&mut self) -> &mut [T] {
        self.host_buffer("data_mut");
        match &mut self.store {
            Store::Host(data) => Arc::make_mut(&mut **data).as_mut_slice(),
            #[cfg(feature = "cuda")]
            Store::Cuda(_) => unreachable!("checked by host_buffer"),
        }
    }

    /// Whether this tensor's buffer is shared with another tensor.
    pub fn is_shared(&self) -> bool {
        match &self.store {
            Store::Host(data) => Arc::strong_count(data) > 1,
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => buffer.is_shared(),
        }
    }

    /// Whether two tensors use the same buffer (no copy was made).
    pub fn shares_storage_with(&self, other: &Tensor<T>) -> bool {
        match (&self.store, &other.store) {
            (Store::Host(a), Store::Host(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "cuda")]
            (Store::Cuda(a), Store::Cuda(b)) => a.same_as(b),
            #[cfg(feature = "cuda")]
            _ => false,
        }
    }

    /// The elements, copied out (from the GPU too).
    pub fn to_vec(&self) -> Vec<T> {
        match &self.store {
            Store::Host(data) => data.to_vec(),
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => buffer.download(),
        }
    }

    /// The only element of a one-element tensor.
    #[track_caller]
    pub fn item(&self) -> T {
        assert_eq!(self.len(), 1, "item: tensor of shape {:?} has {} elements", self.shape, self.len());
        match &self.store {
            Store::Host(data) => data[0],
            #[cfg(feature = "cuda")]
            Store::Cuda(buffer) => buffer.download()[0],
        }
    }

    /// The element at a multi-index.
    #[track_caller]
    pub fn at(&self, index: &[usize]) -> T {
        assert_eq!(index.len(), self.rank(), "at: index {index:?} for shape {:?}", self.shape);
        let mut flat = 0;
        for (&i, &d) in index.iter().zip(self.shape.iter()) {
            assert!(i < d, "at: index {index:?} out of range for shape {:?}", self.shape);
            flat = flat * d + i;
        }
        match &self.store {
            Store::Host(data) => data[flat],
            #[cfg(feature = "cuda")]
            Store::Cuda(_) => self.to_vec()[flat],
        }
    }

    /// Same elements, new shape with the same number of elements (no copy).
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Self {
        assert_eq!(numel(shape), self.len(), "reshape: cannot reshape {:?} into {:?}", self.shape, shape);
        let mut out = self.clone();
        out.shape = Shape::from_slice(shape);
        out
    }

    /// Converts every element to another precision.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let host = self.to_cpu();
        let cast = Tensor::from_vec(host.data().iter().map(|&x| U::of(x.as_f64())).collect(), &self.shape);
        cast.to(self.device())
    }

    /// A read-only ndarray view of this tensor (no copy).
    #[track_caller]
    pub fn view(&self) -> ArrayViewD<'_, T> {
        ArrayViewD::from_shape(IxDyn(&self.shape), self.host_buffer("view")).expect("contiguous storage")
    }

    /// A mutable ndarray view (copy on write, like [`Tensor::data_mut`]).
    #[track_caller]
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let shape = self.shape;
        ArrayViewMutD::from_shape(IxDyn(&shape), self.data_mut()).expect("contiguous storage")
    }

    /// Takes an ndarray array, copying only if it is not already row-major.
    pub fn from_array(array: ArrayD<T>) -> Self {
        let shape = Shape::from_slice(array.shape());
        let data = if array.is_standard_layout() {
            let (vec, offset) = array.into_raw_vec_and_offset();
            debug_assert!(offset.unwrap_or(0) == 0);
            vec
        } else {
            array.iter().copied().collect()
        };
        Tensor::host(shape, Arc::new(data))
    }

    /// Largest absolute elementwise difference to another tensor of the same
    /// shape. NaN if any pair differs by NaN (a NaN on either side, or the
    /// same infinity on both), infinity if a pair differs by infinity: a
    /// non-finite value never hides behind a finite maximum, so
    /// `a.max_abs_diff(b) <= tol` fails for it. [`crate::compare`] says
    /// which element it was.
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Tensor<T>) -> T {
        assert_eq!(self.shape(), other.shape(), "max_abs_diff: shapes differ");
        let (a, b) = (self.to_cpu(), other.to_cpu());
        // `f64::max` would drop NaN; this keeps the first one it meets.
        a.data().iter().zip(b.data()).fold(T::zero(), |m, (&a, &b)| {
            let d = (a - b).abs();
            if d > m || d.is_nan() {
                d
            } else {
                m
            }
        })
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?} ", std::any::type_name::<T>(), self.shape.as_slice())?;
        if self.device() != Device::Cpu {
            write!(f, "on {} ", self.device())?;
        }
        let host = self.to_cpu();
        let data = host.data();
        if data.len() <= 64 {
            write!(f, "{data:?}")
        } else {
            write!(f, "[{:?}, ... {} elements]", &data[..8], data.len())
        }
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.to_cpu().data() == other.to_cpu().data()
    }
}
