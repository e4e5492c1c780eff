//! The training loop shared by every model.
//!
//! One epoch: shuffle the training set (seeded by the run's seed and the
//! epoch number), and for each mini-batch
//!
//! 1. clear the tape (it keeps its allocation) and read the parameters onto
//!    it as leaves,
//! 2. compute the model's loss,
//! 3. take the gradients with one backward sweep (nothing recorded),
//! 4. drop the recording, so the parameters are no longer shared and the
//!    optimiser updates them in place.
//!
//! Nothing in a step waits for its result ([`queue_step`]): the loss goes
//! into a guard where the model is (`gradtape_kernels::guard`), which also
//! stops every update once a loss is not finite, and the loop reads the
//! guard back only to report progress, at most ten times a second. The
//! training images are where the model is too, and each batch is gathered
//! there by index (`gradtape_kernels::gather`). On a GPU the host can then
//! queue the next step while the device runs this one.
//!
//! After each epoch the test loss is measured in evaluation mode (no
//! dropout, no input noise) over batches of 500, weighted by batch size.
//!
//! Every random choice in a step (dropout, noise, the VAE's epsilon) is
//! seeded from `(seed, epoch, step)`, and the shuffle from `(seed, epoch)`,
//! so a run is bit-for-bit reproducible, and resuming at an epoch boundary
//! gives the same result as never stopping.

use crate::autoencoders::{Autoencoder, StepCtx};
use crate::data::{Batches, Dataset, LastBatch};
use crate::optim::Optimizer;
use gradtape::{grad_values, Tape, Tensor};
use gradtape_kernels::workers::on_worker_for;
use gradtape_kernels::{Device, LossGuard, RowIndex};
use std::time::{Duration, Instant};

/// Settings of a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// The epoch to stop after, counting from 1: [`fit`] trains up to and
    /// including epoch `epochs` (the total, not the number still to run).
    pub epochs: usize,
    /// Training samples per step; the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// The run's seed: shuffles and every step's random draws derive from it.
    pub seed: u64,
    /// Batch size for measuring the test loss.
    pub eval_batch_size: usize,
    /// Anomaly mode for every step (`gradtape train --detect-anomaly`):
    /// the run stops at the first op that makes a NaN or an infinity, not
    /// only at a non-finite loss. Slower; for finding what went wrong.
    pub detect_anomaly: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { epochs: 10, batch_size: 256, seed: 0, eval_batch_size: 500, detect_anomaly: false }
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// Counting from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by size).
    pub train_loss: f64,
    /// Test loss after the epoch.
    pub test_loss: f64,
    /// Seconds spent training (not evaluating).
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_sec: f64,
}

/// Per-epoch results of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per epoch that finished, in order; an epoch that diverged
    /// has none.
    pub epochs: Vec<EpochStats>,
    /// Set when a step's loss was not finite: the run stopped there, with
    /// the weights as they were before that step.
    pub diverged: Option<Divergence>,
}

/// Where and how a training run diverged.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// The epoch it happened in, counting from 1.
    pub epoch: usize,
    /// The step within the epoch, from 1.
    pub step: usize,
    /// The step's loss (NaN or infinite; finite only when anomaly mode
    /// found a non-finite value on the way to a finite loss).
    pub loss: f64,
    /// The first op that made a non-finite value, as anomaly mode reports
    /// it (`exp at models/src/autoencoders/vae.rs:88 produced inf at ...`).
    pub first_anomaly: Option<String>,
}

impl History {
    /// Training loss per epoch.
    pub fn train_losses(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.train_loss).collect()
    }

    /// Test loss per epoch.
    pub fn test_losses(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.test_loss).collect()
    }
}

/// Progress reports for a user interface.
pub enum Progress<'a> {
    /// Batches finished: reported at most ten times a second and at an
    /// epoch's last batch (every batch in anomaly mode).
    Batch {
        /// The epoch, counting from 1.
        epoch: usize,
        /// The last batch finished, counting from 1.
        batch: usize,
        /// Batches in this epoch.
        batches: usize,
        /// The mean loss of the batches finished since the last report (the
        /// model's loss, averaged over their samples).
        loss: f64,
        /// Training samples seen so far in this epoch, this batch included.
        samples: usize,
    },
    /// An epoch finished (training and test loss measured).
    Epoch(&'a EpochStats),
}

