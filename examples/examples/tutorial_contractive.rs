//! The contractive autoencoder tutorial: a penalty on how much the code
//! moves when the input moves, taken by double backward.
//!
//! 784 -> 64 sigmoid code -> 784 sigmoid output. The loss adds
//! `lambda * sum_j ||dh_j/dx||^2`, the squared Frobenius norm of the
//! encoder's Jacobian. Each row `dh_j/dx` is a gradient, taken with
//! `create_graph = true` so that it is itself recorded on the tape; the
//! final `backward` then differentiates through those gradients: a
//! gradient of a gradient. (One sweep per code unit, as the tutorial does;
//! the library's model takes all 64 rows in one batched sweep.)
//!
//! ```text
//! cargo run --release --example tutorial_contractive [-- --epochs 3 --train-limit 2000 --out runs/tutorial-contractive]
//! ```

use gradtape::{grad, Tape, Var};
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

struct Contractive {
    params: Params<f32>,
    encoder: Linear,
    decoder: Linear,
    lambda: f32,
}

impl Contractive {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let encoder = Linear::new(&mut params, "encoder", 784, 64, Init::PytorchDefault, &mut rng);
        let decoder = Linear::new(&mut params, "decoder", 64, 784, Init::PytorchDefault, &mut rng);
        Contractive { params, encoder, decoder, lambda: 1e-4 }
    }

    /// The reconstruction loss and the Jacobian penalty of a batch.
    fn losses<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> (Var<'t, f32>, Var<'t, f32>) {
        let h = self.encoder.forward(p, x).sigmoid();
        let out = self.decoder.forward(p, h).sigmoid();
        let mut penalty = x.tape().scalar(0.0);
        for j in 0..h.shape()[1] {
            // d(sum over the batch of h_j)/dx: row j of each input's Jacobian.
            let row = grad(&[h.column(j).sum()], &[x], None, true)[0];
            penalty = penalty + row.square().sum();
        }
        (mse(out, x, Reduction::Mean), penalty * (1.0 / x.shape()[0] as f32))
    }
}

/// The test reconstruction error and mean penalty.
fn evaluate(model: &Contractive, data: &Dataset) -> (f64, f64) {
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let (rec, pen) = model.losses(&p, tape.constant(&data.images));
    (rec.item() as f64, pen.item() as f64)
}

pub fn run(o: &Options) -> Result<Vec<f64>, Box<dyn Error>> {
    let split = MnistSplit::embedded();
    let (train, test) = (split.train.take(o.train_limit), split.test.take(200));
    let mut model = Contractive::new(0);
    let mut opt = Adam::<f32>::new(1e-3);
    let mut losses = Vec::new();
    for epoch in 1..=o.epochs {
        let mut sum = 0.0;
        for batch in Batches::new(&train, 128, epoch as u64, LastBatch::Keep) {
            let grads = {
                let tape = Tape::new();
                let p = model.params.bind(&tape);
                let (rec, penalty) = model.losses(&p, tape.constant(&batch.images));
                let loss = rec + penalty * model.lambda;
                sum += loss.item() as f64 * batch.labels.len() as f64;
                loss.backward().into_vec() // through the recorded gradients too
            };
            opt.step(&mut model.params.tensors_mut(), &grads);
        }
        let (rec, pen) = evaluate(&model, &test);
        print_epoch(epoch, o.epochs, sum / train.len() as f64, rec + model.lambda as f64 * pen);
        println!("           test ||J||_F^2 per digit {pen:.3}");
        losses.push(rec);
    }
    let shown = test.take(20);
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let h = model.encoder.forward(&p, tape.constant(&shown.images)).sigmoid();
    let rebuilt = model.decoder.forward(&p, h).sigmoid().value();
    let picture = o.out.join("reconstructions.png");
    pictures::reconstructions(&shown.images, &rebuilt, 28, 28, &picture)?;
    println!("wrote {}", picture.display());
    Ok(losses)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn Error>> {
    let defaults = Options { epochs: 3, train_limit: 2000, out: "runs/tutorial-contractive".into() };
    run(&Options::from_args(defaults)?)?;
    Ok(())
}
