//! The stand-in's own tests (a child module of `standin.rs`).
//!
//! The stand-in is strict where a GPU is: each mistake below is an error
//! from the call that made it (a GPU would report some of them later, or
//! not at all). Each test drives cudarc directly, as `ops.rs` does.

use super::*;
use crate::cuda::{open, Gpu};
use cudarc::driver::{CudaSlice, DevicePtr, LaunchConfig, PushKernelArg};
use std::sync::Arc;

/// Device 0 on the stand-in, or `None` where it cannot be had (a real
/// GPU is not strict in these ways, so these tests run on the stand-in
/// only).
fn standin_gpu() -> Option<Arc<Gpu>> {
    if real_driver_present() {
        println!("skipped: these tests are about the stand-in, and a real driver is installed");
        return None;
    }
    match device_for_tests(0) {
        Ok((_, Backing::StandIn)) => Some(open(0).expect("opened once already")),
        Ok((_, Backing::Gpu)) => unreachable!("no real driver"),
        Err(e) => {
            assert!(!required("GRADTAPE_REQUIRE_STANDIN"), "GRADTAPE_REQUIRE_STANDIN=1 but: {e}");
            println!("skipped: no CPU stand-in ({e})");
            None
        }
    }
}

fn cfg(grid: (u32, u32, u32), block: (u32, u32, u32)) -> LaunchConfig {
    LaunchConfig { grid_dim: grid, block_dim: block, shared_mem_bytes: 0 }
}

/// Launches `neg_f32(n, x, out)` with raw addresses for x and out.
fn neg(gpu: &Gpu, n: i64, x: u64, out: u64, c: LaunchConfig) -> Result<(), String> {
    gpu.bind();
    let f = gpu.function("elementwise.cu", "neg_f32");
    let mut b = gpu.stream.launch_builder(&f);
    b.arg(&n).arg(&x).arg(&out);
    unsafe { b.launch(c) }.map(|_| ()).map_err(|e| format!("{e:?}"))
}

fn addr(gpu: &Gpu, s: &CudaSlice<f32>) -> u64 {
    s.device_ptr(&gpu.stream).0
}

fn zeros(gpu: &Gpu, n: usize) -> CudaSlice<f32> {
    gpu.stream.alloc_zeros::<f32>(n).expect("an allocation")
}

#[test]
fn a_well_formed_launch_runs_on_the_stand_in() {
    let Some(gpu) = standin_gpu() else { return };
    let x = gpu.stream.clone_htod(&[1.0f32, -2.0, 3.0]).unwrap();
    let out = zeros(&gpu, 3);
    let before = counters();
    neg(&gpu, 3, addr(&gpu, &x), addr(&gpu, &out), cfg((1, 1, 1), (32, 1, 1))).unwrap();
    assert_eq!(gpu.stream.clone_dtoh(&out).unwrap(), vec![-1.0, 2.0, -3.0]);
    let added = counters() - before;
    assert!(added.launches >= 1 && added.device_to_host >= 1, "{added:?}");
}

#[test]
fn a_block_over_1024_threads_or_a_grid_over_the_limit_is_refused() {
    let Some(gpu) = standin_gpu() else { return };
    let (x, out) = (zeros(&gpu, 4), zeros(&gpu, 4));
    let (xa, oa) = (addr(&gpu, &x), addr(&gpu, &out));
    for (grid, block) in [((1, 1, 1), (1025, 1, 1)), ((1, 1, 1), (32, 32, 2)), ((1, 65536, 1), (32, 1, 1))] {
        let e = neg(&gpu, 4, xa, oa, cfg(grid, block)).unwrap_err();
        assert!(e.contains("CUDA_ERROR_INVALID_VALUE"), "grid {grid:?} block {block:?}: {e}");
    }
}

#[test]
fn an_unknown_kernel_name_or_one_from_another_file_is_not_found() {
    let Some(gpu) = standin_gpu() else { return };
    gpu.bind();
    let module = &gpu.modules["elementwise.cu"];
    for name in ["no_such_kernel", "sum_partials_f32"] {
        let e = module.load_function(name).unwrap_err();
        assert!(format!("{e:?}").contains("CUDA_ERROR_NOT_FOUND"), "{name}: {e:?}");
    }
}

