//! The tape: where a computation is written down as it happens.
//!
//! Every value computed through the engine becomes a **node**, appended to a
//! `Vec` in creation order. A node remembers its value and the `Op` that
//! made it, and the op remembers the indices of its inputs. Because a node's
//! inputs always exist before it does, the index order is already a
//! topological order: the backward sweep (in `grad.rs`) is one loop
//! from the last node down to the first, with no graph search.
//!
//! A [`Var`] is a handle to one node: a reference to the tape plus an index.
//! It is `Copy`, so `a * b + c` reads like maths and a variable can be used
//! as often as you like. The tape lives in a `RefCell` so that handles can
//! append to it through a shared reference.
//!
//! Parameters live outside the tape. A training step makes (or clears) a
//! tape, reads each parameter in as a leaf with [`Tape::param`] (the tensor's
//! storage is shared, not copied), computes a loss, asks for gradients, and
//! drops the tape.
//!
//! For debugging, [`Tape::detect_anomaly`] makes the tape remember where in
//! your code each node was recorded and stop at the first NaN or infinity
//! (see [`crate::anomaly`]).

use crate::anomaly::Site;
use crate::op::Op;
use gradtape_kernels::{Device, Element, Shape, Tensor};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;

/// One recorded value and how it was made.
pub(crate) struct Node<T: Element> {
    pub(crate) value: Tensor<T>,
    pub(crate) op: Op<T>,
}

/// A recording of a computation, one node per value.
///
/// ```
/// use gradtape::{Tape, Tensor};
///
/// let tape = Tape::<f64>::new();
/// let w = tape.param(&Tensor::from_vec(vec![2.0, -1.0], &[2])); // trained
/// let x = tape.constant(&Tensor::from_vec(vec![3.0, 4.0], &[2])); // data
/// let loss = (w * x).sum().square(); // (w . x)^2 = 4
/// assert_eq!(tape.len(), 5); // w, x, w * x, the sum, its square
/// let g = loss.backward(); // d loss / dw = 2 (w . x) x
/// assert_eq!(g[w].data(), &[12.0, 16.0]);
/// ```
pub struct Tape<T: Element> {
    pub(crate) nodes: RefCell<Vec<Node<T>>>,
    /// Anomaly mode (see [`crate::anomaly`]): off unless asked for.
    pub(crate) anomaly: Cell<bool>,
    /// In anomaly mode: keep the first report instead of panicking.
    pub(crate) anomaly_quiet: Cell<bool>,
    /// The first report of a quiet anomaly mode.
    pub(crate) first_anomaly: RefCell<Option<String>>,
    /// Where each node was recorded, kept only while anomaly mode is on
    /// (shorter than `nodes` when it was off for the last ones).
    pub(crate) sites: RefCell<Vec<Site>>,
    /// The stretches of nodes that `create_graph` sweeps recorded (for
    /// drawing the tape: see [`crate::dot`]).
    sweeps: RefCell<Vec<std::ops::Range<usize>>>,
}

/// A handle to one value on a tape: cheap to copy, used like a number.
///
/// Its methods (arithmetic and the operators, functions, reductions, shape,
/// products) are listed by family in [`crate::ops`].
#[derive(Clone, Copy)]
pub struct Var<'t, T: Element> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) id: usize,
}

