//! Benchmarks, printed one line per workload as
//! `name<TAB>unit<TAB>rate<TAB>extra`, like the PyTorch peer script.
//!
//! ```text
//! cargo run --release -p gradtape-examples --bin bench -- [workload ...]
//! ```
//!
//! Workloads: the training workloads of the PyTorch peer script (`toy`,
//! `cae_notebook`, `deep_ae`, `cae_mnist`, `cae_mnist_closed`, `vae`, `dae`;
//! see `gradtape_examples::workloads`; `deep_ae` adds a `deep_ae_ceiling`
//! line, its rate as a fraction of what its matrix products would allow at
//! the 256x784x128 product's rate in the same run), `cae_mnist_rows` (ours alone: the
//! penalty with the Jacobian rows written out), `gemm_256x784x128`,
//! `deep_ae_products` (each product of a `deep_ae` step alone, then all of
//! them in a step's order, and the ceiling fraction a step of nothing else
//! would reach), `gemm` (square products), `op_overhead`
//! (nanoseconds per recorded op, forward plus backward, on tiny tensors),
//! `unary` (nanoseconds per element of exp, ln, tanh, sigmoid and relu on
//! one thread), `elementwise` and `gemm_threshold` (the serial-versus-parallel
//! measurements behind the kernels' thresholds), and `memory` (resident
//! memory over a 10-epoch deep-autoencoder run).
//!
//! GPU workloads, run only when named (`gpu` names all three):
//! `gpu_deep_ae_256`, `gpu_deep_ae_4096` and `gpu_vae_64` train `deep_ae`
//! and `vae` on CUDA device 0 at those batch sizes and print samples/s and
//! the kernel launches (kernels plus cuBLAS calls) of one training step.
//! They need a build with `--features cuda` and a GPU; without either they
//! print a `# ... skipped` line saying why.
//!
//! `gpu_counts` (only when named, and only in a build with the test-only
//! `cuda-standin` feature) loads the CPU stand-in for the CUDA driver and
//! cuBLAS and counts, per training step of `deep_ae` (batch 256), `vae`
//! (64) and `cae_mnist` (128, double-backward penalty), the kernel
//! launches, cuBLAS calls, device allocations and frees, copies each way
//! and host synchronisations, as a GPU would see them. Counts, not speeds:
//! nothing timed on the stand-in means anything. Its `same_calls` lines
//! compare two consecutive steps call by call (the stand-in's call log:
//! each launch's grid and arguments, each gemm's sizes, scalars and
//! pointers): `42/42 differing=none` says every call of the second step
//! was the first's, as replaying a step as one CUDA graph needs.
//!
//! ```text
//! cargo run --release -p gradtape-examples --features cuda-standin --bin bench -- gpu_counts
//! ```

use gradtape::{Tape, Tensor};
use gradtape_examples::timing::rate;
use gradtape_examples::workloads::{
    deep_ae_flop_per_sample, deep_ae_layers, deep_ae_on, deep_ae_phases, vae_on, DeviceRun, WORKLOADS,
};
use gradtape_kernels::elementwise::{parallel_threshold, set_parallel_threshold};
use gradtape_kernels::matmul::{set_gemm_parallel_macs, DEFAULT_GEMM_PARALLEL_MACS};
use gradtape_kernels::workers::on_worker_kept_awake;
use gradtape_kernels::Device;
use std::hint::black_box;

fn gemm_rate(m: usize, k: usize, n: usize, seconds: f64) -> f64 {
    let a = Tensor::<f32>::normal(&[m, k], 0.0, 1.0, 1);
    let b = Tensor::<f32>::normal(&[k, n], 0.0, 1.0, 2);
    let flop = 2.0 * (m * k * n) as f64 / 1e9;
    // As training runs (`fit`): on a worker, which takes one of the blocks
    // itself, with the other workers kept awake.
    on_worker_kept_awake(|| rate(|| black_box(a.matmul(&b)), flop, seconds, 3).0)
}

fn gemm_256x784x128() {
    let r = gemm_rate(256, 784, 128, 2.0);
    println!("gemm_256x784x128\tGFLOP/s\t{r:.1}\tloss=0.00000");
}