#[test]
fn a_pointer_outside_every_allocation_is_refused_before_the_kernel_runs() {
    let Some(gpu) = standin_gpu() else { return };
    let out = zeros(&gpu, 4);
    // An integer where the kernel takes a pointer (as two swapped
    // arguments would give), and a host address.
    let host = [1.0f32; 4];
    for bad in [4u64, host.as_ptr() as u64] {
        let e = neg(&gpu, 4, bad, addr(&gpu, &out), cfg((1, 1, 1), (32, 1, 1))).unwrap_err();
        assert!(e.contains("CUDA_ERROR_INVALID_VALUE"), "{e}");
    }
    assert_eq!(gpu.stream.clone_dtoh(&out).unwrap(), vec![0.0; 4], "the refused kernel wrote");
}

#[test]
fn a_kernel_that_reads_past_its_buffer_faults_at_that_access() {
    let Some(gpu) = standin_gpu() else { return };
    let (x, out) = (zeros(&gpu, 10), zeros(&gpu, 11));
    // n = 11 over a 10-element input: element 10 is one past the end.
    let e = neg(&gpu, 11, addr(&gpu, &x), addr(&gpu, &out), cfg((1, 1, 1), (32, 1, 1))).unwrap_err();
    assert!(e.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{e}");
    // And writing past the output.
    let (x, out) = (zeros(&gpu, 11), zeros(&gpu, 10));
    let e = neg(&gpu, 11, addr(&gpu, &x), addr(&gpu, &out), cfg((2, 1, 1), (4, 1, 1))).unwrap_err();
    assert!(e.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{e}");
}

#[test]
fn memory_used_after_it_is_freed_is_refused() {
    let Some(gpu) = standin_gpu() else { return };
    let out = zeros(&gpu, 4);
    let x = zeros(&gpu, 4);
    let stale = addr(&gpu, &x);
    let before = counters();
    drop(x);
    assert!((counters() - before).frees >= 1, "dropping a CudaSlice frees it");
    let e = neg(&gpu, 4, stale, addr(&gpu, &out), cfg((1, 1, 1), (32, 1, 1))).unwrap_err();
    assert!(e.contains("CUDA_ERROR_INVALID_VALUE"), "{e}");
}

#[test]
fn a_copy_larger_than_its_buffer_is_refused() {
    let Some(gpu) = standin_gpu() else { return };
    gpu.bind();
    let small = zeros(&gpu, 4);
    let host = [1.0f32; 5];
    let dst = addr(&gpu, &small);
    // SAFETY: the stand-in checks the range before it copies.
    let e = unsafe { cudarc::driver::result::memcpy_htod_async(dst, &host[..], gpu.stream.cu_stream()) };
    assert!(format!("{e:?}").contains("CUDA_ERROR_INVALID_VALUE"), "{e:?}");
    let mut back = [0.0f32; 5];
    // SAFETY: as above.
    let e = unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut back[..], dst, gpu.stream.cu_stream()) };
    assert!(format!("{e:?}").contains("CUDA_ERROR_INVALID_VALUE"), "{e:?}");
}

/// Out of memory with idle buffers in the pool: they are freed and the
/// allocation tried again; out of memory even then: a panic that gives
/// the sizes.
#[test]
fn an_allocation_that_fails_frees_the_idle_pool_then_tries_once_more() {
    let Some(gpu) = standin_gpu() else { return };
    // Idle buffers of lengths no other test uses.
    let lengths = [7919usize, 7907, 7901];
    for &n in &lengths {
        drop(crate::Tensor::<f32>::zeros(&[n]).to(Device::Cuda(0)));
        assert!(gpu.pool.idle::<f32>(n) >= 1, "a dropped buffer of {n} went back to the pool");
    }
    fail_next_allocations(1);
    let t = crate::Tensor::<f32>::ones(&[7877]).to(Device::Cuda(0));
    assert_eq!(t.to_vec(), vec![1.0; 7877]);
    for &n in &lengths {
        assert_eq!(gpu.pool.idle::<f32>(n), 0, "the idle buffer of {n} was not freed");
    }
    fail_next_allocations(2);
    let failed = std::panic::catch_unwind(|| crate::Tensor::<f32>::ones(&[7873]).to(Device::Cuda(0)));
    fail_next_allocations(0);
    let message = match failed {
        Ok(_) => panic!("an allocation that failed twice returned a tensor"),
        Err(p) => p.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("7873 elements (31492 bytes)") && message.contains("idle buffers"), "{message}");
}

