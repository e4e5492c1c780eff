//! The optimisers' updates as named ops: one pass over a parameter, its
//! gradient and the optimiser's state, in place, on the CPU or on a GPU
//! (the kernels in `kernels/cuda/optim.cu`).
//!
//! The optimisers themselves (`gradtape_models::optim`) keep the
//! hyperparameters and the step count and call these; the per-element
//! arithmetic is here, so that it can run wherever the parameter lives.
//! Adam's scalars (bias corrections, `1 - beta`, in f64 as PyTorch does) are
//! worked out by [`AdamStep::scalars`] on the CPU and by the same
//! operations inside the kernel on a GPU, where the step `t` is read from
//! the training loop's guard (see [`crate::guard`]).

use crate::denormal::FlushDenormals;
use crate::element::Element;
use crate::elementwise::update3_flush_denormals;
use crate::guard::LossGuard;
use crate::tensor::Tensor;

/// One Adam step (see `gradtape_models::optim::Adam`): its hyperparameters
/// and its step number `t`, from which [`AdamStep::scalars`] works out what
/// each element's update uses.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep<'a> {
    /// The learning rate.
    pub lr: f64,
    /// The first moment's decay rate (PyTorch's `betas[0]`, usually 0.9).
    pub beta1: f64,
    /// The second moment's decay rate (PyTorch's `betas[1]`, usually 0.999).
    pub beta2: f64,
    /// Added to the bias-corrected `sqrt(v)` before dividing, so that the
    /// step stays finite where `v` is 0.
    pub eps: f64,
    /// L2 weight decay, added to the gradient when it is not 0 (when it is,
    /// the term is skipped rather than added as zero, as PyTorch skips it).
    pub weight_decay: f64,
    /// The step's number, from 1.
    pub t: u64,
    /// A training loop's guard, on the parameters' device: the update does
    /// nothing once a loss was not finite, read where the update runs
    /// ([`crate::LossGuard::flag`]). On a GPU the kernel also reads `t` from
    /// it (the steps it has recorded), so the launch's arguments are the
    /// same at every step of a loop. `None` always updates.
    pub guard: Option<&'a LossGuard>,
}

/// What an element's Adam update uses, rounded to `T` (see
/// [`AdamStep::scalars`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars<T> {
    /// `beta1`.
    pub beta1: T,
    /// `1 - beta1`.
    pub keep1: T,
    /// `beta2`.
    pub beta2: T,
    /// `1 - beta2`.
    pub keep2: T,
    /// `eps`.
    pub eps: T,
    /// `lr / (1 - beta1^t)`.
    pub step_size: T,
    /// `sqrt(1 - beta2^t)`.
    pub bc2_sqrt: T,
    /// The weight decay.
    pub wd: T,
}

impl AdamStep<'_> {
    /// The scalars of step `t`, worked out in f64 and rounded to `T`:
    ///
    /// ```text
    /// step_size = lr / (1 - beta1^t)        bc2_sqrt = sqrt(1 - beta2^t)
    /// ```
    ///
    /// `beta^t` is the C library's `pow`, as PyTorch's `beta ** t`. A GPU's
    /// kernel (`adam_scalars` in `optim.cu`) does the same operations with
    /// CUDA's `pow`, within 2 units in the last place of the exact power (as
    /// PyTorch's capturable Adam, which works them out on the device too):
    /// the f32 scalars are then the same but where the f64 value lies within
    /// a few units of a rounding boundary.
    pub fn scalars<T: Element>(&self) -> AdamScalars<T> {
        AdamScalars {
            beta1: T::of(self.beta1),
            keep1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            keep2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            step_size: T::of(self.lr / (1.0 - self.beta1.powf(self.t as f64))),
            bc2_sqrt: T::of((1.0 - self.beta2.powf(self.t as f64)).sqrt()),
            wd: T::of(self.weight_decay),
        }
    }
}

/// The scalars of one SGD step (see `gradtape_models::optim::Sgd`).
#[derive(Clone, Copy, Debug)]
pub struct SgdStep<'a, T> {
    /// The learning rate.
    pub lr: T,
    /// L2 weight decay, added to the gradient when `decay`.
    pub wd: T,
    /// Whether to add the weight decay at all: false when `wd` is 0, so the
    /// term is skipped rather than added as zero, as PyTorch skips it.
    pub decay: bool,
    /// The momentum factor; 0 means plain SGD, with no buffer.
    pub momentum: T,
    /// `1 - dampening`.
    pub keep: T,
    /// Nesterov momentum: step along `g + momentum buf` instead of `buf`.
    pub nesterov: bool,
    /// The first step with momentum sets the buffer to the gradient.
    pub first: bool,
    /// A training loop's guard: the update does nothing once a loss was
    /// not finite, read where the update runs. `None` always updates.
    pub guard: Option<&'a LossGuard>,
}

/// Whether an update guarded by `skip` is to be skipped, read on the host:
/// for the CPU's updates (a GPU's kernels read the flag themselves). Panics
/// at the caller if the flag is on another device than the parameter.
#[track_caller]
fn skipped_on_host<T: Element>(op: &str, p: &Tensor<T>, guard: Option<&LossGuard>) -> bool {
    guard.map(LossGuard::flag).is_some_and(|flag| {
        assert!(
            flag.device() == p.device(),
            "{op}: the guard's flag is on {} but the parameter on {}",
            flag.device().describe(),
            p.device().describe()
        );
        !p.is_cuda() && flag.data()[0] != 0.0
    })
}

