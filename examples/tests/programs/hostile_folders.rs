//! Hostile and careless input to the command line, continued: one run per
//! folder and reproducible files, errors that used to come late or name the
//! wrong source, and checkpoint metadata mutated at random. As in
//! `hostile.rs`, every refusal exits 2 with one line naming the source and
//! leaves the run folder as it was.

use super::cli::{
    assert_bad_input, assert_ok, check_train_refused, ckpt, gradtape, s, text, tmp, train, TINY,
};
use gradtape_models::checkpoint;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Rewrites a run's checkpoint through `edit` (tensors and metadata).
use super::hostile::{check_resume_refused, data_folder, edit_checkpoint, trained};

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
