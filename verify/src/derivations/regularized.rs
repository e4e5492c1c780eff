//! # The regularised autoencoder, by hand (and the denoising one's core)
//!
//! Four linear layers, `d -H- ReLU -L-` to a linear code of `L` numbers,
//! dropout on the code, then `-H- ReLU -d-` with a linear output. The loss
//! adds weight decay, written as `gamma` times the mean of the squared
//! weights of each layer, to the mean squared error.
//!
//! Dropout is random, so for a check it is *fixed*: the step's dropout mask
//! `m` (`[n, L]`) is an input, already scaled the way inverted dropout
//! scales it (each entry `0` or `1/(1-p)`). With the mask fixed, dropout is
//! just an elementwise product, and so is the denoising autoencoder's input
//! noise (see [`super::denoising`]), which is why this one derivation, with
//! an optional noise mask `e` on the input, serves both models.
//!
//! ## Forward
//!
//! ```text
//! x~ = x * e               [n, d]   (e = 1 everywhere without input noise)
//! z1 = x~ W1^T + b1        [n, H]   W1: [H, d]
//! h1 = relu(z1)            [n, H]
//! c  = h1 W2^T + b2        [n, L]   W2: [L, H]     the code (linear)
//! c~ = c * m               [n, L]                  dropout with a fixed mask
//! z3 = c~ W3^T + b3        [n, H]   W3: [H, L]
//! h3 = relu(z3)            [n, H]
//! y  = h3 W4^T + b4        [n, d]   W4: [d, H]     linear output
//! L  = 1/(n d) sum (y - x)^2 + gamma sum_l mean(W_l^2)
//! ```
//!
//! Note that the target is the *clean* `x`, even when the network sees `x~`.
//!
//! ## Backward
//!
//! ```text
//! dy  = 2 (y - x) / (n d)                   [n, d]
//! dW4 = dy^T h3  + 2 gamma W4 / |W4|        (|W| = number of entries)
//! db4 = sum_rows dy
//! dh3 = dy W4                               [n, H]
//! dz3 = dh3 * 1[z3 > 0]
//! dW3 = dz3^T c~ + 2 gamma W3 / |W3|,   db3 = sum_rows dz3
//! dc~ = dz3 W3                              [n, L]
//! dc  = dc~ * m                             through the dropout mask
//! dW2 = dc^T h1  + 2 gamma W2 / |W2|,   db2 = sum_rows dc
//! dh1 = dc W2                               [n, H]
//! dz1 = dh1 * 1[z1 > 0]
//! dW1 = dz1^T x~ + 2 gamma W1 / |W1|,   db1 = sum_rows dz1
//! ```
//!
//! The weight-decay terms come from `d/dW mean(W^2) = 2 W / |W|`; the biases
//! are not decayed. A dropped code unit (`m = 0`) passes no gradient back, and
//! a kept one passes it on scaled by `1/(1-p)`, the same factor that scaled
//! it forward.

use super::{bias_grad, input_grad, linear, mse_and_grad, relu_slope, weight_grad, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::{Autoencoder, RegularizedAutoencoder};

/// The loss of `model` on the batch `x` (`[n, d]`) with a fixed dropout mask
/// on the code (`[n, L]`, scaled; `None`: no dropout), and its gradients.
pub fn by_hand<T: Element>(
    model: &RegularizedAutoencoder<T>,
    x: &Tensor<T>,
    dropout_mask: Option<&Tensor<T>>,
) -> Derived<T> {
    by_hand_with_masks(model, x, None, dropout_mask)
}

/// The same, with an optional noise mask `e` (`[n, d]`) on the input: the
/// derivation above in full. [`super::denoising`] calls this.
pub fn by_hand_with_masks<T: Element>(
    model: &RegularizedAutoencoder<T>,
    x: &Tensor<T>,
    noise_mask: Option<&Tensor<T>>,
    dropout_mask: Option<&Tensor<T>>,
) -> Derived<T> {
    let params = model.params();
    let [l1, l2, l3, l4] = *model.layers();
    let (w1, b1) = (params.get(l1.weight), params.get(l1.bias));
    let (w2, b2) = (params.get(l2.weight), params.get(l2.bias));
    let (w3, b3) = (params.get(l3.weight), params.get(l3.bias));
    let (w4, b4) = (params.get(l4.weight), params.get(l4.bias));
    let gamma = T::of(model.gamma());
    let mask_or_identity = |v: &Tensor<T>, m: Option<&Tensor<T>>| match m {
        Some(m) => v.mul(m),
        None => v.clone(),
    };

    // Forward.
    let x_in = mask_or_identity(x, noise_mask); // x~  [n, d]
    let z1 = linear(&x_in, w1, b1); // [n, H]
    let h1 = z1.relu();
    let code = linear(&h1, w2, b2); // c  [n, L]
    let dropped = mask_or_identity(&code, dropout_mask); // c~
    let z3 = linear(&dropped, w3, b3); // [n, H]
    let h3 = z3.relu();
    let y = linear(&h3, w4, b4); // [n, d]
    let (mse, dy) = mse_and_grad(&y, x); // the target is the clean x
    let mean_sq = |w: &Tensor<T>| w.square().sum_all().item() / T::of(w.len() as f64);
    let loss = mse + gamma * (mean_sq(w1) + mean_sq(w2) + mean_sq(w3) + mean_sq(w4));

    // Backward. decay(W) = d/dW [gamma mean(W^2)] = 2 gamma W / |W|.
    let decay = |w: &Tensor<T>| w.mul_scalar(T::of(2.0) * gamma / T::of(w.len() as f64));
    let dw4 = weight_grad(&dy, &h3).add(&decay(w4)); // [d, H]
    let db4 = bias_grad(&dy);
    let dz3 = input_grad(&dy, w4).mul(&relu_slope(&z3)); // [n, H]
    let dw3 = weight_grad(&dz3, &dropped).add(&decay(w3)); // [H, L]
    let db3 = bias_grad(&dz3);
    let dcode = mask_or_identity(&input_grad(&dz3, w3), dropout_mask); // dc = dc~ * m  [n, L]
    let dw2 = weight_grad(&dcode, &h1).add(&decay(w2)); // [L, H]
    let db2 = bias_grad(&dcode);
    let dz1 = input_grad(&dcode, w2).mul(&relu_slope(&z1)); // [n, H]
    let dw1 = weight_grad(&dz1, &x_in).add(&decay(w1)); // [H, d]
    let db1 = bias_grad(&dz1);

    Derived::new(
        params,
        loss,
        vec![
            (l1.weight, dw1),
            (l1.bias, db1),
            (l2.weight, dw2),
            (l2.bias, db2),
            (l3.weight, dw3),
            (l3.bias, db3),
            (l4.weight, dw4),
            (l4.bias, db4),
        ],
    )
}
