//! Every autoencoder's gradients, derived by hand.
//!
//! Each module here takes one model of `gradtape_models::autoencoders`, a
//! batch and the step's random draws (dropout mask, noise mask, the VAE's
//! `eps`), and computes the loss and its gradient with respect to every
//! parameter with plain matrix formulas on [`Tensor`]s. No tape is involved:
//! this is the derivation you would do on paper, written out so the
//! computer can check it against the engine's autodiff.
//!
//! ## Conventions
//!
//! - A batch is the rows of a matrix: `x` is `[n, d]`, `n` samples of `d`
//!   numbers.
//! - A linear layer computes `z = a W^T + b` with the weight stored
//!   `[out, in]` as in PyTorch: `a` is `[n, in]`, `z` is `[n, out]`, `b` is
//!   `[out]`, added to every row.
//! - `dv` means `dL/dv`, the gradient of the scalar loss `L` with respect to
//!   `v`; it has the shape of `v`. `*` is an elementwise product;
//!   juxtaposition, as in `dz W`, is a matrix product.
//!
//! ## The three facts every derivation uses
//!
//! **A linear layer**, given `dz` (`[n, out]`):
//!
//! ```text
//! dW = dz^T a          [out, in]   (each sample adds the outer product dz_r a_r^T)
//! db = sum_rows dz     [out]       (b was added to every row)
//! da = dz W            [n, in]     (passed on to the layer below)
//! ```
//!
//! **An elementwise activation** `h = f(z)` multiplies by its derivative:
//! `dz = dh * f'(z)`, with
//! `relu'(z) = 1[z > 0]` (0 at the kink, as PyTorch),
//! `sigmoid'(z) = s (1 - s)` and `tanh'(z) = 1 - t^2` (written with the
//! outputs `s`, `t`).
//!
//! **A value used twice** (the code of the deep autoencoder goes to the
//! decoder *and* into the penalty) gets the sum of both gradients.
//!
//! ## The models
//!
//! - [`zero_digit`]: ReLU code, sigmoid output, MSE;
//! - [`deep`]: a stack of layers, Tanh output, MSE + lambda ||code||;
//! - [`regularized`]: dropout on the code and weight decay;
//! - [`denoising`]: the same network with a noise mask on the input;
//! - [`contractive`]: the Jacobian penalty, differentiated in closed form;
//! - [`vae`]: BCE through a sigmoid, the reparameterisation trick and the KL
//!   term.

pub mod contractive;
pub mod deep;
pub mod denoising;
pub mod regularized;
pub mod vae;
pub mod zero_digit;

use gradtape::{Element, Tensor};
use gradtape_models::params::{ParamId, Params};

/// A loss and its gradients, derived by hand.
#[derive(Clone, Debug)]
pub struct Derived<T: Element> {
    /// The loss value.
    pub loss: T,
    /// One gradient per parameter, in the model's parameter order (the
    /// order of `model.params()`), each with its parameter's shape.
    pub grads: Vec<Tensor<T>>,
}

impl<T: Element> Derived<T> {
    /// Puts `(parameter, gradient)` pairs into the model's parameter order.
    /// Panics if a parameter is missing, given twice, or has the wrong
    /// shape: a derivation must account for every parameter.
    #[track_caller]
    pub(crate) fn new(params: &Params<T>, loss: T, pairs: Vec<(ParamId, Tensor<T>)>) -> Self {
        let mut grads: Vec<Option<Tensor<T>>> = vec![None; params.len()];
        for (id, g) in pairs {
            let name = &params.names()[id.0];
            assert_eq!(
                g.shape(),
                params.get(id).shape(),
                "derivation: gradient of {name} has the wrong shape"
            );
            assert!(grads[id.0].is_none(), "derivation: gradient of {name} given twice");
            grads[id.0] = Some(g);
        }
        let grads = grads
            .into_iter()
            .zip(params.names())
            .map(|(g, name)| g.unwrap_or_else(|| panic!("derivation: no gradient for {name}")))
            .collect();
        Derived { loss, grads }
    }
}

/// `z = a W^T + b`: a linear layer's forward pass on a batch.
pub(crate) fn linear<T: Element>(a: &Tensor<T>, w: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    a.matmul_t(w, false, true).add(b)
}

/// `dW = dz^T a`.
pub(crate) fn weight_grad<T: Element>(dz: &Tensor<T>, a: &Tensor<T>) -> Tensor<T> {
    dz.matmul_t(a, true, false)
}

/// `db = sum_rows dz`.
pub(crate) fn bias_grad<T: Element>(dz: &Tensor<T>) -> Tensor<T> {
    dz.sum_axis(0, false)
}

/// `da = dz W`.
pub(crate) fn input_grad<T: Element>(dz: &Tensor<T>, w: &Tensor<T>) -> Tensor<T> {
    dz.matmul(w)
}

/// `1[z > 0]`, the derivative of ReLU at `z`.
pub(crate) fn relu_slope<T: Element>(z: &Tensor<T>) -> Tensor<T> {
    z.step()
}

/// Mean squared error over all `n d` elements of `y` against `x`, and its
/// gradient `dy = 2 (y - x) / (n d)`.
pub(crate) fn mse_and_grad<T: Element>(y: &Tensor<T>, x: &Tensor<T>) -> (T, Tensor<T>) {
    let elements = T::of(x.len() as f64);
    let diff = y.sub(x);
    let loss = diff.square().sum_all().item() / elements;
    (loss, diff.mul_scalar(T::of(2.0) / elements))
}

/// The parameter called `name` (for models that do not expose their layers).
#[track_caller]
pub(crate) fn param_id<T: Element>(params: &Params<T>, name: &str) -> ParamId {
    match params.names().iter().position(|n| n == name) {
        Some(i) => ParamId(i),
        None => panic!("derivation: the model has no parameter {name}; it has {:?}", params.names()),
    }
}
