//! # gradtape-verify: proving the gradients right
//!
//! - [`gradcheck`]: finite-difference checks of first and second derivatives
//!   (`gradcheck`, `gradgradcheck`), after `torch.autograd.gradcheck`.
//! - [`notebook`]: the contractive-autoencoder check from the tutorial this
//!   project grew from: gradients derived by hand, asserted equal to
//!   autodiff.

pub mod gradcheck;
pub mod notebook;

pub use gradcheck::{
    gradcheck, gradcheck_with, gradgradcheck, gradgradcheck_with, GradcheckError, GradcheckOptions,
};
