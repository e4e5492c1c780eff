//! cuBLASLt: matrix products whose epilogue does a layer's bias work as the
//! product is written, so that a linear layer takes one call where a gemm
//! and a kernel took two.
//!
//! cuBLASLt's `cublasLtMatmul` computes `D = alpha op(A) op(B) + beta C` as
//! cuBLAS's gemm does, then applies an epilogue to each output (NVIDIA's
//! `cublasLtEpilogue_t`; column-major, `D` `m x n`, `bias` `m` numbers
//! unless said otherwise):
//!
//! ```text
//! BIAS       D(i, j) = Z(i, j) + bias[i]
//! RELU_BIAS  D(i, j) = max(Z(i, j) + bias[i], 0)
//! BGRADB     D = Z, and bias[j] = sum_l op(B)(l, j)   (n numbers: op(B)'s column sums)
//! RELU_AUX_BIAS   RELU_BIAS, and the ReLU's mask (a bit per output) into an aux buffer
//! DRELU_BGRAD     D = Z where that mask is set, else 0; bias[i] = sum_j D(i, j)
//! ```
//!
//! A row-major `y = x W^T + b` (`x` `[rows, in]`, `W` `[out, in]`) is the
//! column-major `y^T = W x^T`, `out x rows`: `A = W` read transposed, `B =
//! x` as stored, and the bias runs down D's columns, one per feature, which
//! is BIAS or RELU_BIAS. A weight's gradient `dW = dz^T x` is the
//! column-major `dW^T = x^T dz`, `in x out`: `B = dz` read transposed, so
//! `op(B)`'s column sums are `dz`'s sums over the rows, the bias gradient,
//! which is BGRADB. (`matmul` in `ops.rs` explains the row-major and
//! column-major swap.)
//!
//! Each distinct problem (type, sizes, transposes, epilogue) is planned
//! once: its descriptors are made and `cublasLtMatmulAlgoGetHeuristic`
//! picks the algorithm, kept for every later call; a call then sets the
//! bias pointer and queues the product. Where cuBLASLt offers no algorithm
//! (an epilogue a device or a type does not support), the plan remembers
//! that and [`matmul_epilogue`] returns `None`: the caller does the same
//! work with a gemm and a kernel. The ReLU epilogue follows cuBLASLt: a NaN
//! before the ReLU comes out as 0, where the `relu` kernel lets it through.

use super::buffer::expect_ok;
use super::{Buffer, Gpu};
use crate::element::Element;
use cudarc::cublaslt::result as lt;
use cudarc::cublaslt::sys;
use cudarc::driver::{DevicePtr, DevicePtrMut};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// The epilogues gradtape asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// `D = Z + bias` (bias down the columns).
    Bias,
    /// `D = max(Z + bias, 0)`.
    ReluBias,
    /// `D = Z`, and the column sums of `op(B)` into the bias pointer.
    BgradB,
    /// `D = max(Z + bias, 0)`, and where `Z + bias > 0` as bits into the
    /// aux buffer.
    ReluAuxBias,
    /// `D = Z` where the aux buffer's bit is set, else 0, and `D`'s row
    /// sums into the bias pointer: the ReLU's derivative and its layer's
    /// bias gradient, in the product that makes the layer's gradient.
    DreluBgrad,
}

/// The ReLU mask of an `m x n` output (`D`, column-major): its leading
/// dimension in bits (`m` rounded up to 128, as cuBLASLt requires) and its
/// length in elements of `T` (the mask lives in a tensor's buffer).
pub fn relu_mask_size<T>(m: usize, n: usize) -> (i64, usize) {
    let ld = m.div_ceil(128).max(1) * 128;
    let bytes = ld / 8 * n;
    (ld as i64, bytes.div_ceil(std::mem::size_of::<T>()).max(1))
}

impl Epilogue {
    fn code(self) -> sys::cublasLtEpilogue_t {
        match self {
            Epilogue::Bias => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
            Epilogue::ReluBias => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU_BIAS,
            Epilogue::BgradB => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BGRADB,
            Epilogue::ReluAuxBias => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
            Epilogue::DreluBgrad => sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DRELU_BGRAD,
        }
    }
}

/// One product cuBLASLt is asked for, column-major: `D (m x n) = op(A) op(B)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// Whether the numbers are `f64` (else `f32`).
    pub double: bool,
    /// Whether A and B are read transposed.
    pub ta: bool,
    /// See `ta`.
    pub tb: bool,
    /// Rows of D.
    pub m: u64,
    /// Columns of D.
    pub n: u64,
    /// The inner length.
    pub k: u64,
    /// The epilogue.
    pub epilogue: Epilogue,
}

impl Problem {
    /// The product `D (m x n) = op(A) op(B)` with inner length `k` in
    /// `T`'s precision, or `None` when a size is 0 (cuBLASLt refuses empty
    /// matrices; the caller takes the gemm, which handles them).
    pub fn new<T: Element>(ta: bool, tb: bool, [m, n, k]: [usize; 3], epilogue: Epilogue) -> Option<Problem> {
        let (double, [m, n, k]) = (T::NAME == "f64", [m, n, k].map(|x| x as u64));
        (m > 0 && n > 0 && k > 0).then_some(Problem { double, ta, tb, m, n, k, epilogue })
    }
}

