//! The sparse autoencoder example (`examples/examples/sparse_autoencoder.rs`,
//! written against the public API only), run small: it trains, its
//! curvature check passes, and it prints what it found.

#[path = "../../examples/sparse_autoencoder.rs"]
mod program;

use program::{run, Settings};

#[test]
fn the_sparse_autoencoder_trains_and_its_hvp_matches_differences_of_its_gradient() {
    let settings = Settings { epochs: 2, train_limit: 256, hidden: 24, check_batch: 16 };
    let mut printed = Vec::new();
    let report = run(&settings, &mut printed).unwrap_or_else(|e| panic!("the example failed: {e}"));
    let text = String::from_utf8(printed).unwrap();

    assert_eq!(report.losses.len(), 2, "one loss per epoch: {text}");
    assert!(report.losses.iter().all(|l| l.is_finite() && *l > 0.0), "losses {:?}", report.losses);
    assert!(report.losses[1] < report.losses[0], "the loss did not fall: {:?}", report.losses);
    assert!(
        report.mean_activation > 0.0 && report.mean_activation < 1.0,
        "sigmoid activations average in (0, 1): {}",
        report.mean_activation
    );
    // Below the example's own bound, which a NaN would not be.
    assert!(report.hvp_relative_error < 1e-6, "relative error {}", report.hvp_relative_error);

    for line in [
        "epoch 1/2  loss ",
        "epoch 2/2  loss ",
        "mean hidden activation ",
        "relative error ",
        "curvature check passed",
    ] {
        assert!(text.contains(line), "the output lacks {line:?}:\n{text}");
    }
}
