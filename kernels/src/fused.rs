//! Fused kernels: several plain ops done in one pass over memory.
//!
//! A linear layer with an activation is, in plain ops,
//!
//! ```text
//! forward:   y  = act(z + b)            z = x W^T, b broadcast along rows
//! backward:  dz = g * act'(y)           act' from the output, as the plain rules
//!            db = sum_to(dz, b.shape)   (sum over the rows)
//! ```
//!
//! which is two passes forward (the bias add, the activation) and two
//! backward (the activation's rule, the bias gradient), each reading and
//! writing the whole batch. [`Tensor::bias_act`] and
//! [`Tensor::bias_act_grad`] do each direction in one pass (one kernel
//! launch on a GPU). They compute the same numbers as the plain ops:
//!
//! - the forward and `dz` are the same formula in the same order, so the
//!   same bits;
//! - `db` adds each column's terms in the order the CPU's `sum_to` does
//!   (fixed blocks of rows, combined in order: the same bits on the CPU);
//!   on a GPU the order is the reductions' own (see `reduce.cu`).
//!
//! The derivative is taken from the output `y`, as the plain rules of
//! sigmoid and tanh do (`s (1 - s)`, `1 - t^2`); for ReLU, `step(y)` equals
//! `step(z + b)` everywhere (both 0 at the kink, NaN at NaN).

mod linear;
mod losses;
pub use losses::{log_floor, slope_floor, LossTerm};

use crate::broadcast::{add_row, reduce_rows, Rows};
use crate::element::Element;
use crate::elementwise::{relu, sigmoid, step, zip3_into, zip_into, zip_wide};
use crate::tensor::Tensor;

/// The activation of a fused layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// `y = z + b`.
    Identity,
    /// `y = max(z + b, 0)`.
    Relu,
    /// `y = 1 / (1 + e^-(z + b))`.
    Sigmoid,
    /// `y = tanh(z + b)`.
    Tanh,
}

impl Act {
    /// The name of the plain op it stands for (`relu`, ...), or `identity`.
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
        }
    }

    /// The number the CUDA kernels take for it (`fused.cu`).
    pub fn code(self) -> i32 {
        match self {
            Act::Identity => 0,
            Act::Relu => 1,
            Act::Sigmoid => 2,
            Act::Tanh => 3,
        }
    }
}

/// Rows of at least this many elements are split across rayon workers.
const ROWS_PER_TASK_ELEMENTS: usize = 1 << 15;

/// A raw pointer that may cross threads: each task writes only its own rows.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: tasks write disjoint rows through it (see its uses).
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that a closure captures the whole
    /// `Shared`, which may cross threads, and not its raw field).
    fn get(self) -> *mut T {
        self.0
    }
}

impl<T: Element> Tensor<T> {
    /// `act(self + b)` in one pass, `b` a vector as long as `self`'s last
    /// axis (a linear layer's bias): the same numbers as `(self + b)`
    /// followed by the activation, with one write of the batch instead of
    /// two.
    #[track_caller]
    pub fn bias_act(&self, b: &Tensor<T>, act: Act) -> Tensor<T> {
        let cols = self.shape().last().copied().unwrap_or(0);
        assert!(
            self.rank() >= 1 && b.shape() == [cols],
            "bias_act: the bias must be a vector as long as the last axis: shapes {:?} and {:?}",
            self.shape(),
            b.shape()
        );
        #[cfg(feature = "cuda")]
        if self.same_device(b, "bias_act").is_cuda() {
            return crate::cuda::ops::bias_act(self, b, act);
        }
        Tensor::from_fill_shape(self.dims(), |out| match act {
            Act::Identity => bias_rows(self.data(), b.data(), out, |v| v),
            Act::Relu => bias_rows(self.data(), b.data(), out, relu),
            Act::Sigmoid => bias_rows(self.data(), b.data(), out, sigmoid),
            Act::Tanh => bias_rows(self.data(), b.data(), out, T::tanh_k),
        })
    }

