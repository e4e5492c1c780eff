//! shape.cu against `Tensor`'s layout ops, and strided copies against the
//! index definition.

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{Kernels, Sim};
use gradtape_kernels::cuda_source::Strided6;
use gradtape_kernels::Tensor;

/// Shapes with at least two axes (transpose) and their totals: 1, 7, 1023,
/// 1025, 100,003 elements and six axes.
const SHAPES: &[&[usize]] = &[
    &[1, 1],
    &[7, 1],
    &[1, 7],
    &[31, 33],
    &[3, 11, 31],
    &[25, 41],
    &[1, 100_003],
    &[100_003, 1],
    &[2, 3, 4, 5, 6, 7],
];

fn layout_ops_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for &shape in SHAPES {
        let n: usize = shape.iter().product();
        let x = values::<T>(n, 1.0, 11);
        let t = Tensor::from_vec(x.clone(), shape);
        let r = shape.len();
        let (rows, cols) = (shape[r - 2], shape[r - 1]);
        for (l, got) in each_launch(n, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::transpose(n as i64, rows as i64, cols as i64, x.as_ptr(), out)
        }) {
            check_exact(&format!("transpose_{} {shape:?} launch {l:?}", T::NAME), &got, t.transpose().data());
        }
        for axis in 0..r {
            let len = shape[axis];
            let inner: usize = shape[axis + 1..].iter().product();
            let what =
                |name: &str, l: (u32, u32)| format!("{name}_{} {shape:?} axis {axis} launch {l:?}", T::NAME);
            for index in [0, len / 2, len - 1] {
                let sel = t.select(axis, index);
                let m = sel.len();
                for (l, got) in each_launch(m, T::nan(), |out| unsafe {
                    <Sim as Kernels<T>>::select(
                        m as i64,
                        len as i64,
                        inner as i64,
                        index as i64,
                        x.as_ptr(),
                        out,
                    )
                }) {
                    check_exact(&what("select", l), &got, sel.data());
                }
                let want = sel.unselect(axis, index, len);
                for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                    <Sim as Kernels<T>>::unselect(
                        n as i64,
                        len as i64,
                        inner as i64,
                        index as i64,
                        sel.data().as_ptr(),
                        out,
                    )
                }) {
                    check_exact(&what("unselect", l), &got, want.data());
                }
            }
            // A slice from the middle (or all of a short axis), and its pad.
            let (start, part) = if len >= 3 { (1, len - 2) } else { (0, len) };
            let sl = t.slice_axis(axis, start, part);
            let m = sl.len();
            for (l, got) in each_launch(m, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::slice_axis(
                    m as i64,
                    len as i64,
                    part as i64,
                    inner as i64,
                    start as i64,
                    x.as_ptr(),
                    out,
                )
            }) {
                check_exact(&what("slice_axis", l), &got, sl.data());
            }
            let want = sl.pad_axis(axis, start, len);
            for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::pad_axis(
                    n as i64,
                    part as i64,
                    len as i64,
                    inner as i64,
                    start as i64,
                    sl.data().as_ptr(),
                    out,
                )
            }) {
                check_exact(&what("pad_axis", l), &got, want.data());
            }
        }
    }
}

#[test]
fn transpose_select_unselect_slice_and_pad_match_the_cpu_f32() {
    layout_ops_match_the_cpu::<f32>();
}

#[test]
fn transpose_select_unselect_slice_and_pad_match_the_cpu_f64() {
    layout_ops_match_the_cpu::<f64>();
}

fn broadcast_to_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let cases: &[(&[usize], &[usize])] = &[
        (&[1], &[7]),
        (&[], &[1023]),
        (&[1025], &[1025]),
        (&[11, 1], &[3, 11, 31]),
        (&[5, 1, 41], &[5, 5, 41]),
        (&[3, 1, 5, 6, 1], &[2, 3, 4, 5, 6, 7]),
        (&[100_003], &[2, 100_003]),
    ];
    for &(from, to) in cases {
        let x = values::<T>(from.iter().product(), 1.0, 12);
        let want = Tensor::from_vec(x.clone(), from).broadcast_to(to);
        let n = want.len();
        let idx = Strided6::broadcast(to, from, &[]);
        for (l, got) in each_launch(n, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::broadcast_to(n as i64, idx, x.as_ptr(), out)
        }) {
            check_exact(
                &format!("broadcast_to_{} {from:?} -> {to:?} launch {l:?}", T::NAME),
                &got,
                want.data(),
            );
        }
    }
}

#[test]
fn broadcast_to_matches_the_cpu_f32() {
    broadcast_to_matches_the_cpu::<f32>();
}

#[test]
fn broadcast_to_matches_the_cpu_f64() {
    broadcast_to_matches_the_cpu::<f64>();
}

