//! reduce.cu against `Tensor`'s reductions, max_mask and sum_to.

use crate::elementwise::BROADCASTS;
use crate::helpers::*;
use gradtape_kernels::cuda_sim::{launch, Kernels, Sim};
use gradtape_kernels::cuda_source::Strided6;
use gradtape_kernels::shape::broadcast_shapes;
use gradtape_kernels::Tensor;

type Partials<T> = unsafe fn(i64, *const T, *mut T);
type Finish<T> = unsafe fn(i64, *const T, *mut T);

/// A whole-tensor reduction in its two launches: partials with
/// `(grid, block)`, one per thread, then the finish with a launch of its own.
fn two_launches<T: Float>(x: &[T], (grid, block): (u32, u32), partials: Partials<T>, finish: Finish<T>) -> T {
    let parts = (grid * block) as usize;
    let mut part = vec![T::nan(); parts];
    let p = part.as_mut_ptr();
    launch(grid, block, || unsafe { partials(x.len() as i64, x.as_ptr(), p) });
    let mut out = [T::nan()];
    launch(2, 32, || unsafe { finish(parts as i64, part.as_ptr(), out.as_mut_ptr()) });
    out[0]
}

fn whole_tensor_reductions_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for &n in SIZES {
        let x = values::<T>(n, 2.0, 7);
        let t = Tensor::from_vec(x.clone(), &[n]);
        let magnitude: f64 = x.iter().map(|v| v.as_f64().abs()).sum();
        let squares: f64 = x.iter().map(|v| v.as_f64() * v.as_f64()).sum();
        for &l in LAUNCHES {
            let what = |name: &str| format!("{name}_{} n={n} launch {l:?}", T::NAME);
            let sum = two_launches(&x, l, <Sim as Kernels<T>>::sum_partials, <Sim as Kernels<T>>::sum_finish);
            check(&what("sum"), &[sum], &[t.sum_all().item()], 0.0, T::SUM_RTOL * magnitude);
            let again =
                two_launches(&x, l, <Sim as Kernels<T>>::sum_partials, <Sim as Kernels<T>>::sum_finish);
            assert_eq!(
                sum.to_f64().unwrap().to_bits(),
                again.to_f64().unwrap().to_bits(),
                "{}",
                what("sum twice")
            );
            let sq = two_launches(
                &x,
                l,
                <Sim as Kernels<T>>::sum_squares_partials,
                <Sim as Kernels<T>>::sum_finish,
            );
            check(&what("sum_squares"), &[sq], &[t.sum_squares().item()], 0.0, T::SUM_RTOL * squares);
            let max = two_launches(&x, l, <Sim as Kernels<T>>::max_partials, <Sim as Kernels<T>>::max_finish);
            check_exact(&what("max"), &[max], &[t.max_all().item()]);
        }
    }
}

#[test]
fn whole_tensor_sum_sum_squares_and_max_match_the_cpu_f32() {
    whole_tensor_reductions_match_the_cpu::<f32>();
}

#[test]
fn whole_tensor_sum_sum_squares_and_max_match_the_cpu_f64() {
    whole_tensor_reductions_match_the_cpu::<f64>();
}

