//! The GPU parity suite: everything the engine computes on a CUDA device
//! must agree with the CPU on the same inputs.
//!
//! Each test asks [`gpu`] for device 0. Where there is none (no driver, no
//! device, no NVRTC or cuBLAS) it prints `skipped: no CUDA device (why)`
//! and passes, unless `GRADTAPE_REQUIRE_CUDA=1` is set (as
//! `scripts/gpu_check.sh run` does on the GPU machine): then it fails with
//! the reason, so a GPU run cannot pass by skipping.
//!
//! What is compared:
//!
//! - every op of `ops_gradcheck`, on fixed shapes that include its
//!   broadcasting patterns plus sizes that need many thread blocks: the
//!   forward value, the plain backward sweep, the recorded one
//!   (`create_graph`) and a double backward through the recorded one, in
//!   f32 (1e-5 relative to the largest expected entry) and f64 (1e-12);
//! - `gradcheck` and `gradgradcheck` in f64 with the inputs on the GPU
//!   (finite differences and Jacobians computed there);
//! - the optimisers' updates (Adam, SGD with momentum) over a few steps;
//! - one `train_step` of every model kind from the same weights (and a
//!   step with the same dropout and noise masks and VAE noise passed
//!   explicitly, since a GPU draws its own), comparing the loss and the
//!   updated weights;
//! - the two panics a user meets first: an op on two devices, and a host
//!   accessor on a GPU tensor.
//!
//! Every comparison goes through `gradtape_kernels::compare`, where a NaN
//! or an infinity on either side fails. The comparison code itself runs on
//! every machine: [`the_parity_harness_passes_cpu_against_cpu`] drives it
//! with the CPU in the GPU's place.
#![cfg(feature = "cuda")]

use gradtape::{grad, grad_values, Act, Element, LossTerm, Tape, Tensor, Var};
use gradtape_kernels::compare::{check_close, Tol};
use gradtape_kernels::{Device, LossGuard};
use gradtape_models::autoencoders::{
    Autoencoder, DeepAutoencoder, DeepConfig, ModelKind, PenaltyMode, RegularizedAutoencoder,
    RegularizedConfig, Vae, VaeConfig,
};
use gradtape_models::optim::{Adam, Optimizer, Sgd};
use gradtape_models::params::Bound;
use gradtape_models::spec::ModelSpec;
use gradtape_models::train::{queue_step, train_step, StepSeed};
use gradtape_verify::data::{downsampled_batch, real_batch};
use gradtape_verify::{gradcheck, gradgradcheck};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod ops;
mod training;

use ops::{any, ops_match_the_cpu};
use training::{
    explicit_draws_match_the_cpu, gradchecks_pass_on, optimisers_match_the_cpu, train_steps_match_the_cpu,
};

/// CUDA device 0, or `None` (after printing why) where there is none.
///
/// A real GPU where NVIDIA's driver is installed, else the CPU stand-in for
/// the driver and cuBLAS (`gradtape_kernels::cuda::standin`), which runs the
/// same GPU code on the CPU. Each test prints which one it ran on. With
/// `GRADTAPE_REQUIRE_CUDA=1` (the GPU machine) anything but a real GPU is a
/// failure; with `GRADTAPE_REQUIRE_STANDIN=1` (CI) a skip is.
fn gpu() -> Option<Device> {
    use gradtape_kernels::cuda::standin;
    match standin::device_for_tests(0) {
        Ok((device, backing)) => {
            println!("ran on {backing}: {}", device.describe());
            Some(device)
        }
        Err(e) => {
            if standin::required("GRADTAPE_REQUIRE_CUDA") {
                panic!("GRADTAPE_REQUIRE_CUDA=1 but there is no CUDA device: {e}");
            }
            if standin::required("GRADTAPE_REQUIRE_STANDIN") {
                panic!(
                    "GRADTAPE_REQUIRE_STANDIN=1 but neither a GPU nor the CPU stand-in could be opened: {e}"
                );
            }
            println!("skipped: no CUDA device and no CPU stand-in ({e})");
            None
        }
    }
}

/// How close the GPU must come to the CPU in each precision, relative to
/// the largest entry of the CPU's result.
trait Precision: Element {
    const TOL: Tol;
}

impl Precision for f32 {
    const TOL: Tol = Tol::rel(1e-5);
}

impl Precision for f64 {
    const TOL: Tol = Tol::rel(1e-12);
}

// ---- errors a user meets -----------------------------------------------------

