//! # The denoising autoencoder, by hand
//!
//! The denoising autoencoder is the regularised network of
//! [`super::regularized`], trained on a corrupted input while still asked to
//! rebuild the clean one. Its corruption is masking noise: each pixel is
//! zeroed with probability `rate` (0.2 in the tutorial). For a check the
//! noise is fixed, like the dropout mask: a 0/1 matrix `e` of the batch's
//! shape `[n, d]`.
//!
//! ## What changes in the derivation
//!
//! Only the first line of the forward pass, `x~ = x * e`; the loss still
//! compares the output with the clean `x`:
//!
//! ```text
//! x~  = x * e                        [n, d]
//! z1  = x~ W1^T + b1                 (the rest as in the regularised model)
//! L   = 1/(n d) sum (y - x)^2 + gamma sum_l mean(W_l^2)
//! ```
//!
//! Backward, the only difference is in the first layer's weight gradient,
//! which sees the input the layer actually received:
//!
//! ```text
//! dW1 = dz1^T x~ + 2 gamma W1 / |W1|
//! ```
//!
//! A pixel that the noise removed (`e = 0`) contributes nothing to `dW1`;
//! it still counts in the reconstruction error, which is exactly what
//! teaches the network to fill it back in. (No gradient flows *into* the
//! mask or the data: both are constants.)
//!
//! The code is the regularised model's derivation, called with the noise
//! mask: [`super::regularized::by_hand_with_masks`].

use super::{regularized, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::RegularizedAutoencoder;

/// The loss of the denoising `model` on the clean batch `x` (`[n, d]`), with
/// the fixed noise mask `noise_mask` (`[n, d]`, 0 or 1) and dropout mask on
/// the code (`[n, L]`, scaled; `None`: no dropout), and its gradients.
pub fn by_hand<T: Element>(
    model: &RegularizedAutoencoder<T>,
    x: &Tensor<T>,
    noise_mask: &Tensor<T>,
    dropout_mask: Option<&Tensor<T>>,
) -> Derived<T> {
    regularized::by_hand_with_masks(model, x, Some(noise_mask), dropout_mask)
}
