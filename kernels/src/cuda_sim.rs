//! The CUDA kernels, run on the CPU (test-only feature `kernel-sim`).
//!
//! The build script compiles every file in `kernels/cuda/` as C++, with
//! `cpu_sim.h` supplying `threadIdx`, `blockIdx`, `blockDim` and `gridDim`.
//! [`launch`] plays a launch of `grid` blocks of `block` threads: it calls the
//! kernel once per (block, thread), one after another, with the launch
//! variables set as a GPU would set them. Because the kernels keep to a
//! plain subset (no shared memory, no synchronisation, no atomics: each
//! thread's work depends only on its own indices), the sequential run
//! computes exactly what the parallel one does, and the CUDA maths and
//! indexing can be checked against the CPU kernels where no GPU is.
//!
//! [`Sim`] holds every entry point, for both precisions: `Sim::add::<f32>`
//! is the kernel `add_f32`, with the argument order the runtime loader uses
//! (element count, inputs, scalars, output; see each `.cu` file).
//!
//! ```ignore
//! let (x, mut out) = (vec![1.0f32, -2.0], vec![0.0; 2]);
//! launch(1, 32, || unsafe { <Sim as Kernels<f32>>::relu(2, x.as_ptr(), out.as_mut_ptr()) });
//! ```

use crate::cuda_source::Strided6;

extern "C" {
    fn gt_sim_set_launch(grid: u32, block: u32);
    fn gt_sim_set_thread(block: u32, thread: u32);
}

/// Runs `kernel` as a launch of `grid` blocks of `block` threads on this
/// thread: once for every (block, thread) pair, in order.
pub fn launch(grid: u32, block: u32, mut kernel: impl FnMut()) {
    // SAFETY: the two setters only write this thread's launch variables.
    unsafe { gt_sim_set_launch(grid, block) };
    for b in 0..grid {
        for t in 0..block {
            unsafe { gt_sim_set_thread(b, t) };
            kernel();
        }
    }
}

/// The simulated kernels: `<Sim as Kernels<T>>::name` calls `name_f32` or
/// `name_f64`.
pub struct Sim;

/// Declares every kernel once, with `T` for the element type, and binds the
/// two compiled instantiations of each to [`Kernels`]`<f32>` and `<f64>`.
macro_rules! kernels {
    ($( $name:ident => $f32:ident, $f64:ident ( $($arg:ident : $ty:ty),* ); )*) => {
        /// The name of every bound kernel (without `_f32`/`_f64`): a
        /// kernel missing from the `.cu` files fails the link, so a name
        /// here is a kernel that exists.
        pub const KERNEL_NAMES: &[&str] = &[$( stringify!($name) ),*];

        /// Every simulated kernel for element type `T`. Unsafe to call: the
        /// pointers must cover what the kernel reads and writes, as on a GPU.
        #[allow(clippy::too_many_arguments, clippy::missing_safety_doc)]
        pub trait Kernels<T> {
            $(
                #[doc = concat!("One thread of the kernel `", stringify!($f32), "` or `", stringify!($f64),
                    "`, with the arguments in the order the `.cu` file declares them.")]
                unsafe fn $name($($arg: $ty),*);
            )*
        }
        mod ffi_f32 {
            #![allow(clippy::too_many_arguments)]
            use super::*;
            type T = f32;
            extern "C" { $( pub fn $f32($($arg: $ty),*); )* }
            impl Kernels<f32> for Sim {
                $( unsafe fn $name($($arg: $ty),*) { unsafe { $f32($($arg),*) } } )*
            }
        }
        mod ffi_f64 {
            #![allow(clippy::too_many_arguments)]
            use super::*;
            type T = f64;
            extern "C" { $( pub fn $f64($($arg: $ty),*); )* }
            impl Kernels<f64> for Sim {
                $( unsafe fn $name($($arg: $ty),*) { unsafe { $f64($($arg),*) } } )*
            }
        }
    };
}

