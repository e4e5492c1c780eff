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

/// The counters so far, over every thread (all zero if the stand-in is not
/// loaded).
pub fn counters() -> Counters {
    read_counters(b"gt_standin_counters\0")
}

/// The counters of the calling thread's calls alone (all zero if the
/// stand-in is not loaded): what a test counts of its own work while other
/// tests run beside it.
pub fn thread_counters() -> Counters {
    read_counters(b"gt_standin_thread_counters\0")
}

/// The counters that the stand-in's function `symbol` gives.
fn read_counters(symbol: &[u8]) -> Counters {
    let Ok(loaded) = loaded() else { return Counters::default() };
    // SAFETY: the stand-in exports both counter functions with this signature.
    let read: libloading::os::unix::Symbol<unsafe extern "C" fn(*mut u64, usize) -> usize> =
        unsafe { loaded.driver.get(symbol) }.expect("the stand-in exports its counter functions");
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
#[path = "standin_tests.rs"]
mod tests;