/// A bias gradient over a batch of 4,096 (128 sums of 4,096) is split
/// into runs over many threads: two launches whose first has
/// 128 x 64 threads at work, not 128 serial loops; a sum to one
/// number is a whole-tensor reduction, not one thread.
#[test]
fn few_outputs_over_long_lanes_are_split_across_threads() {
    let Some(_gpu) = standin_gpu() else { return };
    let x = crate::Tensor::<f64>::uniform(&[4096, 128], -1.0, 1.0, 5);
    let on = x.to(Device::Cuda(0));
    let before = crate::cuda::launches();
    let bias = on.sum_to(&[128]);
    let lanes = on.sum_axis(0, false);
    let launched = crate::cuda::launches() - before;
    assert!(launched >= 4, "{launched} launches for two split reductions");
    let want = x.sum_to(&[128]);
    for got in [bias.to_cpu(), lanes.to_cpu()] {
        crate::compare::check_close("split sum", &got, &want, crate::compare::Tol::rel(1e-12))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let total = on.sum_to(&[1, 1]).to_cpu();
    let want = x.sum_all().item();
    assert!(
        (total.data()[0] - want).abs() <= 1e-10 * want.abs().max(1.0),
        "{:?} against {want}",
        total.data()
    );
}

/// With every op made to wait (`--detect-anomaly` on a GPU), each op
/// synchronises once after its launch, so a fault is reported by the op
/// that caused it.
#[test]
fn sync_every_op_waits_after_each_launch() {
    let Some(_gpu) = standin_gpu() else { return };
    let x = crate::Tensor::<f32>::from_vec(vec![1.0, -2.0, 3.0], &[3]).to(Device::Cuda(0));
    crate::cuda::set_sync_every_op(true);
    let before = counters();
    let y = x.exp().neg();
    let waited = counters() - before;
    crate::cuda::set_sync_every_op(false);
    assert!(waited.launches >= 2 && waited.syncs >= 2, "{waited:?}");
    assert_eq!(y.to_vec(), vec![-(1.0f32.exp()), -((-2.0f32).exp()), -(3.0f32.exp())]);
}

/// Tensors of `shapes` on the stand-in's device 0, normal numbers seeded
/// `seed`, `seed + 1`, ... (the Adam tests' parameters, moments and
/// gradients).
fn normal_on_device_0(shapes: &[&[usize]], seed: u64) -> Vec<crate::Tensor<f32>> {
    shapes
        .iter()
        .enumerate()
        .map(|(k, s)| crate::Tensor::<f32>::normal(s, 0.0, 1.0, seed + k as u64).to(Device::Cuda(0)))
        .collect()
}

/// Adam's first step at lr 1e-3 with PyTorch's betas and weight decay `wd`.
fn adam_step(wd: f64) -> crate::optim::AdamStep<'static> {
    crate::optim::AdamStep {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: wd,
        t: 1,
        guard: None,
    }
}

/// Panics unless `xs` and `ys` hold the same bits, tensor for tensor.
fn assert_same_bits(xs: &[crate::Tensor<f32>], ys: &[crate::Tensor<f32>]) {
    for (a, b) in xs.iter().zip(ys) {
        let (a, b) = (a.to_vec(), b.to_vec());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{a:?} against {b:?}");
    }
}

/// Adam over a model's parameters on a GPU is one launch (plus one small
/// copy of the table of addresses), and gives the per-parameter
/// kernel's bits.
#[test]
fn adam_over_every_parameter_is_one_launch_with_the_same_bits() {
    let Some(_gpu) = standin_gpu() else { return };
    let fresh = |seed: u64| normal_on_device_0(&[&[64, 33], &[64], &[1], &[12, 64]], seed);
    let s = adam_step(0.01);
    let grads = fresh(100);
    let (mut p1, mut m1, mut v1) =
        (fresh(1), fresh(10), fresh(20).iter().map(|t| t.square()).collect::<Vec<_>>());
    let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
    for (((p, m), v), g) in p1.iter_mut().zip(&mut m1).zip(&mut v1).zip(&grads) {
        p.adam_update(m, v, g, &s);
    }
    let before = counters();
    let mut refs: Vec<&mut crate::Tensor<f32>> = p2.iter_mut().collect();
    crate::Tensor::adam_update_all(&mut refs, &mut m2, &mut v2, &grads, &s);
    let added = counters() - before;
    assert!(added.launches >= 1 && added.host_to_device >= 1, "{added:?}");
    for (xs, ys) in [(&p1, &p2), (&m1, &m2), (&v1, &v2)] {
        assert_same_bits(xs, ys);
    }
}