/// A planned problem: its descriptor, its four layouts (C is D) and the
/// algorithm the heuristic chose.
struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    a: sys::cublasLtMatrixLayout_t,
    b: sys::cublasLtMatrixLayout_t,
    d: sys::cublasLtMatrixLayout_t,
    algo: sys::cublasLtMatmulAlgo_t,
    workspace: usize,
}

/// cuBLASLt on one device: its handle, a workspace, and the plans so far
/// (`None` for a problem cuBLASLt offered no algorithm for).
pub struct Lt {
    handle: sys::cublasLtHandle_t,
    workspace: Buffer<u8>,
    plans: Mutex<HashMap<Problem, Option<Plan>>>,
}

// SAFETY: the handle and the plans' descriptors are only used under the
// `plans` lock (cuBLASLt's objects are plain host data; the product runs
// on the device's one stream).
unsafe impl Send for Lt {}
unsafe impl Sync for Lt {}

/// The workspace cuBLASLt may use: 4 MiB, 32 MiB from Hopper on (what
/// NVIDIA recommends for each).
fn workspace_bytes(arch: &str) -> usize {
    let major: u32 = arch.trim_start_matches("sm_").get(..1).and_then(|d| d.parse().ok()).unwrap_or(8);
    if major >= 9 {
        32 << 20
    } else {
        4 << 20
    }
}

impl Lt {
    /// cuBLASLt for `gpu` (its context bound), or `None` where the library
    /// is missing, refuses a handle, or `GRADTAPE_NO_CUBLASLT=1` turns it
    /// off (for an A/B run): products then take the gemm path.
    pub(crate) fn open(gpu: &Arc<Gpu>) -> Option<Lt> {
        if std::env::var("GRADTAPE_NO_CUBLASLT").is_ok_and(|v| v == "1") {
            return None;
        }
        // SAFETY: only tries to open the shared library.
        if !unsafe { sys::is_culib_present() } {
            return None;
        }
        gpu.bind();
        let handle = lt::create_handle().ok()?;
        let workspace = Buffer::<u8>::zeros(gpu, workspace_bytes(&gpu.arch));
        Some(Lt { handle, workspace, plans: Mutex::new(HashMap::new()) })
    }

