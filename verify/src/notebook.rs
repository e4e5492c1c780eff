//! The notebook check: a contractive autoencoder whose gradients are derived
//! by hand and asserted equal to autodiff.
//!
//! The tutorial this project grew from builds a tiny contractive autoencoder
//! (20 inputs, 5 sigmoid hidden units, 20 sigmoid outputs), computes the
//! Jacobian penalty by asking autograd for each row of `dh/dx` with
//! `create_graph=True`, and then checks the parameter gradients against a
//! derivation on paper. This module does the same, for a batch of `N` rows.
//!
//! Forward (shapes for `N` inputs of `D = 20`, `H = 5` hidden units):
//!
//! ```text
//! h = sigmoid(x W1^T + b1)          [N, H]   (W1: [H, D], b1: [H])
//! y = sigmoid(h W2^T + b2)          [N, D]   (W2: [D, H], b2: [D])
//! L = mean((y - x)^2) + P
//! P = sum_n sum_j ||d h_nj / d x_n||^2
//!   = sum_n sum_j (h_nj (1 - h_nj))^2 * sum_i W1_ji^2      (closed form)
//! ```
//!
//! The closed form holds because `d h_j / d x = h_j (1 - h_j) W1[j, :]`: the
//! sigmoid's derivative times row `j` of the weights.
//!
//! **About the factor 2.** The tutorial's hand derivation writes
//! `dL/dy = 2 (y - x)`, which is the derivative of a *summed* squared error.
//! With PyTorch's default mean-reduced MSE over `N * D` elements it is
//! `2 (y - x) / (N D)`; that is what we use, because the model's loss is the
//! mean.
//!
//! Backward, by hand (`a = h (1 - h)`, `s_j = sum_i W1_ji^2`):
//!
//! ```text
//! dy    = 2 (y - x) / (N D)                        [N, D]
//! dz2   = dy * y (1 - y)                           [N, D]
//! dW2   = dz2^T h,          db2 = sum_n dz2        [D, H], [D]
//! dh    = dz2 W2 + 2 a (1 - 2h) s                  [N, H]  (reconstruction + penalty via h)
//! dz1   = dh * h (1 - h)                           [N, H]
//! dW1   = dz1^T x + 2 (sum_n a^2)_j W1[j, :],   db1 = sum_n dz1
//! ```
//!
//! The second term of `dW1` is the penalty's direct dependence on the
//! weights (`d s_j / d W1_ji = 2 W1_ji`); the term `2 a (1 - 2h) s` in `dh`
//! is its dependence through the hidden units (`d a / d h = 1 - 2h`).

use gradtape::{grad, Element, Tape, Tensor};

/// Weights and one batch of inputs for the notebook's 20-5-20 model.
#[derive(Clone, Debug)]
pub struct NotebookCae<T: Element> {
    /// The encoder's weight `W1`, `[H, D]`.
    pub w1: Tensor<T>,
    /// The encoder's bias `b1`, `[H]`.
    pub b1: Tensor<T>,
    /// The decoder's weight `W2`, `[D, H]`.
    pub w2: Tensor<T>,
    /// The decoder's bias `b2`, `[D]`.
    pub b2: Tensor<T>,
    /// The batch `x`, `[N, D]`, values in [0, 1).
    pub x: Tensor<T>,
}

/// Parameter names in the order gradients are returned.
pub const PARAMETERS: [&str; 4] = ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"];

/// One row of the comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The parameter, one of [`PARAMETERS`].
    pub parameter: &'static str,
    /// `max |autodiff - hand|` over the parameter's gradient.
    pub max_abs_diff: f64,
    /// `max |autodiff - hand| / max |hand|`.
    pub rel_diff: f64,
}

