//! The deep autoencoder tutorial: MNIST digits through a 12-number code.
//!
//! 784 -> 128 -> 64 -> 12 with ReLUs, mirrored back to 784 with a tanh
//! output, mean squared error, Adam, mini-batches of 256.
//!
//! ```text
//! cargo run --release --example tutorial_deep [-- --epochs 10 --train-limit 8000 --out runs/tutorial-deep]
//! ```

use gradtape::{Tape, Var};
use gradtape_examples::tutorial::{print_epoch, Options};
use gradtape_models::data::{Batches, Dataset, LastBatch, MnistSplit};
use gradtape_models::init::Init;
use gradtape_models::layers::Linear;
use gradtape_models::losses::{mse, Reduction};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::params::{Bound, Params};
use gradtape_models::pictures;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::error::Error;

struct DeepAutoencoder {
    params: Params<f32>,
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
}

impl DeepAutoencoder {
    fn new(widths: &[usize], seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let mut layer = |name: String, a: usize, b: usize| {
            Linear::new(&mut params, &name, a, b, Init::PytorchDefault, &mut rng)
        };
        let encoder: Vec<Linear> = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| layer(format!("encoder.{}", 2 * i), w[0], w[1]))
            .collect();
        let decoder: Vec<Linear> = widths
            .windows(2)
            .rev()
            .enumerate()
            .map(|(i, w)| layer(format!("decoder.{}", 2 * i), w[1], w[0]))
            .collect();
        DeepAutoencoder { params, encoder, decoder }
    }

    /// ReLU between layers; the code is the last encoder layer's output.
    fn encode<'t>(&self, p: &Bound<'t, f32>, mut x: Var<'t, f32>) -> Var<'t, f32> {
        for (i, layer) in self.encoder.iter().enumerate() {
            x = layer.forward(p, x);
            if i + 1 < self.encoder.len() {
                x = x.relu();
            }
        }
        x
    }

    fn decode<'t>(&self, p: &Bound<'t, f32>, mut z: Var<'t, f32>) -> Var<'t, f32> {
        for (i, layer) in self.decoder.iter().enumerate() {
            z = layer.forward(p, z);
            z = if i + 1 < self.decoder.len() { z.relu() } else { z.tanh() };
        }
        z
    }

    fn loss<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        mse(self.decode(p, self.encode(p, x)), x, Reduction::Mean)
    }
}

/// The mean loss over a data set, in batches, with nothing kept.
fn mean_loss(model: &DeepAutoencoder, data: &Dataset) -> f64 {
    let mut total = 0.0;
    for batch in Batches::in_order(data, 500, LastBatch::Keep) {
        let tape = Tape::new();
        let p = model.params.bind(&tape);
        total += model.loss(&p, tape.constant(&batch.images)).item() as f64 * batch.labels.len() as f64;
    }
    total / data.len() as f64
}

pub fn run(o: &Options) -> Result<Vec<f64>, Box<dyn Error>> {
    let split = MnistSplit::embedded();
    let (train, test) = (split.train.take(o.train_limit), split.test.take(1000));
    let mut model = DeepAutoencoder::new(&[784, 128, 64, 12], 0);
    let mut opt = Adam::<f32>::new(1e-3);
    let mut losses = Vec::new();
    for epoch in 1..=o.epochs {
        let mut sum = 0.0;
        for batch in Batches::new(&train, 256, epoch as u64, LastBatch::Keep) {
            let grads = {
                let tape = Tape::new();
                let p = model.params.bind(&tape);
                let loss = model.loss(&p, tape.constant(&batch.images));
                sum += loss.item() as f64 * batch.labels.len() as f64;
                loss.backward().into_vec()
            };
            opt.step(&mut model.params.tensors_mut(), &grads);
        }
        let test_loss = mean_loss(&model, &test);
        print_epoch(epoch, o.epochs, sum / train.len() as f64, test_loss);
        losses.push(test_loss);
    }
    let shown = test.take(20);
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let x = tape.constant(&shown.images);
    let rebuilt = model.decode(&p, model.encode(&p, x)).value();
    let picture = o.out.join("reconstructions.png");
    pictures::reconstructions(&shown.images, &rebuilt, 28, 28, &picture)?;
    println!("wrote {}", picture.display());
    Ok(losses)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn Error>> {
    let defaults = Options { epochs: 10, train_limit: 8000, out: "runs/tutorial-deep".into() };
    run(&Options::from_args(defaults)?)?;
    Ok(())
}
