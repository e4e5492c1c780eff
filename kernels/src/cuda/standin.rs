//! The CPU stand-in for the CUDA driver and cuBLAS, for tests and the
//! counting bench only (the `cuda-standin` feature).
//!
//! The stand-in (`kernels/standin/`, built by `build.rs`) is a `libcuda.so`
//! and a `libcublas.so` that run on the CPU: device memory is host memory,
//! a launch plays the grid with the kernel sources compiled as C++, and the
//! gemm follows cuBLAS's column-major definition. [`load`] opens them by
//! absolute path, with NVRTC, before cudarc's first call; cudarc's own
//! `dlopen("libcuda.so")` then gets the stand-in (the dynamic loader matches
//! the name against the libraries already loaded), so the GPU code of this
//! crate runs unmodified, from [`crate::Device::cuda`] through
//! `cuda/ops.rs`. For a CLI process a test spawns, [`child_env`] gives the
//! library path that makes that process load it.
//!
//! Nothing else loads it: a user's `--device cuda` never does, and
//! `scripts/gpu_check.sh` runs on the real driver. [`device_for_tests`]
//! prefers a real GPU when a driver is installed, and says which one ran.
//!
//! What it proves: kernel arguments and their order, launch shapes, the
//! stride and broadcast arithmetic, buffer lifetimes (a freed buffer, an
//! overrun, a copy past a buffer are errors naming the call), cuBLAS's
//! parameters, and the counts of launches, allocations and host waits per
//! step. What it cannot: speed, the real driver's behaviour, NVRTC running
//! on the device, real cuBLAS numerics.

use crate::Device;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where `build.rs` put the stand-in's `libcuda.so` and `libcublas.so`.
pub const LIBRARY_DIR: &str = env!("GRADTAPE_STANDIN_DIR");

/// Counts kept by the stand-in since the process loaded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `cuLaunchKernel` calls.
    pub launches: u64,
    /// cuBLAS gemm calls.
    pub blas_calls: u64,
    /// Device allocations (`cuMemAlloc_v2` / `cuMemAllocAsync`).
    pub allocations: u64,
    /// Device frees that return memory to the driver.
    pub frees: u64,
    /// Copies from host to device.
    pub host_to_device: u64,
    /// Copies from device to host (each one makes the host wait).
    pub device_to_host: u64,
    /// Copies within the device.
    pub device_to_device: u64,
    /// Memsets.
    pub memsets: u64,
    /// Host synchronisations (stream, context or event).
    pub syncs: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, b: Counters) -> Counters {
        Counters {
            launches: self.launches - b.launches,
            blas_calls: self.blas_calls - b.blas_calls,
            allocations: self.allocations - b.allocations,
            frees: self.frees - b.frees,
            host_to_device: self.host_to_device - b.host_to_device,
            device_to_host: self.device_to_host - b.device_to_host,
            device_to_device: self.device_to_device - b.device_to_device,
            memsets: self.memsets - b.memsets,
            syncs: self.syncs - b.syncs,
        }
    }
}

/// The loaded stand-in (kept loaded for the life of the process).
struct Loaded {
    driver: libloading::os::unix::Library,
    _libraries: Vec<libloading::os::unix::Library>,
}

fn loaded() -> &'static Result<Loaded, String> {
    static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();
    LOADED.get_or_init(open_all)
}

/// The folder holding NVRTC (`libnvrtc.so.13`): `GRADTAPE_NVRTC_DIR`, a
/// folder on `LD_LIBRARY_PATH`, or the wheels `scripts/check_kernels.sh`
/// installs under `target/cuda-check-venv`.
pub fn nvrtc_dir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("libnvrtc.so.13").is_file();
    if let Some(dir) = std::env::var_os("GRADTAPE_NVRTC_DIR") {
        return Some(PathBuf::from(dir)).filter(|d| has(d));
    }
    if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has(d)) {
            return Some(d);
        }
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cuda-check-venv/lib");
    let pythons = std::fs::read_dir(venv).ok()?;
    pythons.filter_map(|e| e.ok()).map(|e| e.path().join("site-packages/nvidia/cu13/lib")).find(|d| has(d))
}