/// The one-hot mask of the first maximum over the whole tensor, in four
/// launches: (value, index) partials, one level combining runs of 7 of them
/// (`argmax_chunks`), the winning index, the mask.
fn max_mask_all<T: Float>(x: &[T], (grid, block): (u32, u32)) -> Vec<T>
where
    Sim: Kernels<T>,
{
    let first = (grid * block) as usize;
    let (mut all_values, mut all_indices) = (vec![T::nan(); first], vec![-2i64; first]);
    let (v, i) = (all_values.as_mut_ptr(), all_indices.as_mut_ptr());
    launch(grid, block, || unsafe { <Sim as Kernels<T>>::argmax_partials(x.len() as i64, x.as_ptr(), v, i) });
    let parts = first.div_ceil(7);
    let (mut values, mut indices) = (vec![T::nan(); parts], vec![-2i64; parts]);
    let (v, i) = (values.as_mut_ptr(), indices.as_mut_ptr());
    launch(2, 3, || unsafe {
        <Sim as Kernels<T>>::argmax_chunks(
            parts as i64,
            first as i64,
            7,
            all_values.as_ptr(),
            all_indices.as_ptr(),
            v,
            i,
        )
    });
    let mut at = [-2i64];
    launch(1, 3, || unsafe {
        <Sim as Kernels<T>>::argmax_finish(parts as i64, values.as_ptr(), indices.as_ptr(), at.as_mut_ptr())
    });
    let mut out = vec![T::nan(); x.len()];
    let o = out.as_mut_ptr();
    launch(grid, block, || unsafe {
        <Sim as Kernels<T>>::one_hot(x.len() as i64, at.as_ptr(), x.as_ptr(), o)
    });
    out
}

/// Shapes for the per-axis reductions: every axis of each is reduced.
const AXIS_SHAPES: &[&[usize]] =
    &[&[1], &[7], &[3, 11, 31], &[5, 5, 41], &[100_003], &[2, 3, 4, 5, 6, 7], &[4, 1, 3]];

/// `[outer, axis_len, inner]` of `shape` around `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    (outer, shape[axis], shape[axis + 1..].iter().product())
}

fn axis_reductions_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    type Axis<T> = unsafe fn(i64, i64, i64, *const T, *mut T);
    for &shape in AXIS_SHAPES {
        let n: usize = shape.iter().product();
        // Halves: many ties, so "the first maximum" is tested.
        let x: Vec<T> =
            values::<f64>(n, 3.0, 8).into_iter().map(|v| T::of((v * 2.0).round() / 2.0)).collect();
        let t = Tensor::from_vec(x.clone(), shape);
        for &l in LAUNCHES {
            let what = |name: &str, axis: Option<usize>| {
                format!("{name}_{} {shape:?} axis {axis:?} launch {l:?}", T::NAME)
            };
            check_exact(&what("max_mask", None), &max_mask_all(&x, l), t.max_mask(None).data());
        }
        for axis in 0..shape.len() {
            let (outer, len, inner) = around(shape, axis);
            let n_out = outer * inner;
            let lanes_abs =
                Tensor::from_vec(x.iter().map(|v| v.abs()).collect(), shape).sum_axis(axis, false);
            let sums: [(&str, Axis<T>, Tensor<T>, f64); 2] = [
                ("sum_axis", <Sim as Kernels<T>>::sum_axis, t.sum_axis(axis, false), 1.0),
                ("mean_axis", <Sim as Kernels<T>>::mean_axis, t.mean_axis(axis, false), 1.0 / len as f64),
            ];
            for (name, kernel, want, scale) in sums {
                for (l, got) in each_launch(n_out, T::nan(), |out| unsafe {
                    kernel(n_out as i64, len as i64, inner as i64, x.as_ptr(), out)
                }) {
                    for o in 0..n_out {
                        let tol = T::SUM_RTOL * lanes_abs.data()[o].as_f64() * scale;
                        check(
                            &format!("{name} {shape:?} axis {axis} launch {l:?} out {o}"),
                            &got[o..=o],
                            &want.data()[o..=o],
                            0.0,
                            tol,
                        );
                    }
                }
            }
            let want = t.max_axis(axis, false);
            for (l, got) in each_launch(n_out, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::max_axis(n_out as i64, len as i64, inner as i64, x.as_ptr(), out)
            }) {
                check_exact(&format!("max_axis {shape:?} axis {axis} launch {l:?}"), &got, want.data());
            }
            let want = t.max_mask(Some(axis));
            for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::max_mask_axis(n_out as i64, len as i64, inner as i64, x.as_ptr(), out)
            }) {
                check_exact(&format!("max_mask_axis {shape:?} axis {axis} launch {l:?}"), &got, want.data());
            }
            // The split form for few long lanes, here with each lane in 3
            // runs: the same mask.
            let chunks = 3usize;
            let (mut values, mut indices) = (vec![T::nan(); n_out * chunks], vec![-2i64; n_out * chunks]);
            let (v, ix) = (values.as_mut_ptr(), indices.as_mut_ptr());
            launch(2, 5, || unsafe {
                <Sim as Kernels<T>>::argmax_axis_chunks(
                    n_out as i64,
                    len as i64,
                    inner as i64,
                    chunks as i64,
                    x.as_ptr(),
                    v,
                    ix,
                )
            });
            let mut at = vec![-2i64; n_out];
            let a = at.as_mut_ptr();
            launch(1, 3, || unsafe {
                <Sim as Kernels<T>>::argmax_axis_finish(
                    n_out as i64,
                    chunks as i64,
                    values.as_ptr(),
                    indices.as_ptr(),
                    a,
                )
            });
            for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::one_hot_axis(
                    n as i64,
                    len as i64,
                    inner as i64,
                    at.as_ptr(),
                    x.as_ptr(),
                    out,
                )
            }) {
                check_exact(
                    &format!("split max_mask_axis {shape:?} axis {axis} launch {l:?}"),
                    &got,
                    want.data(),
                );
            }
        }
    }
}

