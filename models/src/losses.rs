//! Losses and penalties: the numbers a training step makes small.
//!
//! Every function here takes recorded variables ([`Var`]) and returns a
//! single recorded number (a 0-d `Var`), built only from the engine's ops.
//! That means you never write a backward pass for a loss: `loss.backward()`
//! (or [`gradtape::grad()`]) differentiates it, and because every op's rule is
//! itself recorded, so does `grad(.., create_graph = true)`. The
//! verification suite checks each one with `gradcheck` and `gradgradcheck`.
//!
//! What is here, and which autoencoder uses it:
//!
//! - reconstruction losses, comparing the decoder's output with the input:
//!   [`mse`] (mean squared error), [`bce`] (binary cross-entropy on
//!   probabilities, for a sigmoid output) and [`bce_with_logits`] (the same
//!   on the raw scores before the sigmoid: more accurate, never infinite);
//! - the variational autoencoder's KL term, [`kl_diag_gaussian`] and
//!   [`kl_diag_gaussian_mean`];
//! - penalties: [`mean_squared_weights`] (weight decay written as a loss),
//!   [`code_l2`] (the size of the code), and a sparse autoencoder's two
//!   activity penalties, [`l1_activity`] and [`kl_sparsity`].
//!
//! The losses that compare two tensors take a [`Reduction`]: `Mean`
//! averages over every element (PyTorch's default), `Sum` adds them up.
//!
//! [`mse`], [`bce`] and the KL terms are recorded as one node each, the
//! fused op `loss_sum` (`gradtape::ops::fused`), which computes the same
//! sum in one pass over the batch; each one's doc gives the plain ops it
//! stands for, and [`bce_plain`] writes the longest of them out.
//!
//! Shapes must match exactly. A prediction of shape `[64, 784]` against a
//! target of shape `[784]` would broadcast silently into the wrong loss, so
//! instead it panics, at your call, naming the loss and both shapes.
//!
//! ```
//! use gradtape::{Tape, Tensor};
//! use gradtape_models::losses::{mse, Reduction};
//!
//! let tape = Tape::<f64>::new();
//! let pred = tape.param(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
//! let target = tape.constant(&Tensor::from_vec(vec![0.0, 4.0], &[2]));
//! let loss = mse(pred, target, Reduction::Mean); // ((1-0)^2 + (2-4)^2) / 2
//! assert_eq!(loss.item(), 2.5);
//! let g = loss.backward(); // d/dpred = 2 (pred - target) / n
//! assert_eq!(g[pred].data(), &[1.0, -2.0]);
//! ```

use gradtape::{Element, LossTerm, Var};
use gradtape_kernels::shape::numel;

/// How the per-element losses are combined into one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The average over all elements (PyTorch's `reduction="mean"`).
    #[default]
    Mean,
    /// The sum over all elements (PyTorch's `reduction="sum"`).
    Sum,
}

/// Reduces per-element losses to one number.
fn reduce<'t, T: Element>(per_element: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    match reduction {
        Reduction::Mean => per_element.mean(),
        Reduction::Sum => per_element.sum(),
    }
}

/// Panics, at the caller of the loss, unless `a` and `b` have the same shape.
#[track_caller]
fn assert_same_shape<T: Element>(loss: &str, what: [&str; 2], a: &Var<'_, T>, b: &Var<'_, T>) {
    let (sa, sb) = (a.shape(), b.shape());
    assert!(
        sa == sb,
        "{loss}: {} has shape {:?} but {} has shape {:?}; they must be equal \
         (losses do not broadcast)",
        what[0],
        &sa[..],
        what[1],
        &sb[..]
    );
}

/// The batch size of a `[n, ...]` tensor: its first axis. Panics on a 0-d
/// tensor or an empty batch.
#[track_caller]
fn batch_rows<T: Element>(loss: &str, x: &Var<'_, T>) -> usize {
    let shape = x.shape();
    assert!(!shape.is_empty(), "{loss}: expected a batch with the samples along axis 0, got a 0-d tensor");
    assert!(shape[0] > 0, "{loss}: the batch is empty (shape {:?})", &shape[..]);
    shape[0]
}

