//! The contractive autoencoder (Rifai et al., 2011).
//!
//! Network: `h = sigmoid(x W1^T + b1)` with `H` hidden units, then
//! `x' = sigmoid(h W2^T + b2)`. Loss:
//!
//! ```text
//! MSE(x', x) + lambda * (1/n) sum_n ||J_f(x_n)||_F^2,    J_f(x) = dh/dx
//! ```
//!
//! The penalty makes the code insensitive to small moves of the input. It
//! can be computed two ways, chosen by [`PenaltyMode`]:
//!
//! - **by double backward**: row `j` of the Jacobian, for every sample at
//!   once, is `grad(sum_n h[n, j], x, create_graph = true)` (samples are
//!   independent, so summing over the batch keeps them apart). Squaring and
//!   summing the rows gives the penalty, and because the rows were recorded,
//!   the penalty's gradient with respect to the weights is one more ordinary
//!   backward pass. This is what the engine exists for. By default all `H`
//!   rows come from one batched sweep ([`gradtape::jacobian_rows_factored`]:
//!   the batched cotangents `j` one-hot on unit `j`, kept in structured form
//!   so that the zeros are never multiplied, and each row left as the outer
//!   product `s'(a_n)_j W1[j, :]` of two recorded factors, so the sum of
//!   squares never writes the `[H, n, input]` rows out);
//!   [`PenaltyMode::DoubleBackwardRows`] writes them out first and
//!   [`PenaltyMode::DoubleBackwardLoop`] takes them one sweep per unit, as
//!   the tutorial's notebook does.
//! - **in closed form**: for a sigmoid encoder `dh_j/dx = h_j (1 - h_j) W1[j, :]`,
//!   so `||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W1_ji^2`.
//!
//! The tests check that the two agree, and so do their gradients.

use super::short_number;
use super::{Autoencoder, LossParts, ModelKind, StepCtx};
use crate::init::Init;
use crate::layers::Linear;
use crate::losses::{mse, Reduction};
use crate::params::{Bound, ParamId, Params};
use gradtape::{grad, jacobian_rows, jacobian_rows_factored, Act, Element, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::str::FromStr;

/// How the Jacobian penalty is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PenaltyMode {
    /// The Jacobian's rows by one batched `create_graph` sweep, kept as
    /// outer-product factors where the sweep leaves them so.
    DoubleBackward,
    /// The same sweep with every row written out before squaring.
    DoubleBackwardRows,
    /// The Jacobian's rows by one `create_graph` sweep per hidden unit.
    DoubleBackwardLoop,
    /// `sum_j (h_j(1-h_j))^2 sum_i W_ji^2`.
    ClosedForm,
}

impl FromStr for PenaltyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "double-backward" | "autodiff" => Ok(PenaltyMode::DoubleBackward),
            "double-backward-rows" | "rows" => Ok(PenaltyMode::DoubleBackwardRows),
            "double-backward-loop" | "loop" => Ok(PenaltyMode::DoubleBackwardLoop),
            "closed-form" | "closed" => Ok(PenaltyMode::ClosedForm),
            _ => Err(format!(
                "unknown penalty mode '{s}'; expected double-backward, double-backward-rows, double-backward-loop \
                 or closed-form"
            )),
        }
    }
}

/// Sizes and penalty of the contractive autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractiveConfig {
    /// Numbers per input (784 for MNIST).
    pub input: usize,
    /// Hidden units `H`: the code's length, and the number of Jacobian rows.
    pub hidden: usize,
    /// Weight of the Jacobian penalty.
    pub lambda: f64,
    /// How the penalty is computed; every mode gives the same value.
    pub penalty: PenaltyMode,
}

impl Default for ContractiveConfig {
    fn default() -> Self {
        ContractiveConfig { input: 784, hidden: 64, lambda: 0.1, penalty: PenaltyMode::DoubleBackward }
    }
}

/// Sigmoid encoder and decoder, Jacobian penalty.
#[derive(Clone, Debug)]
pub struct ContractiveAutoencoder<T: Element> {
    params: Params<T>,
    encoder: Linear,
    decoder: Linear,
    lambda: f64,
    penalty: PenaltyMode,
    training: bool,
}

impl<T: Element> ContractiveAutoencoder<T> {
    /// A model with PyTorch's default initialisation, seeded.
    pub fn new(config: &ContractiveConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let (i, h) = (config.input, config.hidden);
        let encoder = Linear::new(&mut params, "encoder", i, h, Init::PytorchDefault, &mut rng);
        let decoder = Linear::new(&mut params, "decoder", h, i, Init::PytorchDefault, &mut rng);
        ContractiveAutoencoder {
            params,
            encoder,
            decoder,
            lambda: config.lambda,
            penalty: config.penalty,
            training: true,
        }
    }

    /// The encoder layer.
    pub fn encoder(&self) -> Linear {
        self.encoder
    }

    /// The decoder layer.
    pub fn decoder(&self) -> Linear {
        self.decoder
    }

    /// The penalty weight.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// How the penalty is computed.
    pub fn penalty_mode(&self) -> PenaltyMode {
        self.penalty
    }

    /// Chooses how the penalty is computed.
    pub fn set_penalty_mode(&mut self, mode: PenaltyMode) {
        self.penalty = mode;
    }

