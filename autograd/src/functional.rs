//! Functional transforms: `grad`, `value_and_grad`, `vjp`, `jvp`, `hvp`,
//! `jacobian` and `hessian`, each one call, in the manner of `torch.func`
//! and JAX.
//!
//! Everything here is built from the one thing the engine knows how to do,
//! the backward sweep of [`grad()`](crate::grad()), applied once, twice, or
//! to a batch of seeds. No op has a rule of its own for these transforms.
//!
//! # The function is a closure
//!
//! Each transform takes the function `f` as a closure that records it on a
//! tape it is handed, and the point to evaluate at as plain tensors:
//!
//! ```
//! use gradtape::{functional::hvp, Tensor};
//!
//! // f(x) = sum(x^3): its Hessian is diag(6 x), so H v = 6 x v.
//! let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
//! let v = Tensor::from_vec(vec![1.0, -1.0], &[2]);
//! let (f, hv) = hvp(|_tape, xs| (xs[0] * xs[0] * xs[0]).sum(), &[x], &[v]);
//! assert_eq!(f.item(), 9.0);
//! assert_eq!(hv[0].data(), &[6.0, -12.0]);
//! ```
//!
//! The transform makes a fresh tape, reads each primal in as a leaf, calls
//! `f(&tape, &leaves)`, runs its sweeps and returns tensors; the tape is gone
//! when it returns. Written this way a call reads like its maths, `hvp(f, x,
//! v)`, and the ways to get a transform wrong by hand are closed off: the
//! inputs are leaves of the same tape as the output, the intermediate sweeps
//! are recorded exactly when they must be (`create_graph`), and nothing the
//! transform records is left behind on a tape of yours. Data, targets and
//! fixed weights enter `f` as constants, `tape.constant(&t)`, and are not
//! differentiated. To use one of these quantities inside a model (a penalty
//! on a Hessian-vector product, trained by gradient descent) you need it as
//! a recorded variable instead: write the two [`grad()`](crate::grad())
//! calls of the transform yourself, both with `create_graph = true`.
//!
//! To apply several transforms to one function, write it as a `fn` with
//! its lifetime spelled out and pass it by name:
//!
//! ```
//! use gradtape::{functional::{hessian, hvp}, Tape, Tensor, Var};
//!
//! fn f<'t>(_tape: &'t Tape<f64>, xs: &[Var<'t, f64>]) -> Var<'t, f64> {
//!     (xs[0] * xs[1]).sum()
//! }
//! let (x, y) = (Tensor::from_vec(vec![2.0], &[1]), Tensor::from_vec(vec![3.0], &[1]));
//! let h = hessian(f, &[x.clone(), y.clone()]);
//! let (_, hv) = hvp(f, &[x, y], &[Tensor::ones(&[1]), Tensor::zeros(&[1])]);
//! assert_eq!((h[0][1].data(), hv[1].data()), (&[1.0][..], &[1.0][..]));
//! ```
//!
//! A closure stored with `let` does not do: Rust infers its signature
//! without the link between the tape's lifetime and the output's, and the
//! call is refused with "one type is more general than the other". Written
//! inline in the call, or cast to `&dyn for<'t> Fn(&'t Tape<T>, &[Var<'t,
//! T>]) -> Var<'t, T>`, a closure is fine.
//!
//! Each transform takes several inputs at once, `f(x_1, ..., x_k)`, and
//! returns one result per input (for `hessian`, one block per pair). The
//! output of `f` is one variable: any shape for `vjp`, `jvp` and
//! `jacobian`, a single number for `hvp` and `hessian`.
//!
//! # Costs, in passes
//!
//! A *pass* is one walk over the recording: the forward pass that records
//! `f`, or one backward sweep. A backward sweep costs a small multiple of
//! the forward pass; a *recorded* one (`create_graph`) costs more, because
//! each of its steps is itself written onto the tape. A batched sweep
//! carries `B` seeds at once: one walk, `B` times the arithmetic.
//!
//! # Forward mode from two reverse passes
//!
//! Reverse mode gives `J^T u` (a vjp) for the price of a pass; forward mode
//! gives `J v` (a jvp), which reverse mode has no direct way to compute. But
//! `u -> J^T u` is a *linear* function of the cotangent `u`, and the
//! transpose of a linear map is its derivative read backwards:
//!
//! ```text
//! g(u) = J^T u                     (a backward sweep, recorded, u a leaf)
//! d/du <g(u), v> = (J^T)^T v = J v (a backward sweep over that recording)
//! ```
//!
//! So [`jvp`] records a vjp with a dummy cotangent `u` (its value does not
//! matter, since `g` is linear; zeros will do), and then sweeps that
//! recording backward from the seed `v`, with respect to `u`. Every backward
//! rule is recorded as ordinary ops, and every ordinary op already has a
//! backward rule, so the second sweep needs nothing new. This is the
//! "double-vjp trick" (also called the transpose trick); JAX derives
//! reverse mode from forward mode the other way round, by transposing.
//!
//! # Curvature from a gradient of a gradient
//!
//! For a scalar `f`, the gradient `g(x) = ∇f(x)` is a function like any
//! other, and its Jacobian is the Hessian: `H = d g / d x`. Record `g` with
//! `create_graph`, then
//!
//! - [`hvp`]: one more backward sweep with seed `v` gives `H^T v = H v`
//!   (`H` is symmetric), reverse over reverse;
//! - [`hessian`]: one more *batched* sweep with the identity as its seeds
//!   gives every row of `H` at once: the [`jacobian`] of the gradient.
//!
//! A Hessian has `n^2` entries for `n` parameters, an `hvp` only `n`: for
//! anything but a handful of parameters, ask for products, not the matrix.

