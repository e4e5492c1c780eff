//! Parameters live outside the tape.
//!
//! A model owns a [`Params`]: an ordered list of named tensors (`encoder.0.weight`,
//! `encoder.0.bias`, ... like a PyTorch `state_dict`). Layers remember only
//! the [`ParamId`]s of their tensors. A training step reads every parameter
//! onto a fresh tape in one go with [`Params::bind`] (sharing storage, not
//! copying), runs the forward pass on the resulting [`Bound`] variables, and
//! gets one gradient per parameter back, in the same order, which is exactly
//! what an optimiser's `step` takes.

use gradtape::{Element, Tape, Tensor, Var};
use gradtape_kernels::Device;
use std::ops::Index;

/// The position of a parameter in its [`Params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamId(pub usize);

/// Named parameter tensors, in a fixed order.
#[derive(Clone, Debug, Default)]
pub struct Params<T: Element> {
    names: Vec<String>,
    tensors: Vec<Tensor<T>>,
}

impl<T: Element> Params<T> {
    /// No parameters yet.
    pub fn new() -> Self {
        Params { names: Vec::new(), tensors: Vec::new() }
    }

    /// Registers a tensor under `name` (which must be new).
    #[track_caller]
    pub fn add(&mut self, name: impl Into<String>, value: Tensor<T>) -> ParamId {
        let name = name.into();
        assert!(!self.names.contains(&name), "params: a parameter named {name:?} already exists");
        self.names.push(name);
        self.tensors.push(value);
        ParamId(self.tensors.len() - 1)
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.tensors.iter().map(|t| t.len()).sum()
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[Tensor<T>] {
        &self.tensors
    }

    /// Mutable references to every tensor, in order (for an optimiser).
    pub fn tensors_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.tensors.iter_mut().collect()
    }

    /// `(name, tensor)` pairs, in order (for a checkpoint).
    pub fn named(&self) -> Vec<(&str, &Tensor<T>)> {
        self.names.iter().map(|n| n.as_str()).zip(&self.tensors).collect()
    }

    /// `(name, &mut tensor)` pairs, in order (for loading a checkpoint).
    pub fn named_mut(&mut self) -> Vec<(&str, &mut Tensor<T>)> {
        self.names.iter().map(|n| n.as_str()).zip(self.tensors.iter_mut()).collect()
    }

    /// The tensor of a parameter.
    pub fn get(&self, id: ParamId) -> &Tensor<T> {
        &self.tensors[id.0]
    }