impl<T: Element> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape::with_capacity(0)
    }

    /// An empty tape with room for `nodes` nodes before it reallocates.
    pub fn with_capacity(nodes: usize) -> Self {
        Tape {
            nodes: RefCell::new(Vec::with_capacity(nodes)),
            anomaly: Cell::new(false),
            anomaly_quiet: Cell::new(false),
            first_anomaly: RefCell::new(None),
            sites: RefCell::new(Vec::new()),
            sweeps: RefCell::new(Vec::new()),
        }
    }

    /// Notes that the nodes in `range` were recorded by a `create_graph`
    /// sweep.
    pub(crate) fn note_recorded_sweep(&self, range: std::ops::Range<usize>) {
        if !range.is_empty() {
            self.sweeps.borrow_mut().push(range);
        }
    }

    /// Whether node `id` was recorded by a `create_graph` sweep.
    pub fn recorded_by_sweep(&self, id: usize) -> bool {
        self.sweeps.borrow().iter().any(|r| r.contains(&id))
    }

    /// Turns anomaly mode on or off (like `torch.autograd.detect_anomaly`):
    /// while it is on, every node remembers the line of code that recorded
    /// it, and the first op, forward or backward, that makes a NaN or an
    /// infinity from finite numbers panics with a message naming it, its
    /// call site and where in its output the bad number is. See
    /// [`crate::anomaly`].
    pub fn detect_anomaly(&self, on: bool) {
        self.anomaly.set(on);
        self.anomaly_quiet.set(false);
    }

    /// Anomaly mode without the panic: the same checks, but the first
    /// report is kept for [`Tape::first_anomaly`] and the computation goes
    /// on (with its NaNs). For a program that wants to stop cleanly and say
    /// why, such as a training loop.
    pub fn record_anomalies(&self, on: bool) {
        self.anomaly.set(on);
        self.anomaly_quiet.set(on);
    }

    /// The first anomaly found since the tape was made or cleared, in
    /// [`Tape::record_anomalies`] mode.
    pub fn first_anomaly(&self) -> Option<String> {
        self.first_anomaly.borrow().clone()
    }

    /// Whether anomaly mode is on.
    pub fn anomaly_detection(&self) -> bool {
        self.anomaly.get()
    }

    /// Where node `id` was recorded, if anomaly mode was on then.
    pub(crate) fn site(&self, id: usize) -> Site {
        self.sites.borrow().get(id).copied().flatten()
    }

    /// Reads a trainable parameter in as a leaf. The storage is shared with
    /// `value`, not copied. [`Var::backward`] returns a gradient for every
    /// parameter leaf.
    #[track_caller]
    pub fn param(&self, value: &Tensor<T>) -> Var<'_, T> {
        self.push(value.clone(), Op::Leaf { param: true })
    }

    /// Reads a constant (data, a mask, a target) in as a leaf. You can still
    /// ask [`crate::grad()`] for the gradient with respect to it (the
    /// contractive autoencoder differentiates with respect to its input), but
    /// [`Var::backward`] skips it.
    #[track_caller]
    pub fn constant(&self, value: &Tensor<T>) -> Var<'_, T> {
        self.push(value.clone(), Op::Leaf { param: false })
    }

    /// A 0-d constant.
    #[track_caller]
    pub fn scalar(&self, value: T) -> Var<'_, T> {
        self.constant(&Tensor::scalar(value))
    }

    /// A 0-d constant on `device` (to combine with values there).
    #[track_caller]
    pub fn scalar_on(&self, value: T, device: Device) -> Var<'_, T> {
        self.constant(&Tensor::full_on(&[], value, device))
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.borrow().is_empty()
    }

    /// Forgets every node but keeps the allocation, so the next training
    /// step records without growing the `Vec` again. Taking `&mut self`
    /// guarantees that no `Var` of the old recording is still alive.
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
        self.sites.get_mut().clear();
        self.sweeps.get_mut().clear();
        *self.first_anomaly.get_mut() = None;
    }

    /// Appends a node and returns its handle. (In anomaly mode the node is
    /// then checked, out of line: `note_anomaly` in `anomaly.rs`.)
    #[track_caller]
    pub(crate) fn push(&self, value: Tensor<T>, op: Op<T>) -> Var<'_, T> {
        let id = {
            let mut nodes = self.nodes.borrow_mut();
            nodes.push(Node { value, op });
            nodes.len() - 1
        };
        if self.anomaly.get() {
            self.note_anomaly(id, Location::caller());
        }
        Var { tape: self, id }
    }

    /// The value of node `id` (shares storage).
    pub(crate) fn value(&self, id: usize) -> Tensor<T> {
        self.nodes.borrow()[id].value.clone()
    }

    /// The op of node `id`.
    pub(crate) fn op(&self, id: usize) -> Op<T> {
        self.nodes.borrow()[id].op
    }

    /// The kind of op of every node, in recording order: what a function
    /// recorded, for a test that asks which ops a model uses.
    pub fn op_kinds(&self) -> Vec<crate::OpKind> {
        self.nodes.borrow().iter().map(|node| crate::OpKind::from(node.op)).collect()
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// The value this variable holds (shares storage, no copy).
    pub fn value(&self) -> Tensor<T> {
        self.tape.value(self.id)
    }

    /// The shape of the value.
    pub fn shape(&self) -> Shape {
        self.tape.nodes.borrow()[self.id].value.dims()
    }

    /// The single number of a one-element variable (a loss, say).
    #[track_caller]
    pub fn item(&self) -> T {
        self.tape.nodes.borrow()[self.id].value.item()
    }

    /// The tape this variable is recorded on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The node's index on its tape (its position in creation order).
    pub fn index(&self) -> usize {
        self.id
    }

    /// Whether this is a parameter leaf (made by [`Tape::param`]).
    pub fn is_param(&self) -> bool {
        matches!(self.tape.op(self.id), Op::Leaf { param: true })
    }

    /// Records `value`, made by `op`, on this variable's tape.
    #[track_caller]
    pub(crate) fn record(&self, value: Tensor<T>, op: Op<T>) -> Var<'t, T> {
        self.tape.push(value, op)
    }

    /// A constant with the same value: gradients stop here
    /// (`torch.Tensor.detach`).
    #[track_caller]
    pub fn detach(self) -> Var<'t, T> {
        self.tape.constant(&self.value())
    }

    /// Checks that two variables live on the same tape.
    #[track_caller]
    pub(crate) fn same_tape(&self, other: &Var<'t, T>, op: &str) {
        assert!(
            std::ptr::eq(self.tape, other.tape),
            "{op}: the two variables are recorded on different tapes"
        );
    }
}

impl<T: Element> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var#{} {:?}", self.id, self.value())
    }
}
