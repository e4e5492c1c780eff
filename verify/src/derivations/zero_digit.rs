//! # The zero-digit autoencoder, by hand
//!
//! The smallest model of the family: 25 pixels, `H` ReLU hidden units
//! (10 in the tutorial), 25 sigmoid outputs, mean squared error against the
//! input itself.
//!
//! ## Forward
//!
//! ```text
//! z1 = x W1^T + b1        [n, H]     W1: [H, 25], b1: [H]   ("encoder")
//! h  = relu(z1)           [n, H]
//! z2 = h W2^T + b2        [n, 25]    W2: [25, H], b2: [25]  ("decoder")
//! y  = sigmoid(z2)        [n, 25]
//! L  = 1/(25 n) sum (y - x)^2        (mean over all 25 n elements)
//! ```
//!
//! ## Backward
//!
//! Start at the loss and walk back through each line of the forward pass,
//! using the three facts of [`super`] (linear layer, activation, fan-out):
//!
//! ```text
//! dy  = 2 (y - x) / (25 n)          [n, 25]   derivative of the mean of squares
//! dz2 = dy * y (1 - y)              [n, 25]   through the sigmoid
//! dW2 = dz2^T h                     [25, H]
//! db2 = sum_rows dz2                [25]
//! dh  = dz2 W2                      [n, H]    back into the code
//! dz1 = dh * 1[z1 > 0]              [n, H]    through the ReLU
//! dW1 = dz1^T x                     [H, 25]
//! db1 = sum_rows dz1                [H]
//! ```
//!
//! The input `x` is data, so `dx` is never needed.

use super::{bias_grad, input_grad, linear, mse_and_grad, param_id, relu_slope, weight_grad, Derived};
use gradtape::{Element, Tensor};
use gradtape_models::autoencoders::{Autoencoder, ZeroDigit};

/// The loss of `model` on the batch `x` (`[n, 25]`) and its gradients, by
/// the derivation above.
pub fn by_hand<T: Element>(model: &ZeroDigit<T>, x: &Tensor<T>) -> Derived<T> {
    let params = model.params();
    let [w1_id, b1_id, w2_id, b2_id] =
        ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"].map(|n| param_id(params, n));
    let (w1, b1, w2, b2) = (params.get(w1_id), params.get(b1_id), params.get(w2_id), params.get(b2_id));
    let one = T::one();

    // Forward.
    let z1 = linear(x, w1, b1); // [n, H]
    let h = z1.relu(); // [n, H]
    let y = linear(&h, w2, b2).sigmoid(); // [n, 25]
    let (loss, dy) = mse_and_grad(&y, x);

    // Backward.
    let dz2 = dy.mul(&y.map(|y| y * (one - y))); // [n, 25]
    let dw2 = weight_grad(&dz2, &h); // [25, H]
    let db2 = bias_grad(&dz2); // [25]
    let dh = input_grad(&dz2, w2); // [n, H]
    let dz1 = dh.mul(&relu_slope(&z1)); // [n, H]
    let dw1 = weight_grad(&dz1, x); // [H, 25]
    let db1 = bias_grad(&dz1); // [H]

    Derived::new(params, loss, vec![(w1_id, dw1), (b1_id, db1), (w2_id, dw2), (b2_id, db2)])
}
