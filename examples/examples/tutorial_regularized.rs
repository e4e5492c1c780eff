//! The regularisation tutorial: weight decay and dropout, then the same
//! network as a denoising autoencoder.
//!
//! 784 -> 64 -> 2 (ReLU), dropout on the 2-number code, 2 -> 64 -> 784;
//! loss = MSE + gamma * the mean squared weight of every layer. The
//! denoising twin is the same model fed digits with 20% of their pixels
//! zeroed (masking noise) and asked for the clean digit back.
//!
//! ```text
//! cargo run --release --example tutorial_regularized [-- --epochs 10 --train-limit 8000 --out runs/tutorial-regularized]
//! ```

use gradtape::{Tape, Tensor, Var};
use gradtape_examples::tutorial::{print_epoch, Options};
use gradtape_models::data::{masking_noise, Batches, Dataset, LastBatch, MnistSplit};
use gradtape_models::init::Init;
use gradtape_models::layers::{Dropout, Linear};
use gradtape_models::losses::{mean_squared_weights, mse, Reduction};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::params::{Bound, Params};
use gradtape_models::pictures;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::error::Error;

struct Regularized {
    params: Params<f32>,
    layers: [Linear; 4],
    dropout: Dropout,
    gamma: f32,
}

impl Regularized {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let mut layer =
            |name: &str, a, b| Linear::new(&mut params, name, a, b, Init::PytorchDefault, &mut rng);
        let layers = [
            layer("encoder.0", 784, 64),
            layer("encoder.2", 64, 2),
            layer("decoder.1", 2, 64),
            layer("decoder.3", 64, 784),
        ];
        Regularized { params, layers, dropout: Dropout::new(0.8), gamma: 1e-2 }
    }

    /// The reconstruction of `input`, with dropout on the code in training.
    fn forward<'t>(
        &self,
        p: &Bound<'t, f32>,
        input: Var<'t, f32>,
        training: bool,
        rng: &mut StdRng,
    ) -> Var<'t, f32> {
        let [l0, l1, l2, l3] = &self.layers;
        let code = l1.forward(p, l0.forward(p, input).relu());
        let code = self.dropout.apply(code, training, rng);
        l3.forward(p, l2.forward(p, code).relu())
    }

    /// MSE against the clean `target`, plus the weight penalty.
    fn loss<'t>(
        &self,
        p: &Bound<'t, f32>,
        input: Var<'t, f32>,
        target: Var<'t, f32>,
        rng: &mut StdRng,
    ) -> Var<'t, f32> {
        let rec = mse(self.forward(p, input, true, rng), target, Reduction::Mean);
        let penalty =
            self.layers.iter().map(|l| mean_squared_weights(p[l.weight])).reduce(|a, b| a + b).unwrap();
        rec + penalty * self.gamma
    }
}

/// Test MSE (no dropout) of reconstructing `clean` from `input`.
fn test_mse(model: &Regularized, input: &Tensor<f32>, clean: &Tensor<f32>) -> f64 {
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let out = model.forward(&p, tape.constant(input), false, &mut StdRng::seed_from_u64(0));
    mse(out, tape.constant(clean), Reduction::Mean).item() as f64
}

/// Trains one model, with masking noise of `noise` on its inputs (0: none).
fn train(o: &Options, train: &Dataset, test: &Dataset, noise: f64) -> (Regularized, Vec<f64>) {
    let mut model = Regularized::new(0);
    let mut opt = Adam::<f32>::new(1e-3);
    let mut rng = StdRng::seed_from_u64(1);
    let noisy_test = masking_noise(&test.images, noise, &mut StdRng::seed_from_u64(2));
    let mut losses = Vec::new();
    for epoch in 1..=o.epochs {
        let mut sum = 0.0;
        for batch in Batches::new(train, 256, epoch as u64, LastBatch::Keep) {
            let input = masking_noise(&batch.images, noise, &mut rng);
            let grads = {
                let tape = Tape::new();
                let p = model.params.bind(&tape);
                let loss = model.loss(&p, tape.constant(&input), tape.constant(&batch.images), &mut rng);
                sum += loss.item() as f64 * batch.labels.len() as f64;
                loss.backward().into_vec()
            };
            opt.step(&mut model.params.tensors_mut(), &grads);
        }
        let test_loss = test_mse(&model, &noisy_test, &test.images);
        print_epoch(epoch, o.epochs, sum / train.len() as f64, test_loss);
        losses.push(test_loss);
    }
    (model, losses)
}

pub fn run(o: &Options) -> Result<Vec<f64>, Box<dyn Error>> {
    let split = MnistSplit::embedded();
    let (train_set, test) = (split.train.take(o.train_limit), split.test.take(1000));
    println!("weight decay and dropout:");
    let (_, mut losses) = train(o, &train_set, &test, 0.0);
    println!("the denoising twin (masking noise 0.2):");
    let (denoiser, denoising_losses) = train(o, &train_set, &test, 0.2);
    losses.extend(denoising_losses);

    let clean = test.take(8).images;
    let noisy = masking_noise(&clean, 0.2, &mut StdRng::seed_from_u64(3));
    let tape = Tape::new();
    let p = denoiser.params.bind(&tape);
    let out = denoiser.forward(&p, tape.constant(&noisy), false, &mut StdRng::seed_from_u64(0)).value();
    let picture = o.out.join("denoising.png");
    pictures::denoising(&noisy, &out, &clean, 28, 28, &picture)?;
    println!("wrote {} (noisy | denoised | clean)", picture.display());
    Ok(losses)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn Error>> {
    let defaults = Options { epochs: 10, train_limit: 8000, out: "runs/tutorial-regularized".into() };
    run(&Options::from_args(defaults)?)?;
    Ok(())
}