#[test]
fn axis_sum_mean_max_and_first_max_masks_match_the_cpu_f32() {
    axis_reductions_match_the_cpu::<f32>();
}

#[test]
fn axis_sum_mean_max_and_first_max_masks_match_the_cpu_f64() {
    axis_reductions_match_the_cpu::<f64>();
}

fn sum_to_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    // (big, small): big is the broadcast shape of each pair, summed back to
    // each operand's shape.
    for &(sa, sb) in BROADCASTS {
        let big_shape = broadcast_shapes(sa, sb).unwrap();
        let n: usize = big_shape.iter().product();
        let big = values::<T>(n, 1.0, 9);
        let big_t = Tensor::from_vec(big.clone(), &big_shape);
        let big_abs = Tensor::from_vec(big.iter().map(|v| v.abs()).collect(), &big_shape);
        for (small, other) in [(sa, sb), (sb, sa)] {
            let m: usize = small.iter().product();
            let o = values::<T>(other.iter().product(), 1.0, 10);
            let o_t = Tensor::from_vec(o.clone(), other);
            // sum_to onto a shape with fewer elements needs a tolerance (the
            // order of the sum differs); the bound is the sum of magnitudes.
            let bound = big_abs.sum_to(small);
            let bound_mul =
                big_abs.mul_sum_to(&Tensor::from_vec(o.iter().map(|v| v.abs()).collect(), other), small);
            let want = big_t.sum_to(small);
            let want_mul = big_t.mul_sum_to(&o_t, small);
            let idx = Strided6::sum_to(&big_shape, small, &[]);
            let idx_mul = Strided6::sum_to(&big_shape, small, other);
            for (l, got) in each_launch(m, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::sum_to(m as i64, idx, big.as_ptr(), out)
            }) {
                for k in 0..m {
                    let what = format!("sum_to_{} {big_shape:?} -> {small:?} launch {l:?} out {k}", T::NAME);
                    check(
                        &what,
                        &got[k..=k],
                        &want.data()[k..=k],
                        0.0,
                        T::SUM_RTOL * bound.data()[k].as_f64(),
                    );
                }
            }
            for (l, got) in each_launch(m, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::mul_sum_to(m as i64, idx_mul, big.as_ptr(), o.as_ptr(), out)
            }) {
                for k in 0..m {
                    let what = format!(
                        "mul_sum_to_{} {big_shape:?} * {other:?} -> {small:?} launch {l:?} out {k}",
                        T::NAME
                    );
                    check(
                        &what,
                        &got[k..=k],
                        &want_mul.data()[k..=k],
                        0.0,
                        T::SUM_RTOL * bound_mul.data()[k].as_f64(),
                    );
                }
            }
        }
    }
}