/// Mixes a run seed with an epoch and a step into an independent seed
/// (SplitMix64's finaliser).
pub fn derive_seed(seed: u64, epoch: u64, step: u64) -> u64 {
    let mut z = seed
        .wrapping_add(epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(step.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One optimisation step on a batch; returns the batch's loss. The tape is
/// cleared before the parameters are updated.
pub fn train_step<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Tape<f32>,
    batch: &Tensor<f32>,
    step_seed: u64,
) -> f64 {
    tape.clear();
    let (loss, grads) = {
        // The step runs where the parameters are; the batch comes from the
        // host and is copied there (a no-op on the CPU).
        let device = model.params().device();
        let p = model.params().bind(tape);
        let x = tape.constant(&batch.to(device));
        let mut ctx = StepCtx::on(step_seed, device);
        let loss = model.loss(&p, x, &mut ctx).total;
        (loss.item() as f64, grad_values(&[loss], p.vars(), None))
    };
    // A non-finite loss (or, in anomaly mode, a non-finite value on the
    // way) leaves the weights as they were: an update from it would only
    // write NaN into them. The tape keeps the recording for the caller to
    // read the anomaly from.
    if !loss.is_finite() || tape.first_anomaly().is_some() {
        return loss;
    }
    // Drop the recording first: the tape's leaves share the parameters'
    // storage, and an update while they are shared would copy them.
    tape.clear();
    opt.step(&mut model.params_mut().tensors_mut(), &grads);
    loss
}

/// The randomness of a queued step (see [`queue_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepSeed {
    /// The step's own seed: its generator is seeded with it, and on a GPU
    /// each draw is keyed by a number from it ([`StepCtx::on`]).
    Seeded(u64),
    /// One key for the whole loop: each draw is named by the step the guard
    /// records next and its place in the step, and on a GPU the kernels
    /// read the step from the guard there ([`StepCtx::clocked`]), so that
    /// every step launches the same kernels with the same arguments.
    Numbered(u64),
}

impl StepSeed {
    /// The randomness of step `step` (counted from 0 in its loop) made
    /// again on `device`: the draws the queued step made, for recomputing
    /// it (see [`first_anomaly`]).
    pub fn again(self, step: u64, device: Device) -> StepCtx {
        match self {
            StepSeed::Seeded(seed) => StepCtx::on(seed, device),
            StepSeed::Numbered(key) => StepCtx::numbered(key, step, device),
        }
    }
}

/// One optimisation step, queued: [`train_step`] without reading the loss
/// back. The loss is recorded in `guard`, where the model is, and the
/// update reads the guard there and skips itself if this loss, or any
/// before it, was not finite (see `gradtape_kernels::guard`). So on a GPU
/// the host queues the step and returns at once, free to queue the next
/// one while the device runs this one; [`LossGuard::read`] gives the
/// losses, waiting then. On the CPU the result is the same as
/// `train_step`'s (for a [`StepSeed::Seeded`] step), and nothing waits
/// either way.
pub fn queue_step<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Tape<f32>,
    batch: &Tensor<f32>,
    seed: StepSeed,
    guard: &mut LossGuard,
) {
    tape.clear();
    let grads = {
        let device = model.params().device();
        let p = model.params().bind(tape);
        let x = tape.constant(&batch.to(device));
        // The draws read the guard's step clock: the context goes before
        // the guard records this step.
        let loss = {
            let mut ctx = match seed {
                StepSeed::Seeded(seed) => StepCtx::on(seed, device),
                StepSeed::Numbered(key) => StepCtx::clocked(key, guard),
            };
            model.loss(&p, x, &mut ctx).total
        };
        guard.record(&loss.value(), batch.shape()[0] as f64);
        grad_values(&[loss], p.vars(), None)
    };
    tape.clear();
    opt.step_unless_diverged(&mut model.params_mut().tensors_mut(), &grads, Some(guard));
}

/// The first op that made a non-finite value in one step's loss and
/// gradients: the step recomputed from the same weights, batch and
/// randomness (`ctx`, made as the step's was) with anomaly mode recording
/// (see `gradtape::anomaly`). `None` if none did.
pub fn first_anomaly<M: Autoencoder<f32> + ?Sized>(
    model: &M,
    batch: &Tensor<f32>,
    mut ctx: StepCtx,
) -> Option<String> {
    let tape = Tape::new();
    tape.record_anomalies(true);
    let device = model.params().device();
    let p = model.params().bind(&tape);
    let x = tape.constant(&batch.to(device));
    let loss = model.loss(&p, x, &mut ctx).total;
    let _ = grad_values(&[loss], p.vars(), None);
    tape.first_anomaly()
}

