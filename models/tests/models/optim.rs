//! Tests for `gradtape_models::optim`: SGD and Adam against their update
//! rules written out by hand as f64 loops, in-place updates, state that
//! round-trips (also through a safetensors checkpoint) and resumes a run
//! exactly, and clear errors for bad learning rates and mismatched inputs.

use gradtape_kernels::Tensor;
use gradtape_models::checkpoint::{load, save};
use gradtape_models::optim::{Adam, Optimizer, Sgd};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An optimiser's state, as `Optimizer::state` returns it.
type State = Vec<(String, Tensor<f64>)>;

/// Two parameters of different shapes, as plain numbers.
fn initial() -> Vec<Vec<f64>> {
    vec![vec![0.5, -1.25, 2.0, 0.0, -0.75, 1.5], vec![0.3, -0.2, 0.9, -2.5]]
}

const SHAPES: [&[usize]; 2] = [&[2, 3], &[4]];

fn tensors(values: &[Vec<f64>]) -> Vec<Tensor<f64>> {
    values.iter().zip(SHAPES).map(|(v, s)| Tensor::from_vec(v.clone(), s)).collect()
}

/// The gradient fed at step `k` to element `i` of parameter `j` whose value
/// is now `p`: that of a quadratic bowl plus a step-dependent wobble, so the
/// gradients change from step to step and depend on the parameters.
fn grad_at(k: usize, j: usize, i: usize, p: f64) -> f64 {
    2.0 * p + 0.3 * ((7 * k + 3 * j + i) as f64).sin()
}

fn grads_for(k: usize, params: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    params
        .iter()
        .enumerate()
        .map(|(j, p)| {
            let g: Vec<f64> = p.data().iter().enumerate().map(|(i, &x)| grad_at(k, j, i, x)).collect();
            Tensor::from_vec(g, p.shape())
        })
        .collect()
}

/// Runs `steps` steps of `opt` starting at step number `from`.
fn run(opt: &mut dyn Optimizer<f64>, params: &mut [Tensor<f64>], from: usize, steps: usize) {
    for k in from..from + steps {
        let grads = grads_for(k, params);
        let mut refs: Vec<&mut Tensor<f64>> = params.iter_mut().collect();
        opt.step(&mut refs, &grads);
    }
}

fn assert_close(got: &[Tensor<f64>], want: &[Vec<f64>], what: &str) {
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (a, b)) in g.data().iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12,
                "{what}: parameter {j} element {i}: {a} vs {b} (diff {:e})",
                (a - b).abs()
            );
        }
    }
}

// ---- the update rules, by hand -------------------------------------------------

struct SgdSettings {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
}

/// torch.optim.SGD, one number at a time.
fn sgd_by_hand(s: &SgdSettings, steps: usize) -> Vec<Vec<f64>> {
    let mut p = initial();
    let mut buf: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    for k in 0..steps {
        for j in 0..p.len() {
            for i in 0..p[j].len() {
                let mut g = grad_at(k, j, i, p[j][i]);
                if s.weight_decay != 0.0 {
                    g += s.weight_decay * p[j][i];
                }
                if s.momentum != 0.0 {
                    buf[j][i] = if k == 0 { g } else { s.momentum * buf[j][i] + (1.0 - s.dampening) * g };
                    g = if s.nesterov { g + s.momentum * buf[j][i] } else { buf[j][i] };
                }
                p[j][i] -= s.lr * g;
            }
        }
    }
    p
}