/// Mean squared error:
///
/// ```text
/// mse(p, t) = reduce_i (p_i - t_i)^2          d/dp_i = 2 (p_i - t_i)  (/ n for Mean)
/// ```
///
/// As `torch.nn.functional.mse_loss`. Panics if the shapes differ.
///
/// In plain ops this is `(p - t).sum_squares()`, divided by `n` for the
/// mean. It is recorded as the fused op `loss_sum` (see
/// `gradtape::ops::fused`): the same number, in one pass over the batch
/// instead of three (one reduction on a GPU), and both gradients in one.
#[track_caller]
pub fn mse<'t, T: Element>(pred: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    assert_same_shape("mse", ["pred", "target"], &pred, &target);
    pred.loss_sum(target, LossTerm::SquaredError, scale_for(reduction, &pred))
}

/// The factor a fused loss's sum is multiplied by: `1/n` for the mean of
/// `n` elements (as `div_scalar(n)` multiplies), 1 for the sum.
fn scale_for<T: Element>(reduction: Reduction, x: &Var<'_, T>) -> T {
    match reduction {
        Reduction::Mean => T::one() / T::of(numel(&x.shape()) as f64),
        Reduction::Sum => T::one(),
    }
}

/// `ln x`, but never below -100: `max(ln x, -100)`, which is how PyTorch's
/// `BCELoss` keeps `ln 0 = -inf` out of the loss.
///
/// The input is first clamped up to `e^-101` (a value whose log is below
/// -100, so the result is unchanged) so that `ln` never sees 0: otherwise
/// the backward pass would compute `0 / 0 = NaN` at `x = 0` even though the
/// outer clamp's derivative there is 0. In the clamped region (`x <=
/// e^-100`) the derivative is 0, the derivative of the constant -100.
fn clamped_log<'t, T: Element>(x: Var<'t, T>) -> Var<'t, T> {
    // e^-101 is about 1.4e-44: a normal f64, a subnormal f32 (whose nearest
    // value, 1.4e-44, still has ln = -100.98 < -100).
    let floor = T::of((-101.0f64).exp());
    x.clamp(floor, T::infinity()).log().clamp(T::of(-100.0), T::infinity())
}

/// Binary cross-entropy on probabilities `p` in [0, 1] against targets `t`
/// (usually in [0, 1] too):
///
/// ```text
/// bce(p, t) = reduce_i -( t_i max(ln p_i, -100) + (1 - t_i) max(ln(1 - p_i), -100) )
/// d/dp_i    = (p_i - t_i) / (p_i (1 - p_i))      away from the clamps
/// ```
///
/// As `torch.nn.BCELoss`: each log is clamped at -100, so a saturated
/// sigmoid (`p` exactly 0 or 1, which happens in `f32` for logits beyond
/// about ±17) gives a finite loss (at most 100 per element) instead of
/// infinity. Where a log is clamped its derivative is 0 (PyTorch instead
/// reports `(p - t) / max(p (1 - p), 1e-12)` there); through a sigmoid both
/// vanish anyway. Prefer [`bce_with_logits`] when you have the logits: it
/// needs no clamp at all. Panics if the shapes differ.
///
/// In plain ops this is [`bce_plain`]. It is recorded as the fused op
/// `loss_sum` (see `gradtape::ops::fused`): the same terms, summed in one
/// pass over the batch instead of about ten (the VAE spent a sixth of its
/// step in the plain ops), and their gradient in one.
#[track_caller]
pub fn bce<'t, T: Element>(prob: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    assert_same_shape("bce", ["prob", "target"], &prob, &target);
    prob.loss_sum(target, LossTerm::BinaryCrossEntropy, scale_for(reduction, &prob))
}

/// [`bce`] written in the engine's plain ops, node by node: what the fused
/// `loss_sum` computes in one pass, kept for reading and for the test that
/// checks the two against each other.
#[track_caller]
pub fn bce_plain<'t, T: Element>(prob: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    assert_same_shape("bce", ["prob", "target"], &prob, &target);
    let log_p = clamped_log(prob);
    let log_1mp = clamped_log(prob.rsub_scalar(T::one()));
    // t ln p + (1 - t) ln(1 - p), written as ln(1 - p) + t (ln p - ln(1 - p))
    // and negated after the reduction.
    let per_element = log_1mp + target * (log_p - log_1mp);
    reduce(per_element, reduction).neg()
}

