//! The tape drawn as a graph (Graphviz DOT).
//!
//! A tape *is* a graph: every node is a value, and its op's inputs are its
//! edges. [`Tape::to_dot`] writes that graph for Graphviz (`dot -Tsvg
//! tape.dot -o tape.svg`), one box per node with its index, op and shape:
//!
//! - parameters are blue, constants (data, masks, seeds) grey, computed
//!   values white;
//! - nodes recorded by a `create_graph` sweep (the gradient computed as a
//!   new, differentiable graph, with the constants it made) are orange, so
//!   a double backward shows as what it is: a second graph, built from the
//!   first, that the final backward sweep then walks.
//!
//! [`Tape::to_dot_between`] keeps only the nodes on a path from some input
//! to some output, as the backward sweep sees them.

use crate::tape::{Tape, Var};
use gradtape_kernels::Element;
use std::fmt::Write;

/// Fill colours, by kind of node.
const PARAMETER: &str = "#cfe2f3";
const CONSTANT: &str = "#e6e6e6";
const COMPUTED: &str = "#ffffff";
const RECORDED_SWEEP: &str = "#fce5cd";

impl<T: Element> Tape<T> {
    /// The whole tape as a Graphviz DOT graph (see the module docs for the
    /// colours).
    pub fn to_dot(&self) -> String {
        self.dot(&vec![true; self.len()])
    }

    /// The nodes on a path from one of `inputs` to one of `outputs` (both
    /// ends included), as DOT.
    #[track_caller]
    pub fn to_dot_between(&self, inputs: &[Var<'_, T>], outputs: &[Var<'_, T>]) -> String {
        let n = self.len();
        for v in inputs.iter().chain(outputs) {
            assert!(std::ptr::eq(v.tape(), self), "to_dot_between: a variable of another tape");
        }
        // Forward: which nodes depend on an input; backward: which nodes an
        // output depends on. A node on a path is both.
        let mut from_input = vec![false; n];
        for v in inputs {
            from_input[v.index()] = true;
        }
        for i in 0..n {
            if self.op(i).inputs().into_iter().flatten().any(|p| from_input[p]) {
                from_input[i] = true;
            }
        }
        let mut to_output = vec![false; n];
        for v in outputs {
            to_output[v.index()] = true;
        }
        for i in (0..n).rev() {
            if to_output[i] {
                for p in self.op(i).inputs().into_iter().flatten() {
                    to_output[p] = true;
                }
            }
        }
        let keep: Vec<bool> = (0..n).map(|i| from_input[i] && to_output[i]).collect();
        self.dot(&keep)
    }

    /// DOT for the nodes flagged in `keep`, and the edges between them.
    fn dot(&self, keep: &[bool]) -> String {
        let nodes = self.nodes.borrow();
        let mut out = String::from(
            "digraph tape {\n  rankdir=TB;\n  node [shape=box, style=filled, fontname=\"Helvetica\"];\n",
        );
        for (i, node) in nodes.iter().enumerate().filter(|(i, _)| keep[*i]) {
            // A sweep's own constants (masks, seeds) belong to the graph it
            // built, so the sweep's colour comes first.
            let colour = match node.op {
                _ if self.recorded_by_sweep(i) => RECORDED_SWEEP,
                crate::op::Op::Leaf { param: true } => PARAMETER,
                crate::op::Op::Leaf { param: false } => CONSTANT,
                _ => COMPUTED,
            };
            let _ = writeln!(
                out,
                "  n{i} [label=\"#{i} {}\\n{:?}\", fillcolor=\"{colour}\"];",
                node.op.name(),
                node.value.shape()
            );
        }
        for (i, node) in nodes.iter().enumerate().filter(|(i, _)| keep[*i]) {
            for p in node.op.inputs().into_iter().flatten().filter(|&p| keep[p]) {
                let _ = writeln!(out, "  n{p} -> n{i};");
            }
        }
        out.push_str("}\n");
        out
    }
}