struct AdamSettings {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

/// torch.optim.Adam (amsgrad off), one number at a time.
fn adam_by_hand(s: &AdamSettings, steps: usize) -> Vec<Vec<f64>> {
    let mut p = initial();
    let mut m: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut v = m.clone();
    for k in 0..steps {
        let t = (k + 1) as i32;
        let bc1 = 1.0 - s.beta1.powi(t);
        let bc2 = 1.0 - s.beta2.powi(t);
        for j in 0..p.len() {
            for i in 0..p[j].len() {
                let mut g = grad_at(k, j, i, p[j][i]);
                g += s.weight_decay * p[j][i];
                m[j][i] = s.beta1 * m[j][i] + (1.0 - s.beta1) * g;
                v[j][i] = s.beta2 * v[j][i] + (1.0 - s.beta2) * g * g;
                let denom = v[j][i].sqrt() / bc2.sqrt() + s.eps;
                p[j][i] -= s.lr / bc1 * m[j][i] / denom;
            }
        }
    }
    p
}

// ---- SGD ---------------------------------------------------------------------------

fn check_sgd(s: SgdSettings, opt: Sgd<f64>, what: &str) {
    for steps in [1, 3, 5] {
        let mut params = tensors(&initial());
        let mut opt = opt.clone();
        run(&mut opt, &mut params, 0, steps);
        assert_close(&params, &sgd_by_hand(&s, steps), &format!("{what}, {steps} steps"));
    }
}

#[test]
fn plain_sgd_matches_the_update_rule_over_five_steps() {
    let s = SgdSettings { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    check_sgd(s, Sgd::new(0.1), "plain SGD");
}

#[test]
fn sgd_with_momentum_and_dampening_matches_torch_rule_over_five_steps() {
    let s = SgdSettings { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    check_sgd(s, Sgd::new(0.05).momentum(0.9), "momentum");
    let s = SgdSettings { lr: 0.05, momentum: 0.8, dampening: 0.3, weight_decay: 0.0, nesterov: false };
    check_sgd(s, Sgd::new(0.05).momentum(0.8).dampening(0.3), "momentum + dampening");
}

#[test]
fn sgd_with_weight_decay_matches_the_update_rule_with_and_without_momentum() {
    let s = SgdSettings { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.01, nesterov: false };
    check_sgd(s, Sgd::new(0.1).weight_decay(0.01), "weight decay");
    let s = SgdSettings { lr: 0.1, momentum: 0.5, dampening: 0.0, weight_decay: 0.05, nesterov: false };
    check_sgd(s, Sgd::new(0.1).weight_decay(0.05).momentum(0.5), "weight decay + momentum");
}

#[test]
fn nesterov_sgd_matches_the_update_rule_over_five_steps() {
    let s = SgdSettings { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 0.01, nesterov: true };
    // The builder methods can come in any order.
    let opt = Sgd::new(0.05).nesterov(true).weight_decay(0.01).momentum(0.9);
    check_sgd(s, opt, "nesterov");
}

#[test]
fn sgd_without_momentum_keeps_no_state() {
    let mut opt = Sgd::new(0.1);
    run(&mut opt, &mut tensors(&initial()), 0, 2);
    assert!(opt.state().is_empty());
}

// ---- Adam --------------------------------------------------------------------------

fn check_adam(s: AdamSettings, opt: Adam<f64>, what: &str) {
    for steps in [1, 3, 5] {
        let mut params = tensors(&initial());
        let mut opt = opt.clone();
        run(&mut opt, &mut params, 0, steps);
        assert_close(&params, &adam_by_hand(&s, steps), &format!("{what}, {steps} steps"));
        assert_eq!(opt.steps(), steps as u64);
    }
}

#[test]
fn adam_with_pytorch_defaults_matches_the_update_rule_over_five_steps() {
    let opt = Adam::default();
    assert_eq!((opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay), (1e-3, 0.9, 0.999, 1e-8, 0.0));
    let s = AdamSettings { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    check_adam(s, opt, "Adam defaults");
}

#[test]
fn adam_with_weight_decay_and_other_betas_matches_the_update_rule() {
    let s = AdamSettings { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.1 };
    let opt = Adam::new(0.01).betas(0.8, 0.99).eps(1e-6).weight_decay(0.1);
    check_adam(s, opt, "Adam + weight decay");
}

#[test]
fn adam_first_step_moves_every_element_by_lr_against_the_gradient_sign() {
    // At t = 1, m / sqrt(v) after bias correction is g / |g| exactly (up to
    // eps): every element moves by lr, whatever the gradient's scale.
    let mut p = Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3]);
    let g = Tensor::from_vec(vec![1e-3, -50.0, 4.0], &[3]);
    let mut opt = Adam::new(0.01);
    opt.step(&mut [&mut p], &[g]);
    let moved: Vec<f64> = p.data().iter().map(|x| x - 1.0).collect();
    for (d, want) in moved.iter().zip([-0.01, 0.01, -0.01]) {
        assert!((d - want).abs() < 1e-7, "{moved:?}");
    }
}

// ---- in place ----------------------------------------------------------------------

#[test]
fn step_writes_in_place_when_the_parameter_is_not_shared() {
    let optimisers: Vec<Box<dyn Optimizer<f64>>> =
        vec![Box::new(Sgd::new(0.1)), Box::new(Sgd::new(0.1).momentum(0.9)), Box::new(Adam::new(0.1))];
    for mut opt in optimisers {
        let mut params = tensors(&initial());
        let before: Vec<*const f64> = params.iter().map(|p| p.data().as_ptr()).collect();
        let old = params[0].to_vec();
        run(opt.as_mut(), &mut params, 0, 3);
        let after: Vec<*const f64> = params.iter().map(|p| p.data().as_ptr()).collect();
        assert_eq!(before, after, "the parameters were copied");
        assert_ne!(params[0].to_vec(), old, "the parameters did not move");
    }
}

#[test]
fn step_leaves_a_shared_copy_of_the_parameter_untouched() {
    let mut p = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    let held = p.clone(); // e.g. a tape still holding the parameter as a leaf
    let g = Tensor::from_vec(vec![1.0, 1.0], &[2]);
    Adam::new(0.1).step(&mut [&mut p], &[g]);
    assert_eq!(held.data(), &[1.0, 2.0]);
    assert!(!p.shares_storage_with(&held));
    assert!((p.data()[0] - 0.9).abs() < 1e-6);
}

#[test]
fn zero_learning_rate_freezes_and_set_lr_takes_effect() {
    let mut opt = Sgd::new(0.0);
    let mut params = tensors(&initial());
    run(&mut opt, &mut params, 0, 2);
    assert_close(&params, &initial(), "lr 0");
    opt.set_lr(0.1);
    assert_eq!(opt.lr(), 0.1);
    run(&mut opt, &mut params, 0, 1);
    let s = SgdSettings { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    assert_close(&params, &sgd_by_hand(&s, 1), "after set_lr");
}

// ---- state ---------------------------------------------------------------------------

/// Runs 5 steps straight, and 2 steps + state round trip + 3 steps on a
/// fresh optimiser; the parameters must agree bit for bit.
fn resume_is_exact(make: impl Fn() -> Box<dyn Optimizer<f64>>, round_trip: impl Fn(State) -> State) {
    let mut straight = tensors(&initial());
    run(make().as_mut(), &mut straight, 0, 5);

    let mut resumed = tensors(&initial());
    let mut first = make();
    run(first.as_mut(), &mut resumed, 0, 2);
    let state = round_trip(first.state());
    drop(first);
    let mut second = make();
    second.load_state(&state).unwrap();
    run(second.as_mut(), &mut resumed, 2, 3);

    for (a, b) in straight.iter().zip(&resumed) {
        assert_eq!(a.data(), b.data(), "the resumed run drifted");
    }
    // Without the state, it would not have matched.
    let mut fresh = tensors(&initial());
    let mut lost = make();
    run(lost.as_mut(), &mut fresh, 0, 2);
    let mut lost = make();
    run(lost.as_mut(), &mut fresh, 2, 3);
    assert_ne!(straight[0].data(), fresh[0].data());
}

#[test]
fn state_round_trip_resumes_exactly_like_an_uninterrupted_run() {
    resume_is_exact(|| Box::new(Adam::new(0.05).weight_decay(0.01)), |s| s);
    resume_is_exact(|| Box::new(Sgd::new(0.05).momentum(0.9).nesterov(true)), |s| s);
    resume_is_exact(|| Box::new(Sgd::new(0.05).momentum(0.7).dampening(0.2)), |s| s);
}

#[test]
fn state_saved_as_safetensors_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    let through_file = |state: State| {
        let refs: Vec<(&str, &Tensor<f64>)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
        save(&path, &refs, None).unwrap();
        // The file comes back sorted by name (adam.m.0, adam.m.1, adam.step,
        // ...): load_state must go by the names, not the order.
        load::<f64>(&path).unwrap().tensors.into_iter().collect()
    };
    resume_is_exact(|| Box::new(Adam::new(0.05)), through_file);
    resume_is_exact(|| Box::new(Sgd::new(0.05).momentum(0.9)), through_file);
}

#[test]
fn state_is_named_per_parameter_with_the_step_count() {
    let mut adam = Adam::new(0.01);
    assert!(adam.state().is_empty(), "no state before the first step");
    run(&mut adam, &mut tensors(&initial()), 0, 3);
    let state = adam.state();
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["adam.step", "adam.m.0", "adam.v.0", "adam.m.1", "adam.v.1"]);
    assert_eq!(state[0].1.shape(), &[1]);
    assert_eq!(state[0].1.data(), &[3.0]);
    assert_eq!(state[1].1.shape(), &[2, 3]);
    assert_eq!(state[4].1.shape(), &[4]);

    let mut sgd = Sgd::new(0.01).momentum(0.9);
    run(&mut sgd, &mut tensors(&initial()), 0, 1);
    let names: Vec<String> = sgd.state().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["sgd.momentum.0", "sgd.momentum.1"]);
}

