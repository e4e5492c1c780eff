//! The commands beside `train`: `sample`, `reconstruct` and `encode` on a
//! trained model (and on PyTorch's weights), `--help` for each, an
//! interrupted run that leaves its checkpoint whole, and `graph` (the tape of
//! one step in Graphviz's DOT).

use super::cli::*;
use gradtape_models::checkpoint;
use gradtape_models::pictures::{grid_size, reconstructions_size, TILE_SCALE};
use std::path::{Path, PathBuf};
use std::process::Command;

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
