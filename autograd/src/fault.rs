//! Deliberate faults, for proving that the verification suite notices a
//! wrong backward rule. Compiled only with the `fault-injection` feature,
//! which is off by default: no ordinary build contains this module, and
//! `gradtape-verify` turns the feature on for its tests alone.
//!
//! One switch for now: [`set_broken_sigmoid_rule`]. While it is on, the
//! backward rule of `sigmoid` multiplies its derivative by 1.01, a 1% error
//! of the kind a typo in a derivation makes. The switch is process-wide, so
//! a test that flips it must run in a test binary of its own and turn it off
//! again even when it fails (a guard whose `Drop` resets it does that).

use std::sync::atomic::{AtomicBool, Ordering};

static BROKEN_SIGMOID_RULE: AtomicBool = AtomicBool::new(false);

/// The factor the broken sigmoid rule multiplies `s (1 - s)` by.
pub const BROKEN_SIGMOID_FACTOR: f64 = 1.01;

/// Turns the deliberately wrong sigmoid backward rule on or off.
pub fn set_broken_sigmoid_rule(broken: bool) {
    BROKEN_SIGMOID_RULE.store(broken, Ordering::SeqCst);
}

/// Whether the sigmoid backward rule is currently broken.
pub fn broken_sigmoid_rule() -> bool {
    BROKEN_SIGMOID_RULE.load(Ordering::SeqCst)
}
