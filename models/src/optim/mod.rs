//! Optimisers: turning gradients into better parameters.
//!
//! A training step records a loss on a tape, asks for the gradient of the
//! loss with respect to every parameter, drops the tape, and then hands the
//! parameters and their gradients to an [`Optimizer`], which moves each
//! parameter a little way downhill:
//!
//! ```
//! use gradtape::{Tape, Tensor};
//! use gradtape_models::optim::{Optimizer, Sgd};
//!
//! let mut w = Tensor::from_vec(vec![1.0f64, -2.0], &[2]);
//! let mut opt = Sgd::new(0.1);
//! for _ in 0..3 {
//!     let grads = {
//!         let tape = Tape::new();
//!         let wv = tape.param(&w);
//!         let loss = wv.square().sum(); // minimum at w = 0
//!         loss.backward().into_vec() // d loss / dw = 2w
//!     }; // the tape is gone, so `w` is no longer shared ...
//!     opt.step(&mut [&mut w], &grads); // ... and is updated in place
//! }
//! // Each step multiplies w by 1 - 0.1 * 2 = 0.8.
//! assert!((w.data()[0] - 0.512).abs() < 1e-12);
//! ```
//!
//! Two optimisers, each with PyTorch's exact update rule so that results can
//! be compared with `torch.optim`:
//!
//! - [`Sgd`]: stochastic gradient descent, with optional momentum (plain or
//!   Nesterov), dampening and weight decay (`torch.optim.SGD`);
//! - [`Adam`]: adaptive moments with bias correction (`torch.optim.Adam`).
//!
//! Each updates every parameter with one fused loop that reads the
//! parameter, its gradient and its state once and writes them back through
//! [`Tensor::data_mut`]: no temporary tensors, and no copy of the parameter
//! as long as nothing else (a tape, say) still shares its storage.
//!
//! An optimiser's memory (momentum buffers, Adam's moments and step count)
//! is part of a training run. [`Optimizer::state`] lists it as named
//! tensors (`sgd.momentum.0`, `adam.step`, `adam.m.0`, `adam.v.0`, ...;
//! the number is the parameter's position in the slice given to `step`), so
//! a checkpoint can store it next to the parameters (see
//! [`crate::checkpoint`]) and [`Optimizer::load_state`] can resume the run
//! exactly where it stopped.

mod adam;
mod sgd;

pub use adam::{Adam, MAX_STEPS};
pub use sgd::Sgd;

use gradtape_kernels::{Element, LossGuard, Tensor};

/// Something that updates parameters from their gradients (`Send`, so that
/// a training loop can run on a rayon worker).
pub trait Optimizer<T: Element>: Send {
    /// Updates every `params[i]` in place from `grads[i]`.
    ///
    /// ```
    /// use gradtape_kernels::Tensor;
    /// use gradtape_models::optim::{Adam, Optimizer};
    ///
    /// let mut w = Tensor::from_vec(vec![1.0f64, -1.0], &[2]);
    /// let g = Tensor::from_vec(vec![0.5, -0.25], &[2]);
    /// let mut adam = Adam::new(0.1);
    /// adam.step(&mut [&mut w], &[g]);
    /// // Adam's first step moves each weight by lr against its gradient's sign.
    /// assert!((w.data()[0] - 0.9).abs() < 1e-6 && (w.data()[1] + 0.9).abs() < 1e-6);
    /// ```
    ///
    /// Panics if the two slices differ in length, if a gradient's shape
    /// differs from its parameter's, or if the optimiser's state was made
    /// for a different list of parameters.
    #[track_caller]
    fn step(&mut self, params: &mut [&mut Tensor<T>], grads: &[Tensor<T>]) {
        self.step_unless_diverged(params, grads, None);
    }

    /// [`Optimizer::step`], guarded by a training loop's [`LossGuard`]: the
    /// update reads the guard's flag where it runs (on a GPU, on the
    /// device, so the host does not wait) and leaves the parameters and the
    /// optimiser's state as they were once a loss was not finite (see
    /// `gradtape_kernels::guard`). The optimiser's own count of steps still
    /// advances; [`Optimizer::forget_skipped`] takes skipped ones back.
    fn step_unless_diverged(
        &mut self,
        params: &mut [&mut Tensor<T>],
        grads: &[Tensor<T>],
        guard: Option<&LossGuard>,
    );

    /// Takes back the last `steps` steps, which a guard skipped on the
    /// device (a run that stops at a non-finite loss calls it, so that the
    /// state matches the weights: Adam's step count). The default does
    /// nothing: an optimiser that counts nothing has nothing to undo.
    fn forget_skipped(&mut self, steps: u64) {
        let _ = steps;
    }

    /// The optimiser's state as named tensors, for a checkpoint. Empty
    /// before the first step. The tensors share storage with the state (no
    /// copy); the next `step` copies before writing.
    fn state(&self) -> Vec<(String, Tensor<T>)>;

    /// Replaces the state with one returned by [`Optimizer::state`] (of an
    /// optimiser of the same kind). An empty list resets to the state before
    /// the first step. On error (an unknown or malformed entry, a missing
    /// one) the state is left unchanged.
    fn load_state(&mut self, state: &[(String, Tensor<T>)]) -> Result<(), String>;

    /// Checks that the state fits parameters of these shapes, in the order
    /// `step` will be given them (an empty state fits any), so that state
    /// loaded from a file is refused with a message instead of making
    /// `step` panic. The error names the entry and both shapes.
    fn check_fits(&self, shapes: &[&[usize]]) -> Result<(), String>;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (for a schedule). Panics if it is negative or
    /// not finite.
    fn set_lr(&mut self, lr: f64);
}

