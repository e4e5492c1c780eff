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

/// `a + b * s` for two tensors of one shape (checked by the caller), one
/// launch (`add_scaled` in `fused.cu`).
pub fn add_scaled<T: Element>(a: &Tensor<T>, b: &Tensor<T>, s: T) -> Tensor<T> {
    let (gpu, n) = (gpu_of(a), a.len());
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "fused.cu", kernel_name::<T>("add_scaled"), launch_for(n);
            &(n as i64), buf(a).slice(), buf(b).slice(), &s, out.slice_mut());
    }
    Tensor::from_cuda(a.dims(), out)
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

/// How many elements of a row one thread of `outer_sum_squares_chunks` sums.
const OUTER_CHUNK: usize = 256;

/// `scale * sum_l (sum_i d[l,i]^2) (sum_c b[l,c]^2)` as a 0-d tensor, with
/// the two factors' row sums of squares (`[H]` each): the rows in chunks,
/// then the rows' sums and the partials of their products, then the
/// whole-tensor reduction's levels and finish (`fused.cu`, `reduce.cu`).
pub fn outer_sum_squares<T: Element>(d: &Tensor<T>, b: &Tensor<T>, scale: T) -> [Tensor<T>; 3] {
    let gpu = gpu_of(d);
    let (rows, m, k) = (d.shape()[0], d.shape()[1], b.shape()[1]);
    let (cd, cb) = (m.div_ceil(OUTER_CHUNK), k.div_ceil(OUTER_CHUNK));
    let mut chunks = Buffer::<T>::uninit(gpu, (rows * (cd + cb)).max(1));
    if rows * (cd + cb) > 0 {
        launch!(gpu, "fused.cu", kernel_name::<T>("outer_sum_squares_chunks"), launch_for(rows * (cd + cb));
            &(rows as i64), &(m as i64), &(k as i64), &(OUTER_CHUNK as i64), &(cd as i64), &(cb as i64),
            buf(d).slice(), buf(b).slice(), chunks.slice_mut());
    }
    let (cfg, mut partials, parts) = first_level::<T>(gpu, rows);
    let (mut sd, mut sb) = (Buffer::<T>::uninit(gpu, rows.max(1)), Buffer::<T>::uninit(gpu, rows.max(1)));
    launch!(gpu, "fused.cu", kernel_name::<T>("outer_sum_squares_rows"), cfg;
        &(rows as i64), &(cd as i64), &(cb as i64), chunks.slice(), sd.slice_mut(), sb.slice_mut(),
        partials.slice_mut());
    let (partials, parts) = combine_levels(gpu, false, partials, parts);
    let mut out = Buffer::<T>::uninit(gpu, 1);
    launch!(gpu, "reduce.cu", kernel_name::<T>("sum_finish_scaled"), launch_for(1);
        &(parts as i64), &scale, partials.slice(), out.slice_mut());
    let row_sums = |buffer: Buffer<T>| {
        if rows == 0 {
            Tensor::from_cuda(Shape::from_slice(&[0]), Buffer::zeros(gpu, 0))
        } else {
            Tensor::from_cuda(Shape::from_slice(&[rows]), buffer)
        }
    };
    [Tensor::from_cuda(Shape::from_slice(&[]), out), row_sums(sd), row_sums(sb)]
}

/// The rule of [`outer_sum_squares`] for one factor `x` (`[H, cols]`), from
/// the gradient `g` (one number, read on the device) and the other factor's
/// row sums: one launch.
pub fn outer_sum_squares_grad<T: Element>(
    g: &Tensor<T>,
    x: &Tensor<T>,
    other_rows: &Tensor<T>,
    scale: T,
) -> Tensor<T> {
    let (gpu, n) = (gpu_of(x), x.len());
    let cols = x.shape()[1];
    let mut out = Buffer::<T>::uninit(gpu, n);
    if n > 0 {
        launch!(gpu, "fused.cu", kernel_name::<T>("outer_sum_squares_grad"), launch_for(n);
            &(n as i64), &(cols as i64), &scale, buf(g).slice(), buf(x).slice(), buf(other_rows).slice(),
            out.slice_mut());
    }
    Tensor::from_cuda(x.dims(), out)
}

