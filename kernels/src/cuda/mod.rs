//! CUDA devices, behind the `cuda` feature: opening one, and the kernels
//! compiled for it.
//!
//! [`crate::Device::cuda`] calls [`open`], which walks the checks listed in
//! [`crate::device`] and, the first time a device is asked for, creates its
//! context, compiles every kernel source for the device's own architecture
//! ([`nvrtc`]) and sets up cuBLAS. The result is kept for the life of the
//! process, one per device, so later calls cost a map lookup.

mod buffer;
pub mod lt;
pub mod nvrtc;
pub mod ops;
#[cfg(feature = "cuda-standin")]
pub mod standin;

pub use buffer::Buffer;
use buffer::DevicePool;
pub use ops::launches;

use crate::cuda_source::{HEADERS, SOURCES};
use crate::device::DeviceError;
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::Ptx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One opened CUDA device: its context, the stream every op is queued on,
/// cuBLAS bound to that stream, and the compiled kernel modules by file.
pub struct Gpu {
    /// The device's number, as in `cuda:N`, counting from 0.
    pub ordinal: usize,
    /// `sm_XY`, the architecture the kernels were compiled for.
    pub arch: String,
    /// The device's name as the driver gives it (e.g. `NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// The driver context every allocation and module of this device belongs to.
    pub context: Arc<CudaContext>,
    /// The context's default stream: every copy, kernel and cuBLAS call is
    /// queued on it, in order.
    pub stream: Arc<CudaStream>,
    /// cuBLAS, bound to `stream`, for the matrix products.
    pub blas: CudaBlas,
    /// cuBLASLt, for products with an epilogue ([`lt`]): opened on first
    /// use, `None` where the library is missing.
    lt: OnceLock<Option<lt::Lt>>,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    pool: DevicePool,
    /// Kernels looked up so far, by name: a lookup is a driver call, and a
    /// small network's step launches hundreds of kernels. (Names are unique
    /// across the files: the kernel simulation links them all into one
    /// library, where two `extern "C"` kernels of one name would clash.)
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl Gpu {
    /// The kernel `name` (e.g. `"add_f32"`) from the source file `file`.
    ///
    /// Panics if there is no such kernel: kernel names are fixed in the
    /// code, so a wrong one is a programming error, not bad input.
    #[track_caller]
    pub fn function(&self, file: &str, name: &str) -> CudaFunction {
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = functions.get(name) {
            return f.clone();
        }
        let module = self.modules.get(file).unwrap_or_else(|| panic!("no CUDA kernel file {file}"));
        // A lookup is a driver call in the thread's current context, and
        // cudarc does not bind it here: a rayon worker's first CUDA call can
        // be this one.
        self.bind();
        let f = module.load_function(name).unwrap_or_else(|e| panic!("no CUDA kernel {name} in {file}: {e}"));
        functions.insert(name.to_string(), f.clone());
        f
    }
}

impl Gpu {
    /// cuBLASLt on this device, opened (a handle and its workspace) the
    /// first time it is asked for; `None` where it cannot be used.
    pub fn lt(self: &Arc<Self>) -> Option<&lt::Lt> {
        self.lt.get_or_init(|| lt::Lt::open(self)).as_ref()
    }

    /// Makes this device's context current on the calling thread. cudarc
    /// does so itself before launches, allocations and copies, but not
    /// before a cuBLAS call or a function lookup; without it, a thread whose
    /// first CUDA call is one of those works in whatever context it had (or
    /// none): right by luck on device 0, wrong on any other.
    pub fn bind(&self) {
        buffer::expect_ok(self.context.bind_to_thread(), "binding the device's context to this thread");
    }
}

/// Whether every op waits for the GPU to finish before returning (set by
/// [`set_sync_every_op`]).
static SYNC_EVERY_OP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every GPU op wait for its work to finish (`true`), so that a fault
/// is reported by the op that caused it; for debugging, since a wait per op
/// costs a host synchronisation each. Off by default: the GPU reports errors
/// asynchronously, at a later call, and a fault then names a later op.
/// `gradtape train --detect-anomaly` on a GPU turns it on.
pub fn set_sync_every_op(on: bool) {
    SYNC_EVERY_OP.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`set_sync_every_op`] is on.
pub fn sync_every_op() -> bool {
    SYNC_EVERY_OP.load(std::sync::atomic::Ordering::Relaxed)
}

/// The devices opened so far.
fn opened() -> &'static Mutex<HashMap<usize, Arc<Gpu>>> {
    static OPENED: OnceLock<Mutex<HashMap<usize, Arc<Gpu>>>> = OnceLock::new();
    OPENED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Device `ordinal`, opened (and its kernels compiled) on first use.
pub fn open(ordinal: usize) -> Result<Arc<Gpu>, DeviceError> {
    let mut opened = opened().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(gpu) = opened.get(&ordinal) {
        return Ok(Arc::clone(gpu));
    }
    let gpu = Arc::new(start(ordinal)?);
    opened.insert(ordinal, Arc::clone(&gpu));
    Ok(gpu)
}

/// Whether the driver library can be loaded (probed without calling into
/// it: cudarc panics on the first call when it is missing).
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether cuBLAS can be loaded (probed the same way).
pub fn cublas_present() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { cudarc::cublas::sys::is_culib_present() }
}

