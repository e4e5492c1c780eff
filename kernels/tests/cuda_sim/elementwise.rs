//! elementwise.cu against `Tensor`'s unary and binary ops.

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{launch, Kernels, Sim};
use gradtape_kernels::cuda_source::Strided6;
use gradtape_kernels::shape::broadcast_shapes;
use gradtape_kernels::Tensor;

type Unary<T> = unsafe fn(i64, *const T, *mut T);

/// How close a kernel must come to its CPU op.
#[derive(Clone, Copy)]
enum Tol {
    /// The same formula and library: the same numbers.
    Exact,
    /// Different implementations of exp/ln/tanh/sigmoid (see main.rs).
    Math,
}

fn tolerance<T: Float>(tol: Tol) -> (f64, f64) {
    match tol {
        Tol::Exact => (0.0, 0.0),
        Tol::Math => (T::MATH_RTOL, underflow::<T>()),
    }
}

/// Every unary op, by name: its kernel, its CPU op, the inputs it is defined
/// on, its tolerance, and whether a NaN input is part of the comparison (ops
/// whose CPU kernel already gives NaN for NaN).
/// (name, kernel, CPU op, positive inputs only, tolerance, NaN compared)
type UnaryRow<T> = (&'static str, Unary<T>, fn(&Tensor<T>) -> Tensor<T>, bool, Tol, bool);

fn unary_ops<T: Float>() -> Vec<UnaryRow<T>>
where
    Sim: Kernels<T>,
{
    let mut ops: Vec<UnaryRow<T>> = vec![
        ("neg", <Sim as Kernels<T>>::neg, |x: &Tensor<T>| x.neg(), false, Tol::Exact, true),
        ("exp", <Sim as Kernels<T>>::exp, |x: &Tensor<T>| x.exp(), false, Tol::Math, false),
        ("ln", <Sim as Kernels<T>>::ln, |x: &Tensor<T>| x.log(), true, Tol::Math, false),
        ("sqrt", <Sim as Kernels<T>>::sqrt, |x: &Tensor<T>| x.sqrt(), true, Tol::Exact, true),
        ("square", <Sim as Kernels<T>>::square, |x: &Tensor<T>| x.square(), false, Tol::Exact, true),
        ("abs", <Sim as Kernels<T>>::abs, |x: &Tensor<T>| x.abs(), false, Tol::Exact, true),
        ("sign", <Sim as Kernels<T>>::sign, |x: &Tensor<T>| x.sign(), false, Tol::Exact, false),
        ("sigmoid", <Sim as Kernels<T>>::sigmoid, |x: &Tensor<T>| x.sigmoid(), false, Tol::Math, false),
        ("tanh", <Sim as Kernels<T>>::tanh, |x: &Tensor<T>| x.tanh(), false, Tol::Math, false),
        ("relu", <Sim as Kernels<T>>::relu, |x: &Tensor<T>| x.relu(), false, Tol::Exact, false),
        ("step", <Sim as Kernels<T>>::step, |x: &Tensor<T>| x.step(), false, Tol::Exact, false),
        ("softplus", <Sim as Kernels<T>>::softplus, |x: &Tensor<T>| x.softplus(), false, Tol::Exact, false),
    ];
    ops.extend(scalar_ops::<T>());
    ops
}

/// The ops with scalars, wrapped as unary kernels with fixed scalars (the
/// table holds plain function pointers, so the scalars are spelled in each).
fn scalar_ops<T: Float>() -> Vec<UnaryRow<T>>
where
    Sim: Kernels<T>,
{
    unsafe fn add_scalar<T: Float>(n: i64, x: *const T, out: *mut T)
    where
        Sim: Kernels<T>,
    {
        unsafe { <Sim as Kernels<T>>::add_scalar(n, x, T::of(0.75), out) }
    }
    unsafe fn mul_scalar<T: Float>(n: i64, x: *const T, out: *mut T)
    where
        Sim: Kernels<T>,
    {
        unsafe { <Sim as Kernels<T>>::mul_scalar(n, x, T::of(-1.3), out) }
    }
    unsafe fn powf<T: Float>(n: i64, x: *const T, out: *mut T)
    where
        Sim: Kernels<T>,
    {
        unsafe { <Sim as Kernels<T>>::powf(n, x, T::of(1.7), out) }
    }
    unsafe fn clamp<T: Float>(n: i64, x: *const T, out: *mut T)
    where
        Sim: Kernels<T>,
    {
        unsafe { <Sim as Kernels<T>>::clamp(n, x, T::of(-0.5), T::of(2.5), out) }
    }
    unsafe fn inside_mask<T: Float>(n: i64, x: *const T, out: *mut T)
    where
        Sim: Kernels<T>,
    {
        unsafe { <Sim as Kernels<T>>::inside_mask(n, x, T::of(-0.5), T::of(2.5), out) }
    }
    vec![
        ("add_scalar", add_scalar::<T>, |x: &Tensor<T>| x.add_scalar(T::of(0.75)), false, Tol::Exact, true),
        ("mul_scalar", mul_scalar::<T>, |x: &Tensor<T>| x.mul_scalar(T::of(-1.3)), false, Tol::Exact, true),
        ("powf", powf::<T>, |x: &Tensor<T>| x.powf(T::of(1.7)), true, Tol::Exact, true),
        ("clamp", clamp::<T>, |x: &Tensor<T>| x.clamp(T::of(-0.5), T::of(2.5)), false, Tol::Exact, false),
        (
            "inside_mask",
            inside_mask::<T>,
            |x: &Tensor<T>| x.inside_mask(T::of(-0.5), T::of(2.5)),
            false,
            Tol::Exact,
            false,
        ),
    ]
}

fn unary_ops_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for (name, kernel, cpu, positive_only, tol, nan_compared) in unary_ops::<T>() {
        let (rtol, atol) = tolerance::<T>(tol);
        for &n in SIZES {
            let mut x = if positive_only { positive::<T>(n, 1) } else { values::<T>(n, 3.0, 1) };
            if nan_compared && n > 11 {
                x[11] = T::nan();
            }
            let want = cpu(&Tensor::from_vec(x.clone(), &[n]));
            for (shape, got) in each_launch(n, T::nan(), |out| unsafe { kernel(n as i64, x.as_ptr(), out) }) {
                check(&format!("{name}_{} n={n} launch {shape:?}", T::NAME), &got, want.data(), rtol, atol);
            }
        }
    }
}