#[test]
fn sum_to_and_mul_sum_to_match_the_cpu_f32() {
    sum_to_matches_the_cpu::<f32>();
}

#[test]
fn sum_to_and_mul_sum_to_match_the_cpu_f64() {
    sum_to_matches_the_cpu::<f64>();
}

/// max propagates NaN, and the mask of the maximum marks the first NaN.
#[test]
fn max_and_its_mask_propagate_nan() {
    let x = [1.0f64, f64::NAN, 5.0, f64::NAN, 2.0, 3.0];
    let m = two_launches(&x, (2, 2), <Sim as Kernels<f64>>::max_partials, <Sim as Kernels<f64>>::max_finish);
    assert!(m.is_nan(), "max {m}");
    // The first NaN is marked with NaN, as the CPU's mask marks it (so the
    // gradient through a NaN maximum is NaN on both devices).
    let mask_all = max_mask_all(&x, (2, 2));
    assert!(mask_all[1].is_nan(), "mask {mask_all:?}");
    assert_eq!([mask_all[0], mask_all[2], mask_all[3], mask_all[4], mask_all[5]], [0.0; 5]);
    // As [2, 3] along axis 1: lanes [1, NaN, 5] and [NaN, 2, 3].
    let mut out = [0.0f64; 2];
    launch(1, 1, || unsafe { <Sim as Kernels<f64>>::max_axis(2, 3, 1, x.as_ptr(), out.as_mut_ptr()) });
    assert!(out[0].is_nan() && out[1].is_nan(), "max_axis {out:?}");
    let mut mask = [9.0f64; 6];
    launch(1, 1, || unsafe { <Sim as Kernels<f64>>::max_mask_axis(2, 3, 1, x.as_ptr(), mask.as_mut_ptr()) });
    assert!(mask[1].is_nan() && mask[3].is_nan(), "mask {mask:?}");
    assert_eq!([mask[0], mask[2], mask[4], mask[5]], [0.0; 4]);
}

