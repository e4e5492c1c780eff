//! Failure is visible: with the sigmoid's backward rule deliberately broken
//! (`gradtape::fault`, compiled into the engine only for these tests through
//! the `fault-injection` feature), gradcheck and the hand-derivation
//! comparison both fail for exactly the models that use a sigmoid, the
//! report fails, and the op-by-op diagnosis names `sigmoid`.
//!
//! The switch is process-wide, so this file is its own test binary (no
//! other test file shares the process), each of its tests holds a lock from
//! start to end so that they run one at a time, and a guard turns the
//! switch off again when it is dropped, even if an assertion panics.

use gradtape::fault::{broken_sigmoid_rule, set_broken_sigmoid_rule};
use gradtape_verify::cases::{Case, CaseKind, Size};
use gradtape_verify::compare::F64_TOLERANCE;
use gradtape_verify::diagnose::suspect_ops;
use gradtape_verify::report;
use std::sync::{Mutex, MutexGuard};

/// Serialises the tests of this file: each holds it from start to end.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    // A test that failed while holding the lock poisons it; its guard still
    // turned the switch off, so carry on.
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Breaks the sigmoid rule while alive, and mends it when dropped, also
/// when a panic unwinds through it.
struct BrokenSigmoid;

impl BrokenSigmoid {
    fn new() -> Self {
        set_broken_sigmoid_rule(true);
        BrokenSigmoid
    }
}

impl Drop for BrokenSigmoid {
    fn drop(&mut self) {
        set_broken_sigmoid_rule(false);
    }
}

#[test]
fn a_broken_sigmoid_rule_is_caught_by_gradcheck_and_by_the_hand_derivations_and_named() {
    let _serial = serial();
    let broken = BrokenSigmoid::new();
    for kind in CaseKind::ALL {
        let small = Case::<f64>::new(kind, Size::Small, 7);
        let gradcheck = small.gradcheck();
        let cmp = Case::<f64>::new(kind, Size::Full, 7).hand_vs_autodiff();
        if kind.uses_sigmoid() {
            let err = gradcheck.expect_err(&format!("{kind}: gradcheck missed the broken sigmoid rule"));
            assert!(err.to_string().contains("mismatch"), "{kind}: {err}");
            assert!(!cmp.within(F64_TOLERANCE), "{kind}: the hand derivation missed the broken sigmoid rule");
            // The comparison names the parameters whose gradients are off.
            let failures = cmp.describe_failures(F64_TOLERANCE);
            assert!(failures.contains("encoder"), "{kind}: {failures}");
        } else {
            gradcheck.unwrap_or_else(|e| panic!("{kind} has no sigmoid, yet gradcheck failed: {e}"));
            assert!(
                cmp.within(F64_TOLERANCE),
                "{kind} has no sigmoid: {}",
                cmp.describe_failures(F64_TOLERANCE)
            );
        }
    }
    // Op by op, exactly one backward rule is wrong, and it is named.
    assert_eq!(suspect_ops(), vec!["sigmoid"]);
    drop(broken);
    assert!(!broken_sigmoid_rule());
    assert!(suspect_ops().is_empty(), "with the switch off every op passes again");
}

#[test]
fn the_report_fails_on_the_sigmoid_models_and_names_the_op() {
    let _serial = serial();
    let broken = BrokenSigmoid::new();
    let r = report::run();
    drop(broken);
    assert!(!r.passed());
    for row in &r.rows {
        let kind = CaseKind::ALL.into_iter().find(|k| k.label() == row.model).unwrap();
        if !kind.uses_sigmoid() {
            assert!(row.pass, "{} {} has no sigmoid but failed: {:?}", row.model, row.parameter, row.why);
        }
    }
    // Every parameter row of the sigmoid models fails (all their gradients
    // pass through a sigmoid).
    for row in r.rows.iter().filter(|r| r.parameter != "loss") {
        let kind = CaseKind::ALL.into_iter().find(|k| k.label() == row.model).unwrap();
        assert_eq!(!row.pass, kind.uses_sigmoid(), "{} {}: {:?}", row.model, row.parameter, row.why);
    }
    assert_eq!(r.suspects, vec!["sigmoid"]);
    let verdict = r.verdict();
    assert!(verdict.starts_with("verdict: FAIL") && verdict.contains("sigmoid"), "{verdict}");
    let printed = r.to_string();
    assert!(printed.lines().last().unwrap().contains("sigmoid"), "the last line names the op");
    assert!(printed.contains("FAIL vae encoder.hidden.weight"), "the failures are listed by parameter");
}

#[test]
fn the_switch_is_off_again_even_when_a_check_panics() {
    let _serial = serial();
    let outcome = std::panic::catch_unwind(|| {
        let _broken = BrokenSigmoid::new();
        assert!(broken_sigmoid_rule());
        panic!("a failing check");
    });
    assert!(outcome.is_err());
    assert!(!broken_sigmoid_rule());
    let cmp = Case::<f64>::new(CaseKind::Vae, Size::Full, 7).hand_vs_autodiff();
    assert!(cmp.within(F64_TOLERANCE));
}

#[test]
fn without_the_switch_every_sigmoid_model_passes() {
    let _serial = serial();
    assert!(!broken_sigmoid_rule());
    for kind in CaseKind::ALL.into_iter().filter(|k| k.uses_sigmoid()) {
        Case::<f64>::new(kind, Size::Small, 7).gradcheck().unwrap();
    }
}
