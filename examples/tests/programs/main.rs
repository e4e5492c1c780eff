//! Tests of the command-line program, the pictures it draws, and the
//! example programs.
//!
//! One test binary per crate: each separate file under tests/ would be
//! compiled and linked as a program of its own, which dominated CI's time.

mod cli;
mod cli_commands;
mod cli_errors;
mod gpu;
mod hostile;
mod hostile_folders;
mod hostile_paths;
mod hostile_runs;
mod pictures;
mod pictures_plots;
mod readme;
mod sparse_autoencoder;
mod tutorials;
