//! The command line's refusals: unknown models and flags, data and
//! checkpoints that do not fit, and a run that diverges (stopped at the
//! first non-finite step, the op named, exit code 3, the last good
//! checkpoint kept). Every refusal is one line naming its source, exit code
//! 2, and nothing overwritten.

use super::cli::*;
use gradtape_models::checkpoint;

#[test]
fn error_unknown_model() {
    check_train_refused(&["autoencoder"], &["MODEL", "unknown model 'autoencoder'", "vae"]);
}

#[test]
fn error_data_folder_without_idx_files() {
    let data = tmp();
    std::fs::write(data.path().join("README.txt"), "no digits here").unwrap();
    check_train_refused(
        &["deep", "--data", s(data.path())],
        &["--data", "no MNIST-format IDX files", "train-images-idx3-ubyte"],
    );
}

#[test]
fn error_negative_learning_rate() {
    check_train_refused(&["vae", "--lr", "-0.1"], &["--lr -0.1", "learning rate"]);
}

#[test]
fn error_device_cuda() {
    // The tests build the program with CUDA support (for the stand-in), so
    // here, with no driver on the machine and the stand-in nowhere on the
    // library path, the probe finds no driver library and says so.
    check_train_refused(
        &["vae", "--device", "cuda"],
        &["--device cuda", "no CUDA driver library (libcuda.so)"],
    );
}

#[test]
fn error_resume_without_checkpoint() {
    check_train_refused(&["vae", "--resume"], &["--resume", "no checkpoint"]);
}

#[test]
fn error_resume_checkpoint_of_another_model() {
    let dir = tmp();
    let out = dir.path().join("run");
    train(dir.path(), "regularized", &out, &[]);
    let mut args = vec!["train", "deep", "--out", s(&out), "--resume"];
    args.extend_from_slice(TINY);
    check_refused_in(dir.path(), &out, &args, &["--resume", "regularized", "not deep"]);
}

#[test]
fn error_resume_checkpoint_of_another_shape() {
    let dir = tmp();
    let out = dir.path().join("run");
    train(dir.path(), "regularized", &out, &[]);
    assert_ne!(spec_of(&out).hidden(), 32);
    let mut args = vec!["train", "regularized", "--out", s(&out), "--resume", "--hidden", "32"];
    args.extend_from_slice(TINY);
    check_refused_in(dir.path(), &out, &args, &["--hidden", "--resume", "784,32,2"]);
}

#[test]
fn error_existing_checkpoint_without_resume() {
    let dir = tmp();
    let out = dir.path().join("run");
    train(dir.path(), "regularized", &out, &[]);
    let mut args = vec!["train", "regularized", "--out", s(&out)];
    args.extend_from_slice(TINY);
    check_refused_in(dir.path(), &out, &args, &["--out", "already holds a checkpoint", "--resume"]);
}

#[test]
fn error_sample_from_a_file_that_is_not_a_checkpoint() {
    let dir = tmp();
    let png = dir.path().join("samples.png");
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, [0x47u8, 0x41, 0x52, 0x42, 0x41, 0x47, 0x45, 0xff, 0x00, 0x13, 0x37].repeat(9))
        .unwrap();
    let out = gradtape(dir.path(), &["sample", "--checkpoint", s(&junk), "--out", s(&png)]);
    assert_bad_input(&out, &["--checkpoint", "junk.safetensors"]);
    assert!(!png.exists());

    // A valid safetensors file, but not one `gradtape train` wrote.
    let foreign = dir.path().join("foreign.safetensors");
    let t = gradtape_kernels::Tensor::<f32>::zeros(&[2, 3]);
    checkpoint::save(&foreign, &[("weight", &t)], None).unwrap();
    let out = gradtape(dir.path(), &["sample", "--checkpoint", s(&foreign), "--out", s(&png)]);
    assert_bad_input(&out, &["--checkpoint", "not a gradtape training checkpoint"]);
    assert!(!png.exists());

    let missing = dir.path().join("missing.safetensors");
    let out = gradtape(dir.path(), &["sample", "--checkpoint", s(&missing), "--out", s(&png)]);
    assert_bad_input(&out, &["--checkpoint", "missing.safetensors"]);
    assert!(!png.exists());
}

