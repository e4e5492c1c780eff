//! Shapes and NumPy broadcasting.
//!
//! A shape is a short list of axis lengths, stored inline in a small `Copy`
//! value (no heap), up to [`MAX_RANK`] axes: the tape copies and compares
//! shapes on every op, so this has to cost next to nothing. Two shapes broadcast when, aligned at their last axis, each pair
//! of lengths is equal or one of them is 1; missing leading axes count as 1.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// The most axes a tensor may have.
pub const MAX_RANK: usize = 6;

/// Axis lengths, outermost first. Row-major: the last axis is contiguous.
/// Dereferences to `[usize]`. Unused slots are kept at zero, so the derived
/// equality is equality of shapes.
#[derive(Clone, Copy, Eq, Default)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// The shape with these axis lengths.
    #[track_caller]
    pub fn from_slice(dims: &[usize]) -> Shape {
        assert!(dims.len() <= MAX_RANK, "shape {dims:?} has more than {MAX_RANK} axes");
        let mut out = Shape::default();
        out.dims[..dims.len()].copy_from_slice(dims);
        out.rank = dims.len() as u8;
        out
    }

    /// An empty shape (a scalar); `_capacity` is accepted for symmetry with
    /// `Vec` and ignored.
    pub fn with_capacity(_capacity: usize) -> Shape {
        Shape::default()
    }

    /// The axis lengths as a slice.
    pub fn as_slice(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    /// Appends an axis.
    #[track_caller]
    pub fn push(&mut self, d: usize) {
        assert!((self.rank as usize) < MAX_RANK, "shape {self:?} cannot take another axis");
        self.dims[self.rank as usize] = d;
        self.rank += 1;
    }

    /// Inserts an axis of length `d` at position `at`.
    #[track_caller]
    pub fn insert(&mut self, at: usize, d: usize) {
        let r = self.rank as usize;
        assert!(at <= r && r < MAX_RANK, "cannot insert an axis at {at} into {self:?}");
        self.dims.copy_within(at..r, at + 1);
        self.dims[at] = d;
        self.rank += 1;
    }

    /// Removes axis `at` and returns its length.
    #[track_caller]
    pub fn remove(&mut self, at: usize) -> usize {
        let r = self.rank as usize;
        assert!(at < r, "cannot remove axis {at} from {self:?}");
        let d = self.dims[at];
        self.dims.copy_within(at + 1..r, at);
        self.dims[r - 1] = 0;
        self.rank -= 1;
        d
    }
}

impl PartialEq for Shape {
    /// Written out rather than derived: a derived comparison of the whole
    /// array becomes a `memcmp` call, which showed up in profiles of the
    /// tape's per-op cost.
    #[inline]
    fn eq(&self, other: &Shape) -> bool {
        self.rank == other.rank && (0..self.rank as usize).all(|i| self.dims[i] == other.dims[i])
    }
}

impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        self.as_slice()
    }
}

impl DerefMut for Shape {
    fn deref_mut(&mut self) -> &mut [usize] {
        &mut self.dims[..self.rank as usize]
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl PartialEq<[usize]> for Shape {
    fn eq(&self, other: &[usize]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Shape {
    fn eq(&self, other: &[usize; N]) -> bool {
        self.as_slice() == other
    }
}

impl FromIterator<usize> for Shape {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Shape {
        let mut out = Shape::default();
        for d in iter {
            out.push(d);
        }
        out
    }
}

/// Builds a [`Shape`] from a slice.
pub fn shape_of(dims: &[usize]) -> Shape {
    Shape::from_slice(dims)
}

/// Number of elements of a shape (1 for a scalar, shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The broadcast shape of `a` and `b`, or `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out = Shape::with_capacity(rank);
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out.push(match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        });
    }
    Some(out)
}

/// Whether `from` can be broadcast to `to` (the result of broadcasting the
/// two is `to` itself).
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    broadcast_shapes(from, to).is_some_and(|s| s.as_slice() == to)
}

/// Panics with the op's name and both shapes when `a` and `b` do not
/// broadcast; returns the broadcast shape otherwise.
#[track_caller]
pub fn broadcast_or_panic(op: &str, a: &[usize], b: &[usize]) -> Shape {
    // A `match`, not `unwrap_or_else`: closures do not inherit
    // `#[track_caller]`, and the panic must point at the user's line.
    match broadcast_shapes(a, b) {
        Some(shape) => shape,
        None => panic!("{op}: shapes {a:?} and {b:?} do not broadcast"),
    }
}

/// Checks that `axis` is an axis of a tensor of rank `rank`.
#[track_caller]
pub fn check_axis(op: &str, shape: &[usize], axis: usize) {
    assert!(axis < shape.len(), "{op}: axis {axis} is out of range for shape {shape:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy_rules() {
        assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap().as_slice(), &[3, 4]);
        assert_eq!(broadcast_shapes(&[], &[2, 2]).unwrap().as_slice(), &[2, 2]);
        assert_eq!(broadcast_shapes(&[2, 1, 5], &[3, 1]).unwrap().as_slice(), &[2, 3, 5]);
        assert!(broadcast_shapes(&[3], &[4]).is_none());
        assert!(broadcasts_to(&[1, 4], &[3, 4]));
        assert!(!broadcasts_to(&[3, 4], &[1, 4]));
    }
}
