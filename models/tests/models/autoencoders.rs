//! Every autoencoder trains (its loss falls well below where it started),
//! the contractive penalty's two forms agree, and runs are reproducible.

use gradtape::{grad_values, Tape, Tensor};
use gradtape_kernels::compare::{assert_close, pairs, Tol};
use gradtape_models::autoencoders::*;
use gradtape_models::data::{Batches, Dataset, LastBatch, MnistSplit};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::train::{derive_seed, evaluate, fit, train_step, TrainConfig};

fn small_split(n_train: usize, n_test: usize) -> (Dataset, Dataset) {
    let split = MnistSplit::embedded();
    (split.train.take(n_train), split.test.take(n_test))
}

/// Trains `model` for `epochs` on `train` and returns the test loss before
/// and after.
fn loss_before_and_after(
    model: &mut dyn Autoencoder<f32>,
    lr: f64,
    batch_size: usize,
    epochs: usize,
    train: &Dataset,
) -> (f64, f64) {
    let before = evaluate(model, train, 500, 1);
    let mut opt = Adam::new(lr);
    let config = TrainConfig { epochs, batch_size, seed: 3, eval_batch_size: 500, detect_anomaly: false };
    let history = fit(model, &mut opt, train, train, &config, 0, &mut |_| {});
    (before, *history.test_losses().last().unwrap())
}

#[test]
fn zero_digit_learns_its_digit_almost_perfectly() {
    let digit = ZeroDigit::<f32>::digit();
    let data = Dataset::new(digit.clone(), vec![0], 5, 5);
    let mut model = ZeroDigit::<f32>::new(&ZeroDigitConfig::default(), 0);
    let (before, after) = loss_before_and_after(&mut model, 1e-2, 1, 500, &data);
    assert!(before > 0.1, "starts far off: {before}");
    assert!(after < 1e-3, "after 500 steps the loss is {after}");
}

#[test]
fn deep_autoencoder_loss_falls_well_below_its_start() {
    let (train, _) = small_split(512, 0);
    let mut model = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0);
    let (before, after) = loss_before_and_after(&mut model, 1e-3, 32, 12, &train);
    assert!(after < 0.5 * before, "deep: {before} -> {after}");
}

#[test]
fn regularized_and_denoising_losses_fall() {
    let (train, _) = small_split(512, 0);
    for config in [RegularizedConfig::default(), RegularizedConfig::denoising()] {
        let mut model = RegularizedAutoencoder::<f32>::new(&config, 0);
        let (before, after) = loss_before_and_after(&mut model, 1e-3, 32, 12, &train);
        assert!(after < 0.6 * before, "{}: {before} -> {after}", model.kind());
    }
}

#[test]
fn contractive_loss_falls_with_either_penalty() {
    let (train, _) = small_split(256, 0);
    for penalty in [
        PenaltyMode::ClosedForm,
        PenaltyMode::DoubleBackward,
        PenaltyMode::DoubleBackwardRows,
        PenaltyMode::DoubleBackwardLoop,
    ] {
        let config = ContractiveConfig { hidden: 16, penalty, ..ContractiveConfig::default() };
        let mut model = ContractiveAutoencoder::<f32>::new(&config, 0);
        let (before, after) = loss_before_and_after(&mut model, 3e-3, 32, 12, &train);
        assert!(after < 0.6 * before, "{penalty:?}: {before} -> {after}");
    }
}

#[test]
fn vae_loss_falls() {
    let (train, _) = small_split(512, 0);
    let mut model = Vae::<f32>::new(&VaeConfig::default(), 0);
    let (before, after) = loss_before_and_after(&mut model, 1e-3, 32, 10, &train);
    assert!(after < 0.6 * before, "vae: {before} -> {after}");
}

