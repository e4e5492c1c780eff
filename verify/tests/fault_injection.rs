//! Failure is visible: with the sigmoid's backward rule deliberately broken
//! (`gradtape::fault`, compiled into the engine only for these tests through
//! the `fault-injection` feature), gradcheck and the hand-derivation
//! comparison both fail for exactly the models that use a sigmoid, the
//! report fails, and the op-by-op diagnosis names `sigmoid`.
//!
//! Two more faults: with only the *recorded* form of tanh's rule broken,
//! gradcheck and gradgradcheck both still pass and only the comparison of
//! the recorded sweep with the plain one (`recorded_matches_plain`) fails;
//! and with a NaN planted in one entry of an autodiff gradient, the
//! hand-derivation comparison, the PyTorch comparison and the report all
//! fail and say where the NaN is.
//!
//! The switch is process-wide, so this file is its own test binary (no
//! other test file shares the process), each of its tests holds a lock from
//! start to end so that they run one at a time, and a guard turns the
//! switch off again when it is dropped, even if an assertion panics.

use gradtape::fault::{
    broken_recorded_tanh_rule, broken_sigmoid_rule, nan_in_gradients, set_broken_recorded_tanh_rule,
    set_broken_sigmoid_rule, set_nan_in_gradients,
};
use gradtape::Tensor;
use gradtape_kernels::compare::{Mismatch, Tol};
use gradtape_verify::cases::{Case, CaseKind, Size};
use gradtape_verify::compare::F64_TOLERANCE;
use gradtape_verify::diagnose::suspect_ops;
use gradtape_verify::reference::{Reference, TOLERANCE as TORCH_TOLERANCE};
use gradtape_verify::{gradcheck, gradgradcheck, recorded_matches_plain, report};
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
    // Op by op, exactly the ops that use sigmoid's rule are wrong, and
    // named: sigmoid itself and the fused layer op with a sigmoid.
    assert_eq!(suspect_ops(), vec!["sigmoid", "bias_act (sigmoid)"]);
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
    assert_eq!(r.suspects, vec!["sigmoid", "bias_act (sigmoid)"]);
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

/// Turns one of the other two switches on while alive, and off again when
/// dropped, also when a panic unwinds through it.
struct Switch(fn(bool));

impl Switch {
    fn on(set: fn(bool)) -> Self {
        set(true);
        Switch(set)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        (self.0)(false);
    }
}

fn tanh<'t>(v: &[gradtape::Var<'t, f64>]) -> Vec<gradtape::Var<'t, f64>> {
    vec![v[0].tanh()]
}

#[test]
fn a_recorded_rule_broken_alone_passes_gradcheck_and_gradgradcheck_but_not_the_sweep_comparison() {
    let _serial = serial();
    let x = Tensor::<f64>::uniform(&[2, 3], -1.5, 1.5, 11);
    recorded_matches_plain(tanh, std::slice::from_ref(&x), Tol::EXACT).expect("the rule is right");

    let broken = Switch::on(set_broken_recorded_tanh_rule);
    // The plain sweep is untouched: gradcheck passes. gradgradcheck
    // differentiates the (wrong) recorded rule against finite differences
    // of the same wrong rule: it passes too.
    gradcheck(tanh, std::slice::from_ref(&x)).expect("gradcheck cannot see a fault in the recorded form");
    gradgradcheck(tanh, std::slice::from_ref(&x))
        .expect("gradgradcheck checks the recorded form against itself");
    // Comparing the two sweeps catches it, at any tolerance short of 1%.
    let err = recorded_matches_plain(tanh, std::slice::from_ref(&x), Tol::rel(1e-3)).unwrap_err();
    match &err {
        Mismatch::TooFar { name, max_abs_diff, .. } => {
            assert_eq!(name, "recorded gradient of input 0");
            assert!(*max_abs_diff > 0.0);
        }
        other => panic!("expected a difference in value, got {other}"),
    }
    drop(broken);
    assert!(!broken_recorded_tanh_rule());
    recorded_matches_plain(tanh, std::slice::from_ref(&x), Tol::EXACT).expect("mended");
}

#[test]
fn a_nan_in_one_gradient_entry_fails_the_hand_derivation_the_pytorch_check_and_the_report() {
    let _serial = serial();
    let reference = Reference::embedded().unwrap();
    let nan = Switch::on(set_nan_in_gradients);
    for kind in CaseKind::ALL {
        let case = Case::<f64>::new(kind, Size::Full, 7);
        let first = case.params().names()[0].clone();
        let (_, grads) = case.autodiff();
        assert!(grads[0].data()[0].is_nan(), "{kind}: the fault planted its NaN");
        assert!(grads[0].data()[1..].iter().all(|v| v.is_finite()), "{kind}: one NaN only");

        let hand = case.hand_vs_autodiff();
        assert!(!hand.within(F64_TOLERANCE), "{kind}: the hand derivation passed a NaN gradient");
        assert!(!hand.params[0].diff.within(f64::INFINITY), "{kind}: not even at an infinite tolerance");
        assert_eq!(hand.params[0].diff.non_finite.map(|(i, _)| i), Some(0));
        let failures = hand.describe_failures(F64_TOLERANCE);
        assert_eq!(failures, format!("{first} (NaN at index 0)"), "{kind}: named, and only it");

        let torch = reference.compare(kind).unwrap();
        assert!(!torch.autodiff.within(TORCH_TOLERANCE), "{kind}: the PyTorch check passed a NaN gradient");
        assert_eq!(torch.autodiff.describe_failures(TORCH_TOLERANCE), format!("{first} (NaN at index 0)"));
        assert!(torch.hand.within(TORCH_TOLERANCE), "{kind}: the hand derivation has no NaN");
    }
    let r = report::run();
    drop(nan);
    assert!(!nan_in_gradients());
    assert!(!r.passed());
    let verdict = r.verdict();
    assert!(verdict.starts_with("verdict: FAIL"), "{verdict}");
    let printed = r.to_string();
    assert!(!printed.contains("PASS"), "the report printed PASS for a NaN gradient:\n{printed}");
    // Each model's first parameter fails, and says where the NaN is.
    for kind in CaseKind::ALL {
        let first = Case::<f64>::new(kind, Size::Small, 7).params().names()[0].clone();
        let row = r.rows.iter().find(|row| row.model == kind.label() && row.parameter == first).unwrap();
        assert!(!row.pass, "{} {first} passed with a NaN gradient", row.model);
        let why = row.why.join("; ");
        assert!(why.contains("hand vs autodiff (f64): NaN at index 0"), "{}: {why}", row.model);
        assert!(why.contains("autodiff vs PyTorch: NaN at index 0"), "{}: {why}", row.model);
    }
}