#[test]
fn unary_kernels_match_the_cpu_ops_f32() {
    unary_ops_match_the_cpu::<f32>();
}

#[test]
fn unary_kernels_match_the_cpu_ops_f64() {
    unary_ops_match_the_cpu::<f64>();
}

type Binary<T> = unsafe fn(i64, *const T, *const T, *mut T);
type BinaryBcast<T> = unsafe fn(i64, Strided6, *const T, *const T, *mut T);

#[allow(clippy::type_complexity)]
fn binary_ops<T: Float>(
) -> Vec<(&'static str, Binary<T>, BinaryBcast<T>, fn(&Tensor<T>, &Tensor<T>) -> Tensor<T>)>
where
    Sim: Kernels<T>,
{
    vec![
        ("add", <Sim as Kernels<T>>::add, <Sim as Kernels<T>>::add_bcast, |a: &Tensor<T>, b: &Tensor<T>| {
            a.add(b)
        }),
        ("sub", <Sim as Kernels<T>>::sub, <Sim as Kernels<T>>::sub_bcast, |a: &Tensor<T>, b: &Tensor<T>| {
            a.sub(b)
        }),
        ("mul", <Sim as Kernels<T>>::mul, <Sim as Kernels<T>>::mul_bcast, |a: &Tensor<T>, b: &Tensor<T>| {
            a.mul(b)
        }),
        ("div", <Sim as Kernels<T>>::div, <Sim as Kernels<T>>::div_bcast, |a: &Tensor<T>, b: &Tensor<T>| {
            a.div(b)
        }),
    ]
}

/// Pairs of operand shapes that broadcast: equal, scalar-like, a bias, a
/// column against a row, and six axes with ones on both sides.
pub const BROADCASTS: &[(&[usize], &[usize])] = &[
    (&[1], &[1]),
    (&[7], &[1]),
    (&[1], &[7]),
    (&[1023], &[1023]),
    (&[3, 11, 31], &[11, 1]),
    (&[5, 1, 41], &[5, 5, 1]),
    (&[1025], &[]),
    (&[100_003], &[100_003]),
    (&[2, 1, 4, 1, 6, 7], &[3, 1, 5, 6, 1]),
];

fn binary_ops_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for (name, same_shape, bcast, cpu) in binary_ops::<T>() {
        for &(sa, sb) in BROADCASTS {
            let out_shape = broadcast_shapes(sa, sb).unwrap();
            let n: usize = out_shape.iter().product();
            let mut a = values::<T>(sa.iter().product(), 2.0, 2);
            if a.len() > 11 {
                a[11] = T::nan(); // compared as NaN on both sides
            }
            let b = positive::<T>(sb.iter().product(), 3); // a divisor away from 0
            let want = cpu(&Tensor::from_vec(a.clone(), sa), &Tensor::from_vec(b.clone(), sb));
            let idx = Strided6::broadcast(&out_shape, sa, sb);
            let what =
                |kind: &str, launch: (u32, u32)| format!("{name}{kind}_{} {sa:?} {sb:?} {launch:?}", T::NAME);
            for (l, got) in
                each_launch(n, T::nan(), |out| unsafe { bcast(n as i64, idx, a.as_ptr(), b.as_ptr(), out) })
            {
                check_exact(&what("_bcast", l), &got, want.data());
            }
            if sa == sb {
                for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                    same_shape(n as i64, a.as_ptr(), b.as_ptr(), out)
                }) {
                    check_exact(&what("", l), &got, want.data());
                }
            }
        }
    }
}