/// From the second step on, Adam over the same tensors copies nothing to
/// the device: its table of addresses is the one already there. A changed
/// table (another gradient tensor) is copied again. Each step gives the
/// per-parameter kernel's bits.
#[test]
fn adam_copies_its_table_of_addresses_only_when_it_changes() {
    let Some(_gpu) = standin_gpu() else { return };
    let fresh = |seed: u64| normal_on_device_0(&[&[40, 7], &[40], &[3, 40]], seed);
    let s = adam_step(0.0);
    let (mut p, mut m, mut v) =
        (fresh(1), fresh(10), fresh(20).iter().map(|t| t.square()).collect::<Vec<_>>());
    let (mut p1, mut m1, mut v1) = (p.clone(), m.clone(), v.clone());
    let (grads, other) = (fresh(100), fresh(200));
    let mut step = |g: &[crate::Tensor<f32>]| -> u64 {
        let before = crate::cuda::ops::adam_table_uploads();
        let mut refs: Vec<&mut crate::Tensor<f32>> = p.iter_mut().collect();
        crate::Tensor::adam_update_all(&mut refs, &mut m, &mut v, g, &s);
        for (((p, m), v), g) in p1.iter_mut().zip(&mut m1).zip(&mut v1).zip(g) {
            p.adam_update(m, v, g, &s);
        }
        crate::cuda::ops::adam_table_uploads() - before
    };
    assert_eq!(step(&grads), 1, "the first step copies its table");
    assert_eq!(step(&grads), 0, "the same buffers: the table already on the device");
    assert_eq!(step(&grads), 0);
    assert_eq!(step(&other), 1, "another gradient tensor: a new table");
    assert_eq!(step(&other), 0);
    for (xs, ys) in [(&p, &p1), (&m, &m1), (&v, &v1)] {
        assert_same_bits(xs, ys);
    }
}

/// A thread whose first CUDA call is a gemm (its output buffer came from
/// the pool, so nothing else bound the context), on device 1 after it
/// used device 0: matmul binds device 1's context itself.
#[test]
fn a_gemm_on_device_1_from_a_thread_bound_to_device_0_uses_device_1() {
    if standin_gpu().is_none() {
        return;
    }
    let Ok((d1, _)) = device_for_tests(1) else { panic!("the stand-in has a device 1") };
    let a = crate::Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).to(d1);
    let b = crate::Tensor::<f32>::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).to(d1);
    // A result of this length goes back to the pool, for the thread's
    // product to take without an allocation.
    drop(a.matmul(&b));
    let product = std::thread::spawn(move || {
        let d0 = crate::Tensor::<f32>::from_vec(vec![1.0], &[1]).to(Device::Cuda(0));
        drop(d0.neg());
        a.matmul(&b).to_vec()
    })
    .join()
    .expect("the product on device 1 runs");
    assert_eq!(product, vec![4.0, 5.0, 10.0, 11.0]);
}

/// A batch gathered on the device from a data set kept there is the host's
/// gather, and takes one launch with no copy either way (counted on this
/// thread).
#[test]
fn a_batch_gathered_on_the_device_copies_nothing() {
    let Some(_gpu) = standin_gpu() else { return };
    let x = crate::Tensor::<f32>::normal(&[40, 7], 0.0, 1.0, 5);
    let picked: Vec<usize> = (0..40).rev().collect();
    let (on_host, on_device) = (x.gather_rows(&crate::RowIndex::new(&picked, Device::Cpu), 3..19), {
        let (xs, index) = (x.to(Device::Cuda(0)), crate::RowIndex::new(&picked, Device::Cuda(0)));
        let before = thread_counters();
        let batch = xs.gather_rows(&index, 3..19);
        let added = thread_counters() - before;
        assert_eq!(
            (added.launches, added.host_to_device, added.device_to_host, added.syncs),
            (1, 0, 0, 0),
            "{added:?}"
        );
        batch
    });
    assert_eq!(on_device.shape(), &[16, 7]);
    assert_eq!(on_device.to_vec(), on_host.to_vec());
}

