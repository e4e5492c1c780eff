//! Tests of the `gradtape` command line, run as a real program: short
//! trainings of every model (the run folder holds a checkpoint, the history
//! and pictures of the documented sizes, and an `index.html` that shows them),
//! resuming (bit for bit the same as an uninterrupted run), every bad input
//! (a one-line error naming the flag, exit code 2, nothing overwritten), the
//! `sample` / `reconstruct` / `encode` commands and `--help`.
//!
//! Trainings are tiny (one epoch on 256 images, 100 test images) so the whole
//! file runs in seconds.

use gradtape_models::autoencoders::{ModelKind, PenaltyMode};
use gradtape_models::checkpoint;
use gradtape_models::pictures::{
    denoising_size, filters_layout, grid_size, reconstructions_size, LATENT_MAP_SIZE, LOSS_CURVES_SIZE,
    TILE_SCALE,
};
use gradtape_models::spec::ModelSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// Training options that keep a run to a fraction of a second (with
/// `--epochs 1`, which [`train`] adds unless told otherwise).
pub(crate) const TINY: &[&str] = &["--train-limit", "256", "--test-limit", "100", "--quiet"];

/// [`TINY`] for `model`: the zero-digit model trains on its one digit, and
/// refuses data limits.
pub(crate) fn tiny(model: &str) -> &'static [&'static str] {
    if model == "zero-digit" {
        &["--quiet"]
    } else {
        TINY
    }
}

/// Test images in a [`TINY`] run (the zero-digit model has only one).
const TEST_IMAGES: usize = 100;

pub(crate) fn tmp() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// Runs `gradtape args...` in `cwd`.
pub(crate) fn gradtape(cwd: &Path, args: &[&str]) -> Output {
    gradtape_with(cwd, &[], args)
}

/// Runs `gradtape args...` in `cwd` with `env` added to its environment.
pub(crate) fn gradtape_with(
    cwd: &Path,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    args: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradtape"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .output()
        .expect("gradtape runs")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `gradtape` succeeded and returns its stdout.
pub(crate) fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Trains `model` into `out` with [`TINY`] settings and `extra` options
/// (`--epochs 1` unless `extra` gives `--epochs`); returns stdout.
pub(crate) fn train(cwd: &Path, model: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", model, "--out", s(out)];
    args.extend_from_slice(tiny(model));
    if !extra.contains(&"--epochs") {
        args.extend_from_slice(&["--epochs", "1"]);
    }
    args.extend_from_slice(extra);
    assert_ok(&gradtape(cwd, &args), &format!("gradtape {}", args.join(" ")))
}

/// The checkpoint of a run folder.
pub(crate) fn ckpt(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

/// The model a run folder's checkpoint describes.
pub(crate) fn spec_of(out: &Path) -> ModelSpec {
    let file = checkpoint::load::<f32>(ckpt(out)).expect("the checkpoint loads");
    ModelSpec::from_metadata(&file.metadata).expect("the checkpoint names its model")
}

/// Decodes `path` as PNG and checks its size `(width, height)`.
fn assert_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{} does not decode as PNG: {e}", path.display()));
    assert_eq!((img.width(), img.height()), size, "size of {}", path.display());
}

/// Every file in `dir` (recursively) with its bytes.
pub(crate) fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return files;
    }
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(contents(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).expect("a readable file"));
        }
    }
    files
}

/// The `(train, test)` losses of `history.csv`, checking its format.
pub(crate) fn history(out: &Path) -> Vec<(f64, f64)> {
    let csv = std::fs::read_to_string(out.join("history.csv")).expect("history.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("epoch,train_loss,test_loss"), "history.csv header");
    lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 3, "history.csv line {line:?}");
            assert_eq!(cells[0], (i + 1).to_string(), "history.csv epoch number");
            let num = |c: &str| -> f64 { c.parse().unwrap_or_else(|_| panic!("{c:?} in history.csv")) };
            let (train, test) = (num(cells[1]), num(cells[2]));
            assert!(train.is_finite() && test.is_finite(), "history.csv line {line:?}");
            (train, test)
        })
        .collect()
}