    /// `sum_n ||dh_n/dx_n||_F^2` by double backward, all Jacobian rows in
    /// one batched sweep ([`jacobian_rows_factored`]): cotangent `j` is
    /// one-hot on hidden unit `j` for every sample, so result `j` is row `j`
    /// of each sample's Jacobian. For this one-layer encoder the sweep ends
    /// with the rows as outer products `d[j, n] W[j, :]`, and the sum of
    /// squares is taken from the two factors without writing the
    /// `[H, n, input]` rows out.
    /// `x` must be the variable `h` was computed from.
    pub fn penalty_by_batched_double_backward<'t>(&self, h: Var<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        jacobian_rows_factored(h, x, true).sum_squares()
    }

    /// The same sweep with the rows written out (`[H, n, input]`) before
    /// they are squared and summed: what the penalty costs without the
    /// factored form.
    pub fn penalty_by_written_out_rows<'t>(&self, h: Var<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        jacobian_rows(h, &[x], true)[0].sum_squares()
    }

    /// The same penalty with one recorded gradient per hidden unit (the
    /// notebook's loop).
    pub fn penalty_by_double_backward_loop<'t>(&self, h: Var<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let hidden = h.shape()[1];
        let mut total: Option<Var<'t, T>> = None;
        for j in 0..hidden {
            let row = grad(&[h.column(j).sum()], &[x], None, true)[0];
            let sq = row.sum_squares();
            total = Some(match total {
                Some(t) => t + sq,
                None => sq,
            });
        }
        total.unwrap_or_else(|| x.tape().scalar_on(T::zero(), x.value().device()))
    }

    /// `sum_n sum_j (h_nj (1 - h_nj))^2 sum_i W_ji^2`, the same quantity in
    /// closed form.
    pub fn penalty_closed_form<'t>(&self, p: &Bound<'t, T>, h: Var<'t, T>) -> Var<'t, T> {
        let slope = h * h.rsub_scalar(T::one()); // h (1 - h)
        let row_norms = p[self.encoder.weight].square().sum_axis(1, false); // sum_i W_ji^2
        (slope.square() * row_norms).sum()
    }

    /// The mean over a data set `[n, input]` of `||J_f(x)||_F`, the
    /// contraction measure of the CAE paper (closed form; no tape).
    pub fn mean_jacobian_norm(&self, data: &Tensor<T>) -> f64 {
        mean_jacobian_norm(self.params.get(self.encoder.weight), self.params.get(self.encoder.bias), data)
    }
}

/// The mean over `data` (`[n, input]`) of `||J_f(x)||_F` for a sigmoid
/// encoder `h = sigmoid(x W^T + b)`: per sample
/// `sqrt(sum_j (h_j (1 - h_j))^2 sum_i W_ji^2)`. A free function so that code
/// holding only the parameters (a checkpoint, a `dyn Autoencoder`) can
/// measure it without rebuilding the model.
pub fn mean_jacobian_norm<T: Element>(weight: &Tensor<T>, bias: &Tensor<T>, data: &Tensor<T>) -> f64 {
    // A measurement read back to the host: computed there.
    let (weight, bias, data) = (weight.to_cpu(), bias.to_cpu(), data.to_cpu());
    let h = data.matmul_t(&weight, false, true).add(&bias).sigmoid();
    let slope2 = h.map(|h| (h * (T::one() - h)).powi(2));
    let s = weight.square().sum_axis(1, true); // [H, 1]: sum_i W_ji^2
    let per_sample = slope2.matmul(&s); // [n, 1]
    let n = per_sample.len().max(1) as f64;
    per_sample.data().iter().map(|v| v.as_f64().sqrt()).sum::<f64>() / n
}

impl<T: Element> Autoencoder<T> for ContractiveAutoencoder<T> {
    fn kind(&self) -> ModelKind {
        ModelKind::Contractive
    }
    params_and_training_mode!();
    fn input_dim(&self) -> usize {
        self.encoder.in_features
    }
    fn latent_dim(&self) -> usize {
        self.encoder.out_features
    }
    fn first_layer(&self) -> ParamId {
        self.encoder.weight
    }
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.encoder.forward_act(p, x, Act::Sigmoid)
    }
    fn decode<'t>(&self, p: &Bound<'t, T>, z: Var<'t, T>, _: &mut StepCtx) -> Var<'t, T> {
        self.decoder.forward_act(p, z, Act::Sigmoid)
    }
    fn loss<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>, ctx: &mut StepCtx) -> LossParts<'t, T> {
        let h = self.encode(p, x, ctx);
        let out = self.decode(p, h, ctx);
        let rec = mse(out, x, Reduction::Mean);
        let n = T::of(x.shape()[0] as f64);
        let pen = match self.penalty {
            // The mean over the batch inside the fused sum of squares (one
            // node, where a division would add one forward and one back).
            PenaltyMode::DoubleBackward => {
                jacobian_rows_factored(h, x, true).scaled_sum_squares(T::one() / n)
            }
            PenaltyMode::DoubleBackwardRows => self.penalty_by_written_out_rows(h, x) / n,
            PenaltyMode::DoubleBackwardLoop => self.penalty_by_double_backward_loop(h, x) / n,
            PenaltyMode::ClosedForm => self.penalty_closed_form(p, h) / n,
        };
        let total = rec.add_scaled(pen, T::of(self.lambda));
        LossParts { total, parts: vec![("mse", rec), ("jacobian", pen)] }
    }
    fn describe(&self) -> String {
        let mode = match self.penalty {
            PenaltyMode::DoubleBackward => "by batched double backward",
            PenaltyMode::DoubleBackwardRows => "by batched double backward, rows written out",
            PenaltyMode::DoubleBackwardLoop => "by double backward, one sweep per unit",
            PenaltyMode::ClosedForm => "in closed form",
        };
        format!(
            "contractive {}-{}-{}, sigmoid, MSE + {} * ||J||_F^2 ({mode})",
            self.encoder.in_features,
            self.encoder.out_features,
            self.encoder.in_features,
            short_number(self.lambda)
        )
    }
}
