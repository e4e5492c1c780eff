//! The differentiable operations, one family per file.
//!
//! Every file follows the same pattern: forward functions on [`crate::Var`]
//! that compute a value with a kernel and record an `Op` (`op.rs`), then,
//! below them, the backward rules for the same ops, each with its derivative
//! in the doc comment. The rules are generic over [`crate::Algebra`], so the
//! same few lines serve a plain backward pass and a recorded one
//! (`create_graph`).
//!
//! # `Var`'s methods, by family
//!
//! Every method records one node (`bias_act` too: a fused op is one node)
//! and is differentiable to any order.
//!
//! | family | methods | file |
//! |---|---|---|
//! | arithmetic | `add`, `sub`, `mul`, `div`, `neg`; with a constant: `add_scalar`, `mul_scalar`, `div_scalar`, `rsub_scalar` (`s - x`), `rdiv_scalar` (`s / x`) | [`arith`] |
//! | operators | `x + y`, `x - y`, `x * y`, `x / y`, `-x`, and with a number on either side: `x + 1.0`, `2.0 * x`, `1.0 - x`, `1.0 / x` (for `f32` and `f64`) | [`arith`] |
//! | elementwise functions | `exp`, `log` (natural), `powf`, `sqrt`, `square`, `abs`, `sigmoid`, `tanh`, `relu`, `softplus`, `clamp` | [`unary`] |
//! | reductions | `sum`, `sum_squares`, `mean`, `max` (to one number); `sum_axis`, `mean_axis`, `max_axis` (one axis, `keepdim` or not) | [`reduce`] |
//! | norms | `norm` (of all elements), `frobenius_norm`, `row_norms` | [`norm`] |
//! | shape | `reshape`, `transpose`, `broadcast_to`, `sum_to`, `select`, `row`, `column`, `unselect`, `slice_axis`, `pad_axis` | [`shape`] |
//! | products | `matmul` (batched, broadcast batch axes), `matmul_t` (either side transposed), `outer` | [`matmul`] |
//! | fused | `bias_act` (a layer's `act(z + b)` in one pass) | [`fused`] |
//! | the node itself | `value`, `shape`, `item`, `tape`, `index`, `is_param`, `detach` | [`crate::tape`] |
//!
//! A dot product is `(x * y).sum()`, a mean over a batch `x.mean_axis(0,
//! false)`; the tensors themselves (no gradients) have the same arithmetic
//! under the same names (`gradtape_kernels::Tensor`).

pub mod arith;
pub mod fused;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod shape;
pub mod unary;
