//! Anomaly mode: finding the first operation that made a NaN or an
//! infinity, forward or backward.
//!
//! A NaN, once made, flows into everything computed from it, so by the time
//! a loss reads NaN the op that made it is long gone. With
//! [`Tape::detect_anomaly`] on, the tape keeps, for every node it records,
//! the line of *your* code that recorded it (`#[track_caller]` on every op
//! carries the caller's location down to the tape), and checks each value
//! as it is made:
//!
//! - forward: the first op whose output holds a non-finite number while
//!   its inputs were finite stops the computation, naming the op, its call
//!   site, the input shapes, the first offending index and the input values
//!   there (`log at src/main.rs:14 produced -inf at [3, 17] from the input
//!   value 0`). An input that was already non-finite when it was read onto
//!   the tape is named as such instead (`the constant read in at
//!   src/main.rs:9 holds NaN at [12, 400]`);
//! - backward (plain or `create_graph`): the first backward rule that turns
//!   a finite gradient into a non-finite one names the op whose rule it was
//!   and that op's forward call site, like PyTorch's `detect_anomaly`.
//!
//! The stop is a panic, as PyTorch's anomaly mode raises: anomaly mode is a
//! debugging switch, and the panic's message is the report. A program that
//! wants to go on (a training loop that stops cleanly and says why) uses
//! [`Tape::record_anomalies`] instead: the same checks, but the first
//! report is kept ([`Tape::first_anomaly`]) and the computation continues.
//! With the mode off nothing is recorded or checked; the cost is one flag
//! test per op, and the caller's location passed down, a pointer.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Tape;
use gradtape_kernels::{Element, Tensor};
use std::panic::Location;

/// Where a node was recorded, if anomaly mode was on.
pub(crate) type Site = Option<&'static Location<'static>>;

/// The first non-finite element of `t`: its flat index and value.
fn first_non_finite<T: Element>(t: &Tensor<T>) -> Option<(usize, T)> {
    let host = t.to_cpu();
    host.data().iter().position(|x| !x.is_finite()).map(|i| (i, host.data()[i]))
}

/// A flat index as a multi-index of `shape`: `[3, 17]`.
fn multi_index(mut flat: usize, shape: &[usize]) -> String {
    let mut index = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[k] = flat % d;
            flat /= d;
        }
    }
    format!("{index:?}")
}

/// `at file:line`, or nothing if unknown.
fn at(site: Site) -> String {
    site.map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()))
}

/// What a non-finite number is, in words.
fn describe<T: Element>(x: T) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > T::zero() {
        "inf"
    } else {
        "-inf"
    }
}

impl<T: Element> Tape<T> {
    /// Anomaly mode's part of [`Tape::push`]: keeps where node `id` was
    /// recorded and checks its value.
    ///
    /// `push` moves the node into the `Vec` first and this looks at it
    /// there, out of line: were the check to see `value` and `op` before
    /// the move, they would be written to the stack and copied again, which
    /// cost every op about 70 instructions with the mode off (callgrind).
    #[cold]
    #[inline(never)]
    pub(crate) fn note_anomaly(&self, id: usize, site: &'static Location<'static>) {
        {
            let mut sites = self.sites.borrow_mut();
            sites.resize(id, None);
            sites.push(Some(site));
        }
        self.check_forward(id, Some(site));
    }

    /// Reports an anomaly: panics with `message`, or, when the tape records
    /// anomalies quietly ([`Tape::record_anomalies`]), keeps the first one.
    #[track_caller]
    fn report(&self, message: String) {
        if !self.anomaly_quiet.get() {
            panic!("{message}");
        }
        let mut first = self.first_anomaly.borrow_mut();
        if first.is_none() {
            *first = Some(message);
        }
    }

    /// Whether a quiet recording already holds its first anomaly (then
    /// nothing more needs checking).
    pub(crate) fn anomaly_already_found(&self) -> bool {
        self.anomaly_quiet.get() && self.first_anomaly.borrow().is_some()
    }

