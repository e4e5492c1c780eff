//! Tests of the `gradtape` command line, run as a real program: short
//! trainings of every model (the run folder holds a checkpoint, the history
//! and pictures of the documented sizes, and an `index.html` that shows them),
//! and resuming (bit for bit the same as an uninterrupted run); and the
//! helpers the other command-line tests share. Bad input is tested in
//! `cli_errors.rs` (and the `hostile*.rs` files), the other commands in
//! `cli_commands.rs`.
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
pub(crate) fn assert_png(path: &Path, size: (u32, u32)) {
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
pub(crate) fn graphviz_installed() -> bool {
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