#[test]
fn loading_an_empty_state_resets_to_before_the_first_step() {
    let mut opt = Adam::new(0.01);
    run(&mut opt, &mut tensors(&initial()), 0, 3);
    opt.load_state(&[]).unwrap();
    assert_eq!(opt.steps(), 0);
    assert!(opt.state().is_empty());
    let mut params = tensors(&initial());
    run(&mut opt, &mut params, 0, 2);
    let s = AdamSettings { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    assert_close(&params, &adam_by_hand(&s, 2), "after reset");
}

#[test]
fn malformed_state_is_rejected_with_a_message_and_changes_nothing() {
    let mut opt = Adam::new(0.01);
    run(&mut opt, &mut tensors(&initial()), 0, 2);
    let good = opt.state();
    let t = |v: f64| Tensor::from_vec(vec![v], &[1]);
    let without = |name: &str| -> State { good.iter().filter(|(n, _)| n != name).cloned().collect() };
    let with = |extra: (&str, Tensor<f64>)| -> State {
        let mut s = good.clone();
        s.push((extra.0.to_string(), extra.1));
        s
    };
    let replaced = |name: &str, tensor: Tensor<f64>| -> State {
        good.iter().map(|(n, x)| (n.clone(), if n == name { tensor.clone() } else { x.clone() })).collect()
    };
    let cases: Vec<(State, &str)> = vec![
        (with(("sgd.momentum.0", t(1.0))), "unknown state entry `sgd.momentum.0`"),
        (without("adam.step"), "no `adam.step`"),
        (without("adam.m.0"), "`adam.m.0` is missing"),
        (without("adam.v.1"), "1 second moments"),
        (with(("adam.m.x", t(0.0))), "`x` is not an index"),
        (with(("adam.m.1", t(0.0))), "`adam.m.1` appears twice"),
        (with(("adam.step", t(2.0))), "`adam.step` appears twice"),
        (replaced("adam.step", t(2.5)), "not a whole number"),
        (replaced("adam.step", t(-1.0)), "not a whole number"),
        (replaced("adam.step", Tensor::zeros(&[2])), "must hold one number"),
        (replaced("adam.v.0", Tensor::zeros(&[3, 2])), "`adam.v.0` has shape [3, 2]"),
    ];
    for (state, want) in cases {
        let err = opt.load_state(&state).unwrap_err();
        assert!(err.contains(want), "error {err:?} lacks {want:?}");
        assert!(err.starts_with("Adam::load_state: "), "{err}");
        // Nothing changed.
        let now = opt.state();
        assert_eq!(now.len(), good.len());
        for ((n1, a), (n2, b)) in now.iter().zip(&good) {
            assert_eq!((n1, a.data()), (n2, b.data()));
        }
    }

    let mut sgd = Sgd::<f64>::new(0.1).momentum(0.9);
    let err = sgd.load_state(&[("adam.step".to_string(), t(1.0))]).unwrap_err();
    assert!(err.contains("unknown state entry `adam.step`"), "{err}");
}

// ---- errors ------------------------------------------------------------------------

/// The message of the panic raised by `f`.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn invalid_learning_rates_are_rejected_with_a_message() {
    for lr in [-0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = Sgd::<f32>::try_new(lr).unwrap_err();
        assert!(err.contains("Sgd: invalid learning rate"), "{err}");
        assert!(err.contains("finite and >= 0"), "{err}");
        let err = Adam::<f32>::try_new(lr).unwrap_err();
        assert!(err.contains("Adam: invalid learning rate"), "{err}");

        let msg = panic_message(|| {
            Sgd::<f32>::new(lr);
        });
        assert!(msg.contains("Sgd: invalid learning rate"), "{msg}");
        let msg = panic_message(|| {
            Adam::<f32>::new(lr);
        });
        assert!(msg.contains("Adam: invalid learning rate"), "{msg}");
        let msg = panic_message(|| Adam::<f32>::new(0.1).set_lr(lr));
        assert!(msg.contains("Adam: invalid learning rate"), "{msg}");
    }
    assert!(Sgd::<f32>::try_new(0.0).is_ok());
    assert!(Adam::<f32>::try_new(3e-4).is_ok());
}

