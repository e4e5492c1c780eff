//! Buffer recycling: the engine's answer to "no allocation in the steady
//! state".
//!
//! A training step makes hundreds of temporary tensors, and the next step
//! makes the same ones again, with the same sizes. Instead of handing each
//! buffer back to the system allocator when its last tensor is dropped, the
//! tensor puts the buffer (together with its `Arc`, so not even the
//! reference count is reallocated) on a per-thread free list keyed by
//! length. The next tensor of that length takes it back. After the first
//! step, a training loop allocates nothing.
//!
//! The lists are bounded ([`MAX_POOLED_BYTES`] per thread and element type,
//! and [`MAX_PER_LENGTH`] per length), so a one-off burst of large
//! temporaries is returned to the system rather than hoarded, and resident
//! memory stops growing after the first steps. A recycled
//! buffer still holds old numbers: every kernel that takes one writes every
//! element before anyone reads it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// At most this many bytes of idle buffers are kept per thread and type.
pub const MAX_POOLED_BYTES: usize = 128 << 20;
/// At most this many idle buffers of one length are kept, or more for small
/// lengths, up to [`SMALL_LENGTH_BYTES`] worth: a tiny network's step makes
/// hundreds of tensors of the same few elements, while a buffer that keeps
/// arriving from outside the pool (a tensor built from a `Vec`) must not
/// pile up.
pub const MAX_PER_LENGTH: usize = 16;
/// See [`MAX_PER_LENGTH`].
pub const SMALL_LENGTH_BYTES: usize = 64 << 10;

/// Lengths below this are looked up by index, the rest by hashing.
const SMALL: usize = 1024;

/// Idle buffers of one element type, by length.
pub struct Pool<T> {
    small: Vec<Vec<Arc<Vec<T>>>>,
    large: HashMap<usize, Vec<Arc<Vec<T>>>, BuildHasherDefault<LengthHasher>>,
    bytes: usize,
}

/// Lengths are already well spread: use them as their own hash.
#[derive(Default)]
struct LengthHasher(u64);

impl Hasher for LengthHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool { small: Vec::new(), large: HashMap::default(), bytes: 0 }
    }
}

impl<T> Pool<T> {
    fn list(&mut self, len: usize) -> &mut Vec<Arc<Vec<T>>> {
        if len < SMALL {
            if self.small.len() <= len {
                self.small.resize_with(len + 1, Vec::new);
            }
            &mut self.small[len]
        } else {
            self.large.entry(len).or_default()
        }
    }

    /// A uniquely owned buffer of exactly `len` elements, if one is idle.
    pub(crate) fn take(&mut self, len: usize) -> Option<Arc<Vec<T>>> {
        let buf = self.list(len).pop()?;
        self.bytes -= len * std::mem::size_of::<T>();
        Some(buf)
    }

    /// Keeps a uniquely owned buffer for reuse, unless the pool is full.
    pub(crate) fn give(&mut self, buf: Arc<Vec<T>>) {
        let len = buf.len();
        let size = len * std::mem::size_of::<T>();
        if len == 0 || self.bytes + size > MAX_POOLED_BYTES {
            return;
        }
        let limit = MAX_PER_LENGTH.max(SMALL_LENGTH_BYTES / size.max(1));
        let list = self.list(len);
        if list.len() < limit {
            list.push(buf);
            self.bytes += size;
        }
    }

    /// Bytes held idle.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops every idle buffer.
    pub fn clear(&mut self) {
        self.small.clear();
        self.large.clear();
        self.bytes = 0;
    }
}

/// Access to the calling thread's pool for one element type.
pub trait Pooled: Sized + 'static {
    /// Runs `f` with this thread's pool, or returns `None` if the thread is
    /// shutting down and its pool is gone.
    fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R>;
}

thread_local! {
    static POOL_F32: RefCell<Pool<f32>> = RefCell::new(Pool::default());
    static POOL_F64: RefCell<Pool<f64>> = RefCell::new(Pool::default());
}

impl Pooled for f32 {
    fn with_pool<R>(f: impl FnOnce(&mut Pool<f32>) -> R) -> Option<R> {
        POOL_F32.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p))).ok().flatten()
    }
}

impl Pooled for f64 {
    fn with_pool<R>(f: impl FnOnce(&mut Pool<f64>) -> R) -> Option<R> {
        POOL_F64.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p))).ok().flatten()
    }
}

/// Bytes of idle buffers this thread holds for `T`.
pub fn pooled_bytes<T: Pooled>() -> usize {
    T::with_pool(|p| p.bytes()).unwrap_or(0)
}

/// Releases this thread's idle buffers for `T`.
pub fn release_pool<T: Pooled>() {
    T::with_pool(|p| p.clear());
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn a_dropped_buffer_is_reused_by_the_next_tensor_of_its_length() {
        let a = Tensor::<f32>::full(&[1234], 1.0);
        let ptr = a.data().as_ptr();
        drop(a);
        let b = Tensor::<f32>::full(&[1234], 2.0).mul_scalar(1.0);
        // `full` took the recycled buffer back; `mul_scalar` needed a second.
        let c = Tensor::<f32>::full(&[617, 2], 3.0);
        assert!(b.data().iter().all(|&x| x == 2.0));
        assert!(c.data().iter().all(|&x| x == 3.0));
        assert!(b.data().as_ptr() == ptr || c.data().as_ptr() == ptr);
    }

    #[test]
    fn a_shared_buffer_is_not_recycled_while_another_tensor_uses_it() {
        let a = Tensor::<f64>::full(&[999], 1.0);
        let b = a.clone();
        drop(a);
        let c = Tensor::<f64>::full(&[999], 5.0);
        assert!(!c.shares_storage_with(&b));
        assert!(b.data().iter().all(|&x| x == 1.0));
    }
}
