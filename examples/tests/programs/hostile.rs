//! Hostile and careless input to the command line (issue 18): crafted
//! checkpoints and IDX files, flags that mean nothing for a model, resumes
//! that contradict their checkpoint, two runs in one folder. Every case
//! ends with exit code 2 and one line naming the source (the flag, or the
//! checkpoint and its entry), and leaves the run folder as it was; none
//! panics or allocates more than its stated limits.

use super::cli::{
    assert_bad_input, assert_ok, check_refused_in, check_train_refused, ckpt, contents, gradtape, s, tmp,
    train, TINY,
};
use gradtape_kernels::Tensor;
use gradtape_models::checkpoint;
use gradtape_models::data::{write_idx_images, write_idx_labels};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Rewrites a run's checkpoint through `edit` (tensors and metadata).
pub(crate) fn edit_checkpoint(
    out: &Path,
    edit: impl FnOnce(&mut Vec<(String, Tensor<f32>)>, &mut HashMap<String, String>),
) {
    let file = checkpoint::load::<f32>(ckpt(out)).expect("the checkpoint loads");
    let mut tensors: Vec<(String, Tensor<f32>)> = file.tensors.into_iter().collect();
    let mut meta = file.metadata;
    edit(&mut tensors, &mut meta);
    let refs: Vec<(&str, &Tensor<f32>)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    checkpoint::save(ckpt(out), &refs, Some(meta)).expect("the edited checkpoint saves");
}

/// A trained `regularized` run (one tiny epoch) in `dir/run`.
pub(crate) fn trained(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("run");
    train(dir, "regularized", &out, &[]);
    out
}

/// `train regularized --resume` into `out` with `extra`, refused with `words`,
/// the folder unchanged.
pub(crate) fn check_resume_refused(dir: &Path, out: &Path, extra: &[&str], words: &[&str]) {
    let mut args = vec!["train", "regularized", "--out", s(out), "--resume", "--epochs", "2"];
    args.extend_from_slice(extra);
    // TINY's limits, unless `extra` gives its own.
    for pair in TINY.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    check_refused_in(dir, out, &args, words);
}

/// A data folder of `rows x cols` images: `train` and `test` of them, with
/// `labels` cycling through the given values.
pub(crate) fn data_folder(dir: &Path, rows: usize, cols: usize, train: usize, test: usize, labels: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let pixels =
            Tensor::from_vec((0..n * rows * cols).map(|i| (i % 7) as f32 / 7.0).collect(), &[n, rows * cols]);
        write_idx_images(&dir.join(format!("{prefix}-images-idx3-ubyte")), &pixels, rows, cols).unwrap();
        let l: Vec<u8> = (0..n).map(|i| labels[i % labels.len()]).collect();
        write_idx_labels(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &l).unwrap();
    }
}

// --- Panics that were -------------------------------------------------------

#[test]
fn resume_with_optimiser_state_that_does_not_fit_is_refused() {
    let dir = tmp();
    let out = trained(dir.path());
    let original = std::fs::read(ckpt(&out)).unwrap();
    type Edit = fn(&mut Vec<(String, Tensor<f32>)>, &mut HashMap<String, String>);
    let cases: [(Edit, &[&str]); 3] = [
        // One moment pair missing.
        (
            |t, _| t.retain(|(n, _)| !n.ends_with("adam.m.3") && !n.ends_with("adam.v.3")),
            &["--resume", "optimiser state"],
        ),
        // One extra.
        (
            |t, _| {
                t.push(("optimizer.adam.m.99".into(), Tensor::zeros(&[2])));
                t.push(("optimizer.adam.v.99".into(), Tensor::zeros(&[2])));
            },
            &["--resume", "optimiser state"],
        ),
        // One of the wrong shape.
        (
            |t, _| {
                for (n, v) in t.iter_mut() {
                    if n == "optimizer.adam.m.0" || n == "optimizer.adam.v.0" {
                        *v = Tensor::zeros(&[3, 3]);
                    }
                }
            },
            &["--resume", "`adam.m.0` has shape [3, 3]"],
        ),
    ];
    for (edit, words) in cases {
        std::fs::write(ckpt(&out), &original).unwrap();
        edit_checkpoint(&out, edit);
        check_resume_refused(dir.path(), &out, &[], words);
    }
}

/// `sample`, `reconstruct` and `encode` of checkpoint `c` on `data`, each
/// refused with `words` and without writing its output.
fn check_inspecting_refused(dir: &Path, c: &Path, data: &Path, words: &[&str]) {
    for cmd in ["sample", "reconstruct", "encode"] {
        let target = dir.join(format!("{cmd}.out"));
        let res = gradtape(dir, &[cmd, "--checkpoint", s(c), "--data", s(data), "--out", s(&target)]);
        assert_bad_input(&res, words);
        assert!(!target.exists(), "{cmd} wrote its output");
    }
}

#[test]
fn inspecting_with_data_of_another_image_size_is_refused() {
    let dir = tmp();
    let out = trained(dir.path());
    let data = dir.path().join("data32");
    data_folder(&data, 32, 32, 10, 5, &[0, 1, 2]);
    check_inspecting_refused(dir.path(), &ckpt(&out), &data, &["--data", "1024 pixels", "input is 784"]);
}

