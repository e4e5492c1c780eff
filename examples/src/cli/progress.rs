//! Progress output: a bar per epoch with the running loss and samples per
//! second when stdout is a terminal, and one summary line per epoch always
//! (so logs stay readable when the output goes to a file or CI).

use gradtape_models::train::{EpochStats, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Prints training progress.
pub struct Reporter {
    bar: Option<ProgressBar>,
    interactive: bool,
    epochs: usize,
    epoch_start: Instant,
    running: f64,
    /// The epoch of the last report (0 before the first).
    epoch: usize,
}

impl Reporter {
    /// A reporter for a run of `epochs` epochs; `quiet` suppresses the bar.
    pub fn new(epochs: usize, quiet: bool) -> Reporter {
        let interactive = !quiet && std::io::stdout().is_terminal();
        Reporter { bar: None, interactive, epochs, epoch_start: Instant::now(), running: f64::NAN, epoch: 0 }
    }

    /// Handles one event from the training loop.
    pub fn update(&mut self, event: Progress<'_>) {
        match event {
            Progress::Batch { epoch, batch, batches, loss, samples } => {
                // The first report of an epoch (reports come at most ten
                // times a second, so it may be past batch 1).
                if epoch != self.epoch {
                    self.epoch = epoch;
                    self.running = loss;
                    if self.interactive {
                        let bar = ProgressBar::new(batches as u64);
                        bar.set_style(
                            ProgressStyle::with_template(
                                "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({eta})",
                            )
                            .expect("a valid template")
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(format!("{epoch}/{}", self.epochs));
                        self.bar = Some(bar);
                    }
                }
                self.running = 0.9 * self.running + 0.1 * loss;
                if let Some(bar) = &self.bar {
                    let rate = samples as f64 / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
                    bar.set_position(batch as u64);
                    bar.set_message(format!("loss {:.5}  {:.0} samples/s", self.running, rate));
                }
            }
            Progress::Epoch(stats) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                crate::say!("{}", epoch_line(stats, self.epochs));
                // The next epoch's training starts now (after this one's
                // test loss).
                self.epoch_start = Instant::now();
            }
        }
    }
}

/// `epoch  3/10  train 0.02345  test 0.02411  4.1 s  19,000 samples/s`
pub fn epoch_line(s: &EpochStats, epochs: usize) -> String {
    format!(
        "epoch {:>3}/{epochs}  train {:.5}  test {:.5}  {:.1} s  {:.0} samples/s",
        s.epoch, s.train_loss, s.test_loss, s.seconds, s.samples_per_sec
    )
}
