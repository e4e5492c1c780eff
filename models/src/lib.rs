//! # gradtape-models: layers, losses, optimisers, data, checkpoints and the autoencoders
//!
//! - [`data`]: MNIST-format IDX files, the built-in 10,000 digits, seeded
//!   mini-batches and input noise;
//! - [`checkpoint`]: saving and loading named parameters as safetensors;
//! - [`state_dict`]: building a model from named tensors (PyTorch weights in);
//! - `pictures` (with the `pictures` feature): reconstructions, filters,
//!   latent maps and loss curves drawn as PNG files.

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml): mark items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The `rand` crate this one is built against, re-exported so that a
/// program can make the random number generator that [`layers::Linear::new`]
/// and [`init::Init`] take without naming `rand` (and a matching version of
/// it) among its own dependencies:
///
/// ```
/// use gradtape_models::init::Init;
/// use gradtape_models::layers::Linear;
/// use gradtape_models::params::Params;
/// use gradtape_models::rand::{rngs::StdRng, SeedableRng};
///
/// let mut rng = StdRng::seed_from_u64(0); // the same seed, the same weights
/// let mut params = Params::<f32>::new();
/// let layer = Linear::new(&mut params, "encoder", 784, 64, Init::PytorchDefault, &mut rng);
/// assert_eq!(params.get(layer.weight).shape(), &[64, 784]);
/// ```
pub use rand;

pub mod autoencoders;
pub mod checkpoint;
pub mod data;
pub mod files;
pub mod init;
pub mod layers;
pub mod losses;
pub mod optim;
pub mod params;
#[cfg(feature = "pictures")]
pub mod pictures;
mod safetensors_header;
pub mod spec;
pub mod state_dict;
pub mod train;
