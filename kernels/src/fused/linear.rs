//! A whole linear layer as one op: the product, the bias and the activation.
//!
//! ```text
//! forward:   y  = act(x W^T + b)     = x.matmul_t(W, false, true).bias_act(b, act)
//! backward:  dz = g * act'(y)        (bias_act's rule)
//!            db = sum_to(dz, [out])
//!            dx = dz W,  dW = dz^T x (matmul's rules)
//! ```
//!
//! On the CPU this is the product and `bias_act`'s one pass, as before. On
//! a GPU the bias and the activation go inside the product: cuBLASLt's
//! epilogues (`cuda/lt.rs`) add the bias, and apply ReLU, as the product is
//! written (identity and ReLU; sigmoid and tanh have no epilogue and keep
//! the kernel), and the weight's gradient comes with the bias's, summed by
//! the same call (BGRADB), where `bias_act`'s rule has no activation to
//! apply. One call instead of two each time.

use crate::fused::Act;
use crate::tensor::Tensor;
use crate::Element;

impl<T: Element> Tensor<T> {
    /// `act(self W^T + b)`, `self` `[rows, in]`, `w` `[out, in]` (stored as
    /// PyTorch stores a linear layer's weight), `b` `[out]`: the same
    /// numbers as `self.matmul_t(w, false, true).bias_act(b, act)` (on a
    /// GPU the bias is added by the product's epilogue: the same formula,
    /// the product's own rounding). Panics, at the caller, on shapes that
    /// do not fit, naming all three.
    #[track_caller]
    pub fn linear_act(&self, w: &Tensor<T>, b: &Tensor<T>, act: Act) -> Tensor<T> {
        self.linear_act_with_mask(w, b, act).0
    }

    /// [`Tensor::linear_act`], and, where the ReLU was applied by the
    /// product's epilogue (a GPU with cuBLASLt), the ReLU's mask: a bit per
    /// output, kept in a tensor's buffer, for
    /// [`Tensor::linear_input_grad_through_relu`]. `None` elsewhere.
    #[track_caller]
    pub fn linear_act_with_mask(
        &self,
        w: &Tensor<T>,
        b: &Tensor<T>,
        act: Act,
    ) -> (Tensor<T>, Option<Tensor<T>>) {
        let (x_shape, w_shape, b_shape) = (self.shape(), w.shape(), b.shape());
        assert!(
            x_shape.len() == 2 && w_shape.len() == 2 && x_shape[1] == w_shape[1] && b_shape == [w_shape[0]],
            "linear_act: x {x_shape:?}, W {w_shape:?} and b {b_shape:?} do not make a layer \
             (x [rows, in], W [out, in], b [out])"
        );
        #[cfg(feature = "cuda")]
        if self.same_device(w, "linear_act").is_cuda() && w.same_device(b, "linear_act").is_cuda() {
            if let Some(out) = crate::cuda::ops::linear_act(self, w, b, act) {
                return out;
            }
        }
        (self.matmul_t(w, false, true).bias_act(b, act), None)
    }

    /// The gradient of a ReLU layer's pre-activation `z` from the gradient
    /// `self` (`[rows, out]`) of the next layer's pre-activation, through
    /// that layer's weight `w` (`[out, in]`): `(self w) * step(z)`, with its
    /// sums over the rows (the ReLU layer's bias gradient), where `mask` is
    /// the ReLU layer's from [`Tensor::linear_act_with_mask`]. One cuBLASLt
    /// call on a GPU (DRELU_BGRAD) where the product, then `bias_act`'s rule,
    /// took two; `None` where it cannot be done so (the caller takes those).
    pub fn linear_input_grad_through_relu(
        &self,
        w: &Tensor<T>,
        mask: &Tensor<T>,
    ) -> Option<(Tensor<T>, Tensor<T>)> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() && w.is_cuda() && mask.is_cuda() && self.rank() == 2 && w.rank() == 2 {
            return crate::cuda::ops::linear_input_grad_through_relu(self, w, mask);
        }
        let _ = (w, mask);
        None
    }

    /// A linear layer's weight and bias gradients, `(dW, db)`, from the
    /// gradient `self` of its pre-activation `x W^T + b` (`[rows, out]`) and
    /// its input `x` (`[rows, in]`): `dW = self^T x` and `db` the sums of
    /// `self` over the rows. On a GPU, one cuBLASLt call makes both.
    #[track_caller]
    pub fn linear_weight_bias_grad(&self, x: &Tensor<T>) -> (Tensor<T>, Tensor<T>) {
        let (dz_shape, x_shape) = (self.shape(), x.shape());
        assert!(
            dz_shape.len() == 2 && x_shape.len() == 2 && dz_shape[0] == x_shape[0],
            "linear_weight_bias_grad: dz {dz_shape:?} and x {x_shape:?} differ in rows \
             (dz [rows, out], x [rows, in])"
        );
        #[cfg(feature = "cuda")]
        if self.same_device(x, "linear_weight_bias_grad").is_cuda() {
            if let Some(grads) = crate::cuda::ops::linear_weight_bias_grad(self, x) {
                return grads;
            }
        }
        (self.matmul_t(x, true, false), self.sum_to(&[dz_shape[1]]))
    }
}
