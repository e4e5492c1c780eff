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
fn opened_gpu(op: &str, ordinal: usize) -> Arc<crate::cuda::Gpu> {
    crate::cuda::open(ordinal).unwrap_or_else(|e| panic!("{op}({}): {e}", Device::Cuda(ordinal)))
}

/// The panic of `op` asked for a CUDA device in a build without CUDA.
#[cfg(not(feature = "cuda"))]
#[track_caller]
fn cuda_not_built(op: &str, ordinal: usize) -> ! {
    panic!("{op}({}): {}", Device::Cuda(ordinal), crate::device::DeviceError::NotBuilt)
}

/// Elements per independently seeded piece of a large Bernoulli mask (see
/// [`Tensor::bernoulli_with`]).
pub const MASK_STREAM: usize = 1 << 15;

/// Ones where 32 random bits fall below `threshold`, zeros elsewhere.
fn fill_mask<T: Element>(out: &mut [T], threshold: u64, rng: &mut impl Rng) {
    const BLOCK: usize = 1024;
    let mut bits = [0u32; BLOCK];
    for chunk in out.chunks_mut(BLOCK) {
        let bits = &mut bits[..chunk.len()];
        rng.fill(bits);
        for (o, &b) in chunk.iter_mut().zip(bits.iter()) {
            *o = if u64::from(b) < threshold { T::one() } else { T::zero() };
        }
    }
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

    /// Builds a tensor from its elements in row-major order.
    ///
    /// Panics (at the caller) if `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            numel(shape),
            "from_vec: {} elements cannot have shape {:?} ({} elements)",
            data.len(),
            shape,
            numel(shape)
        );
        Tensor::host(Shape::from_slice(shape), Arc::new(data))
    }

    /// A tensor of `shape` whose elements are written by `fill`, which must
    /// write every element: the buffer may be a recycled one still holding
    /// old numbers (see [`crate::pool`]).
    pub fn from_fill(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Self {
        Self::from_fill_shape(Shape::from_slice(shape), fill)
    }

    /// [`Tensor::from_fill`] for a shape already in hand.
    pub fn from_fill_shape(shape: Shape, fill: impl FnOnce(&mut [T])) -> Self {
        let len = numel(&shape);
        let mut data =
            T::with_pool(|pool| pool.take(len)).flatten().unwrap_or_else(|| Arc::new(vec![T::zero(); len]));
        fill(Arc::get_mut(&mut data).expect("a pooled buffer is uniquely owned"));
        Tensor::host(shape, data)
    }

    /// Like [`Tensor::from_vec`], but returns an error instead of panicking;
    /// for data that comes from outside (files, checkpoints).
    pub fn try_from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self, String> {
        if data.len() != numel(shape) {
            return Err(format!(
                "{} elements cannot have shape {:?} ({} elements)",
                data.len(),
                shape,
                numel(shape)
            ));
        }
        Ok(Self::from_vec(data, shape))
    }

    /// A tensor whose every element is `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::from_fill(shape, |out| out.fill(value))
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A zero-dimensional tensor holding one number.
    pub fn scalar(value: T) -> Self {
        Self::from_vec(vec![value], &[])
    }

    /// `0, 1, ..., n-1` as a 1-D tensor.
    pub fn arange(n: usize) -> Self {
        Self::from_vec((0..n).map(|i| T::of(i as f64)).collect(), &[n])
    }

    /// Uniform numbers in `[low, high)`, from a seeded generator.
    pub fn uniform(shape: &[usize], low: f64, high: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::uniform_with(shape, low, high, &mut rng)
    }

    /// Uniform numbers in `[low, high)` drawn from `rng`.
    pub fn uniform_with(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Self {
        let data = (0..numel(shape)).map(|_| T::of(low + (high - low) * rng.random::<f64>())).collect();
        Self::from_vec(data, shape)
    }

    /// Normal numbers with the given mean and standard deviation, seeded.
    pub fn normal(shape: &[usize], mean: f64, std: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::normal_with(shape, mean, std, &mut rng)
    }

    /// Normal numbers drawn from `rng`.
    pub fn normal_with(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Self {
        let data = (0..numel(shape))
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                T::of(mean + std * z)
            })
            .collect();
        Self::from_vec(data, shape)
    }

    /// A mask of ones (with probability `p_one`) and zeros, seeded.
    pub fn bernoulli(shape: &[usize], p_one: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::bernoulli_with(shape, p_one, &mut rng)
    }

    /// A mask of ones (with probability `p_one`) and zeros drawn from `rng`.
    ///
    /// Each element compares 32 random bits against `p_one * 2^32`, so the
    /// probability is `p_one` to within 2^-33, exactly 0 or 1 at the ends.
    /// The bits are drawn a block at a time (`Rng::fill`) and the
    /// comparisons run as one vectorised loop: a denoising autoencoder draws
    /// 200,000 of these every step, and one `f64` draw per element was an
    /// eighth of its training time.
    ///
    /// Masks longer than [`MASK_STREAM`] elements are drawn in pieces of that
    /// length, in parallel, each from its own generator seeded by `rng` in
    /// order: the result depends on `rng` and the shape only, not on how many
    /// threads there are.
    #[track_caller]
    pub fn bernoulli_with(shape: &[usize], p_one: f64, rng: &mut impl Rng) -> Self {
        assert!((0.0..=1.0).contains(&p_one), "bernoulli: p = {p_one} is not a probability");
        // In [0, 2^32]: 0 never fires, 2^32 always does.
        let threshold = (p_one * 4_294_967_296.0).round() as u64;
        // Into a recycled buffer: a dropout or noise mask is drawn every step.
        Self::from_fill(shape, |out| {
            if out.len() <= MASK_STREAM {
                return fill_mask(out, threshold, rng);
            }
            let seeds: Vec<u64> = (0..out.len().div_ceil(MASK_STREAM)).map(|_| rng.next_u64()).collect();
            out.par_chunks_mut(MASK_STREAM)
                .zip(seeds)
                .for_each(|(piece, seed)| fill_mask(piece, threshold, &mut StdRng::seed_from_u64(seed)));
        })
    }

    /// A tensor whose every element is `value`, on `device`.
    #[track_caller]
    pub fn full_on(shape: &[usize], value: T, device: Device) -> Self {
        match device {
            Device::Cpu => Self::full(shape, value),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let gpu = opened_gpu("full_on", n);
                crate::cuda::ops::full(&gpu, shape, value)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("full_on", n),
        }
    }

    /// All zeros, on `device`.
    #[track_caller]
    pub fn zeros_on(shape: &[usize], device: Device) -> Self {
        Self::full_on(shape, T::zero(), device)
    }

    /// A Bernoulli mask (ones with probability `p_one`) on `device`.
    ///
    /// On the CPU this is [`Tensor::bernoulli_with`]. On a GPU the mask is
    /// drawn where it is used, by the counter-based generator in the kernel
    /// source (`kernels/cuda/philox.cuh`), keyed by one 64-bit draw from
    /// `rng`: the same `rng` state gives the same mask on every run and for
    /// any launch shape, though not the same mask as the CPU draws.
    #[track_caller]
    pub fn bernoulli_on(shape: &[usize], p_one: f64, rng: &mut impl Rng, device: Device) -> Self {
        match device {
            Device::Cpu => Self::bernoulli_with(shape, p_one, rng),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                assert!((0.0..=1.0).contains(&p_one), "bernoulli: p = {p_one} is not a probability");
                let gpu = opened_gpu("bernoulli_on", n);
                let threshold = (p_one * 4_294_967_296.0).round() as u64;
                crate::cuda::ops::bernoulli(&gpu, shape, rng.next_u64(), 0, threshold)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("bernoulli_on", n),
        }
    }

    /// Normal numbers on `device`: [`Tensor::normal_with`] on the CPU, the
    /// kernels' counter-based generator keyed by one draw from `rng` on a
    /// GPU (see [`Tensor::bernoulli_on`]).
    #[track_caller]
    pub fn normal_on(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng, device: Device) -> Self {
        match device {
            Device::Cpu => Self::normal_with(shape, mean, std, rng),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let gpu = opened_gpu("normal_on", n);
                crate::cuda::ops::normal(&gpu, shape, rng.next_u64(), 0, mean, std)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(n) => cuda_not_built("normal_on", n),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloning_shares_storage_and_writing_copies_only_when_shared() {
        let a = Tensor::<f32>::ones(&[2, 3]);
        let mut b = a.clone();
        assert!(a.shares_storage_with(&b));
        b.data_mut()[0] = 5.0;
        assert!(!a.shares_storage_with(&b));
        assert_eq!(a.data()[0], 1.0);
        let ptr = b.data().as_ptr();
        b.data_mut()[1] = 7.0; // no longer shared: written in place
        assert_eq!(b.data().as_ptr(), ptr);
    }

    #[test]
    fn seeded_random_is_reproducible_and_matches_across_precisions() {
        let a = Tensor::<f64>::normal(&[10], 0.0, 1.0, 7);
        let b = Tensor::<f64>::normal(&[10], 0.0, 1.0, 7);
        let c = Tensor::<f32>::normal(&[10], 0.0, 1.0, 7);
        assert_eq!(a, b);
        assert_ne!(a, Tensor::<f64>::normal(&[10], 0.0, 1.0, 8), "another seed, other numbers");
        assert_ne!(
            Tensor::<f32>::uniform(&[10], 0.0, 1.0, 7),
            Tensor::<f32>::uniform(&[10], 0.0, 1.0, 8),
            "another seed, other numbers"
        );
        assert_eq!((a.len(), c.len()), (10, 10));
        for (x, y) in a.data().iter().zip(c.data()) {
            assert_eq!(*x as f32, *y);
        }
        let m = Tensor::<f32>::bernoulli(&[10_000], 0.3, 1);
        let frac = m.data().iter().sum::<f32>() / 10_000.0;
        assert!((frac - 0.3).abs() < 0.02, "fraction of ones {frac}");
        assert_eq!(m, Tensor::<f32>::bernoulli(&[10_000], 0.3, 1));
        assert_ne!(m, Tensor::<f32>::bernoulli(&[10_000], 0.3, 2), "another seed, another mask");
        assert!(m.data().iter().all(|&x| x == 0.0 || x == 1.0));
        // The ends are exact, and a length that is not a whole number of
        // blocks is filled to the end.
        assert!(Tensor::<f32>::bernoulli(&[3000], 0.0, 2).data().iter().all(|&x| x == 0.0));
        assert!(Tensor::<f32>::bernoulli(&[3000], 1.0, 2).data().iter().all(|&x| x == 1.0));
        let tail = Tensor::<f32>::bernoulli(&[2500], 0.5, 3);
        let ones_in_tail = tail.data()[2048..].iter().sum::<f32>();
        assert!((200.0..=252.0).contains(&ones_in_tail), "ones among the last 452: {ones_in_tail}");
        // A long mask is drawn in separately seeded pieces, in parallel: still
        // reproducible, every piece (the short last one too) has its share of
        // ones, and no two pieces repeat each other.
        let n = 3 * MASK_STREAM + 1000;
        let long = Tensor::<f32>::bernoulli(&[n], 0.25, 4);
        assert_eq!(long, Tensor::<f32>::bernoulli(&[n], 0.25, 4));
        assert_ne!(long, Tensor::<f32>::bernoulli(&[n], 0.25, 5));
        let pieces: Vec<&[f32]> = long.data().chunks(MASK_STREAM).collect();
        for piece in &pieces {
            let frac = piece.iter().sum::<f32>() / piece.len() as f32;
            assert!((frac - 0.25).abs() < 0.04, "fraction of ones in a piece {frac}");
        }
        assert!(pieces[0] != pieces[1] && pieces[1] != pieces[2]);
        let u = Tensor::<f32>::uniform(&[1000], -2.0, 3.0, 3);
        assert!(u.data().iter().all(|&x| (-2.0..3.0).contains(&x)));
    }

    #[test]
    #[should_panic(expected = "from_vec: 5 elements cannot have shape [2, 3]")]
    fn from_vec_checks_the_shape() {
        let _ = Tensor::<f32>::from_vec(vec![0.0; 5], &[2, 3]);
    }

    #[test]
    fn max_abs_diff_is_nan_or_infinite_when_a_pair_is() {
        let r = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        let with = |i: usize, v: f64| {
            let mut t = r.clone();
            t.data_mut()[i] = v;
            t
        };
        assert_eq!(with(0, 1.5).max_abs_diff(&r), 0.5);
        assert!(with(1, f64::NAN).max_abs_diff(&r).is_nan(), "a NaN in the middle");
        assert!(r.max_abs_diff(&with(0, f64::NAN)).is_nan(), "a NaN first, on the other side");
        let two = with(0, f64::NAN);
        assert!(with(2, 100.0).max_abs_diff(&two).is_nan(), "a larger finite difference after a NaN");
        assert_eq!(with(2, f64::INFINITY).max_abs_diff(&r), f64::INFINITY);
        let inf = with(1, f64::INFINITY);
        assert!(inf.max_abs_diff(&inf).is_nan(), "the same infinity on both sides");
        let nan_diff = with(1, f64::NAN).max_abs_diff(&r);
        assert!(nan_diff.partial_cmp(&1e-10).is_none(), "so `<= tol` fails");
    }

    #[test]
    fn arange_at_and_reshape() {
        let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
        assert_eq!(t.at(&[1, 2]), 5.0);
        assert_eq!(t.shape(), &[2, 3]);
    }
}
