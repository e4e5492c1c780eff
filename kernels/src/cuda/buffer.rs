//! GPU memory for tensors: a buffer shared between tensor clones, recycled
//! per device when the last clone goes.
//!
//! A training step on a GPU makes the same few hundred temporaries every
//! step. Without recycling each one is a `cuMemAlloc`/`cuMemFree` pair, and a
//! small network's step is mostly that (dfdx measured its step time tripling
//! without a caching allocator). So, like the host's [`crate::pool`], a
//! dropped buffer goes back to its device's free list, keyed by element type
//! and length, and the next buffer of that length takes it.
//!
//! Of the idle buffers of a length, the one at the lowest address is taken
//! first. The choice then depends only on which buffers are idle, not on the
//! order they came back in: a training step that starts with the same idle
//! buffers and asks for the same lengths gets the same buffers, step after
//! step. (Taking the last one given back would hand two steps' temporaries
//! out in turn, since a step frees its buffers in another order than it
//! made them.) The same pointers at every step is what replaying a step as
//! one CUDA graph needs.

use super::Gpu;
use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a device buffer may hold: tensor elements, and the `i64` indices
/// that the argmax kernels pass between their two launches.
pub trait DeviceValue: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync + 'static {}
impl<T: DeviceRepr + ValidAsZeroBits + Copy + Send + Sync + 'static> DeviceValue for T {}

/// At most this many idle buffers of one type and length are kept per
/// device.
const MAX_PER_LENGTH: usize = 32;

/// Idle buffers (each a boxed `CudaSlice<T>` with its device address) by
/// element type and length, each list in falling order of address, with
/// its element size in bytes.
type FreeLists = HashMap<(TypeId, usize), (usize, Vec<(u64, Box<dyn Any + Send>)>)>;

/// Idle device buffers of one device, by element type and length.
#[derive(Default)]
pub(crate) struct DevicePool {
    free: Mutex<FreeLists>,
}

impl DevicePool {
    /// The idle buffer of `len` elements at the lowest address, if any.
    fn take<T: DeviceValue>(&self, len: usize) -> Option<CudaSlice<T>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let (_, slice) = free.get_mut(&(TypeId::of::<T>(), len))?.1.pop()?;
        Some(*slice.downcast::<CudaSlice<T>>().expect("pooled by type"))
    }

    /// Keeps `slice`, at device address `address`, for the next buffer of
    /// its length (unless [`MAX_PER_LENGTH`] are kept already).
    fn give<T: DeviceValue>(&self, slice: CudaSlice<T>, address: u64) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let list =
            free.entry((TypeId::of::<T>(), slice.len())).or_insert((std::mem::size_of::<T>(), Vec::new()));
        if list.1.len() < MAX_PER_LENGTH {
            let at = list.1.partition_point(|(a, _)| *a > address);
            list.1.insert(at, (address, Box::new(slice)));
        }
    }

    /// Frees every idle buffer (back to the driver), returning how many and
    /// their bytes.
    fn trim(&self) -> (usize, usize) {
        let lists = std::mem::take(&mut *self.free.lock().unwrap_or_else(|p| p.into_inner()));
        let (mut count, mut bytes) = (0, 0);
        for ((_, len), (size, list)) in lists {
            count += list.len();
            bytes += list.len() * len * size;
            drop(list);
        }
        (count, bytes)
    }

    /// Idle buffers of `T` and `len` elements (for tests).
    #[cfg(test)]
    pub(crate) fn idle<T: DeviceValue>(&self, len: usize) -> usize {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.get(&(TypeId::of::<T>(), len)).map_or(0, |l| l.1.len())
    }
}

/// `len` elements of new device memory. When the device is out of memory,
/// the pool's idle buffers (of every length: the last batch of an epoch and
/// the evaluation batch leave buffers of lengths a step no longer asks for)
/// are freed and the allocation is tried once more; if that fails too, the
/// panic gives the sizes.
fn allocate<T: DeviceValue>(gpu: &Gpu, len: usize) -> CudaSlice<T> {
    // SAFETY: the memory is only read after a kernel or copy wrote it.
    match unsafe { gpu.stream.alloc::<T>(len) } {
        Ok(slice) => slice,
        Err(first) => {
            let (count, bytes) = gpu.pool.trim();
            // SAFETY: as above.
            unsafe { gpu.stream.alloc::<T>(len) }.unwrap_or_else(|e| {
                panic!(
                    "CUDA allocation of {len} elements ({} bytes) failed: {e} (and before that {first:?}); \
                     the pool's {count} idle buffers ({bytes} bytes) were freed first, so the device is out \
                     of memory: use a smaller batch or model",
                    len * std::mem::size_of::<T>()
                )
            })
        }
    }
}