/// The mean loss over `data` in evaluation mode, in batches of
/// `batch_size`, with step randomness (the VAE's epsilon) seeded by `seed`.
pub fn evaluate<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    data: &Dataset,
    batch_size: usize,
    seed: u64,
) -> f64 {
    let was_training = model.is_training();
    model.set_training(false);
    let mut tape = Tape::new();
    let mut total = 0.0;
    for (i, batch) in Batches::in_order(data, batch_size, LastBatch::Keep).enumerate() {
        tape.clear();
        let device = model.params().device();
        let p = model.params().bind(&tape);
        let x = tape.constant(&batch.images.to(device));
        let mut ctx = StepCtx::on(derive_seed(seed, u64::MAX, i as u64), device);
        total += model.loss(&p, x, &mut ctx).total.item() as f64 * batch.images.shape()[0] as f64;
    }
    model.set_training(was_training);
    total / data.len().max(1) as f64
}

/// How often the training loop reads its losses back for progress reports:
/// at most ten times a second, and at the end of every epoch.
const REFRESH: Duration = Duration::from_millis(100);

/// Trains epochs `start_epoch + 1 ..= config.epochs` (pass 0 to start
/// fresh, or the number of epochs already done to resume) and returns their
/// statistics. `on_progress` sees the epoch's progress at most ten times a
/// second and at its last batch, and every epoch's end.
///
/// Steps are queued ([`queue_step`]): the loss stays where the model is,
/// and the loop reads it back only for those reports, so on a GPU the host
/// does not wait for the device at every step. A step whose loss is not
/// finite leaves the weights as they were (its update, and every later
/// one, skips itself on the device); at the next report the loop sees it,
/// stops, and names the op that went wrong by recomputing that step in
/// anomaly mode. With `config.detect_anomaly` every step is checked as it
/// runs instead, which waits for it.
///
/// The loop runs on one of rayon's workers, with the others kept awake
/// ([`on_worker_kept_awake`](gradtape_kernels::workers::on_worker_kept_awake)),
/// so that the serial work between parallel passes does not compete with
/// idle workers for the cores and a parallel pass does not wait for a worker
/// to wake up. A model on a GPU leaves the CPU workers nothing to do, so
/// they are left to sleep ([`on_worker_for`]).
pub fn fit<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    train: &Dataset,
    test: &Dataset,
    config: &TrainConfig,
    start_epoch: usize,
    on_progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> History {
    on_worker_for(model.params().device(), || {
        let mut tape = Tape::with_capacity(1024);
        tape.record_anomalies(config.detect_anomaly);
        let mut history = History::default();
        // The training images go where the model is, once: each step's batch
        // is gathered there (a no-op copy on the CPU).
        let images = train.images.to(model.params().device());
        for epoch in start_epoch + 1..=config.epochs {
            model.set_training(true);
            let started = Instant::now();
            let trained = if config.detect_anomaly {
                epoch_checking_each_step(model, opt, &mut tape, train, config, epoch, on_progress)
            } else {
                epoch_queued(model, opt, &mut tape, (train, &images), config, epoch, on_progress)
            };
            let (loss_sum, samples) = match trained {
                Ok(sums) => sums,
                Err(divergence) => {
                    history.diverged = Some(divergence);
                    model.set_training(true);
                    return history;
                }
            };
            let seconds = started.elapsed().as_secs_f64();
            let test_loss = evaluate(
                model,
                test,
                config.eval_batch_size,
                derive_seed(config.seed, epoch as u64, u64::MAX),
            );
            let stats = EpochStats {
                epoch,
                train_loss: loss_sum / samples.max(1) as f64,
                test_loss,
                seconds,
                samples_per_sec: samples as f64 / seconds.max(1e-9),
            };
            on_progress(Progress::Epoch(&stats));
            history.epochs.push(stats);
        }
        model.set_training(true);
        history
    })
}

/// The batches of one epoch, shuffled by the run's seed and the epoch.
fn epoch_batches<'a>(train: &'a Dataset, config: &TrainConfig, epoch: usize) -> Batches<'a> {
    Batches::new(train, config.batch_size, derive_seed(config.seed, epoch as u64, 0), LastBatch::Keep)
}