/// The two penalty forms and their gradients agree to 1e-10 in f64.
#[test]
fn contractive_penalties_by_double_backward_and_closed_form_agree() {
    let config = ContractiveConfig { hidden: 7, ..ContractiveConfig::default() };
    let model = ContractiveAutoencoder::<f64>::new(&config, 5);
    let x = MnistSplit::embedded().train.take(6).images.cast::<f64>();
    let tape = Tape::new();
    let p = model.params().bind(&tape);
    let xv = tape.constant(&x);
    let mut ctx = StepCtx::seeded(0);
    let h = model.encode(&p, xv, &mut ctx);
    let by_autodiff = model.penalty_by_double_backward_loop(h, xv);
    let closed = model.penalty_closed_form(&p, h);
    let batched = model.penalty_by_batched_double_backward(h, xv);
    let rows = model.penalty_by_written_out_rows(h, xv);
    let (a, c, b, r) = (by_autodiff.item(), closed.item(), batched.item(), rows.item());
    assert!((a - c).abs() <= 1e-10 * c.abs(), "penalties {a} vs {c}");
    assert!((b - a).abs() <= 1e-12 * a.abs(), "batched {b} vs loop {a}");
    assert!((r - a).abs() <= 1e-12 * a.abs(), "written-out rows {r} vs loop {a}");
    let ga = grad_values(&[by_autodiff], p.vars(), None);
    let gc = grad_values(&[closed], p.vars(), None);
    let gb = grad_values(&[batched], p.vars(), None);
    let gr = grad_values(&[rows], p.vars(), None);
    let names = model.params().names();
    for g in [&ga, &gc, &gb, &gr] {
        assert_eq!(g.len(), names.len(), "one gradient per parameter");
    }
    for (i, (a, c)) in pairs("gradients", &ga, &gc).enumerate() {
        let name = &names[i];
        // Relative to the closed form's largest entry, as before.
        let scale = c.data().iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        assert_close(name, a, c, Tol::abs(1e-10 * scale));
        assert_close(&format!("batched {name}"), &gb[i], a, Tol::abs(1e-12 * scale));
        assert_close(&format!("written-out rows {name}"), &gr[i], a, Tol::abs(1e-12 * scale));
    }
    // The mean Jacobian norm is the mean over samples of the square root of
    // each sample's penalty (the closed form on that sample alone).
    let per_sample_mean = model.mean_jacobian_norm(&x);
    let n = x.shape()[0];
    let mut sum_of_roots = 0.0;
    for row in 0..n {
        let tape = Tape::new();
        let p = model.params().bind(&tape);
        let xr = tape.constant(&x.slice_axis(0, row, 1));
        let h = model.encode(&p, xr, &mut StepCtx::seeded(0));
        sum_of_roots += model.penalty_closed_form(&p, h).item().sqrt();
    }
    let want = sum_of_roots / n as f64;
    assert!(want > 0.0, "a sigmoid encoder has a non-zero Jacobian");
    assert!(
        (per_sample_mean - want).abs() <= 1e-10 * want,
        "mean Jacobian norm {per_sample_mean} vs mean sqrt(per-sample penalty) {want}"
    );
}