// The engine's sweep is `crate::grad::grad`; this module's own `grad` is
// the transform below, so the sweep is called by its full path here.
use crate::grad::{self as sweep, grad_values, grad_values_batched};
use crate::tape::{Tape, Var};
use gradtape_kernels::{Device, Element, Tensor};

/// The gradient of a single-number `f` at `x`, one result per input, each
/// of its input's shape:
///
/// ```text
/// grad(f, x)_k = d f / d x_k
/// ```
///
/// As `torch.func.grad` and `jax.grad`, except that it returns the
/// gradient's value at one point rather than a new function. It is [`vjp`]
/// with the cotangent `1`; [`value_and_grad`] gives `f(x)` as well.
///
/// ```
/// use gradtape::{functional, Tensor};
///
/// // f(x, y) = sum(x y): d f / d x = y, d f / d y = x.
/// let (x, y) = (Tensor::from_vec(vec![1.0, 2.0], &[2]), Tensor::from_vec(vec![3.0, 4.0], &[2]));
/// let g = functional::grad(|_tape, v| (v[0] * v[1]).sum(), &[x, y]);
/// assert_eq!((g[0].data(), g[1].data()), (&[3.0, 4.0][..], &[1.0, 2.0][..]));
/// ```
///
/// Cost: one forward pass and one backward sweep; nothing recorded.
#[track_caller]
pub fn grad<T, F>(f: F, primals: &[Tensor<T>]) -> Vec<Tensor<T>>
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    gradient_at(f, primals, "grad").1
}

/// `f(x)` (a single number) and its gradient, one result per input
/// (`jax.value_and_grad`): what a training step needs, the loss to print and
/// the gradient to step along, from the same forward pass.
///
/// ```
/// use gradtape::{functional::value_and_grad, Tensor};
///
/// // f(x) = sum(x^2) / 2: its gradient is x itself.
/// let x = Tensor::from_vec(vec![3.0, -4.0], &[2]);
/// let (f, g) = value_and_grad(|_tape, v| v[0].square().sum().mul_scalar(0.5), &[x.clone()]);
/// assert_eq!(f.item(), 12.5);
/// assert_eq!(g[0].data(), x.data());
/// ```
///
/// Cost: as [`grad`].
#[track_caller]
pub fn value_and_grad<T, F>(f: F, primals: &[Tensor<T>]) -> (Tensor<T>, Vec<Tensor<T>>)
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    gradient_at(f, primals, "value_and_grad")
}

/// [`value_and_grad`], with the caller's name for the panic messages.
#[track_caller]
fn gradient_at<T, F>(f: F, primals: &[Tensor<T>], what: &str) -> (Tensor<T>, Vec<Tensor<T>>)
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, what);
    check_scalar(what, &y);
    let grads = grad_values(&[y], &xs, None);
    (y.value(), grads)
}

/// `y = f(x)` and `u^T J`, the vector-Jacobian product, one result per
/// input:
///
/// ```text
/// vjp(f, x, u)_k = (d f / d x_k)^T u = sum_o u[o] d f[o] / d x_k
/// ```
///
/// `cotangent` has the output's shape. With a single-number output and
/// `u = 1` this is the gradient. This is [`grad()`](crate::grad()) with a
/// cotangent (`torch.func.vjp`, `jax.vjp`) under the name people look for,
/// returning tensors.
///
/// Cost: one forward pass and one backward sweep; nothing recorded.
#[track_caller]
pub fn vjp<T, F>(f: F, primals: &[Tensor<T>], cotangent: &Tensor<T>) -> (Tensor<T>, Vec<Tensor<T>>)
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, "vjp");
    check_shape("vjp", "the cotangent", cotangent, "the output", &y.value());
    let grads = grad_values(&[y], &xs, Some(std::slice::from_ref(cotangent)));
    (y.value(), grads)
}