#[test]
fn invalid_hyperparameters_are_rejected_with_a_message() {
    let msg = panic_message(|| {
        Sgd::<f32>::new(0.1).momentum(-0.5);
    });
    assert!(msg.contains("Sgd: invalid momentum -0.5"), "{msg}");
    let msg = panic_message(|| {
        Adam::<f32>::new(0.1).betas(0.9, 1.0);
    });
    assert!(msg.contains("Adam: invalid beta2 1"), "{msg}");
    let msg = panic_message(|| {
        Adam::<f32>::new(0.1).eps(-1e-8);
    });
    assert!(msg.contains("Adam: invalid eps"), "{msg}");

    // Nesterov without momentum: PyTorch refuses it, so do we.
    let opt = Sgd::<f64>::new(0.1).nesterov(true);
    assert!(opt.validate().unwrap_err().contains("Nesterov momentum needs momentum > 0"));
    let msg = panic_message(|| run(&mut opt.clone(), &mut tensors(&initial()), 0, 1));
    assert!(msg.contains("Nesterov momentum needs momentum > 0"), "{msg}");
    let opt = Sgd::<f64>::new(0.1).momentum(0.9).dampening(0.1).nesterov(true);
    let err = opt.validate().unwrap_err();
    assert!(err.contains("dampening = 0 (got momentum 0.9, dampening 0.1)"), "{err}");
    assert!(Sgd::<f64>::new(0.1).momentum(0.9).nesterov(true).validate().is_ok());
}