kernels! {
    // elementwise.cu: unary
    neg => neg_f32, neg_f64(n: i64, x: *const T, out: *mut T);
    exp => exp_f32, exp_f64(n: i64, x: *const T, out: *mut T);
    ln => ln_f32, ln_f64(n: i64, x: *const T, out: *mut T);
    sqrt => sqrt_f32, sqrt_f64(n: i64, x: *const T, out: *mut T);
    square => square_f32, square_f64(n: i64, x: *const T, out: *mut T);
    abs => abs_f32, abs_f64(n: i64, x: *const T, out: *mut T);
    sign => sign_f32, sign_f64(n: i64, x: *const T, out: *mut T);
    sigmoid => sigmoid_f32, sigmoid_f64(n: i64, x: *const T, out: *mut T);
    tanh => tanh_f32, tanh_f64(n: i64, x: *const T, out: *mut T);
    relu => relu_f32, relu_f64(n: i64, x: *const T, out: *mut T);
    step => step_f32, step_f64(n: i64, x: *const T, out: *mut T);
    softplus => softplus_f32, softplus_f64(n: i64, x: *const T, out: *mut T);
    add_scalar => add_scalar_f32, add_scalar_f64(n: i64, x: *const T, s: T, out: *mut T);
    mul_scalar => mul_scalar_f32, mul_scalar_f64(n: i64, x: *const T, s: T, out: *mut T);
    powf => powf_f32, powf_f64(n: i64, x: *const T, p: T, out: *mut T);
    clamp => clamp_f32, clamp_f64(n: i64, x: *const T, lo: T, hi: T, out: *mut T);
    inside_mask => inside_mask_f32, inside_mask_f64(n: i64, x: *const T, lo: T, hi: T, out: *mut T);
    // elementwise.cu: binary
    add => add_f32, add_f64(n: i64, a: *const T, b: *const T, out: *mut T);
    sub => sub_f32, sub_f64(n: i64, a: *const T, b: *const T, out: *mut T);
    mul => mul_f32, mul_f64(n: i64, a: *const T, b: *const T, out: *mut T);
    div => div_f32, div_f64(n: i64, a: *const T, b: *const T, out: *mut T);
    add_bcast => add_bcast_f32, add_bcast_f64(n: i64, idx: Strided6, a: *const T, b: *const T, out: *mut T);
    sub_bcast => sub_bcast_f32, sub_bcast_f64(n: i64, idx: Strided6, a: *const T, b: *const T, out: *mut T);
    mul_bcast => mul_bcast_f32, mul_bcast_f64(n: i64, idx: Strided6, a: *const T, b: *const T, out: *mut T);
    div_bcast => div_bcast_f32, div_bcast_f64(n: i64, idx: Strided6, a: *const T, b: *const T, out: *mut T);
    // activations.cu
    pow_grad => pow_grad_f32, pow_grad_f64(n: i64, g: *const T, x: *const T, p: T, out: *mut T);
    sqrt_grad => sqrt_grad_f32, sqrt_grad_f64(n: i64, g: *const T, y: *const T, out: *mut T);
    square_grad => square_grad_f32, square_grad_f64(n: i64, g: *const T, x: *const T, out: *mut T);
    abs_grad => abs_grad_f32, abs_grad_f64(n: i64, g: *const T, x: *const T, out: *mut T);
    sigmoid_grad => sigmoid_grad_f32, sigmoid_grad_f64(n: i64, g: *const T, s: *const T, out: *mut T);
    tanh_grad => tanh_grad_f32, tanh_grad_f64(n: i64, g: *const T, t: *const T, out: *mut T);
    relu_grad => relu_grad_f32, relu_grad_f64(n: i64, g: *const T, x: *const T, out: *mut T);
    softplus_grad => softplus_grad_f32, softplus_grad_f64(n: i64, g: *const T, x: *const T, out: *mut T);
    clamp_grad => clamp_grad_f32, clamp_grad_f64(n: i64, g: *const T, x: *const T, lo: T, hi: T, out: *mut T);
    sum_squares_grad => sum_squares_grad_f32, sum_squares_grad_f64(n: i64, g: *const T, x: *const T, out: *mut T);
    pow_grad_dx => pow_grad_dx_f32, pow_grad_dx_f64(n: i64, big_g: *const T, g: *const T, x: *const T, p: T, out: *mut T);
    sqrt_grad_dx => sqrt_grad_dx_f32, sqrt_grad_dx_f64(n: i64, big_g: *const T, g: *const T, y: *const T, out: *mut T);
    square_grad_dx => square_grad_dx_f32, square_grad_dx_f64(n: i64, big_g: *const T, g: *const T, x: *const T, out: *mut T);
    sigmoid_grad_dx => sigmoid_grad_dx_f32, sigmoid_grad_dx_f64(n: i64, big_g: *const T, g: *const T, s: *const T, out: *mut T);
    tanh_grad_dx => tanh_grad_dx_f32, tanh_grad_dx_f64(n: i64, big_g: *const T, g: *const T, t: *const T, out: *mut T);
    softplus_grad_dx => softplus_grad_dx_f32, softplus_grad_dx_f64(n: i64, big_g: *const T, g: *const T, x: *const T, out: *mut T);
    sum_squares_grad_dx => sum_squares_grad_dx_f32, sum_squares_grad_dx_f64(n: i64, big_g: *const T, g: *const T, x: *const T, out: *mut T);
    // reduce.cu
    sum_partials => sum_partials_f32, sum_partials_f64(n: i64, x: *const T, partials: *mut T);
    sum_squares_partials => sum_squares_partials_f32, sum_squares_partials_f64(n: i64, x: *const T, partials: *mut T);
    max_partials => max_partials_f32, max_partials_f64(n: i64, x: *const T, partials: *mut T);
    sum_finish => sum_finish_f32, sum_finish_f64(parts: i64, partials: *const T, out: *mut T);
    sum_finish_scaled => sum_finish_scaled_f32, sum_finish_scaled_f64(parts: i64, scale: T, partials: *const T, out: *mut T);
    sum_finish_sqrt => sum_finish_sqrt_f32, sum_finish_sqrt_f64(parts: i64, partials: *const T, out: *mut T);
    max_finish => max_finish_f32, max_finish_f64(parts: i64, partials: *const T, out: *mut T);
    argmax_partials => argmax_partials_f32, argmax_partials_f64(n: i64, x: *const T, values: *mut T, indices: *mut i64);
    argmax_chunks => argmax_chunks_f32, argmax_chunks_f64(n_out: i64, n_in: i64, chunk: i64, values: *const T, indices: *const i64, values_out: *mut T, indices_out: *mut i64);
    argmax_finish => argmax_finish_f32, argmax_finish_f64(parts: i64, values: *const T, indices: *const i64, at: *mut i64);
    one_hot => one_hot_f32, one_hot_f64(n: i64, at: *const i64, x: *const T, out: *mut T);
    sum_axis => sum_axis_f32, sum_axis_f64(n_out: i64, axis_len: i64, inner: i64, x: *const T, out: *mut T);
    mean_axis => mean_axis_f32, mean_axis_f64(n_out: i64, axis_len: i64, inner: i64, x: *const T, out: *mut T);
    max_axis => max_axis_f32, max_axis_f64(n_out: i64, axis_len: i64, inner: i64, x: *const T, out: *mut T);
    max_mask_axis => max_mask_axis_f32, max_mask_axis_f64(n_lanes: i64, axis_len: i64, inner: i64, x: *const T, out: *mut T);
    argmax_axis_chunks => argmax_axis_chunks_f32, argmax_axis_chunks_f64(n_lanes: i64, axis_len: i64, inner: i64, chunks: i64, x: *const T, values: *mut T, indices: *mut i64);
    argmax_axis_finish => argmax_axis_finish_f32, argmax_axis_finish_f64(n_lanes: i64, chunks: i64, values: *const T, indices: *const i64, at: *mut i64);
    one_hot_axis => one_hot_axis_f32, one_hot_axis_f64(n: i64, axis_len: i64, inner: i64, at: *const i64, x: *const T, out: *mut T);
    sum_to => sum_to_f32, sum_to_f64(n_out: i64, idx: Strided6, big: *const T, out: *mut T);
    mul_sum_to => mul_sum_to_f32, mul_sum_to_f64(n_out: i64, idx: Strided6, big: *const T, other: *const T, out: *mut T);
    sum_to_chunks => sum_to_chunks_f32, sum_to_chunks_f64(n_out: i64, chunks: i64, idx: Strided6, big: *const T, partials: *mut T);
    mul_sum_to_chunks => mul_sum_to_chunks_f32, mul_sum_to_chunks_f64(n_out: i64, chunks: i64, idx: Strided6, big: *const T, other: *const T, partials: *mut T);
    sum_axis_chunks => sum_axis_chunks_f32, sum_axis_chunks_f64(n_out: i64, axis_len: i64, inner: i64, chunks: i64, x: *const T, partials: *mut T);
    max_axis_chunks => max_axis_chunks_f32, max_axis_chunks_f64(n_out: i64, axis_len: i64, inner: i64, chunks: i64, x: *const T, partials: *mut T);
    sum_strided_finish => sum_strided_finish_f32, sum_strided_finish_f64(n_out: i64, chunks: i64, divisor: T, partials: *const T, out: *mut T);
    max_strided_finish => max_strided_finish_f32, max_strided_finish_f64(n_out: i64, chunks: i64, divisor: T, partials: *const T, out: *mut T);
    sum_chunks => sum_chunks_f32, sum_chunks_f64(n_out: i64, n_in: i64, chunk: i64, input: *const T, out: *mut T);
    max_chunks => max_chunks_f32, max_chunks_f64(n_out: i64, n_in: i64, chunk: i64, input: *const T, out: *mut T);
    // shape.cu
    transpose => transpose_f32, transpose_f64(n: i64, rows: i64, cols: i64, x: *const T, out: *mut T);
    strided_copy => strided_copy_f32, strided_copy_f64(n: i64, idx: Strided6, x: *const T, out: *mut T);
    broadcast_to => broadcast_to_f32, broadcast_to_f64(n: i64, idx: Strided6, x: *const T, out: *mut T);
    select => select_f32, select_f64(n_out: i64, axis_len: i64, inner: i64, index: i64, x: *const T, out: *mut T);
    unselect => unselect_f32, unselect_f64(n_out: i64, axis_len: i64, inner: i64, index: i64, x: *const T, out: *mut T);
    slice_axis => slice_axis_f32, slice_axis_f64(n_out: i64, src_len: i64, len: i64, inner: i64, start: i64, x: *const T, out: *mut T);
    pad_axis => pad_axis_f32, pad_axis_f64(n_out: i64, src_len: i64, total: i64, inner: i64, start: i64, x: *const T, out: *mut T);
    gather_rows => gather_rows_f32, gather_rows_f64(n_out: i64, cols: i64, idx: *const i64, start: i64, batch_rows: i64, batches: i64, clock: *const f64, x: *const T, out: *mut T);
    // fused.cu
    bias_act => bias_act_f32, bias_act_f64(n: i64, cols: i64, act: i32, z: *const T, b: *const T, out: *mut T);
    bias_act_grad => bias_act_grad_f32, bias_act_grad_f64(cols: i64, rows: i64, runs: i64, act: i32, g: *const T, y: *const T, dz: *mut T, partials: *mut T);
    add_scaled => add_scaled_f32, add_scaled_f64(n: i64, a: *const T, b: *const T, s: T, out: *mut T);
    reparameterize => reparameterize_f32, reparameterize_f64(n: i64, mu: *const T, logvar: *const T, eps: *const T, out: *mut T);
    reparameterize_grad => reparameterize_grad_f32, reparameterize_grad_f64(n: i64, g: *const T, logvar: *const T, eps: *const T, out: *mut T);
    norm_grad => norm_grad_f32, norm_grad_f64(n: i64, x: *const T, g: *const T, y: *const T, out: *mut T);
    outer_sum_squares_chunks => outer_sum_squares_chunks_f32, outer_sum_squares_chunks_f64(rows: i64, m: i64, k: i64, chunk: i64, cd: i64, cb: i64, d: *const T, b: *const T, out: *mut T);
    outer_sum_squares_rows => outer_sum_squares_rows_f32, outer_sum_squares_rows_f64(rows: i64, cd: i64, cb: i64, chunks: *const T, sd: *mut T, sb: *mut T, partials: *mut T);
    outer_sum_squares_grad => outer_sum_squares_grad_f32, outer_sum_squares_grad_f64(n: i64, cols: i64, scale: T, g: *const T, x: *const T, other_rows: *const T, out: *mut T);
    // losses.cu
    loss_sum_partials => loss_sum_partials_f32, loss_sum_partials_f64(n: i64, term: i32, floor: T, a: *const T, b: *const T, partials: *mut T);
    loss_sum_grad => loss_sum_grad_f32, loss_sum_grad_f64(n: i64, term: i32, scale: T, floor: T, slope_floor: T, g: *const T, a: *const T, b: *const T, want_a: i32, want_b: i32, da: *mut T, db: *mut T);
    // masks.cu
    bernoulli => bernoulli_f32, bernoulli_f64(n: i64, seed: u64, counter: u64, clock: *const f64, threshold: u64, out: *mut T);
    normal => normal_f32, normal_f64(n: i64, seed: u64, counter: u64, clock: *const f64, mean: f64, stddev: f64, out: *mut T);
    // optim.cu
    adam => adam_f32, adam_f64(n: i64, p: *mut T, m: *mut T, v: *mut T, g: *const T, lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, decay: i32, t_base: i64, guard: *const f64);
    adam_multi => adam_multi_f32, adam_multi_f64(count: i64, total: i64, table: *const u64, lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, decay: i32, t_base: i64, guard: *const f64);
    sgd => sgd_f32, sgd_f64(n: i64, p: *mut T, g: *const T, lr: T, wd: T, decay: i32, skip: *const f64);
    sgd_momentum => sgd_momentum_f32, sgd_momentum_f64(n: i64, p: *mut T, buf: *mut T, g: *const T, lr: T, wd: T, decay: i32, momentum: T, keep: T, nesterov: i32, first: i32, skip: *const f64);
    loss_guard => loss_guard_f32, loss_guard_f64(loss: *const T, state: *mut f64, weight: f64);
}
