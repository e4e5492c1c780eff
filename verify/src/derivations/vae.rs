//! # The variational autoencoder, by hand
//!
//! Kingma and Welling (2014), as in the tutorial. The encoder maps an input
//! to a Gaussian: a mean `mu` and a log-variance `lv` per latent dimension.
//! A code is sampled from it by the *reparameterisation*
//! `z = mu + exp(lv / 2) * eps` with `eps ~ N(0, I)`, which moves all the
//! randomness into `eps`: for a fixed `eps`, `z` is an ordinary
//! differentiable function of `mu` and `lv`. For a check `eps` is fixed
//! (`[n, K]`).
//!
//! ## Forward
//!
//! ```text
//! z1 = x W1^T + b1,       a1 = relu(z1)          [n, H]   W1: [H, d]
//! mu = a1 Wm^T + bm                              [n, K]   Wm: [K, H]
//! lv = a1 Wv^T + bv                              [n, K]   Wv: [K, H]
//! sd = exp(lv / 2)                               [n, K]   the standard deviation
//! z  = mu + sd * eps                             [n, K]
//! z3 = z W3^T + b3,       a3 = relu(z3)          [n, H]   W3: [H, K]
//! q  = a3 W4^T + b4,      p = sigmoid(q)         [n, d]   W4: [d, H]
//! BCE = -sum (x ln p + (1 - x) ln(1 - p))         summed over pixels and samples
//! KL  = -1/2 sum (1 + lv - mu^2 - exp(lv))        summed likewise
//! L   = (BCE + KL) / n                            per sample
//! ```
//!
//! ## Backward
//!
//! Binary cross-entropy through a sigmoid has the famous short derivative:
//! `d BCE / dq = p - x` (the sigmoid's slope `p (1 - p)` cancels the
//! denominators of `-x/p + (1-x)/(1-p)`). The KL term of a diagonal
//! Gaussian has closed-form derivatives `d KL / d mu = mu` and
//! `d KL / d lv = (exp(lv) - 1) / 2`. And `dz/dmu = 1`,
//! `dz/dlv = eps * sd / 2`.
//!
//! ```text
//! dq  = (p - x) / n                              [n, d]
//! dW4 = dq^T a3,      db4 = sum_rows dq
//! dz3 = dq W4 * 1[z3 > 0]                        [n, H]
//! dW3 = dz3^T z,      db3 = sum_rows dz3
//! dz  = dz3 W3                                   [n, K]
//! dmu = dz + mu / n                              reconstruction + KL
//! dlv = dz * eps * sd / 2 + (exp(lv) - 1) / (2n)
//! dWm = dmu^T a1,     dbm = sum_rows dmu
//! dWv = dlv^T a1,     dbv = sum_rows dlv
//! dz1 = (dmu Wm + dlv Wv) * 1[z1 > 0]            a1 feeds both heads
//! dW1 = dz1^T x,      db1 = sum_rows dz1
//! ```
//!
//! **The log clamp.** Like PyTorch's `BCELoss`, the model clamps each log at
//! -100, so a saturated output (`p` rounding to exactly 0 or 1, which f32
//! does for `|q|` above about 17) costs at most 100 instead of infinity.
//! Where a log is clamped it is a constant, and its term drops out of the
//! derivative: then `dq = ((1 - x) p [ln(1-p) > -100] - x (1 - p) [ln p > -100]) / n`,
//! which is `(p - x) / n` when neither is clamped. With real digits and
//! random weights nothing saturates, but the derivation handles it anyway
//! ([`clamped_outputs`] counts such elements).

