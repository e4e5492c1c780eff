//! # gradtape-kernels: tensors and the CPU kernels under the tape
//!
//! This crate knows nothing about gradients. It gives the tape one thing to
//! hold, [`Tensor<T>`], and the arithmetic to do on it:
//!
//! - [`tensor`]: the type itself, with shared copy-on-write storage and
//!   seeded random constructors;
//! - [`elementwise`]: unary maps and broadcasting binary ops (walked as
//!   rows by the private `broadcast` module);
//! - [`reduce`]: sum, mean, max over everything or one axis;
//! - [`layout`]: transpose, broadcast, sum-to, select and slice;
//! - [`matmul`]: matrix products through matrixmultiply, split over rayon;
//! - [`pool`]: recycling of buffers, so a training loop stops allocating;
//! - [`denormal`]: flushing subnormal floats where they only cost time;
//! - [`cuda_source`]: the CUDA kernel sources (`kernels/cuda/`), for a
//!   runtime loader to compile with NVRTC; [`philox`]: the counter-based
//!   generator their masks use, as a Rust reference; `cuda_sim` (test-only
//!   feature `kernel-sim`): those kernels compiled as C++ and run on the
//!   CPU;
//! - [`device`]: where tensors live ([`Device::Cpu`], [`Device::Cuda`]) and
//!   why a CUDA device can be refused; `cuda` (feature `cuda`): opening a
//!   GPU, compiling the kernels for it, and the GPU side of every op.
//!
//! Shape errors are programming errors and panic at the caller with the op
//! and both shapes; functions that read outside data return `Result`.

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml): mark items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod broadcast;
pub mod compare;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "kernel-sim")]
pub mod cuda_sim;
pub mod cuda_source;
pub mod denormal;
pub mod device;
pub mod draws;
pub mod element;
pub mod elementwise;
pub mod fastmath;
pub mod formula;
pub mod fused;
pub mod gather;
pub mod guard;
pub mod layout;
pub mod matmul;
pub mod optim;
pub mod philox;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod tensor;
pub mod workers;

pub use device::{Device, DeviceError};
pub use draws::{DrawNumber, DrawStep, StepClock};
pub use element::Element;
pub use formula::{Formula, FormulaKind};
pub use fused::{Act, LossTerm};
pub use gather::RowIndex;
pub use guard::{GuardReading, LossGuard};
pub use shape::{broadcast_shapes, Shape};
pub use tensor::Tensor;