    /// The backward pass of [`Tensor::bias_act`] in one pass: from the
    /// gradient `self` of its output `y`, returns `(dz, db)` with
    /// `dz = self * act'(y)` and `db` its sum over the rows.
    #[track_caller]
    pub fn bias_act_grad(&self, y: &Tensor<T>, act: Act) -> (Tensor<T>, Tensor<T>) {
        assert!(
            self.rank() >= 1 && self.shape() == y.shape(),
            "bias_act_grad: the gradient and the output differ in shape: {:?} and {:?}",
            self.shape(),
            y.shape()
        );
        let cols = self.shape()[self.rank() - 1];
        if act == Act::Identity {
            return (self.clone(), self.sum_to(&[cols]));
        }
        #[cfg(feature = "cuda")]
        if self.same_device(y, "bias_act_grad").is_cuda() {
            return crate::cuda::ops::bias_act_grad(self, y, act);
        }
        let one = T::one();
        match act {
            Act::Identity => unreachable!("handled above"),
            Act::Relu => grad_rows(self, y, cols, |g, y| g * step(y)),
            Act::Sigmoid => grad_rows(self, y, cols, move |g, s| g * (s * (one - s))),
            Act::Tanh => grad_rows(self, y, cols, move |g, t| g * (one - t * t)),
        }
    }
}

impl<T: Element> Tensor<T> {
    /// A Gaussian sample by reparameterisation, `mu + exp(logvar * 0.5) *
    /// eps`, in one pass (`self` is `mu`): the same numbers as those plain
    /// ops, in the same order. All three must have one shape.
    #[track_caller]
    pub fn reparameterize(&self, logvar: &Tensor<T>, eps: &Tensor<T>) -> Tensor<T> {
        let half = T::of(0.5);
        self.with_logvar_and_eps("reparameterize", "mu", logvar, eps, move |m, lv, e| {
            m + (lv * half).exp_k() * e
        })
    }

    /// The rule of [`Tensor::reparameterize`] for `logvar`, from the
    /// gradient `self` of the sample: `g * eps * exp(logvar * 0.5) * 0.5`
    /// (the plain rules of mul, exp and mul_scalar, in their order), in one
    /// pass (`mu`'s gradient is `g` itself).
    #[track_caller]
    pub fn reparameterize_grad(&self, logvar: &Tensor<T>, eps: &Tensor<T>) -> Tensor<T> {
        let half = T::of(0.5);
        self.with_logvar_and_eps("reparameterize_grad", "the gradient", logvar, eps, move |g, lv, e| {
            g * e * (lv * half).exp_k() * half
        })
    }

    /// `self + b * s` in one pass, for two tensors of one shape: the same
    /// numbers as `b.mul_scalar(s)` and then `add`, in that order (a loss
    /// and its weighted penalty, `mse + lambda * penalty`, in one launch on
    /// a GPU instead of two). Panics, at the caller, unless the shapes are
    /// equal (the plain ops broadcast; this one does not).
    #[track_caller]
    pub fn add_scaled(&self, b: &Tensor<T>, s: T) -> Tensor<T> {
        assert!(
            self.shape() == b.shape(),
            "add_scaled: shapes {:?} and {:?} differ (it does not broadcast)",
            self.shape(),
            b.shape()
        );
        #[cfg(feature = "cuda")]
        if self.same_device(b, "add_scaled").is_cuda() {
            return crate::cuda::ops::add_scaled(self, b, s);
        }
        Tensor::from_fill_shape(self.dims(), |out| {
            zip_into(self.data(), b.data(), out, move |a, b| a + b * s)
        })
    }

