//! Adam, as `torch.optim.Adam` (without amsgrad).
//!
//! Adam keeps two running averages per parameter element: `m`, of the
//! gradient (a momentum), and `v`, of the squared gradient (how large the
//! gradient usually is). It steps along `m / sqrt(v)`, so every element
//! moves by roughly `lr` whatever the scale of its gradient. Both averages
//! start at 0, which biases them towards 0 for the first steps; dividing by
//! `1 - beta^t` corrects that.

use super::{check_lr, check_pairs, check_state, numbered, reject_unknown, Optimizer};
use crate::state_dict::find;
use gradtape_kernels::optim::AdamStep;
use gradtape_kernels::{Element, LossGuard, Tensor};

/// Adam with PyTorch's defaults and exact update rule.
///
/// At step `t = 1, 2, ...`, for each parameter `p` with gradient `g`:
///
/// ```text
/// g <- g + weight_decay * p                      (if weight_decay != 0)
/// m <- beta1 * m + (1 - beta1) * g
/// v <- beta2 * v + (1 - beta2) * g^2
/// p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// (`weight_decay` here is PyTorch's `Adam` L2 penalty, added to the
/// gradient, not `AdamW`'s decoupled decay.) Defaults, as PyTorch: `lr =
/// 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0`.
///
/// ```
/// use gradtape_models::optim::Adam;
/// let opt = Adam::<f32>::new(1e-3).betas(0.9, 0.99).weight_decay(1e-5);
/// ```
///
/// The state is the step count `adam.step` (a 1-element tensor, exact in
/// `f32` up to 2^24 = 16,777,216 steps) and the moments `adam.m.<i>` and
/// `adam.v.<i>`, one pair per parameter, shaped like it.
#[derive(Clone, Debug)]
pub struct Adam<T: Element> {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the running average of the gradient, in [0, 1).
    pub beta1: f64,
    /// Decay of the running average of the squared gradient, in [0, 1).
    pub beta2: f64,
    /// Added to the denominator so it is never 0.
    pub eps: f64,
    /// L2 penalty added to the gradient (`g += weight_decay * p`).
    pub weight_decay: f64,
    /// Steps taken so far (`t` of the last step).
    step: u64,
    /// First moments, one per parameter, made at the first step.
    m: Vec<Tensor<T>>,
    /// Second moments, one per parameter, made at the first step.
    v: Vec<Tensor<T>>,
}

impl<T: Element> Default for Adam<T> {
    /// PyTorch's defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps =
    /// 1e-8`, no weight decay.
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl<T: Element> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's other defaults. Panics if
    /// `lr` is negative or not finite (see [`Adam::try_new`]).
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::try_new(lr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adam with learning rate `lr`, or an error saying why `lr` is not a
    /// valid learning rate (negative or not finite).
    pub fn try_new(lr: f64) -> Result<Self, String> {
        check_lr("Adam", lr)?;
        Ok(Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        })
    }

