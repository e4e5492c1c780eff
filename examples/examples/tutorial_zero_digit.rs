//! The first tutorial: an autoencoder that learns one 5x5 "zero".
//!
//! 25 pixels -> 10 ReLU units -> 25 sigmoid outputs, mean squared error,
//! Adam. The whole of autodiff it needs is `loss.backward()`.
//!
//! ```text
//! cargo run --release --example tutorial_zero_digit [-- --epochs 500 --out runs/tutorial-zero]
//! ```

use gradtape::{Tape, Tensor, Var};
use gradtape_examples::tutorial::{print_epoch, Options};
use gradtape_models::init::Init;
use gradtape_models::layers::Linear;
use gradtape_models::losses::{mse, Reduction};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::params::{Bound, Params};
use gradtape_models::pictures;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::error::Error;

/// The model: its parameters and the two layers that use them.
struct ZeroAutoencoder {
    params: Params<f32>,
    encoder: Linear,
    decoder: Linear,
}

impl ZeroAutoencoder {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Params::new();
        let encoder = Linear::new(&mut params, "encoder", 25, 10, Init::PytorchDefault, &mut rng);
        let decoder = Linear::new(&mut params, "decoder", 10, 25, Init::PytorchDefault, &mut rng);
        ZeroAutoencoder { params, encoder, decoder }
    }

    /// x -> relu(x W1^T + b1) -> sigmoid(h W2^T + b2)
    fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        let h = self.encoder.forward(p, x).relu();
        self.decoder.forward(p, h).sigmoid()
    }
}

/// The 5x5 zero, as a batch of one.
fn zero() -> Tensor<f32> {
    let pixels = [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0];
    Tensor::from_vec(pixels.iter().map(|&p| p as f32).collect(), &[1, 25])
}

/// Trains and draws; returns the loss after each epoch.
pub fn run(o: &Options) -> Result<Vec<f64>, Box<dyn Error>> {
    let digit = zero();
    let mut model = ZeroAutoencoder::new(0);
    let mut opt = Adam::<f32>::new(1e-2);
    let mut losses = Vec::new();
    for epoch in 1..=o.epochs {
        let (loss, grads) = {
            let tape = Tape::new();
            let p = model.params.bind(&tape);
            let x = tape.constant(&digit);
            let loss = mse(model.forward(&p, x), x, Reduction::Mean);
            (loss.item() as f64, loss.backward().into_vec())
        }; // the tape is dropped here, so the update below writes in place
        opt.step(&mut model.params.tensors_mut(), &grads);
        losses.push(loss);
        if epoch % (o.epochs / 10).max(1) == 0 || epoch == o.epochs {
            print_epoch(epoch, o.epochs, loss, loss);
        }
    }
    let tape = Tape::new();
    let p = model.params.bind(&tape);
    let rebuilt = model.forward(&p, tape.constant(&digit)).value();
    let picture = o.out.join("zero.png");
    pictures::reconstructions(&digit, &rebuilt, 5, 5, &picture)?;
    println!("wrote {} (the zero above its reconstruction)", picture.display());
    Ok(losses)
}

#[allow(dead_code)] // the tests call `run`
fn main() -> Result<(), Box<dyn Error>> {
    let defaults = Options { epochs: 500, train_limit: 1, out: "runs/tutorial-zero".into() };
    run(&Options::from_args(defaults)?)?;
    Ok(())
}