    /// `f(self_i, logvar_i, eps_i)` in one pass, for the op `op` (its kernel
    /// of the same name on a GPU), after checking that the three (`self`
    /// named `what`) have one shape and one device.
    #[track_caller]
    fn with_logvar_and_eps(
        &self,
        op: &str,
        what: &str,
        logvar: &Tensor<T>,
        eps: &Tensor<T>,
        f: impl Fn(T, T, T) -> T + Sync,
    ) -> Tensor<T> {
        same_three(op, [(what, self), ("logvar", logvar), ("eps", eps)]);
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::three_inputs(self, logvar, eps, op);
        }
        Tensor::from_fill_shape(self.dims(), |out| zip3_into(self.data(), logvar.data(), eps.data(), out, f))
    }

    /// The L2 norm of all elements, `sqrt(sum x^2)`, as a 0-d tensor: the
    /// plain ops' `sum_squares().sqrt()` with the root taken in the sum's
    /// last step (on a GPU, one launch fewer), the same bits.
    pub fn norm(&self) -> Tensor<T> {
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::reduce_all(self, "sum_squares_partials", "sum_finish_sqrt");
        }
        self.sum_squares().sqrt()
    }

    /// The rule of [`Tensor::norm`], from its gradient `self` (one number)
    /// and its value `y`: `dx_i = 2 x_i (g / y * 0.5)`, the plain rules of
    /// `sqrt` and `sum_squares` in their order, in one pass (on a GPU, one
    /// launch that reads `g` and `y` there; the plain rules take three).
    /// `y = 0` gives NaN or infinities, as the plain rules do.
    #[track_caller]
    pub fn norm_grad(&self, y: &Tensor<T>, x: &Tensor<T>) -> Tensor<T> {
        assert!(
            self.len() == 1 && y.len() == 1,
            "norm_grad: the gradient {:?} and the norm {:?} must be one number each",
            self.shape(),
            y.shape()
        );
        x.same_device(self, "norm_grad");
        x.same_device(y, "norm_grad");
        #[cfg(feature = "cuda")]
        if x.is_cuda() {
            return crate::cuda::ops::three_inputs(x, self, y, "norm_grad");
        }
        let s = self.data()[0] / y.data()[0] * T::of(0.5);
        let two = T::of(2.0);
        x.map(|v| two * v * s)
    }
}

impl<T: Element> Tensor<T> {
    /// The sum of the squares of every entry of `H` outer products,
    /// `scale * sum_l (sum_i d[l,i]^2) (sum_c b[l,c]^2)` for `self = d`
    /// (`[H, m]`) and `b` (`[H, K]`): `sum_{l,i,c} (d[l,i] b[l,c])^2`
    /// without the `H m K` products. The plain ops take
    /// `(d.square().sum_axis(1) * b.square().sum_axis(1)).sum() * scale`.
    /// Returns the value (0-d) and the two row sums of squares (`[H]`
    /// each), which the rule reads. On a GPU three launches (the plain ops
    /// take nine).
    #[track_caller]
    pub fn outer_sum_squares(&self, b: &Tensor<T>, scale: T) -> [Tensor<T>; 3] {
        assert!(
            self.rank() == 2 && b.rank() == 2 && self.shape()[0] == b.shape()[0],
            "outer_sum_squares: the factors {:?} and {:?} must be matrices with one row per outer product",
            self.shape(),
            b.shape()
        );
        self.same_device(b, "outer_sum_squares");
        #[cfg(feature = "cuda")]
        if self.is_cuda() {
            return crate::cuda::ops::outer_sum_squares(self, b, scale);
        }
        // Each row's sum of squares on the widest vectors the CPU has (as
        // `sum_squares` sums a whole tensor), then their products in order.
        let row_sums = |x: &Tensor<T>| {
            let cols = x.shape()[1].max(1);
            let sums: Vec<T> = x
                .data()
                .chunks(cols)
                .map(|row| {
                    let mut total = T::zero();
                    crate::elementwise::sum2_wide(row, row, &mut total, &|v, _| v * v);
                    total
                })
                .chain(std::iter::repeat(T::zero()))
                .take(x.shape()[0])
                .collect();
            Tensor::from_vec(sums, &[x.shape()[0]])
        };
        let (sd, sb) = (row_sums(self), row_sums(b));
        let total = sd.data().iter().zip(sb.data()).fold(T::zero(), |acc, (&a, &c)| acc + a * c);
        [Tensor::from_vec(vec![total * scale], &[]), sd, sb]
    }