#[test]
fn data_without_test_images_is_refused_before_any_work() {
    let dir = tmp();
    let out = trained(dir.path());
    let data = dir.path().join("no-test");
    data_folder(&data, 28, 28, 10, 0, &[0, 1, 2]);
    check_inspecting_refused(dir.path(), &ckpt(&out), &data, &["--data", "no test images"]);
    check_train_refused(&["deep", "--data", s(&data)], &["--data", "no test images"]);
}

// --- Unbounded allocation ---------------------------------------------------

#[test]
fn a_gzip_file_that_inflates_past_its_header_is_refused_after_reading_what_the_header_announces() {
    let dir = tmp();
    let data = dir.path().join("bomb");
    data_folder(&data, 28, 28, 10, 5, &[0, 1, 2]);
    // A header announcing 10 images, then 256 MiB of zeros, compressed to
    // a few hundred kilobytes.
    std::fs::remove_file(data.join("train-images-idx3-ubyte")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let header = [0u32, 0x0803, 10, 28, 28];
    for w in &header[1..] {
        gz.write_all(&w.to_be_bytes()).unwrap();
    }
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let started = Instant::now();
    check_train_refused(
        &["deep", "--data", s(&data)],
        &["--data", "train-images-idx3-ubyte.gz", "goes on past the 7856 bytes the header announces"],
    );
    // Reading 256 MiB would take seconds; the header's 7,856 bytes take none.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn checkpoint_widths_and_width_flags_are_bounded_before_anything_is_allocated() {
    let dir = tmp();
    let out = trained(dir.path());
    for widths in ["784,100000000,2", "784,1000000,64", "784,60000,2"] {
        let (c, before) = (ckpt(&out), std::fs::read(ckpt(&out)).unwrap());
        edit_checkpoint(&out, |_, m| {
            m.insert("widths".into(), widths.into());
        });
        let target = dir.path().join("r.png");
        let res = gradtape(dir.path(), &["reconstruct", "--checkpoint", s(&c), "--out", s(&target)]);
        assert_bad_input(&res, &["--checkpoint", "metadata 'widths'"]);
        std::fs::write(&c, before).unwrap();
    }
    // Widths within the bounds that the tensors contradict: refused before
    // the model they describe is built.
    edit_checkpoint(&out, |_, m| {
        m.insert("widths".into(), "784,4000,2".into());
    });
    let target = dir.path().join("r.png");
    let res = gradtape(dir.path(), &["reconstruct", "--checkpoint", s(&ckpt(&out)), "--out", s(&target)]);
    assert_bad_input(&res, &["--checkpoint", "metadata 'widths' says [784, 4000, 2]", "[784, 64, 2]"]);
    check_train_refused(&["vae", "--hidden", "100000000"], &["--hidden", "not in 1..=65536"]);
    check_train_refused(&["deep", "--widths", "784,60000,60000,2"], &["--widths", "over the limit"]);
}

#[test]
fn a_checkpoint_that_is_not_a_regular_file_or_too_large_is_refused() {
    let dir = tmp();
    let target = dir.path().join("r.png");
    let res = gradtape(dir.path(), &["reconstruct", "--checkpoint", "/dev/zero", "--out", s(&target)]);
    assert_bad_input(&res, &["--checkpoint", "/dev/zero", "not a regular file"]);
    let res = gradtape(dir.path(), &["reconstruct", "--checkpoint", s(dir.path()), "--out", s(&target)]);
    assert_bad_input(&res, &["--checkpoint", "not a regular file"]);
    // A sparse file over the limit: refused by its size, never read.
    let big = dir.path().join("big.safetensors");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(checkpoint::MAX_CHECKPOINT_BYTES + 1).unwrap();
    let res = gradtape(dir.path(), &["reconstruct", "--checkpoint", s(&big), "--out", s(&target)]);
    assert_bad_input(&res, &["--checkpoint", "over the 1073741824-byte limit"]);
    assert!(!target.exists());
}

// --- Silent wrong results ---------------------------------------------------

#[test]
fn an_adam_step_count_no_run_could_have_written_is_refused() {
    let dir = tmp();
    let out = trained(dir.path());
    edit_checkpoint(&out, |t, _| {
        for (n, v) in t.iter_mut() {
            if n == "optimizer.adam.step" {
                *v = Tensor::from_vec(vec![1e20], &[1]);
            }
        }
    });
    check_resume_refused(dir.path(), &out, &[], &["--resume", "`adam.step` is 100000002004087730000"]);
}

#[test]
fn a_checkpoint_without_optimiser_state_is_not_resumed() {
    let dir = tmp();
    let out = trained(dir.path());
    edit_checkpoint(&out, |t, _| t.retain(|(n, _)| !n.starts_with("optimizer.")));
    check_resume_refused(dir.path(), &out, &[], &["--resume", "no optimiser state"]);
}

#[test]
fn a_resume_on_other_data_or_settings_is_refused_with_every_difference() {
    let dir = tmp();
    let out = trained(dir.path());
    check_resume_refused(
        dir.path(),
        &out,
        &["--train-limit", "100", "--test-limit", "50", "--seed", "3", "--batch-size", "7"],
        &[
            "--train-limit 100 (the checkpoint's run had 256)",
            "--test-limit 50",
            "--seed 3",
            "--batch-size 7",
            "--data",
        ],
    );
    let data = dir.path().join("other");
    data_folder(&data, 28, 28, 300, 120, &[0, 1, 2]);
    check_resume_refused(dir.path(), &out, &["--data", s(&data)], &["--data", "checksum"]);
    // Seeds are whole numbers: 2^53 + 1 is not 2^53.
    let big = dir.path().join("big-seed");
    train(dir.path(), "regularized", &big, &["--seed", "9007199254740992"]);
    check_resume_refused(dir.path(), &big, &["--seed", "9007199254740993"], &["--seed 9007199254740993"]);
}

#[test]
fn flags_a_model_does_not_use_or_that_contradict_each_other_are_refused() {
    for (args, words) in [
        (
            &["vae", "--widths", "784,128,64,12", "--latent", "3"][..],
            &["--widths", "vae model has no such setting"][..],
        ),
        (
            &["deep", "--widths", "784,128,12", "--latent", "3"],
            &["--latent", "--widths already gives every width"],
        ),
        (&["contractive", "--hidden", "7", "--latent", "5"], &["--latent", "same width"]),
        (&["regularized", "--noise", "0.5"], &["--noise", "regularized model has no such setting"]),
        (&["deep", "--dropout", "0.5"], &["--dropout", "deep model"]),
        (&["deep", "--penalty", "closed-form"], &["--penalty", "deep model"]),
        (&["vae", "--lambda", "5"], &["--lambda", "vae model"]),
    ] {
        check_train_refused(args, words);
    }
    for flag in ["--train-limit", "--test-limit"] {
        let dir = tmp();
        let res = gradtape(dir.path(), &["train", "deep", flag, "0", "--out", "run"]);
        assert_bad_input(&res, &[&format!("{flag} must be at least 1")]);
        assert!(!dir.path().join("run").exists());
    }
    // The zero-digit model trains on its own digit: no data flags, and its
    // input is fixed.
    let dir = tmp();
    let res = gradtape(dir.path(), &["train", "zero-digit", "--widths", "784,10", "--out", "run"]);
    assert_bad_input(&res, &["--widths", "zero-digit model has no such setting"]);
    let res = gradtape(dir.path(), &["train", "zero-digit", "--data", "somewhere", "--out", "run"]);
    assert_bad_input(&res, &["--data", "one built-in 5x5 digit"]);
    assert!(!dir.path().join("run").exists());
}

#[test]
fn labels_that_are_not_digits_are_refused_when_the_data_is_read() {
    let dir = tmp();
    let data = dir.path().join("letters");
    data_folder(&data, 28, 28, 20, 10, &[0, 3, 12]);
    check_train_refused(&["deep", "--data", s(&data)], &["--data", "label 12 at index 2", "not a digit"]);
}

#[test]
fn a_run_already_at_its_epochs_says_so_and_changes_nothing() {
    let dir = tmp();
    let out = dir.path().join("run");
    train(dir.path(), "regularized", &out, &["--epochs", "2"]);
    let before = contents(&out);
    let mut args = vec!["train", "regularized", "--out", s(&out), "--resume", "--epochs", "2"];
    args.extend_from_slice(TINY);
    let said = assert_ok(&gradtape(dir.path(), &args), "resume at the end");
    assert!(said.contains("already at epoch 2 of --epochs 2: nothing to do"), "{said}");
    assert_eq!(contents(&out), before, "the finished run's folder changed");
    // Loss lists that do not match the epoch count are refused on loading.
    edit_checkpoint(&out, |_, m| {
        m.insert("epoch".into(), "1".into());
    });
    check_resume_refused(
        dir.path(),
        &out,
        &[],
        &["--resume", "metadata 'train_loss' has 2 values for 1 epochs"],
    );
}

#[test]
fn encode_into_a_folder_is_refused_and_temporary_files_are_unique_siblings() {
    let dir = tmp();
    let out = trained(dir.path());
    let c = ckpt(&out);
    let folder = dir.path().join("codes-dir");
    std::fs::create_dir(&folder).unwrap();
    let res = gradtape(dir.path(), &["encode", "--checkpoint", s(&c), "--out", s(&folder)]);
    assert_bad_input(&res, &["--out", "is a folder"]);
    let res = gradtape(dir.path(), &["encode", "--checkpoint", s(&c), "--out", "nowhere/codes.csv"]);
    assert_bad_input(&res, &["--out", "no folder nowhere"]);
    // --out codes.txt writes codes.txt and nothing else (no codes.csv.tmp).
    let listing = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    assert_ok(&gradtape(dir.path(), &["encode", "--checkpoint", s(&c), "--out", "codes.txt"]), "encode");
    let mut expected = before.clone();
    expected.push("codes.txt".into());
    expected.sort();
    assert_eq!(listing(dir.path()), expected);
}