    /// Sets `(beta1, beta2)`, each in [0, 1).
    #[track_caller]
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self.validate().unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// Sets `eps` (`>= 0`, finite).
    #[track_caller]
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self.validate().unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// Sets the weight decay (`>= 0`, finite).
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self.validate().unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// The number of steps taken (the `t` of the last step).
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Checks every hyperparameter, as `torch.optim.Adam`'s constructor
    /// does.
    pub fn validate(&self) -> Result<(), String> {
        check_lr("Adam", self.lr)?;
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(format!("Adam: invalid {name} {beta}: it must be in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(format!("Adam: invalid eps {}: it must be finite and >= 0", self.eps));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "Adam: invalid weight decay {}: it must be finite and >= 0",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// The most steps an `Adam<f32>` run may take: 2^24 = 16,777,216, the last
/// whole number up to which every f32 is exact, so that the step count its
/// state stores (`adam.step`, a 1-element tensor of the run's precision) is
/// always the true one. A run that would go past it is refused before it
/// starts (`gradtape train`); see [`Adam::steps`].
pub const MAX_STEPS: u64 = 1 << 24;

/// [`MAX_STEPS`] as the stored count compares it.
const MAX_STORED_STEPS: f64 = MAX_STEPS as f64;

impl<T: Element> Optimizer<T> for Adam<T> {
    #[track_caller]
    fn step_unless_diverged(
        &mut self,
        params: &mut [&mut Tensor<T>],
        grads: &[Tensor<T>],
        guard: Option<&LossGuard>,
    ) {
        check_pairs("Adam::step", params, grads);
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        if self.m.is_empty() {
            self.m = params.iter().map(|p| Tensor::zeros_on(p.shape(), p.device())).collect();
            self.v = self.m.clone();
        } else {
            check_state("Adam::step", "first moments", &self.m, params);
            check_state("Adam::step", "second moments", &self.v, params);
        }
        self.step += 1;

        // The scalars are worked out from these in f64, as PyTorch does in
        // Python: on the host for the CPU, inside the kernel on a GPU.
        let step = AdamStep {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            t: self.step,
            guard,
        };
        for ((p, m), v) in params.iter().zip(&mut self.m).zip(&mut self.v) {
            // State loaded from a checkpoint is on the host: it follows its
            // parameter to its device once.
            if m.device() != p.device() {
                *m = m.to(p.device());
                *v = v.to(p.device());
            }
        }
        // Every parameter at once: one launch on a GPU, the same numbers.
        Tensor::adam_update_all(params, &mut self.m, &mut self.v, grads, &step);
    }

    fn forget_skipped(&mut self, steps: u64) {
        self.step = self.step.saturating_sub(steps);
    }

    fn state(&self) -> Vec<(String, Tensor<T>)> {
        if self.step == 0 && self.m.is_empty() {
            return Vec::new();
        }
        let mut state =
            vec![("adam.step".to_string(), Tensor::from_vec(vec![T::of(self.step as f64)], &[1]))];
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            state.push((format!("adam.m.{i}"), m.clone()));
            state.push((format!("adam.v.{i}"), v.clone()));
        }
        state
    }

    fn load_state(&mut self, state: &[(String, Tensor<T>)]) -> Result<(), String> {
        const WHO: &str = "Adam::load_state";
        reject_unknown(WHO, &["adam.step", "adam.m.", "adam.v."], state)?;
        let m = numbered(WHO, "adam.m.", state)?;
        let v = numbered(WHO, "adam.v.", state)?;
        if m.len() != v.len() {
            return Err(format!(
                "{WHO}: {} first moments (`adam.m.<i>`) but {} second moments (`adam.v.<i>`)",
                m.len(),
                v.len()
            ));
        }
        for (i, (m, v)) in m.iter().zip(&v).enumerate() {
            if m.shape() != v.shape() {
                return Err(format!(
                    "{WHO}: `adam.m.{i}` has shape {:?} but `adam.v.{i}` has shape {:?}",
                    m.shape(),
                    v.shape()
                ));
            }
            // Moments that no run could have written: a step from them
            // would write NaN into the weights.
            if let Some((at, x)) = find(m, |x| !x.is_finite()) {
                return Err(format!("{WHO}: `adam.m.{i}`{at:?} is {x}; a first moment must be finite"));
            }
            if let Some((at, x)) = find(v, |x| !(x.is_finite() && x >= 0.0)) {
                return Err(format!(
                    "{WHO}: `adam.v.{i}`{at:?} is {x}; a second moment (a running mean of squares) must be \
                     finite and not negative"
                ));
            }
        }
        let steps: Vec<&Tensor<T>> =
            state.iter().filter(|(name, _)| name == "adam.step").map(|(_, t)| t).collect();
        let step = match steps.as_slice() {
            [] if m.is_empty() => 0,
            [] => return Err(format!("{WHO}: the state has moments but no `adam.step`")),
            [t] => {
                if t.len() != 1 {
                    return Err(format!(
                        "{WHO}: `adam.step` must hold one number, it has shape {:?}",
                        t.shape()
                    ));
                }
                let s = t.to_cpu().data()[0].as_f64();
                if !(s.is_finite() && s >= 0.0 && s.fract() == 0.0) {
                    return Err(format!("{WHO}: `adam.step` is {s}, not a whole number of steps"));
                }
                // Stored as a float: past 2^24 an f32 no longer holds every
                // whole number, so a larger count is not one a run wrote.
                if s > MAX_STORED_STEPS {
                    return Err(format!(
                        "{WHO}: `adam.step` is {s}, more than the {MAX_STORED_STEPS} steps a checkpoint can count exactly"
                    ));
                }
                if s == 0.0 && !m.is_empty() {
                    return Err(format!("{WHO}: `adam.step` is 0 but the state has moments"));
                }
                s as u64
            }
            _ => return Err(format!("{WHO}: `adam.step` appears twice")),
        };
        self.step = step;
        self.m = m;
        self.v = v;
        Ok(())
    }

    fn check_fits(&self, shapes: &[&[usize]]) -> Result<(), String> {
        super::check_buffers_fit("adam.m.", &self.m, shapes)?;
        super::check_buffers_fit("adam.v.", &self.v, shapes)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("Adam", lr).unwrap_or_else(|e| panic!("{e}"));
        self.lr = lr;
    }
}