#[test]
fn error_sample_points_of_the_wrong_size() {
    let dir = tmp();
    let run = dir.path().join("run");
    train(dir.path(), "regularized", &run, &[]);
    let png = dir.path().join("samples.png");
    let out = gradtape(
        dir.path(),
        &["sample", "--checkpoint", s(&ckpt(&run)), "--points", "0,0;1,2,3", "--out", s(&png)],
    );
    assert_bad_input(&out, &["--points", "point 2 has 3 numbers", "code has 2"]);
    let out = gradtape(
        dir.path(),
        &["sample", "--checkpoint", s(&ckpt(&run)), "--points", "0,x", "--out", s(&png)],
    );
    assert_bad_input(&out, &["--points", "not a list of numbers"]);
    assert!(!png.exists());
}

/// Runs `train deep` at a learning rate that blows up, with or without
/// `--detect-anomaly`, and checks that it stops at the first bad step with
/// one line naming the op and its line of code, exits 3, keeps the last
/// checkpoint with finite weights (or writes none), and draws no pictures.
/// Returns the epoch it stopped in.
fn check_divergence(extra: &[&str]) -> usize {
    let dir = tmp();
    let out_dir = dir.path().join("run");
    // Four steps an epoch: the second step's loss overflows.
    let mut args =
        vec!["train", "deep", "--lr", "1e5", "--batch-size", "64", "--epochs", "3", "--out", s(&out_dir)];
    args.extend_from_slice(extra);
    args.extend_from_slice(TINY);
    let out = gradtape(dir.path(), &args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "exit code; stdout:\n{}\nstderr:\n{stderr}", text(&out.stdout));
    let line = stderr.lines().find(|l| l.contains("training diverged")).unwrap_or_else(|| panic!("{stderr}"));
    let epoch: usize = line
        .split("training diverged at epoch ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in: {line}"));
    assert!(line.contains(", step "), "{line}");
    assert!(line.contains("first non-finite value: anomaly: "), "the op should be named: {line}");
    assert!(line.contains("models/src/"), "with its line of code: {line}");
    assert!(line.contains("pictures not drawn; try a smaller --lr (now 100000)"), "{line}");
    assert!(!out_dir.join("index.html").exists(), "pictures of NaN weights were drawn");
    let ckpt = out_dir.join("checkpoint.safetensors");
    if epoch == 1 {
        assert!(line.contains("no checkpoint was written") && !ckpt.exists(), "{line}");
    } else {
        // The checkpoint of the last whole epoch is kept, and its weights
        // are finite: it reconstructs with a finite error.
        assert!(line.contains(&format!("(epoch {}) is kept as it was", epoch - 1)), "{line}");
        let rec =
            gradtape(dir.path(), &["reconstruct", "--checkpoint", s(&ckpt), "--n", "4", "--out", "r.png"]);
        let said = text(&rec.stdout);
        assert_eq!(rec.status.code(), Some(0), "{said}{}", text(&rec.stderr));
        let mse: f64 = said
            .split("mean squared error ")
            .nth(1)
            .and_then(|rest| rest.trim_end().trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("no error in: {said}"));
        assert!(mse.is_finite(), "the kept checkpoint's weights are not finite: {said}");
    }
    epoch
}

#[test]
fn a_diverging_run_stops_at_the_first_nan_step_names_the_op_and_exits_3() {
    // At lr 1e5 the first step's update is huge but finite; the second
    // step's loss overflows. (A divergence at an epoch's last step, whose
    // loss is finite, is caught at the epoch's edge: see hostile_runs.rs.)
    assert_eq!(check_divergence(&[]), 1);
}

#[test]
fn a_run_with_detect_anomaly_stops_the_same_way() {
    check_divergence(&["--detect-anomaly"]);
}
