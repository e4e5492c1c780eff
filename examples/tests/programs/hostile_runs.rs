//! Hostile runs and weights (issue 27): `--weights` bounded and checked as
//! `--init-from` is, divergence caught at an epoch's edge, Adam's step
//! count kept exact, a resume that finds its report missing, files of mixed
//! precision or with control characters in their names, and flags that
//! would be ignored, too large, or echoed at length.

use super::cli::{
    assert_bad_input, assert_ok, check_train_refused, ckpt, contents, gradtape, s, text, tmp, train, TINY,
};
use super::hostile::{edit_checkpoint, trained};
use gradtape_kernels::Tensor;
use gradtape_models::checkpoint;
use std::path::Path;

/// A safetensors file of `(name, dtype, shape, little-endian bytes)`
/// entries, written by hand (so the test can mix dtypes and pick names).
fn raw_safetensors(path: &Path, entries: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, dtype, shape, bytes)) in entries.iter().enumerate() {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let name =
            name.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\u{1b}', "\\u001b");
        header.push_str(&format!(
            "{}\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            if i > 0 { "," } else { "" },
            shape.join(","),
            data.len(),
            data.len() + bytes.len()
        ));
        data.extend_from_slice(bytes);
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(path, file).unwrap();
}

fn f32s(n: usize, x: f32) -> Vec<u8> {
    (0..n).flat_map(|_| x.to_le_bytes()).collect()
}

/// Zero-digit weights (4 hidden units) with `encoder.weight[1, 2]` set to
/// `bad`, as named tensors.
fn zero_digit_weights(path: &Path, bad: f32) {
    let mut enc = f32s(100, 0.1);
    enc[4 * 27..4 * 28].copy_from_slice(&bad.to_le_bytes());
    raw_safetensors(
        path,
        &[
            ("decoder.bias", "F32", vec![25], f32s(25, 0.0)),
            ("decoder.weight", "F32", vec![25, 4], f32s(100, 0.1)),
            ("encoder.bias", "F32", vec![4], f32s(4, 0.0)),
            ("encoder.weight", "F32", vec![4, 25], enc),
        ],
    );
}

#[test]
fn weights_are_bounded_by_the_same_check_as_init_from() {
    let dir = tmp();
    let d = dir.path();
    let big = d.join("big.safetensors");
    let zeros = f32s(65536, 0.0);
    raw_safetensors(
        &big,
        &[
            ("encoder.hidden.weight", "F32", vec![65536, 1], zeros.clone()),
            ("encoder.mu.weight", "F32", vec![65536, 1], zeros),
        ],
    );
    let words = ["big.safetensors", "the tensors' shapes give widths [1, 65536, 65536]", "over the limit"];
    let res = gradtape(d, &["reconstruct", "--weights", s(&big), "--model", "vae", "--out", "r.png"]);
    assert_bad_input(&res, &[&["--weights"][..], &words].concat());
    assert!(!d.join("r.png").exists());
    check_train_refused(&["vae", "--init-from", s(&big)], &[&["--init-from"][..], &words].concat());
}

#[test]
fn non_finite_weights_are_bad_input_naming_the_tensor_and_the_index() {
    let dir = tmp();
    let d = dir.path();
    for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let w = d.join("bad.safetensors");
        zero_digit_weights(&w, bad);
        let words =
            ["bad.safetensors", &format!("tensor `encoder.weight`[1, 2] is {shown}"), "must be finite"];
        let res =
            gradtape(d, &["reconstruct", "--weights", s(&w), "--model", "zero-digit", "--csv", "r.csv"]);
        assert_bad_input(&res, &[&["--weights"][..], &words].concat());
        assert!(!d.join("r.csv").exists() && !d.join("reconstructions.png").exists());
        let res = gradtape(d, &["train", "zero-digit", "--init-from", s(&w), "--out", "run"]);
        assert_bad_input(&res, &[&["--init-from"][..], &words].concat());
        assert!(!d.join("run").exists());
    }
}

