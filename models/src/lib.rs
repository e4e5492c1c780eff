//! # gradtape-models: layers, losses, optimisers, data, checkpoints and the autoencoders
//!
//! - [`data`]: MNIST-format IDX files, the built-in 10,000 digits, seeded
//!   mini-batches and input noise;
//! - [`checkpoint`]: saving and loading named parameters as safetensors.

pub mod checkpoint;
pub mod data;
pub mod losses;
pub mod optim;