impl<T: Element> NotebookCae<T> {
    /// The notebook's shapes (20-5-20) with PyTorch's default initialisation
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` and `n` random inputs in [0, 1).
    pub fn new(n: usize, seed: u64) -> Self {
        Self::with_sizes(n, 20, 5, seed)
    }

    /// Any sizes: `d` inputs, `h` hidden units.
    pub fn with_sizes(n: usize, d: usize, h: usize, seed: u64) -> Self {
        let (k1, k2) = (1.0 / (d as f64).sqrt(), 1.0 / (h as f64).sqrt());
        NotebookCae {
            w1: Tensor::uniform(&[h, d], -k1, k1, seed),
            b1: Tensor::uniform(&[h], -k1, k1, seed + 1),
            w2: Tensor::uniform(&[d, h], -k2, k2, seed + 2),
            b2: Tensor::uniform(&[d], -k2, k2, seed + 3),
            x: Tensor::uniform(&[n, d], 0.0, 1.0, seed + 4),
        }
    }

    /// The loss and its parameter gradients by autodiff, with the Jacobian
    /// penalty taken exactly as the notebook does: one `create_graph`
    /// gradient per hidden unit, squared and summed.
    pub fn autodiff(&self) -> (T, [Tensor<T>; 4]) {
        let tape = Tape::new();
        let (w1, b1) = (tape.param(&self.w1), tape.param(&self.b1));
        let (w2, b2) = (tape.param(&self.w2), tape.param(&self.b2));
        let x = tape.constant(&self.x);
        let h = (x.matmul_t(w1, false, true) + b1).sigmoid();
        let y = (h.matmul_t(w2, false, true) + b2).sigmoid();
        let reconstruction = (y - x).square().mean();
        let mut penalty = tape.scalar(T::zero());
        for j in 0..self.w1.shape()[0] {
            let row = grad(&[h.column(j).sum()], &[x], None, true)[0];
            penalty = penalty + row.square().sum();
        }
        let loss = reconstruction + penalty;
        let g = loss.backward();
        (loss.item(), [g[w1].clone(), g[b1].clone(), g[w2].clone(), g[b2].clone()])
    }

    /// The loss and its gradients from the hand derivation in the module
    /// doc, on plain tensors (no tape).
    pub fn by_hand(&self) -> (T, [Tensor<T>; 4]) {
        let (x, w1, b1, w2, b2) = (&self.x, &self.w1, &self.b1, &self.w2, &self.b2);
        let one = T::one();
        let two = T::of(2.0);
        // Forward.
        let h = x.matmul_t(w1, false, true).add(b1).sigmoid();
        let y = h.matmul_t(w2, false, true).add(b2).sigmoid();
        let a = h.map(|h| h * (one - h));
        let s = w1.square().sum_axis(1, false); // s_j = sum_i W1_ji^2
        let elements = T::of(x.len() as f64);
        let reconstruction = y.sub(x).square().sum_all().item() / elements;
        let penalty = a.square().mul(&s).sum_all().item();
        // Backward.
        let dy = y.sub(x).mul_scalar(two / elements);
        let dz2 = dy.mul(&y.map(|y| y * (one - y)));
        let dw2 = dz2.matmul_t(&h, true, false);
        let db2 = dz2.sum_axis(0, false);
        let dh_penalty = a.mul(&h.map(|h| one - two * h)).mul(&s).mul_scalar(two);
        let dh = dz2.matmul(w2).add(&dh_penalty);
        let dz1 = dh.mul(&a);
        let direct = w1.mul(&a.square().sum_axis(0, false).reshape(&[w1.shape()[0], 1])).mul_scalar(two);
        let dw1 = dz1.matmul_t(x, true, false).add(&direct);
        let db1 = dz1.sum_axis(0, false);
        (reconstruction + penalty, [dw1, db1, dw2, db2])
    }

    /// Runs both and compares them parameter by parameter. Also returns
    /// both losses.
    pub fn compare(&self) -> (T, T, Vec<Comparison>) {
        let (loss_auto, auto) = self.autodiff();
        let (loss_hand, hand) = self.by_hand();
        let rows = PARAMETERS
            .iter()
            .zip(auto.iter().zip(&hand))
            .map(|(&parameter, (a, h))| {
                let max_abs_diff = a.max_abs_diff(h).as_f64();
                let scale = h.data().iter().fold(0.0f64, |m, v| m.max(v.as_f64().abs()));
                Comparison { parameter, max_abs_diff, rel_diff: max_abs_diff / scale.max(f64::MIN_POSITIVE) }
            })
            .collect();
        (loss_auto, loss_hand, rows)
    }
}