/// The split reductions (few outputs, long lanes: runs in parallel, then
/// each output's runs in order) against the CPU, for several run counts and
/// launch shapes: along an axis (sum, mean, max), sum_to and mul_sum_to of
/// a bias-like shape, and the levels of a whole tensor's tree.
fn split_reductions_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let shape = [2100usize, 3];
    let n: usize = shape.iter().product();
    let x: Vec<T> = values::<f64>(n, 2.0, 21).into_iter().map(T::of).collect();
    let t = Tensor::from_vec(x.clone(), &shape);
    let magnitude: f64 = x.iter().map(|v| v.as_f64().abs()).sum();
    let n_out = 3usize;
    for runs in [1usize, 2, 33, 100] {
        for &(grid, block) in LAUNCHES {
            let what = |name: &str| format!("{name}_{} runs {runs} launch ({grid}, {block})", T::NAME);
            let mut partials = vec![T::nan(); n_out * runs];
            let p = partials.as_mut_ptr();
            // Along axis 0 of [2100, 3]: outer 1, inner 3.
            for (name, max, divisor, want) in [
                ("sum_axis", false, 1.0, t.sum_axis(0, false)),
                ("mean_axis", false, 2100.0, t.mean_axis(0, false)),
                ("max_axis", true, 1.0, t.max_axis(0, false)),
            ] {
                launch(grid, block, || unsafe {
                    if max {
                        <Sim as Kernels<T>>::max_axis_chunks(3, 2100, 3, runs as i64, x.as_ptr(), p)
                    } else {
                        <Sim as Kernels<T>>::sum_axis_chunks(3, 2100, 3, runs as i64, x.as_ptr(), p)
                    }
                });
                let mut out = [T::nan(); 3];
                launch(2, 32, || unsafe {
                    let f = if max {
                        <Sim as Kernels<T>>::max_strided_finish
                    } else {
                        <Sim as Kernels<T>>::sum_strided_finish
                    };
                    f(3, runs as i64, T::of(divisor), partials.as_ptr(), out.as_mut_ptr())
                });
                if max {
                    check_exact(&what(name), &out, want.data());
                } else {
                    check(&what(name), &out, want.data(), 0.0, T::SUM_RTOL * magnitude / divisor);
                }
            }
            // sum_to and mul_sum_to of [2100, 3] to [3] (a bias gradient).
            let other: Vec<T> = values::<f64>(n, 1.0, 22).into_iter().map(T::of).collect();
            let o = Tensor::from_vec(other.clone(), &shape);
            for with_other in [false, true] {
                let idx = Strided6::sum_to(&shape, &[3], if with_other { &shape } else { &[] });
                launch(grid, block, || unsafe {
                    if with_other {
                        <Sim as Kernels<T>>::mul_sum_to_chunks(
                            3,
                            runs as i64,
                            idx,
                            x.as_ptr(),
                            other.as_ptr(),
                            p,
                        )
                    } else {
                        <Sim as Kernels<T>>::sum_to_chunks(3, runs as i64, idx, x.as_ptr(), p)
                    }
                });
                let mut out = [T::nan(); 3];
                launch(1, 4, || unsafe {
                    <Sim as Kernels<T>>::sum_strided_finish(
                        3,
                        runs as i64,
                        T::one(),
                        partials.as_ptr(),
                        out.as_mut_ptr(),
                    )
                });
                let want = if with_other { t.mul_sum_to(&o, &[3]) } else { t.sum_to(&[3]) };
                check(&what("sum_to"), &out, want.data(), 0.0, T::SUM_RTOL * magnitude * 2.0);
            }
        }
    }
    // A whole tensor: 6,300 partials, combined in runs of 256 (25 left),
    // then by one thread; the same for max.
    let parts: Vec<T> = values::<f64>(6300, 2.0, 23).into_iter().map(T::of).collect();
    let whole = Tensor::from_vec(parts.clone(), &[6300]);
    for (max, want) in [(false, whole.sum_all().item()), (true, whole.max_all().item())] {
        let mut level = vec![T::nan(); 25];
        let l = level.as_mut_ptr();
        launch(3, 8, || unsafe {
            let f = if max { <Sim as Kernels<T>>::max_chunks } else { <Sim as Kernels<T>>::sum_chunks };
            f(25, 6300, 256, parts.as_ptr(), l)
        });
        let finish = if max { <Sim as Kernels<T>>::max_finish } else { <Sim as Kernels<T>>::sum_finish };
        let mut out = [T::nan()];
        launch(1, 1, || unsafe { finish(25, level.as_ptr(), out.as_mut_ptr()) });
        let total: f64 = parts.iter().map(|v| v.as_f64().abs()).sum();
        if max {
            check_exact("max_chunks", &out, &[want]);
        } else {
            check("sum_chunks", &out, &[want], 0.0, T::SUM_RTOL * total);
        }
    }
}

#[test]
fn split_reductions_match_the_cpu_f32() {
    split_reductions_match_the_cpu::<f32>();
}

#[test]
fn split_reductions_match_the_cpu_f64() {
    split_reductions_match_the_cpu::<f64>();
}

