//! # The contractive autoencoder, by hand
//!
//! Rifai et al. (2011): a sigmoid autoencoder whose loss also punishes the
//! encoder for being sensitive to its input, through the squared Frobenius
//! norm of the Jacobian `J = dh/dx` of the code with respect to the input.
//! The model can compute that penalty by double backward (one recorded
//! gradient per hidden unit) or in closed form; both are checked against
//! this derivation.
//!
//! ## Forward
//!
//! ```text
//! h = sigmoid(x W1^T + b1)          [n, H]   W1: [H, d], b1: [H]
//! y = sigmoid(h W2^T + b2)          [n, d]   W2: [d, H], b2: [d]
//! L = 1/(n d) sum (y - x)^2  +  lambda/n sum_r ||J_r||_F^2
//! ```
//!
//! ## The penalty in closed form
//!
//! For one sample `r`, hidden unit `j` depends on the input through
//! `h_rj = sigmoid(W1[j, :] . x_r + b1_j)`, so its gradient is the sigmoid's
//! slope times row `j` of the weights:
//! `dh_rj / dx_r = h_rj (1 - h_rj) W1[j, :]`. Squaring and summing over `j`
//! and the inputs `i`:
//!
//! ```text
//! ||J_r||_F^2 = sum_j a_rj^2 s_j,      a = h (1 - h)  [n, H],   s_j = sum_i W1_ji^2  [H]
//! P = lambda/n sum_r sum_j a_rj^2 s_j
//! ```
//!
//! ## Backward
//!
//! The penalty depends on the weights twice: through the hidden units (`a`
//! depends on `h`) and directly (`s` depends on `W1`). With
//! `d(a^2)/dh = 2 a (1 - 2h)` and `d s_j / d W1_ji = 2 W1_ji`:
//!
//! ```text
//! dy  = 2 (y - x) / (n d)                               [n, d]
//! dz2 = dy * y (1 - y)                                  [n, d]   through the output sigmoid
//! dW2 = dz2^T h,      db2 = sum_rows dz2                [d, H], [d]
//! dh  = dz2 W2  +  lambda/n * 2 a (1 - 2h) * s          [n, H]   reconstruction + penalty via h
//! dz1 = dh * a                                          [n, H]   through the hidden sigmoid
//! dW1 = dz1^T x  +  lambda/n * 2 (sum_rows a^2)_j W1[j, :]   [H, d]   ... + penalty via s
//! db1 = sum_rows dz1                                    [H]
//! ```
//!
//! (`s` in `dh` is broadcast along the rows; in `dW1` row `j` of `W1` is
//! scaled by `sum_r a_rj^2`.) This is the tutorial's notebook derivation
//! ([`crate::notebook`]) for a batch, with the penalty weighted by
//! `lambda` and averaged over the batch as the model's loss does.

use super::{bias_grad, input_grad, linear, mse_and_grad, weight_grad, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::{Autoencoder, ContractiveAutoencoder};

/// The loss of `model` on the batch `x` (`[n, d]`) and its gradients, by the
/// derivation above. It does not depend on the model's penalty mode: both
/// modes compute the same function.
pub fn by_hand<T: Element>(model: &ContractiveAutoencoder<T>, x: &Tensor<T>) -> Derived<T> {
    let params = model.params();
    let (enc, dec) = (model.encoder(), model.decoder());
    let (w1, b1) = (params.get(enc.weight), params.get(enc.bias));
    let (w2, b2) = (params.get(dec.weight), params.get(dec.bias));
    let (one, two) = (T::one(), T::of(2.0));
    let n = x.shape()[0];
    let hidden = w1.shape()[0];
    let scale = T::of(model.lambda()) / T::of(n as f64); // lambda / n

    // Forward.
    let h = linear(x, w1, b1).sigmoid(); // [n, H]
    let y = linear(&h, w2, b2).sigmoid(); // [n, d]
    let a = h.map(|h| h * (one - h)); // a = h (1 - h)  [n, H]
    let s = w1.square().sum_axis(1, false); // s_j = sum_i W1_ji^2  [H]
    let (mse, dy) = mse_and_grad(&y, x);
    let penalty = a.square().mul(&s).sum_all().item(); // sum_r ||J_r||_F^2
    let loss = mse + scale * penalty;

    // Backward.
    let dz2 = dy.mul(&y.map(|y| y * (one - y))); // [n, d]
    let dw2 = weight_grad(&dz2, &h); // [d, H]
    let db2 = bias_grad(&dz2); // [d]
    let penalty_via_h = a.zip_with(&h, "penalty", |a, h| two * a * (one - two * h)).mul(&s); // [n, H]
    let dh = input_grad(&dz2, w2).add(&penalty_via_h.mul_scalar(scale)); // [n, H]
    let dz1 = dh.mul(&a); // [n, H]
    let a2_per_unit = a.square().sum_axis(0, false).reshape(&[hidden, 1]); // sum_rows a^2  [H, 1]
    let penalty_via_s = w1.mul(&a2_per_unit).mul_scalar(two * scale); // [H, d]
    let dw1 = weight_grad(&dz1, x).add(&penalty_via_s); // [H, d]
    let db1 = bias_grad(&dz1); // [H]

    Derived::new(params, loss, vec![(enc.weight, dw1), (enc.bias, db1), (dec.weight, dw2), (dec.bias, db2)])
}