/// Checks a learning rate: finite and not negative (0 is allowed: it
/// freezes the parameters).
pub(crate) fn check_lr(who: &str, lr: f64) -> Result<(), String> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        let lr = crate::autoencoders::short_number(lr);
        Err(format!("{who}: invalid learning rate {lr}: it must be finite and >= 0"))
    }
}

/// Checks that `params` and `grads` pair up, one gradient per parameter of
/// the same shape.
#[track_caller]
pub(crate) fn check_pairs<T: Element>(who: &str, params: &[&mut Tensor<T>], grads: &[Tensor<T>]) {
    assert_eq!(
        params.len(),
        grads.len(),
        "{who}: got {} parameters but {} gradients",
        params.len(),
        grads.len()
    );
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        assert!(
            p.shape() == g.shape(),
            "{who}: parameter {i} has shape {:?} but its gradient has shape {:?}",
            p.shape(),
            g.shape()
        );
    }
}

/// How per-parameter state buffers fail to fit a list of parameters: the
/// one comparison behind [`check_buffers_fit`] (state read from a file, an
/// error) and [`check_state`] (state given to `step`, a panic).
enum Misfit<'a> {
    /// `buffers` buffers for `params` parameters.
    Count { buffers: usize, params: usize },
    /// Buffer `index` has shape `buffer`, its parameter `param`.
    Shape { index: usize, buffer: &'a [usize], param: &'a [usize] },
}

/// The first way `buffers` fail to fit `params` parameters, parameter `i`
/// having shape `shape(i)`, if any. (Shapes are asked for, not collected:
/// `step` checks its state on every call.)
fn first_misfit<'a, T: Element>(
    buffers: &'a [Tensor<T>],
    params: usize,
    shape: impl Fn(usize) -> &'a [usize],
) -> Option<Misfit<'a>> {
    if buffers.len() != params {
        return Some(Misfit::Count { buffers: buffers.len(), params });
    }
    buffers.iter().enumerate().find(|(i, b)| b.shape() != shape(*i)).map(|(index, b)| Misfit::Shape {
        index,
        buffer: b.shape(),
        param: shape(index),
    })
}

/// Checks that loaded per-parameter buffers, named `{prefix}<i>`, fit
/// parameters of `shapes` (one buffer per parameter, same shapes); no
/// buffers fit any parameters.
pub(crate) fn check_buffers_fit<T: Element>(
    prefix: &str,
    buffers: &[Tensor<T>],
    shapes: &[&[usize]],
) -> Result<(), String> {
    if buffers.is_empty() {
        return Ok(());
    }
    match first_misfit(buffers, shapes.len(), |i| shapes[i]) {
        None => Ok(()),
        Some(Misfit::Count { buffers, params }) => {
            Err(format!("{buffers} `{prefix}<i>` entries for a model of {params} parameters"))
        }
        Some(Misfit::Shape { index, buffer, param }) => {
            Err(format!("`{prefix}{index}` has shape {buffer:?} but parameter {index} has shape {param:?}"))
        }
    }
}

/// Checks that per-parameter state buffers (made at an earlier step, or
/// loaded) fit the parameters given now.
#[track_caller]
pub(crate) fn check_state<T: Element>(
    who: &str,
    what: &str,
    buffers: &[Tensor<T>],
    params: &[&mut Tensor<T>],
) {
    match first_misfit(buffers, params.len(), |i| params[i].shape()) {
        None => {}
        Some(Misfit::Count { buffers, params }) => panic!(
            "{who}: the optimizer holds {what} for {buffers} parameters but step was given {params} \
             (is the state from another model?)"
        ),
        Some(Misfit::Shape { index, buffer, param }) => panic!(
            "{who}: the {what} of parameter {index} has shape {buffer:?} but the parameter has shape {param:?} \
             (is the state from another model?)"
        ),
    }
}

/// Collects numbered state entries `{prefix}{i}` (e.g. `adam.m.0`,
/// `adam.m.1`, ...) in order of `i`. The numbers must run 0, 1, ... with no
/// gap or repeat. Entries without the prefix are ignored.
pub(crate) fn numbered<T: Element>(
    who: &str,
    prefix: &str,
    state: &[(String, Tensor<T>)],
) -> Result<Vec<Tensor<T>>, String> {
    let mut found: Vec<(usize, &Tensor<T>)> = Vec::new();
    for (name, tensor) in state {
        if let Some(index) = name.strip_prefix(prefix) {
            let i: usize = index
                .parse()
                .map_err(|_| format!("{who}: state entry `{name}`: `{index}` is not an index"))?;
            if index != i.to_string() {
                return Err(format!("{who}: state entry `{name}`: write the index as `{prefix}{i}`"));
            }
            found.push((i, tensor));
        }
    }
    found.sort_by_key(|&(i, _)| i);
    for (k, &(i, _)) in found.iter().enumerate() {
        if i < k {
            return Err(format!("{who}: state entry `{prefix}{i}` appears twice"));
        }
        if i > k {
            return Err(format!("{who}: state entry `{prefix}{k}` is missing"));
        }
    }
    Ok(found.into_iter().map(|(_, t)| t.clone()).collect())
}

/// Rejects state entries whose name matches none of `known` prefixes or
/// names.
pub(crate) fn reject_unknown<T: Element>(
    who: &str,
    known: &[&str],
    state: &[(String, Tensor<T>)],
) -> Result<(), String> {
    for (name, _) in state {
        if !known.iter().any(|k| name == k || (k.ends_with('.') && name.starts_with(k))) {
            return Err(format!(
                "{who}: unknown state entry `{name}` (expected {})",
                known
                    .iter()
                    .map(|k| if k.ends_with('.') { format!("`{k}<i>`") } else { format!("`{k}`") })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}