#[test]
fn a_gradtape_checkpoint_given_as_weights_loads_without_its_optimiser_state() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let c = ckpt(&out);
    let by_weights =
        ["reconstruct", "--weights", s(&c), "--model", "regularized", "--csv", "a.csv", "--out", "a.png"];
    assert_ok(&gradtape(d, &by_weights), "reconstruct --weights CHECKPOINT");
    let by_checkpoint = ["reconstruct", "--checkpoint", s(&c), "--csv", "b.csv", "--out", "b.png"];
    assert_ok(&gradtape(d, &by_checkpoint), "reconstruct --checkpoint");
    assert_eq!(std::fs::read(d.join("a.csv")).unwrap(), std::fs::read(d.join("b.csv")).unwrap());
}

#[test]
fn a_file_of_mixed_precision_names_a_tensor_of_each() {
    let dir = tmp();
    let d = dir.path();
    let w = d.join("mixed.safetensors");
    let f64s: Vec<u8> = (0..100).flat_map(|_| 0.1f64.to_le_bytes()).collect();
    raw_safetensors(
        &w,
        &[
            ("decoder.bias", "F32", vec![25], f32s(25, 0.0)),
            ("decoder.weight", "F32", vec![25, 4], f32s(100, 0.1)),
            ("encoder.bias", "F32", vec![4], f32s(4, 0.0)),
            ("encoder.weight", "F64", vec![4, 25], f64s),
        ],
    );
    let res = gradtape(d, &["encode", "--weights", s(&w), "--model", "zero-digit", "--out", "c.csv"]);
    assert_bad_input(
        &res,
        &["--weights", "tensor `encoder.weight` is stored as F64 but `", "` as F32", "one precision"],
    );
}

#[test]
fn control_characters_from_a_file_are_escaped_in_the_one_line_message() {
    let dir = tmp();
    let d = dir.path();
    let w = d.join("evil.safetensors");
    raw_safetensors(&w, &[("\u{1b}[31mevil\nname", "F32", vec![1], f32s(1, 0.0))]);
    let res = gradtape(d, &["encode", "--weights", s(&w), "--model", "zero-digit", "--out", "c.csv"]);
    assert_bad_input(&res, &["--weights", "unexpected", "`\\u{1b}[31mevil\\nname`"]);
    assert!(!text(&res.stderr).contains('\u{1b}'), "a live escape sequence");
}

#[test]
fn a_divergence_at_an_epochs_edge_exits_3_and_writes_nothing() {
    let cases = [
        ("1e6", "the test loss after it is inf", None),
        ("1e38", "after its last update tensor `", None),
        // Anomaly mode watches the ops of a step, not the update after it:
        // the edge's check catches what it cannot.
        ("1e38", "after its last update tensor `", Some("--detect-anomaly")),
    ];
    for (lr, what, flag) in cases {
        let dir = tmp();
        let out = dir.path().join("run");
        let mut args = vec!["train", "deep", "--lr", lr, "--epochs", "1", "--out", s(&out)];
        args.extend(flag);
        args.extend_from_slice(TINY);
        let res = gradtape(dir.path(), &args);
        let stderr = text(&res.stderr);
        assert_eq!(res.status.code(), Some(3), "{stderr}");
        let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{stderr}"));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for word in [
            "training diverged at the end of epoch 1",
            what,
            "no checkpoint was written",
            "pictures not drawn",
        ] {
            assert!(line.contains(word), "{word:?} not in {line}");
        }
        assert_eq!(
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>(),
            [".gradtape-train.lock"],
            "a diverged run wrote files"
        );
    }
}