/// Binary cross-entropy on logits `x` (the scores before the sigmoid):
/// `bce(sigmoid(x), t)` without ever forming `sigmoid(x)`.
///
/// ```text
/// bce_with_logits(x, t) = reduce_i max(x_i, 0) - x_i t_i + ln(1 + e^-|x_i|)
///                       = reduce_i softplus(x_i) - x_i t_i
/// d/dx_i                = sigmoid(x_i) - t_i
/// ```
///
/// As `torch.nn.BCEWithLogitsLoss`. Neither form overflows: `e^-|x|` is at
/// most 1. It is computed as `softplus(x) - x t`, because the engine's
/// softplus evaluates exactly `max(x, 0) + ln(1 + e^-|x|)`, and its recorded
/// derivative is `sigmoid(x)` everywhere. Spelling out
/// `relu(x) + softplus(-|x|)` instead would give the right value but the
/// wrong derivative at exactly `x = 0` (0 instead of 1/2), because `relu` and
/// `abs` both take derivative 0 at their kink. Panics if the shapes differ.
#[track_caller]
pub fn bce_with_logits<'t, T: Element>(
    logits: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Var<'t, T> {
    assert_same_shape("bce_with_logits", ["logits", "target"], &logits, &target);
    reduce(logits.softplus() - logits * target, reduction)
}

/// The Kullback-Leibler divergence of the encoder's diagonal Gaussian
/// `q = N(mu, diag(e^logvar))` from the prior `N(0, I)`, summed over every
/// element (every latent dimension of every sample):
///
/// ```text
/// KL(q || N(0, I)) = -1/2 sum_i (1 + logvar_i - mu_i^2 - e^logvar_i)
/// d/dmu_i = mu_i      d/dlogvar_i = (e^logvar_i - 1) / 2
/// ```
///
/// From Kingma and Welling, *Auto-Encoding Variational Bayes* (2014),
/// appendix B, and the PyTorch VAE example. It is 0 exactly when `mu = 0`
/// and `logvar = 0`. Taking the log-variance (not the standard deviation)
/// keeps the variance positive whatever the encoder outputs. Panics if the
/// shapes differ.
///
/// In plain ops this is
/// `(logvar.add_scalar(1) - mu.square() - logvar.exp()).sum() * -0.5`; it
/// is recorded as the fused op `loss_sum` (see `gradtape::ops::fused`), one
/// pass for the sum and one for both gradients.
#[track_caller]
pub fn kl_diag_gaussian<'t, T: Element>(mu: Var<'t, T>, logvar: Var<'t, T>) -> Var<'t, T> {
    assert_same_shape("kl_diag_gaussian", ["mu", "logvar"], &mu, &logvar);
    mu.loss_sum(logvar, LossTerm::GaussianKl, T::one())
}

/// [`kl_diag_gaussian`] averaged over the batch: the samples are along axis
/// 0 (rows of an `[n, k]` code), the latent dimensions are summed.
///
/// ```text
/// kl_mean = -1/(2n) sum_{r, j} (1 + logvar_rj - mu_rj^2 - e^logvar_rj)
/// ```
///
/// This puts the KL term on the same per-sample scale as a reconstruction
/// loss summed over pixels and averaged over the batch. Panics if the shapes
/// differ, on a 0-d input or an empty batch.
#[track_caller]
pub fn kl_diag_gaussian_mean<'t, T: Element>(mu: Var<'t, T>, logvar: Var<'t, T>) -> Var<'t, T> {
    assert_same_shape("kl_diag_gaussian_mean", ["mu", "logvar"], &mu, &logvar);
    let n = batch_rows("kl_diag_gaussian_mean", &mu);
    mu.loss_sum(logvar, LossTerm::GaussianKl, T::of(1.0 / n as f64))
}

/// The mean of the squared weights, an L2 penalty written as a loss:
///
/// ```text
/// mean_squared_weights(w) = (1/n) sum_i w_i^2          d/dw_i = 2 w_i / n
/// ```
pub fn mean_squared_weights<'t, T: Element>(w: Var<'t, T>) -> Var<'t, T> {
    w.square().mean()
}

/// The L2 (Frobenius) norm of the whole code tensor, as `torch.norm(code)`:
///
/// ```text
/// code_l2(c) = sqrt(sum_i c_i^2)          d/dc_i = c_i / code_l2(c)
/// ```
///
/// The derivative is undefined at `c = 0` (the engine gives NaN there;
/// PyTorch gives 0).
pub fn code_l2<'t, T: Element>(code: Var<'t, T>) -> Var<'t, T> {
    code.norm()
}