/// The 256x784x128 product's GFLOP/s now (timed for `seconds`), and the
/// samples/s `deep_ae` would reach if all its products ran at that rate.
fn deep_ae_ceiling_now(seconds: f64) -> (f64, f64) {
    let gflops = gemm_rate(256, 784, 128, seconds);
    (gflops, gflops * 1e9 / deep_ae_flop_per_sample())
}

/// How close `deep_ae` (at `rate` samples/s) comes to its matrix-product
/// ceiling: the samples/s it would reach if every FLOP of its products ran
/// at the rate the bench's own 256x784x128 product reaches now, in this run.
fn deep_ae_ceiling(rate: f64) {
    let (gflops, ceiling) = deep_ae_ceiling_now(2.0);
    println!(
        "deep_ae_ceiling\tfraction\t{:.3}\tgemm_256x784x128={gflops:.1} GFLOP/s, ceiling={ceiling:.0} samples/s",
        rate / ceiling
    );
}

/// Every matrix product of one `deep_ae` step at batch 256, as the engine
/// calls them: a layer's `x W^T` forward, and backward `g^T x` (the
/// weight's gradient) and `g W` (the input's, not taken for the first
/// layer).
///
/// First each product alone, at its own shape and transposes, repeated on
/// the same operands (so they stay in cache, as the ceiling's product
/// does); then all of them in a step's order, on a fresh batch each step
/// and with the forward's outputs kept for the backward, as training keeps
/// them. The last line says what fraction of the ceiling a step made of
/// nothing but these products, in that order, would reach (the most any
/// step can), beside the fraction a whole step reaches, and where the
/// step's time goes ([`deep_ae_phases`]).
fn deep_ae_products() {
    let layers = deep_ae_layers();
    let batch = 256;
    let weights: Vec<Tensor<f32>> = layers
        .iter()
        .zip(1..)
        .map(|(&(inp, out), seed)| Tensor::normal(&[out, inp], 0.0, 0.1, seed))
        .collect();
    let mut alone_seconds = 0.0;
    for (i, (&(inp, out), wt)) in layers.iter().zip(&weights).enumerate() {
        let x = Tensor::<f32>::normal(&[batch, inp], 0.0, 1.0, 1);
        let g = Tensor::<f32>::normal(&[batch, out], 0.0, 1.0, 3);
        // The first layer's input gradient is not taken.
        let kinds: &[&str] = if i == 0 { &["x.W^T", "g^T.x"] } else { &["x.W^T", "g^T.x", "g.W"] };
        for &what in kinds {
            let product = || match what {
                "x.W^T" => x.matmul_t(wt, false, true),
                "g^T.x" => g.matmul_t(&x, true, false),
                _ => g.matmul(wt),
            };
            let gflop = 2.0 * (batch * inp * out) as f64 / 1e9;
            let r = on_worker_kept_awake(|| rate(|| black_box(product()), gflop, 0.5, 3).0);
            alone_seconds += gflop / r;
            println!("deep_ae_product\tGFLOP/s\t{r:.1}\tlayer={inp}->{out} {what}");
        }
    }
    // A step's products in order. 31 batches of 256 rows (25 MB) are more
    // than the caches hold, as the training data is.
    let inputs: Vec<Tensor<f32>> =
        (0..31).map(|s| Tensor::normal(&[batch, layers[0].0], 0.0, 1.0, 100 + s)).collect();
    let mut step = 0;
    let in_order = on_worker_kept_awake(|| {
        rate(
            || {
                step += 1;
                let mut h = vec![inputs[step % inputs.len()].clone()];
                for wt in &weights {
                    let next = h[h.len() - 1].matmul_t(wt, false, true);
                    h.push(next);
                }
                // The output stands in for the loss's gradient (same shape).
                let mut g = h.pop().expect("an output");
                let mut weight_grads = Vec::new();
                for (i, wt) in weights.iter().enumerate().rev() {
                    weight_grads.push(g.matmul_t(&h[i], true, false));
                    if i > 0 {
                        g = g.matmul(wt);
                    }
                }
                black_box(weight_grads)
            },
            1.0,
            1.0,
            3,
        )
        .0
    });
    let phases = deep_ae_phases();
    println!(
        "deep_ae_step\tus\t{:.1}\tforward={:.1} backward={:.1} adam={:.1}",
        phases.step, phases.forward, phases.backward, phases.update
    );
    let (_, ceiling) = deep_ae_ceiling_now(1.0);
    println!(
        "deep_ae_products\tus_per_step\t{:.1}\talone={:.1} us, step={:.1} us, fraction of the ceiling: the step {:.3}, a step with nothing but the products {:.3}",
        1e6 / in_order,
        alone_seconds * 1e6,
        phases.step,
        batch as f64 / (phases.step * 1e-6) / ceiling,
        in_order * batch as f64 / ceiling
    );
}