/// fused.cu's bias_act and bias_act_grad against the CPU's fused kernels
/// (kernels/src/fused.rs), in one run over the rows and split into runs.
fn fused_bias_act_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    use gradtape_kernels::Act;
    let (rows, cols) = (700usize, 3usize);
    let z =
        Tensor::from_vec(values::<f64>(rows * cols, 2.0, 31).into_iter().map(T::of).collect(), &[rows, cols]);
    let b = Tensor::from_vec(values::<f64>(cols, 1.0, 32).into_iter().map(T::of).collect(), &[cols]);
    let g =
        Tensor::from_vec(values::<f64>(rows * cols, 1.0, 33).into_iter().map(T::of).collect(), &[rows, cols]);
    for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
        let y = z.bias_act(&b, act);
        let mut out = vec![T::nan(); rows * cols];
        let o = out.as_mut_ptr();
        launch(3, 32, || unsafe {
            <Sim as Kernels<T>>::bias_act(
                (rows * cols) as i64,
                cols as i64,
                act.code(),
                z.data().as_ptr(),
                b.data().as_ptr(),
                o,
            )
        });
        check(&format!("bias_act {}", act.name()), &out, y.data(), T::SUM_RTOL, underflow::<T>());
        let (dz, db) = g.bias_act_grad(&y, act);
        for runs in [1usize, 7] {
            let mut dz_sim = vec![T::nan(); rows * cols];
            let mut partials = vec![T::nan(); cols * runs];
            let (d, p) = (dz_sim.as_mut_ptr(), partials.as_mut_ptr());
            launch(2, 8, || unsafe {
                <Sim as Kernels<T>>::bias_act_grad(
                    cols as i64,
                    rows as i64,
                    runs as i64,
                    act.code(),
                    g.data().as_ptr(),
                    y.data().as_ptr(),
                    d,
                    p,
                )
            });
            let mut db_sim = vec![T::nan(); cols];
            launch(1, 4, || unsafe {
                <Sim as Kernels<T>>::sum_strided_finish(
                    cols as i64,
                    runs as i64,
                    T::one(),
                    partials.as_ptr(),
                    db_sim.as_mut_ptr(),
                )
            });
            check_exact(&format!("bias_act_grad {} dz runs {runs}", act.name()), &dz_sim, dz.data());
            let scale: f64 = dz.data().iter().map(|v| v.as_f64().abs()).sum();
            check(
                &format!("bias_act_grad {} db runs {runs}", act.name()),
                &db_sim,
                db.data(),
                0.0,
                T::SUM_RTOL * scale,
            );
        }
    }
}

#[test]
fn fused_bias_act_matches_the_cpu_f32() {
    fused_bias_act_matches_the_cpu::<f32>();
}

#[test]
fn fused_bias_act_matches_the_cpu_f64() {
    fused_bias_act_matches_the_cpu::<f64>();
}

/// fused.cu's reparameterize and reparameterize_grad against the CPU's.
fn reparameterize_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let n = 1025usize;
    let t = |scale: f64, seed: u64| {
        Tensor::from_vec(
            values::<f64>(n, scale, seed).into_iter().map(|x| T::of(x.clamp(-30.0, 30.0))).collect(),
            &[n],
        )
    };
    let (mu, logvar, eps, g) = (t(1.0, 91), t(1.0, 92), t(1.0, 93), t(1.0, 94));
    let want = [mu.reparameterize(&logvar, &eps), g.reparameterize_grad(&logvar, &eps)];
    for (k, name) in ["reparameterize", "reparameterize_grad"].iter().enumerate() {
        let first = if k == 0 { &mu } else { &g };
        for ((grid, block), got) in each_launch(n, T::nan(), |out| unsafe {
            let f = if k == 0 {
                <Sim as Kernels<T>>::reparameterize
            } else {
                <Sim as Kernels<T>>::reparameterize_grad
            };
            f(n as i64, first.data().as_ptr(), logvar.data().as_ptr(), eps.data().as_ptr(), out)
        }) {
            // The sample is a sum that may cancel: each element is held to
            // the size of its two terms (the gradient is a product).
            for (i, (&a, &b)) in got.iter().zip(want[k].data()).enumerate() {
                let (a, b) = (a.as_f64(), b.as_f64());
                let size = if k == 0 {
                    let std = (logvar.data()[i].as_f64() * 0.5).exp();
                    mu.data()[i].as_f64().abs() + std * eps.data()[i].as_f64().abs()
                } else {
                    b.abs()
                };
                assert!(
                    a == b || (a - b).abs() <= T::MATH_RTOL * size + underflow::<T>(),
                    "{name}_{} launch {grid}x{block}: element {i}: kernel {a:e}, CPU {b:e}",
                    T::NAME
                );
            }
        }
    }
}