/// The pictures a run of `spec` writes, with their sizes, for `test` test
/// images of `h` x `w` (see `examples/src/cli/report.rs`).
fn expected_pictures(spec: &ModelSpec, test: usize, h: usize, w: usize) -> BTreeMap<String, (u32, u32)> {
    let mut pics = BTreeMap::new();
    pics.insert("reconstructions.png".to_string(), reconstructions_size(test.min(20), h, w));
    let (rows, cols) = filters_layout(spec.hidden());
    pics.insert("filters.png".to_string(), grid_size(rows, cols, h, w, TILE_SCALE));
    pics.insert("latent.png".to_string(), LATENT_MAP_SIZE);
    pics.insert("loss.png".to_string(), LOSS_CURVES_SIZE);
    if spec.kind != ModelKind::ZeroDigit {
        // A 15 x 15 grid over a 2-D code space; 10 x 10 random codes otherwise.
        let side = if spec.latent() == 2 && spec.kind != ModelKind::Vae { 15 } else { 10 };
        pics.insert("generations.png".to_string(), grid_size(side, side, h, w, TILE_SCALE));
        pics.insert("denoising.png".to_string(), denoising_size(test.min(8), h, w));
    }
    pics
}

/// Trains `model` and checks everything in its run folder; returns the
/// folder's model spec.
fn check_training(model: &str, extra: &[&str], epochs: usize) -> ModelSpec {
    let dir = tmp();
    let out = dir.path().join("run");
    let stdout = train(dir.path(), model, &out, extra);

    assert!(ckpt(&out).is_file(), "{model}: no checkpoint");
    let spec = spec_of(&out);
    assert_eq!(spec.kind, model.parse::<ModelKind>().unwrap());

    let losses = history(&out);
    assert_eq!(losses.len(), epochs, "{model}: history.csv rows");
    let final_test = format!("{:.5}", losses.last().unwrap().1);
    assert!(
        stdout.contains(&format!("final test loss {final_test}")),
        "{model}: stdout does not report the final test loss {final_test}:\n{stdout}"
    );

    let (h, w, test) = if spec.kind == ModelKind::ZeroDigit { (5, 5, 1) } else { (28, 28, TEST_IMAGES) };
    let expected = expected_pictures(&spec, test, h, w);
    let present: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(present, expected.keys().cloned().collect(), "{model}: pictures in the run folder");
    for (name, size) in &expected {
        assert_png(&out.join(name), *size);
    }

    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    for name in &present {
        assert!(html.contains(&format!("src=\"{name}\"")), "{model}: index.html does not show {name}");
    }
    for src in html.split("src=\"").skip(1) {
        let file = &src[..src.find('"').unwrap()];
        assert!(out.join(file).is_file(), "{model}: index.html shows {file}, which is not there");
    }
    assert!(!html.contains("file missing"), "{model}: index.html marks a picture missing");
    assert!(html.contains(&final_test), "{model}: index.html lacks the final test loss {final_test}");
    // The page links one training step's tape, drawn.
    let links: Vec<&str> = html.split("href=\"").skip(1).map(|h| &h[..h.find('"').unwrap()]).collect();
    assert!(links.contains(&"tape.dot"), "{model}: index.html does not link tape.dot: {links:?}");
    assert_eq!(links.contains(&"tape.svg"), graphviz_installed(), "{model}: the SVG link: {links:?}");
    for file in &links {
        assert!(out.join(file).is_file(), "{model}: index.html links {file}, which is not there");
    }
    let dot = std::fs::read_to_string(out.join("tape.dot")).expect("tape.dot");
    assert!(dot.starts_with("digraph tape {") && dot.trim_end().ends_with('}'), "{model}: tape.dot");
    let swept = dot.lines().filter(|l| l.contains("#fce5cd")).count();
    let double_backward = spec.kind == ModelKind::Contractive && spec.penalty != PenaltyMode::ClosedForm;
    assert_eq!(swept > 0, double_backward, "{model}: create_graph nodes in tape.dot");
    spec
}

/// Whether Graphviz's `dot` runs here. CI installs it and sets
/// `GRADTAPE_REQUIRE_DOT=1`, so that there a missing `dot` fails instead
/// of skipping the SVG checks.
fn graphviz_installed() -> bool {
    let found = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("GRADTAPE_REQUIRE_DOT").is_some_and(|v| v == "1") {
        assert!(found, "GRADTAPE_REQUIRE_DOT=1 but Graphviz's `dot` does not run");
    }
    found
}

#[test]
fn train_zero_digit() {
    let spec = check_training("zero-digit", &["--epochs", "5"], 5);
    assert_eq!(spec.widths[0], 25, "the zero digit is 5 x 5");
}

#[test]
fn train_deep() {
    check_training("deep", &[], 1);
}

