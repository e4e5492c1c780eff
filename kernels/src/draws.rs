//! Numbered draws: a training step's random numbers, named by the step and
//! the draw, so that a GPU step's launches carry nothing that changes from
//! one step to the next.
//!
//! A mask or a noise tensor is drawn from the counter-based generator
//! ([`crate::philox`]) under a 64-bit key, from one of its 2^64 streams.
//! [`Tensor::bernoulli_on`] keys each draw by a number taken from a host
//! generator, so every step's launches carry a new key. A numbered draw
//! instead keeps one key for a whole loop and names the stream by the step
//! and by the draw's place within it:
//!
//! ```text
//! stream = step * 2^20 + draw         (draw = 0, 1, ... within the step)
//! ```
//!
//! With a [`StepClock`], the step is the number of steps the loop's guard
//! ([`crate::LossGuard`]) has recorded, and on a GPU the kernel reads it
//! there (`kernels/cuda/masks.cu`): the launch is the same at every step,
//! which a step replayed as one CUDA graph needs. With a known step
//! ([`DrawStep::At`]) the same numbers are drawn with the step worked out on
//! the host: that is how a step that diverged is drawn again to find the op
//! that made the first non-finite value.
//!
//! On the CPU a numbered draw computes the same generator's numbers on the
//! host, so a mask is the same on both (normal draws agree to the last bits
//! of `log` and `cos`, which CUDA and the C library round their own ways).

use crate::device::Device;
use crate::element::Element;
use crate::guard::LossGuard;
use crate::philox;
use crate::tensor::Tensor;

/// How many low bits of a stream number the draw's place within its step
/// takes (`STEP_SHIFT` in `masks.cu`): up to 2^20 draws per step.
pub const STEP_SHIFT: u32 = 20;

/// A training loop's step number as the guard counts it, readable where the
/// guard lives (see the module doc). Made by [`LossGuard::clock`].
///
/// It holds the guard's numbers, shared: keep it for the step it was made
/// for. Held while the guard records the step's loss, it makes the guard
/// copy its numbers first (copy on write); the draws are right either way.
#[derive(Clone, Debug)]
pub struct StepClock {
    state: Tensor<f64>,
    steps: u64,
}

impl LossGuard {
    /// The step clock of the step this guard records next (see
    /// [`StepClock`]).
    pub fn clock(&self) -> StepClock {
        StepClock { state: self.flag().clone(), steps: self.steps() }
    }
}

impl StepClock {
    /// The step it names: the steps the guard had recorded when it was
    /// made.
    pub fn step(&self) -> u64 {
        self.steps
    }

    /// Where the guard's numbers live.
    pub fn device(&self) -> Device {
        self.state.device()
    }
}

/// Which step a numbered draw belongs to.
#[derive(Clone, Debug)]
pub enum DrawStep {
    /// This step, worked out on the host.
    At(u64),
    /// The step a loop's guard records next, read where the guard lives.
    Clock(StepClock),
}

impl DrawStep {
    /// The step's number.
    pub fn number(&self) -> u64 {
        match self {
            DrawStep::At(step) => *step,
            DrawStep::Clock(clock) => clock.step(),
        }
    }
}

/// One numbered draw: the loop's `key`, the step, and the draw's place
/// within the step (see the module doc).
#[derive(Clone, Debug)]
pub struct DrawNumber {
    /// The generator's key, one for a whole loop.
    pub key: u64,
    /// The step the draw belongs to.
    pub step: DrawStep,
    /// The draw's place within its step, from 0 (below 2^20).
    pub draw: u64,
}

impl DrawNumber {
    /// The generator's stream: `step * 2^20 + draw`.
    pub fn stream(&self) -> u64 {
        (self.step.number() << STEP_SHIFT) + self.draw
    }

    /// What a GPU kernel is given: the key, the stream (the draw alone when
    /// the kernel adds the step from the clock), and the clock.
    #[cfg(feature = "cuda")]
    fn for_kernel(&self) -> (u64, u64, Option<&Tensor<f64>>) {
        match &self.step {
            DrawStep::Clock(clock) => (self.key, self.draw, Some(&clock.state)),
            DrawStep::At(_) => (self.key, self.stream(), None),
        }
    }

    /// Panics at the caller if the draw's place is past 2^20 or its step
    /// clock is not on `device`.
    #[track_caller]
    fn check(&self, device: Device) {
        assert!(self.draw < 1 << STEP_SHIFT, "a numbered draw: draw {} of one step is over 2^20", self.draw);
        if let DrawStep::Clock(clock) = &self.step {
            assert!(
                clock.device() == device,
                "a numbered draw on {}: its step clock is on {}",
                device.describe(),
                clock.device().describe()
            );
        }
    }
}