#[test]
fn a_divergence_at_a_later_epochs_edge_keeps_the_previous_checkpoint_as_it_was() {
    let dir = tmp();
    let out = trained(dir.path());
    // The run's learning rate, as its checkpoint records it, made huge: the
    // resumed epoch's only step overflows the weights.
    edit_checkpoint(&out, |_, m| {
        m.insert("lr".into(), "1e38".into());
    });
    let before = contents(&out);
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "3", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let res = gradtape(dir.path(), &args);
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("training diverged at the end of epoch 2"), "{stderr}");
    assert!(stderr.contains("(epoch 1) is kept as it was"), "{stderr}");
    let mut after = contents(&out);
    after.remove(&out.join(".gradtape-train.lock"));
    let mut before = before;
    before.remove(&out.join(".gradtape-train.lock"));
    assert!(after == before, "the diverged run changed its folder");
}

#[test]
fn negative_adam_second_moments_in_a_checkpoint_are_refused() {
    let dir = tmp();
    let out = trained(dir.path());
    edit_checkpoint(&out, |t, _| {
        for (n, v) in t.iter_mut() {
            if n == "optimizer.adam.v.2" {
                *v = v.map(|x| x - 1.0);
            }
        }
    });
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "2", "--out", s(&out)];
    args.extend_from_slice(TINY);
    super::cli::check_refused_in(dir.path(), &out, &args, &["--resume", "`adam.v.2`[0", "not negative"]);
}

#[test]
fn a_loss_that_overflows_before_any_update_does_not_blame_the_learning_rate() {
    let dir = tmp();
    let out = dir.path().join("run");
    let mut args = vec!["train", "deep", "--lambda", "1e308", "--epochs", "1", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let res = gradtape(dir.path(), &args);
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("epoch 1, step 1") && stderr.contains("--lr is not the cause"), "{stderr}");
    assert!(stderr.contains("(--lambda 1e308)") && !stderr.contains("try a smaller --lr"), "{stderr}");
    assert!(!ckpt(&out).exists());
}

/// Sets a run's stored Adam step count.
fn set_adam_steps(out: &Path, steps: f32) {
    edit_checkpoint(out, |t, _| {
        for (n, v) in t.iter_mut() {
            if n == "optimizer.adam.step" {
                *v = Tensor::from_vec(vec![steps], &[1]);
            }
        }
    });
}

#[test]
fn adam_stays_exact_up_to_2_to_the_24_steps_and_a_run_past_them_is_refused_up_front() {
    let dir = tmp();
    let d = dir.path();
    // Zero-digit: one step per epoch, so the step count is in reach.
    let a = d.join("a");
    train(d, "zero-digit", &a, &[]);
    set_adam_steps(&a, 16_777_214.0);
    let b = d.join("b");
    std::fs::create_dir(&b).unwrap();
    std::fs::copy(ckpt(&a), ckpt(&b)).unwrap();
    let resume = |out: &Path, epochs: &str| {
        let args = ["train", "zero-digit", "--resume", "--epochs", epochs, "--quiet", "--out", s(out)];
        gradtape(d, &args)
    };
    // To 2^24 in one go, and in two stages: the same bytes.
    assert_ok(&resume(&a, "3"), "a to epoch 3");
    assert_ok(&resume(&b, "2"), "b to epoch 2");
    assert_ok(&resume(&b, "3"), "b to epoch 3");
    assert_eq!(std::fs::read(ckpt(&a)).unwrap(), std::fs::read(ckpt(&b)).unwrap());
    let saved = checkpoint::load::<f32>(ckpt(&a)).unwrap();
    assert_eq!(saved.tensors["optimizer.adam.step"].data(), [16_777_216.0]);
    // One more step would pass it: refused before anything is written.
    let before = contents(&a);
    let res = resume(&a, "4");
    assert_bad_input(
        &res,
        &["--epochs 4", "step 16777217", "past the 2^24 = 16777216 steps", "--epochs 3 or fewer"],
    );
    assert!(contents(&a) == before);
    let res = gradtape(d, &["train", "zero-digit", "--epochs", "16777217", "--quiet", "--out", "z"]);
    assert_bad_input(&res, &["--epochs 16777217", "give --epochs 16777216 or fewer"]);
    assert!(!d.join("z").exists());
}

