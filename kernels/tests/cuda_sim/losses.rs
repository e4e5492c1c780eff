//! losses.cu (the fused losses) and reduce.cu's `sum_finish_scaled` against
//! `Tensor::loss_sum` and `Tensor::loss_sum_grad` (kernels/src/fused/losses.rs).

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{launch, Kernels, Sim};
use gradtape_kernels::fused::{log_floor, slope_floor};
use gradtape_kernels::{LossTerm, Tensor};

/// Inputs that reach every branch of `term`: for cross-entropy,
/// probabilities with exact 0s and 1s (where a log is clamped) and targets
/// in [0, 1]; for the KL term, log-variances in about (-3, 3).
fn inputs<T: Float>(term: LossTerm, n: usize, seed: u64) -> (Tensor<T>, Tensor<T>) {
    let v = |scale: f64, s: u64| values::<f64>(n, scale, s);
    let (a, b): (Vec<f64>, Vec<f64>) = match term {
        LossTerm::SquaredError => (v(1.0, seed), v(1.0, seed + 1)),
        LossTerm::BinaryCrossEntropy => {
            // Logits beyond +-3 become exact 0s and 1s.
            let prob = v(2.0, seed)
                .into_iter()
                .map(|x| if x.abs() >= 3.0 { x.signum().max(0.0) } else { 1.0 / (1.0 + (-x).exp()) })
                .collect();
            let target = v(1.0, seed + 1).into_iter().map(|x| (x.abs() * 0.4).min(1.0)).collect();
            (prob, target)
        }
        LossTerm::GaussianKl => {
            (v(1.0, seed), v(1.0, seed + 1).into_iter().map(|x| x.clamp(-3.0, 3.0)).collect())
        }
    };
    let cast = |x: Vec<f64>| Tensor::from_vec(x.into_iter().map(T::of).collect(), &[n]);
    (cast(a), cast(b))
}

/// The size of the pieces a gradient is made of, which the tolerance is
/// relative to (0 where the formula has no exp or log, so it must be exact):
/// cross-entropy's and the KL term's gradients are differences (of two logs,
/// of e^b and 1) that cancel, so the kernel's and the CPU's exp and log,
/// each a few units in the last place apart, differ by more than that of the
/// difference.
fn size(term: LossTerm, side: usize, a: f64, b: f64) -> f64 {
    let log = |x: f64| x.max(1e-44).ln().abs().min(100.0);
    match (term, side) {
        (LossTerm::SquaredError, _) | (LossTerm::GaussianKl, 0) => 0.0,
        (LossTerm::BinaryCrossEntropy, 0) => (1.0 - b) / (1.0 - a).max(1e-44) + b / a.max(1e-44),
        (LossTerm::BinaryCrossEntropy, _) => log(a) + log(1.0 - a),
        (LossTerm::GaussianKl, _) => b.exp(),
    }
}

fn losses_match_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for term in LossTerm::ALL {
        for &n in &[1usize, 7, 1025, 10_007] {
            let (a, b) = inputs::<T>(term, n, 40 + n as u64);
            let scale = T::of(0.25);
            let what = format!("loss_sum {} n {n} ({})", term.name(), T::NAME);
            // Forward: one partial per thread, then the scaled finish. Every
            // term here is >= 0, so the sum's magnitude is the sum itself.
            let want = a.loss_sum(&b, term, scale);
            let (grid, block) = (3u32, 32u32);
            let mut partials = vec![T::nan(); (grid * block) as usize];
            let p = partials.as_mut_ptr();
            launch(grid, block, || unsafe {
                <Sim as Kernels<T>>::loss_sum_partials(
                    n as i64,
                    term.code(),
                    log_floor::<T>(),
                    a.data().as_ptr(),
                    b.data().as_ptr(),
                    p,
                )
            });
            let mut out = [T::nan()];
            launch(1, 4, || unsafe {
                <Sim as Kernels<T>>::sum_finish_scaled(
                    partials.len() as i64,
                    scale,
                    partials.as_ptr(),
                    out.as_mut_ptr(),
                )
            });
            assert!(want.item().as_f64().is_finite(), "{what}: the CPU's loss is {:?}", want.item());
            check(&what, &out, want.data(), T::SUM_RTOL + T::MATH_RTOL, underflow::<T>());

            // Backward, for each choice of outputs.
            let g = Tensor::scalar(T::of(0.7));
            for want_ab in [[true, false], [false, true], [true, true]] {
                let cpu = g.loss_sum_grad(&a, &b, term, scale, want_ab);
                let (mut da, mut db) = (vec![T::nan(); n], vec![T::nan(); n]);
                let (pa, pb) = (da.as_mut_ptr(), db.as_mut_ptr());
                launch(3, 32, || unsafe {
                    <Sim as Kernels<T>>::loss_sum_grad(
                        n as i64,
                        term.code(),
                        scale,
                        log_floor::<T>(),
                        slope_floor::<T>(),
                        g.data().as_ptr(),
                        a.data().as_ptr(),
                        b.data().as_ptr(),
                        i32::from(want_ab[0]),
                        i32::from(want_ab[1]),
                        pa,
                        pb,
                    )
                });
                for (k, (sim, cpu)) in [(&da, &cpu[0]), (&db, &cpu[1])].into_iter().enumerate() {
                    let side = ["da", "db"][k];
                    match cpu {
                        Some(cpu) => {
                            for (i, ((&got, &want), (&a, &b))) in
                                sim.iter().zip(cpu.data()).zip(a.data().iter().zip(b.data())).enumerate()
                            {
                                let (got, want) = (got.as_f64(), want.as_f64());
                                let tol = T::MATH_RTOL * 0.7 * 0.25 * size(term, k, a.as_f64(), b.as_f64());
                                assert!(
                                    got == want || (got - want).abs() <= tol + underflow::<T>(),
                                    "{what} {side} {want_ab:?}: element {i} of {n}: kernel {got:e}, CPU {want:e}"
                                );
                            }
                        }
                        // Not asked for: not written (still the NaNs it held).
                        None => assert!(
                            sim.iter().all(|x| x.as_f64().is_nan()),
                            "{what}: {side} was written though not asked for ({want_ab:?})"
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn fused_losses_match_the_cpu_f32() {
    losses_match_the_cpu::<f32>();
}

#[test]
fn fused_losses_match_the_cpu_f64() {
    losses_match_the_cpu::<f64>();
}
