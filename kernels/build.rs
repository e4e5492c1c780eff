//! Build script. Does nothing unless the test-only `kernel-sim` feature is
//! on; then it compiles every CUDA kernel file in `cuda/` as C++ (with
//! `cuda/cpu_sim.h` standing in for the CUDA runtime, and
//! `cuda/cpu_sim.cpp` holding the simulated launch variables) into a static
//! library that `src/cuda_sim.rs` calls.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "kernel-sim")]
    compile_kernels_for_the_cpu();
}

#[cfg(feature = "kernel-sim")]
fn compile_kernels_for_the_cpu() {
    println!("cargo:rerun-if-changed=cuda");
    let mut files: Vec<_> = std::fs::read_dir("cuda")
        .expect("kernels/cuda exists")
        .map(|e| e.expect("readable kernels/cuda").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    files.sort();
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        // The .cu files are C++ as far as the host compiler is concerned.
        .flag("-x")
        .flag("c++")
        // No fused multiply-adds or reassociation: the simulation must round
        // every operation as written, like the Rust kernels it is checked
        // against.
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .include("cuda")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .files(&files)
        .file("cuda/cpu_sim.cpp")
        .compile("gradtape_kernel_sim");
}