/// The checks of [`crate::device`], in order, then the device's set-up.
fn start(ordinal: usize) -> Result<Gpu, DeviceError> {
    if !driver_present() {
        return Err(DeviceError::NoDriver);
    }
    let driver = |e: cudarc::driver::DriverError| DeviceError::Driver(e.to_string());
    let count = CudaContext::device_count().map_err(driver)?.max(0) as usize;
    if ordinal >= count {
        return Err(DeviceError::NoDevice { ordinal, count });
    }
    if !nvrtc::nvrtc_present() {
        return Err(DeviceError::NoNvrtc);
    }
    if !cublas_present() {
        return Err(DeviceError::NoCublas);
    }
    let context = CudaContext::new(ordinal).map_err(driver)?;
    // Every op is queued on the one default stream, in order, so cudarc's
    // per-buffer events (which order work across streams) are not needed.
    // SAFETY: no other stream ever touches these buffers.
    unsafe { context.disable_event_tracking() };
    let (major, minor) = context.compute_capability().map_err(driver)?;
    let arch = format!("sm_{major}{minor}");
    let mut modules = HashMap::new();
    for &(file, source) in SOURCES {
        let cubin = nvrtc::compile_cubin(file, source, HEADERS, &arch)?;
        modules.insert(file, context.load_module(Ptx::from_binary(cubin)).map_err(driver)?);
    }
    let stream = context.default_stream();
    let blas = CudaBlas::new(Arc::clone(&stream)).map_err(|e| DeviceError::Driver(format!("cuBLAS: {e}")))?;
    let name = context.name().map_err(driver)?;
    let (pool, functions) = (DevicePool::default(), Mutex::new(HashMap::new()));
    Ok(Gpu { ordinal, arch, name, context, stream, blas, lt: OnceLock::new(), modules, pool, functions })
}

/// Compiles every kernel source for `arch` without a GPU (NVRTC only),
/// returning each file's CUBIN size: the check CI runs.
pub fn compile_all(arch: &str) -> Result<Vec<(&'static str, usize)>, DeviceError> {
    SOURCES
        .iter()
        .map(|&(file, source)| Ok((file, nvrtc::compile_cubin(file, source, HEADERS, arch)?.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    /// Set (to 1) where the library must be there, so that a test which
    /// would skip fails instead: CI sets GRADTAPE_REQUIRE_NVRTC, the GPU
    /// check sets GRADTAPE_REQUIRE_CUDA.
    fn required(var: &str) -> bool {
        std::env::var(var).is_ok_and(|v| v == "1")
    }

    /// Whether NVRTC is there to test with; says `skipped` if not, and
    /// fails instead where GRADTAPE_REQUIRE_NVRTC=1.
    fn nvrtc_or_skip() -> bool {
        if nvrtc::nvrtc_present() {
            return true;
        }
        assert!(
            !required("GRADTAPE_REQUIRE_NVRTC"),
            "GRADTAPE_REQUIRE_NVRTC=1 but libnvrtc.so.13 is not found"
        );
        println!("skipped: no NVRTC (libnvrtc.so.13) on the library path");
        false
    }

    #[test]
    fn asking_for_a_cuda_device_without_a_driver_is_an_error_not_a_panic() {
        // With the stand-in built in, another test of this process may load
        // it at any moment: load it (if it can be) before looking, so the
        // answer cannot change under the test. The case of no driver at all
        // is then checked where nothing loads the stand-in: the CLI test
        // `error_device_cuda`, in a process of its own.
        #[cfg(feature = "cuda-standin")]
        let _ = super::standin::device_for_tests(0);
        if driver_present() {
            // A machine with a driver: a device far past the count is named
            // as missing, with the count.
            match Device::cuda(1000) {
                Err(DeviceError::NoDevice { ordinal: 1000, .. }) => {}
                other => panic!("cuda(1000) on a machine with a driver gave {other:?}"),
            }
            let first = Device::cuda(0);
            assert!(!required("GRADTAPE_REQUIRE_CUDA") || first.is_ok(), "cuda(0): {first:?}");
            return;
        }
        assert!(!required("GRADTAPE_REQUIRE_CUDA"), "GRADTAPE_REQUIRE_CUDA=1 but there is no CUDA driver");
        for ordinal in [0, 3] {
            let e = Device::cuda(ordinal).unwrap_err();
            assert_eq!(e, DeviceError::NoDriver);
            assert!(e.to_string().contains("libcuda.so"), "{e}");
        }
    }

    #[test]
    fn every_kernel_source_compiles_to_a_cubin_for_sm_80_and_sm_90() {
        if !nvrtc_or_skip() {
            return;
        }
        assert!(!SOURCES.is_empty());
        for arch in ["sm_80", "sm_90"] {
            let compiled = compile_all(arch).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(compiled.len(), SOURCES.len());
            for (file, bytes) in compiled {
                // A CUBIN is an ELF file: it is not empty.
                assert!(bytes > 64, "{file} for {arch}: {bytes} bytes");
            }
        }
    }

    #[test]
    fn a_kernel_that_does_not_compile_comes_back_with_nvrtcs_log() {
        if !nvrtc_or_skip() {
            return;
        }
        let source = "extern \"C\" __global__ void broken(float* x) { x[0] = undeclared_name; }\n";
        match nvrtc::compile_cubin("broken.cu", source, &[], "sm_90") {
            Err(e @ DeviceError::Compile { .. }) => {
                let text = e.to_string();
                assert!(text.contains("broken.cu") && text.contains("sm_90"), "{text}");
                assert!(text.contains("undeclared_name"), "the log should name the error: {text}");
            }
            other => panic!("a broken kernel compiled: {other:?}"),
        }
        // And a header passed by name is found without an include path.
        let header = [("twice.cuh", "__device__ inline float twice(float x) { return 2.0f * x; }\n")];
        let source =
            "#include \"twice.cuh\"\nextern \"C\" __global__ void k(float* x) { x[0] = twice(x[0]); }\n";
        let cubin = nvrtc::compile_cubin("k.cu", source, &header, "sm_80").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&cubin[..4], b"\x7fELF");
    }
}
