//! A sparse autoencoder written as a library user would write it: only the
//! public API of `gradtape` and `gradtape-models`, nothing of this crate.
//!
//! ```text
//! cargo run --release --example sparse_autoencoder [-- --epochs 5 --train-limit 4000 --hidden 64]
//! ```
//!
//! The model is one hidden layer of sigmoid units, `784 -> hidden -> 784`,
//! trained to give back its input. What makes it *sparse* is the loss, in
//! the form of Andrew Ng's lecture notes:
//!
//! ```text
//! J(W, b) = (1/2n) sum_r ||x_r' - x_r||^2                 reconstruction
//!         + beta sum_j KL(rho || rho_hat_j)                 sparsity
//!         + (lambda/2) (||W_enc||^2 + ||W_dec||^2)          weight decay
//! ```
//!
//! where `rho_hat_j` is hidden unit `j`'s average activation over the batch
//! and `rho` a small target (0.1): each unit should fire on a few digits,
//! not on all of them (`gradtape_models::losses::kl_sparsity`).
//!
//! After training, the program checks the curvature of `J` with respect to
//! the encoder's weight and bias alone (the decoder held fixed): the
//! Hessian-vector product `H v` by `gradtape::functional::hvp`, against
//! central differences of the gradient `functional::grad` along `v`,
//!
//! ```text
//! H v  ~  (grad J(w + eps v) - grad J(w - eps v)) / (2 eps)
//! ```
//!
//! in f64. `Params::bind_with` is what makes "with respect to the encoder
//! alone" one line: it binds the model with the chosen parameters replaced
//! by the transform's variables and the others read in as constants.

use gradtape::functional::{grad, hvp};
use gradtape::{Element, Tape, Tensor, Var};
use gradtape_models::data::{Batches, LastBatch, MnistSplit};
use gradtape_models::init::Init;
use gradtape_models::layers::Linear;
use gradtape_models::losses::{kl_sparsity, mse, Reduction};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::params::{Bound, ParamId, Params};
use gradtape_models::rand::{rngs::StdRng, SeedableRng};
use std::io::Write;

/// The target mean activation of each hidden unit.
const RHO: f64 = 0.1;
/// Weight of the sparsity penalty.
const BETA: f64 = 3.0;
/// Weight of the weight decay.
const LAMBDA: f64 = 1e-4;
/// The step of the central differences.
const EPS: f64 = 1e-5;
/// The most relative error the curvature check accepts.
const TOLERANCE: f64 = 1e-6;

/// What a run is asked to do.
pub struct Settings {
    /// Passes over the training digits.
    pub epochs: usize,
    /// How many of the built-in training digits to use.
    pub train_limit: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Digits in the batch the curvature is checked on.
    pub check_batch: usize,
}

/// What a run found.
#[allow(dead_code)] // the program prints it; the test reads it
pub struct Report {
    /// The training objective `J`, averaged over each epoch's batches.
    pub losses: Vec<f64>,
    /// The hidden units' mean activation on the check batch, after training.
    pub mean_activation: f64,
    /// `||H v - differences|| / ||H v||` of the curvature check.
    pub hvp_relative_error: f64,
}

/// The network: its parameters and the two layers that name them.
struct SparseAutoencoder<T: Element> {
    params: Params<T>,
    encoder: Linear,
    decoder: Linear,
}

/// The three parts of the objective, each recorded.
struct Objective<'t, T: Element> {
    reconstruction: Var<'t, T>,
    sparsity: Var<'t, T>,
    decay: Var<'t, T>,
}

impl<'t, T: Element> Objective<'t, T> {
    /// `J`, the number that training makes small.
    fn total(&self) -> Var<'t, T> {
        self.reconstruction + self.sparsity + self.decay
    }
}

impl SparseAutoencoder<f32> {
    fn new(hidden: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let encoder = Linear::new(&mut params, "encoder", 784, hidden, Init::PytorchDefault, &mut rng);
        let decoder = Linear::new(&mut params, "decoder", hidden, 784, Init::PytorchDefault, &mut rng);
        SparseAutoencoder { params, encoder, decoder }
    }

    /// The same network in f64, for the curvature check.
    fn to_f64(&self) -> SparseAutoencoder<f64> {
        SparseAutoencoder { params: self.params.cast(), encoder: self.encoder, decoder: self.decoder }
    }
}

impl<T: Element> SparseAutoencoder<T> {
    /// The hidden activations, in (0, 1) as `kl_sparsity` needs.
    fn encode<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        self.encoder.forward(p, x).sigmoid()
    }

    fn objective<'t>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Objective<'t, T> {
        let n = x.shape()[0] as f64;
        let h = self.encode(p, x);
        let rebuilt = self.decoder.forward(p, h).sigmoid();
        Objective {
            reconstruction: mse(rebuilt, x, Reduction::Sum).mul_scalar(T::of(0.5 / n)),
            sparsity: kl_sparsity(h, RHO).mul_scalar(T::of(BETA)),
            decay: (p[self.encoder.weight].sum_squares() + p[self.decoder.weight].sum_squares())
                .mul_scalar(T::of(LAMBDA / 2.0)),
        }
    }
}

impl SparseAutoencoder<f64> {
    /// `J` on the batch `x` as a function of the parameters `chosen` alone,
    /// given as `vars` (the others held at their values): the form the
    /// functional transforms take.
    fn objective_in<'t>(
        &self,
        chosen: &[ParamId],
        x: &Tensor<f64>,
        tape: &'t Tape<f64>,
        vars: &[Var<'t, f64>],
    ) -> Var<'t, f64> {
        let replace: Vec<(ParamId, Var<'t, f64>)> =
            chosen.iter().copied().zip(vars.iter().copied()).collect();
        let p = self.params.bind_with(tape, &replace);
        self.objective(&p, tape.constant(x)).total()
    }
}