#[test]
fn the_same_seed_gives_bit_identical_histories_and_weights() {
    let (train, test) = small_split(200, 100);
    let run = || {
        let mut model = RegularizedAutoencoder::<f32>::new(&RegularizedConfig::denoising(), 7);
        let mut opt = Adam::new(1e-3);
        let config =
            TrainConfig { epochs: 2, batch_size: 64, seed: 11, eval_batch_size: 500, detect_anomaly: false };
        let h = fit(&mut model, &mut opt, &train, &test, &config, 0, &mut |_| {});
        (h.train_losses(), h.test_losses(), model.params().tensors().to_vec())
    };
    let (a, b) = (run(), run());
    assert_eq!(
        a.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        a.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(a.2, b.2);
}

#[test]
fn resuming_at_an_epoch_boundary_equals_an_uninterrupted_run() {
    let (train, test) = small_split(200, 100);
    let config =
        TrainConfig { epochs: 3, batch_size: 64, seed: 2, eval_batch_size: 500, detect_anomaly: false };
    let mut straight = Vae::<f32>::new(&VaeConfig::default(), 1);
    let mut opt = Adam::new(1e-3);
    fit(&mut straight, &mut opt, &train, &test, &config, 0, &mut |_| {});

    let mut first = Vae::<f32>::new(&VaeConfig::default(), 1);
    let mut opt1 = Adam::new(1e-3);
    fit(&mut first, &mut opt1, &train, &test, &TrainConfig { epochs: 1, ..config.clone() }, 0, &mut |_| {});
    // "Restart": a fresh model and optimiser loaded with the saved state.
    let mut resumed = Vae::<f32>::new(&VaeConfig::default(), 99);
    for (dst, src) in resumed.params_mut().tensors_mut().into_iter().zip(first.params().tensors()) {
        *dst = src.clone();
    }
    let mut opt2 = Adam::new(1e-3);
    opt2.load_state(&opt1.state()).unwrap();
    fit(&mut resumed, &mut opt2, &train, &test, &config, 1, &mut |_| {});
    assert_eq!(resumed.params().tensors(), straight.params().tensors());
}

#[test]
fn vae_encode_returns_the_mean_in_eval_mode_and_a_sample_in_training() {
    let mut model = Vae::<f64>::new(&VaeConfig { hidden: 16, latent: 3, ..VaeConfig::default() }, 4);
    let x = MnistSplit::embedded().test.take(2).images.cast::<f64>();
    let tape = Tape::new();
    let p = model.params().bind(&tape);
    let xv = tape.constant(&x);
    let mu = model.posterior(&p, xv).mu.value();
    model.set_training(false);
    let z_eval = model.encode(&p, xv, &mut StepCtx::seeded(1)).value();
    model.set_training(true);
    let z_train = model.encode(&p, xv, &mut StepCtx::seeded(1)).value();
    assert_eq!(z_eval, mu);
    assert!(z_train.max_abs_diff(&mu) > 1e-3);
}

#[test]
fn parameters_have_state_dict_names() {
    let deep = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0);
    let names: Vec<&str> = deep.params().names().iter().map(|s| s.as_str()).collect();
    assert_eq!(&names[..4], &["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]);
    assert_eq!(deep.params().count(), 2 * (784 * 128 + 128 * 64 + 64 * 12) + 128 + 64 + 12 + 64 + 128 + 784);
    let reg = RegularizedAutoencoder::<f32>::new(&RegularizedConfig::default(), 0);
    assert!(reg.params().by_name("decoder.3.weight").is_some());
    let _ = Tensor::<f32>::zeros(&[1]);
}

/// A model whose first weight is all NaN (a diverged checkpoint) must not
/// report a finite loss: ReLU used to map NaN to 0, so the NaN weights
/// vanished and the deep autoencoder reconstructed with a finite error.
#[test]
fn nan_weights_give_a_nan_loss_for_every_model() {
    let (digits, _) = small_split(16, 0);
    let zero_digit = Dataset::new(ZeroDigit::<f32>::digit(), vec![0], 5, 5);
    for kind in ModelKind::ALL {
        let mut model = gradtape_models::spec::ModelSpec::default_for(kind).build(0);
        let data = if model.input_dim() == 25 { &zero_digit } else { &digits };
        assert!(evaluate(model.as_mut(), data, 16, 1).is_finite(), "{kind:?}: finite weights");
        let (name, first) = model.params_mut().named_mut().into_iter().next().unwrap();
        let name = name.to_string();
        first.data_mut().fill(f32::NAN);
        let loss = evaluate(model.as_mut(), data, 16, 1);
        assert!(loss.is_nan(), "{kind:?} with {name} all NaN: loss {loss}");
    }
}

#[test]
fn a_diverging_fit_stops_at_the_bad_step_with_the_weights_of_before_it_and_names_the_op() {
    let (train, test) = small_split(256, 64);
    for detect_anomaly in [false, true] {
        let mut model = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0);
        let mut opt = Adam::<f32>::new(1e6);
        let config = TrainConfig { epochs: 3, batch_size: 64, seed: 1, eval_batch_size: 500, detect_anomaly };
        let h = fit(&mut model, &mut opt, &train, &test, &config, 0, &mut |_| {});
        let d = h.diverged.as_ref().unwrap_or_else(|| panic!("lr 1e6 should diverge ({detect_anomaly})"));
        assert!(d.step >= 1 && d.epoch >= 1 && d.epoch <= 3, "{d:?}");
        // The epochs before the bad one are complete; the bad one is not.
        assert_eq!(h.epochs.len(), d.epoch - 1, "{d:?}");
        let first = d.first_anomaly.as_deref().unwrap_or_else(|| panic!("no op named: {d:?}"));
        // This crate's src/ as the locations give it: models/src/ here, the
        // unpacked crate's folder in a packaged build.
        let src = format!("{}src/", file!().strip_suffix("tests/models/autoencoders.rs").unwrap());
        assert!(first.starts_with("anomaly: ") && first.contains(&src), "{first}");
        // The bad step did not write its NaN into the weights: they are
        // those of the steps before it, bit for bit (replayed one by one
        // with `train_step`), and Adam counts only those steps.
        for (name, t) in model.params().named() {
            assert!(t.to_vec().iter().all(|v| v.is_finite()), "{name} holds a non-finite weight");
        }
        let mut replay = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0);
        let mut replay_opt = Adam::<f32>::new(1e6);
        let mut tape = Tape::new();
        'steps: for epoch in 1..=d.epoch {
            let batches = Batches::new(&train, 64, derive_seed(1, epoch as u64, 0), LastBatch::Keep);
            for (i, batch) in batches.enumerate() {
                if epoch == d.epoch && i + 1 == d.step {
                    break 'steps;
                }
                train_step(
                    &mut replay,
                    &mut replay_opt,
                    &mut tape,
                    &batch.images,
                    derive_seed(1, epoch as u64, i as u64 + 1),
                );
            }
        }
        assert_eq!(opt.steps(), replay_opt.steps(), "Adam's step count ({detect_anomaly})");
        for ((name, got), (_, want)) in model.params().named().into_iter().zip(replay.params().named()) {
            let same = got.to_vec().iter().zip(want.to_vec()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name} is not the weights of before the bad step ({detect_anomaly})");
        }
    }
}