#[test]
fn binary_kernels_match_the_cpu_ops_with_broadcasting_f32() {
    binary_ops_match_the_cpu::<f32>();
}

#[test]
fn binary_kernels_match_the_cpu_ops_with_broadcasting_f64() {
    binary_ops_match_the_cpu::<f64>();
}

/// Run in place (out = x), a kernel that visited an element twice would add
/// 1 to it twice: every launch shape adds exactly 1 everywhere.
#[test]
fn a_launch_of_any_shape_visits_every_element_exactly_once() {
    for &n in SIZES {
        for &(grid, block) in LAUNCHES {
            let mut x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let p = x.as_mut_ptr();
            launch(grid, block, || unsafe { <Sim as Kernels<f64>>::add_scalar(n as i64, p, 1.0, p) });
            assert!(x.iter().enumerate().all(|(i, &v)| v == i as f64 + 1.0), "n={n} launch {grid}x{block}");
        }
    }
}

/// NaN follows IEEE, as PyTorch does: relu, clamp, abs, sign, step and
/// the comparison mask inside_mask of NaN are NaN, as on the CPU.
#[test]
fn nan_inputs_give_nan() {
    let x = [f32::NAN, -1.0, 2.0];
    let run = |k: Unary<f32>| {
        let mut out = [0.0f32; 3];
        launch(1, 4, || unsafe { k(3, x.as_ptr(), out.as_mut_ptr()) });
        out
    };
    for (name, k) in [
        ("relu", <Sim as Kernels<f32>>::relu as Unary<f32>),
        ("abs", <Sim as Kernels<f32>>::abs),
        ("sign", <Sim as Kernels<f32>>::sign),
        ("step", <Sim as Kernels<f32>>::step),
        ("sigmoid", <Sim as Kernels<f32>>::sigmoid),
        ("softplus", <Sim as Kernels<f32>>::softplus),
    ] {
        let out = run(k);
        assert!(out[0].is_nan() && !out[1].is_nan() && !out[2].is_nan(), "{name}: {out:?}");
    }
    let mut out = [0.0f32; 3];
    launch(1, 1, || unsafe { <Sim as Kernels<f32>>::clamp(3, x.as_ptr(), 0.0, 1.0, out.as_mut_ptr()) });
    assert!(out[0].is_nan() && out[1..] == [0.0, 1.0], "clamp: {out:?}");
    launch(1, 1, || unsafe { <Sim as Kernels<f32>>::inside_mask(3, x.as_ptr(), 0.0, 3.0, out.as_mut_ptr()) });
    assert!(out[0].is_nan() && out[1..] == [0.0, 1.0], "inside_mask: {out:?}");
}
