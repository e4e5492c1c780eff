//! `gradtape train <model>`: trains on the embedded MNIST digits (or a
//! `--data` folder), writes a checkpoint at the end of every epoch, and
//! finishes with pictures and an `index.html` in the run folder.

use super::progress::Reporter;
use super::report;
use super::snapshot::{self, RunInfo};
use super::{check_device, default_out, CliError, Device};
use gradtape_models::autoencoders::{ModelKind, ZeroDigit};
use gradtape_models::data::{Dataset, MnistSplit};
use gradtape_models::optim::{Adam, Optimizer};
use gradtape_models::spec::ModelSpec;
use gradtape_models::state_dict::{load_state_dict, read_state_dict, StateDict};
use gradtape_models::train::{fit, TrainConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `gradtape train`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// The model: zero-digit, deep, regularized, denoising, contractive or vae.
    pub model: String,
    /// Epochs to train (in total, counting those a resumed run already did).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Mini-batch size (default: the tutorial's for the model).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam's learning rate (default: the tutorial's for the model).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seed for initial weights, shuffling, dropout, noise and sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Code size.
    #[arg(long)]
    pub latent: Option<usize>,
    /// Width of the first hidden layer.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// All encoder widths from input to code, e.g. 784,128,64,12 (deep model).
    #[arg(long, value_delimiter = ',')]
    pub widths: Option<Vec<usize>>,
    /// Folder with MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...);
    /// default: the 10,000 digits built into the program.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run folder for the checkpoint, pictures and index.html (default `runs/<model>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Continue the run whose checkpoint is in --out.
    #[arg(long, conflicts_with = "init_from")]
    pub resume: bool,
    /// Check every op of every step for NaN and infinity (slower): the run
    /// stops at the first op that makes one and names it. Without it, a
    /// NaN loss stops the run the same way, found by re-running that step.
    #[arg(long)]
    pub detect_anomaly: bool,
    /// Start from these weights instead of random ones: a safetensors file of
    /// named tensors, such as PyTorch's
    /// `safetensors.torch.save_file(model.state_dict(), FILE)` (float32 or
    /// float64). The layer sizes are read off the tensors' shapes; every
    /// missing, unexpected or mis-shaped name is reported.
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
    /// Code penalty (deep) or Jacobian penalty (contractive) weight.
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Weight-decay penalty weight (regularized, denoising).
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f64>,
    /// Dropout probability on the code (regularized, denoising).
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Masking-noise rate (denoising).
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Contractive penalty: double-backward, double-backward-rows,
    /// double-backward-loop or closed-form.
    #[arg(long)]
    pub penalty: Option<String>,
    /// Use only the first N training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The checkpoint file inside a run folder.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

/// Everything `train` decided before starting: checked, nothing written yet.
struct Plan {
    spec: ModelSpec,
    seed: u64,
    lr: f64,
    batch_size: usize,
    epochs: usize,
    out: PathBuf,
    resume: Option<snapshot::Loaded>,
    /// Starting weights (`--init-from`), already checked against the model.
    init: Option<StateDict<f32>>,
    /// Where the training runs (`--device`).
    device: gradtape_kernels::Device,
}

/// Applies the model options given on the command line to `spec`.
fn apply_model_options(spec: &mut ModelSpec, a: &TrainArgs) -> Result<(), CliError> {
    if let Some(w) = &a.widths {
        if w.len() < 2 {
            return Err(CliError::usage(format!(
                "--widths {w:?}: give at least the input and one more width"
            )));
        }
        spec.widths = w.clone();
    }
    if let Some(h) = a.hidden {
        spec.set_hidden(h);
    }
    if let Some(l) = a.latent {
        spec.set_latent(l);
    }
    if let Some(v) = a.lambda {
        spec.lambda = v;
    }
    if let Some(v) = a.gamma {
        spec.gamma = v;
    }
    if let Some(v) = a.dropout {
        spec.dropout = v;
    }
    if let Some(v) = a.noise {
        spec.noise = v;
    }
    if let Some(p) = &a.penalty {
        spec.penalty = p.parse().map_err(|e| CliError::usage(format!("--penalty: {e}")))?;
    }
    spec.validate().map_err(CliError::usage)
}

/// The error for `--resume` with model options that differ from the
/// checkpoint's: names the option's flag and both values.
fn resume_mismatch(a: &TrainArgs, wanted: &ModelSpec, saved: &ModelSpec) -> CliError {
    let (w, s) = (wanted.to_metadata(), saved.to_metadata());
    let key = ["widths", "lambda", "gamma", "dropout", "noise", "penalty"]
        .into_iter()
        .find(|k| w.get(*k) != s.get(*k))
        .unwrap_or("widths");
    let flag = match key {
        "widths" if a.hidden.is_some() && wanted.hidden() != saved.hidden() => "--hidden".to_string(),
        "widths" if a.latent.is_some() && wanted.latent() != saved.latent() => "--latent".to_string(),
        k => format!("--{k}"),
    };
    let get = |m: &std::collections::HashMap<String, String>| m.get(key).cloned().unwrap_or_default();
    CliError::usage(format!(
        "{flag}: the checkpoint's model has {key} {}, this one {}; a --resume run keeps its model",
        get(&s),
        get(&w)
    ))
}

fn plan(a: &TrainArgs) -> Result<Plan, CliError> {
    let kind: ModelKind = a.model.parse().map_err(|e| CliError::usage(format!("MODEL: {e}")))?;
    let device = check_device(a.device)?;
    let out = a.out.clone().unwrap_or_else(|| default_out(kind.name()));
    let ckpt = checkpoint_path(&out);
    let defaults = ModelSpec::train_defaults(kind);
    let (spec, seed, lr, batch_size, resume, init) = if a.resume {
        if !ckpt.exists() {
            return Err(CliError::usage(format!("--resume: no checkpoint at {}", ckpt.display())));
        }
        let loaded = snapshot::load(&ckpt, "--resume")?;
        if loaded.spec.kind != kind {
            return Err(CliError::usage(format!(
                "--resume: {} holds a {} checkpoint, not {kind}",
                ckpt.display(),
                loaded.spec.kind
            )));
        }
        let mut wanted = loaded.spec.clone();
        apply_model_options(&mut wanted, a)?;
        if wanted != loaded.spec {
            return Err(resume_mismatch(a, &wanted, &loaded.spec));
        }
        let info = &loaded.info;
        for (flag, given, saved) in [
            ("--seed", a.seed.map(|s| s as f64), info.seed as f64),
            ("--lr", a.lr, info.lr),
            ("--batch-size", a.batch_size.map(|b| b as f64), info.batch_size as f64),
        ] {
            if let Some(g) = given {
                if g != saved {
                    return Err(CliError::usage(format!(
                        "{flag} {g} differs from the checkpoint's {saved}; a resumed run keeps its settings"
                    )));
                }
            }
        }
        (loaded.spec.clone(), info.seed, info.lr, info.batch_size, Some(loaded), None)
    } else {
        if ckpt.exists() {
            return Err(CliError::usage(format!(
                "--out: {} already holds a checkpoint; pass --resume to continue it, or choose another --out",
                out.display()
            )));
        }
        let init = match &a.init_from {
            Some(path) => {
                let tensors =
                    read_state_dict(path).map_err(|e| CliError::usage(format!("--init-from: {e}")))?;
                Some(tensors)
            }
            None => None,
        };
        let mut spec = match &init {
            Some(tensors) => ModelSpec::sized_from(kind, tensors),
            None => ModelSpec::default_for(kind),
        };
        apply_model_options(&mut spec, a)?;
        if let (Some(tensors), Some(path)) = (&init, &a.init_from) {
            spec.build_from::<f32, f32>(tensors)
                .map_err(|e| CliError::usage(format!("--init-from: {}: {e}", path.display())))?;
        }
        let lr = a.lr.unwrap_or(defaults.lr);
        (spec, a.seed.unwrap_or(0), lr, a.batch_size.unwrap_or(defaults.batch_size), None, init)
    };
    Adam::<f32>::try_new(lr).map_err(|e| CliError::usage(format!("--lr {lr}: {e}")))?;
    if batch_size == 0 {
        return Err(CliError::usage("--batch-size must be at least 1"));
    }
    let epochs = a.epochs.unwrap_or(defaults.epochs);
    if epochs == 0 {
        return Err(CliError::usage("--epochs must be at least 1"));
    }
    Ok(Plan { spec, seed, lr, batch_size, epochs, out, resume, init, device })
}

/// The training and test sets for a model.
pub fn load_data(kind: ModelKind, data: Option<&Path>, flag: &str) -> Result<(Dataset, Dataset), CliError> {
    if kind == ModelKind::ZeroDigit {
        let digit = Dataset::new(ZeroDigit::<f32>::digit(), vec![0], 5, 5);
        return Ok((digit.clone(), digit));
    }
    let split = match data {
        Some(dir) => MnistSplit::from_dir(dir).map_err(|e| CliError::usage(format!("{flag}: {e}")))?,
        None => MnistSplit::embedded(),
    };
    Ok((split.train, split.test))
}

/// `gradtape train`.
pub fn run(a: TrainArgs) -> Result<(), CliError> {
    let plan = plan(&a)?;
    let (mut train, mut test) = load_data(plan.spec.kind, a.data.as_deref(), "--data")?;
    if let Some(n) = a.train_limit {
        train = train.take(n);
    }
    if let Some(n) = a.test_limit {
        test = test.take(n);
    }
    if train.pixels() != plan.spec.widths[0] {
        let flag = if a.init_from.is_some() { "--init-from" } else { "--data" };
        return Err(CliError::usage(format!(
            "{flag}: the images have {} pixels but the model's input is {}",
            train.pixels(),
            plan.spec.widths[0]
        )));
    }
    let mut model = plan.spec.build(plan.seed);
    let mut opt = Adam::<f32>::new(plan.lr);
    let mut info = RunInfo {
        epoch: 0,
        seed: plan.seed,
        lr: plan.lr,
        batch_size: plan.batch_size,
        train_losses: Vec::new(),
        test_losses: Vec::new(),
    };
    if let Some(tensors) = &plan.init {
        // Checked in `plan`: it fits.
        load_state_dict(model.params_mut(), tensors, plan.spec.kind.name())
            .map_err(|e| CliError::usage(format!("--init-from: {e}")))?;
        println!(
            "starting from the weights in {}",
            a.init_from.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    if let Some(loaded) = &plan.resume {
        loaded.restore_model(model.as_mut(), "--resume")?;
        opt.load_state(&loaded.optimizer_state())
            .map_err(|e| CliError::usage(format!("--resume: optimiser state: {e}")))?;
        info = loaded.info.clone();
    }
    // Built (and restored) on the host, then moved: the training runs where
    // the parameters are, and checkpoints are copied back when written.
    model.params_mut().to_device(plan.device);
    std::fs::create_dir_all(&plan.out)
        .map_err(|e| CliError::usage(format!("--out: cannot create {}: {e}", plan.out.display())))?;

    println!("{}", model.describe());
    if plan.device != gradtape_kernels::Device::Cpu {
        println!("on {}", plan.device.describe());
    }
    println!(
        "{} parameters; {} training and {} test images; batch {}, Adam lr {}, seed {}; run folder {}",
        model.params().count(),
        train.len(),
        test.len(),
        plan.batch_size,
        plan.lr,
        plan.seed,
        plan.out.display()
    );
    if info.epoch > 0 {
        println!("resuming after epoch {} of {}", info.epoch, plan.epochs);
    }
    let started = Instant::now();
    let mut reporter = Reporter::new(plan.epochs, a.quiet);
    let ckpt = checkpoint_path(&plan.out);
    for epoch in info.epoch..plan.epochs {
        let config = TrainConfig {
            epochs: epoch + 1,
            batch_size: plan.batch_size,
            seed: plan.seed,
            eval_batch_size: 500,
            detect_anomaly: a.detect_anomaly,
        };
        let history =
            fit(model.as_mut(), &mut opt, &train, &test, &config, epoch, &mut |p| reporter.update(p));
        if let Some(d) = &history.diverged {
            // The last checkpoint written (if any) held finite weights: it is
            // left as it is, and no pictures are drawn from NaN weights.
            let first = d.first_anomaly.as_deref().unwrap_or("no op found (the loss itself)");
            let kept = if info.epoch > 0 {
                format!("{} (epoch {}) is kept as it was", ckpt.display(), info.epoch)
            } else {
                "no checkpoint was written".to_string()
            };
            return Err(CliError::diverged(format!(
                "training diverged at epoch {}, step {} (loss {}); first non-finite value: {first}; {kept}; \
                 pictures not drawn; try a smaller --lr (now {})",
                d.epoch, d.step, d.loss, plan.lr
            )));
        }
        for stats in &history.epochs {
            info.train_losses.push(stats.train_loss);
            info.test_losses.push(stats.test_loss);
        }
        info.epoch = epoch + 1;
        snapshot::save(&ckpt, &plan.spec, model.as_ref(), &opt, &info)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    // The pictures are drawn on the host.
    model.params_mut().to_device(gradtape_kernels::Device::Cpu);
    let data_name = a
        .data
        .as_ref()
        .map_or("built-in MNIST digits (8,000 / 2,000)".to_string(), |d| d.display().to_string());
    let config = vec![
        ("model".to_string(), model.describe()),
        ("parameters".to_string(), model.params().count().to_string()),
        ("data".to_string(), format!("{data_name}: {} training, {} test images", train.len(), test.len())),
        ("epochs".to_string(), plan.epochs.to_string()),
        ("batch size".to_string(), plan.batch_size.to_string()),
        ("optimiser".to_string(), format!("Adam, lr {}", plan.lr)),
        ("seed".to_string(), plan.seed.to_string()),
        ("checkpoint".to_string(), "checkpoint.safetensors".to_string()),
    ];
    let extra = vec![("training time this session".to_string(), format!("{seconds:.1} s"))];
    let page = report::write(
        model.as_mut(),
        report::RunReport {
            out: &plan.out,
            spec: &plan.spec,
            info: &info,
            test: &test,
            config,
            extra_metrics: extra,
        },
    )?;
    let last = info.test_losses.last().copied().unwrap_or(f64::NAN);
    println!(
        "done: {} epochs, final test loss {:.5}, {:.1} s; open {}",
        info.epoch,
        last,
        seconds,
        page.display()
    );
    Ok(())
}