/// `act(x W^T + b)` in one cuBLASLt call (`act` identity or ReLU: the BIAS
/// and RELU_AUX_BIAS epilogues; see `cuda/lt.rs` for the layout), `x`
/// `[rows, in]`, `W` `[out, in]`, `b` `[out]`, all non-empty; for ReLU also
/// its mask, a bit per output ([`crate::cuda::lt::relu_mask_size`]), which
/// [`linear_input_grad_through_relu`] reads. `None` where cuBLASLt cannot
/// do it: the caller takes the gemm and `bias_act`.
#[allow(clippy::type_complexity)]
pub fn linear_act<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: &Tensor<T>,
    act: crate::Act,
) -> Option<(Tensor<T>, Option<Tensor<T>>)> {
    use crate::cuda::lt::{matmul_epilogue, relu_mask_size, BiasVector, Epilogue, Extras, Problem};
    let epilogue = match act {
        crate::Act::Identity => Epilogue::Bias,
        crate::Act::Relu => Epilogue::ReluAuxBias,
        _ => return None,
    };
    let gpu = gpu_of(x);
    let (rows, inner, out) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let p = Problem::new::<T>(true, false, [out, rows, inner], epilogue)?;
    let mut y = Buffer::<T>::uninit(gpu, rows * out);
    let (ld, mask_len) = relu_mask_size::<T>(out, rows);
    let mut mask = (epilogue == Epilogue::ReluAuxBias).then(|| Buffer::<T>::uninit(gpu, mask_len));
    let extras =
        Extras { bias: BiasVector::Read(buf(b)), mask: mask.as_mut().map(|m| (BiasVector::Write(m), ld)) };
    matmul_epilogue(gpu, p, buf(w), buf(x), &mut y, extras)?;
    let mask = mask.map(|m| Tensor::from_cuda(Shape::from_slice(&[mask_len]), m));
    Some((Tensor::from_cuda(Shape::from_slice(&[rows, out]), y), mask))
}

/// The gradient of a ReLU layer's pre-activation `z_p` from the gradient
/// `dz` (`[rows, out]`) of the next layer's pre-activation, through that
/// layer's weight `W` (`[out, in]`) and the ReLU layer's `mask` (from
/// [`linear_act`]): `(dz W) * step(z_p)` and its sums over the rows, the ReLU
/// layer's bias gradient, in one cuBLASLt call (DRELU_BGRAD). `None` where
/// cuBLASLt cannot do it.
pub fn linear_input_grad_through_relu<T: Element>(
    dz: &Tensor<T>,
    w: &Tensor<T>,
    mask: &Tensor<T>,
) -> Option<(Tensor<T>, Tensor<T>)> {
    use crate::cuda::lt::{matmul_epilogue, relu_mask_size, BiasVector, Epilogue, Extras, Problem};
    let gpu = gpu_of(dz);
    let (rows, out, inner) = (dz.shape()[0], dz.shape()[1], w.shape()[1]);
    let p = Problem::new::<T>(false, false, [inner, rows, out], Epilogue::DreluBgrad)?;
    let (ld, mask_len) = relu_mask_size::<T>(inner, rows);
    assert_eq!(mask.len(), mask_len, "the ReLU mask of a [{rows}, {inner}] layer output");
    let mut dx = Buffer::<T>::uninit(gpu, rows * inner);
    let mut db = Buffer::<T>::uninit(gpu, inner);
    let extras = Extras { bias: BiasVector::Write(&mut db), mask: Some((BiasVector::Read(buf(mask)), ld)) };
    matmul_epilogue(gpu, p, buf(w), buf(dz), &mut dx, extras)?;
    Some((
        Tensor::from_cuda(Shape::from_slice(&[rows, inner]), dx),
        Tensor::from_cuda(Shape::from_slice(&[inner]), db),
    ))
}

/// A linear layer's weight and bias gradients from `dz` (`[rows, out]`,
/// the gradient of `x W^T + b`) and `x` (`[rows, in]`): `dW = dz^T x` with
/// `db`, `dz`'s sums over the rows, made by the same cuBLASLt call (the
/// BGRADB epilogue). `None` where cuBLASLt cannot do it.
pub fn linear_weight_bias_grad<T: Element>(dz: &Tensor<T>, x: &Tensor<T>) -> Option<(Tensor<T>, Tensor<T>)> {
    use crate::cuda::lt::{matmul_epilogue, BiasVector, Epilogue, Extras, Problem};
    let gpu = gpu_of(dz);
    let (rows, inner, out) = (x.shape()[0], x.shape()[1], dz.shape()[1]);
    let p = Problem::new::<T>(false, true, [inner, out, rows], Epilogue::BgradB)?;
    let mut dw = Buffer::<T>::uninit(gpu, out * inner);
    let mut db = Buffer::<T>::uninit(gpu, out);
    matmul_epilogue(
        gpu,
        p,
        buf(x),
        buf(dz),
        &mut dw,
        Extras { bias: BiasVector::Write(&mut db), mask: None },
    )?;
    Some((
        Tensor::from_cuda(Shape::from_slice(&[out, inner]), dw),
        Tensor::from_cuda(Shape::from_slice(&[out]), db),
    ))
}