/// A training loop's batches gathered by the guard's step clock are the
/// host's, the last one shorter, and each full batch is the same launch
/// with the same arguments as the one before (the step clock is read on the
/// device), which the call log shows.
#[test]
fn batches_gathered_by_the_step_clock_are_the_same_launch_each_step() {
    let Some(_gpu) = standin_gpu() else { return };
    let x = crate::Tensor::<f32>::normal(&[40, 7], 0.0, 1.0, 6);
    let picked: Vec<usize> = (0..37).map(|k| (k * 11) % 40).collect();
    let (xs, index) = (x.to(Device::Cuda(0)), crate::RowIndex::new(&picked, Device::Cuda(0)));
    let host_index = crate::RowIndex::new(&picked, Device::Cpu);
    let mut guard = crate::LossGuard::on(Device::Cuda(0));
    let one = crate::Tensor::<f32>::scalar(1.0).to(Device::Cuda(0));
    let mut logs = Vec::new();
    for step in 0..5usize {
        let (batch, calls) = super::log_calls(|| xs.gather_batch(&index, 16, &guard));
        let b = step % 3;
        let want = x.gather_rows(&host_index, b * 16..((b + 1) * 16).min(37));
        assert_eq!(batch.to_vec(), want.to_vec(), "step {step}, batch {b}");
        assert_eq!(calls.len(), 1, "one launch: {calls:?}");
        logs.push(calls);
        guard.record(&one, 1.0);
    }
    assert_eq!(logs[0], logs[1], "two full batches: the same launch, the same arguments");
    assert_ne!(logs[1], logs[2], "the short last batch has another shape");
}

/// A small constant other than zero (a backward sweep's seed of ones) is
/// made on the device once per thread and then shared: asking again
/// launches nothing, and a write into one leaves the shared one as it was.
#[test]
fn a_small_constant_is_made_once_and_a_write_does_not_reach_the_shared_one() {
    let Some(_gpu) = standin_gpu() else { return };
    let device = Device::Cuda(0);
    // A length no other test fills.
    let first = crate::Tensor::<f32>::full_on(&[3, 37], 2.5, device);
    let before = thread_counters();
    let again = crate::Tensor::<f32>::full_on(&[111], 2.5, device);
    let added = thread_counters() - before;
    assert_eq!((added.launches, added.memsets, added.allocations), (0, 0, 0), "{added:?}");
    assert_eq!(again.shape(), &[111]);
    assert_eq!(again.to_vec(), vec![2.5f32; 111]);
    let mut written = again.clone();
    written.add_assign(&crate::Tensor::<f32>::full_on(&[111], 1.0, device));
    assert_eq!(written.to_vec(), vec![3.5f32; 111]);
    assert_eq!(first.to_vec(), vec![2.5f32; 111], "the write reached the shared constant");
    assert_eq!(crate::Tensor::<f32>::full_on(&[111], 2.5, device).to_vec(), vec![2.5f32; 111]);
    // Another value is another constant.
    assert_eq!(crate::Tensor::<f32>::full_on(&[111], -2.5, device).to_vec(), vec![-2.5f32; 111]);
}

/// A shared constant (a sweep's seed) times or plus a number is the shared
/// constant of the result: after the first time, no launch, no memset, no
/// allocation, and the kernel's bits. A result of zero, or a tensor that
/// is not a shared constant, takes the kernel.
#[test]
fn a_shared_constant_times_a_number_is_a_shared_constant_and_no_launch() {
    let Some(_gpu) = standin_gpu() else { return };
    let device = Device::Cuda(0);
    // A length no other test fills.
    let c = crate::Tensor::<f32>::full_on(&[5, 29], 1.5, device);
    let copy = c.to_cpu().to(device); // the same numbers, not a shared constant
    for (s, folded, kernel) in [
        (-3.0f32, c.mul_scalar(-3.0), copy.mul_scalar(-3.0)),
        (0.25, c.add_scalar(0.25), copy.add_scalar(0.25)),
    ] {
        assert_eq!(folded.shape(), &[5, 29]);
        let bits = |t: &crate::Tensor<f32>| t.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&folded), bits(&kernel), "times or plus {s}");
    }
    let before = thread_counters();
    let (times, plus) = (c.mul_scalar(-3.0), c.add_scalar(0.25));
    let added = thread_counters() - before;
    assert_eq!((added.launches, added.memsets, added.allocations), (0, 0, 0), "{added:?}");
    // Folded again: a constant of a constant.
    let before = thread_counters();
    let twice = times.mul_scalar(2.0);
    assert_eq!(thread_counters().launches - before.launches, 1, "the first -9 is made once");
    assert_eq!(twice.to_vec(), vec![-9.0f32; 145]);
    let before = thread_counters();
    let _ = copy.mul_scalar(-3.0);
    let _ = c.mul_scalar(0.0);
    assert_eq!(thread_counters().launches - before.launches, 2, "not a shared constant, and a zero");
    assert_eq!(c.mul_scalar(0.0).to_vec(), vec![0.0f32; 145]);
    // A write into a folded result copies it: the shared one stays.
    let mut written = plus.clone();
    written.add_assign(&copy);
    assert_eq!(written.to_vec(), vec![3.25f32; 145]);
    assert_eq!(c.add_scalar(0.25).to_vec(), vec![1.75f32; 145]);
    assert_eq!(c.to_vec(), vec![1.5f32; 145]);
}