/// Trains, then checks the curvature; writes what it does to `out`.
pub fn run(s: &Settings, out: &mut dyn Write) -> Result<Report, Box<dyn std::error::Error>> {
    let split = MnistSplit::embedded();
    let train = split.train.take(s.train_limit);
    let mut model = SparseAutoencoder::new(s.hidden, 0);
    let mut opt = Adam::<f32>::new(3e-3);
    writeln!(out, "sparse autoencoder 784-{}-784, rho {RHO}, beta {BETA}, lambda {LAMBDA}", s.hidden)?;
    let mut losses = Vec::new();
    for epoch in 1..=s.epochs {
        let (mut sums, mut batches) = ([0.0f64; 4], 0);
        for batch in Batches::new(&train, 64, epoch as u64, LastBatch::Keep) {
            let grads = {
                let tape = Tape::new();
                let p = model.params.bind(&tape);
                let j = model.objective(&p, tape.constant(&batch.images));
                let total = j.total();
                for (sum, part) in sums.iter_mut().zip([total, j.reconstruction, j.sparsity, j.decay]) {
                    *sum += part.item() as f64;
                }
                total.backward().into_vec()
            };
            opt.step(&mut model.params.tensors_mut(), &grads);
            batches += 1;
        }
        let [total, rec, kl, decay] = sums.map(|x| x / batches as f64);
        writeln!(
            out,
            "epoch {epoch}/{}  loss {total:.5}  (reconstruction {rec:.5}, sparsity {kl:.5}, decay {decay:.5})",
            s.epochs
        )?;
        if !total.is_finite() {
            return Err(format!("training diverged: loss {total} at epoch {epoch}").into());
        }
        losses.push(total);
    }

    // The curvature check, in f64, on a fixed batch of held-out digits.
    let model = model.to_f64();
    let x = split.test.take(s.check_batch).images.cast::<f64>();
    let mean_activation = {
        let tape = Tape::new();
        let p = model.params.bind(&tape);
        model.encode(&p, tape.constant(&x)).mean().item()
    };
    writeln!(out, "mean hidden activation {mean_activation:.4} (target {RHO})")?;

    // J as a function of the encoder's weight (found by name) and bias
    // alone: bind_with puts the transform's variables in their place.
    let weight = model.params.id("encoder.weight").ok_or("no parameter named encoder.weight")?;
    let chosen: [ParamId; 2] = [weight, model.encoder.bias];
    let at: Vec<Tensor<f64>> = chosen.iter().map(|&id| model.params.get(id).clone()).collect();
    let v: Vec<Tensor<f64>> =
        at.iter().enumerate().map(|(k, w)| Tensor::normal(w.shape(), 0.0, 1.0, 7 + k as u64)).collect();
    let (value, hv) = hvp(|tape, vars| model.objective_in(&chosen, &x, tape, vars), &at, &v);
    let gradient_at = |t: f64| {
        let shifted: Vec<Tensor<f64>> = at.iter().zip(&v).map(|(w, v)| w.add(&v.mul_scalar(t))).collect();
        grad(|tape, vars| model.objective_in(&chosen, &x, tape, vars), &shifted)
    };
    let (plus, minus) = (gradient_at(EPS), gradient_at(-EPS));
    let (mut diff2, mut norm2) = (0.0, 0.0);
    for ((h, p), m) in hv.iter().zip(&plus).zip(&minus) {
        for ((&h, &p), &m) in h.data().iter().zip(p.data()).zip(m.data()) {
            let numeric = (p - m) / (2.0 * EPS);
            diff2 += (h - numeric) * (h - numeric);
            norm2 += h * h;
        }
    }
    let relative = (diff2 / norm2).sqrt();
    writeln!(
        out,
        "J on {} test digits = {:.6}; H v in encoder.weight and encoder.bias against central differences \
         of grad: relative error {relative:.3e}",
        s.check_batch,
        value.item()
    )?;
    // Written so that NaN fails: NaN < TOLERANCE is false.
    if !(relative < TOLERANCE && norm2 > 0.0) {
        return Err(
            format!("H v disagrees with differences of the gradient: relative error {relative:e}").into()
        );
    }
    writeln!(out, "curvature check passed (relative error below {TOLERANCE:e})")?;
    Ok(Report { losses, mean_activation, hvp_relative_error: relative })
}

/// `--epochs N`, `--train-limit N`, `--hidden N` and `--check-batch N`.
#[allow(dead_code)] // main's; the tests give their own settings
fn settings_from_args() -> Result<Settings, String> {
    let mut s = Settings { epochs: 5, train_limit: 4000, hidden: 64, check_batch: 64 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag}: needs a value"))?;
        let number = value.parse::<usize>().map_err(|_| format!("{flag} {value}: not a whole number"))?;
        if number == 0 {
            return Err(format!("{flag}: must be at least 1"));
        }
        match flag.as_str() {
            "--epochs" => s.epochs = number,
            "--train-limit" => s.train_limit = number,
            "--hidden" => s.hidden = number,
            "--check-batch" => s.check_batch = number,
            _ => {
                return Err(format!(
                    "{flag}: unknown option (--epochs, --train-limit, --hidden, --check-batch)"
                ))
            }
        }
    }
    Ok(s)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&settings_from_args()?, &mut std::io::stdout())?;
    Ok(())
}
