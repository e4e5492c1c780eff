//! The variational autoencoder tutorial: the encoder gives a distribution,
//! the code is sampled from it, and random codes decode to new digits.
//!
//! 784 -> 128 (ReLU) -> mu and log-variance of a 2-D Gaussian; the code is
//! `z = mu + exp(logvar / 2) * eps` with `eps ~ N(0, I)` (the
//! reparameterisation: the randomness is an input, so gradients reach mu
//! and logvar through an ordinary product and sum); 2 -> 128 (ReLU) -> 784
//! sigmoid. Loss per digit: binary cross-entropy summed over pixels plus
//! the KL divergence from N(0, I).
//!
//! ```text
//! cargo run --release --example tutorial_vae [-- --epochs 10 --train-limit 8000 --out runs/tutorial-vae]
//! ```

use gradtape::{Tape, Tensor, Var};
use gradtape_examples::tutorial::{print_epoch, Options};
use gradtape_models::data::{Batches, Dataset, LastBatch, MnistSplit};
use gradtape_models::init::Init;
use gradtape_models::layers::Linear;
use gradtape_models::losses::{bce, kl_diag_gaussian, Reduction};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::params::{Bound, Params};
use gradtape_models::pictures;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::error::Error;

const LATENT: usize = 2;

struct Vae {
    params: Params<f32>,
    hidden: Linear,
    mu: Linear,
    logvar: Linear,
    dec_hidden: Linear,
    dec_out: Linear,
}

impl Vae {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let mut layer =
            |name: &str, a, b| Linear::new(&mut params, name, a, b, Init::PytorchDefault, &mut rng);
        let (hidden, mu, logvar) = (
            layer("encoder.hidden", 784, 128),
            layer("encoder.mu", 128, LATENT),
            layer("encoder.logvar", 128, LATENT),
        );
        let (dec_hidden, dec_out) = (layer("decoder.hidden", LATENT, 128), layer("decoder.out", 128, 784));
        Vae { params, hidden, mu, logvar, dec_hidden, dec_out }
    }

    fn decode<'t>(&self, p: &Bound<'t, f32>, z: Var<'t, f32>) -> Var<'t, f32> {
        self.dec_out.forward(p, self.dec_hidden.forward(p, z).relu()).sigmoid()
    }

    /// The loss per digit of a batch, with the draws `eps` given.
    fn loss<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>, eps: &Tensor<f32>) -> Var<'t, f32> {
        let h = self.hidden.forward(p, x).relu();
        let (mu, logvar) = (self.mu.forward(p, h), self.logvar.forward(p, h));
        let z = mu + (logvar * 0.5).exp() * x.tape().constant(eps);
        let n = x.shape()[0] as f32;
        (bce(self.decode(p, z), x, Reduction::Sum) + kl_diag_gaussian(mu, logvar)) * (1.0 / n)
    }
}

fn mean_loss(model: &Vae, data: &Dataset, seed: u64) -> f64 {
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let eps = Tensor::normal(&[data.len(), LATENT], 0.0, 1.0, seed);
    model.loss(&p, tape.constant(&data.images), &eps).item() as f64
}

pub fn run(o: &Options) -> Result<Vec<f64>, Box<dyn Error>> {
    let split = MnistSplit::embedded();
    let (train, test) = (split.train.take(o.train_limit), split.test.take(1000));
    let mut model = Vae::new(0);
    let mut opt = Adam::<f32>::new(1e-3);
    let mut losses = Vec::new();
    for epoch in 1..=o.epochs {
        let mut sum = 0.0;
        for (step, batch) in Batches::new(&train, 64, epoch as u64, LastBatch::Keep).enumerate() {
            let eps =
                Tensor::normal(&[batch.labels.len(), LATENT], 0.0, 1.0, (epoch * 100_000 + step) as u64);
            let grads = {
                let tape = Tape::new();
                let p = model.params.bind(&tape);
                let loss = model.loss(&p, tape.constant(&batch.images), &eps);
                sum += loss.item() as f64 * batch.labels.len() as f64;
                loss.backward().into_vec()
            };
            opt.step(&mut model.params.tensors_mut(), &grads);
        }
        let test_loss = mean_loss(&model, &test, 7);
        print_epoch(epoch, o.epochs, sum / train.len() as f64, test_loss);
        losses.push(test_loss);
    }
    // New digits: codes drawn from the prior N(0, I), decoded.
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let z = tape.constant(&Tensor::normal(&[100, LATENT], 0.0, 1.0, 11));
    let digits = model.decode(&p, z).value();
    let picture = o.out.join("generations.png");
    pictures::generations(&digits, 10, 28, 28, &picture)?;
    println!("wrote {} (100 digits decoded from random codes)", picture.display());
    Ok(losses)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn Error>> {
    let defaults = Options { epochs: 10, train_limit: 8000, out: "runs/tutorial-vae".into() };
    run(&Options::from_args(defaults)?)?;
    Ok(())
}
