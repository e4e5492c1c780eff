//! Anomaly mode: the first op that makes a NaN or an infinity is named,
//! with the line that recorded it, forward and backward; input data that is
//! already bad is named as such; large but finite numbers raise no alarm.

use gradtape::{grad, grad_values, Tape, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("anomaly mode should have stopped this");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a text panic")
}

/// `file:line` of this test file.
fn here(line: u32) -> String {
    format!("{}:{line}", file!())
}

#[test]
fn anomaly_mode_is_off_by_default_and_then_lets_non_finite_values_through() {
    let tape = Tape::<f64>::new();
    assert!(!tape.anomaly_detection());
    let x = tape.constant(&Tensor::from_vec(vec![1.0, 0.0], &[2]));
    let y = x.log();
    assert_eq!(y.value().to_vec()[1], f64::NEG_INFINITY);
}

#[test]
fn a_forward_op_that_makes_an_infinity_is_named_with_its_line_index_and_input() {
    let tape = Tape::<f64>::new();
    tape.detect_anomaly(true);
    let x = tape.constant(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0, 5.0, 6.0], &[2, 3]));
    let mut line = 0;
    let msg = panic_message(|| {
        line = line!() + 1;
        let _ = x.log();
    });
    let want = format!("anomaly: log at {} produced -inf at [1, 0] from the input value 0", here(line));
    assert!(msg.starts_with(&want), "{msg}\nwanted: {want}");
    assert!(msg.contains("input shapes [[2, 3]]"), "{msg}");
}

#[test]
fn a_binary_op_names_both_input_values() {
    let tape = Tape::<f64>::new();
    tape.detect_anomaly(true);
    let a = tape.param(&Tensor::from_vec(vec![1.0, -2.0], &[2]));
    let b = tape.constant(&Tensor::from_vec(vec![4.0, 0.0], &[2]));
    let mut line = 0;
    let msg = panic_message(|| {
        line = line!() + 1;
        let _ = a / b;
    });
    let want = format!("anomaly: div at {} produced -inf at [1] from the input values -2, 0", here(line));
    assert!(msg.starts_with(&want), "{msg}\nwanted: {want}");
}

#[test]
fn input_data_that_is_already_nan_is_named_as_data_not_blamed_on_an_op() {
    let tape = Tape::<f32>::new();
    tape.detect_anomaly(true);
    let mut data = vec![0.5f32; 6];
    data[5] = f32::NAN;
    let mut line = 0;
    let msg = panic_message(|| {
        line = line!() + 1;
        let _ = tape.constant(&Tensor::from_vec(data, &[2, 3]));
    });
    let want = format!("anomaly: the constant read in at {} (shape [2, 3]) holds NaN at [1, 2]", here(line));
    assert_eq!(msg, want);

    // Read in while the mode was off, then touched with it on: the data is
    // still what is named, with the op that first read it left blameless.
    let tape = Tape::<f32>::new();
    let x = tape.param(&Tensor::from_vec(vec![1.0, f32::INFINITY], &[2]));
    tape.detect_anomaly(true);
    let msg = panic_message(|| {
        let _ = (x * 2.0).sum();
    });
    assert!(msg.starts_with("anomaly: the parameter read in (node 0, shape [2]) holds inf at [1]"), "{msg}");
}

#[test]
fn a_backward_rule_that_makes_an_infinity_names_its_op_and_forward_line() {
    // sqrt is finite at 0, its derivative 1 / (2 sqrt(x)) is not.
    for create_graph in [false, true] {
        let tape = Tape::<f64>::new();
        tape.detect_anomaly(true);
        let x = tape.param(&Tensor::from_vec(vec![4.0, 0.0], &[2]));
        let line = line!() + 1;
        let y = x.sqrt();
        let loss = y.sum();
        let msg = panic_message(|| {
            let _ = grad(&[loss], &[x], None, create_graph);
        });
        let want = format!(
            "anomaly: the backward rule of sqrt (node 1, recorded at {}) turned a finite gradient into inf at [1] \
             of the gradient for node 0",
            here(line)
        );
        assert_eq!(msg, want, "create_graph = {create_graph}");
        // The mode is back on after the sweep stopped.
        assert!(tape.anomaly_detection());
    }
}

#[test]
fn a_second_backward_through_a_recorded_gradient_is_checked_too() {
    // d/dx sqrt(x) is finite at x = 1 and its derivative too, but the
    // gradient of the gradient at x = 0 is not: the first sweep passes at
    // x = 1, the second runs at x = 0.
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::from_vec(vec![1.0, 0.0], &[2]));
    let y = x.powf(1.5).sum(); // dy/dx = 1.5 x^0.5, d2y/dx2 = 0.75 x^-0.5
    let dy = grad(&[y], &[x], None, true)[0];
    assert!(dy.value().to_vec().iter().all(|v| v.is_finite()));
    tape.detect_anomaly(true);
    let msg = panic_message(|| {
        let _ = grad_values(&[dy.sum()], &[x], None);
    });
    // The first sweep recorded powf's rule as one formula node, pow_grad
    // (g x^0.5 1.5): its own rule is the one that meets x^-0.5 at 0.
    assert!(msg.starts_with("anomaly: the backward rule of pow_grad"), "{msg}");
    assert!(msg.contains("turned a finite gradient into inf at [1]"), "{msg}");
}

#[test]
fn large_but_finite_values_and_gradients_raise_no_alarm() {
    let tape = Tape::<f64>::new();
    tape.detect_anomaly(true);
    // e^700 is about 1e304: finite, and so are its first and second
    // derivatives.
    let x = tape.param(&Tensor::from_vec(vec![700.0, -700.0, 1.0], &[3]));
    let y = x.exp().sum();
    let dx = grad(&[y], &[x], None, true)[0];
    let ddx = grad_values(&[dx.sum()], &[x], None);
    assert!(dx.value().to_vec()[0] > 1e303 && ddx[0].to_vec()[0] > 1e303);
    assert!(ddx[0].to_vec().iter().all(|v| v.is_finite()));
}

#[test]
fn recording_anomalies_keeps_the_first_report_and_goes_on() {
    let mut tape = Tape::<f64>::new();
    tape.record_anomalies(true);
    let x = tape.param(&Tensor::from_vec(vec![4.0, 0.0], &[2]));
    let line = line!() + 1;
    let y = x.log(); // -inf at [1]: the first report
    let z = (y * 2.0).sum(); // -inf again: not a new first
    assert_eq!(z.value().to_vec()[0], f64::NEG_INFINITY, "the computation went on");
    let report = tape.first_anomaly().expect("a report");
    assert!(report.starts_with(&format!("anomaly: log at {} produced -inf at [1]", here(line))), "{report}");
    tape.clear();
    assert_eq!(tape.first_anomaly(), None, "clear forgets the report");
    // Panicking mode replaces the quiet one.
    tape.detect_anomaly(true);
    let x = tape.param(&Tensor::from_vec(vec![0.0], &[1]));
    let msg = panic_message(|| {
        let _ = x.log();
    });
    assert!(msg.starts_with("anomaly: log at "), "{msg}");
}
