//! `gradtape train <model>`: trains on the embedded MNIST digits (or a
//! `--data` folder), writes a checkpoint at the end of every epoch, and
//! finishes with pictures and an `index.html` in the run folder.

use super::output::num;
use super::run_folder::{self, checkpoint_path};
use super::snapshot::{self, DataIdentity};
use super::{check_device, default_out, CliError, Device};
use gradtape_models::autoencoders::{ModelKind, ZeroDigit};
use gradtape_models::data::{Dataset, MnistSplit};
use gradtape_models::optim::Adam;
use gradtape_models::spec::ModelSpec;
use gradtape_models::state_dict::StateDict;
use std::path::{Path, PathBuf};

pub use super::run_folder::LOCK_FILE;

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
    /// stops at the first op that makes one and names it. Without it, the
    /// losses are read back only for progress reports (at most ten times a
    /// second), a NaN loss skips its update and every later one where the
    /// model is, and at the next report the run stops with the weights of
    /// before that step, the op found by re-running it. On a GPU this flag
    /// makes every step, and every op, wait for its work (a host
    /// synchronisation per op), so that a GPU fault names its own op.
    #[arg(long)]
    pub detect_anomaly: bool,
    /// Start from these weights instead of random ones: a safetensors file of
    /// named tensors, such as PyTorch's
    /// `safetensors.torch.save_file(model.state_dict(), FILE)` (float32 or
    /// float64), or a gradtape checkpoint (its weights, not its optimiser
    /// state). The layer sizes are read off the tensors' shapes; every
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

/// Everything `train` decided before starting: checked, nothing written yet.
pub(super) struct Plan {
    pub(super) spec: ModelSpec,
    pub(super) seed: u64,
    pub(super) lr: f64,
    pub(super) batch_size: usize,
    pub(super) epochs: usize,
    pub(super) out: PathBuf,
    pub(super) resume: Option<snapshot::Loaded>,
    /// Starting weights (`--init-from`), already checked against the model.
    pub(super) init: Option<StateDict<f32>>,
    /// Where the training runs (`--device`).
    pub(super) device: gradtape_kernels::Device,
    /// The data, cut to the limits, and its identity.
    pub(super) train: Dataset,
    pub(super) test: Dataset,
    pub(super) data: DataIdentity,
}

/// The model options each kind uses; any other given is refused.
fn model_flags(kind: ModelKind) -> &'static [&'static str] {
    match kind {
        ModelKind::ZeroDigit => &["--hidden", "--latent"],
        ModelKind::Deep => &["--widths", "--hidden", "--latent", "--lambda"],
        ModelKind::Regularized => &["--hidden", "--latent", "--gamma", "--dropout"],
        ModelKind::Denoising => &["--hidden", "--latent", "--gamma", "--dropout", "--noise"],
        ModelKind::Contractive => &["--hidden", "--latent", "--lambda", "--penalty"],
        ModelKind::Vae => &["--hidden", "--latent"],
    }
}

/// Refuses model options the model does not use, or that contradict each
/// other, naming the flag and the reason.
fn check_model_flags(kind: ModelKind, a: &TrainArgs) -> Result<(), CliError> {
    let given = [
        ("--widths", a.widths.is_some()),
        ("--hidden", a.hidden.is_some()),
        ("--latent", a.latent.is_some()),
        ("--lambda", a.lambda.is_some()),
        ("--gamma", a.gamma.is_some()),
        ("--dropout", a.dropout.is_some()),
        ("--noise", a.noise.is_some()),
        ("--penalty", a.penalty.is_some()),
    ];
    let used = model_flags(kind);
    if let Some((flag, _)) = given.iter().find(|(flag, on)| *on && !used.contains(flag)) {
        return Err(CliError::usage(format!(
            "{flag}: the {kind} model has no such setting (its options: {})",
            used.join(", ")
        )));
    }
    if a.widths.is_some() {
        if let Some(flag) = [("--hidden", a.hidden.is_some()), ("--latent", a.latent.is_some())]
            .iter()
            .find_map(|(f, on)| on.then_some(*f))
        {
            return Err(CliError::usage(format!(
                "{flag}: --widths already gives every width; give one or the other"
            )));
        }
    }
    if matches!(kind, ModelKind::ZeroDigit | ModelKind::Contractive)
        && a.hidden.is_some()
        && a.latent.is_some()
    {
        return Err(CliError::usage(format!(
            "--latent: the {kind} model's code is its hidden layer, so --hidden and --latent are the same width; \
             give one"
        )));
    }
    if kind == ModelKind::ZeroDigit {
        for (flag, on) in [
            ("--data", a.data.is_some()),
            ("--train-limit", a.train_limit.is_some()),
            ("--test-limit", a.test_limit.is_some()),
        ] {
            if on {
                return Err(CliError::usage(format!(
                    "{flag}: the zero-digit model trains on its one built-in 5x5 digit"
                )));
            }
        }
    }
    Ok(())
}