#[test]
fn a_resume_at_the_final_epoch_draws_a_missing_report() {
    let dir = tmp();
    let out = trained(dir.path());
    let c = std::fs::read(ckpt(&out)).unwrap();
    for gone in ["index.html", "history.csv", "latent.png"] {
        std::fs::remove_file(out.join(gone)).unwrap();
    }
    let mut args = vec!["train", "regularized", "--resume", "--epochs", "1", "--out", s(&out)];
    args.extend_from_slice(TINY);
    let said = assert_ok(&gradtape(dir.path(), &args), "resume at the final epoch");
    assert!(said.contains("no complete report") && said.contains("done: 1 epochs"), "{said}");
    for back in ["index.html", "history.csv", "latent.png"] {
        assert!(out.join(back).is_file(), "{back} was not drawn");
    }
    assert_eq!(std::fs::read(ckpt(&out)).unwrap(), c, "the checkpoint changed");
}

#[test]
fn sample_points_must_be_finite_and_bounded() {
    let dir = tmp();
    let out = trained(dir.path());
    for (points, shown) in [("NaN,0", "NaN"), ("inf,0", "inf"), ("1e39,0", "has 1e39;")] {
        let res = gradtape(
            dir.path(),
            &["sample", "--checkpoint", s(&ckpt(&out)), "--points", points, "--out", "s.png"],
        );
        assert_bad_input(&res, &["--points", "point 1", shown, "finite and within -1e6 to 1e6"]);
    }
    assert!(!dir.path().join("s.png").exists());
}

#[test]
fn flags_an_inspection_would_ignore_are_refused() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let c = ckpt(&out);
    let res =
        gradtape(d, &["sample", "--checkpoint", s(&c), "--points", "0,0", "--seed", "5", "--out", "s.png"]);
    assert_bad_input(&res, &["--seed 5", "--points gives them"]);
    let res = gradtape(
        d,
        &["reconstruct", "--checkpoint", s(&c), "--indices", "1,2", "--n", "7", "--out", "r.png"],
    );
    assert_bad_input(&res, &["--n 7", "--indices already chooses"]);
    assert!(!d.join("s.png").exists() && !d.join("r.png").exists());
}

#[test]
fn a_reconstructions_picture_too_large_is_refused_before_the_model_runs() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let indices = vec!["1"; 20_000].join(",");
    let res = gradtape(
        d,
        &["reconstruct", "--checkpoint", s(&ckpt(&out)), "--indices", &indices, "--out", "r.png"],
    );
    assert_bad_input(&res, &["--indices", "20000 images make a picture of", "give at most"]);
    assert!(!d.join("r.png").exists());
}

#[test]
fn two_outputs_on_one_path_and_a_folder_name_are_refused_before_any_work() {
    let dir = tmp();
    let d = dir.path();
    let out = trained(d);
    let c = ckpt(&out);
    let res = gradtape(d, &["reconstruct", "--checkpoint", s(&c), "--out", "same.x", "--csv", "./same.x"]);
    assert_bad_input(&res, &["--csv", "./same.x is also where --out goes"]);
    let res = gradtape(d, &["graph", "deep", "--out", "same.svg"]);
    assert_bad_input(&res, &["--out", "same.svg ends in .svg", "same.dot"]);
    let res = gradtape(d, &["graph", "deep", "--out", "newname/"]);
    assert_bad_input(&res, &["--out", "newname/ names a folder, not a file"]);
    for gone in ["same.x", "same.svg", "newname"] {
        assert!(!d.join(gone).exists(), "{gone} was written");
    }
}

#[test]
fn a_learning_rate_that_rounds_to_0_is_refused_and_echoed_short() {
    check_train_refused(&["deep", "--lr", "1e-320"], &["--lr 1e-320:", "rounds to 0 in f32"]);
    let dir = tmp();
    let res = gradtape(dir.path(), &["train", "deep", "--lr=-1e-320", "--out", "run"]);
    assert_bad_input(&res, &["--lr -1e-320:"]);
    assert!(text(&res.stderr).len() < 200, "{}", text(&res.stderr));
}
