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
                    <Sim as Kernels<T>>::bernoulli(n as i64, seed, counter, threshold, out)
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
                <Sim as Kernels<T>>::normal(n as i64, seed, counter, mean, std, out)
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
            <Sim as Kernels<f32>>::bernoulli(n as i64, 9, counter, philox::threshold(p), o)
        });
        out
    };
    let a = run(0, 0.25);
    let ones = a.iter().filter(|&&v| v == 1.0).count() as f64 / n as f64;
    assert!((ones - 0.25).abs() < 0.01, "fraction of ones {ones}");
    assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_ne!(a, run(1, 0.25));
}