/// Panics at the caller unless every tensor has `p`'s shape and device.
#[track_caller]
fn check_alike<T: Element>(op: &str, p: &Tensor<T>, others: &[(&str, &Tensor<T>)]) {
    for (what, t) in others {
        assert!(p.same_shape(t), "{op}: {what} has shape {:?}, the parameter {:?}", t.shape(), p.shape());
        p.same_device(t, op);
    }
}

impl<T: Element> Tensor<T> {
    /// Adam's update of this parameter, with first and second moments `m`
    /// and `v` and gradient `g`, all in place:
    ///
    /// ```text
    /// g <- g + wd p                                    (if decay)
    /// m <- beta1 m + (1 - beta1) g
    /// v <- beta2 v + (1 - beta2) g^2
    /// p <- p - step_size m / (sqrt(v) / bc2_sqrt + eps)
    /// ```
    ///
    /// On the CPU subnormal numbers are flushed to zero meanwhile (see
    /// [`crate::denormal`]).
    #[track_caller]
    pub fn adam_update(&mut self, m: &mut Tensor<T>, v: &mut Tensor<T>, g: &Tensor<T>, s: &AdamStep) {
        check_alike(
            "adam_update",
            self,
            &[("the first moment", m), ("the second moment", v), ("the gradient", g)],
        );
        if skipped_on_host("adam_update", self, s.guard) {
            return;
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::adam(self, m, v, g, s);
        }
        let decay = s.weight_decay != 0.0;
        let s = s.scalars::<T>();
        // One pass: read p, g, m, v once, write p, m, v (in place unless the
        // storage is shared).
        update3_flush_denormals(self.data_mut(), m.data_mut(), v.data_mut(), g.data(), |p, m, v, g| {
            let g = if decay { g + s.wd * *p } else { g };
            *m = s.beta1 * *m + s.keep1 * g;
            *v = s.beta2 * *v + s.keep2 * g * g;
            *p = *p - s.step_size * (*m / (v.sqrt() / s.bc2_sqrt + s.eps));
        });
    }

    /// [`Tensor::adam_update`] for every parameter of a model: on a GPU, all
    /// of them in one launch (a multi-tensor update) when they are on one
    /// device, else one parameter at a time. The same numbers either way.
    #[track_caller]
    pub fn adam_update_all(
        params: &mut [&mut Tensor<T>],
        ms: &mut [Tensor<T>],
        vs: &mut [Tensor<T>],
        grads: &[Tensor<T>],
        s: &AdamStep,
    ) {
        assert!(
            params.len() == ms.len() && params.len() == vs.len() && params.len() == grads.len(),
            "adam_update_all: {} parameters, {} first moments, {} second moments, {} gradients",
            params.len(),
            ms.len(),
            vs.len(),
            grads.len()
        );
        #[cfg(feature = "cuda")]
        if let Some(first) = params.first() {
            let device = first.device();
            let together = device.is_cuda()
                && params.len() > 1
                && params.iter().zip(ms.iter()).zip(vs.iter()).zip(grads).all(|(((p, m), v), g)| {
                    p.device() == device
                        && [m, v, g].iter().all(|t| t.device() == device && t.shape() == p.shape())
                });
            if together {
                // Checks the guard's device (a GPU's kernel reads the flag).
                skipped_on_host("adam_update_all", first, s.guard);
                return crate::cuda::ops::adam_multi(params, ms, vs, grads, s);
            }
        }
        for (((p, m), v), g) in params.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(grads) {
            p.adam_update(m, v, g, s);
        }
    }

    /// SGD's update of this parameter with gradient `g`, in place; with
    /// momentum (buffer `buffer`, as `torch.optim.SGD`) when given:
    ///
    /// ```text
    /// g   <- g + wd p                                  (if decay)
    /// buf <- g  (first step)  or  momentum buf + (1 - dampening) g
    /// d   <- g + momentum buf  (nesterov)  or  buf
    /// p   <- p - lr d                                  (d = g without momentum)
    /// ```
    #[track_caller]
    pub fn sgd_update(&mut self, g: &Tensor<T>, buffer: Option<&mut Tensor<T>>, s: &SgdStep<T>) {
        check_alike("sgd_update", self, &[("the gradient", g)]);
        if let Some(b) = &buffer {
            check_alike("sgd_update", self, &[("the momentum buffer", b)]);
        }
        if skipped_on_host("sgd_update", self, s.guard) {
            return;
        }
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            let scalars = [s.lr, s.wd, s.momentum, s.keep];
            let flag = s.guard.map(LossGuard::flag);
            return crate::cuda::ops::sgd(self, g, buffer, scalars, [s.decay, s.nesterov, s.first], flag);
        }
        // Subnormal momentum only costs time (see `crate::denormal`).
        let _flush = FlushDenormals::new();
        let s = *s;
        let p = self.data_mut();
        match buffer {
            None => {
                for (p, &g) in p.iter_mut().zip(g.data()) {
                    let g = if s.decay { g + s.wd * *p } else { g };
                    *p = *p - s.lr * g;
                }
            }
            Some(buffer) => {
                for ((p, &g), b) in p.iter_mut().zip(g.data()).zip(buffer.data_mut()) {
                    let g = if s.decay { g + s.wd * *p } else { g };
                    *b = if s.first { g } else { s.momentum * *b + s.keep * g };
                    let d = if s.nesterov { g + s.momentum * *b } else { *b };
                    *p = *p - s.lr * d;
                }
            }
        }
    }
}
