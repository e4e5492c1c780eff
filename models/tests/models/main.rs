//! The models crate's integration tests: autoencoders, checkpoints, data, optimisers.
//!
//! One test binary per crate: each separate file under tests/ would be
//! compiled and linked as a program of its own, which dominated CI's time.

mod autoencoders;
mod checkpoint;
mod data;
mod graph;
mod hostile;
mod optim;
