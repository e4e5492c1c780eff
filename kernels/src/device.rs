//! Where a tensor's numbers live: the CPU, or a CUDA GPU.
//!
//! [`Device::Cpu`] is always there. [`Device::Cuda`] is only reachable
//! through [`Device::cuda`], which checks, in order, everything a GPU run
//! needs and returns a [`DeviceError`] naming the first thing missing:
//!
//! 1. the build: CUDA support is the `cuda` cargo feature, off by default;
//! 2. the driver library (`libcuda.so`): cudarc loads it at run time and
//!    would *panic* on its first call if it were absent, so its presence is
//!    probed first, without calling into it;
//! 3. a device with that number (the error says how many there are);
//! 4. NVRTC (`libnvrtc.so.13`), which compiles the kernels, and cuBLAS
//!    (`libcublas.so.13`), which multiplies matrices;
//! 5. the kernels themselves, compiled for the device's own compute
//!    capability (a compiler error comes back with NVRTC's log).
//!
//! So a machine without a GPU gets an error it can print, never a panic.

use std::fmt;

/// A place tensors can live and ops can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory and the CPU kernels (rayon, matrixmultiply).
    #[default]
    Cpu,
    /// The CUDA device with this ordinal (0 for the first GPU).
    Cuda(usize),
}

impl Device {
    /// The CUDA device `ordinal`, once everything it needs has been found:
    /// see the module docs for the checks and [`DeviceError`] for what each
    /// failure says.
    pub fn cuda(ordinal: usize) -> Result<Device, DeviceError> {
        #[cfg(feature = "cuda")]
        {
            crate::cuda::open(ordinal)?;
            Ok(Device::Cuda(ordinal))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = ordinal;
            Err(DeviceError::NotBuilt)
        }
    }

    /// Parses `cpu`, `cuda` (device 0) or `cuda:N`, as PyTorch spells them.
    /// Only the spelling is checked: [`Device::cuda`] checks the device.
    pub fn parse(text: &str) -> Result<Device, String> {
        match text {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(format!("unknown device {text:?}: expected cpu, cuda or cuda:N")),
            },
        }
    }

    /// `cpu`, or `cuda:N (name, sm_XY)` for an opened GPU.
    pub fn describe(self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => match crate::cuda::open(n) {
                Ok(gpu) => format!("{self} ({}, {})", gpu.name, gpu.arch),
                Err(e) => format!("{self} ({e})"),
            },
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => self.to_string(),
        }
    }

    /// Whether this is a CUDA device.
    pub fn is_cuda(self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Why a CUDA device cannot be used, one case per check in
/// [`Device::cuda`]; `Display` gives one line a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// This build has no CUDA support (the `cuda` feature is off).
    NotBuilt,
    /// The CUDA driver library could not be loaded.
    NoDriver,
    /// The driver loaded but initialising it or counting devices failed.
    Driver(String),
    /// There is no device with this ordinal; `count` devices exist.
    NoDevice {
        /// The device asked for (`cuda:N`), counting from 0.
        ordinal: usize,
        /// How many CUDA devices the driver reports.
        count: usize,
    },
    /// NVRTC, the runtime compiler for the kernels, could not be loaded.
    NoNvrtc,
    /// cuBLAS could not be loaded.
    NoCublas,
    /// A kernel source did not compile; `log` is NVRTC's own message.
    Compile {
        /// The kernel source file that failed (e.g. `elementwise.cu`).
        file: String,
        /// The architecture it was compiled for, `sm_XY`.
        arch: String,
        /// NVRTC's compile log.
        log: String,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::NotBuilt => {
                write!(f, "this gradtape was built without CUDA support; rebuild with `--features cuda`")
            }
            DeviceError::NoDriver => write!(
                f,
                "no CUDA driver library (libcuda.so) was found: this machine has no NVIDIA driver installed"
            ),
            DeviceError::Driver(e) => write!(f, "the CUDA driver failed to start: {e}"),
            DeviceError::NoDevice { ordinal, count } => {
                write!(f, "there is no CUDA device {ordinal}: this machine has {count}")
            }
            DeviceError::NoNvrtc => write!(
                f,
                "NVRTC (libnvrtc.so.13) was not found: install the `nvidia-cuda-nvrtc` wheel and put \
                 its nvidia/cu13/lib folder on LD_LIBRARY_PATH"
            ),
            DeviceError::NoCublas => write!(
                f,
                "cuBLAS (libcublas.so.13) was not found: install the `nvidia-cublas` wheel and put \
                 its nvidia/cu13/lib folder on LD_LIBRARY_PATH"
            ),
            DeviceError::Compile { file, arch, log } => {
                write!(f, "the CUDA kernels in {file} did not compile for {arch}: {}", log.trim())
            }
        }
    }
}

impl std::error::Error for DeviceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_as_pytorch_spells_them() {
        assert_eq!(Device::parse("cpu"), Ok(Device::Cpu));
        assert_eq!(Device::parse("cuda"), Ok(Device::Cuda(0)));
        assert_eq!(Device::parse("cuda:3"), Ok(Device::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"] {
            let err = Device::parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        assert_eq!(Device::Cpu.to_string(), "cpu");
        assert!(Device::Cuda(0).is_cuda() && !Device::Cpu.is_cuda());
    }

    #[test]
    fn a_missing_device_is_an_error_that_names_the_count() {
        let e = DeviceError::NoDevice { ordinal: 3, count: 1 };
        assert_eq!(e.to_string(), "there is no CUDA device 3: this machine has 1");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_asking_for_cuda_says_how_to_get_it() {
        let e = Device::cuda(0).unwrap_err();
        assert_eq!(e, DeviceError::NotBuilt);
        assert!(e.to_string().contains("--features cuda"), "{e}");
    }
}
