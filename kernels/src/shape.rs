//! Shapes and NumPy broadcasting.
//!
//! A shape is a short list of axis lengths, stored inline (no heap) for up to
//! four axes. Two shapes broadcast when, aligned at their last axis, each pair
//! of lengths is equal or one of them is 1; missing leading axes count as 1.

use smallvec::SmallVec;

/// Axis lengths, outermost first. Row-major: the last axis is contiguous.
pub type Shape = SmallVec<[usize; 4]>;

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