/// A product added to a sum on the device is one cuBLAS call with
/// `beta = 1` into the sum's buffer: no kernel, no allocation, and the
/// host's numbers.
#[test]
fn a_product_added_to_a_sum_is_one_blas_call_and_no_kernel() {
    let Some(_gpu) = standin_gpu() else { return };
    let device = Device::Cuda(0);
    let a = crate::Tensor::<f32>::normal(&[37, 19], 0.0, 1.0, 21);
    let b = crate::Tensor::<f32>::normal(&[23, 19], 0.0, 1.0, 22);
    let acc = crate::Tensor::<f32>::normal(&[37, 23], 0.0, 1.0, 23);
    let want = a.matmul_t_add_to(&b, false, true, acc.clone());
    let (ad, bd) = (a.to(device), b.to(device));
    let sum = acc.to(device);
    let before = thread_counters();
    let got = ad.matmul_t_add_to(&bd, false, true, sum);
    let added = thread_counters() - before;
    assert_eq!(
        (added.blas_calls, added.launches, added.allocations, added.device_to_device),
        (1, 0, 0, 0),
        "{added:?}"
    );
    let diff = got.to_cpu().max_abs_diff(&want);
    assert!(diff < 1e-4, "off by {diff}");
}

/// The pool hands out the idle buffer at the lowest address first, so the
/// buffers a run of requests gets depend on which are idle, not on the
/// order they came back in.
#[test]
fn the_pool_gives_the_lowest_address_first_whatever_order_buffers_came_back_in() {
    let Some(gpu) = standin_gpu() else { return };
    // A length no other test asks for, so that no other test's buffers are
    // in its list.
    const LEN: usize = 4093;
    let address = |b: &crate::cuda::Buffer<f32>| b.slice().device_ptr(&gpu.stream).0;
    let mut held: Vec<Option<crate::cuda::Buffer<f32>>> =
        (0..3).map(|_| Some(crate::cuda::Buffer::<f32>::uninit(&gpu, LEN))).collect();
    let mut sorted: Vec<u64> = held.iter().flatten().map(address).collect();
    sorted.sort_unstable();
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        for k in order {
            held[k] = None;
        }
        let again: Vec<_> = (0..3).map(|_| crate::cuda::Buffer::<f32>::uninit(&gpu, LEN)).collect();
        assert_eq!(
            again.iter().map(address).collect::<Vec<_>>(),
            sorted,
            "given back in the order {order:?}"
        );
        held = again.into_iter().map(Some).collect();
    }
}

/// Numbered draws on the device are the host's numbered draws (the same
/// generator, compiled for the CPU here), whether the step is known on the
/// host or read from a guard's step clock on the device; the clocked draw
/// is the same launch at every step (once the pool has settled).
#[test]
fn numbered_draws_on_the_device_are_the_hosts() {
    use crate::draws::{DrawNumber, DrawStep};
    let Some(_gpu) = standin_gpu() else { return };
    let cuda = Device::Cuda(0);
    let mut guard = crate::LossGuard::on(cuda);
    let one = crate::Tensor::<f32>::scalar(1.0).to(cuda);
    let mut logs = Vec::new();
    for step in 0..4u64 {
        let at = DrawNumber { key: 11, step: DrawStep::At(step), draw: 1 };
        let clocked = DrawNumber { key: 11, step: DrawStep::Clock(guard.clock()), draw: 1 };
        let host = crate::Tensor::<f32>::bernoulli_numbered(&[9, 13], 0.25, &at, Device::Cpu).to_vec();
        let (mask, calls) =
            super::log_calls(|| crate::Tensor::<f32>::bernoulli_numbered(&[9, 13], 0.25, &clocked, cuda));
        assert_eq!(mask.to_vec(), host, "step {step}, from the clock");
        let known = crate::Tensor::<f32>::bernoulli_numbered(&[9, 13], 0.25, &at, cuda);
        assert_eq!(known.to_vec(), host, "step {step}, known on the host");
        let z = crate::Tensor::<f64>::normal_numbered(&[17], 0.0, 1.0, &clocked, cuda).to_vec();
        assert_eq!(z, crate::Tensor::<f64>::normal_numbered(&[17], 0.0, 1.0, &at, Device::Cpu).to_vec());
        logs.push(calls);
        drop(clocked);
        guard.record(&one, 1.0);
    }
    // From the second step on (the first leaves the pool's idle buffers in
    // the order the later steps find them).
    assert_eq!(logs[1], logs[2], "the same launch at every step");
    assert_eq!(logs[2], logs[3]);
}