/// The L1 activity penalty of a sparse autoencoder: the L1 norm of each
/// sample's activations (a row of `h`, the samples along axis 0), averaged
/// over the batch:
///
/// ```text
/// l1_activity(h) = (1/n) sum_{r, j} |h_rj|          d/dh_rj = sign(h_rj) / n
/// ```
///
/// with `n` the number of rows, and derivative 0 where `h_rj = 0` (as
/// PyTorch's `abs`), which is where ReLU codes usually sit. Panics on a 0-d
/// input or an empty batch.
#[track_caller]
pub fn l1_activity<'t, T: Element>(h: Var<'t, T>) -> Var<'t, T> {
    let n = batch_rows("l1_activity", &h);
    h.abs().sum() * T::of(1.0 / n as f64)
}

/// The KL sparsity penalty of a sparse autoencoder: how far each hidden
/// unit's average activation `rho_hat_j` is from a small target `rho`,
/// measured as the Kullback-Leibler divergence between two coin flips
/// (Bernoulli distributions) with those probabilities, summed over units:
///
/// ```text
/// rho_hat_j        = (1/n) sum_r h_rj                  (the mean over the batch)
/// kl_sparsity(h)   = sum_j rho ln(rho / rho_hat_j) + (1 - rho) ln((1 - rho) / (1 - rho_hat_j))
/// d/dh_rj          = (1/n) ( -rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j) )
/// ```
///
/// From Andrew Ng's *Sparse autoencoder* lecture notes (CS294A). The
/// penalty is 0 exactly when every unit's mean is `rho`, and grows without
/// bound as a mean nears 0 or 1; unlike [`l1_activity`], which pushes every
/// activation towards 0, it lets a unit fire strongly on a few samples as
/// long as it is quiet on average.
///
/// `h` is `[n, k]`: `n` samples along axis 0, `k` units (any further axes
/// count as more units). The activations must be probabilities, strictly
/// inside `(0, 1)`, as a sigmoid gives; a unit whose mean is exactly 0 or 1
/// (a ReLU unit that never fires, say) makes the penalty infinite. Panics
/// unless `0 < rho < 1`, on a 0-d input or an empty batch.
///
/// It is recorded from the engine's ops (a mean, two logs, sums), so it
/// can be differentiated twice like every loss here.
///
/// ```
/// use gradtape::{Tape, Tensor};
/// use gradtape_models::losses::kl_sparsity;
///
/// let tape = Tape::<f64>::new();
/// // Two samples, two units: unit 0 averages 0.1 (on target), unit 1 0.5.
/// let h = tape.param(&Tensor::from_vec(vec![0.05, 0.4, 0.15, 0.6], &[2, 2]));
/// let penalty = kl_sparsity(h, 0.1);
/// let want = 0.1 * (0.1f64 / 0.5).ln() + 0.9 * (0.9f64 / 0.5).ln();
/// assert!((penalty.item() - want).abs() < 1e-12);
/// // Unit 0 is on target: its gradient is 0.
/// let g = penalty.backward();
/// assert!(g[h].data()[0].abs() < 1e-12 && g[h].data()[2].abs() < 1e-12);
/// ```
#[track_caller]
pub fn kl_sparsity<'t, T: Element>(h: Var<'t, T>, rho: f64) -> Var<'t, T> {
    assert!(rho > 0.0 && rho < 1.0, "kl_sparsity: the target rho = {rho} must lie strictly between 0 and 1");
    batch_rows("kl_sparsity", &h);
    let rho_hat = h.mean_axis(0, false);
    let units = numel(&rho_hat.shape());
    // The terms without rho_hat, rho ln rho + (1 - rho) ln(1 - rho), are the
    // same for every unit: a constant, computed once in f64.
    let constant = rho * rho.ln() + (1.0 - rho) * (1.0 - rho).ln();
    // - rho ln rho_hat_j - (1 - rho) ln(1 - rho_hat_j), summed over units.
    let cross = rho_hat.log().mul_scalar(T::of(rho))
        + rho_hat.rsub_scalar(T::one()).log().mul_scalar(T::of(1.0 - rho));
    cross.sum().neg().add_scalar(T::of(units as f64 * constant))
}