    /// Checks the value of node `node`, just recorded at `site` (anomaly
    /// mode): reports it if it is the first non-finite one.
    #[track_caller]
    pub(crate) fn check_forward(&self, node: usize, site: Site) {
        if self.anomaly_already_found() {
            return;
        }
        let nodes = self.nodes.borrow();
        let (value, op) = (&nodes[node].value, &nodes[node].op);
        let Some((bad, x)) = first_non_finite(value) else { return };
        let inputs: Vec<usize> = op.inputs().into_iter().flatten().collect();
        for &id in &inputs {
            if let Some((i, v)) = first_non_finite(&nodes[id].value) {
                if let Op::Leaf { param } = nodes[id].op {
                    let what = if param { "parameter" } else { "constant" };
                    return self.report(format!(
                        "anomaly: the {what} read in{} (node {id}, shape {:?}) holds {} at {}, before any op \
                         touched it",
                        at(self.site(id)),
                        nodes[id].value.shape(),
                        describe(v),
                        multi_index(i, nodes[id].value.shape())
                    ));
                }
                // A computed input that is already non-finite was checked when
                // it was made (anomaly mode was off then): nothing to blame here.
                return;
            }
        }
        if let Op::Leaf { param } = op {
            let what = if *param { "parameter" } else { "constant" };
            return self.report(format!(
                "anomaly: the {what} read in{} (shape {:?}) holds {} at {}",
                at(site),
                value.shape(),
                describe(x),
                multi_index(bad, value.shape())
            ));
        }
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&id| nodes[id].value.shape().to_vec()).collect();
        // The inputs' values at the same place, where that place is defined
        // (same shape as the output, or a single number).
        let values: Vec<String> = inputs
            .iter()
            .filter_map(|&id| {
                let v = &nodes[id].value;
                if v.shape() == value.shape() {
                    Some(format!("{}", v.to_cpu().data()[bad]))
                } else if v.len() == 1 {
                    Some(format!("{}", v.to_vec()[0]))
                } else {
                    None
                }
            })
            .collect();
        let from = match values.len() {
            0 => String::new(),
            1 => format!(" from the input value {}", values[0]),
            _ => format!(" from the input values {}", values.join(", ")),
        };
        self.report(format!(
            "anomaly: {}{} produced {} at {}{from} (input shapes {shapes:?})",
            op.name(),
            at(site),
            describe(x),
            multi_index(bad, value.shape())
        ));
    }

    /// Checks the gradients a backward rule returned for node `node` from a
    /// finite incoming gradient (anomaly mode): panics at the first
    /// non-finite one, naming the op and its forward call site.
    pub(crate) fn check_backward(&self, node: usize, incoming: &Tensor<T>, produced: &[(usize, Tensor<T>)]) {
        if self.anomaly_already_found() || first_non_finite(incoming).is_some() {
            return; // reported where it was made
        }
        for (input, g) in produced {
            if let Some((i, x)) = first_non_finite(g) {
                let op = self.op(node);
                return self.report(format!(
                    "anomaly: the backward rule of {} (node {node}, recorded{}) turned a finite gradient into {} \
                     at {} of the gradient for node {input}",
                    op.name(),
                    at(self.site(node)),
                    describe(x),
                    multi_index(i, g.shape())
                ));
            }
        }
    }

    /// Checks the gradients a sweep starts from (anomaly mode).
    #[track_caller]
    pub(crate) fn check_seed(&self, output: usize, seed: &Tensor<T>) {
        if let Some((i, x)) = first_non_finite(seed) {
            self.report(format!(
                "anomaly: the gradient given for output node {output} holds {} at {}",
                describe(x),
                multi_index(i, seed.shape())
            ));
        }
    }
}

// ---- the backward sweep's checks --------------------------------------------

/// What the backward sweep does beside its work, at two points: when it
/// takes in a seed, and when a rule has produced its inputs' gradients.
/// [`NoChecks`] does nothing and compiles away; [`AnomalyChecks`] is anomaly
/// mode's backward half. The sweep is compiled once for each, so the
/// ordinary sweep carries no trace of anomaly mode.
pub(crate) trait SweepChecks<T: Element> {
    /// The gradient given for output node `output`.
    fn seed<A: Algebra<T>>(&self, output: usize, seed: &A);
    /// What the rule of node `node` made from its incoming gradient.
    fn rule<A: Algebra<T>>(&self, node: usize, incoming: &A, produced: &[Option<(usize, A)>; 3]);
}

/// The ordinary sweep: no checks.
pub(crate) struct NoChecks;

impl<T: Element> SweepChecks<T> for NoChecks {
    #[inline(always)]
    fn seed<A: Algebra<T>>(&self, _output: usize, _seed: &A) {}
    #[inline(always)]
    fn rule<A: Algebra<T>>(&self, _node: usize, _incoming: &A, _produced: &[Option<(usize, A)>; 3]) {}
}

/// Anomaly mode in the sweep: each seed, and each rule's result, checked
/// against the op it belongs to. The ops a recorded sweep makes are not
/// checked again as forward ops (that would blame a line inside a rule), so
/// the tape's forward checks are off while this lives, and back on when the
/// sweep ends (or panics).
pub(crate) struct AnomalyChecks<'a, T: Element>(&'a Tape<T>);

impl<'a, T: Element> AnomalyChecks<'a, T> {
    /// Pauses the forward checks for the length of a sweep.
    pub(crate) fn start(tape: &'a Tape<T>) -> Self {
        tape.anomaly.set(false);
        AnomalyChecks(tape)
    }
}

impl<T: Element> Drop for AnomalyChecks<'_, T> {
    fn drop(&mut self) {
        self.0.anomaly.set(true);
    }
}

impl<T: Element> SweepChecks<T> for AnomalyChecks<'_, T> {
    fn seed<A: Algebra<T>>(&self, output: usize, seed: &A) {
        self.0.check_seed(output, &seed.to_tensor());
    }

    fn rule<A: Algebra<T>>(&self, node: usize, incoming: &A, produced: &[Option<(usize, A)>; 3]) {
        let values: Vec<(usize, Tensor<T>)> =
            produced.iter().flatten().map(|(p, gp)| (*p, gp.to_tensor())).collect();
        self.0.check_backward(node, &incoming.to_tensor(), &values);
    }
}