fn gemm_square() {
    for n in [256, 1024] {
        let r = gemm_rate(n, n, n, 2.0);
        println!("gemm{n}\tGFLOP/s\t{r:.1}");
    }
}

/// A chain of tiny ops, recorded and then differentiated: the engine's fixed
/// cost per op, which is all there is on a network as small as the toy one.
fn op_overhead() {
    const ROUNDS: usize = 100;
    let mut tape = Tape::<f32>::with_capacity(4 * ROUNDS + 8);
    let w = Tensor::<f32>::from_vec(vec![0.1, -0.2, 0.3, 0.4], &[4]);
    let mut ops = 0;
    let (r, _) = rate(
        || {
            tape.clear();
            let x = tape.param(&w);
            let mut y = x;
            for _ in 0..ROUNDS {
                y = ((y * 0.5) + x).sigmoid();
            }
            let loss = y.sum();
            ops = tape.len() - 1; // every node but the leaf
            black_box(loss.backward());
        },
        1.0,
        2.0,
        10,
    );
    let ns_per_op = 1e9 / (r * ops as f64);
    println!("op_overhead\tns/op\t{ns_per_op:.1}\tops={ops}");
}

/// One thread's cost per element of the transcendental kernels (`fastmath`
/// for f32) and of a plain ReLU for scale, over a `[256, 784]` batch: the
/// deep autoencoder's output layer.
fn unary() {
    let saved = parallel_threshold();
    set_parallel_threshold(usize::MAX);
    let x = Tensor::<f32>::from_vec(
        (0..256 * 784).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect(),
        &[256, 784],
    );
    let positive = x.abs().add_scalar(1e-3);
    type Kernel<'a> = (&'static str, &'a Tensor<f32>, fn(&Tensor<f32>) -> Tensor<f32>);
    let kernels: [Kernel; 5] = [
        ("exp", &x, Tensor::exp),
        ("ln", &positive, Tensor::log),
        ("tanh", &x, Tensor::tanh),
        ("sigmoid", &x, Tensor::sigmoid),
        ("relu", &x, Tensor::relu),
    ];
    for (name, input, f) in kernels {
        let per_call = 1.0 / rate(|| black_box(f(input)), 1.0, 0.5, 5).0;
        println!("unary_{name}	ns/element	{:.2}", per_call * 1e9 / input.len() as f64);
    }
    set_parallel_threshold(saved);
}

/// Serial versus parallel elementwise multiply at growing sizes.
fn elementwise() {
    let saved = parallel_threshold();
    println!("# elementwise a*b: size, serial ns, parallel ns, parallel speed-up");
    for p in 10..=21 {
        let n = 1usize << p;
        let a = Tensor::<f32>::normal(&[n], 0.0, 1.0, 1);
        let b = Tensor::<f32>::normal(&[n], 0.0, 1.0, 2);
        // As training runs: on a worker, the other workers kept awake.
        let time = |threshold: usize| {
            set_parallel_threshold(threshold);
            on_worker_kept_awake(|| 1e9 / rate(|| black_box(a.mul(&b)), 1.0, 0.3, 5).0)
        };
        let (serial, parallel) = (time(usize::MAX), time(0));
        println!("elementwise_{n}\tns\t{serial:.0}\t{parallel:.0}\t{:.2}x", serial / parallel);
    }
    set_parallel_threshold(saved);
}

