//! The GPU side of the fused ops (`kernels/cuda/fused.cu`; what each one
//! fuses is in `kernels/src/fused.rs`).

use super::reduce::{combine_levels, first_level, runs_for, strided_finish};
use super::*;

/// `act(z + b)`, `b` broadcast along the rows, in one launch (`fused.cu`).
pub fn bias_act<T: Element>(z: &Tensor<T>, b: &Tensor<T>, act: crate::Act) -> Tensor<T> {
    let (gpu, n) = (gpu_of(z), z.len());
    let cols = b.len();
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "fused.cu", kernel_name::<T>("bias_act"), launch_for(n);
            &(n as i64), &(cols as i64), &act.code(), buf(z).slice(), buf(b).slice(), out.slice_mut());
    }
    Tensor::from_cuda(z.dims(), out)
}

/// `(dz, db)` of `bias_act` from the gradient `g` of its output `y`: one
/// launch over the columns (split into runs of rows when there are many
/// rows, then one more to combine each column's runs in order).
pub fn bias_act_grad<T: Element>(g: &Tensor<T>, y: &Tensor<T>, act: crate::Act) -> (Tensor<T>, Tensor<T>) {
    let gpu = gpu_of(g);
    let cols = g.shape()[g.rank() - 1];
    let rows = g.len().checked_div(cols).unwrap_or(0);
    let mut dz = Buffer::<T>::uninit(gpu, g.len());
    if cols == 0 || rows == 0 {
        let db = Tensor::from_cuda(Shape::from_slice(&[cols]), Buffer::zeros(gpu, cols));
        return (Tensor::from_cuda(g.dims(), dz), db);
    }
    let runs = runs_for(cols, rows);
    let mut partials = Buffer::<T>::uninit(gpu, cols * runs);
    launch!(gpu, "fused.cu", kernel_name::<T>("bias_act_grad"), launch_for(cols * runs);
        &(cols as i64), &(rows as i64), &(runs as i64), &act.code(), buf(g).slice(), buf(y).slice(),
        dz.slice_mut(), partials.slice_mut());
    let db = if runs == 1 {
        Tensor::from_cuda(Shape::from_slice(&[cols]), partials)
    } else {
        strided_finish(gpu, false, cols, runs, T::one(), &partials, Shape::from_slice(&[cols]))
    };
    (Tensor::from_cuda(g.dims(), dz), db)
}

/// `scale * sum_i term(a_i, b_i)` as a 0-d tensor: the terms summed into
/// one partial per thread (`losses.cu`), then the whole-tensor reduction's
/// tree, whose last launch multiplies by `scale` (`reduce.cu`).
pub fn loss_sum<T: Element>(a: &Tensor<T>, b: &Tensor<T>, term: crate::LossTerm, scale: T) -> Tensor<T> {
    let (gpu, n) = (gpu_of(a), a.len());
    let (cfg, mut partials, parts) = first_level::<T>(gpu, n);
    launch!(gpu, "losses.cu", kernel_name::<T>("loss_sum_partials"), cfg;
        &(n as i64), &term.code(), &crate::fused::log_floor::<T>(), buf(a).slice(), buf(b).slice(),
        partials.slice_mut());
    let (partials, parts) = combine_levels(gpu, false, partials, parts);
    let mut out = Buffer::<T>::uninit(gpu, 1);
    launch!(gpu, "reduce.cu", kernel_name::<T>("sum_finish_scaled"), launch_for(1);
        &(parts as i64), &scale, partials.slice(), out.slice_mut());
    Tensor::from_cuda(Shape::from_slice(&[]), out)
}

/// The gradients of `loss_sum`'s inputs that `want` asks for, from the
/// loss's gradient `g` (one number, read on the device), in one launch.
pub fn loss_sum_grad<T: Element>(
    g: &Tensor<T>,
    a: &Tensor<T>,
    b: &Tensor<T>,
    term: crate::LossTerm,
    scale: T,
    want: [bool; 2],
) -> [Option<Tensor<T>>; 2] {
    let (gpu, n) = (gpu_of(a), a.len());
    if !want[0] && !want[1] {
        return [None, None];
    }
    // `first` is da if wanted, else db; `second` is db when both are.
    let mut first = Buffer::<T>::uninit(gpu, n);
    let mut second = (want[0] && want[1]).then(|| Buffer::<T>::uninit(gpu, n));
    if n > 0 {
        let first_out: &cudarc::driver::CudaSlice<T> = first.slice_mut();
        // With one output wanted, the kernel writes only that one, and both
        // of its output arguments are given it.
        let second_out: &cudarc::driver::CudaSlice<T> = match second.as_mut() {
            Some(db) => db.slice_mut(),
            None => first_out,
        };
        let (da_out, db_out) = if want[0] { (first_out, second_out) } else { (second_out, first_out) };
        launch!(gpu, "losses.cu", kernel_name::<T>("loss_sum_grad"), launch_for(n);
            &(n as i64), &term.code(), &scale, &crate::fused::log_floor::<T>(),
            &crate::fused::slope_floor::<T>(), buf(g).slice(),
            buf(a).slice(), buf(b).slice(), &i32::from(want[0]), &i32::from(want[1]), da_out, db_out);
    }
    let wrap = |buffer: Buffer<T>| Tensor::from_cuda(a.dims(), buffer);
    match (want[0], second) {
        (true, Some(db)) => [Some(wrap(first)), Some(wrap(db))],
        (true, None) => [Some(wrap(first)), None],
        (false, _) => [None, Some(wrap(first))],
    }
}

/// The fused kernel `name` of `fused.cu` over three tensors, one launch
/// with one thread per element of `first` (whose shape the result takes):
/// `reparameterize` (`mu + exp(logvar * 0.5) * eps`) or its rule
/// `reparameterize_grad` (`g * (exp(logvar * 0.5) * eps) * 0.5`), three of
/// one shape; or the norm's rule `norm_grad` (`x`, then its gradient and
/// its value, one number each).
pub fn three_inputs<T: Element>(
    first: &Tensor<T>,
    second: &Tensor<T>,
    third: &Tensor<T>,
    name: &str,
) -> Tensor<T> {
    let (gpu, n) = (gpu_of(first), first.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "fused.cu", kernel_name::<T>(name), launch_for(n);
            &(n as i64), buf(first).slice(), buf(second).slice(), buf(third).slice(), out.slice_mut());
    }
    Tensor::from_cuda(first.dims(), out)
}
