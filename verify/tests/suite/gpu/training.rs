//! The parity suite beyond single ops: gradcheck with the inputs on the
//! device, the optimisers' updates, and one training step of every model.

use super::ops::*;
use super::*;

// ---- gradcheck on the device -----------------------------------------------

/// gradcheck and gradgradcheck (f64) with every input on `device`, for a
/// representative op of each family (they are slow: one sweep per Jacobian
/// row and two evaluations per input element).
pub(super) fn gradchecks_pass_on(device: Device) {
    type Check = (&'static str, Func<f64>, Vec<Tensor<f64>>);
    let on = |x: Tensor<f64>| x.to(device);
    let cases: Vec<Check> = vec![
        ("sigmoid", op(|v| vec![v[0].sigmoid()]), vec![on(any(&[2, 3], 1))]),
        ("softplus", op(|v| vec![v[0].softplus()]), vec![on(any(&[5], 2))]),
        ("log", op(|v| vec![v[0].log()]), vec![on(positive(&[4], 3))]),
        ("relu", op(|v| vec![v[0].relu()]), vec![on(away_from_zero(&[4], 4))]),
        ("div broadcast", op(|v| vec![v[0] / v[1]]), vec![on(any(&[2, 3], 5)), on(away_from_zero(&[3], 6))]),
        ("mul broadcast", op(|v| vec![v[0] * v[1]]), vec![on(any(&[2, 1], 7)), on(any(&[1, 3], 8))]),
        (
            "matmul_t",
            op(|v| vec![v[0].matmul_t(v[1], true, false)]),
            vec![on(any(&[3, 2], 9)), on(any(&[3, 4], 10))],
        ),
        (
            "batched matmul",
            op(|v| vec![v[0].matmul(v[1])]),
            vec![on(any(&[2, 2, 3], 11)), on(any(&[3, 2], 12))],
        ),
        ("sum_axis", op(|v| vec![v[0].sum_axis(1, false)]), vec![on(any(&[2, 3, 2], 13))]),
        ("max_axis", op(|v| vec![v[0].max_axis(0, true)]), vec![on(distinct(&[3, 2], 14))]),
        ("mean", op(|v| vec![v[0].mean()]), vec![on(any(&[3, 3], 15))]),
        ("row_norms", op(|v| vec![v[0].row_norms()]), vec![on(away_from_zero(&[2, 3], 16))]),
        ("transpose", op(|v| vec![v[0].transpose()]), vec![on(any(&[2, 3], 17))]),
        (
            "slice and pad",
            op(|v| vec![v[0].slice_axis(1, 1, 2).pad_axis(0, 1, 4)]),
            vec![on(any(&[2, 3], 18))],
        ),
        (
            "select and unselect",
            op(|v| vec![v[0].select(0, 1).unselect(1, 0, 2)]),
            vec![on(any(&[2, 3], 19))],
        ),
        ("clamp", op(|v| vec![v[0].clamp(-0.5, 0.5)]), vec![on(away_from_bounds(&[5], 20))]),
        (
            "two outputs",
            op(|v| vec![(v[0] * v[1]).tanh(), (v[0] - v[1]).exp().sum()]),
            vec![on(any(&[3], 21)), on(any(&[3], 22))],
        ),
    ];
    for (name, f, inputs) in &cases {
        for x in inputs {
            assert_eq!(x.device(), device, "{name}: input not on {device}");
        }
        gradcheck(|v| f(v), inputs).unwrap_or_else(|e| panic!("{name} on {device}: gradcheck: {e}"));
        gradgradcheck(|v| f(v), inputs).unwrap_or_else(|e| panic!("{name} on {device}: gradgradcheck: {e}"));
    }
}

#[test]
fn gradcheck_and_gradgradcheck_pass_with_inputs_on_the_gpu() {
    let Some(device) = gpu() else { return };
    gradchecks_pass_on(device);
}

// ---- optimisers ------------------------------------------------------------

/// Three steps of Adam (with weight decay) and of SGD with momentum on
/// the same parameters and gradients on both devices; the updated
/// parameters must agree. Gradients are kept away from zero: Adam's first
/// steps move a weight by about `lr * sign(g)`, so a gradient that is zero
/// give or take rounding would make the comparison a coin toss.
pub(super) fn optimisers_match_the_cpu<T: Precision>(device: Device) {
    type Make<T> = fn() -> Box<dyn Optimizer<T>>;
    let optimisers: [(&str, Make<T>); 2] = [
        ("adam", || Box::new(Adam::new(1e-2).weight_decay(1e-2))),
        ("sgd", || Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true))),
    ];
    let shapes: [&[usize]; 3] = [&[64, 784], &[64], &[7]];
    for (name, make) in optimisers {
        let mut cpu: Vec<Tensor<T>> =
            shapes.iter().enumerate().map(|(i, s)| any(s, 800 + i as u64)).collect();
        let mut there: Vec<Tensor<T>> = cpu.iter().map(|p| p.to(device)).collect();
        let (mut opt_cpu, mut opt_there) = (make(), make());
        for step in 0..3u64 {
            let grads: Vec<Tensor<T>> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| away_from_zero(s, 900 + 10 * step + i as u64))
                .collect();
            let grads_there: Vec<Tensor<T>> = grads.iter().map(|g| g.to(device)).collect();
            opt_cpu.step(&mut cpu.iter_mut().collect::<Vec<_>>(), &grads);
            opt_there.step(&mut there.iter_mut().collect::<Vec<_>>(), &grads_there);
            for (i, (p, q)) in there.iter().zip(&cpu).enumerate() {
                assert_eq!(p.device(), device, "{name}: parameter {i} left {device}");
                let what = format!("{} {name} step {step}: parameter {i} on {device}", T::NAME);
                check_close(&what, &p.to_cpu(), q, T::TOL).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn optimiser_updates_match_the_cpu() {
    let Some(device) = gpu() else { return };
    optimisers_match_the_cpu::<f32>(device);
    optimisers_match_the_cpu::<f64>(device);
}

// ---- one training step of every model ----------------------------------------

/// Digits in the training-step batch.
const STEP_BATCH: usize = 16;

/// Tolerance for a whole training step in f32: the loss is a sum over
/// 16 x 784 squared errors and the gradients go through matrix products
/// with 784-long dot products, summed in a different order by cuBLAS than
/// by the CPU's kernels; each result carries a few f32 roundings per term,
/// which stays far below 1e-4 of the largest entry. A wrong kernel is off
/// by far more.
const STEP_TOL: Tol = Tol::rel(1e-4);

/// The batch a model of `kind` takes: real digits (5x5 for the zero-digit
/// model).
fn batch_for(kind: ModelKind) -> Tensor<f32> {
    match kind {
        ModelKind::ZeroDigit => downsampled_batch(STEP_BATCH, 5),
        _ => real_batch(STEP_BATCH),
    }
}

/// Compares a step taken on the CPU with the same step on `device`:
/// the losses, and each parameter's change (`after - before`, i.e.
/// `-lr * gradient` for plain SGD, judged relative to its own largest
/// entry) and its new value.
fn compare_steps(
    label: &str,
    device: Device,
    before: &[Tensor<f32>],
    (loss_cpu, after_cpu): (f64, &[Tensor<f32>]),
    (loss_there, after_there): (f64, &[Tensor<f32>]),
) {
    let loss = |v: f64| Tensor::from_vec(vec![v as f32], &[]);
    check_close(&format!("{label}: loss on {device}"), &loss(loss_there), &loss(loss_cpu), STEP_TOL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after_there.len(), after_cpu.len(), "{label}: parameter count");
    for (i, ((b, c), t)) in before.iter().zip(after_cpu).zip(after_there).enumerate() {
        assert_eq!(t.device(), device, "{label}: parameter {i} left {device}");
        let t = t.to_cpu();
        let change_cpu = c.sub(b);
        let change_there = t.sub(b);
        // A change is a difference of two f32 parameters, so it is known
        // only to a rounding of the parameter itself: allow a few ulps of
        // the largest parameter besides the relative bound.
        let largest = b.data().iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        let change_tol = Tol { abs: 4.0 * f64::from(f32::EPSILON) * largest, ..STEP_TOL };
        check_close(
            &format!("{label}: change of parameter {i} on {device}"),
            &change_there,
            &change_cpu,
            change_tol,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        check_close(&format!("{label}: parameter {i} on {device}"), &t, c, STEP_TOL)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The settings of `kind` with every random part of a step switched off
/// (no dropout, no masking noise), so that `train_step` computes the same
/// function on both devices; the contractive model once per penalty form.
/// The VAE always draws its noise, so it is left to
/// [`explicit_draws_match_the_cpu`].
fn deterministic_specs() -> Vec<(String, ModelSpec)> {
    let mut specs = Vec::new();
    for kind in ModelKind::ALL {
        let mut spec = ModelSpec::default_for(kind);
        spec.dropout = 0.0;
        spec.noise = 0.0;
        match kind {
            ModelKind::Vae => {}
            ModelKind::Contractive => {
                for penalty in [PenaltyMode::DoubleBackward, PenaltyMode::ClosedForm] {
                    specs.push((format!("contractive ({penalty:?})"), ModelSpec { penalty, ..spec.clone() }));
                }
            }
            _ => specs.push((kind.name().to_string(), spec)),
        }
    }
    specs
}

/// One `train_step` (plain SGD, so the change of a weight is the gradient
/// times the rate) of every deterministic model on the CPU and on `device`
/// from the same initial weights.
pub(super) fn train_steps_match_the_cpu(device: Device) {
    for (label, spec) in deterministic_specs() {
        let x = batch_for(spec.kind);
        let step = |device: Device| {
            let mut model = spec.build(7);
            model.params_mut().to_device(device);
            let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
            let mut opt = Sgd::new(0.1);
            let mut tape = Tape::new();
            let loss = train_step(model.as_mut(), &mut opt, &mut tape, &x, 11);
            assert!(loss.is_finite(), "{label} on {device}: loss {loss}");
            (before, loss, model.params().tensors().to_vec())
        };
        let (before, loss_cpu, after_cpu) = step(Device::Cpu);
        let (_, loss_there, after_there) = step(device);
        compare_steps(&label, device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
    }
}

#[test]
fn one_training_step_of_every_model_matches_the_cpu() {
    let Some(device) = gpu() else { return };
    train_steps_match_the_cpu(device);
}

/// A training step as `train_step` takes it, with the loss given by
/// `loss` (which receives the step's device so it can move its masks
/// there): SGD, so the change of a weight is `-lr * gradient`.
fn step_with<M: Autoencoder<f32>>(
    model: &mut M,
    x: &Tensor<f32>,
    loss: impl for<'t> Fn(&M, &Bound<'t, f32>, Var<'t, f32>, Device) -> Var<'t, f32>,
) -> f64 {
    let device = model.params().device();
    let mut tape = Tape::new();
    let (value, grads) = {
        let p = model.params().bind(&tape);
        let xv = tape.constant(&x.to(device));
        let l = loss(model, &p, xv, device);
        (l.item() as f64, grad_values(&[l], p.vars(), None))
    };
    tape.clear();
    Sgd::new(0.1).step(&mut model.params_mut().tensors_mut(), &grads);
    value
}

/// The regularised and denoising models with their default dropout (and
/// masking noise), and the VAE, with the masks and `eps` drawn once on the
/// host and copied to each device: a GPU draws its own masks by design,
/// so the same function is compared by passing them in.
pub(super) fn explicit_draws_match_the_cpu(device: Device) {
    let x = real_batch::<f32>(STEP_BATCH);
    let (n, d) = (x.shape()[0], x.shape()[1]);
    for (label, config) in
        [("regularized", RegularizedConfig::default()), ("denoising", RegularizedConfig::denoising())]
    {
        let mut rng = StdRng::seed_from_u64(21);
        let template = RegularizedAutoencoder::<f32>::new(&config, 5);
        let dropout: Tensor<f32> = template.dropout().mask(&[n, template.latent_dim()], &mut rng);
        let noise = (config.noise > 0.0)
            .then(|| Tensor::<f32>::bernoulli_on(&[n, d], 1.0 - config.noise, &mut rng, Device::Cpu));
        let step = |device: Device| {
            let mut model = template.clone();
            model.params_mut().to_device(device);
            let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
            let loss = step_with(&mut model, &x, |m, p, xv, dev| {
                let noise = noise.as_ref().map(|t| t.to(dev));
                m.loss_with_masks(p, xv, noise.as_ref(), Some(&dropout.to(dev))).total
            });
            (before, loss, model.params().tensors().to_vec())
        };
        let (before, loss_cpu, after_cpu) = step(Device::Cpu);
        let (_, loss_there, after_there) = step(device);
        compare_steps(label, device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
    }
    let template = Vae::<f32>::new(&VaeConfig::default(), 5);
    let eps = Tensor::<f32>::normal(&[n, template.latent_dim()], 0.0, 1.0, 23);
    let step = |device: Device| {
        let mut model = template.clone();
        model.params_mut().to_device(device);
        let before: Vec<Tensor<f32>> = model.params().tensors().iter().map(Tensor::to_cpu).collect();
        let loss = step_with(&mut model, &x, |m, p, xv, dev| m.loss_with_eps(p, xv, &eps.to(dev)).total);
        (before, loss, model.params().tensors().to_vec())
    };
    let (before, loss_cpu, after_cpu) = step(Device::Cpu);
    let (_, loss_there, after_there) = step(device);
    compare_steps("vae", device, &before, (loss_cpu, &after_cpu), (loss_there, &after_there));
}

#[test]
fn a_training_step_with_the_same_masks_and_noise_matches_the_cpu() {
    let Some(device) = gpu() else { return };
    explicit_draws_match_the_cpu(device);
}

/// Steps queued as `fit` queues them, on `device`: after warm-up a step
/// makes no host wait, no copy to the host and no device allocation
/// (counted on the calling thread, on the stand-in; a real GPU's driver is
/// not counted, so there the counts are only checked to be zero where
/// they are). A step whose loss is NaN, and every step after it, then
/// leaves the weights and Adam's moments as they were, bit for bit; the
/// guard names that step, and `forget_skipped` takes the skipped steps off
/// Adam's count.
fn queued_steps_skip_after_a_non_finite_loss_without_waiting(device: Device) {
    use gradtape_kernels::cuda::standin;
    let x = real_batch::<f32>(STEP_BATCH).to(device);
    let mut model = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 3);
    model.params_mut().to_device(device);
    let (mut opt, mut tape, mut guard) = (Adam::new(1e-3), Tape::new(), LossGuard::on(device));
    for seed in 0..3 {
        queue_step(&mut model, &mut opt, &mut tape, &x, StepSeed::Seeded(seed), &mut guard);
    }
    let before = standin::thread_counters();
    queue_step(&mut model, &mut opt, &mut tape, &x, StepSeed::Seeded(3), &mut guard);
    let step = standin::thread_counters() - before;
    assert_eq!(
        (step.syncs, step.device_to_host, step.allocations, step.frees),
        (0, 0, 0, 0),
        "a queued step on {device} waited, copied to the host or allocated: {step:?}"
    );
    let read = guard.read();
    assert_eq!((read.diverged_at, read.weight_sum), (None, 4.0 * STEP_BATCH as f64), "{read:?}");
    assert!(read.loss_sum.is_finite() && read.loss_sum > 0.0, "{read:?}");

    let snapshot = |model: &DeepAutoencoder<f32>, opt: &Adam<f32>| -> Vec<Vec<f32>> {
        let params = model.params().tensors().iter().map(Tensor::to_vec);
        params.chain(opt.state().iter().map(|(_, t)| t.to_vec())).collect()
    };
    let kept = snapshot(&model, &opt);
    let nan = Tensor::<f32>::full(x.shape(), f32::NAN).to(device);
    queue_step(&mut model, &mut opt, &mut tape, &nan, StepSeed::Seeded(4), &mut guard);
    queue_step(&mut model, &mut opt, &mut tape, &x, StepSeed::Seeded(5), &mut guard);
    let read = guard.read();
    assert_eq!(read.diverged_at, Some(4), "{read:?}");
    assert!(read.bad_loss.is_nan() && read.weight_sum == 4.0 * STEP_BATCH as f64, "{read:?}");
    assert_eq!(opt.steps(), 6);
    opt.forget_skipped(2);
    let after = snapshot(&model, &opt);
    for (k, (a, b)) in after.iter().zip(&kept).enumerate() {
        let same = a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "on {device}: parameter or Adam state {k} changed after the NaN step");
    }
}

#[test]
fn queued_steps_skip_after_a_non_finite_loss_without_waiting_on_the_cpu() {
    queued_steps_skip_after_a_non_finite_loss_without_waiting(Device::Cpu);
}

#[test]
fn queued_steps_skip_after_a_non_finite_loss_without_waiting_on_the_gpu() {
    let Some(device) = gpu() else { return };
    queued_steps_skip_after_a_non_finite_loss_without_waiting(device);
}

/// `fit` on a GPU copies the training images to the device once: a step
/// copies nothing from the host (its batch is gathered on the device). Over
/// two epochs of 8 steps the copies (counted on this thread) are the images,
/// then per epoch its order, its guard and its one test batch, and Adam's
/// table of addresses: at most 1 + 3 * 2 + 1, where copying each batch
/// would be 16 more.
#[test]
fn fit_on_the_gpu_copies_the_training_set_once() {
    use gradtape_kernels::cuda::standin;
    use gradtape_models::data::MnistSplit;
    use gradtape_models::train::{fit, TrainConfig};
    let Some(device) = gpu() else { return };
    let split = MnistSplit::embedded();
    let (train, test) = (split.train.take(512), split.test.take(100));
    let mut model = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 4);
    model.params_mut().to_device(device);
    let mut opt = Adam::new(1e-3);
    let config =
        TrainConfig { epochs: 2, batch_size: 64, seed: 2, eval_batch_size: 500, detect_anomaly: false };
    let before = standin::thread_counters();
    let history = fit(&mut model, &mut opt, &train, &test, &config, 0, &mut |_| {});
    let added = standin::thread_counters() - before;
    assert!(history.diverged.is_none() && history.epochs.len() == 2, "{history:?}");
    if added.launches > 0 {
        // The stand-in counted (a real GPU's driver is not counted).
        assert!(added.host_to_device <= 1 + 3 * 2 + 1, "{added:?}");
    }
}

/// `fit` on a GPU runs every full step of an epoch as the same launches and
/// cuBLAS calls with the same arguments (the stand-in's call log, split at
/// each step's gather): the batch, Adam's step and the VAE's `eps` are all
/// read from the guard's step clock on the device. Compared without the
/// buffers' addresses: the other tests of this process take buffers from the
/// same device's pool meanwhile (`bench gpu_counts`, a process of its own,
/// compares the addresses too). The first step also makes the shared seed
/// of ones; the last batch is shorter.
#[test]
fn fit_on_the_gpu_runs_each_full_step_as_the_same_calls() {
    use gradtape_kernels::cuda::standin;
    use gradtape_kernels::workers::on_worker;
    use gradtape_models::data::MnistSplit;
    use gradtape_models::train::{fit, TrainConfig};
    let Some(device) = gpu() else { return };
    if standin::real_driver_present() {
        println!("skipped: the call log is the stand-in's");
        return;
    }
    let split = MnistSplit::embedded();
    let (train, test) = (split.train.take(520), split.test.take(50));
    let mut model = Vae::<f32>::new(&VaeConfig::default(), 6);
    model.params_mut().to_device(device);
    let mut opt = Adam::new(1e-3);
    let config =
        TrainConfig { epochs: 1, batch_size: 64, seed: 3, eval_batch_size: 500, detect_anomaly: false };
    // On this thread (a worker), so that the log sees `fit`'s calls.
    let (history, calls) = on_worker(|| {
        standin::log_calls(|| fit(&mut model, &mut opt, &train, &test, &config, 0, &mut |_| {}))
    });
    assert!(history.diverged.is_none(), "{history:?}");
    let mut steps: Vec<Vec<(String, u64)>> = Vec::new();
    for call in calls {
        if call.name.starts_with("gather_rows") || steps.is_empty() {
            steps.push(Vec::new());
        }
        steps.last_mut().unwrap().push((call.name, call.values));
    }
    // 8 full batches of 64 and one of 8, then the evaluation.
    assert!(steps.len() >= 9, "{} steps found", steps.len());
    assert!(steps[2].iter().any(|(name, _)| name.starts_with("normal")), "the VAE draws eps each step");
    // From the second step: the first also makes the backward sweep's shared
    // seed of ones (one launch, once per thread).
    for k in 1..7 {
        let differing: Vec<&str> =
            steps[k].iter().zip(&steps[k + 1]).filter(|(a, b)| a != b).map(|(a, _)| a.0.as_str()).collect();
        assert!(
            steps[k].len() == steps[k + 1].len() && differing.is_empty(),
            "steps {k} and {} of the epoch made other calls: {differing:?}",
            k + 1
        );
    }
    assert_ne!(steps[7], steps[8], "the shorter last batch has other shapes");
}