impl<T: Element> Tensor<T> {
    /// A Bernoulli mask (ones with probability `p_one`) on `device`, drawn
    /// as `number` says (see the module doc): element `i` is one when its 32
    /// random bits are below `round(p_one * 2^32)`, on the CPU and on a GPU
    /// alike. Panics if `p_one` is not a probability or the step clock is on
    /// another device.
    #[track_caller]
    pub fn bernoulli_numbered(shape: &[usize], p_one: f64, number: &DrawNumber, device: Device) -> Self {
        let threshold = philox::threshold(p_one);
        number.check(device);
        #[cfg(feature = "cuda")]
        if let Device::Cuda(ordinal) = device {
            let gpu = crate::tensor::opened_gpu("bernoulli_numbered", ordinal);
            return crate::cuda::ops::bernoulli(&gpu, shape, number.for_kernel(), threshold);
        }
        let (key, stream) = (number.key, number.stream());
        let n: usize = shape.iter().product();
        let values = (0..n as u64).map(|i| {
            if philox::bernoulli(key, stream, i, threshold) {
                T::one()
            } else {
                T::zero()
            }
        });
        Tensor::from_vec(values.collect(), shape).to(device)
    }

    /// Normal numbers `mean + std z` on `device`, drawn as `number` says
    /// (see the module doc); `z` is worked out in f64 and rounded to `T`, as
    /// [`Tensor::normal_on`] does on a GPU. Panics if the step clock is on
    /// another device.
    #[track_caller]
    pub fn normal_numbered(
        shape: &[usize],
        mean: f64,
        std: f64,
        number: &DrawNumber,
        device: Device,
    ) -> Self {
        number.check(device);
        #[cfg(feature = "cuda")]
        if let Device::Cuda(ordinal) = device {
            let gpu = crate::tensor::opened_gpu("normal_numbered", ordinal);
            return crate::cuda::ops::normal(&gpu, shape, number.for_kernel(), mean, std);
        }
        let (key, stream) = (number.key, number.stream());
        let n: usize = shape.iter().product();
        let values = (0..n as u64).map(|i| T::of(mean + std * philox::normal(key, stream, i)));
        Tensor::from_vec(values.collect(), shape).to(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A numbered draw on the CPU is the generator's numbers for the stream
    /// `step * 2^20 + draw`; a step clock names the guard's step count, and
    /// two draws, or two steps, give other numbers.
    #[test]
    fn numbered_draws_are_the_streams_of_their_step_and_place() {
        let mut guard = LossGuard::on(Device::Cpu);
        for _ in 0..3 {
            guard.record(&Tensor::<f64>::scalar(0.5), 1.0);
        }
        let at = |step, draw| DrawNumber { key: 7, step: DrawStep::At(step), draw };
        let clocked = DrawNumber { key: 7, step: DrawStep::Clock(guard.clock()), draw: 2 };
        assert_eq!(clocked.stream(), (3 << 20) + 2);
        let mask = |n: &DrawNumber| Tensor::<f32>::bernoulli_numbered(&[5, 9], 0.3, n, Device::Cpu).to_vec();
        let want: Vec<f32> = (0..45)
            .map(|i| f32::from(u8::from(philox::bernoulli(7, (3 << 20) + 2, i, philox::threshold(0.3)))))
            .collect();
        assert_eq!(mask(&clocked), want);
        assert_eq!(mask(&at(3, 2)), want, "the clock's step, worked out on the host");
        assert_ne!(mask(&at(3, 1)), want, "another draw of the step");
        assert_ne!(mask(&at(4, 2)), want, "the same draw of another step");
        let z = Tensor::<f64>::normal_numbered(&[4], 1.0, 2.0, &at(3, 2), Device::Cpu).to_vec();
        let want: Vec<f64> = (0..4).map(|i| 1.0 + 2.0 * philox::normal(7, (3 << 20) + 2, i)).collect();
        assert_eq!(z, want);
    }

    /// A draw past the 2^20 a step may take is refused, naming it.
    #[test]
    fn a_draw_past_its_steps_share_of_streams_is_refused() {
        let late = DrawNumber { key: 1, step: DrawStep::At(0), draw: 1 << 20 };
        let refused =
            std::panic::catch_unwind(|| Tensor::<f32>::bernoulli_numbered(&[2], 0.5, &late, Device::Cpu));
        let message = *refused.expect_err("draw 2^20").downcast::<String>().unwrap();
        assert!(message.contains("draw 1048576 of one step is over 2^20"), "{message}");
    }
}
