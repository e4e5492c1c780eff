//! Arithmetic: `+ - * /`, negation and the scalar versions, with operator
//! overloading so that formulas read like maths.
//!
//! Binary ops broadcast like NumPy. Their backward rules below return the
//! gradient in the *output's* shape, and the backward sweep sums it back to
//! each input's shape in one place (`accumulate` in `grad.rs`'s sweep, by
//! `sum_to`), so the rules need not think about broadcasting. One rule
//! takes a shortcut on purpose: `mul_grad` sums while it multiplies
//! (`mul_sum_to`), which saves writing a broadcast product out.

use crate::algebra::Algebra;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::Element;
use std::ops::{Add, Div, Mul, Neg, Sub};

// The operators (`+`, `-`, `*`, `/`, unary `-`) are implemented below and
// forward to these named methods, which exist too so that rules and user code
// can write `x.add(y)` as in PyTorch; clippy's suggestion to implement the
// traits instead is already followed.
#[allow(clippy::should_implement_trait)]
impl<'t, T: Element> Var<'t, T> {
    /// `self + other`, broadcasting.
    #[track_caller]
    pub fn add(self, other: Var<'t, T>) -> Var<'t, T> {
        self.same_tape(&other, "add");
        let v = self.value().add(&other.value());
        self.record(v, Op::Add(self.id, other.id))
    }

    /// `self - other`, broadcasting.
    #[track_caller]
    pub fn sub(self, other: Var<'t, T>) -> Var<'t, T> {
        self.same_tape(&other, "sub");
        let v = self.value().sub(&other.value());
        self.record(v, Op::Sub(self.id, other.id))
    }

    /// `self * other` elementwise, broadcasting.
    #[track_caller]
    pub fn mul(self, other: Var<'t, T>) -> Var<'t, T> {
        self.same_tape(&other, "mul");
        let v = self.value().mul(&other.value());
        self.record(v, Op::Mul(self.id, other.id))
    }

    /// `self / other` elementwise, broadcasting.
    #[track_caller]
    pub fn div(self, other: Var<'t, T>) -> Var<'t, T> {
        self.same_tape(&other, "div");
        let v = self.value().div(&other.value());
        self.record(v, Op::Div(self.id, other.id))
    }

    /// `-self`.
    #[track_caller]
    pub fn neg(self) -> Var<'t, T> {
        self.record(self.value().neg(), Op::Neg(self.id))
    }

    /// `self + s` for a constant `s`.
    #[track_caller]
    pub fn add_scalar(self, s: T) -> Var<'t, T> {
        self.record(self.value().add_scalar(s), Op::AddScalar(self.id))
    }

    /// `self * s` for a constant `s`.
    #[track_caller]
    pub fn mul_scalar(self, s: T) -> Var<'t, T> {
        self.record(self.value().mul_scalar(s), Op::MulScalar(self.id, s))
    }

    /// `self / s` for a constant `s` (recorded as a multiplication by `1/s`).
    #[track_caller]
    pub fn div_scalar(self, s: T) -> Var<'t, T> {
        self.mul_scalar(T::one() / s)
    }

    /// `s - self` for a constant `s`.
    #[track_caller]
    pub fn rsub_scalar(self, s: T) -> Var<'t, T> {
        self.neg().add_scalar(s)
    }

    /// `s / self` for a constant `s`.
    #[track_caller]
    pub fn rdiv_scalar(self, s: T) -> Var<'t, T> {
        self.powf(-T::one()).mul_scalar(s)
    }
}

// ---- backward rules -------------------------------------------------------

/// d(a + b) = da + db: both inputs receive `g` unchanged.
pub(crate) fn add_grad<T: Element, A: Algebra<T>>(g: &A) -> A {
    g.clone()
}

/// d(a - b)/db = -1.
pub(crate) fn sub_grad_rhs<T: Element, A: Algebra<T>>(g: &A) -> A {
    g.neg()
}

/// d(a * b)/da = b (and symmetrically d/db = a). When `a` was broadcast,
/// its gradient is `sum_to(g * b)`, done here in one pass (`mul_sum_to`)
/// instead of writing the product out for the sweep to sum: the one rule
/// that undoes broadcasting itself.
pub(crate) fn mul_grad<T: Element, A: Algebra<T>>(g: &A, other: &A, this: &A) -> A {
    let shape = this.shape();
    if g.shape() != shape {
        g.mul_sum_to(other, &shape)
    } else {
        g.mul(other)
    }
}

/// d(a / b)/da = 1 / b.
pub(crate) fn div_grad_lhs<T: Element, A: Algebra<T>>(g: &A, b: &A) -> A {
    g.div(b)
}

/// d(a / b)/db = -a / b^2 = -(a/b) / b = -out / b.
pub(crate) fn div_grad_rhs<T: Element, A: Algebra<T>>(g: &A, out: &A, b: &A) -> A {
    g.mul(out).div(b).neg()
}

/// d(-x)/dx = -1.
pub(crate) fn neg_grad<T: Element, A: Algebra<T>>(g: &A) -> A {
    g.neg()
}

/// d(x * s)/dx = s.
pub(crate) fn mul_scalar_grad<T: Element, A: Algebra<T>>(g: &A, s: T) -> A {
    g.scale(s)
}

// ---- operators --------------------------------------------------------------

macro_rules! var_binary_operator {
    ($trait:ident, $method:ident, $scalar_method:ident) => {
        impl<'t, T: Element> $trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                Var::$method(self, rhs)
            }
        }
        impl<'t, T: Element> $trait<T> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: T) -> Var<'t, T> {
                self.$scalar_method(rhs)
            }
        }
    };
}

var_binary_operator!(Add, add, add_scalar);
var_binary_operator!(Mul, mul, mul_scalar);
var_binary_operator!(Div, div, div_scalar);

impl<'t, T: Element> Sub<Var<'t, T>> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, rhs: Var<'t, T>) -> Var<'t, T> {
        Var::sub(self, rhs)
    }
}

impl<'t, T: Element> Sub<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, rhs: T) -> Var<'t, T> {
        self.add_scalar(-rhs)
    }
}

impl<'t, T: Element> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        Var::neg(self)
    }
}

macro_rules! scalar_on_the_left {
    ($t:ty) => {
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn add(self, rhs: Var<'t, $t>) -> Var<'t, $t> {
                rhs.add_scalar(self)
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn sub(self, rhs: Var<'t, $t>) -> Var<'t, $t> {
                rhs.rsub_scalar(self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn mul(self, rhs: Var<'t, $t>) -> Var<'t, $t> {
                rhs.mul_scalar(self)
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn div(self, rhs: Var<'t, $t>) -> Var<'t, $t> {
                rhs.rdiv_scalar(self)
            }
        }
    };
}

scalar_on_the_left!(f32);
scalar_on_the_left!(f64);
