//! Stochastic gradient descent, with momentum, as `torch.optim.SGD`.
//!
//! The plain rule walks against the gradient: `p <- p - lr * g`. Momentum
//! keeps a running direction per parameter (the "velocity" `buf`) so that
//! steps which agree build up speed and steps which disagree cancel out.

use super::{check_lr, check_pairs, check_state, numbered, reject_unknown, Optimizer};
use gradtape_kernels::optim::SgdStep;
use gradtape_kernels::{Element, LossGuard, Tensor};

/// Stochastic gradient descent with PyTorch's exact semantics.
///
/// For each parameter `p` with gradient `g`, one step does:
///
/// ```text
/// g   <- g + weight_decay * p                         (if weight_decay != 0)
/// buf <- g                                            (first step)
/// buf <- momentum * buf + (1 - dampening) * g         (later steps)
/// g   <- g + momentum * buf   (nesterov)   or   g <- buf   (otherwise)
///                                                     (if momentum != 0)
/// p   <- p - lr * g
/// ```
///
/// Build it with [`Sgd::new`] (or [`Sgd::try_new`] for a learning rate that
/// comes from outside) and the builder methods:
///
/// ```
/// use gradtape_models::optim::Sgd;
/// let opt = Sgd::<f32>::new(0.01).momentum(0.9).nesterov(true).weight_decay(1e-4);
/// ```
///
/// The hyperparameters are public fields, so a schedule can change them
/// between steps; every step checks them ([`Sgd::validate`]) and panics on
/// a bad combination. The state is one momentum buffer per parameter, named
/// `sgd.momentum.<i>` in [`Optimizer::state`]; there is none when
/// `momentum` is 0.
#[derive(Clone, Debug)]
pub struct Sgd<T: Element> {
    /// Learning rate (step size).
    pub lr: f64,
    /// Momentum factor; 0 turns momentum off.
    pub momentum: f64,
    /// How much of the new gradient the momentum buffer does *not* take.
    pub dampening: f64,
    /// L2 penalty added to the gradient (`g += weight_decay * p`).
    pub weight_decay: f64,
    /// Nesterov momentum: step along `g + momentum * buf` instead of `buf`.
    pub nesterov: bool,
    /// One momentum buffer per parameter, made at the first step.
    buffers: Vec<Tensor<T>>,
}

impl<T: Element> Sgd<T> {
    /// Plain SGD with learning rate `lr`. Panics if `lr` is negative or not
    /// finite (see [`Sgd::try_new`]).
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        Self::try_new(lr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Plain SGD with learning rate `lr`, or an error saying why `lr` is not
    /// a valid learning rate (negative or not finite).
    pub fn try_new(lr: f64) -> Result<Self, String> {
        check_lr("Sgd", lr)?;
        Ok(Sgd { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, buffers: Vec::new() })
    }

    /// Sets the momentum factor (`>= 0`, finite).
    #[track_caller]
    pub fn momentum(mut self, momentum: f64) -> Self {
        assert!(
            momentum.is_finite() && momentum >= 0.0,
            "Sgd: invalid momentum {momentum}: it must be finite and >= 0"
        );
        self.momentum = momentum;
        self
    }

    /// Sets the dampening (finite; 0 by default).
    #[track_caller]
    pub fn dampening(mut self, dampening: f64) -> Self {
        assert!(dampening.is_finite(), "Sgd: invalid dampening {dampening}: it must be finite");
        self.dampening = dampening;
        self
    }

    /// Sets the weight decay (`>= 0`, finite).
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        assert!(
            weight_decay.is_finite() && weight_decay >= 0.0,
            "Sgd: invalid weight decay {weight_decay}: it must be finite and >= 0"
        );
        self.weight_decay = weight_decay;
        self
    }

    /// Turns Nesterov momentum on or off. It needs `momentum > 0` and
    /// `dampening == 0`, which is checked at the first step (so the builder
    /// methods can come in any order) or by [`Sgd::validate`].
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Checks every hyperparameter, as `torch.optim.SGD`'s constructor does.
    pub fn validate(&self) -> Result<(), String> {
        check_lr("Sgd", self.lr)?;
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(format!("Sgd: invalid momentum {}: it must be finite and >= 0", self.momentum));
        }
        if !self.dampening.is_finite() {
            return Err(format!("Sgd: invalid dampening {}: it must be finite", self.dampening));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "Sgd: invalid weight decay {}: it must be finite and >= 0",
                self.weight_decay
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(format!(
                "Sgd: Nesterov momentum needs momentum > 0 and dampening = 0 \
                 (got momentum {}, dampening {})",
                self.momentum, self.dampening
            ));
        }
        Ok(())
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    #[track_caller]
    fn step_unless_diverged(
        &mut self,
        params: &mut [&mut Tensor<T>],
        grads: &[Tensor<T>],
        guard: Option<&LossGuard>,
    ) {
        check_pairs("Sgd::step", params, grads);
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        // PyTorch makes the momentum buffer at the first step, as a copy
        // of g.
        let with_momentum = self.momentum != 0.0;
        let first = with_momentum && self.buffers.is_empty();
        if first {
            self.buffers = params.iter().map(|p| Tensor::zeros_on(p.shape(), p.device())).collect();
        } else if with_momentum {
            check_state("Sgd::step", "momentum buffers", &self.buffers, params);
        }
        let scalars = SgdStep {
            lr: T::of(self.lr),
            wd: T::of(self.weight_decay),
            decay: self.weight_decay != 0.0,
            momentum: T::of(self.momentum),
            keep: T::of(1.0 - self.dampening),
            nesterov: self.nesterov,
            first,
            guard,
        };
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let buffer = match self.buffers.get_mut(k) {
                Some(b) if with_momentum => {
                    // Loaded from a checkpoint on the host: follow the parameter.
                    if b.device() != p.device() {
                        *b = b.to(p.device());
                    }
                    Some(b)
                }
                _ => None,
            };
            p.sgd_update(g, buffer, &scalars);
        }
    }

    fn state(&self) -> Vec<(String, Tensor<T>)> {
        self.buffers.iter().enumerate().map(|(i, b)| (format!("sgd.momentum.{i}"), b.clone())).collect()
    }

    fn load_state(&mut self, state: &[(String, Tensor<T>)]) -> Result<(), String> {
        reject_unknown("Sgd::load_state", &["sgd.momentum."], state)?;
        self.buffers = numbered("Sgd::load_state", "sgd.momentum.", state)?;
        Ok(())
    }

    fn check_fits(&self, shapes: &[&[usize]]) -> Result<(), String> {
        super::check_buffers_fit("sgd.momentum.", &self.buffers, shapes)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("Sgd", lr).unwrap_or_else(|e| panic!("{e}"));
        self.lr = lr;
    }
}