#[test]
fn reparameterize_matches_the_cpu_f32() {
    reparameterize_matches_the_cpu::<f32>();
}

#[test]
fn reparameterize_matches_the_cpu_f64() {
    reparameterize_matches_the_cpu::<f64>();
}

/// fused.cu's add_scaled against `Tensor::add_scaled`: one product and one
/// sum per element, in the same order, so the same bits (the simulation is
/// compiled without contraction into fused multiply-adds), for every launch
/// shape; and against `mul_scalar` then `add`, the plain ops it replaces.
fn add_scaled_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let n = 1025usize;
    let t = |seed: u64| Tensor::from_vec(values::<f64>(n, 3.0, seed).into_iter().map(T::of).collect(), &[n]);
    let (a, b, s) = (t(95), t(96), T::of(-0.37));
    let want = a.add_scaled(&b, s);
    assert_eq!(
        want.to_vec(),
        a.add(&b.mul_scalar(s)).to_vec(),
        "add_scaled_{}: not the plain ops' bits",
        T::NAME
    );
    for ((grid, block), got) in each_launch(n, T::nan(), |out| unsafe {
        <Sim as Kernels<T>>::add_scaled(n as i64, a.data().as_ptr(), b.data().as_ptr(), s, out)
    }) {
        for (i, (&x, &y)) in got.iter().zip(want.data()).enumerate() {
            let same = x.as_f64().to_bits() == y.as_f64().to_bits();
            assert!(
                same,
                "add_scaled_{} launch {grid}x{block}: element {i}: kernel {:e}, CPU {:e}",
                T::NAME,
                x.as_f64(),
                y.as_f64()
            );
        }
    }
}

#[test]
fn add_scaled_matches_the_cpu_f32() {
    add_scaled_matches_the_cpu::<f32>();
}

#[test]
fn add_scaled_matches_the_cpu_f64() {
    add_scaled_matches_the_cpu::<f64>();
}

/// The fused L2 norm: the sum of squares' two launches with the root in the
/// last (`sum_finish_sqrt`) against `Tensor::norm`, and its rule
/// (`norm_grad`, which reads the gradient and the norm as one number each)
/// against `Tensor::norm_grad`, under every launch shape.
fn norm_and_its_rule_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let n = 1500usize;
    let x = values::<T>(n, 2.0, 17);
    let t = Tensor::from_vec(x.clone(), &[n]);
    let squares: f64 = x.iter().map(|v| v.as_f64() * v.as_f64()).sum();
    let norm = t.norm();
    assert_eq!(norm.item().as_f64().to_bits(), t.sum_squares().sqrt().item().as_f64().to_bits());
    for &l in LAUNCHES {
        let what = |name: &str| format!("{name}_{} launch {l:?}", T::NAME);
        let got = two_launches(
            &x,
            l,
            <Sim as Kernels<T>>::sum_squares_partials,
            <Sim as Kernels<T>>::sum_finish_sqrt,
        );
        // sqrt halves the sum's relative error.
        check(
            &what("norm"),
            &[got],
            &[norm.item()],
            T::SUM_RTOL * squares / norm.item().as_f64().powi(2),
            0.0,
        );
    }
    let g = Tensor::scalar(T::of(0.7));
    let want = g.norm_grad(&norm, &t);
    for ((grid, block), got) in each_launch(n, T::nan(), |out| unsafe {
        <Sim as Kernels<T>>::norm_grad(
            n as i64,
            t.data().as_ptr(),
            g.data().as_ptr(),
            norm.data().as_ptr(),
            out,
        )
    }) {
        check(&format!("norm_grad_{} launch {grid}x{block}", T::NAME), &got, want.data(), T::MATH_RTOL, 0.0);
    }
}

#[test]
fn norm_and_its_rule_match_the_cpu_f32() {
    norm_and_its_rule_match_the_cpu::<f32>();
}

#[test]
fn norm_and_its_rule_match_the_cpu_f64() {
    norm_and_its_rule_match_the_cpu::<f64>();
}

