//! The GPU side of the fused ops (`kernels/cuda/fused.cu`; what each one
//! fuses is in `kernels/src/fused.rs`).

use super::reduce::{runs_for, strided_finish};
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