/// The flag a problem with `key` of the model's spec comes from.
fn flag_of(key: &str, a: &TrainArgs) -> String {
    match key {
        "widths" if a.widths.is_some() => "--widths".into(),
        "widths" if a.hidden.is_some() => "--hidden".into(),
        "widths" if a.latent.is_some() => "--latent".into(),
        "widths" => "--init-from".into(),
        k => format!("--{k}"),
    }
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
    spec.check().map_err(|p| CliError::usage(format!("{}: {} {}", flag_of(p.key, a), p.key, p.problem)))
}

/// What a `--resume` run was given that contradicts its checkpoint, one
/// entry per setting.
fn resume_differences(
    a: &TrainArgs,
    wanted: &ModelSpec,
    loaded: &snapshot::Loaded,
    saved: &DataIdentity,
    data: &DataIdentity,
) -> Vec<String> {
    let mut out = Vec::new();
    let (w, s) = (wanted.to_metadata(), loaded.spec.to_metadata());
    for key in ["widths", "lambda", "gamma", "dropout", "noise", "penalty"] {
        if w.get(key) != s.get(key) {
            out.push(format!(
                "{} gives {key} {} (the checkpoint's model has {})",
                flag_of(key, a),
                w.get(key).cloned().unwrap_or_default(),
                s.get(key).cloned().unwrap_or_default()
            ));
        }
    }
    let info = &loaded.info;
    if let Some(seed) = a.seed.filter(|&x| x != info.seed) {
        out.push(format!("--seed {seed} (the checkpoint's run has {})", info.seed));
    }
    if let Some(lr) = a.lr.filter(|&x| x != info.lr) {
        out.push(format!("--lr {} (the checkpoint's run has {})", num(lr), num(info.lr)));
    }
    if let Some(b) = a.batch_size.filter(|&x| x != info.batch_size) {
        out.push(format!("--batch-size {b} (the checkpoint's run has {})", info.batch_size));
    }
    out.extend(data.differences(saved));
    out
}

/// The checks of `train`'s flags that need no file: the model, the flags
/// it uses, the counts and the learning rate, and the model they describe
/// on its own (its sizes bounded). Returns the model kind.
pub fn check_flags(a: &TrainArgs) -> Result<ModelKind, CliError> {
    let kind: ModelKind = a.model.parse().map_err(|e| CliError::usage(format!("MODEL: {e}")))?;
    check_model_flags(kind, a)?;
    for (flag, value) in [
        ("--epochs", a.epochs),
        ("--batch-size", a.batch_size),
        ("--train-limit", a.train_limit),
        ("--test-limit", a.test_limit),
    ] {
        if value == Some(0) {
            return Err(CliError::usage(format!("{flag} must be at least 1")));
        }
    }
    if let Some(lr) = a.lr {
        Adam::<f32>::try_new(lr).map_err(|e| CliError::usage(format!("--lr {}: {e}", num(lr))))?;
        if lr > 0.0 && lr as f32 == 0.0 {
            return Err(CliError::usage(format!(
                "--lr {}: rounds to 0 in f32, the precision training runs in (the smallest positive f32 is \
                 about 1.4e-45), so no step would move a weight",
                num(lr)
            )));
        }
    }
    if a.init_from.is_none() && !a.resume {
        apply_model_options(&mut ModelSpec::default_for(kind), a)?;
    }
    Ok(kind)
}

