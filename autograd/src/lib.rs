//! # gradtape: a reverse-mode autodiff tape with gradients of gradients
//!
//! Reading order, for a first visit. The README's reading guide opens with
//! the same core as a 30-minute path with the exact lines to read, then
//! goes on with the kernels and models around it:
//!
//! 1. [`tape`]: what a node is, what a [`Var`] is, how values get recorded.
//! 2. [`ops`]: one family of operations per file; read `unary.rs` first.
//!    Each forward function computes a value and records an op; below it sit
//!    the backward rules, each a few lines with its derivative on top.
//! 3. [`algebra`]: why each rule is written once, against a trait, and runs
//!    either on plain tensors or on recorded variables.
//! 4. [`grad()`]: the backward sweep, and `create_graph`, which is all a
//!    double backward is.
//! 5. [`jacobian`](mod@jacobian): all rows of a Jacobian in one sweep,
//!    keeping the identity seed in its structured form.
//! 6. [`anomaly`]: finding the first op that made a NaN, forward or
//!    backward (`Tape::detect_anomaly`).
//! 7. [`dot`]: the tape drawn as a graph, with the nodes a `create_graph`
//!    sweep recorded in their own colour.
//! 8. [`functional`]: `grad`, `vjp`, `jvp`, `hvp`, `jacobian`, `hessian`,
//!    one call each, from the sweeps above (forward mode from two reverse
//!    passes, curvature from a gradient of a gradient).
//!
//! ```
//! use gradtape::{grad, Tape, Tensor};
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.param(&Tensor::from_vec(vec![0.5, -1.0], &[2]));
//! let y = x.sigmoid().sum();
//! // dy/dx = s(1-s), recorded so that it can be differentiated again ...
//! let dx = grad(&[y], &[x], None, true)[0];
//! // ... d2y/dx2 = s(1-s)(1-2s).
//! let ddx = grad(&[dx.sum()], &[x], None, false)[0];
//! let s = 1.0 / (1.0 + (-0.5f64).exp());
//! assert!((ddx.value().data()[0] - s * (1.0 - s) * (1.0 - 2.0 * s)).abs() < 1e-12);
//! ```

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml): mark items that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algebra;
pub mod anomaly;
mod backward;
pub mod dot;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod functional;
pub mod grad;
pub mod jacobian;
mod lead;
mod op;
pub mod ops;
pub mod tape;

pub use algebra::Algebra;
pub use backward::Gradients;
// `functional::grad` stays in its module: at the root, `grad` is the sweep.
pub use functional::{hessian, hvp, jacobian, jvp, value_and_grad, vjp};
pub use grad::{grad, grad_batched, grad_values, grad_values_batched};
pub use gradtape_kernels::{Act, Element, LossTerm, Shape, Tensor};
pub use jacobian::{jacobian_rows, jacobian_rows_factored, JacobianRows};
pub use op::OpKind;
pub use ops::fused::{fusion_enabled, without_fusion};
pub use tape::{Tape, Var};