fn open_all() -> Result<Loaded, String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    let nvrtc = nvrtc_dir().ok_or(
        "no NVRTC (libnvrtc.so.13) found: run scripts/check_kernels.sh (it installs NVIDIA's wheels under \
         target/cuda-check-venv) or set GRADTAPE_NVRTC_DIR",
    )?;
    let open = |path: PathBuf| {
        // SAFETY: these libraries run no initialisers that depend on us.
        unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("loading {}: {e}", path.display()))
    };
    let mut libraries = Vec::new();
    // NVRTC loads its builtins by name when it compiles; loaded first by
    // path, they are found whatever the library path says.
    if let Some(builtins) = std::fs::read_dir(&nvrtc)
        .ok()
        .and_then(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| is_builtins(p)))
    {
        libraries.push(open(builtins)?);
    }
    libraries.push(open(nvrtc.join("libnvrtc.so.13"))?);
    let driver = open(Path::new(LIBRARY_DIR).join("libcuda.so"))?;
    libraries.push(open(Path::new(LIBRARY_DIR).join("libcublas.so"))?);
    Ok(Loaded { driver, _libraries: libraries })
}

fn is_builtins(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libnvrtc-builtins.so."))
}

/// Opens the stand-in (and NVRTC) so that cudarc's next lookup finds it.
/// Call it before anything asks for a CUDA device. Refused where a real
/// driver is installed: a process must not mix the two.
pub fn load() -> Result<(), String> {
    if real_driver_present() {
        return Err("a real CUDA driver is installed; the stand-in is not loaded beside it".into());
    }
    loaded().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Whether NVIDIA's driver library is installed. Checked once per process,
/// before the stand-in can be loaded ([`load`] asks first), so that the
/// answer is about the machine, never about the stand-in.
pub fn real_driver_present() -> bool {
    *REAL_DRIVER.get_or_init(|| {
        ["libcuda.so", "libcuda.so.1"].into_iter().any(|name| {
            // SAFETY: only opens the library (and closes it again).
            unsafe { libloading::os::unix::Library::new(name) }.is_ok()
        })
    })
}

static REAL_DRIVER: OnceLock<bool> = OnceLock::new();

/// The counters so far (all zero if the stand-in is not loaded).
pub fn counters() -> Counters {
    let Ok(loaded) = loaded() else { return Counters::default() };
    // SAFETY: the stand-in exports this function with this signature.
    let read: libloading::os::unix::Symbol<unsafe extern "C" fn(*mut u64, usize) -> usize> =
        unsafe { loaded.driver.get(b"gt_standin_counters\0") }
            .expect("the stand-in exports gt_standin_counters");
    let mut c = [0u64; 9];
    // SAFETY: `c` has room for the 9 counters asked for.
    unsafe { read(c.as_mut_ptr(), c.len()) };
    Counters {
        launches: c[0],
        blas_calls: c[1],
        allocations: c[2],
        frees: c[3],
        host_to_device: c[4],
        device_to_host: c[5],
        device_to_device: c[6],
        memsets: c[7],
        syncs: c[8],
    }
}

/// Makes the next `count` device allocations on the calling thread fail as
/// out of memory (the stand-in's memory is the host's, so a test cannot
/// exhaust it as a GPU's is exhausted). Does nothing if it is not loaded.
pub fn fail_next_allocations(count: u32) {
    let Ok(loaded) = loaded() else { return };
    // SAFETY: the stand-in exports this function with this signature.
    let set: libloading::os::unix::Symbol<unsafe extern "C" fn(u32)> =
        unsafe { loaded.driver.get(b"gt_standin_fail_next_allocations\0") }
            .expect("the stand-in exports gt_standin_fail_next_allocations");
    // SAFETY: it only sets a thread-local counter.
    unsafe { set(count) };
}

/// Which machine a test's CUDA device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A real GPU, through NVIDIA's driver.
    Gpu,
    /// The CPU stand-in.
    StandIn,
}