use super::{bias_grad, input_grad, linear, relu_slope, weight_grad, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::{Autoencoder, Vae};

/// Whether `ln v` is above the loss's clamp at -100.
fn log_unclamped<T: Element>(v: T) -> bool {
    v.ln() > T::of(-100.0)
}

/// The number of outputs `p` (`[n, d]`) at which one of the two logs of
/// the BCE sits at its clamp.
pub fn clamped_outputs<T: Element>(p: &Tensor<T>) -> usize {
    p.data().iter().filter(|&&p| !(log_unclamped(p) && log_unclamped(T::one() - p))).count()
}

/// The VAE's outputs `p = sigmoid(q)` for `x` with a fixed `eps`, for
/// [`clamped_outputs`].
pub fn outputs<T: Element>(model: &Vae<T>, x: &Tensor<T>, eps: &Tensor<T>) -> Tensor<T> {
    forward(model, x, eps).p
}

/// Everything the forward pass computes that the backward pass needs.
struct Forward<T: Element> {
    z1: Tensor<T>,
    a1: Tensor<T>,
    mu: Tensor<T>,
    lv: Tensor<T>,
    sd: Tensor<T>,
    z: Tensor<T>,
    z3: Tensor<T>,
    a3: Tensor<T>,
    p: Tensor<T>,
}

fn forward<T: Element>(model: &Vae<T>, x: &Tensor<T>, eps: &Tensor<T>) -> Forward<T> {
    let params = model.params();
    let [l1, lm, lv_layer, l3, l4] = model.layers();
    let get = |l: gradtape_models::layers::Linear| (params.get(l.weight), params.get(l.bias));
    let z1 = linear(x, get(l1).0, get(l1).1); // [n, H]
    let a1 = z1.relu();
    let mu = linear(&a1, get(lm).0, get(lm).1); // [n, K]
    let lv = linear(&a1, get(lv_layer).0, get(lv_layer).1); // [n, K]
    let sd = lv.mul_scalar(T::of(0.5)).exp(); // exp(lv / 2)
    let z = mu.add(&sd.mul(eps)); // [n, K]
    let z3 = linear(&z, get(l3).0, get(l3).1); // [n, H]
    let a3 = z3.relu();
    let p = linear(&a3, get(l4).0, get(l4).1).sigmoid(); // [n, d]
    Forward { z1, a1, mu, lv, sd, z, z3, a3, p }
}

/// The loss of `model` on the batch `x` (`[n, d]`, pixels in [0, 1]) with the
/// fixed noise `eps` (`[n, K]`), and its gradients, by the derivation above.
pub fn by_hand<T: Element>(model: &Vae<T>, x: &Tensor<T>, eps: &Tensor<T>) -> Derived<T> {
    let params = model.params();
    let [l1, lm, lv_layer, l3, l4] = model.layers();
    let (one, half, hundred) = (T::one(), T::of(0.5), T::of(-100.0));
    let n = T::of(x.shape()[0] as f64);
    let Forward { z1, a1, mu, lv, sd, z, z3, a3, p } = forward(model, x, eps);

    // The loss: BCE with each log clamped at -100, and the KL term.
    let clamped_ln = |v: T| v.ln().max(hundred);
    let bce =
        p.zip_with(x, "bce", |p, x| -(x * clamped_ln(p) + (one - x) * clamped_ln(one - p))).sum_all().item();
    let kl = lv.zip_with(&mu, "kl", |lv, mu| one + lv - mu * mu - lv.exp()).sum_all().item() * -half;
    let loss = (bce + kl) / n;

    // Backward. dq = (p - x) / n, or its clamp-aware form (see the module doc).
    let dq = p
        .zip_with(x, "bce", |p, x| {
            let (keep_p, keep_1mp) = (log_unclamped(p), log_unclamped(one - p));
            if keep_p && keep_1mp {
                p - x
            } else {
                let via_1mp = if keep_1mp { (one - x) * p } else { T::zero() };
                let via_p = if keep_p { x * (one - p) } else { T::zero() };
                via_1mp - via_p
            }
        })
        .mul_scalar(one / n); // [n, d]
    let w = |l: gradtape_models::layers::Linear| params.get(l.weight);
    let dw4 = weight_grad(&dq, &a3); // [d, H]
    let db4 = bias_grad(&dq);
    let dz3 = input_grad(&dq, w(l4)).mul(&relu_slope(&z3)); // [n, H]
    let dw3 = weight_grad(&dz3, &z); // [H, K]
    let db3 = bias_grad(&dz3);
    let dz = input_grad(&dz3, w(l3)); // [n, K]
    let dmu = dz.add(&mu.mul_scalar(one / n)); // + d KL/d mu / n
    let kl_lv = lv.map(|lv| (lv.exp() - one) * half / n); // d KL/d lv / n
    let dlv = dz.mul(eps).mul(&sd).mul_scalar(half).add(&kl_lv); // [n, K]
    let dwm = weight_grad(&dmu, &a1); // [K, H]
    let dbm = bias_grad(&dmu);
    let dwv = weight_grad(&dlv, &a1); // [K, H]
    let dbv = bias_grad(&dlv);
    let da1 = input_grad(&dmu, w(lm)).add(&input_grad(&dlv, w(lv_layer))); // [n, H]
    let dz1 = da1.mul(&relu_slope(&z1));
    let dw1 = weight_grad(&dz1, x); // [H, d]
    let db1 = bias_grad(&dz1);

    Derived::new(
        params,
        loss,
        vec![
            (l1.weight, dw1),
            (l1.bias, db1),
            (lm.weight, dwm),
            (lm.bias, dbm),
            (lv_layer.weight, dwv),
            (lv_layer.bias, dbv),
            (l3.weight, dw3),
            (l3.bias, db3),
            (l4.weight, dw4),
            (l4.bias, db4),
        ],
    )
}
