//! The differentiable operations, one family per file.
//!
//! Every file follows the same pattern: forward functions on [`crate::Var`]
//! that compute a value with a kernel and record an `Op` (`op.rs`), then,
//! below them, the backward rules for the same ops, each with its derivative
//! in the doc comment. The rules are generic over [`crate::Algebra`], so the
//! same few lines serve a plain backward pass and a recorded one
//! (`create_graph`).

pub mod arith;
pub mod fused;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod shape;
pub mod unary;
