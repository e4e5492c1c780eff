//! The tutorial programs (`examples/examples/tutorial_*.rs`), each run for
//! a short epoch on a few hundred digits: the loss is finite (and, for the
//! zero digit, falls) and the picture is written.

#[path = "../../examples/tutorial_contractive.rs"]
mod contractive;
#[path = "../../examples/tutorial_deep.rs"]
mod deep;
#[path = "../../examples/tutorial_regularized.rs"]
mod regularized;
#[path = "../../examples/tutorial_vae.rs"]
mod vae;
#[path = "../../examples/tutorial_zero_digit.rs"]
mod zero_digit;

use gradtape_examples::tutorial::Options;
use std::error::Error;
use std::path::Path;

type Run = fn(&Options) -> Result<Vec<f64>, Box<dyn Error>>;

/// Runs a tutorial into a fresh folder; returns its losses after checking
/// they are finite and that `picture` was written as a PNG.
fn check(run: Run, epochs: usize, picture: &str) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { epochs, train_limit: 256, out: dir.path().to_path_buf() };
    let losses = run(&o).unwrap_or_else(|e| panic!("{picture}: {e}"));
    assert!(!losses.is_empty() && losses.iter().all(|l| l.is_finite()), "{picture}: losses {losses:?}");
    let png = std::fs::read(Path::new(dir.path()).join(picture)).unwrap_or_else(|e| panic!("{picture}: {e}"));
    assert!(png.starts_with(b"\x89PNG"), "{picture} is not a PNG");
    losses
}

#[test]
fn the_zero_digit_tutorial_learns_its_digit() {
    let losses = check(zero_digit::run, 60, "zero.png");
    assert!(losses[59] < 0.5 * losses[0], "the loss did not fall: {} -> {}", losses[0], losses[59]);
}

#[test]
fn the_deep_tutorial_runs() {
    check(deep::run, 1, "reconstructions.png");
}

#[test]
fn the_regularized_and_denoising_tutorial_runs() {
    assert_eq!(check(regularized::run, 1, "denoising.png").len(), 2, "one epoch of each twin");
}

#[test]
fn the_contractive_tutorial_runs_its_double_backward() {
    check(contractive::run, 1, "reconstructions.png");
}

#[test]
fn the_vae_tutorial_runs() {
    check(vae::run, 1, "generations.png");
}
