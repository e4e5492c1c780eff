//! The `gradtape` command: `gradtape train vae`, `gradtape sample ...`;
//! see `gradtape --help` and `examples/src/cli/mod.rs`.

use clap::Parser;
use gradtape_examples::cli::{run, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}
