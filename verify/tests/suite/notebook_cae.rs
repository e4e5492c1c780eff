//! The tutorial's contractive-autoencoder check: hand-derived gradients
//! equal autodiff gradients (Jacobian penalty by `create_graph`).
//!
//! The tutorial derives `dL/dy = 2 (y - x)`, the derivative of a *summed*
//! squared error; our loss is PyTorch's default mean-reduced MSE, so the
//! hand derivation in `gradtape_verify::notebook` uses `2 (y - x) / n` with
//! `n = N * D` elements. With the tutorial's factor the comparison below
//! would fail, which is the point of stating it.

use gradtape_verify::notebook::NotebookCae;

#[test]
fn hand_derived_cae_gradients_equal_autodiff_in_f64() {
    for seed in [1, 2, 3] {
        let cae = NotebookCae::<f64>::new(1, seed);
        let (loss_auto, loss_hand, rows) = cae.compare();
        assert!((loss_auto - loss_hand).abs() <= 1e-12, "losses {loss_auto} vs {loss_hand}");
        for row in rows {
            assert!(
                row.max_abs_diff <= 1e-12,
                "{}: max |autodiff - hand| = {:e}",
                row.parameter,
                row.max_abs_diff
            );
        }
    }
}

#[test]
fn hand_derived_cae_gradients_equal_autodiff_in_f32() {
    for seed in [1, 2, 3] {
        let cae = NotebookCae::<f32>::new(1, seed);
        let (loss_auto, loss_hand, rows) = cae.compare();
        assert!(((loss_auto - loss_hand) / loss_hand).abs() <= 1e-6, "losses {loss_auto} vs {loss_hand}");
        for row in rows {
            assert!(row.rel_diff <= 1e-6, "{}: relative difference {:e}", row.parameter, row.rel_diff);
        }
    }
}

#[test]
fn hand_derivation_holds_for_a_batch_too() {
    let cae = NotebookCae::<f64>::with_sizes(7, 12, 4, 11);
    let (_, _, rows) = cae.compare();
    for row in rows {
        assert!(row.max_abs_diff <= 1e-12, "{}: {:e}", row.parameter, row.max_abs_diff);
    }
}

#[test]
fn the_summed_error_factor_would_not_match() {
    // Scale the reconstruction part of the hand gradient as if the loss
    // were a sum: the comparison must then fail, so the test above can fail.
    let cae = NotebookCae::<f64>::new(1, 5);
    let (_, hand) = cae.by_hand();
    let (_, auto) = cae.autodiff();
    let n = cae.x.len() as f64;
    // decoder.bias has no penalty term: its hand gradient is purely
    // reconstruction, so the factor n shows there directly.
    let wrong = hand[3].mul_scalar(n);
    assert!(wrong.max_abs_diff(&auto[3]) > 1e-3);
}
