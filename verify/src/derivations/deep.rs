//! # The deep autoencoder, by hand
//!
//! A stack of `k` encoder layers down to a code of a few numbers, and `k`
//! decoder layers back up (784-128-64-12-64-128-784 in the tutorial, so
//! `k = 3`). ReLU between layers, no activation on the code (it is linear),
//! Tanh on the output. The loss adds the length of the code, scaled by a
//! small `lambda`, to the mean squared error.
//!
//! ## Forward
//!
//! Number all `2k` layers `l = 1 .. 2k`; layer `l` has weight `W_l`
//! (`[d_l, d_{l-1}]`) and bias `b_l` (`[d_l]`), and `d_0 = d_2k = d`, the
//! number of pixels.
//!
//! ```text
//! a_0 = x                                   [n, d]
//! z_l = a_{l-1} W_l^T + b_l                 [n, d_l]
//! a_l = relu(z_l)   for l != k, 2k          (hidden layers)
//! c   = a_k = z_k                           [n, d_k]   the code: no activation
//! y   = a_2k = tanh(z_2k)                   [n, d]
//! L   = 1/(n d) sum (y - x)^2 + lambda ||c||,    ||c|| = sqrt(sum_ij c_ij^2)
//! ```
//!
//! `||c||` is the Frobenius norm of the whole `[n, d_k]` code matrix
//! (`torch.norm(code)`), not a per-sample norm.
//!
//! ## Backward
//!
//! ```text
//! dy     = 2 (y - x) / (n d)                      [n, d]
//! dz_2k  = dy * (1 - y^2)                         through the Tanh
//! for l = 2k down to 1:
//!     dW_l = dz_l^T a_{l-1}                       [d_l, d_{l-1}]
//!     db_l = sum_rows dz_l                        [d_l]
//!     da_{l-1} = dz_l W_l                         [n, d_{l-1}]
//!     if l - 1 = k (the code):   dz_k = da_k + lambda c / ||c||
//!                                          (the code is used twice: by the
//!                                           decoder and by the penalty)
//!     else if l > 1:             dz_{l-1} = da_{l-1} * 1[z_{l-1} > 0]
//! ```
//!
//! The penalty's gradient is the gradient of a length: `d||c||/dc = c / ||c||`,
//! the unit vector in the direction of `c` (undefined at `c = 0`).

use super::{bias_grad, input_grad, linear, mse_and_grad, relu_slope, weight_grad, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::{Autoencoder, DeepAutoencoder};

/// The loss of `model` on the batch `x` (`[n, d]`) and its gradients, by the
/// derivation above.
pub fn by_hand<T: Element>(model: &DeepAutoencoder<T>, x: &Tensor<T>) -> Derived<T> {
    let params = model.params();
    let layers: Vec<_> = model.encoder_layers().iter().chain(model.decoder_layers()).copied().collect();
    let k = model.encoder_layers().len(); // layer k (counting from 1) makes the code
    let lambda = T::of(model.lambda());
    let one = T::one();

    // Forward: a[l] is the input of layer l + 1 (a[0] = x), z[l] the
    // pre-activation of layer l + 1 (0-based indices from here on).
    let mut a = vec![x.clone()];
    let mut z = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let zl = linear(&a[i], params.get(layer.weight), params.get(layer.bias));
        let al = if i + 1 == k {
            zl.clone() // the code: linear
        } else if i + 1 == layers.len() {
            zl.tanh() // the output
        } else {
            zl.relu()
        };
        z.push(zl);
        a.push(al);
    }
    let y = &a[layers.len()];
    let code = &a[k];
    let code_norm = code.square().sum_all().item().sqrt();
    let (mse, dy) = mse_and_grad(y, x);
    let loss = mse + lambda * code_norm;

    // Backward.
    let mut dz = dy.mul(&y.map(|y| one - y * y)); // through the Tanh
    let mut pairs = Vec::with_capacity(2 * layers.len());
    for i in (0..layers.len()).rev() {
        let w = params.get(layers[i].weight);
        pairs.push((layers[i].weight, weight_grad(&dz, &a[i])));
        pairs.push((layers[i].bias, bias_grad(&dz)));
        if i == 0 {
            break; // the input is data: no gradient needed
        }
        let da = input_grad(&dz, w); // the gradient of a[i], the input of layer i + 1
        dz = if i == k {
            // a[k] is the code: the decoder's gradient plus the penalty's.
            da.add(&code.mul_scalar(lambda / code_norm))
        } else {
            da.mul(&relu_slope(&z[i - 1]))
        };
    }
    Derived::new(params, loss, pairs)
}
