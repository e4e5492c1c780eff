//! Runnable programs for gradtape: the notebook check
//! (`cargo run --release --example cae_gradcheck`) and the benchmark binary
//! (`cargo run --release -p gradtape-examples --bin bench`).

#![warn(missing_docs)]

pub mod cli;
pub mod timing;
pub mod tutorial;
pub mod workloads;
