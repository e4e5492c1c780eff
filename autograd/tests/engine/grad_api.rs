//! The behaviour of `grad`, `grad_values` and `backward` that users rely on.

use gradtape::{grad, grad_values, Tape, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), shape)
}

#[test]
fn an_input_the_outputs_do_not_depend_on_gets_zeros() {
    let tape = Tape::new();
    let x = tape.param(&t(&[1.0, 2.0], &[2]));
    let unused = tape.param(&t(&[3.0, 4.0, 5.0], &[3]));
    let y = x.square().sum();
    let g = grad_values(&[y], &[x, unused], None);
    assert_eq!(g[0].to_vec(), vec![2.0, 4.0]);
    assert_eq!(g[1].shape(), &[3]);
    assert_eq!(g[1].to_vec(), vec![0.0; 3]);
}

#[test]
fn without_create_graph_the_sweep_records_nothing_but_the_results() {
    let tape = Tape::new();
    let x = tape.param(&t(&[0.3, -0.7], &[2]));
    let y = (x.sigmoid() * x).tanh().sum();
    let before = tape.len();
    let _ = grad_values(&[y], &[x], None);
    assert_eq!(tape.len(), before, "grad_values must not record");
    let _ = grad(&[y], &[x], None, false);
    assert_eq!(tape.len(), before + 1, "grad(create_graph=false) records only the result leaf");
    let _ = grad(&[y], &[x], None, true);
    assert!(tape.len() > before + 5, "create_graph records the backward sweep");
}

#[test]
fn backward_returns_a_gradient_for_each_parameter_and_skips_constants() {
    let tape = Tape::new();
    let w = tape.param(&t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let b = tape.param(&t(&[0.5, -0.5], &[2]));
    let x = tape.constant(&t(&[1.0, -1.0], &[1, 2]));
    let loss = (x.matmul_t(w, false, true) + b).square().sum();
    let g = loss.backward();
    assert_eq!(g.len(), 2);
    // z = x W^T + b = [1-2+0.5, 3-4-0.5] = [-0.5, -1.5]; dL/dz = 2z.
    assert_eq!(g[b].to_vec(), vec![-1.0, -3.0]);
    // dL/dW = dz^T x.
    assert_eq!(g[w].to_vec(), vec![-1.0, 1.0, -3.0, 3.0]);
    assert!(g.get(x).is_none());
}

#[test]
fn gradients_with_respect_to_an_intermediate_value() {
    let tape = Tape::new();
    let x = tape.param(&t(&[1.0, 2.0], &[2]));
    let h = x * 3.0;
    let y = (h * h).sum();
    let g = grad_values(&[y], &[h, x], None);
    assert_eq!(g[0].to_vec(), vec![6.0, 12.0]); // 2h
    assert_eq!(g[1].to_vec(), vec![18.0, 36.0]); // 2h * 3
}

#[test]
fn hessian_vector_product_by_double_backward() {
    // f = sum x^3: H = diag(6x), so H v = 6 x v.
    let tape = Tape::new();
    let x = tape.param(&t(&[1.0, -2.0, 0.5], &[3]));
    let v = tape.constant(&t(&[1.0, 1.0, 2.0], &[3]));
    let g = grad(&[x.powf(3.0).sum()], &[x], None, true)[0];
    let hv = grad(&[(g * v).sum()], &[x], None, false)[0].value();
    assert_eq!(hv.to_vec(), vec![6.0, -12.0, 6.0]);
}

#[test]
fn grad_outputs_weight_the_vector_jacobian_product() {
    let tape = Tape::new();
    let x = tape.param(&t(&[1.0, 2.0, 3.0], &[3]));
    let y = x * 2.0;
    let g = grad_values(&[y], &[x], Some(&[t(&[1.0, 0.0, -1.0], &[3])]));
    assert_eq!(g[0].to_vec(), vec![2.0, 0.0, -2.0]);
}

#[test]
fn parameters_are_read_onto_the_tape_without_copying() {
    let w = Tensor::<f32>::ones(&[64, 64]);
    let tape = Tape::new();
    let p = tape.param(&w);
    assert!(p.value().shares_storage_with(&w));
}

#[test]
fn clearing_a_tape_keeps_it_usable() {
    let mut tape = Tape::<f32>::with_capacity(16);
    for step in 0..3 {
        tape.clear();
        let x = tape.param(&Tensor::full(&[2], step as f32));
        let g = (x * x).sum().backward();
        assert_eq!(g[x].to_vec(), vec![2.0 * step as f32; 2]);
    }
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
fn a_shape_error_names_the_op_and_both_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.constant(&Tensor::zeros(&[2, 3]));
    let b = tape.constant(&Tensor::zeros(&[4]));
    let _ = a + b;
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not match: inner lengths 3 and 2")]
fn a_matmul_shape_error_names_both_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.constant(&Tensor::zeros(&[2, 3]));
    let _ = a.matmul(a);
}

thread_local! {
    /// Where the last panic on this thread happened (file, line).
    static LAST_PANIC: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once per process, a panic hook that notes each panic's
/// location for the panicking thread and then hands the panic on to the
/// hook that was there before (so other tests print as usual). The note is
/// per thread: tests running in parallel never see each other's panics,
/// and no test swaps the process-wide hook back and forth.
fn note_panic_locations() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| (l.file().to_string(), l.line()));
            LAST_PANIC.with(|last| *last.borrow_mut() = at);
            previous(info);
        }));
    });
}

#[test]
fn shape_errors_point_at_the_callers_line() {
    // Every function between the user's line and the panic is
    // `#[track_caller]`, so the reported location is the user's own line.
    note_panic_locations();
    LAST_PANIC.with(|last| *last.borrow_mut() = None);
    let line = line!() + 5;
    let outcome = std::panic::catch_unwind(|| {
        let tape = Tape::<f32>::new();
        let a = tape.constant(&Tensor::zeros(&[2, 3]));
        let b = tape.constant(&Tensor::zeros(&[3, 2]));
        let _ = a * b;
    });
    assert!(outcome.is_err(), "multiplying [2, 3] by [3, 2] elementwise must panic");
    let (file, at) = LAST_PANIC.with(|last| last.borrow().clone()).expect("a panic location");
    assert!(file.ends_with("grad_api.rs"), "panic reported in {file}");
    assert_eq!(at, line, "panic reported at line {at}");
}

#[test]
#[should_panic(expected = "grad: output 0 has shape [2]; pass grad_outputs for outputs that are not scalars")]
fn a_non_scalar_output_needs_grad_outputs() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::zeros(&[2]));
    let _ = grad(&[x * 2.0], &[x], None, false);
}

#[test]
#[should_panic(expected = "grad: grad_outputs[0] has shape [3] but output 0 has shape [2]")]
fn grad_outputs_must_match_the_outputs_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::zeros(&[2]));
    let _ = grad_values(&[x * 2.0], &[x], Some(&[Tensor::zeros(&[3])]));
}
