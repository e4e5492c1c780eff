//! The GPU side of the optimisers' updates, in place (`kernels/cuda/optim.cu`):
//! Adam one parameter at a time or every parameter in one launch, and SGD.

use super::*;
use crate::optim::AdamStep;
use std::cell::{Cell, RefCell};

/// Adam's update of one parameter, in place on the device (see
/// `optim.cu`): the kernel works out the step's scalars from `s` itself.
pub fn adam<T: Element>(
    p: &mut Tensor<T>,
    m: &mut Tensor<T>,
    v: &mut Tensor<T>,
    g: &Tensor<T>,
    s: &AdamStep,
) {
    let n = p.len();
    if n == 0 {
        return;
    }
    let gpu = Arc::clone(gpu_of(p));
    let (t_base, guard) = adam_clock(&gpu, s);
    let decay = i32::from(s.weight_decay != 0.0);
    let (ps, ms, vs) = (p.cuda_buffer_mut(), m.cuda_buffer_mut(), v.cuda_buffer_mut());
    launch!(&gpu, "optim.cu", kernel_name::<T>("adam"), launch_for(n);
        &(n as i64), ps.slice_mut(), ms.slice_mut(), vs.slice_mut(), buf(g).slice(),
        &s.lr, &s.beta1, &s.beta2, &s.eps, &s.weight_decay, &decay, &t_base, &guard);
}

/// Where an Adam kernel finds its step `t`: with a guard, `t` is
/// `t_base + ` the steps the guard has recorded on the device (its step
/// clock, advanced by `loss_guard` before each step's update), and `t_base
/// = t - ` the records the host has queued, the same at every step of a
/// loop; without one, `t_base` is `t` and the guard's address is null.
fn adam_clock(gpu: &Arc<Gpu>, s: &AdamStep) -> (i64, u64) {
    let recorded = s.guard.map_or(0, crate::LossGuard::steps);
    (s.t as i64 - recorded as i64, guard_address(gpu, s.guard.map(crate::LossGuard::flag)))
}

/// The training loop's guard (`crate::guard`): one thread reads the step's
/// loss on the device and updates the guard's six numbers (`loss_guard` in
/// `optim.cu`). Queued; nothing waits.
pub fn loss_guard<T: Element>(loss: &Tensor<T>, state: &mut Tensor<f64>, weight: f64) {
    let gpu = Arc::clone(gpu_of(loss));
    let st = state.cuda_buffer_mut();
    launch!(&gpu, "optim.cu", kernel_name::<T>("loss_guard"), launch_for(1);
        buf(loss).slice(), st.slice_mut(), &weight);
}

/// Adam's update of every parameter in one launch (`adam_multi` in
/// `optim.cu`), its scalars worked out in the kernel from `s`: a table of
/// each parameter's length and the device addresses
/// of its value, moments and gradient is read from the device, and one grid
/// covers all their elements. Each element gets exactly the per-parameter
/// kernel's update. The table is copied to the device only when it changed
/// ([`adam_table`]): in a training loop, from the second step on, the step
/// copies nothing.
pub fn adam_multi<T: Element>(
    params: &mut [&mut Tensor<T>],
    ms: &mut [Tensor<T>],
    vs: &mut [Tensor<T>],
    grads: &[Tensor<T>],
    s: &AdamStep,
) {
    use cudarc::driver::{DevicePtr, DevicePtrMut};
    let gpu = Arc::clone(gpu_of(params[0]));
    let stream = Arc::clone(&gpu.stream);
    let mut table: Vec<u64> = Vec::with_capacity(5 * params.len());
    for (((p, m), v), g) in params.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(grads) {
        if p.is_empty() {
            continue;
        }
        let n = p.len() as u64;
        // Each buffer made unique first (copy on write), then its address.
        let pa = p.cuda_buffer_mut().slice_mut().device_ptr_mut(&stream).0;
        let ma = m.cuda_buffer_mut().slice_mut().device_ptr_mut(&stream).0;
        let va = v.cuda_buffer_mut().slice_mut().device_ptr_mut(&stream).0;
        let ga = buf(g).slice().device_ptr(&stream).0;
        table.extend([n, pa, ma, va, ga]);
    }
    let count = table.len() / 5;
    if count == 0 {
        return;
    }
    let total: u64 = table.iter().step_by(5).sum();
    let rows = adam_table(&gpu, table);
    let (t_base, guard) = adam_clock(&gpu, s);
    let decay = i32::from(s.weight_decay != 0.0);
    launch!(&gpu, "optim.cu", kernel_name::<T>("adam_multi"), launch_for(total as usize);
        &(count as i64), &(total as i64), rows.slice(),
        &s.lr, &s.beta1, &s.beta2, &s.eps, &s.weight_decay, &decay, &t_base, &guard);
}

