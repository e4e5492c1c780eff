//! A fixed number of training steps of one of `bench`'s CPU workloads,
//! untimed, for counting instructions: steady under `valgrind
//! --tool=callgrind` where timings on a shared machine are not. The cost
//! of a step is the difference of two counts over the difference of their
//! steps (one rayon thread, so that idle workers add nothing):
//!
//! ```text
//! cargo build --release --example step_count
//! RAYON_NUM_THREADS=1 valgrind --tool=callgrind target/release/examples/step_count vae 10
//! RAYON_NUM_THREADS=1 valgrind --tool=callgrind target/release/examples/step_count vae 30
//! ```

use gradtape::{Tape, Tensor};
use gradtape_models::autoencoders::*;
use gradtape_models::data::MnistSplit;
use gradtape_models::optim::Adam;
use gradtape_models::train::train_step;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "vae".into());
    let steps: usize = args.next().map_or(10, |a| a.parse().expect("a number of steps"));
    let (mut model, batch): (Box<dyn Autoencoder<f32>>, usize) = match name.as_str() {
        "deep_ae" => (Box::new(DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0)), 256),
        "vae" => (Box::new(Vae::<f32>::new(&VaeConfig::default(), 0)), 64),
        "cae_mnist" => {
            let config = ContractiveConfig {
                input: 784,
                hidden: 64,
                lambda: 1e-4,
                penalty: PenaltyMode::DoubleBackward,
            };
            (Box::new(ContractiveAutoencoder::<f32>::new(&config, 0)), 128)
        }
        other => panic!("step_count: unknown workload {other} (deep_ae, vae or cae_mnist)"),
    };
    let train = MnistSplit::embedded().train;
    let images: Tensor<f32> = train.take(batch * 8).images;
    let mut opt = Adam::new(1e-3);
    let mut tape = Tape::with_capacity(1024);
    let mut loss = 0.0;
    for k in 0..steps {
        let b = images.slice_axis(0, (k % 8) * batch, batch);
        loss = train_step(model.as_mut(), &mut opt, &mut tape, &b, k as u64);
    }
    println!("{name}: {steps} steps, last loss {loss:.5}");
}
