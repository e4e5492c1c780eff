//! # gradtape-verify: proving the gradients right
//!
//! Three independent witnesses for every gradient the engine computes:
//!
//! 1. **Derivations by hand** ([`derivations`]): each autoencoder's
//!    gradients as plain matrix formulas, the way you would derive them on
//!    paper, compared with autodiff on the model's real training loss.
//! 2. **Finite differences** ([`gradcheck`](mod@gradcheck)): `gradcheck` and
//!    `gradgradcheck`, after `torch.autograd.gradcheck`, on every op and on
//!    every model's loss as a function of all its parameters.
//! 3. **An outside reference** ([`reference`](mod@reference)): the losses and gradients
//!    PyTorch computes for small versions of the same models, stored in
//!    `verify/reference/`.
//!
//! [`report`] runs all three and prints one table (`cargo run --release -p
//! gradtape-verify --bin verify`); the tests in `verify/tests` assert the
//! same checks one by one. The other modules:
//!
//! - [`cases`]: each model with a real batch and its random draws fixed;
//! - [`compare`]: how two gradients are compared;
//! - [`data`]: real digits, full size or shrunk;
//! - [`diagnose`]: when a check fails, which op's backward rule is wrong;
//! - [`notebook`]: the contractive-autoencoder check from the tutorial this
//!   project grew from.

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml): mark items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cases;
pub mod compare;
pub mod data;
pub mod derivations;
pub mod diagnose;
pub mod gradcheck;
pub mod notebook;
pub mod reference;
pub mod report;

pub use gradcheck::{
    gradcheck, gradcheck_with, gradgradcheck, gradgradcheck_with, recorded_matches_plain, GradcheckError,
    GradcheckOptions,
};
