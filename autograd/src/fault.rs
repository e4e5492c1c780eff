//! Deliberate faults, for proving that the verification suite notices a
//! wrong backward rule. Compiled only with the `fault-injection` feature,
//! which is off by default: no ordinary build contains this module, and
//! `gradtape-verify` turns the feature on for its tests alone.
//!
//! Three switches, each process-wide:
//!
//! - [`set_broken_sigmoid_rule`]: the backward rule of `sigmoid` multiplies
//!   its derivative by 1.01 in both of its forms, a 1% error of the kind a
//!   typo in a derivation makes.
//! - [`set_broken_recorded_tanh_rule`]: only the *recorded* form of `tanh`'s
//!   rule (the one a `create_graph = true` sweep records) is scaled by
//!   1.01; the plain form stays right. gradcheck uses the plain form and
//!   gradgradcheck differentiates the recorded form against finite
//!   differences of itself, so neither can see this; only comparing the two
//!   sweeps can.
//! - [`set_nan_in_gradients`]: [`crate::grad_values`] returns NaN in the
//!   first entry of the first input's gradient, to show that no comparison
//!   passes a non-finite gradient.
//!
//! A test that flips a switch must run in a test binary of its own and turn
//! it off again even when it fails (a guard whose `Drop` resets it does
//! that).

use crate::algebra::Algebra;
use crate::op::Op;
use gradtape_kernels::{Act, Element};
use std::sync::atomic::{AtomicBool, Ordering};

static BROKEN_SIGMOID_RULE: AtomicBool = AtomicBool::new(false);
static BROKEN_RECORDED_TANH_RULE: AtomicBool = AtomicBool::new(false);
static NAN_IN_GRADIENTS: AtomicBool = AtomicBool::new(false);

/// The factor the broken sigmoid rule multiplies `s (1 - s)` by.
pub const BROKEN_SIGMOID_FACTOR: f64 = 1.01;

/// The factor the broken recorded tanh rule multiplies `1 - t^2` by.
pub const BROKEN_TANH_FACTOR: f64 = 1.01;

/// Turns the deliberately wrong sigmoid backward rule on or off.
pub fn set_broken_sigmoid_rule(broken: bool) {
    BROKEN_SIGMOID_RULE.store(broken, Ordering::SeqCst);
}

/// Whether the sigmoid backward rule is currently broken.
pub fn broken_sigmoid_rule() -> bool {
    BROKEN_SIGMOID_RULE.load(Ordering::SeqCst)
}

/// Turns the deliberately wrong *recorded* form of tanh's rule on or off.
pub fn set_broken_recorded_tanh_rule(broken: bool) {
    BROKEN_RECORDED_TANH_RULE.store(broken, Ordering::SeqCst);
}

/// Whether the recorded form of tanh's rule is currently broken.
pub fn broken_recorded_tanh_rule() -> bool {
    BROKEN_RECORDED_TANH_RULE.load(Ordering::SeqCst)
}

/// Turns the NaN in [`crate::grad_values`]'s first gradient on or off.
pub fn set_nan_in_gradients(on: bool) {
    NAN_IN_GRADIENTS.store(on, Ordering::SeqCst);
}

/// Whether [`crate::grad_values`] currently plants a NaN.
pub fn nan_in_gradients() -> bool {
    NAN_IN_GRADIENTS.load(Ordering::SeqCst)
}

/// A gradient a backward rule returned for `op`, broken on purpose when a
/// switch says so. Called by the dispatcher (`grad::vjp`) on every rule's
/// result in test builds, so that the rules themselves carry no test code:
///
/// - sigmoid's rule, both forms: `g s (1 - s)` times 1.01 (also inside the
///   fused `bias_act` with a sigmoid, whose gradients both come from it);
/// - tanh's rule, only when the sweep is recorded (`A::RECORDED`, a
///   `create_graph = true` sweep): `g (1 - t^2)` times 1.01 (the same).
pub(crate) fn tamper<T: Element, A: Algebra<T>>(op: &Op<T>, gradient: A) -> A {
    match op {
        Op::Sigmoid(_) | Op::BiasAct { act: Act::Sigmoid, .. } if broken_sigmoid_rule() => {
            gradient.scale(T::of(BROKEN_SIGMOID_FACTOR))
        }
        Op::Tanh(_) | Op::BiasAct { act: Act::Tanh, .. } if A::RECORDED && broken_recorded_tanh_rule() => {
            gradient.scale(T::of(BROKEN_TANH_FACTOR))
        }
        _ => gradient,
    }
}