/// A strided copy reads element `sum_k i_k * stride_k` for output index
/// `(i_0, ..., i_r)`: permuted axes (ndarray's own transposition as the
/// reference) and odd steps through a larger buffer.
fn strided_copy_reads_through_any_strides<T: Float>()
where
    Sim: Kernels<T>,
{
    // Permutation of [3, 5, 7]: axes (2, 0, 1).
    let x = values::<T>(105, 1.0, 13);
    let t = Tensor::from_vec(x.clone(), &[3, 5, 7]);
    let want: Vec<T> = t.view().permuted_axes(vec![2, 0, 1]).iter().copied().collect();
    let idx = Strided6::new(&[7, 3, 5], &[1, 35, 7], &[0, 0, 0]);
    for (l, got) in each_launch(105, T::nan(), |out| unsafe {
        <Sim as Kernels<T>>::strided_copy(105, idx, x.as_ptr(), out)
    }) {
        check_exact(&format!("strided_copy_{} permuted launch {l:?}", T::NAME), &got, &want);
    }
    // Every third element of every other row of a [20, 301] buffer: shape
    // [10, 100], strides (602, 3), from offset 0; and six axes of odd steps.
    let big = values::<T>(20 * 301, 1.0, 14);
    for (shape, strides) in
        [(&[10usize, 100][..], &[602i64, 3][..]), (&[2, 3, 2, 2, 3, 5], &[3001, 997, 301, 37, 11, 2])]
    {
        let n: usize = shape.iter().product();
        let mut want = Vec::with_capacity(n);
        for flat in 0..n {
            let (mut rest, mut at) = (flat, 0i64);
            for k in (0..shape.len()).rev() {
                at += (rest % shape[k]) as i64 * strides[k];
                rest /= shape[k];
            }
            want.push(big[at as usize]);
        }
        let idx = Strided6::new(shape, strides, &vec![0; shape.len()]);
        for (l, got) in each_launch(n, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::strided_copy(n as i64, idx, big.as_ptr(), out)
        }) {
            check_exact(
                &format!("strided_copy_{} {shape:?} strides {strides:?} launch {l:?}", T::NAME),
                &got,
                &want,
            );
        }
    }
}

#[test]
fn strided_copy_reads_through_permuted_and_odd_strides_f32() {
    strided_copy_reads_through_any_strides::<f32>();
}

#[test]
fn strided_copy_reads_through_permuted_and_odd_strides_f64() {
    strided_copy_reads_through_any_strides::<f64>();
}

/// `gather_rows` against `Tensor::gather_rows`: rows picked by index, some
/// twice, from an offset into the index or from the batch a guard's step
/// clock names, under every launch shape.
fn gather_rows_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    use gradtape_kernels::{Device, RowIndex};
    let (rows, cols) = (37usize, 5usize);
    let x = Tensor::from_vec(values::<T>(rows * cols, 1.0, 81), &[rows, cols]);
    let picked: Vec<usize> = (0..50).map(|k| (k * 7 + 3) % rows).collect();
    let (index, as_i64) =
        (RowIndex::new(&picked, Device::Cpu), picked.iter().map(|&r| r as i64).collect::<Vec<_>>());
    let len = 29usize;
    // The kernel from `start`, or (with a clock) from the batch it names,
    // against the CPU's gather of `want_from..`, under every launch shape.
    let check = |what: String,
                 (start, batch_rows, batches, clock): (i64, i64, i64, *const f64),
                 want_from: usize| {
        let want = x.gather_rows(&index, want_from..want_from + len);
        for ((grid, block), got) in each_launch(len * cols, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::gather_rows(
                (len * cols) as i64,
                cols as i64,
                as_i64.as_ptr(),
                start,
                batch_rows,
                batches,
                clock,
                x.data().as_ptr(),
                out,
            )
        }) {
            check_exact(&format!("gather_rows_{} {what}, launch {grid}x{block}", T::NAME), &got, want.data());
        }
    };
    check("from row 4".into(), (4, 0, 1, std::ptr::null()), 4);
    // From a guard's step clock: batch (steps mod batches) of `len` rows
    // (the `start` given is ignored).
    let (batch_rows, batches) = (len, 50 / len);
    for recorded in [0u64, 1, 2, 5] {
        let clock = [0.0, -1.0, 0.0, 0.0, 0.0, recorded as f64];
        let from = (recorded as usize % batches) * batch_rows;
        let args = (999, batch_rows as i64, batches as i64, clock.as_ptr());
        check(format!("after {recorded} steps"), args, from);
    }
}

#[test]
fn gather_rows_matches_the_cpu_f32() {
    gather_rows_matches_the_cpu::<f32>();
}

#[test]
fn gather_rows_matches_the_cpu_f64() {
    gather_rows_matches_the_cpu::<f64>();
}
