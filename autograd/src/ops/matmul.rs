//! Matrix products (with optional transposes and batch axes) and the outer
//! product.
//!
//! For `C = A B` the rules are the two every course derives:
//! `dA = dC B^T` and `dB = A^T dC`. With a transposed operand, `C = A^T B`
//! say, the same rules give `d(A^T) = dC B^T`, so `dA = B dC^T`. Transposes
//! are flags on the product, read through strides, so none of this copies a
//! matrix.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::Element;

impl<'t, T: Element> Var<'t, T> {
    /// Matrix product `self @ other` (leading axes are batch axes).
    #[track_caller]
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        self.matmul_t(other, false, false)
    }

    /// `op(self) @ op(other)` where `op` transposes the last two axes when
    /// its flag is set. `x.matmul_t(w, false, true)` is `x @ w^T`, the
    /// product inside a linear layer whose weight is stored `out x in`.
    #[track_caller]
    pub fn matmul_t(self, other: Var<'t, T>, ta: bool, tb: bool) -> Var<'t, T> {
        self.same_tape(&other, "matmul");
        let v = self.value().matmul_t(&other.value(), ta, tb);
        self.record(v, Op::MatMul { a: self.id, b: other.id, ta, tb })
    }

    /// Outer product of two vectors: `out[i, j] = self[i] * other[j]`.
    #[track_caller]
    pub fn outer(self, other: Var<'t, T>) -> Var<'t, T> {
        let (a, b) = (self.shape(), other.shape());
        assert!(a.len() == 1 && b.len() == 1, "outer: needs two vectors, got shapes {a:?} and {b:?}");
        self.reshape(&[a[0], 1]).mul(other.reshape(&[1, b[0]]))
    }
}

// ---- backward rules -------------------------------------------------------
//
// `G` is the algebra the rule runs on (tensors, or recorded `Var`s); `A` and
// `B` below are the matrices of the product.

/// Gradient of the left operand of `C = op_a(A) op_b(B)`:
/// dA = dC op_b(B)^T, or, when A was used transposed, dA = op_b(B) dC^T.
/// With `sum_so_far` (A also feeds other ops, whose gradients the sweep has
/// summed), the product is added to it by the product itself.
pub(crate) fn matmul_grad_lhs<T: Element, G: Algebra<T>>(
    g: &G,
    b: &G,
    ta: bool,
    tb: bool,
    sum_so_far: Option<G>,
) -> G {
    let (x, y, tx, ty) = if ta { (b, g, tb, true) } else { (g, b, false, !tb) };
    product_plus(x, y, tx, ty, sum_so_far)
}

/// Gradient of the right operand of `C = op_a(A) op_b(B)`:
/// dB = op_a(A)^T dC, or, when B was used transposed, dB = dC^T op_a(A).
/// `sum_so_far` as for the left operand.
pub(crate) fn matmul_grad_rhs<T: Element, G: Algebra<T>>(
    g: &G,
    a: &G,
    ta: bool,
    tb: bool,
    sum_so_far: Option<G>,
) -> G {
    let (x, y, tx, ty) = if tb { (g, a, true, ta) } else { (a, g, !ta, false) };
    product_plus(x, y, tx, ty, sum_so_far)
}

/// `op(x) @ op(y)`, plus `sum_so_far` when there is one.
fn product_plus<T: Element, G: Algebra<T>>(x: &G, y: &G, tx: bool, ty: bool, sum_so_far: Option<G>) -> G {
    match sum_so_far {
        Some(acc) => x.matmul_t_add_to(y, tx, ty, acc),
        None => x.matmul_t(y, tx, ty),
    }
}