/// `y = f(x)` and `J v`, the Jacobian-vector product (the directional
/// derivative of `f` along `v`), one tangent per input:
///
/// ```text
/// jvp(f, x, v) = sum_k (d f / d x_k) v_k = d/dt f(x + t v) at t = 0
/// ```
///
/// The result has the output's shape. Computed by the double-vjp trick of
/// the [module doc](self): `g(u) = J^T u` recorded for a dummy cotangent `u`,
/// then a sweep of that recording with seed `v`, with respect to `u`.
///
/// Cost: one forward pass, one recorded backward sweep, and one backward
/// sweep over the recorded one; three or four forward passes' worth, where
/// true forward mode would be about one. Nothing is left recorded.
#[track_caller]
pub fn jvp<T, F>(f: F, primals: &[Tensor<T>], tangents: &[Tensor<T>]) -> (Tensor<T>, Tensor<T>)
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    check_tangents("jvp", primals, tangents);
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, "jvp");
    let out = y.value();
    // The dummy cotangent: any value works, g(u) = J^T u is linear in u.
    let u = tape.param(&Tensor::zeros_on(out.shape(), out.device()));
    let g = sweep::grad(&[y], &xs, Some(&[u]), true);
    // d/du sum_k <g_k(u), v_k> = J v.
    let jv = grad_values(&g, &[u], Some(tangents)).remove(0);
    (out, jv)
}

/// `f(x)` (a single number) and the Hessian-vector product `H v`, one block
/// per input, by reverse over reverse:
///
/// ```text
/// hvp(f, x, v)_i = sum_j (d^2 f / d x_i d x_j) v_j = d/dx_i <∇f(x), v>
/// ```
///
/// The gradient `∇f` is recorded (`create_graph`), then swept backward with
/// seed `v`. Since `H` is symmetric, that sweep's `H^T v` is `H v`.
///
/// Cost: one forward pass, one recorded backward sweep, one backward sweep
/// over it: about four to five forward passes, whatever the number of
/// parameters (the Hessian itself would take `n` such sweeps).
#[track_caller]
pub fn hvp<T, F>(f: F, primals: &[Tensor<T>], tangents: &[Tensor<T>]) -> (Tensor<T>, Vec<Tensor<T>>)
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    check_tangents("hvp", primals, tangents);
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, "hvp");
    check_scalar("hvp", &y);
    let g = sweep::grad(&[y], &xs, None, true);
    let hv = grad_values(&g, &xs, Some(tangents));
    (y.value(), hv)
}

/// The Jacobian of `f` with respect to each input, every row in one batched
/// backward sweep. Result `k` has shape `[output's shape..., x_k's shape...]`
/// (`torch.func.jacobian`'s layout):
///
/// ```text
/// jacobian(f, x)_k[o, i] = d f[o] / d x_k[i]
/// ```
///
/// Row `o` of `J` is the vjp with the one-hot cotangent `e_o`; the sweep
/// carries all `m` of them (the `m x m` identity, `m` the output's size) as
/// one batch, [`grad_batched`](crate::grad_batched) style.
///
/// Cost: one forward pass and one backward sweep of batch `m`. For a
/// single-number output that is the gradient, with a leading axis of
/// nothing.
#[track_caller]
pub fn jacobian<T, F>(f: F, primals: &[Tensor<T>]) -> Vec<Tensor<T>>
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, "jacobian");
    let out = y.value();
    let m = out.len();
    let seeds = identity_seeds(&[out.shape()], m, out.device()).remove(0);
    let rows = grad_values_batched(&[y], &xs, &[seeds]);
    rows.iter().zip(primals).map(|(r, x)| r.reshape(&[out.shape(), x.shape()].concat())).collect()
}