#[test]
fn train_regularized() {
    let spec = check_training("regularized", &[], 1);
    assert_eq!(spec.latent(), 2, "a 2-D code gives the 15 x 15 generations grid");
}

#[test]
fn train_denoising() {
    check_training("denoising", &[], 1);
}

#[test]
fn train_contractive_closed_form() {
    check_training("contractive", &["--penalty", "closed-form"], 1);
}

#[test]
fn train_contractive_double_backward() {
    let spec = check_training("contractive", &["--penalty", "double-backward", "--hidden", "8"], 1);
    assert_eq!(spec.hidden(), 8);
}

#[test]
fn train_vae() {
    check_training("vae", &[], 1);
}

/// Two epochs in one go, or one epoch and then `--resume --epochs 2`: the
/// checkpoints hold the same bits (weights and optimiser state) and the runs
/// the same history.
fn check_resume(model: &str) {
    let dir = tmp();
    let (straight, resumed) = (dir.path().join("straight"), dir.path().join("resumed"));
    train(dir.path(), model, &straight, &["--epochs", "2"]);
    train(dir.path(), model, &resumed, &["--epochs", "1"]);
    assert_eq!(history(&resumed).len(), 1);
    let stdout = train(dir.path(), model, &resumed, &["--resume", "--epochs", "2"]);
    assert!(stdout.contains("resuming after epoch 1 of 2"), "{model}: stdout:\n{stdout}");

    let a = checkpoint::load::<f32>(ckpt(&straight)).unwrap();
    let b = checkpoint::load::<f32>(ckpt(&resumed)).unwrap();
    let names: Vec<&String> = a.tensors.keys().collect();
    assert_eq!(names, b.tensors.keys().collect::<Vec<_>>(), "{model}: tensor names");
    assert!(names.iter().any(|n| n.starts_with("optimizer.")), "{model}: no optimiser state in {names:?}");
    for (name, ta) in &a.tensors {
        let tb = &b.tensors[name];
        assert_eq!(ta.shape(), tb.shape(), "{model}: shape of {name}");
        let differ = ta.data().iter().zip(tb.data()).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
        assert_eq!(differ, 0, "{model}: {differ} numbers of {name} differ after resuming");
    }
    for key in ["epoch", "train_loss", "test_loss", "seed", "lr", "batch_size"] {
        assert_eq!(a.metadata.get(key), b.metadata.get(key), "{model}: checkpoint metadata '{key}'");
    }
    let h = history(&straight);
    assert_eq!(h.len(), 2);
    assert_eq!(h, history(&resumed), "{model}: history after resuming");
}

#[test]
fn resume_equals_uninterrupted_vae() {
    check_resume("vae");
}

#[test]
fn resume_equals_uninterrupted_denoising() {
    // Dropout and masking noise: the random streams must resume too.
    check_resume("denoising");
}

/// Asserts a bad-input failure: exit code 2, nothing on stdout, one line on
/// stderr that mentions every one of `words` (the flag and the problem).
pub(crate) fn assert_bad_input(out: &Output, words: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stdout:\n{}\nstderr:\n{stderr}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "", "a bad input prints nothing on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "stderr: {stderr}");
    for word in words {
        assert!(lines[0].contains(word), "stderr does not mention {word:?}: {stderr}");
    }
}

/// Runs `gradtape train args...` into a fresh `--out`, expects a bad-input
/// error mentioning `words`, and checks that no run folder was made.
pub(crate) fn check_train_refused(args: &[&str], words: &[&str]) {
    let dir = tmp();
    let out = dir.path().join("run");
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", s(&out)]);
    all.extend_from_slice(TINY);
    assert_bad_input(&gradtape(dir.path(), &all), words);
    assert!(!out.exists(), "a refused run made {}", out.display());
    assert!(!dir.path().join("runs").exists(), "a refused run made runs/");
}

/// Runs `gradtape args...` against the run folder `out`, expects a
/// bad-input error mentioning `words`, and checks that nothing in the folder
/// changed.
pub(crate) fn check_refused_in(cwd: &Path, out: &Path, args: &[&str], words: &[&str]) {
    let before = contents(out);
    assert!(!before.is_empty());
    assert_bad_input(&gradtape(cwd, args), words);
    assert!(contents(out) == before, "a refused command changed {}", out.display());
}

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