/// Serial versus split matrix products at growing square sizes.
fn gemm_threshold() {
    println!("# square gemm: n, macs, serial GFLOP/s, split GFLOP/s");
    for n in [16, 24, 32, 48, 64, 96, 128] {
        set_gemm_parallel_macs(usize::MAX);
        let serial = gemm_rate(n, n, n, 0.3);
        set_gemm_parallel_macs(0);
        let split = gemm_rate(n, n, n, 0.3);
        println!("gemm_threshold_{n}\tGFLOP/s\t{serial:.1}\t{split:.1}\tmacs={}", n * n * n);
    }
    set_gemm_parallel_macs(DEFAULT_GEMM_PARALLEL_MACS);
}

/// Resident memory of this process in MB (Linux), or NaN elsewhere.
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A 10-epoch deep-autoencoder training run on the built-in data, printing
/// resident memory after every epoch and its peak, so growth from step to
/// step would show.
fn memory() {
    use gradtape_models::autoencoders::{DeepAutoencoder, DeepConfig};
    use gradtape_models::data::MnistSplit;
    use gradtape_models::optim::Adam;
    use gradtape_models::train::{fit, Progress, TrainConfig};
    let split = MnistSplit::embedded();
    let mut model = DeepAutoencoder::<f32>::new(&DeepConfig::default(), 0);
    let mut opt = Adam::new(1e-3);
    let config =
        TrainConfig { epochs: 10, batch_size: 256, seed: 0, eval_batch_size: 500, detect_anomaly: false };
    let mut peak = 0.0f64;
    let mut per_epoch = Vec::new();
    fit(&mut model, &mut opt, &split.train, &split.test, &config, 0, &mut |p| {
        let rss = resident_mb();
        peak = peak.max(rss);
        if let Progress::Epoch(_) = p {
            per_epoch.push(format!("{rss:.1}"));
        }
    });
    println!("memory_deep_ae_10_epochs\tMB\t{peak:.1}\tper_epoch_rss_mb={}", per_epoch.join(","));
}