#[test]
fn mismatched_parameters_and_gradients_panic_with_a_message() {
    let mut a = Tensor::<f64>::zeros(&[2, 3]);
    let mut b = Tensor::<f64>::zeros(&[4]);
    let msg = panic_message(|| Sgd::new(0.1).step(&mut [&mut a, &mut b], &[Tensor::zeros(&[2, 3])]));
    assert!(msg.contains("Sgd::step: got 2 parameters but 1 gradients"), "{msg}");
    let msg = panic_message(|| Adam::new(0.1).step(&mut [&mut a], &[Tensor::zeros(&[3, 2])]));
    assert!(
        msg.contains("Adam::step: parameter 0 has shape [2, 3] but its gradient has shape [3, 2]"),
        "{msg}"
    );

    // State made for one model, used with another.
    let mut opt = Adam::new(0.1);
    opt.step(&mut [&mut a], &[Tensor::zeros(&[2, 3])]);
    let msg = panic_message(|| {
        opt.clone().step(&mut [&mut a, &mut b], &[Tensor::zeros(&[2, 3]), Tensor::zeros(&[4])])
    });
    assert!(msg.contains("holds first moments for 1 parameters but step was given 2"), "{msg}");
    let msg = panic_message(|| opt.clone().step(&mut [&mut b], &[Tensor::zeros(&[4])]));
    assert!(msg.contains("has shape [2, 3] but the parameter has shape [4]"), "{msg}");
}

#[test]
// The reference update walks four arrays side by side, as the formula reads.
#[allow(clippy::needless_range_loop)]
fn adam_on_subnormal_gradients_leaves_the_parameters_exact_arithmetic_gives() {
    // The update flushes subnormals (for speed). Gradients of 1e-20 square
    // to subnormal second moments, and 3e-39 is subnormal itself; the
    // parameters must come out bit for bit as the same f32 formula computed
    // with subnormals kept.
    let p0 = [0.5f32, -0.25, 1.0, 0.125];
    let g = [1e-20f32, 3e-39, 0.01, -2e-19];
    let mut param = Tensor::from_vec(p0.to_vec(), &[4]);
    let mut opt = Adam::<f32>::new(1e-3);
    let (mut p, mut m, mut v) = (p0, [0f32; 4], [0f32; 4]);
    for step in 1..=50 {
        opt.step(&mut [&mut param], &[Tensor::from_vec(g.to_vec(), &[4])]);
        let t = step as f64;
        let step_size = (1e-3 / (1.0 - 0.9f64.powf(t))) as f32;
        let bc2_sqrt = ((1.0 - 0.999f64.powf(t)).sqrt()) as f32;
        for i in 0..4 {
            m[i] = 0.9f32 * m[i] + (1.0f64 - 0.9) as f32 * g[i];
            v[i] = 0.999f32 * v[i] + (1.0f64 - 0.999) as f32 * g[i] * g[i];
            p[i] -= step_size * (m[i] / (v[i].sqrt() / bc2_sqrt + 1e-8f32));
        }
    }
    assert!(v[0] > 0.0 && v[0] < f32::MIN_POSITIVE, "the reference really went subnormal: {}", v[0]);
    for i in 0..4 {
        assert_eq!(param.data()[i].to_bits(), p[i].to_bits(), "element {i}: {} vs {}", param.data()[i], p[i]);
    }
}
