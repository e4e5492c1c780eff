//! Corrupting inputs for a denoising autoencoder.
//!
//! A denoising autoencoder sees a damaged image and is asked to give back the
//! clean one. Two kinds of damage are usual (Vincent et al., 2008 and 2010):
//!
//! - **masking noise**: each pixel is set to 0 with probability `rate`
//!   ("dropout on the input"), [`masking_noise`];
//! - **Gaussian noise**: add `N(0, std^2)` to each pixel, optionally clamped
//!   back into `[0, 1]`, [`gaussian_noise`].
//!
//! Both draw from a generator you pass in, so a run that owns one `StdRng`
//! stays reproducible; the `_seeded` versions make their own from a seed.
//! The input tensor is not changed: a new tensor is returned.

use gradtape_kernels::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Sets each element to 0 with probability `rate` (drawn from `rng`),
/// leaving the others as they were.
///
/// Panics if `rate` is not in `[0, 1]`.
#[track_caller]
pub fn masking_noise(x: &Tensor<f32>, rate: f64, rng: &mut impl Rng) -> Tensor<f32> {
    assert!((0.0..=1.0).contains(&rate), "masking_noise: rate {rate} is not a probability in [0, 1]");
    let data = x.data().iter().map(|&v| if rng.random::<f64>() < rate { 0.0 } else { v }).collect();
    Tensor::from_vec(data, x.shape())
}

/// [`masking_noise`] with a generator seeded by `seed`.
#[track_caller]
pub fn masking_noise_seeded(x: &Tensor<f32>, rate: f64, seed: u64) -> Tensor<f32> {
    masking_noise(x, rate, &mut StdRng::seed_from_u64(seed))
}

/// Adds `std * z` to each element, `z` standard normal from `rng`; when
/// `clamp` is true the result is clamped into `[0, 1]` (the pixel range).
///
/// Panics if `std` is negative or not finite.
#[track_caller]
pub fn gaussian_noise(x: &Tensor<f32>, std: f64, clamp: bool, rng: &mut impl Rng) -> Tensor<f32> {
    assert!(std.is_finite() && std >= 0.0, "gaussian_noise: std {std} must be finite and not negative");
    let data = x
        .data()
        .iter()
        .map(|&v| {
            let z: f64 = StandardNormal.sample(rng);
            let y = (f64::from(v) + std * z) as f32;
            if clamp {
                y.clamp(0.0, 1.0)
            } else {
                y
            }
        })
        .collect();
    Tensor::from_vec(data, x.shape())
}

/// [`gaussian_noise`] with a generator seeded by `seed`.
#[track_caller]
pub fn gaussian_noise_seeded(x: &Tensor<f32>, std: f64, clamp: bool, seed: u64) -> Tensor<f32> {
    gaussian_noise(x, std, clamp, &mut StdRng::seed_from_u64(seed))
}
