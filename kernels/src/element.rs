//! The numbers a tensor can hold.
//!
//! Training runs in `f32`, verification in `f64`. Everything generic in the
//! engine is written against [`Element`], which is a floating-point number
//! (from `num-traits`) that also knows which matrixmultiply routine
//! (`sgemm` or `dgemm`) multiplies it.

use crate::pool::Pooled;
use num_traits::{Float, FromPrimitive, ToPrimitive};
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// What a GPU buffer needs of its elements (cudarc's marker traits); with
/// the `cuda` feature off, nothing.
#[cfg(feature = "cuda")]
pub trait DeviceElement: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Sized {
    /// cuBLAS's strided-batched gemm for this type (`Sgemm` or `Dgemm`).
    ///
    /// # Safety
    /// As cuBLAS's: the configuration must describe matrices inside the
    /// three buffers, and `c` must not alias `a` or `b`.
    unsafe fn gemm_strided_batched<
        A: cudarc::driver::DevicePtr<Self>,
        B: cudarc::driver::DevicePtr<Self>,
        C: cudarc::driver::DevicePtrMut<Self>,
    >(
        blas: &cudarc::cublas::CudaBlas,
        cfg: cudarc::cublas::StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<(), cudarc::cublas::result::CublasError>;
}
/// What a GPU buffer needs of its elements; with the `cuda` feature off,
/// nothing.
#[cfg(not(feature = "cuda"))]
pub trait DeviceElement {}
#[cfg(not(feature = "cuda"))]
impl DeviceElement for f32 {}
#[cfg(not(feature = "cuda"))]
impl DeviceElement for f64 {}

/// Both precisions forward to cuBLAS's own implementation for the type.
#[cfg(feature = "cuda")]
macro_rules! device_element {
    ($t:ty) => {
        impl DeviceElement for $t {
            unsafe fn gemm_strided_batched<
                A: cudarc::driver::DevicePtr<Self>,
                B: cudarc::driver::DevicePtr<Self>,
                C: cudarc::driver::DevicePtrMut<Self>,
            >(
                blas: &cudarc::cublas::CudaBlas,
                cfg: cudarc::cublas::StridedBatchedConfig<Self>,
                a: &A,
                b: &B,
                c: &mut C,
            ) -> Result<(), cudarc::cublas::result::CublasError> {
                use cudarc::cublas::Gemm;
                blas.gemm_strided_batched(cfg, a, b, c)
            }
        }
    };
}
#[cfg(feature = "cuda")]
device_element!(f32);
#[cfg(feature = "cuda")]
device_element!(f64);

/// A floating-point element type: `f32` or `f64`.
pub trait Element:
    Float
    + FromPrimitive
    + ToPrimitive
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + Pooled
    + DeviceElement
    + 'static
{
    /// `"f32"` or `"f64"`, for messages.
    const NAME: &'static str;

    /// `C = alpha * A B + beta * C` through matrixmultiply, every operand
    /// addressed by a row stride and a column stride (so a transposed operand
    /// is read in place, by swapping its strides).
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m x k`, `k x n` and
    /// `m x n` matrices, and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// The CPU pass of [`Tensor::formula_dx`](crate::Tensor::formula_dx)
    /// (`crate::formula::formula_dx_pass`), compiled once per precision in
    /// this crate: each implementation below calls the generic pass with
    /// its own type, where a generic method would be compiled again in
    /// every crate that calls it.
    #[doc(hidden)]
    fn formula_dx_pass(formula: crate::Formula<Self>, a: &[Self], b: &[Self], c: &[Self], out: &mut [Self]);

    /// Converts from `f64`; used for literals and for seeded random numbers,
    /// which are drawn in `f64` so that a seed means the same numbers in both
    /// precisions.
    fn of(x: f64) -> Self {
        Self::from_f64(x).expect("every f64 converts to a float")
    }

    /// Converts to `f64`.
    fn as_f64(self) -> f64 {
        self.to_f64().expect("every float converts to f64")
    }

    /// `e^x` as the kernels compute it: the C library for `f64`, a
    /// vectorisable version for `f32` (see [`crate::fastmath`]).
    #[inline(always)]
    fn exp_k(self) -> Self {
        self.exp()
    }

    /// Natural logarithm as the kernels compute it.
    #[inline(always)]
    fn ln_k(self) -> Self {
        self.ln()
    }

    /// `tanh(x)` as the kernels compute it.
    #[inline(always)]
    fn tanh_k(self) -> Self {
        self.tanh()
    }

    /// The logistic sigmoid as the kernels compute it, stable for both
    /// signs.
    #[inline(always)]
    fn sigmoid_k(self) -> Self {
        if self >= Self::zero() {
            Self::one() / (Self::one() + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::one() + e)
        }
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn formula_dx_pass(formula: crate::Formula<f32>, a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
        crate::formula::formula_dx_pass(formula, a, b, c, out)
    }
    #[inline(always)]
    fn exp_k(self) -> f32 {
        crate::fastmath::exp(self)
    }
    #[inline(always)]
    fn ln_k(self) -> f32 {
        crate::fastmath::ln(self)
    }
    #[inline(always)]
    fn tanh_k(self) -> f32 {
        crate::fastmath::tanh(self)
    }
    #[inline(always)]
    fn sigmoid_k(self) -> f32 {
        crate::fastmath::sigmoid(self)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn formula_dx_pass(formula: crate::Formula<f64>, a: &[f64], b: &[f64], c: &[f64], out: &mut [f64]) {
        crate::formula::formula_dx_pass(formula, a, b, c, out)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