    /// The rule of [`Tensor::outer_sum_squares`] for one factor `x`, from
    /// the gradient `self` (one number) and the other factor's row sums of
    /// squares `other_rows`: `dx[l, i] = g scale other_rows[l] x[l, i] 2`,
    /// the plain rules of `mul_scalar`, `sum`, `mul`, `sum_axis` and
    /// `square` in their order, in one pass.
    #[track_caller]
    pub fn outer_sum_squares_grad(&self, x: &Tensor<T>, other_rows: &Tensor<T>, scale: T) -> Tensor<T> {
        assert!(
            self.len() == 1 && x.rank() == 2 && other_rows.shape() == [x.shape()[0]],
            "outer_sum_squares_grad: the gradient {:?} must be one number and the row sums {:?} one per row of {:?}",
            self.shape(),
            other_rows.shape(),
            x.shape()
        );
        x.same_device(self, "outer_sum_squares_grad");
        x.same_device(other_rows, "outer_sum_squares_grad");
        #[cfg(feature = "cuda")]
        if x.is_cuda() {
            return crate::cuda::ops::outer_sum_squares_grad(self, x, other_rows, scale);
        }
        let (s, cols, two) = (self.data()[0] * scale, x.shape()[1].max(1), T::of(2.0));
        Tensor::from_fill_shape(x.dims(), |out| {
            // Row by row, the row's factor fixed: a loop the compiler vectorises.
            for ((out, row), &r) in out.chunks_mut(cols).zip(x.data().chunks(cols)).zip(other_rows.data()) {
                let f = s * r;
                crate::elementwise::map_wide(row, out, &|v| f * v * two);
            }
        })
    }
}

/// Panics, naming the op and every shape, unless the three tensors have one
/// shape and one device.
#[track_caller]
fn same_three<T: Element>(op: &str, [a, b, c]: [(&str, &Tensor<T>); 3]) {
    assert!(
        a.1.shape() == b.1.shape() && a.1.shape() == c.1.shape(),
        "{op}: {} {:?}, {} {:?} and {} {:?} must have one shape",
        a.0,
        a.1.shape(),
        b.0,
        b.1.shape(),
        c.0,
        c.1.shape()
    );
    a.1.same_device(b.1, op);
    a.1.same_device(c.1, op);
}

/// `out[r, j] = f(z[r, j] + b[j])`, rows split across workers when large.
fn bias_rows<T: Element>(z: &[T], b: &[T], out: &mut [T], f: impl Fn(T) -> T + Sync) {
    let cols = b.len();
    if cols == 0 {
        return;
    }
    let each = |z: &[T], out: &mut [T]| {
        for (zr, or) in z.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
            zip_wide(zr, b, or, &|z, b| f(z + b));
        }
    };
    if z.len() >= crate::elementwise::parallel_threshold() {
        let rows = (ROWS_PER_TASK_ELEMENTS / cols).max(1);
        let piece = rows * cols;
        crate::elementwise::for_each_chunk(out, piece, &|i, o| each(&z[i * piece..][..o.len()], o));
    } else {
        each(z, out);
    }
}

/// `dz = f(g, y)` elementwise and `db = sum_to(dz, [cols])`, in one pass:
/// `db` through the same row blocks, in the same order, as `sum_to`.
fn grad_rows<T: Element>(
    g: &Tensor<T>,
    y: &Tensor<T>,
    cols: usize,
    f: impl Fn(T, T) -> T + Sync,
) -> (Tensor<T>, Tensor<T>) {
    let mut db = Tensor::<T>::zeros(&[cols]);
    let dz = Tensor::from_fill_shape(g.dims(), |dz: &mut [T]| {
        if cols == 0 || dz.is_empty() {
            return;
        }
        let rows = Rows::new(g.shape(), &[cols], &[]);
        let (gd, yd, out) = (g.data(), y.data(), Shared(dz.as_mut_ptr()));
        let len = rows.len;
        reduce_rows(&rows, db.data_mut(), |r, acc| {
            // SAFETY: row r of dz is written by this call alone (each row is
            // visited once), and dz outlives the pass.
            let dz_row = unsafe { std::slice::from_raw_parts_mut(out.get().add(r * len), len) };
            zip_wide(&gd[r * len..(r + 1) * len], &yd[r * len..(r + 1) * len], dz_row, &f);
            add_row(&rows, dz_row, acc);
        });
    });
    (dz, db)
}
