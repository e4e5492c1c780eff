//! The CUDA C kernel sources, as text, for NVRTC (temporary: replaced by the kernel files).
pub const SOURCES: &[(&str, &str)] =
    &[("probe.cu", "extern \"C\" __global__ void probe_f32(float* x) { x[threadIdx.x] = 1.0f; }\n")];
pub const HEADERS: &[(&str, &str)] = &[];