#[test]
fn sample_reconstruct_and_encode_a_trained_model() {
    let dir = tmp();
    let run = dir.path().join("run");
    train(dir.path(), "regularized", &run, &[]);
    let checkpoint = ckpt(&run);
    let c = s(&checkpoint);

    // Random points: a 15 x 15 grid over the 2-D code space.
    let png = dir.path().join("grid.png");
    assert_ok(&gradtape(dir.path(), &["sample", "--checkpoint", c, "--out", s(&png)]), "sample");
    assert_png(&png, grid_size(15, 15, 28, 28, TILE_SCALE));

    // Given points: 5 of them, on a 3 x 3 grid of tiles.
    let png = dir.path().join("points.png");
    let points = "0,0;-1,0.5;1.5,-2;0.25,0.25;3,3";
    assert_ok(
        &gradtape(dir.path(), &["sample", "--checkpoint", c, "--points", points, "--out", s(&png)]),
        "sample --points",
    );
    assert_png(&png, grid_size(3, 3, 28, 28, TILE_SCALE));

    // With the default output name, in the working folder.
    assert_ok(&gradtape(dir.path(), &["sample", "--checkpoint", c]), "sample (default --out)");
    assert_png(&dir.path().join("samples.png"), grid_size(15, 15, 28, 28, TILE_SCALE));

    let png = dir.path().join("recon.png");
    let csv = dir.path().join("recon.csv");
    let stdout = assert_ok(
        &gradtape(
            dir.path(),
            &["reconstruct", "--checkpoint", c, "--indices", "0,5,7", "--out", s(&png), "--csv", s(&csv)],
        ),
        "reconstruct --indices --csv",
    );
    assert!(stdout.contains("wrote 3 reconstructions"), "{stdout}");
    assert_png(&png, reconstructions_size(3, 28, 28));
    // The numbers, for comparing with another program (torch_load_checkpoint.py).
    let values = std::fs::read_to_string(&csv).unwrap();
    let mut lines = values.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 2 + 784);
    assert_eq!(header[..3], ["index", "label", "x0"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), ["0", "5", "7"]);
    assert!(rows.iter().all(|r| r.len() == 2 + 784 && r[2..].iter().all(|v| v.parse::<f32>().is_ok())));

    let png = dir.path().join("recon12.png");
    assert_ok(
        &gradtape(dir.path(), &["reconstruct", "--checkpoint", c, "--n", "12", "--out", s(&png)]),
        "reconstruct --n",
    );
    assert_png(&png, reconstructions_size(12, 28, 28));

    let out =
        gradtape(dir.path(), &["reconstruct", "--checkpoint", c, "--indices", "0,2000", "--out", s(&png)]);
    assert_bad_input(&out, &["--indices", "2000"]);

    let csv = dir.path().join("codes.csv");
    assert_ok(&gradtape(dir.path(), &["encode", "--checkpoint", c, "--out", s(&csv)]), "encode");
    let codes = std::fs::read_to_string(&csv).unwrap();
    let mut lines = codes.lines();
    assert_eq!(lines.next(), Some("index,label,z0,z1"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2000, "one row per built-in test digit");
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 4, "row {row:?}");
        assert_eq!(cells[0], i.to_string());
        assert!(cells[1].parse::<u8>().is_ok_and(|l| l < 10), "label in {row:?}");
        assert!(cells[2..].iter().all(|z| z.parse::<f32>().is_ok_and(f32::is_finite)), "codes in {row:?}");
    }

    let csv = dir.path().join("train-codes.csv");
    assert_ok(
        &gradtape(dir.path(), &["encode", "--checkpoint", c, "--split", "train", "--out", s(&csv)]),
        "encode --split train",
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 1 + 8000);
}

#[test]
fn sample_and_encode_a_vae() {
    let dir = tmp();
    let run = dir.path().join("run");
    train(dir.path(), "vae", &run, &["--latent", "3"]);
    let c = ckpt(&run);

    let png = dir.path().join("prior.png");
    let stdout =
        assert_ok(&gradtape(dir.path(), &["sample", "--checkpoint", s(&c), "--out", s(&png)]), "sample");
    assert!(stdout.contains("prior"), "{stdout}");
    assert_png(&png, grid_size(10, 10, 28, 28, TILE_SCALE));

    let csv = dir.path().join("codes.csv");
    assert_ok(&gradtape(dir.path(), &["encode", "--checkpoint", s(&c), "--out", s(&csv)]), "encode");
    let codes = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(codes.lines().next(), Some("index,label,z0,z1,z2"));
    assert_eq!(codes.lines().count(), 1 + 2000);
}

