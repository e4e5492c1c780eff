//! The engine's integration tests: the public API, batched cotangents, Jacobian rows, NaN, anomaly mode, the tape as a graph, and the README's reading path.
//!
//! One test binary per crate: each separate file under tests/ would be
//! compiled and linked as a program of its own, which dominated CI's time.

mod anomaly;
mod batched;
mod grad_api;
mod graph;
mod jacobian_rows;
mod nan;
mod reading_path;
