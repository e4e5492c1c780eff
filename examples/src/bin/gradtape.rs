//! The `gradtape` command: `gradtape train vae`, `gradtape sample ...`;
//! see `gradtape --help` and `examples/src/cli/mod.rs`.

use clap::Parser;
use gradtape_examples::cli::{run, Cli};
use gradtape_models::files::printable;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever a file's names held (control characters
            // escaped), and no panic if stderr is closed.
            let _ = writeln!(std::io::stderr(), "error: {}", printable(&e.message));
            ExitCode::from(e.code)
        }
    }
}