    /// The tensor named `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<&Tensor<T>> {
        self.id(name).map(|id| &self.tensors[id.0])
    }

    /// The id of the parameter named `name`, if any.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// Reads every parameter onto `tape` as a leaf, in order.
    pub fn bind<'t>(&self, tape: &'t Tape<T>) -> Bound<'t, T> {
        Bound { vars: self.tensors.iter().map(|t| tape.param(t)).collect() }
    }

    /// Binds the model on `tape` with some parameters replaced by variables
    /// of yours: parameter `id` becomes `var` for each `(id, var)` in
    /// `replace`, and every other parameter is read in as a constant, held
    /// fixed at its value (`torch.func.functional_call`).
    ///
    /// The model's `forward` and loss then run unchanged, but as a function
    /// of the replacements alone. That is what a functional transform wants:
    /// inside the closure that [`gradtape::functional::hvp`] (or `grad`,
    /// `jacobian`, ...) records, put the leaves it hands you in place of the
    /// parameters to differentiate with respect to.
    ///
    /// ```
    /// use gradtape::{functional, Tape, Tensor, Var};
    /// use gradtape_models::params::{Bound, ParamId, Params};
    ///
    /// // A two-number "model": loss(w, b) = (3 w + b)^2.
    /// let mut params = Params::<f64>::new();
    /// let w = params.add("w", Tensor::scalar(2.0));
    /// let b = params.add("b", Tensor::scalar(1.0));
    /// fn loss<'t>(p: &Bound<'t, f64>, w: ParamId, b: ParamId) -> Var<'t, f64> {
    ///     (p[w] * 3.0 + p[b]).square()
    /// }
    ///
    /// // d loss / d w = 2 (3 w + b) 3 = 2 * 7 * 3, with b held at 1.
    /// let dw = functional::grad(
    ///     |tape, xs| loss(&params.bind_with(tape, &[(w, xs[0])]), w, b),
    ///     &[params.get(w).clone()],
    /// );
    /// assert_eq!(dw[0].item(), 42.0);
    ///
    /// // By name, at another w: d loss / d w = 2 (0 + 1) 3 = 6.
    /// let by_name = params.id("w").unwrap();
    /// let dw = functional::grad(
    ///     |tape, xs| loss(&params.bind_with(tape, &[(by_name, xs[0])]), w, b),
    ///     &[Tensor::scalar(0.0)],
    /// );
    /// assert_eq!(dw[0].item(), 6.0);
    ///
    /// // The parameters not replaced are constants: backward skips them.
    /// let tape = Tape::new();
    /// let w_var = tape.param(params.get(w));
    /// let g = loss(&params.bind_with(&tape, &[(w, w_var)]), w, b).backward();
    /// assert_eq!(g.len(), 1);
    /// ```
    ///
    /// Panics, at your call, if an id is out of range or given twice, or if
    /// a replacement's shape differs from its parameter's.
    #[track_caller]
    pub fn bind_with<'t>(&self, tape: &'t Tape<T>, replace: &[(ParamId, Var<'t, T>)]) -> Bound<'t, T> {
        let mut vars: Vec<Option<Var<'t, T>>> = vec![None; self.tensors.len()];
        for &(id, var) in replace {
            assert!(
                id.0 < self.tensors.len(),
                "bind_with: parameter id {} is out of range ({} parameters)",
                id.0,
                self.tensors.len()
            );
            let name = &self.names[id.0];
            assert!(vars[id.0].is_none(), "bind_with: parameter {name:?} is replaced twice");
            let (want, got) = (self.tensors[id.0].shape(), var.shape());
            assert!(
                want == &got[..],
                "bind_with: parameter {name:?} has shape {want:?} but its replacement has shape {:?}",
                &got[..]
            );
            vars[id.0] = Some(var);
        }
        let vars = vars.into_iter().zip(&self.tensors).map(|(v, t)| v.unwrap_or_else(|| tape.constant(t)));
        Bound { vars: vars.collect() }
    }

    /// Where the parameters are (the first one's device; the CPU if there
    /// are none).
    pub fn device(&self) -> Device {
        self.tensors.first().map_or(Device::Cpu, |t| t.device())
    }

    /// Moves every parameter to `device` (a copy where it is not there yet).
    /// A model's forward pass, loss and gradients then run there, and an
    /// optimiser's state follows at its next step.
    #[track_caller]
    pub fn to_device(&mut self, device: Device) {
        for t in &mut self.tensors {
            *t = t.to(device);
        }
    }

    /// The same parameters converted to another precision (f32 training
    /// weights checked in f64, say).
    pub fn cast<U: Element>(&self) -> Params<U> {
        Params { names: self.names.clone(), tensors: self.tensors.iter().map(|t| t.cast()).collect() }
    }
}

/// The parameters of a model read onto one tape.
pub struct Bound<'t, T: Element> {
    vars: Vec<Var<'t, T>>,
}

impl<'t, T: Element> Bound<'t, T> {
    /// Parameters that are already on a tape, in the model's parameter
    /// order: for callers that make the leaves themselves, such as
    /// `gradcheck`, which differentiates a loss with respect to the
    /// variables it passes in.
    pub fn from_vars(vars: Vec<Var<'t, T>>) -> Self {
        Bound { vars }
    }

    /// The variables, in parameter order (the `inputs` for `grad`).
    pub fn vars(&self) -> &[Var<'t, T>] {
        &self.vars
    }
}

impl<'t, T: Element> Index<ParamId> for Bound<'t, T> {
    type Output = Var<'t, T>;
    fn index(&self, id: ParamId) -> &Var<'t, T> {
        &self.vars[id.0]
    }
}
