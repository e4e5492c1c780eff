//! Fused ops: several plain ops recorded as one node, computed in one pass.
//!
//! Read the plain rules first (`unary.rs`, `arith.rs`, `shape.rs`): a fused
//! op is only a faster way to compute what they compute. Each one here is
//! shown as the composition of plain ops it replaces, and a test
//! (`verify/tests/suite/fused.rs`) checks it against that composition.
//!
//! - `z.bias_act(b, act)` = `act(z + b)`: a linear layer's bias and
//!   activation (`act` one of identity, `relu`, `sigmoid`, `tanh`; `b` a
//!   vector as long as `z`'s last axis). One pass forward instead of two.
//!   Its rule is, in plain rules,
//!
//!   ```text
//!   dz = g * act'(y)            act'(y): step(y), y (1 - y), 1 - y^2, or 1
//!   db = sum_to(dz, b.shape)    the broadcast of b, undone
//!   ```
//!
//!   which a plain backward pass does in one pass too
//!   (`Tensor::bias_act_grad`), and a recorded one records as those plain
//!   ops (`Algebra::bias_act_grad`), so double backward, the contractive
//!   penalty and `gradgradcheck` see ordinary nodes.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::ops::unary;
use crate::tape::Var;
use gradtape_kernels::{Act, Element};

impl<'t, T: Element> Var<'t, T> {
    /// `act(self + b)` in one pass, `b` a vector as long as `self`'s last
    /// axis: the same value as `(self + b)` followed by the activation
    /// (`.relu()`, `.sigmoid()`, `.tanh()`), recorded as one node.
    #[track_caller]
    pub fn bias_act(self, b: Var<'t, T>, act: Act) -> Var<'t, T> {
        self.same_tape(&b, "bias_act");
        let v = self.value().bias_act(&b.value(), act);
        self.record(v, Op::BiasAct { z: self.id, b: b.id, act })
    }
}

// ---- backward rules -------------------------------------------------------

/// y = act(z + b):
/// dz = g * act'(y) (step(y), y (1 - y), 1 - y^2, or 1: from the output, as
/// the plain rules of relu, sigmoid and tanh), db = sum_to(dz, b.shape).
/// Both in one call, since db is made from dz.
pub(crate) fn bias_act_grad<T: Element, A: Algebra<T>>(
    g: &A,
    y: &A,
    act: Act,
    z: usize,
    b: usize,
    need: &impl Fn(usize) -> bool,
) -> [Option<(usize, A)>; 2] {
    let (need_z, need_b) = (need(z), need(b));
    if !need_z && !need_b {
        return [None, None];
    }
    if !need_b {
        // dz alone (as in the rows of an input Jacobian): the activation's
        // own plain rule, written in its output.
        let dz = match act {
            Act::Identity => g.clone(),
            Act::Relu => unary::relu_grad(g, y),
            Act::Sigmoid => unary::sigmoid_grad(g, y),
            Act::Tanh => unary::tanh_grad(g, y),
        };
        return [Some((z, dz)), None];
    }
    let bias_len = y.shape()[y.shape().len() - 1];
    let (dz, db) = g.bias_act_grad(y, act, bias_len);
    [need_z.then_some((z, dz)), Some((b, db))]
}
