//! The CUDA kernels (`kernels/cuda/*.cu`), compiled as C++ and run on the CPU
//! through `gradtape_kernels::cuda_sim`, checked against this crate's CPU
//! kernels: every op, f32 and f64, sizes 1, 7, 1023, 1025 and 100,003,
//! broadcasting and odd strides, and several launch shapes each (a launch
//! must cover every element exactly once whatever its grid).
//!
//! Tolerances (see `check`):
//! - f64: bit for bit where the CPU kernel computes the same formula in the
//!   same order with the same C library (arithmetic, shape ops, the
//!   optimisers, masks); 1e-12 relative for the transcendental functions
//!   and for sums, which add in a different order.
//! - f32: bit for bit where the formula is the same; 1e-6 relative (plus
//!   1e-37 absolute, for results that underflow) where the CPU kernel uses
//!   its own vectorised exp/ln/tanh/sigmoid (`fastmath`, a few units in the
//!   last place, 2^-23 = 1.2e-7 each) and the kernel the C library's;
//!   sums 1e-4 of the sum of magnitudes, for the different order (see
//!   `helpers::Float::SUM_RTOL`).
//!
//! This crate's dev-dependency on itself with the `kernel-sim` feature turns
//! the simulation on under `cargo test --workspace`.

mod elementwise;
mod grads;
mod helpers;
mod losses;
mod masks;
mod optim;
mod reduce;
mod shape;