    /// Plans `p` (once): `None` if cuBLASLt has no algorithm for it.
    fn plan(&self, p: Problem) -> Result<Plan, lt::CublasError> {
        let (ty, compute) = if p.double {
            (sys::cudaDataType_t::CUDA_R_64F, sys::cublasComputeType_t::CUBLAS_COMPUTE_64F)
        } else {
            (sys::cudaDataType_t::CUDA_R_32F, sys::cublasComputeType_t::CUBLAS_COMPUTE_32F)
        };
        let op = |t: bool| {
            if t {
                cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        // Stored shapes, packed: A is m x k (k x m transposed), B k x n (n x k).
        let (a_rows, a_cols) = if p.ta { (p.k, p.m) } else { (p.m, p.k) };
        let (b_rows, b_cols) = if p.tb { (p.n, p.k) } else { (p.k, p.n) };
        let ld = |rows: u64| rows.max(1) as i64;
        let desc = lt::create_matmul_desc(compute, ty)?;
        let set = |attr, value: *const c_void, size| {
            // SAFETY: `desc` is live and `value` points at `size` bytes.
            unsafe { lt::set_matmul_desc_attribute(desc, attr, value, size) }
        };
        let (ta, tb, epilogue) = (op(p.ta), op(p.tb), p.epilogue.code());
        use sys::cublasLtMatmulDescAttributes_t as Attr;
        set(
            Attr::CUBLASLT_MATMUL_DESC_TRANSA,
            (&ta as *const cudarc::cublas::sys::cublasOperation_t).cast(),
            4,
        )?;
        set(
            Attr::CUBLASLT_MATMUL_DESC_TRANSB,
            (&tb as *const cudarc::cublas::sys::cublasOperation_t).cast(),
            4,
        )?;
        set(Attr::CUBLASLT_MATMUL_DESC_EPILOGUE, (&epilogue as *const sys::cublasLtEpilogue_t).cast(), 4)?;
        if matches!(p.epilogue, Epilogue::ReluAuxBias | Epilogue::DreluBgrad) {
            // The mask's leading dimension is part of the problem: the
            // heuristic checks it.
            let (mask_ld, _) = relu_mask_size::<u8>(p.m as usize, p.n as usize);
            set(Attr::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, (&mask_ld as *const i64).cast(), 8)?;
        }
        let a = lt::create_matrix_layout(ty, a_rows, a_cols, ld(a_rows))?;
        let b = lt::create_matrix_layout(ty, b_rows, b_cols, ld(b_rows))?;
        let d = lt::create_matrix_layout(ty, p.m, p.n, ld(p.m))?;
        let pref = lt::create_matmul_pref()?;
        let workspace = self.workspace.len();
        // SAFETY: `pref` is live; the value is a usize.
        let chosen = unsafe {
            lt::set_matmul_pref_attribute(
                pref,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&workspace as *const usize).cast(),
                std::mem::size_of::<usize>(),
            )
            .and_then(|()| lt::get_matmul_algo_heuristic(self.handle, desc, a, b, d, d, pref))
        };
        // SAFETY: made above, used no more.
        unsafe { lt::destroy_matmul_pref(pref)? };
        match chosen {
            Ok(result) => Ok(Plan { desc, a, b, d, algo: result.algo, workspace: result.workspaceSize }),
            Err(e) => {
                // SAFETY: made above, used no more.
                unsafe {
                    lt::destroy_matmul_desc(desc)?;
                    for layout in [a, b, d] {
                        lt::destroy_matrix_layout(layout)?;
                    }
                }
                Err(e)
            }
        }
    }
}

/// The epilogue's vector: read (BIAS, RELU_BIAS) or written (BGRADB,
/// DRELU_BGRAD); the same for the ReLU mask (written by RELU_AUX_BIAS, read
/// by DRELU_BGRAD).
pub enum BiasVector<'a, T: Element> {
    /// A bias the epilogue adds.
    Read(&'a Buffer<T>),
    /// Where the epilogue writes a bias gradient.
    Write(&'a mut Buffer<T>),
}

/// [`matmul_epilogue`]'s inputs and outputs beside the product: the bias
/// vector and, for the ReLU mask's epilogues, the mask and its leading
/// dimension in bits ([`relu_mask_size`]).
pub struct Extras<'a, T: Element> {
    /// The bias, or where its gradient goes.
    pub bias: BiasVector<'a, T>,
    /// The ReLU mask (RELU_AUX_BIAS writes it, DRELU_BGRAD reads it).
    pub mask: Option<(BiasVector<'a, T>, i64)>,
}

/// `D = op(A) op(B)` with `p`'s epilogue, on `gpu`'s stream: `a`, `b` and
/// `d` packed column-major matrices as `p` describes, `bias` the
/// epilogue's vector. Returns `None`, having queued nothing, where cuBLASLt
/// is missing or has no algorithm for `p`.
pub fn matmul_epilogue<T: Element>(
    gpu: &Arc<Gpu>,
    p: Problem,
    a: &Buffer<T>,
    b: &Buffer<T>,
    d: &mut Buffer<T>,
    extras: Extras<'_, T>,
) -> Option<()> {
    let lt = gpu.lt()?;
    assert_eq!(p.double, T::NAME == "f64", "a problem made for another precision (Problem::new)");
    let mut plans = lt.plans.lock().unwrap_or_else(|e| e.into_inner());
    let plan = plans.entry(p).or_insert_with(|| lt.plan(p).ok()).as_ref()?;
    gpu.bind();
    let stream = &gpu.stream;
    let (one, zero) = (T::one(), T::zero());
    // SAFETY: the plan's layouts describe `a`, `b` and `d` (packed, sizes
    // checked by the caller), `bias` holds the epilogue's vector, and the
    // workspace outlives the queued product (it lives as long as `lt`).
    let queued = unsafe {
        let address = |v: BiasVector<'_, T>| match v {
            BiasVector::Read(v) => v.slice().device_ptr(stream).0,
            BiasVector::Write(v) => v.slice_mut().device_ptr_mut(stream).0,
        };
        use sys::cublasLtMatmulDescAttributes_t as Attr;
        let set = |attr, value: &u64| {
            lt::set_matmul_desc_attribute(
                plan.desc,
                attr,
                (value as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        let bias_ptr = address(extras.bias);
        let mut set_bias = set(Attr::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr);
        if let Some((mask, ld)) = extras.mask {
            let mask_ptr = address(mask);
            set_bias = set_bias
                .and_then(|()| set(Attr::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &mask_ptr))
                .and_then(|()| set(Attr::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &(ld as u64)));
        }
        let (a_ptr, _a) = a.slice().device_ptr(stream);
        let (b_ptr, _bb) = b.slice().device_ptr(stream);
        let (d_ptr, _d) = d.slice_mut().device_ptr_mut(stream);
        let (w_ptr, _w) = lt.workspace.slice().device_ptr(stream);
        super::ops::count_launch();
        set_bias.and_then(|()| {
            lt::matmul(
                lt.handle,
                plan.desc,
                (&one as *const T).cast(),
                (&zero as *const T).cast(),
                a_ptr as *const c_void,
                plan.a,
                b_ptr as *const c_void,
                plan.b,
                d_ptr as *const c_void,
                plan.d,
                d_ptr as *mut c_void,
                plan.d,
                &plan.algo,
                w_ptr as *mut c_void,
                plan.workspace.min(lt.workspace.len()),
                stream.cu_stream() as sys::cudaStream_t,
            )
        })
    };
    expect_ok(queued, "cuBLASLt matmul");
    super::ops::wait_if_debugging(gpu, "cuBLASLt matmul");
    Some(())
}