/// `outer_sum_squares` (`fused.cu`): the rows' chunks, the rows' sums with
/// the partials of their products, the finish; and its rule, against the
/// CPU's `Tensor::outer_sum_squares` and `outer_sum_squares_grad`, under
/// every launch shape, with rows of one chunk and of several.
fn outer_sum_squares_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    const CHUNK: usize = 256;
    for &(rows, m, k) in &[(3usize, 4usize, 5usize), (64, 128, 784), (5, 700, 1100)] {
        let (dv, bv) = (values::<T>(rows * m, 1.5, 31), values::<T>(rows * k, 1.5, 32));
        let (d, b) = (Tensor::from_vec(dv.clone(), &[rows, m]), Tensor::from_vec(bv.clone(), &[rows, k]));
        let [want, want_sd, want_sb] = d.outer_sum_squares(&b, T::of(0.25));
        let (cd, cb) = (m.div_ceil(CHUNK), k.div_ceil(CHUNK));
        for &(grid, block) in LAUNCHES {
            let what =
                |name: &str| format!("{name}_{} [{rows}, {m}] [{rows}, {k}] launch {grid}x{block}", T::NAME);
            let mut chunks = vec![T::nan(); rows * (cd + cb)];
            let c = chunks.as_mut_ptr();
            launch(grid, block, || unsafe {
                <Sim as Kernels<T>>::outer_sum_squares_chunks(
                    rows as i64,
                    m as i64,
                    k as i64,
                    CHUNK as i64,
                    cd as i64,
                    cb as i64,
                    dv.as_ptr(),
                    bv.as_ptr(),
                    c,
                )
            });
            let parts = (grid * block) as usize;
            let (mut sd, mut sb, mut part) =
                (vec![T::nan(); rows], vec![T::nan(); rows], vec![T::nan(); parts]);
            let (sdp, sbp, pp) = (sd.as_mut_ptr(), sb.as_mut_ptr(), part.as_mut_ptr());
            launch(grid, block, || unsafe {
                <Sim as Kernels<T>>::outer_sum_squares_rows(
                    rows as i64,
                    cd as i64,
                    cb as i64,
                    chunks.as_ptr(),
                    sdp,
                    sbp,
                    pp,
                )
            });
            let mut out = [T::nan()];
            launch(2, 32, || unsafe {
                <Sim as Kernels<T>>::sum_finish_scaled(
                    parts as i64,
                    T::of(0.25),
                    part.as_ptr(),
                    out.as_mut_ptr(),
                )
            });
            check(&what("outer_sum_squares d rows"), &sd, want_sd.data(), T::SUM_RTOL, 0.0);
            check(&what("outer_sum_squares b rows"), &sb, want_sb.data(), T::SUM_RTOL, 0.0);
            check(&what("outer_sum_squares"), &out, want.data(), T::SUM_RTOL, 0.0);
        }
        let g = Tensor::scalar(T::of(0.7));
        for (x, rows_of_other, name) in [(&d, &want_sb, "d"), (&b, &want_sd, "b")] {
            let expect = g.outer_sum_squares_grad(x, rows_of_other, T::of(0.25));
            let cols = x.shape()[1];
            for ((grid, block), got) in each_launch(x.len(), T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::outer_sum_squares_grad(
                    x.len() as i64,
                    cols as i64,
                    T::of(0.25),
                    g.data().as_ptr(),
                    x.data().as_ptr(),
                    rows_of_other.data().as_ptr(),
                    out,
                )
            }) {
                check(
                    &format!("outer_sum_squares_grad_{} ({name}) launch {grid}x{block}", T::NAME),
                    &got,
                    expect.data(),
                    0.0,
                    0.0,
                );
            }
        }
    }
}

#[test]
fn outer_sum_squares_matches_the_cpu_f32() {
    outer_sum_squares_matches_the_cpu::<f32>();
}

#[test]
fn outer_sum_squares_matches_the_cpu_f64() {
    outer_sum_squares_matches_the_cpu::<f64>();
}