/// The seed of step `index` (from 0) of `epoch`.
fn step_seed(config: &TrainConfig, epoch: usize, index: usize) -> u64 {
    derive_seed(config.seed, epoch as u64, index as u64 + 1)
}

/// One epoch of queued steps: the sum of loss * batch size and the number
/// of samples, or where it diverged. `images` are the training set's,
/// already where the model is: the epoch's shuffled order goes there once
/// (one copy), and each batch is gathered there from it by index (one
/// launch on a GPU), the same rows [`Batches`] gives.
fn epoch_queued<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Tape<f32>,
    (train, images): (&Dataset, &Tensor<f32>),
    config: &TrainConfig,
    epoch: usize,
    on_progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(f64, usize), Divergence> {
    let device = model.params().device();
    let mut guard = LossGuard::on(device);
    let batches = epoch_batches(train, config, epoch);
    let (n_batches, order) = (batches.num_batches(), RowIndex::new(batches.order(), device));
    let (mut reported, mut last_report) = ((0.0, 0.0), Instant::now());
    let mut sums = (0.0, 0);
    // On a GPU the draws are numbered under one key for the epoch, so that
    // every step is the same launches; on the CPU each step keeps its own
    // seed (the numbers `train_step` draws).
    let epoch_key = derive_seed(config.seed, epoch as u64, 0);
    let seed_of = |i: usize| {
        if device.is_cuda() {
            StepSeed::Numbered(epoch_key)
        } else {
            StepSeed::Seeded(step_seed(config, epoch, i))
        }
    };
    for i in 0..n_batches {
        // Batch i: the guard has recorded i steps (on a GPU the launch reads
        // that there, so it is the same launch at every step).
        debug_assert_eq!(guard.steps(), i as u64);
        let batch = images.gather_batch(&order, config.batch_size, &guard);
        queue_step(model, opt, tape, &batch, seed_of(i), &mut guard);
        if i + 1 < n_batches && last_report.elapsed() < REFRESH {
            continue;
        }
        // A report: the one read of the losses (on a GPU, the one wait).
        last_report = Instant::now();
        let read = guard.read();
        if let Some(bad) = read.diverged_at {
            // Steps `bad..=i` were skipped on the device: the weights are
            // those of before step `bad`. Its batch and seed make it again.
            let bad = bad as usize;
            opt.forget_skipped((i + 1 - bad) as u64);
            let batch =
                epoch_batches(train, config, epoch).nth(bad).expect("the step that diverged is in the epoch");
            let first_anomaly = first_anomaly(&*model, &batch.images, seed_of(bad).again(bad as u64, device));
            return Err(Divergence { epoch, step: bad + 1, loss: read.bad_loss, first_anomaly });
        }
        let since = (read.loss_sum - reported.0, read.weight_sum - reported.1);
        reported = (read.loss_sum, read.weight_sum);
        sums = (read.loss_sum, read.weight_sum as usize);
        on_progress(Progress::Batch {
            epoch,
            batch: i + 1,
            batches: n_batches,
            loss: since.0 / since.1.max(1.0),
            samples: sums.1,
        });
    }
    Ok(sums)
}

/// One epoch in anomaly mode: each step runs and is checked before the
/// next (the recording shows the first op that made a non-finite value,
/// even on the way to a finite loss), waiting for it on a GPU.
fn epoch_checking_each_step<M: Autoencoder<f32> + ?Sized>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Tape<f32>,
    train: &Dataset,
    config: &TrainConfig,
    epoch: usize,
    on_progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(f64, usize), Divergence> {
    let batches = epoch_batches(train, config, epoch);
    let n_batches = batches.num_batches();
    let (mut loss_sum, mut samples) = (0.0, 0usize);
    for (i, batch) in batches.enumerate() {
        let seed = step_seed(config, epoch, i);
        let n = batch.images.shape()[0];
        let loss = train_step(model, opt, tape, &batch.images, seed);
        let found = tape.first_anomaly();
        if !loss.is_finite() || found.is_some() {
            // Stop here, with the weights of before this step.
            let first_anomaly = found.or_else(|| {
                first_anomaly(&*model, &batch.images, StepCtx::on(seed, model.params().device()))
            });
            return Err(Divergence { epoch, step: i + 1, loss, first_anomaly });
        }
        loss_sum += loss * n as f64;
        samples += n;
        on_progress(Progress::Batch { epoch, batch: i + 1, batches: n_batches, loss, samples });
    }
    Ok((loss_sum, samples))
}
