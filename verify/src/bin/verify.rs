//! `cargo run --release -p gradtape-verify --bin verify`: runs every
//! gradient check of the suite (hand derivations against autodiff, finite
//! differences and PyTorch, for every autoencoder) and prints one table and
//! a verdict. Exits with status 1 if anything failed.

use std::process::ExitCode;

fn main() -> ExitCode {
    let report = gradtape_verify::report::run();
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
