//! The CUDA kernel sources, as text, for the runtime loader to hand to
//! NVRTC; and [`Strided6`], the by-value argument that the strided and
//! broadcasting kernels take.
//!
//! The kernels live in `kernels/cuda/`, one file per family (elementwise,
//! activations, reduce, shape, masks, optim, and the fused layers and
//! losses), each with entry points
//! `<name>_f32` and `<name>_f64`. They include two headers, which NVRTC is
//! given by name and content ([`HEADERS`]); `cpu_sim.h` is only read by a
//! host C++ compiler (the `kernel-sim` test feature) and is not listed.
//! `scripts/check_kernels.sh` compiles every file for sm_80 and sm_90.

use crate::shape::MAX_RANK;

/// The headers the kernel files include, as `(file name, text)`.
pub const HEADERS: &[(&str, &str)] =
    &[("common.cuh", include_str!("../cuda/common.cuh")), ("philox.cuh", include_str!("../cuda/philox.cuh"))];

/// The kernel files, as `(file name, text)`: each is one NVRTC program.
pub const SOURCES: &[(&str, &str)] = &[
    ("activations.cu", include_str!("../cuda/activations.cu")),
    ("elementwise.cu", include_str!("../cuda/elementwise.cu")),
    ("fused.cu", include_str!("../cuda/fused.cu")),
    ("losses.cu", include_str!("../cuda/losses.cu")),
    ("masks.cu", include_str!("../cuda/masks.cu")),
    ("optim.cu", include_str!("../cuda/optim.cu")),
    ("reduce.cu", include_str!("../cuda/reduce.cu")),
    ("shape.cu", include_str!("../cuda/shape.cu")),
];

/// Up to [`MAX_RANK`] axes of strided indexing, laid out as `struct
/// Strided6` in `common.cuh` (an `int`, padding, then three arrays of
/// `long long`), passed to kernels by value.
///
/// `shape` is the row-major shape a kernel walks; `stride_a` and `stride_b`
/// say how far each of two operands moves per step along each axis, in
/// elements: 0 on an axis it is broadcast along. Unused axes hold zeros.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strided6 {
    /// How many of the axes are in use, from the first; at most [`MAX_RANK`].
    pub rank: i32,
    /// The length of each axis of the walk, outermost first.
    pub shape: [i64; MAX_RANK],
    /// The first operand's stride along each axis, in elements (0 where it broadcasts).
    pub stride_a: [i64; MAX_RANK],
    /// The second operand's stride along each axis, in elements (0 where it broadcasts).
    pub stride_b: [i64; MAX_RANK],
}

/// Row-major strides of `dims` aligned to the last axes of a shape of rank
/// `rank`, with 0 wherever `dims` has length 1 or does not reach.
fn broadcast_strides(dims: &[usize], rank: usize) -> [i64; MAX_RANK] {
    let mut strides = [0; MAX_RANK];
    let mut step = 1i64;
    for (k, &d) in dims.iter().enumerate().rev() {
        strides[rank - dims.len() + k] = if d == 1 { 0 } else { step };
        step *= d as i64;
    }
    strides
}

impl Strided6 {
    /// Walks `shape` reading each operand through the given strides.
    ///
    /// Panics if the rank is above [`MAX_RANK`] or the lengths differ.
    #[track_caller]
    pub fn new(shape: &[usize], stride_a: &[i64], stride_b: &[i64]) -> Strided6 {
        let rank = shape.len();
        assert!(rank <= MAX_RANK, "Strided6: rank {rank} is above {MAX_RANK}");
        assert!(
            stride_a.len() == rank && stride_b.len() == rank,
            "Strided6: shape {shape:?} with strides {stride_a:?} and {stride_b:?}"
        );
        let mut s = Strided6 { rank: rank as i32, ..Strided6::default() };
        for k in 0..rank {
            s.shape[k] = shape[k] as i64;
            s.stride_a[k] = stride_a[k];
            s.stride_b[k] = stride_b[k];
        }
        s
    }

    /// Walks `out` (a broadcast shape) reading contiguous operands of shapes
    /// `a` and `b` that broadcast to it (NumPy rules): the argument of the
    /// `*_bcast` binary kernels and of `broadcast_to` (with `b = &[]`).
    ///
    /// Panics if the rank is above [`MAX_RANK`], or if `a` or `b` has more
    /// axes than `out`.
    #[track_caller]
    pub fn broadcast(out: &[usize], a: &[usize], b: &[usize]) -> Strided6 {
        let rank = out.len();
        assert!(rank <= MAX_RANK, "Strided6: rank {rank} is above {MAX_RANK}");
        assert!(a.len() <= rank && b.len() <= rank, "Strided6: {a:?} or {b:?} has more axes than {out:?}");
        let (sa, sb) = (broadcast_strides(a, rank), broadcast_strides(b, rank));
        Strided6::new(out, &sa[..rank], &sb[..rank])
    }

    /// The argument of `sum_to` and `mul_sum_to`: `big` is the contiguous
    /// tensor summed over, `small` the shape it is summed to (stride_a: 0 on
    /// the summed axes), and `other` the shape of `mul_sum_to`'s second
    /// factor (stride_b; pass `&[]` for `sum_to`).
    #[track_caller]
    pub fn sum_to(big: &[usize], small: &[usize], other: &[usize]) -> Strided6 {
        Strided6::broadcast(big, small, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_are_all_listed_and_their_headers_too() {
        let on_disk = |ext: &str| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/cuda"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(ext))
                .collect();
            names.sort();
            names
        };
        let listed = |list: &[(&str, &str)]| list.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(listed(SOURCES), on_disk(".cu"));
        assert_eq!(listed(HEADERS), on_disk(".cuh"));
        for (name, text) in SOURCES {
            assert!(text.contains("#include \"common.cuh\""), "{name} does not include common.cuh");
            assert!(text.contains("extern \"C\" __global__"), "{name} has no entry points");
        }
    }

    #[test]
    fn broadcast_strides_are_zero_on_repeated_axes() {
        let s = Strided6::broadcast(&[2, 3, 4], &[3, 1], &[4]);
        assert_eq!(s.rank, 3);
        assert_eq!(&s.shape[..3], &[2, 3, 4]);
        assert_eq!(&s.stride_a[..3], &[0, 1, 0]);
        assert_eq!(&s.stride_b[..3], &[0, 0, 1]);
        assert_eq!(std::mem::size_of::<Strided6>(), 8 + 3 * 8 * MAX_RANK);
    }
}
