//! masks.cu against the Rust Philox reference (kernels/src/philox.rs), bit
//! for bit, whatever the launch shape.

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{Kernels, Sim};
use gradtape_kernels::philox;

fn masks_match_the_reference<T: Float>()
where
    Sim: Kernels<T>,
{
    for &n in SIZES {
        for (seed, counter) in [(0u64, 0u64), (42, 7), (u64::MAX, 1 << 40)] {
            for p in [0.0, 0.3, 0.5, 0.9, 1.0] {
                let threshold = philox::threshold(p);
                let want: Vec<T> = (0..n as u64)
                    .map(
                        |i| if philox::bernoulli(seed, counter, i, threshold) { T::one() } else { T::zero() },
                    )
                    .collect();
                for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                    <Sim as Kernels<T>>::bernoulli(n as i64, seed, counter, std::ptr::null(), threshold, out)
                }) {
                    check_exact(
                        &format!(
                            "bernoulli_{} n={n} seed {seed} counter {counter} p={p} launch {l:?}",
                            T::NAME
                        ),
                        &got,
                        &want,
                    );
                }
            }
            let (mean, std) = (0.5, 2.0);
            let want: Vec<T> =
                (0..n as u64).map(|i| T::of(mean + std * philox::normal(seed, counter, i))).collect();
            for (l, got) in each_launch(n, T::nan(), |out| unsafe {
                <Sim as Kernels<T>>::normal(n as i64, seed, counter, std::ptr::null(), mean, std, out)
            }) {
                let what = format!("normal_{} n={n} seed {seed} counter {counter} launch {l:?}", T::NAME);
                // Bit for bit: the same double-precision formula with the
                // same C library on both sides.
                assert!(
                    got.iter().zip(&want).all(|(g, w)| g.as_f64().to_bits() == w.as_f64().to_bits()),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn bernoulli_and_normal_kernels_match_the_philox_reference_bit_for_bit_f32() {
    masks_match_the_reference::<f32>();
}

#[test]
fn bernoulli_and_normal_kernels_match_the_philox_reference_bit_for_bit_f64() {
    masks_match_the_reference::<f64>();
}

/// The fraction of ones is p, and draws for different counters differ.
#[test]
fn masks_have_probability_p_and_each_counter_its_own_bits() {
    let n = 100_003usize;
    let run = |counter: u64, p: f64| {
        let mut out = vec![f32::NAN; n];
        let o = out.as_mut_ptr();
        gradtape_kernels::cuda_sim::launch(40, 128, || unsafe {
            <Sim as Kernels<f32>>::bernoulli(n as i64, 9, counter, std::ptr::null(), philox::threshold(p), o)
        });
        out
    };
    let a = run(0, 0.25);
    let ones = a.iter().filter(|&&v| v == 1.0).count() as f64 / n as f64;
    assert!((ones - 0.25).abs() < 0.01, "fraction of ones {ones}");
    assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_ne!(a, run(1, 0.25));
}

/// With a step clock (a guard's six numbers, the sixth the steps it has
/// recorded), the kernels draw from stream `steps * 2^20 + counter`: the
/// numbers a host that knows the step asks for.
fn clocked_draws_add_the_step<T: Float>()
where
    Sim: Kernels<T>,
{
    let (n, seed, draw) = (77usize, 99u64, 3u64);
    for steps in [0u64, 1, 12, 1 << 30] {
        let clock = [0.0, -1.0, 0.0, 0.0, 0.0, steps as f64];
        let stream = (steps << gradtape_kernels::draws::STEP_SHIFT) + draw;
        let threshold = philox::threshold(0.4);
        let want: Vec<T> = (0..n as u64)
            .map(|i| if philox::bernoulli(seed, stream, i, threshold) { T::one() } else { T::zero() })
            .collect();
        for (l, got) in each_launch(n, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::bernoulli(n as i64, seed, draw, clock.as_ptr(), threshold, out)
        }) {
            check_exact(&format!("bernoulli_{} after {steps} steps, launch {l:?}", T::NAME), &got, &want);
        }
        let want: Vec<T> = (0..n as u64).map(|i| T::of(philox::normal(seed, stream, i))).collect();
        for (l, got) in each_launch(n, T::nan(), |out| unsafe {
            <Sim as Kernels<T>>::normal(n as i64, seed, draw, clock.as_ptr(), 0.0, 1.0, out)
        }) {
            check_exact(&format!("normal_{} after {steps} steps, launch {l:?}", T::NAME), &got, &want);
        }
    }
}

#[test]
fn clocked_draws_add_the_step_f32() {
    clocked_draws_add_the_step::<f32>();
}

#[test]
fn clocked_draws_add_the_step_f64() {
    clocked_draws_add_the_step::<f64>();
}
