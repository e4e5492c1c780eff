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
        self.names.iter().position(|n| n == name).map(|i| &self.tensors[i])
    }

    /// Reads every parameter onto `tape` as a leaf, in order.
    pub fn bind<'t>(&self, tape: &'t Tape<T>) -> Bound<'t, T> {
        Bound { vars: self.tensors.iter().map(|t| tape.param(t)).collect() }
    }

    /// The same parameters converted to another precision (f32 training
    /// weights checked in f64, say).
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