/// A linear layer with identity or ReLU is one cuBLASLt call (the BIAS or
/// RELU_BIAS epilogue adds the bias, and applies ReLU, as the product is
/// written): no kernel, no allocation once cuBLASLt is open, and the
/// host's numbers. Its weight and bias gradients are one call too (BGRADB).
#[test]
fn a_linear_layer_and_its_weight_and_bias_gradients_are_one_cublaslt_call_each() {
    let Some(_gpu) = standin_gpu() else { return };
    let device = Device::Cuda(0);
    fn check<T: crate::Element>(device: Device, tol: f64) {
        let x = crate::Tensor::<T>::normal(&[37, 19], 0.0, 1.0, 31);
        let w = crate::Tensor::<T>::normal(&[23, 19], 0.0, 1.0, 32);
        let b = crate::Tensor::<T>::normal(&[23], 0.0, 1.0, 33);
        let dz = crate::Tensor::<T>::normal(&[37, 23], 0.0, 1.0, 34);
        let (xd, wd, bd, dzd) = (x.to(device), w.to(device), b.to(device), dz.to(device));
        // Opens cuBLASLt (a handle and its workspace) and plans each problem.
        for act in [crate::Act::Identity, crate::Act::Relu] {
            drop(xd.linear_act(&wd, &bd, act));
        }
        drop(dzd.linear_weight_bias_grad(&xd));
        for act in [crate::Act::Identity, crate::Act::Relu] {
            let want = x.linear_act(&w, &b, act);
            let before = thread_counters();
            let got = xd.linear_act(&wd, &bd, act);
            let added = thread_counters() - before;
            assert_eq!(
                (added.blas_calls, added.launches, added.allocations),
                (1, 0, 0),
                "{act:?}: {added:?}"
            );
            let diff = got.to_cpu().max_abs_diff(&want).as_f64();
            assert!(diff < tol, "{} {act:?}: off by {diff}", T::NAME);
        }
        let (want_dw, want_db) = dz.linear_weight_bias_grad(&x);
        let before = thread_counters();
        let (dw, db) = dzd.linear_weight_bias_grad(&xd);
        let added = thread_counters() - before;
        assert_eq!((added.blas_calls, added.launches, added.allocations), (1, 0, 0), "{added:?}");
        for (what, got, want) in [("dW", dw, want_dw), ("db", db, want_db)] {
            assert_eq!(got.shape(), want.shape(), "{what}");
            let diff = got.to_cpu().max_abs_diff(&want).as_f64();
            assert!(diff < tol, "{} {what}: off by {diff}", T::NAME);
        }
    }
    check::<f32>(device, 1e-4);
    check::<f64>(device, 1e-12);
}

/// cuBLASLt's ReLU epilogue writes 0 for a NaN before the ReLU (as NVIDIA's
/// does), where the `relu` kernel and the CPU let NaN through: a NaN in a
/// layer's input shows in the identity layers and the loss, not in the
/// ReLU layer's own output.
#[test]
fn the_relu_epilogue_writes_zero_for_nan() {
    let Some(_gpu) = standin_gpu() else { return };
    let device = Device::Cuda(0);
    let x = crate::Tensor::<f32>::from_vec(vec![f32::NAN, 1.0, 2.0, 3.0], &[2, 2]).to(device);
    let w = crate::Tensor::<f32>::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2]).to(device);
    let b = crate::Tensor::<f32>::zeros(&[2]).to(device);
    // x W^T with W = I: the NaN reaches both numbers of the first row (NaN 0 is NaN).
    let relu = x.linear_act(&w, &b, crate::Act::Relu).to_vec();
    assert_eq!(relu, vec![0.0, 0.0, 2.0, 3.0]);
    let identity = x.linear_act(&w, &b, crate::Act::Identity).to_vec();
    assert!(identity[0].is_nan() && identity[1].is_nan() && identity[2..] == [2.0, 3.0], "{identity:?}");
}