#[test]
fn help_for_every_command() {
    let dir = tmp();
    let top = assert_ok(&gradtape(dir.path(), &["--help"]), "--help");
    for word in ["train", "sample", "reconstruct", "encode", "autoencoder"] {
        assert!(top.contains(word), "gradtape --help does not mention {word}:\n{top}");
    }
    for (command, options) in [
        (
            "train",
            &[
                "--epochs",
                "--batch-size",
                "--lr",
                "--seed",
                "--latent",
                "--hidden",
                "--data",
                "--out",
                "--device",
                "--resume",
                "--lambda",
                "--gamma",
                "--dropout",
                "--noise",
                "--penalty",
            ][..],
        ),
        ("sample", &["--checkpoint", "--points", "--seed", "--out"][..]),
        ("reconstruct", &["--checkpoint", "--indices", "--n", "--out"][..]),
        ("encode", &["--checkpoint", "--split", "--out"][..]),
    ] {
        let help = assert_ok(&gradtape(dir.path(), &[command, "--help"]), &format!("{command} --help"));
        assert!(help.contains(&format!("gradtape {command}")), "{command} --help:\n{help}");
        for option in options {
            assert!(help.contains(option), "{command} --help does not mention {option}:\n{help}");
        }
    }
    assert!(contents(dir.path()).is_empty(), "--help wrote files");
}

/// Ctrl-C (SIGINT) in the middle of a run leaves the last checkpoint whole:
/// it loads, and `--resume` continues from it.
#[cfg(unix)]
#[test]
fn interrupting_a_run_never_leaves_a_broken_checkpoint() {
    let dir = tmp();
    let out = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradtape"))
        .args(["train", "zero-digit", "--epochs", "100000", "--quiet", "--out", s(&out)])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("gradtape starts");
    // Let it write a few hundred checkpoints, then interrupt it mid-stream.
    let started = std::time::Instant::now();
    while !ckpt(&out).exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    // A shell that starts jobs in the background makes them ignore SIGINT,
    // and the child inherits that: then Ctrl-C cannot reach it, and waiting
    // would last the whole 100000 epochs. Give it ten seconds, then kill it
    // outright (SIGKILL cannot be ignored; for the checkpoint it is the
    // harsher interruption of the two).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("gradtape can be waited on") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            eprintln!("gradtape ignored SIGINT (started from a background shell?); killing it instead");
            child.kill().expect("gradtape can be killed");
            break child.wait().expect("gradtape exits");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success(), "the run was interrupted, not finished");
    let saved = checkpoint::load::<f32>(ckpt(&out)).expect("the checkpoint left behind loads");
    let epoch: usize = saved.metadata["epoch"].parse().unwrap();
    assert!(epoch >= 1);
    let resumed = gradtape(
        dir.path(),
        &[
            "train",
            "zero-digit",
            "--resume",
            "--epochs",
            &(epoch + 2).to_string(),
            "--quiet",
            "--out",
            s(&out),
        ],
    );
    assert_ok(&resumed, "resuming the interrupted run");
}

/// A zero-digit model's weights saved by PyTorch
/// (`safetensors.torch.save_file(model.state_dict(), ...)`, made by
/// `verify/reference/make_torch_interop.py`).
fn torch_weights(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../verify/reference/torch_weights/{model}.safetensors"))
}

#[test]
fn reconstruct_with_pytorch_weights_gives_pytorchs_numbers() {
    let dir = tmp();
    let weights = torch_weights("zero-digit");
    let (png, csv) = (dir.path().join("recon.png"), dir.path().join("recon.csv"));
    let args = [
        "reconstruct",
        "--weights",
        s(&weights),
        "--model",
        "zero-digit",
        "--out",
        s(&png),
        "--csv",
        s(&csv),
    ];
    assert_ok(&gradtape(dir.path(), &args), "reconstruct --weights");
    assert_png(&png, reconstructions_size(1, 5, 5));
    let values = std::fs::read_to_string(&csv).unwrap();
    let row: Vec<f64> =
        values.lines().nth(1).unwrap().split(',').skip(2).map(|v| v.parse().unwrap()).collect();
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../verify/reference/torch_interop.safetensors"),
    )
    .unwrap();
    let reference = gradtape_verify::reference::Reference::parse(&bytes).unwrap();
    let expected = reference.tensor("zero-digit/digit_reconstruction").unwrap();
    assert_eq!(row.len(), expected.len());
    for (got, want) in row.iter().zip(expected.data()) {
        assert!((got - want).abs() < 1e-6, "gradtape {got}, PyTorch {want}");
    }

    let codes = dir.path().join("codes.csv");
    let args = ["encode", "--weights", s(&weights), "--model", "zero-digit", "--out", s(&codes)];
    assert_ok(&gradtape(dir.path(), &args), "encode --weights");
    assert_eq!(std::fs::read_to_string(&codes).unwrap().lines().next(), Some("index,label,z0,z1,z2,z3"));
}

