//! The training run of `gradtape train`, once every check has passed
//! (`train::plan`): the run folder locked and cleared of stale temporary
//! files, one checkpoint per epoch, and the report at the end.
//!
//! A checkpoint is written only from a state that can be continued: before
//! each one, the weights, Adam's state and the epoch's losses are checked
//! to be finite. A step's loss can be finite while the update it applies
//! overflows the weights (the last step of an epoch, whose damage no later
//! step's loss would show), and the test loss is measured after it; any
//! number that is not finite there is a divergence (exit code 3), like a
//! non-finite loss within the epoch, and the previous checkpoint is kept as
//! it was.

use super::output::num;
use super::progress::Reporter;
use super::report;
use super::run_folder::{self, checkpoint_path};
use super::snapshot::{self, RunInfo};
use super::train::{Plan, TrainArgs};
use super::CliError;
use crate::say;
use gradtape_models::autoencoders::Autoencoder;
use gradtape_models::optim::{Adam, Optimizer, MAX_STEPS};
use gradtape_models::state_dict::load_state_dict;
use gradtape_models::train::{fit, Divergence, EpochStats, TrainConfig};
use std::path::Path;
use std::time::Instant;

/// Trains the run `plan` describes (checked by `train::plan`).
pub(super) fn run(a: &TrainArgs, plan: Plan) -> Result<(), CliError> {
    let (train, test) = (&plan.train, &plan.test);
    let mut model = plan.spec.build(plan.seed);
    let mut opt = Adam::<f32>::new(plan.lr);
    let mut info = RunInfo {
        epoch: 0,
        seed: plan.seed,
        lr: plan.lr,
        batch_size: plan.batch_size,
        train_losses: Vec::new(),
        test_losses: Vec::new(),
        data: Some(plan.data.clone()),
    };
    if let Some(tensors) = &plan.init {
        // Checked in `plan`: it fits.
        load_state_dict(model.params_mut(), tensors, plan.spec.kind.name())
            .map_err(|e| CliError::usage(format!("--init-from: {e}")))?;
    }
    if let Some(loaded) = &plan.resume {
        loaded.restore_model(model.as_mut(), "--resume")?;
        loaded.restore_optimizer(&mut opt, model.as_ref(), "--resume")?;
        info = loaded.info.clone();
    }
    let ckpt = checkpoint_path(&plan.out);
    if info.epoch >= plan.epochs {
        // A run killed after its last checkpoint and before its report has
        // the epochs but not the pictures: those are drawn now.
        if info.epoch > plan.epochs || report_complete(&plan.out) {
            say!(
                "{} is already at epoch {} of --epochs {}: nothing to do (give a larger --epochs to train on)",
                ckpt.display(),
                info.epoch,
                plan.epochs
            );
            return Ok(());
        }
        let _lock = lock_and_clean(&plan.out)?;
        say!(
            "{} is at its final epoch {} but the run folder has no complete report (the run ended before \
             it was drawn): drawing it",
            ckpt.display(),
            info.epoch
        );
        return finish(a, &plan, model.as_mut(), &info, None);
    }
    check_step_limit(&plan, &opt, info.epoch)?;
    // Last of the checks, and the first write: the run folder, locked.
    let _lock = lock_and_clean(&plan.out)?;
    if plan.init.is_some() {
        say!("starting from the weights in {}", a.init_from.as_deref().unwrap_or(Path::new("")).display());
    }
    // Built (and restored) on the host, then moved: the training runs where
    // the parameters are, and checkpoints are copied back when written.
    model.params_mut().to_device(plan.device);
    #[cfg(feature = "cuda")]
    if a.detect_anomaly && plan.device.is_cuda() {
        gradtape_kernels::cuda::set_sync_every_op(true);
    }

    say!("{}", model.describe());
    if plan.device != gradtape_kernels::Device::Cpu {
        say!("on {}", plan.device.describe());
    }
    say!(
        "{} parameters; {} training and {} test images; batch {}, Adam lr {}, seed {}; run folder {}",
        model.params().count(),
        train.len(),
        test.len(),
        plan.batch_size,
        num(plan.lr),
        plan.seed,
        plan.out.display()
    );
    if info.epoch > 0 {
        say!("resuming after epoch {} of {}", info.epoch, plan.epochs);
    }
    let started = Instant::now();
    let mut reporter = Reporter::new(plan.epochs, a.quiet);
    for epoch in info.epoch..plan.epochs {
        let config = TrainConfig {
            epochs: epoch + 1,
            batch_size: plan.batch_size,
            seed: plan.seed,
            eval_batch_size: 500,
            detect_anomaly: a.detect_anomaly,
        };
        let steps_before = opt.steps();
        let history = fit(model.as_mut(), &mut opt, train, test, &config, epoch, &mut |p| reporter.update(p));
        if let Some(d) = &history.diverged {
            // The last checkpoint written (if any) held finite weights: it is
            // left as it is, and no pictures are drawn from NaN weights.
            return Err(diverged_at_step(a, &plan, d, steps_before == 0 && d.step == 1, &kept(&ckpt, &info)));
        }
        for stats in &history.epochs {
            if let Some(what) = non_finite_at_edge(model.as_ref(), &opt, stats) {
                return Err(CliError::diverged(format!(
                    "training diverged at the end of epoch {}: {what}; {}; pictures not drawn; try a smaller \
                     --lr (now {})",
                    stats.epoch,
                    kept(&ckpt, &info),
                    num(plan.lr)
                )));
            }
            info.train_losses.push(stats.train_loss);
            info.test_losses.push(stats.test_loss);
        }
        info.epoch = epoch + 1;
        snapshot::save(&ckpt, &plan.spec, model.as_ref(), &opt, &info)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    finish(a, &plan, model.as_mut(), &info, Some(seconds))
}

/// Locks the run folder and removes the temporary files interrupted writes
/// left in it (no other process can be writing them once it is locked).
fn lock_and_clean(out: &Path) -> Result<std::fs::File, CliError> {
    let lock = run_folder::lock(out)?;
    let removed = run_folder::remove_stale_temporaries(out)?;
    if removed > 0 {
        say!("removed {removed} temporary file(s) that an interrupted write left in {}", out.display());
    }
    Ok(lock)
}

/// Whether the run folder holds the report a finished run draws last
/// (`index.html`, written after everything else, and `history.csv`).
fn report_complete(out: &Path) -> bool {
    out.join("index.html").is_file() && out.join("history.csv").is_file()
}

/// What a divergence leaves: the last checkpoint, or none.
fn kept(ckpt: &Path, info: &RunInfo) -> String {
    if info.epoch > 0 {
        format!("{} (epoch {}) is kept as it was", ckpt.display(), info.epoch)
    } else {
        "no checkpoint was written".to_string()
    }
}

/// The message of a step whose loss was not finite. When that step was the
/// run's first, no update had been made, so the learning rate is not the
/// cause: the advice names the settings that scale the loss instead.
fn diverged_at_step(a: &TrainArgs, plan: &Plan, d: &Divergence, first: bool, kept: &str) -> CliError {
    let found = d.first_anomaly.as_deref().unwrap_or("no op found (the loss itself)");
    let advice = if first {
        let given: Vec<String> = [("--lambda", a.lambda), ("--gamma", a.gamma)]
            .iter()
            .filter_map(|(flag, v)| v.map(|v| format!("{flag} {}", num(v))))
            .collect();
        let settings = if given.is_empty() {
            "the starting weights or the data".to_string()
        } else {
            format!("the settings ({})", given.join(", "))
        };
        format!("the loss was not finite before any update, so --lr is not the cause: look at {settings}")
    } else {
        format!("try a smaller --lr (now {})", num(plan.lr))
    };
    CliError::diverged(format!(
        "training diverged at epoch {}, step {} (loss {}); first non-finite value: {found}; {kept}; pictures \
         not drawn; {advice}",
        d.epoch, d.step, d.loss
    ))
}

/// The first number at an epoch's end that a checkpoint must not hold: a
/// weight, a number of Adam's state, or the epoch's training or test loss
/// that is NaN or infinite. `None` when all are finite.
fn non_finite_at_edge(model: &dyn Autoencoder<f32>, opt: &Adam<f32>, stats: &EpochStats) -> Option<String> {
    let params = model.params();
    if let Some(what) = snapshot::non_finite(params.named()) {
        return Some(format!("after its last update {what}"));
    }
    let state = opt.state();
    if let Some(what) = snapshot::non_finite(state.iter().map(|(n, t)| (n.as_str(), t))) {
        return Some(format!("after its last update Adam's state {what}"));
    }
    if !stats.train_loss.is_finite() {
        return Some(format!("the training loss is {}", stats.train_loss));
    }
    if !stats.test_loss.is_finite() {
        return Some(format!("the test loss after it is {}", stats.test_loss));
    }
    None
}

/// Refuses, before any work, a run that would take Adam past [`MAX_STEPS`]
/// steps: its checkpoint stores the count in f32, exact only up to there,
/// so a resumed run could not continue it bit for bit.
fn check_step_limit(plan: &Plan, opt: &Adam<f32>, done: usize) -> Result<(), CliError> {
    let per_epoch = plan.train.len().div_ceil(plan.batch_size) as u64;
    let remaining = (plan.epochs - done) as u64;
    let total = opt.steps().saturating_add(per_epoch.saturating_mul(remaining));
    if total <= MAX_STEPS {
        return Ok(());
    }
    let most = done as u64 + MAX_STEPS.saturating_sub(opt.steps()) / per_epoch.max(1);
    Err(CliError::usage(format!(
        "--epochs {}: the run would take Adam to step {total}, past the 2^24 = {MAX_STEPS} steps whose count a \
         checkpoint stores exactly; give --epochs {most} or fewer",
        plan.epochs
    )))
}

/// Draws the run's report (pictures, `history.csv`, `index.html`) from the
/// model at its last epoch; `seconds` is the training time of this
/// session, if it trained.
fn finish(
    a: &TrainArgs,
    plan: &Plan,
    model: &mut dyn Autoencoder<f32>,
    info: &RunInfo,
    seconds: Option<f64>,
) -> Result<(), CliError> {
    let (train, test) = (&plan.train, &plan.test);
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
        ("optimiser".to_string(), format!("Adam, lr {}", num(plan.lr))),
        ("seed".to_string(), plan.seed.to_string()),
        ("checkpoint".to_string(), "checkpoint.safetensors".to_string()),
    ];
    let extra = match seconds {
        Some(s) => vec![("training time this session".to_string(), format!("{s:.1} s"))],
        None => Vec::new(),
    };
    let page = report::write(
        model,
        report::RunReport { out: &plan.out, spec: &plan.spec, info, test, config, extra_metrics: extra },
    )?;
    let last = info.test_losses.last().copied().unwrap_or(f64::NAN);
    say!(
        "done: {} epochs, final test loss {:.5}, {:.1} s; open {}",
        info.epoch,
        last,
        seconds.unwrap_or(0.0),
        page.display()
    );
    Ok(())
}