/// cuBLASLt calls the stand-in does not implement, or that are malformed,
/// are refused with a status, and the plan is not made.
#[test]
fn cublaslt_refuses_an_epilogue_it_does_not_implement_a_bad_mask_and_a_missing_bias() {
    use cudarc::cublaslt::{result as lt, sys};
    let Some(gpu) = standin_gpu() else { return };
    gpu.bind();
    let handle = lt::create_handle().unwrap();
    let ty = sys::cudaDataType_t::CUDA_R_32F;
    let desc = lt::create_matmul_desc(sys::cublasComputeType_t::CUBLAS_COMPUTE_32F, ty).unwrap();
    let layout = lt::create_matrix_layout(ty, 4, 4, 4).unwrap();
    let pref = lt::create_matmul_pref().unwrap();
    let set_epilogue = |e: sys::cublasLtEpilogue_t| unsafe {
        lt::set_matmul_desc_attribute(
            desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE,
            (&e as *const sys::cublasLtEpilogue_t).cast(),
            4,
        )
    };
    let heuristic =
        || unsafe { lt::get_matmul_algo_heuristic(handle, desc, layout, layout, layout, layout, pref) };
    set_epilogue(sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU_BIAS).unwrap();
    let refused = heuristic().unwrap_err();
    assert_eq!(refused.0, sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED);
    // The ReLU mask's epilogues need its leading dimension, a multiple of 128.
    set_epilogue(sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DRELU_BGRAD).unwrap();
    assert_eq!(heuristic().unwrap_err().0, sys::cublasStatus_t::CUBLAS_STATUS_INVALID_VALUE);
    let set_mask_ld = |ld: i64| unsafe {
        lt::set_matmul_desc_attribute(
            desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD,
            (&ld as *const i64).cast(),
            8,
        )
    };
    set_mask_ld(100).unwrap();
    assert_eq!(heuristic().unwrap_err().0, sys::cublasStatus_t::CUBLAS_STATUS_INVALID_VALUE);
    set_mask_ld(128).unwrap();
    heuristic().unwrap();
    set_epilogue(sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS).unwrap();
    let algo = heuristic().unwrap().algo;
    let (a, d) = (zeros(&gpu, 16), zeros(&gpu, 16));
    let (pa, pd) = (addr(&gpu, &a), addr(&gpu, &d));
    let (one, zero) = (1.0f32, 0.0f32);
    let run = || unsafe {
        lt::matmul(
            handle,
            desc,
            (&one as *const f32).cast(),
            (&zero as *const f32).cast(),
            pa as *const _,
            layout,
            pa as *const _,
            layout,
            pd as *const _,
            layout,
            pd as *mut _,
            layout,
            &algo,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    // BIAS without a bias pointer.
    assert_eq!(run().unwrap_err().0, sys::cublasStatus_t::CUBLAS_STATUS_INVALID_VALUE);
    // With one, and a bias too short for the 4 rows of D: outside its allocation.
    let set_bias = |address: u64| unsafe {
        lt::set_matmul_desc_attribute(
            desc,
            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
            (&address as *const u64).cast(),
            8,
        )
    };
    let short = zeros(&gpu, 3);
    set_bias(addr(&gpu, &short)).unwrap();
    assert_eq!(run().unwrap_err().0, sys::cublasStatus_t::CUBLAS_STATUS_INVALID_VALUE);
    let bias = gpu.stream.clone_htod(&[1.0f32, 2.0, 3.0, 4.0]).unwrap();
    set_bias(addr(&gpu, &bias)).unwrap();
    run().unwrap();
    // A (zeros) times A plus the bias down each column.
    let got = gpu.stream.clone_dtoh(&d).unwrap();
    assert_eq!(got, [1.0f32, 2.0, 3.0, 4.0].repeat(4));
    unsafe {
        lt::destroy_matmul_pref(pref).unwrap();
        lt::destroy_matrix_layout(layout).unwrap();
        lt::destroy_matmul_desc(desc).unwrap();
        lt::destroy_handle(handle).unwrap();
    }
}
