//! The training loop's guard: the divergence check without a host wait.
//!
//! A training loop must not write NaN into the weights: a step whose loss is
//! not finite has to leave them as they were. The plain way to ensure that
//! is to read the loss back (`loss.item()`) before updating, and on a GPU
//! that read makes the host wait for the whole step at every step, so the
//! host can never queue the next step while the device runs this one.
//!
//! The guard moves the check to where the loss is. After each step's loss,
//! [`LossGuard::record`] queues one small kernel (`loss_guard` in
//! `kernels/cuda/optim.cu`) that updates six numbers on the device:
//!
//! ```text
//! [0] diverged   0 while every loss was finite; 1 from the first that was not, for good
//! [1] step       the index of that step (-1 before)
//! [2] loss sum   sum of loss * weight over the steps before it
//! [3] weights    sum of their weights (samples)
//! [4] bad loss   that first non-finite loss
//! [5] steps      how many steps it has recorded (the device's step clock)
//! ```
//!
//! Every optimiser update reads `[0]` on the device ([`LossGuard::flag`],
//! the `guard` of `AdamStep` and `SgdStep`) and does nothing while it is 1.
//! So a non-finite step, and every step queued after it, leaves the weights
//! and the optimiser's moments as they were before it, and the host learns
//! of it when it next reads the guard ([`LossGuard::read`], one copy of
//! five numbers), as PyTorch's fused optimisers skip a step on a device-side
//! `found_inf` flag. The loss sum gives the epoch's mean training loss in
//! the same order of additions as summing on the host.
//!
//! The step count `[5]` is kept on the device so that a step's launches do
//! not carry it: the guard counts its own records, and Adam works out its
//! step `t` (for the bias corrections) from it where the update runs. A
//! training step is then the same launches with the same arguments every
//! time (the precondition for replaying it as one CUDA graph), and nothing
//! the host knows about the step has to travel with each launch.
//!
//! On the CPU the same six numbers live in host memory and are updated
//! there; nothing waits either way.

use crate::device::Device;
use crate::element::Element;
use crate::tensor::Tensor;

/// How many numbers the guard keeps (see the module doc).
pub const STATE_LEN: usize = 6;

/// The guard's state on its device (see the module doc).
#[derive(Clone, Debug)]
pub struct LossGuard {
    state: Tensor<f64>,
    steps: u64,
}

/// What a [`LossGuard`] held when it was read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardReading {
    /// The index (from 0, in the order [`LossGuard::record`] saw them) of the
    /// first step whose loss was not finite, if one was not.
    pub diverged_at: Option<u64>,
    /// That step's loss (NaN or an infinity); NaN when none diverged.
    pub bad_loss: f64,
    /// The sum of loss * weight over the steps before it (all of them if
    /// none diverged).
    pub loss_sum: f64,
    /// The sum of those steps' weights.
    pub weight_sum: f64,
}

impl LossGuard {
    /// A fresh guard on `device`: nothing recorded, nothing diverged.
    pub fn on(device: Device) -> LossGuard {
        let state = Tensor::from_vec(vec![0.0, -1.0, 0.0, 0.0, 0.0, 0.0], &[STATE_LEN]).to(device);
        LossGuard { state, steps: 0 }
    }

    /// Where the guard lives.
    pub fn device(&self) -> Device {
        self.state.device()
    }

    /// Records the next step's `loss` (one number, on the guard's device)
    /// with weight `weight` (its batch's size): queued on a GPU, nothing
    /// waits. Panics if the loss is on another device or is not one number.
    #[track_caller]
    pub fn record<T: Element>(&mut self, loss: &Tensor<T>, weight: f64) {
        assert!(
            loss.len() == 1,
            "LossGuard::record: the loss must be one number, got shape {:?}",
            loss.shape()
        );
        assert!(
            loss.device() == self.device(),
            "LossGuard::record: the loss is on {} but the guard on {}",
            loss.device().describe(),
            self.device().describe()
        );
        self.steps += 1;
        #[cfg(feature = "cuda")]
        if self.state.is_cuda() {
            return crate::cuda::ops::loss_guard(loss, &mut self.state, weight);
        }
        let l = loss.item().as_f64();
        let s = self.state.data_mut();
        if s[0] == 0.0 {
            if l.is_finite() {
                s[2] += l * weight;
                s[3] += weight;
            } else {
                (s[0], s[1], s[4]) = (1.0, s[5], l);
            }
        }
        s[5] += 1.0;
    }

    /// How many steps have been recorded.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The flag the optimisers' updates read: its first number is 1 once a
    /// loss was not finite (the updates then skip themselves).
    pub fn flag(&self) -> &Tensor<f64> {
        &self.state
    }

    /// Reads the guard: one copy of six numbers to the host, which on a GPU
    /// waits for every step queued so far.
    pub fn read(&self) -> GuardReading {
        let s = self.state.to_vec();
        GuardReading {
            diverged_at: (s[0] != 0.0).then_some(s[1] as u64),
            bad_loss: if s[0] != 0.0 { s[4] } else { f64::NAN },
            loss_sum: s[2],
            weight_sum: s[3],
        }
    }
}