#[test]
fn train_from_pytorch_weights() {
    let dir = tmp();
    let run = dir.path().join("run");
    let weights = torch_weights("zero-digit");
    let stdout = train(dir.path(), "zero-digit", &run, &["--init-from", s(&weights), "--epochs", "2"]);
    assert!(stdout.contains("starting from the weights"), "{stdout}");
    // The sizes come from the file: 4 hidden units, not the default 10.
    assert_eq!(spec_of(&run).widths, [25, 4]);
}

#[test]
fn error_pytorch_weights_of_another_model_name_every_mismatch() {
    let weights = torch_weights("zero-digit");
    check_train_refused(
        &["deep", "--init-from", s(&weights)],
        &[
            "--init-from",
            "missing",
            "`encoder.0.weight`",
            "`decoder.4.bias`",
            "unexpected",
            "`encoder.weight`",
            "`decoder.bias`",
        ],
    );
    let dir = tmp();
    let out = gradtape(dir.path(), &["sample", "--weights", s(&weights), "--model", "vae"]);
    assert_bad_input(&out, &["--weights", "`encoder.mu.weight`", "`encoder.weight`"]);
    let out = gradtape(dir.path(), &["train", "zero-digit", "--init-from", "nothing-here.safetensors"]);
    assert_bad_input(&out, &["--init-from", "nothing-here.safetensors"]);
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

/// The DOT file of one step of `model`: its node lines and its recorded-sweep
/// node lines.
fn graph_of(model: &str) -> (usize, usize, String) {
    let dir = tmp();
    let dot_path = dir.path().join("step.dot");
    let out = gradtape(dir.path(), &["graph", model, "--out", s(&dot_path)]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    let dot = std::fs::read_to_string(&dot_path).expect("the DOT file");
    assert!(dot.starts_with("digraph tape {"), "{dot}");
    let nodes = dot.lines().filter(|l| l.contains("[label=")).count();
    let swept = dot.lines().filter(|l| l.contains("#fce5cd")).count();
    assert!(
        said.contains(&format!("({nodes} nodes, {swept} of them recorded by a create_graph sweep)")),
        "{said}"
    );
    assert!(said.contains("wrote") && (said.contains(".svg") || said.contains("no SVG")), "{said}");
    (nodes, swept, said)
}

#[test]
fn graph_draws_a_training_step_with_the_contractive_penalty_sweep_marked() {
    let (nodes, swept, _) = graph_of("contractive");
    assert!(nodes > 10 && swept > 0, "{nodes} nodes, {swept} swept");
    let (nodes, swept, _) = graph_of("deep");
    assert!(nodes > 10 && swept == 0, "{nodes} nodes, {swept} swept");
}

#[test]
fn graphviz_accepts_the_graph_and_draws_every_node() {
    let dir = tmp();
    let dot_path = dir.path().join("step.dot");
    let said = assert_ok(&gradtape(dir.path(), &["graph", "contractive", "--out", s(&dot_path)]), "graph");
    let svg = dir.path().join("step.svg");
    if !graphviz_installed() {
        assert!(said.contains("no SVG: Graphviz's `dot` is not on the PATH"), "{said}");
        assert!(!svg.exists());
        return;
    }
    assert!(said.contains(&format!("wrote {}", svg.display())), "{said}");
    let drawn = std::fs::read_to_string(&svg).expect("the SVG");
    assert!(drawn.contains("<svg"), "not an SVG");
    let dot = std::fs::read_to_string(&dot_path).unwrap();
    let nodes = dot.lines().filter(|l| l.contains("[label=")).count();
    let edges = dot.lines().filter(|l| l.contains("->")).count();
    assert_eq!(drawn.matches("class=\"node\"").count(), nodes, "nodes drawn");
    assert_eq!(drawn.matches("class=\"edge\"").count(), edges, "edges drawn");
}

#[test]
fn graph_of_an_unknown_model_is_refused() {
    let dir = tmp();
    assert_bad_input(
        &gradtape(dir.path(), &["graph", "autoencoder"]),
        &["MODEL", "unknown model 'autoencoder'"],
    );
}