fn plan(a: &TrainArgs) -> Result<Plan, CliError> {
    let kind = check_flags(a)?;
    let device = check_device(a.device)?;
    let out = a.out.clone().unwrap_or_else(|| default_out(kind.name()));
    if out.exists() && !out.is_dir() {
        return Err(CliError::usage(format!("--out: {} exists and is not a folder", out.display())));
    }
    run_folder::check_outputs(&out)?;
    let ckpt = checkpoint_path(&out);

    // The data, cut to the limits: checked here, before anything is written.
    let (mut train, mut test) = load_data(kind, a.data.as_deref(), "--data")?;
    if let Some(n) = a.train_limit {
        train = train.take(n);
    }
    if let Some(n) = a.test_limit {
        test = test.take(n);
    }
    for (set, what) in [(&train, "training"), (&test, "test")] {
        if set.is_empty() {
            return Err(CliError::usage(format!("--data: the data holds no {what} images")));
        }
    }
    let source = a.data.as_ref().map_or("built-in".to_string(), |d| d.display().to_string());
    let data = DataIdentity::of(source, &train, &test, a.train_limit, a.test_limit);

    let defaults = ModelSpec::train_defaults(kind);
    let epochs = a.epochs.unwrap_or(defaults.epochs);
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
        let Some(saved) = &loaded.info.data else {
            return Err(CliError::usage(format!(
                "--resume: {} does not record the data it was trained on (written by an older gradtape), \
                 so a resume cannot be checked; start a new run",
                ckpt.display()
            )));
        };
        let mut wanted = loaded.spec.clone();
        apply_model_options(&mut wanted, a)?;
        let differences = resume_differences(a, &wanted, &loaded, saved, &data);
        if !differences.is_empty() {
            return Err(CliError::usage(format!(
                "--resume: a resumed run keeps its settings and data, but {}",
                differences.join("; ")
            )));
        }
        let info = &loaded.info;
        (loaded.spec.clone(), info.seed, info.lr, info.batch_size, Some(loaded), None)
    } else {
        if ckpt.exists() {
            return Err(CliError::usage(format!(
                "--out: {} already holds a checkpoint; pass --resume to continue it, or choose another --out",
                out.display()
            )));
        }
        // A gradtape checkpoint works too: its weights start the new run
        // and its optimiser state is left behind (a new run, say with a
        // smaller --lr after a divergence, starts Adam anew).
        let init = match &a.init_from {
            Some(path) => Some(snapshot::read_weights(path, "--init-from")?),
            None => None,
        };
        let mut spec = match (&init, &a.init_from) {
            (Some(tensors), Some(path)) => snapshot::sized_spec(kind, tensors, path, "--init-from")?,
            _ => ModelSpec::default_for(kind),
        };
        apply_model_options(&mut spec, a)?;
        if let (Some(tensors), Some(path)) = (&init, &a.init_from) {
            spec.build_from::<f32, f32>(tensors)
                .map_err(|e| CliError::usage(format!("--init-from: {}: {e}", path.display())))?;
        }
        let lr = a.lr.unwrap_or(defaults.lr);
        (spec, a.seed.unwrap_or(0), lr, a.batch_size.unwrap_or(defaults.batch_size), None, init)
    };
    if train.pixels() != spec.widths[0] {
        let flag = if a.init_from.is_some() {
            "--init-from"
        } else if a.resume {
            "--resume"
        } else if a.widths.is_some() {
            "--widths"
        } else {
            "--data"
        };
        return Err(CliError::usage(format!(
            "{flag}: the images have {} pixels but the model's input is {}",
            train.pixels(),
            spec.widths[0]
        )));
    }
    Ok(Plan { spec, seed, lr, batch_size, epochs, out, resume, init, device, train, test, data })
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

/// `gradtape train`: checks everything ([`plan`]), then trains
/// ([`super::training::run`]).
pub fn run(a: TrainArgs) -> Result<(), CliError> {
    let plan = plan(&a)?;
    super::training::run(&a, plan)
}
