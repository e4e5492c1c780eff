//! Hostile and careless input to the command line (issue 18): crafted
//! checkpoints and IDX files, flags that mean nothing for a model, resumes
//! that contradict their checkpoint, two runs in one folder. Every case
//! ends with exit code 2 and one line naming the source (the flag, or the
//! checkpoint and its entry), and leaves the run folder as it was; none
//! panics or allocates more than its stated limits.

use super::cli::{
    assert_bad_input, assert_ok, check_refused_in, check_train_refused, ckpt, contents, gradtape, s, text,
    tmp, train, TINY,
};
use gradtape_kernels::Tensor;
use gradtape_models::checkpoint;
use gradtape_models::data::{write_idx_images, write_idx_labels};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
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
fn check_resume_refused(dir: &Path, out: &Path, extra: &[&str], words: &[&str]) {
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

// --- One run per folder, reproducible files ---------------------------------

#[test]
fn a_second_train_into_a_running_folder_fails_naming_the_holder_and_the_lock_dies_with_it() {
    let dir = tmp();
    let out = dir.path().join("run");
    train(dir.path(), "regularized", &out, &[]);
    // A resumed run that goes on for as long as the test wants.
    let long = ["train", "regularized", "--resume", "--epochs", "1000000", "--out", s(&out)];
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradtape"))
        .args(long)
        .args(TINY)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the first run starts");
    let lock = out.join(".gradtape-train.lock");
    let pid = child.id().to_string();
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map(|t| t.trim() != pid).unwrap_or(true) {
        assert!(started.elapsed() < Duration::from_secs(60), "the first run never locked {}", out.display());
        assert!(child.try_wait().unwrap().is_none(), "the first run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same command again: every check passes, and the lock stops it.
    let mut args = long.to_vec();
    args.extend_from_slice(TINY);
    let second = gradtape(dir.path(), &args);
    assert_bad_input(&second, &["--out", &format!("in use by process {pid}"), ".gradtape-train.lock"]);
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed, the holder's lock is gone with it: the lock file can be locked
    // again at once.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&lock).unwrap();
    file.try_lock().expect("the lock outlived the process that held it");
}

#[test]
fn equal_runs_write_equal_checkpoint_bytes_on_any_thread_count() {
    let dir = tmp();
    let mut files = Vec::new();
    for (name, threads) in [("a", "2"), ("b", "2"), ("c", "1")] {
        let out = dir.path().join(name);
        let mut args = vec!["train", "denoising", "--out", s(&out), "--epochs", "2"];
        args.extend_from_slice(TINY);
        let res = Command::new(env!("CARGO_BIN_EXE_gradtape"))
            .args(&args)
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_ok(&res, name);
        files.push(std::fs::read(ckpt(&out)).unwrap());
    }
    assert_eq!(files[0], files[1], "two equal runs wrote different checkpoint bytes");
    assert_eq!(files[0], files[2], "one and two threads wrote different checkpoint bytes");
}

// --- Late or misleading errors ----------------------------------------------

#[test]
fn an_unwritable_run_folder_is_found_before_training() {
    let dir = tmp();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("run");
    let mut args = vec!["train", "deep", "--out", s(&out), "--epochs", "1"];
    args.extend_from_slice(TINY);
    let res = gradtape(dir.path(), &args);
    assert_bad_input(&res, &["--out", "cannot create"]);
    let res = gradtape(dir.path(), &["train", "deep", "--out", s(&file)]);
    assert_bad_input(&res, &["--out", "is not a folder"]);
}

#[test]
fn errors_in_a_checkpoint_name_its_entry_not_a_flag() {
    let dir = tmp();
    let out = trained(dir.path());
    let original = std::fs::read(ckpt(&out)).unwrap();
    for (key, value, words) in [
        ("lr", "NaN", &["metadata 'lr'", "learning rate"][..]),
        ("batch_size", "0", &["metadata 'batch_size' is 0"]),
        ("dropout", "2", &["metadata 'dropout'", "[0, 1)"]),
        ("seed", "1e5", &["metadata 'seed'"]),
    ] {
        std::fs::write(ckpt(&out), &original).unwrap();
        edit_checkpoint(&out, |_, m| {
            m.insert(key.into(), value.into());
        });
        let mut all = vec!["--resume"];
        all.extend_from_slice(words);
        check_resume_refused(dir.path(), &out, &[], &all);
        let stderr =
            text(&gradtape(dir.path(), &["train", "regularized", "--resume", "--out", s(&out)]).stderr);
        assert!(
            !stderr.contains("--lr") && !stderr.contains("--batch-size") && !stderr.contains("--dropout"),
            "{stderr}"
        );
    }
}

#[test]
fn a_safetensors_header_with_a_name_twice_is_refused() {
    let dir = tmp();
    let path = dir.path().join("twice.safetensors");
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&path, &bytes).unwrap();
    let target = dir.path().join("r.png");
    let res = gradtape(
        dir.path(),
        &["reconstruct", "--weights", s(&path), "--model", "contractive", "--out", s(&target)],
    );
    assert_bad_input(&res, &["--weights", "twice.safetensors", "the tensor name `w` appears twice"]);
}

#[test]
fn a_data_folder_with_two_spellings_of_one_file_is_refused() {
    let dir = tmp();
    let data = dir.path().join("both");
    data_folder(&data, 28, 28, 10, 5, &[1]);
    let raw = data.join("t10k-labels-idx1-ubyte");
    std::fs::copy(&raw, data.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    check_train_refused(
        &["deep", "--data", s(&data)],
        &["--data", "t10k-labels-idx1-ubyte and", "t10k-labels-idx1-ubyte.gz exist; remove one"],
    );
}

// --- Metadata mutated at random ----------------------------------------------

mod metadata {
    use super::*;
    use gradtape_examples::cli::snapshot;
    use gradtape_models::spec::MAX_PARAMETERS;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// One real training checkpoint, read once.
    fn real() -> &'static checkpoint::Checkpoint<f32> {
        static FILE: OnceLock<(tempfile::TempDir, checkpoint::Checkpoint<f32>)> = OnceLock::new();
        &FILE
            .get_or_init(|| {
                let dir = tmp();
                let out = dir.path().join("run");
                train(dir.path(), "vae", &out, &["--hidden", "16", "--latent", "3"]);
                let file = checkpoint::load::<f32>(ckpt(&out)).unwrap();
                (dir, file)
            })
            .1
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("NaN".to_string()),
            Just("-1".to_string()),
            Just("1e20".to_string()),
            Just("18446744073709551616".to_string()),
            Just("784,0,3".to_string()),
            Just("784,,3".to_string()),
            Just("784,65537,3".to_string()),
            Just("784,20000,3".to_string()),
            Just("none".to_string()),
            Just("zzzzzzzz".to_string()),
            "[0-9a-z,.e+-]{0,24}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any entry set to any value: an error naming the entry, or a run
        /// whose model is within the limits and fits the tensors.
        #[test]
        fn a_checkpoint_with_any_entry_changed_is_refused_or_fits(
            pick in any::<prop::sample::Index>(),
            v in value(),
            remove in any::<bool>(),
        ) {
            let mut file = real().clone();
            let mut keys: Vec<String> = file.metadata.keys().cloned().collect();
            keys.sort();
            let key = pick.get(&keys).clone();
            if remove {
                file.metadata.remove(&key);
            } else {
                file.metadata.insert(key.clone(), v);
            }
            match snapshot::from_checkpoint(file, "--resume") {
                Ok(loaded) => {
                    prop_assert!(loaded.spec.parameter_count() <= MAX_PARAMETERS as u128);
                    let mut model = loaded.spec.build(0);
                    prop_assert!(loaded.restore_model(model.as_mut(), "--resume").is_ok());
                    prop_assert_eq!(loaded.info.train_losses.len(), loaded.info.epoch);
                }
                Err(e) => {
                    prop_assert_eq!(e.code, 2);
                    prop_assert!(e.message.starts_with("--resume: "), "{}", e.message);
                    prop_assert!(!e.message.contains('\n'), "{}", e.message);
                }
            }
        }
    }
}

#[test]
fn after_a_divergence_a_new_run_starts_from_the_kept_checkpoint_with_another_lr() {
    let dir = tmp();
    let out = trained(dir.path());
    // The resume keeps its learning rate ...
    check_resume_refused(
        dir.path(),
        &out,
        &["--lr", "0.0001"],
        &["--lr 0.0001 (the checkpoint's run has 0.001)"],
    );
    // ... and a new run takes the checkpoint's weights (not its Adam state).
    let next = dir.path().join("slower");
    let said = train(dir.path(), "regularized", &next, &["--lr", "0.0001", "--init-from", s(&ckpt(&out))]);
    assert!(said.contains("starting from the weights in"), "{said}");
    let file = checkpoint::load::<f32>(ckpt(&next)).unwrap();
    assert_eq!(file.metadata.get("lr").map(String::as_str), Some("1e-4"));
}