/// A table of addresses `adam_multi` used on one device, and its copy there.
struct HeldTable {
    ordinal: usize,
    table: Vec<u64>,
    rows: Buffer<u64>,
}

thread_local! {
    /// The table the last `adam_multi` on this thread used, per device.
    /// Per thread: a training loop is one thread, and two loops on two
    /// threads never evict each other's table.
    static ADAM_TABLES: RefCell<Vec<HeldTable>> = const { RefCell::new(Vec::new()) };
    /// Tables copied to a device by this thread (for the tests).
    static ADAM_TABLE_UPLOADS: Cell<u64> = const { Cell::new(0) };
}

/// The device copy of `table` on `gpu`: the one already there if it holds
/// the same numbers, else a fresh copy that replaces it. A training loop
/// hands Adam the same buffers at every step (the parameters and moments are
/// updated in place, and the pool gives a step's gradients back in the same
/// order), so after the first step the table is the same and is not copied
/// again; the kernel only reads it, and every use is queued on the one
/// stream, so sharing it between steps is safe.
fn adam_table(gpu: &Arc<Gpu>, table: Vec<u64>) -> Buffer<u64> {
    ADAM_TABLES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(held) = cache.iter().find(|held| held.ordinal == gpu.ordinal && held.table == table) {
            return held.rows.clone();
        }
        let rows = Buffer::<u64>::upload(gpu, &table);
        ADAM_TABLE_UPLOADS.with(|n| n.set(n.get() + 1));
        cache.retain(|held| held.ordinal != gpu.ordinal);
        cache.push(HeldTable { ordinal: gpu.ordinal, table, rows: rows.clone() });
        rows
    })
}

/// How many tables of addresses `adam_multi` has copied to a device from
/// this thread.
pub fn adam_table_uploads() -> u64 {
    ADAM_TABLE_UPLOADS.with(Cell::get)
}

/// SGD's update of one parameter, in place; with momentum when `buffer` is
/// given (`first`: the buffer is set to the gradient rather than updated).
pub fn sgd<T: Element>(
    p: &mut Tensor<T>,
    g: &Tensor<T>,
    buffer: Option<&mut Tensor<T>>,
    [lr, wd, momentum, keep]: [T; 4],
    [decay, nesterov, first]: [bool; 3],
    skip: Option<&Tensor<f64>>,
) {
    let n = p.len();
    if n == 0 {
        return;
    }
    let gpu = Arc::clone(gpu_of(p));
    let skip = guard_address(&gpu, skip);
    let ps = p.cuda_buffer_mut();
    match buffer {
        None => launch!(&gpu, "optim.cu", kernel_name::<T>("sgd"), launch_for(n);
            &(n as i64), ps.slice_mut(), buf(g).slice(), &lr, &wd, &i32::from(decay), &skip),
        Some(b) => {
            let bs = b.cuda_buffer_mut();
            launch!(&gpu, "optim.cu", kernel_name::<T>("sgd_momentum"), launch_for(n);
                &(n as i64), ps.slice_mut(), bs.slice_mut(), buf(g).slice(), &lr, &wd, &i32::from(decay),
                &momentum, &keep, &i32::from(nesterov), &i32::from(first), &skip);
        }
    }
}