/// The Hessian of a single-number `f`, in blocks: `result[i][j]` has shape
/// `[x_i's shape..., x_j's shape...]`,
///
/// ```text
/// hessian(f, x)[i][j][a, b] = d^2 f / d x_i[a] d x_j[b]
/// ```
///
/// It is the [`jacobian`] of the gradient: `∇f` is recorded
/// (`create_graph`), then one batched sweep whose seeds are the identity over
/// all `n = sum_k n_k` gradient entries (the block of seeds for gradient
/// `i` is one-hot on the `n_i` rows that belong to it) gives every row of
/// every block at once.
///
/// Cost: one forward pass, one recorded backward sweep, one backward sweep
/// of batch `n` over it; memory for `n^2` numbers. Use [`hvp`] when `n` is
/// large.
#[track_caller]
pub fn hessian<T, F>(f: F, primals: &[Tensor<T>]) -> Vec<Vec<Tensor<T>>>
where
    T: Element,
    F: for<'t> FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let (y, xs) = record(&tape, f, primals, "hessian");
    check_scalar("hessian", &y);
    let g = sweep::grad(&[y], &xs, None, true);
    let n: usize = primals.iter().map(Tensor::len).sum();
    let device = y.value().device();
    let shapes: Vec<&[usize]> = primals.iter().map(Tensor::shape).collect();
    let seeds = identity_seeds(&shapes, n, device);
    // rows[j] is [n, x_j's shape...]: row r holds d g[r] / d x_j, where r
    // runs over the entries of every gradient, x_1's first.
    let rows = grad_values_batched(&g, &xs, &seeds);
    let mut start = 0;
    primals
        .iter()
        .map(|xi| {
            let block: Vec<Tensor<T>> = rows
                .iter()
                .zip(primals)
                .map(|(r, xj)| {
                    let per_row = xj.len();
                    let data = r.to_cpu().data()[start * per_row..(start + xi.len()) * per_row].to_vec();
                    Tensor::from_vec(data, &[xi.shape(), xj.shape()].concat()).to(device)
                })
                .collect();
            start += xi.len();
            block
        })
        .collect()
}

/// Reads the primals in as parameter leaves and records `f` on them.
#[track_caller]
fn record<'t, T, F>(
    tape: &'t Tape<T>,
    f: F,
    primals: &[Tensor<T>],
    what: &str,
) -> (Var<'t, T>, Vec<Var<'t, T>>)
where
    T: Element,
    F: FnOnce(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    assert!(!primals.is_empty(), "{what}: no inputs to differentiate with respect to");
    let xs: Vec<Var<'t, T>> = primals.iter().map(|x| tape.param(x)).collect();
    let y = f(tape, &xs);
    assert!(
        std::ptr::eq(y.tape(), tape),
        "{what}: the function returned a variable of another tape; record it on the tape it is given"
    );
    (y, xs)
}

/// One tangent per primal, each of its primal's shape.
#[track_caller]
fn check_tangents<T: Element>(what: &str, primals: &[Tensor<T>], tangents: &[Tensor<T>]) {
    assert_eq!(
        primals.len(),
        tangents.len(),
        "{what}: {} inputs but {} tangents; give one tangent per input",
        primals.len(),
        tangents.len()
    );
    for (k, (x, v)) in primals.iter().zip(tangents).enumerate() {
        check_shape(what, &format!("tangent {k}"), v, &format!("input {k}"), x);
    }
}

/// Panics unless `t` (called `name` in the message) has the shape of
/// `want` (called `against`).
#[track_caller]
fn check_shape<T: Element>(what: &str, name: &str, t: &Tensor<T>, against: &str, want: &Tensor<T>) {
    assert!(
        t.shape() == want.shape(),
        "{what}: {name} has shape {:?} but {against} has shape {:?}",
        t.shape(),
        want.shape()
    );
}

/// Panics unless `f`'s output `y` is a single number (of any rank with
/// one element), as `hvp`, `hessian` and the gradients need.
#[track_caller]
fn check_scalar<T: Element>(what: &str, y: &Var<'_, T>) {
    assert!(
        y.value().len() == 1,
        "{what}: f must return a single number, got shape {:?} (for a vector function, use jacobian or jvp)",
        y.shape()
    );
}

/// The `n x n` identity cut into batched seeds, one per output: seed `k`
/// has shape `[n, shapes[k]...]` and row `r` of it is one-hot at the entry
/// `r - offset_k` (zero if `r` lies outside output `k`'s range), where the
/// outputs' entries are numbered one after the other.
fn identity_seeds<T: Element>(shapes: &[&[usize]], n: usize, device: Device) -> Vec<Tensor<T>> {
    let mut offset = 0;
    shapes
        .iter()
        .map(|&shape| {
            let len: usize = shape.iter().product();
            let seed = Tensor::from_fill(&[&[n], shape].concat(), |e| {
                e.fill(T::zero());
                for i in 0..len {
                    e[(offset + i) * len + i] = T::one();
                }
            });
            offset += len;
            seed.to(device)
        })
        .collect()
}