impl std::fmt::Display for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backing::Gpu => "a GPU",
            Backing::StandIn => "the CPU stand-in for the CUDA driver and cuBLAS (not a GPU)",
        })
    }
}

/// CUDA device `ordinal` for a test: a real GPU where NVIDIA's driver is
/// installed, else the stand-in. `Err` says why neither can be had.
///
/// `GRADTAPE_REQUIRE_CUDA=1` (the GPU machine) refuses the stand-in;
/// `GRADTAPE_REQUIRE_STANDIN=1` (CI) makes the caller fail rather than skip
/// (see [`required`]).
pub fn device_for_tests(ordinal: usize) -> Result<(Device, Backing), String> {
    if real_driver_present() {
        return Device::cuda(ordinal).map(|d| (d, Backing::Gpu)).map_err(|e| e.to_string());
    }
    if required("GRADTAPE_REQUIRE_CUDA") {
        return Err(
            "GRADTAPE_REQUIRE_CUDA=1 but there is no CUDA driver (the stand-in is not used then)".into()
        );
    }
    load()?;
    Device::cuda(ordinal).map(|d| (d, Backing::StandIn)).map_err(|e| e.to_string())
}

/// Whether the environment variable `var` is `1`.
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// The environment a spawned `gradtape` process needs to run on the
/// stand-in: `LD_LIBRARY_PATH` with the stand-in's folder and NVRTC's. The
/// stand-in is found only through this one child's environment.
pub fn child_env() -> Result<Vec<(OsString, OsString)>, String> {
    if real_driver_present() {
        return Err("a real CUDA driver is installed; child processes use it".into());
    }
    let nvrtc = nvrtc_dir().ok_or("no NVRTC (libnvrtc.so.13) found: run scripts/check_kernels.sh")?;
    let mut dirs = vec![PathBuf::from(LIBRARY_DIR), nvrtc];
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&old));
    }
    let path = std::env::join_paths(dirs).map_err(|e| e.to_string())?;
    Ok(vec![("LD_LIBRARY_PATH".into(), path)])
}

/// The stand-in is strict where a GPU is: each mistake below is an error
/// from the call that made it (a GPU would report some of them later, or
/// not at all). Each test drives cudarc directly, as `ops.rs` does.
#[cfg(test)]
mod tests {
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
        for (grid, block) in
            [((1, 1, 1), (1025, 1, 1)), ((1, 1, 1), (32, 32, 2)), ((1, 65536, 1), (32, 1, 1))]
        {
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
        let e =
            unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut back[..], dst, gpu.stream.cu_stream()) };
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
        assert!(
            message.contains("7873 elements (31492 bytes)") && message.contains("idle buffers"),
            "{message}"
        );
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

    /// Adam over a model's parameters on a GPU is one launch (plus one small
    /// copy of the table of addresses), and gives the per-parameter
    /// kernel's bits.
    #[test]
    fn adam_over_every_parameter_is_one_launch_with_the_same_bits() {
        let Some(_gpu) = standin_gpu() else { return };
        let d = Device::Cuda(0);
        let shapes: [&[usize]; 4] = [&[64, 33], &[64], &[1], &[12, 64]];
        let fresh = |seed: u64| -> Vec<crate::Tensor<f32>> {
            shapes
                .iter()
                .enumerate()
                .map(|(k, s)| crate::Tensor::<f32>::normal(s, 0.0, 1.0, seed + k as u64).to(d))
                .collect()
        };
        let s = crate::optim::AdamStep {
            beta1: 0.9,
            keep1: 0.1,
            beta2: 0.999,
            keep2: 1.0 - 0.999,
            eps: 1e-8,
            step_size: 1e-3 / 0.1,
            bc2_sqrt: (1.0f32 - 0.999).sqrt(),
            wd: 0.01,
            decay: true,
        };
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
        for (a, b) in p1.iter().zip(&p2).chain(m1.iter().zip(&m2)).chain(v1.iter().zip(&v2)) {
            let (a, b) = (a.to_vec(), b.to_vec());
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{a:?} against {b:?}");
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
}
