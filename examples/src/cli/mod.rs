//! The `gradtape` command line: train an autoencoder and look at what it
//! learned.
//!
//! ```text
//! gradtape train vae                      # embedded MNIST, pictures in runs/vae
//! gradtape train deep --epochs 3 --out runs/deep3
//! gradtape train contractive --resume --out runs/contractive
//! gradtape sample --checkpoint runs/vae/checkpoint.safetensors
//! gradtape reconstruct --checkpoint runs/deep/checkpoint.safetensors
//! gradtape encode --checkpoint runs/regularized/checkpoint.safetensors --out codes.csv
//! gradtape train deep --init-from torch_deep.safetensors   # weights saved by PyTorch
//! gradtape reconstruct --weights torch_vae.safetensors --model vae --csv recon.csv
//! ```
//!
//! Errors in what the user typed or pointed at print one line naming the
//! problem and the flag, and exit with code 2, before anything is written.

pub mod graph;
pub mod inspect;
pub mod output;
pub mod progress;
pub mod report;
pub mod run_folder;
pub mod snapshot;
pub mod train;
pub mod training;

use clap::{Parser, Subcommand};
use std::fmt;
use std::path::PathBuf;

/// Train autoencoders from scratch on a hand-written autodiff engine.
#[derive(Parser, Debug)]
#[command(name = "gradtape", version, long_about = None)]
pub struct Cli {
    /// The command to run, with its options.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands `gradtape` takes, one variant each, holding that command's options.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (zero-digit, deep, regularized, denoising, contractive, vae)
    /// and write checkpoints, pictures and index.html to the run folder.
    // Boxed: its options are several times the size of the other commands'.
    Train(Box<train::TrainArgs>),
    /// Decode random points of the latent space (or given ones) into images.
    Sample(inspect::SampleArgs),
    /// Reconstruct test images with a trained model.
    Reconstruct(inspect::ReconstructArgs),
    /// Write the latent codes of a data set to CSV.
    Encode(inspect::EncodeArgs),
    /// Draw one training step's tape as a Graphviz graph (DOT, and SVG when
    /// `dot` is installed).
    Graph(graph::GraphArgs),
}

/// A failure to report: a one-line message and the exit code (2 for bad
/// input, 1 for anything else).
#[derive(Debug)]
pub struct CliError {
    /// What went wrong, in one line, naming the flag or file at fault.
    pub message: String,
    /// The process's exit code: 1, 2 or 3, as the constructors below say.
    pub code: u8,
}

impl CliError {
    /// Bad input from the user: exit code 2.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: 2 }
    }

    /// Something failed while working: exit code 1.
    pub fn failure(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: 1 }
    }

    /// Training diverged (a non-finite loss): exit code 3, so that a script
    /// can tell it from a mistake in the input (2) or a failure (1).
    pub fn diverged(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: 3 }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// The processor, with the library's own kernels.
    Cpu,
    /// The first CUDA GPU (needs the `cuda` feature).
    Cuda,
}

/// The device `--device` names, once it is known to work; refuses devices
/// this machine or build cannot use, naming the flag and the cause: no
/// `cuda` feature, no driver, no GPU, no NVRTC or cuBLAS, a kernel that did
/// not compile (see `gradtape_kernels::device`).
pub fn check_device(device: Device) -> Result<gradtape_kernels::Device, CliError> {
    match device {
        Device::Cpu => Ok(gradtape_kernels::Device::Cpu),
        Device::Cuda => gradtape_kernels::Device::cuda(0)
            .map_err(|e| CliError::usage(format!("--device cuda: {e}; use --device cpu"))),
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Sample(args) => inspect::sample(args),
        Command::Reconstruct(args) => inspect::reconstruct(args),
        Command::Encode(args) => inspect::encode(args),
        Command::Graph(args) => graph::run(args),
    }
}

/// The default run folder for a model: `runs/<model>`.
pub fn default_out(model: &str) -> PathBuf {
    PathBuf::from("runs").join(model)
}
