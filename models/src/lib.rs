//! # gradtape-models: layers, losses, optimisers, data, checkpoints and the autoencoders
//!
//! - [`data`]: MNIST-format IDX files, the built-in 10,000 digits, seeded
//!   mini-batches and input noise;
//! - [`checkpoint`]: saving and loading named parameters as safetensors;
//! - [`state_dict`]: building a model from named tensors (PyTorch weights in).

// docs.rs (`--cfg docsrs`, see Cargo.toml): mark items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod autoencoders;
pub mod checkpoint;
pub mod data;
pub mod files;
pub mod init;
pub mod layers;
pub mod losses;
pub mod optim;
pub mod params;
mod safetensors_header;
pub mod spec;
pub mod state_dict;
pub mod train;