/// A GPU workload: its name, the workload run on a device at a batch size,
/// and the batch size.
type GpuWorkload = (&'static str, fn(Device, usize) -> DeviceRun, usize);

/// The GPU workloads.
const GPU_WORKLOADS: [GpuWorkload; 3] = [
    ("gpu_deep_ae_256", deep_ae_on, 256),
    ("gpu_deep_ae_4096", deep_ae_on, 4096),
    ("gpu_vae_64", vae_on, 64),
];

/// Runs GPU workload `name` on CUDA device 0, or says why it cannot.
fn gpu_workload(name: &str) {
    let (_, run, batch) = GPU_WORKLOADS.iter().find(|w| w.0 == name).expect("a GPU workload name");
    let device = match Device::cuda(0) {
        Ok(device) => device,
        Err(e) => {
            println!("# {name}: skipped: {e}");
            return;
        }
    };
    let r = run(device, *batch);
    let launches = r.launches_per_step.map_or("n/a".to_string(), |n| n.to_string());
    println!(
        "{name}\tsamples/s\t{:.1}\tloss={:.5}\tlaunches_per_step={launches}\tdevice={}",
        r.rate,
        r.loss,
        device.describe()
    );
}

/// `bench gpu_counts`: what each of three training steps adds to the CPU
/// stand-in's counters, after two warm-up steps (see the module doc).
#[cfg(feature = "cuda-standin")]
fn gpu_counts() {
    use gradtape_examples::workloads::{around_steps_on, count_steps_on, counted_workloads};
    use gradtape_kernels::cuda::standin;
    let device = match standin::load().and_then(|()| Device::cuda(0).map_err(|e| e.to_string())) {
        Ok(device) => device,
        Err(e) => {
            println!("# gpu_counts: skipped: {e}");
            return;
        }
    };
    println!("# gpu_counts: per training step, counted on the CPU stand-in for the CUDA driver (not a GPU)");
    for (name, mut model, batch) in counted_workloads() {
        let (steps, report) = count_steps_on(device, model.as_mut(), batch, 2, 3, standin::counters);
        let each = |f: fn(&standin::Counters) -> u64| {
            steps.iter().map(|c| f(c).to_string()).collect::<Vec<_>>().join(",")
        };
        let c = steps[0];
        println!(
            "gpu_counts_{name}_{batch}	per_step	{}	kernels={} blas={} allocations={} frees={} \
             syncs={} device_to_host={} host_to_device={} device_to_device={} memsets={} \
             launches_plus_blas_each_step={} host_to_device_each_step={}",
            c.launches + c.blas_calls,
            c.launches,
            c.blas_calls,
            c.allocations,
            c.frees,
            c.syncs,
            c.device_to_host,
            c.host_to_device,
            c.device_to_device,
            c.memsets,
            each(|c| c.launches + c.blas_calls),
            each(|c| c.host_to_device),
        );
        println!(
            "gpu_counts_{name}_{batch}\tper_report\t{}\tsyncs={} device_to_host={} allocations={}",
            report.launches + report.blas_calls,
            report.syncs,
            report.device_to_host,
            report.allocations,
        );
    }
    for (name, mut model, batch) in counted_workloads() {
        let (logs, _) =
            around_steps_on(device, model.as_mut(), batch, (2, 3), |work| standin::log_calls(work).1);
        let (same, differing) = same_calls(&logs[1], &logs[2]);
        println!(
            "gpu_counts_{name}_{batch}\tsame_calls\t{same}/{}\tdiffering={}",
            logs[1].len(),
            if differing.is_empty() { "none".to_string() } else { differing.join(",") }
        );
    }
}

/// How many calls of step `b` are step `a`'s call at the same place with the
/// same arguments, and the names of the others (both steps' calls where
/// the sequences differ in length).
#[cfg(feature = "cuda-standin")]
fn same_calls(
    a: &[gradtape_kernels::cuda::standin::LoggedCall],
    b: &[gradtape_kernels::cuda::standin::LoggedCall],
) -> (usize, Vec<String>) {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let mut differing: Vec<String> =
        a.iter().zip(b).filter(|(x, y)| x != y).map(|(_, y)| y.name.clone()).collect();
    differing.extend(
        a.iter().skip(b.len()).chain(b.iter().skip(a.len())).map(|c| format!("{} (unpaired)", c.name)),
    );
    (same, differing)
}

#[cfg(not(feature = "cuda-standin"))]
fn gpu_counts() {
    println!("# gpu_counts: skipped: this bench was built without the test-only `cuda-standin` feature");
}

fn main() {
    let mut all: Vec<&str> = WORKLOADS.iter().map(|w| w.0).collect();
    all.extend([
        "gemm_256x784x128",
        "deep_ae_products",
        "gemm",
        "op_overhead",
        "unary",
        "elementwise",
        "gemm_threshold",
        "memory",
    ]);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut names: Vec<&str> =
        if args.is_empty() { all.clone() } else { args.iter().map(|s| s.as_str()).collect() };
    if let Some(i) = names.iter().position(|&n| n == "gpu") {
        names.splice(i..=i, GPU_WORKLOADS.iter().map(|w| w.0));
    }
    println!("# gradtape bench, rayon threads={}", rayon::current_num_threads());
    for name in names {
        match name {
            "gemm_256x784x128" => gemm_256x784x128(),
            "deep_ae_products" => deep_ae_products(),
            "gemm" => gemm_square(),
            "op_overhead" => op_overhead(),
            "unary" => unary(),
            "elementwise" => elementwise(),
            "gemm_threshold" => gemm_threshold(),
            "memory" => memory(),
            "gpu_counts" => gpu_counts(),
            gpu if GPU_WORKLOADS.iter().any(|w| w.0 == gpu) => gpu_workload(gpu),
            other if WORKLOADS.iter().any(|w| w.0 == other) => {
                let (_, unit, run) = WORKLOADS.iter().find(|w| w.0 == other).expect("checked");
                let (r, loss) = run();
                println!("{other}\t{unit}\t{r:.1}\tloss={loss:.5}");
                if other == "deep_ae" {
                    deep_ae_ceiling(r);
                }
            }
            other => {
                let gpu: Vec<&str> = GPU_WORKLOADS.iter().map(|w| w.0).collect();
                eprintln!(
                    "bench: unknown workload '{other}'; known: {}, and on a GPU: gpu ({}), and on the \
                     CPU stand-in: gpu_counts",
                    all.join(", "),
                    gpu.join(", ")
                );
                std::process::exit(2);
            }
        }
    }
}
