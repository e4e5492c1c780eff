//! Compiling the CUDA C kernels with NVRTC, straight to a CUBIN.
//!
//! NVRTC can emit PTX (a virtual instruction set the driver compiles when it
//! loads the module) or a CUBIN (machine code for one real architecture,
//! `sm_XY`). PTX carries the version of the NVRTC that made it, and a
//! driver older than that NVRTC refuses it; a CUBIN for the device's own
//! compute capability has no such gate. So every source is compiled to a
//! CUBIN for exactly the device it will run on, once per device and
//! architecture, and handed to the driver as a binary image.
//!
//! cudarc's safe wrapper only returns PTX, so this goes one level down, to
//! `cudarc::nvrtc::sys`: create the program (with the shared headers passed
//! by name and text, so no include path is needed), compile, read the CUBIN,
//! or read the compiler's log when it failed.
//!
//! NVRTC needs no GPU and no driver: [`compile_cubin`] works on any machine
//! where `libnvrtc.so.13` can be loaded, which is how CI checks that every
//! kernel compiles.

use crate::device::DeviceError;
use cudarc::nvrtc::sys;
use std::ffi::{c_char, c_int, CString};

/// Whether NVRTC's library can be loaded (loading it is all this does: it
/// never calls into it, so it cannot panic).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { sys::is_culib_present() }
}

/// Compiles one CUDA C source file to a CUBIN for `arch` (`"sm_90"`).
///
/// `headers` are `(include name, text)` pairs the source may `#include`.
/// A source that does not compile gives [`DeviceError::Compile`] with
/// NVRTC's log; a missing NVRTC gives [`DeviceError::NoNvrtc`].
pub fn compile_cubin(
    file: &str,
    source: &str,
    headers: &[(&str, &str)],
    arch: &str,
) -> Result<Vec<u8>, DeviceError> {
    if !nvrtc_present() {
        return Err(DeviceError::NoNvrtc);
    }
    let internal = |what: &str, code: sys::nvrtcResult| DeviceError::Compile {
        file: file.to_string(),
        arch: arch.to_string(),
        log: format!("{what} failed: {code:?}"),
    };
    let cstring = |s: &str| CString::new(s).expect("kernel sources and names hold no NUL byte");
    let (src, name) = (cstring(source), cstring(file));
    let header_texts: Vec<CString> = headers.iter().map(|(_, text)| cstring(text)).collect();
    let header_names: Vec<CString> = headers.iter().map(|(name, _)| cstring(name)).collect();
    let text_ptrs: Vec<*const c_char> = header_texts.iter().map(|c| c.as_ptr()).collect();
    let name_ptrs: Vec<*const c_char> = header_names.iter().map(|c| c.as_ptr()).collect();
    let options = [cstring(&format!("--gpu-architecture={arch}")), cstring("--std=c++17")];
    let option_ptrs: Vec<*const c_char> = options.iter().map(|c| c.as_ptr()).collect();

    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: every pointer is to a NUL-terminated string that outlives the
    // program, and the arrays have the lengths passed with them. The program
    // is destroyed on every path out of this block.
    unsafe {
        let made = sys::nvrtcCreateProgram(
            &mut prog,
            src.as_ptr(),
            name.as_ptr(),
            headers.len() as c_int,
            text_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        );
        if made != sys::nvrtcResult::NVRTC_SUCCESS {
            return Err(internal("nvrtcCreateProgram", made));
        }
        let compiled = sys::nvrtcCompileProgram(prog, option_ptrs.len() as c_int, option_ptrs.as_ptr());
        let result = if compiled == sys::nvrtcResult::NVRTC_SUCCESS {
            read_cubin(prog).map_err(|code| internal("nvrtcGetCUBIN", code))
        } else {
            Err(DeviceError::Compile { file: file.to_string(), arch: arch.to_string(), log: read_log(prog) })
        };
        sys::nvrtcDestroyProgram(&mut prog);
        result
    }
}

/// The compiled machine code.
///
/// # Safety
/// `prog` must be a program that compiled successfully.
unsafe fn read_cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>, sys::nvrtcResult> {
    let mut size = 0usize;
    let got = sys::nvrtcGetCUBINSize(prog, &mut size);
    if got != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(got);
    }
    let mut cubin = vec![0u8; size];
    let got = sys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr().cast());
    if got != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(got);
    }
    Ok(cubin)
}

/// The compiler's messages, as text.
///
/// # Safety
/// `prog` must be a live program.
unsafe fn read_log(prog: sys::nvrtcProgram) -> String {
    let mut size = 0usize;
    if sys::nvrtcGetProgramLogSize(prog, &mut size) != sys::nvrtcResult::NVRTC_SUCCESS {
        return "(NVRTC gave no log)".to_string();
    }
    let mut log = vec![0u8; size];
    if sys::nvrtcGetProgramLog(prog, log.as_mut_ptr().cast()) != sys::nvrtcResult::NVRTC_SUCCESS {
        return "(NVRTC gave no log)".to_string();
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
}