/// A tensor's elements in device memory. Cloning shares the memory.
pub struct Buffer<T: DeviceValue> {
    slot: Arc<Slot<T>>,
}

impl<T: DeviceValue> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer { slot: Arc::clone(&self.slot) }
    }
}

/// The memory and the device it belongs to; back to the device's pool on
/// drop.
struct Slot<T: DeviceValue> {
    gpu: Arc<Gpu>,
    /// Elements in use (the allocation holds at least one, so an empty
    /// tensor still has a valid pointer).
    len: usize,
    slice: Option<CudaSlice<T>>,
}

impl<T: DeviceValue> Drop for Slot<T> {
    fn drop(&mut self) {
        if let Some(slice) = self.slice.take() {
            use cudarc::driver::DevicePtr;
            let address = slice.device_ptr(&self.gpu.stream).0;
            self.gpu.pool.give(slice, address);
        }
    }
}

/// Panics with the driver's message: a failed allocation or copy on a GPU
/// is as fatal to a computation as running out of host memory.
///
/// A GPU reports most errors asynchronously: a kernel's fault, or a free
/// that failed when cudarc dropped a buffer, surfaces at a later, unrelated
/// call. The message says so, and how to make each op wait for its own
/// work so that the failing op is the one named.
#[track_caller]
pub(crate) fn expect_ok<R, E: std::fmt::Display>(result: Result<R, E>, what: &str) -> R {
    result.unwrap_or_else(|e| {
        let hint = if super::sync_every_op() {
            "ops wait for the GPU one by one, so this call is where it failed"
        } else {
            "the GPU reports errors asynchronously, so this may come from an earlier op or free; \
             run with --detect-anomaly (or cuda::set_sync_every_op(true)) to make every op wait for \
             its work, so that a fault names its own op"
        };
        panic!("CUDA {what} failed: {e} ({hint})")
    })
}

impl<T: DeviceValue> Buffer<T> {
    /// `len` elements on `gpu` whose values are not set: the caller's kernel
    /// must write every one (a recycled buffer holds old numbers).
    pub fn uninit(gpu: &Arc<Gpu>, len: usize) -> Buffer<T> {
        let cap = len.max(1);
        let slice = gpu.pool.take::<T>(cap).unwrap_or_else(|| allocate(gpu, cap));
        Buffer { slot: Arc::new(Slot { gpu: Arc::clone(gpu), len, slice: Some(slice) }) }
    }

    /// `len` zeros on `gpu`.
    pub fn zeros(gpu: &Arc<Gpu>, len: usize) -> Buffer<T> {
        let mut out = Buffer::uninit(gpu, len);
        let stream = Arc::clone(&gpu.stream);
        expect_ok(stream.memset_zeros(out.slice_mut()), "memset");
        out
    }

    /// A copy of host numbers on `gpu`.
    pub fn upload(gpu: &Arc<Gpu>, host: &[T]) -> Buffer<T> {
        let mut out = Buffer::uninit(gpu, host.len());
        if !host.is_empty() {
            let stream = Arc::clone(&gpu.stream);
            expect_ok(stream.memcpy_htod(host, out.slice_mut()), "copy to the device");
        }
        out
    }

    /// The numbers, copied to the host (waits for the queued work).
    pub fn download(&self) -> Vec<T> {
        let stream = &self.slot.gpu.stream;
        let mut host = expect_ok(stream.clone_dtoh(self.slice()), "copy to the host");
        expect_ok(stream.synchronize(), "synchronize");
        host.truncate(self.slot.len);
        host
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.slot.len
    }

    /// Whether it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.slot.len == 0
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> usize {
        self.slot.gpu.ordinal
    }

    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.slot.gpu
    }

    /// Whether another tensor shares this memory.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.slot) > 1
    }

    /// Whether two buffers are the same memory.
    pub fn same_as(&self, other: &Buffer<T>) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot)
    }

    /// The device memory, for reading in a kernel launch.
    pub fn slice(&self) -> &CudaSlice<T> {
        self.slot.slice.as_ref().expect("present until drop")
    }

    /// The device memory, for writing; copies it first if it is shared
    /// (copy on write, as [`crate::Tensor::data_mut`] does on the host).
    pub fn slice_mut(&mut self) -> &mut CudaSlice<T> {
        if Arc::get_mut(&mut self.slot).is_none() {
            let gpu = Arc::clone(&self.slot.gpu);
            let mut copy = Buffer::uninit(&gpu, self.slot.len);
            let stream = Arc::clone(&gpu.stream);
            expect_ok(stream.memcpy_dtod(self.slice(), copy.slice_mut()), "device copy");
            *self = copy;
        }
        let slot = Arc::get_mut(&mut self.slot).expect("unique after the copy");
        slot.slice.as_mut().expect("present until drop")
    }
}