/// The message of a panic raised by `f`, or `None` if it returned.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(a panic without a message)".to_string()),
    )
}

#[test]
fn an_op_on_two_devices_panics_naming_the_op_and_both_devices() {
    let Some(device) = gpu() else { return };
    let a = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
    let b = a.to(device);
    let message = panic_message(|| {
        let _ = a.add(&b);
    })
    .expect("adding a CPU tensor to a GPU tensor must panic");
    assert!(
        message.contains("add: operands on different devices: cpu and cuda:0"),
        "unexpected message: {message}"
    );
}

#[test]
fn host_accessors_on_a_gpu_tensor_panic_saying_to_call_to_cpu() {
    let Some(device) = gpu() else { return };
    let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]).to(device);
    let message = panic_message(|| {
        let _ = x.data().len();
    })
    .expect("data() on a GPU tensor must panic");
    assert!(message.contains(".to_cpu()"), "unexpected message: {message}");
    // The copying accessors work and give the numbers back.
    assert_eq!(x.to_vec(), vec![1.0, 2.0, 3.0]);
    assert_eq!(x.to_cpu().data(), &[1.0, 2.0, 3.0]);
}

#[test]
fn kernel_launches_are_counted() {
    let Some(device) = gpu() else { return };
    let a = any::<f32>(&[4, 5], 1).to(device);
    let b = any::<f32>(&[5, 3], 2).to(device);
    let before = gradtape_kernels::cuda::launches();
    let c = a.matmul(&b).relu();
    let counted = gradtape_kernels::cuda::launches() - before;
    // One cuBLAS call and one kernel; other threads' tests may add more.
    assert!(counted >= 2, "a matmul and a relu counted as {counted} launches");
    assert_eq!(c.to_cpu().shape(), &[4, 3]);
}

/// A NaN at a maximum: the value is NaN and the gradient lets NaN through
/// at the first NaN (and only there) on both devices, overall and along an
/// axis (the GPU's mask used to write 1 there, giving a finite gradient).
#[test]
fn a_nan_at_a_maximum_gives_the_same_mask_and_gradient_on_both_devices() {
    let Some(device) = gpu() else { return };
    let x = Tensor::from_vec(vec![1.0f64, f64::NAN, 5.0, f64::NAN, 2.0, 3.0], &[2, 3]);
    let run = |device: Device| {
        let tape = Tape::new();
        let v = tape.param(&x.to(device));
        let all = v.max();
        let lanes = v.max_axis(1, false);
        let g_all = grad_values(&[all], &[v], None)[0].to_cpu();
        let g_lanes = grad_values(&[lanes.sum()], &[v], None)[0].to_cpu();
        (all.value().to_cpu(), lanes.value().to_cpu(), g_all, g_lanes)
    };
    let (cpu, there) = (run(Device::Cpu), run(device));
    let bits = |t: &Tensor<f64>| {
        t.data().iter().map(|x| if x.is_nan() { None } else { Some(*x) }).collect::<Vec<_>>()
    };
    assert!(bits(&cpu.0)[0].is_none(), "the CPU's max of a NaN is {:?}", cpu.0.data());
    for (what, c, t) in [
        ("max", &cpu.0, &there.0),
        ("max_axis", &cpu.1, &there.1),
        ("d max", &cpu.2, &there.2),
        ("d max_axis", &cpu.3, &there.3),
    ] {
        assert_eq!(bits(t), bits(c), "{what} on {device} against the CPU");
    }
    // The gradient is NaN exactly at the first NaN of each lane.
    assert_eq!(bits(&cpu.3), vec![Some(0.0), None, Some(0.0), None, Some(0.0), Some(0.0)]);
}

// ---- the harness itself --------------------------------------------------------

/// Every comparison above, with the CPU standing in for the GPU: proves on
/// any machine that the harness runs through (cases build, shapes agree,
/// nothing panics) so that a GPU run fails only for the GPU's own reasons.
#[test]
fn the_parity_harness_passes_cpu_against_cpu() {
    let n32 = ops_match_the_cpu::<f32>(Device::Cpu);
    let n64 = ops_match_the_cpu::<f64>(Device::Cpu);
    assert_eq!(n32, n64);
    assert!(n32 > 300, "only {n32} op cases");
    gradchecks_pass_on(Device::Cpu);
    optimisers_match_the_cpu::<f32>(Device::Cpu);
    optimisers_match_the_cpu::<f64>(Device::Cpu);
    train_steps_match_the_cpu(Device::Cpu);
    explicit_draws_match_the_cpu(Device::Cpu);
}
