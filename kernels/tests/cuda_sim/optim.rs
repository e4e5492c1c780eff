//! optim.cu against the optimisers' update formulas as the CPU runs them
//! (models/src/optim/adam.rs and sgd.rs, restated here over slices: this
//! crate cannot depend on gradtape-models), over several steps, in place.

use crate::helpers::*;
use gradtape_kernels::cuda_sim::{launch, Kernels, Sim};
use gradtape_kernels::elementwise::update3_flush_denormals;
use gradtape_kernels::optim::AdamStep;

/// Adam's step `t` with PyTorch's default hyperparameters (no guard: the
/// tests pass the guard's address themselves).
fn adam_step(t: u64, weight_decay: f64) -> AdamStep<'static> {
    AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, t, guard: None }
}

/// The `adam` kernel over one parameter, as a launch of `(grid, block)`,
/// with the guard's six numbers at `guard` (null: always update, and step
/// `s.t`; else step `t_base + guard[5]`).
fn launch_adam<T: Float>(
    (grid, block): (u32, u32),
    [p, m, v]: [&mut [T]; 3],
    g: &[T],
    s: &AdamStep,
    (t_base, guard): (i64, *const f64),
) where
    Sim: Kernels<T>,
{
    let (pp, mp, vp) = (p.as_mut_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let decay = i32::from(s.weight_decay != 0.0);
    launch(grid, block, || unsafe {
        <Sim as Kernels<T>>::adam(
            p.len() as i64,
            pp,
            mp,
            vp,
            g.as_ptr(),
            s.lr,
            s.beta1,
            s.beta2,
            s.eps,
            s.weight_decay,
            decay,
            t_base,
            guard,
        )
    });
}

/// No guard: the kernel's step is `t` itself.
fn unguarded(s: &AdamStep) -> (i64, *const f64) {
    (s.t as i64, std::ptr::null())
}

/// Adam's update on the CPU, restated over slices, with the scalars the
/// host works out ([`AdamStep::scalars`]).
fn adam_on_the_cpu<T: Float>([p, m, v]: [&mut [T]; 3], g: &[T], step: &AdamStep) {
    let (s, decay) = (step.scalars::<T>(), step.weight_decay != 0.0);
    update3_flush_denormals(p, m, v, g, |p, m, v, g| {
        let g = if decay { g + s.wd * *p } else { g };
        *m = s.beta1 * *m + s.keep1 * g;
        *v = s.beta2 * *v + s.keep2 * g * g;
        *p = *p - s.step_size * (*m / (v.sqrt() / s.bc2_sqrt + s.eps));
    });
}

fn adam_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    for &n in SIZES {
        for weight_decay in [0.0, 0.01] {
            for &(grid, block) in LAUNCHES {
                let (mut p, mut m, mut v) = (values::<T>(n, 1.0, 20), vec![T::zero(); n], vec![T::zero(); n]);
                let (mut cp, mut cm, mut cv) = (p.clone(), m.clone(), v.clone());
                for t in 1..=3u64 {
                    let g = values::<T>(n, 0.1, 20 + t);
                    let s = adam_step(t, weight_decay);
                    adam_on_the_cpu([&mut cp, &mut cm, &mut cv], &g, &s);
                    launch_adam((grid, block), [&mut p, &mut m, &mut v], &g, &s, unguarded(&s));
                    let what = |x: &str| {
                        format!("adam_{} {x} n={n} wd={weight_decay} step {t} launch {grid}x{block}", T::NAME)
                    };
                    check_exact(&what("p"), &p, &cp);
                    check_exact(&what("m"), &m, &cm);
                    check_exact(&what("v"), &v, &cv);
                }
            }
        }
    }
}

#[test]
fn adam_kernel_matches_the_cpu_update_over_three_steps_f32() {
    adam_matches_the_cpu::<f32>();
}

#[test]
fn adam_kernel_matches_the_cpu_update_over_three_steps_f64() {
    adam_matches_the_cpu::<f64>();
}

/// With a guard, the kernel's step is `t_base + guard[5]` (the steps the
/// guard recorded), and the bias corrections it works out from it are the
/// host's to the bit (compiled for the CPU, both take `beta^t` from the C
/// library's `pow`), for the first steps and for steps far into a run.
fn adam_reads_its_step_from_the_guard<T: Float>()
where
    Sim: Kernels<T>,
{
    let n = 19;
    for t in [1u64, 2, 3, 7, 1000, 65_537, 999_983, 1 << 24] {
        for (t_base, recorded) in [(t as i64, 0u64), (1, t - 1), (t as i64 - 5, 5), (-10, t + 10)] {
            let (start, g) = (values::<T>(n, 1.0, 90), values::<T>(n, 0.1, 91));
            let [mut p, mut m, mut v] =
                [start.clone(), start.clone(), start.iter().map(|x| *x * *x).collect()];
            let [mut cp, mut cm, mut cv] = [p.clone(), m.clone(), v.clone()];
            let s = adam_step(t, 0.0);
            adam_on_the_cpu([&mut cp, &mut cm, &mut cv], &g, &s);
            let guard = [0.0, -1.0, 0.0, 0.0, 0.0, recorded as f64];
            launch_adam((3, 8), [&mut p, &mut m, &mut v], &g, &s, (t_base, guard.as_ptr()));
            check_exact(&format!("adam_{} p at step {t} = {t_base} + {recorded}", T::NAME), &p, &cp);
            check_exact(&format!("adam_{} v at step {t} = {t_base} + {recorded}", T::NAME), &v, &cv);
        }
    }
}

#[test]
fn adam_reads_its_step_from_the_guard_f32() {
    adam_reads_its_step_from_the_guard::<f32>();
}

#[test]
fn adam_reads_its_step_from_the_guard_f64() {
    adam_reads_its_step_from_the_guard::<f64>();
}

fn sgd_matches_the_cpu<T: Float>()
where
    Sim: Kernels<T>,
{
    let (lr, momentum, dampening) = (T::of(0.05), T::of(0.9), 0.1);
    let keep = T::of(1.0 - dampening);
    for &n in SIZES {
        for weight_decay in [0.0, 1e-3] {
            let (wd, decay) = (T::of(weight_decay), weight_decay != 0.0);
            for &(grid, block) in LAUNCHES {
                // Plain SGD.
                let mut p = values::<T>(n, 1.0, 30);
                let mut cp = p.clone();
                for t in 1..=2u64 {
                    let g = values::<T>(n, 0.1, 30 + t);
                    for (p, &g) in cp.iter_mut().zip(&g) {
                        let g = if decay { g + wd * *p } else { g };
                        *p = *p - lr * g;
                    }
                    let pp = p.as_mut_ptr();
                    launch(grid, block, || unsafe {
                        <Sim as Kernels<T>>::sgd(
                            n as i64,
                            pp,
                            g.as_ptr(),
                            lr,
                            wd,
                            decay as i32,
                            std::ptr::null(),
                        )
                    });
                    check_exact(
                        &format!("sgd_{} n={n} wd={weight_decay} step {t} launch {grid}x{block}", T::NAME),
                        &p,
                        &cp,
                    );
                }
                // With momentum, plain and Nesterov; the first step copies g.
                for nesterov in [false, true] {
                    let (mut p, mut buf) = (values::<T>(n, 1.0, 40), vec![T::nan(); n]);
                    let (mut cp, mut cbuf) = (p.clone(), buf.clone());
                    for t in 1..=3u64 {
                        let g = values::<T>(n, 0.1, 40 + t);
                        let first = t == 1;
                        for ((p, &g), b) in cp.iter_mut().zip(&g).zip(cbuf.iter_mut()) {
                            let g = if decay { g + wd * *p } else { g };
                            *b = if first { g } else { momentum * *b + keep * g };
                            let d = if nesterov { g + momentum * *b } else { *b };
                            *p = *p - lr * d;
                        }
                        let (pp, bp) = (p.as_mut_ptr(), buf.as_mut_ptr());
                        launch(grid, block, || unsafe {
                            <Sim as Kernels<T>>::sgd_momentum(
                                n as i64,
                                pp,
                                bp,
                                g.as_ptr(),
                                lr,
                                wd,
                                decay as i32,
                                momentum,
                                keep,
                                nesterov as i32,
                                first as i32,
                                std::ptr::null(),
                            )
                        });
                        let what = |x: &str| {
                            format!("sgd_momentum_{} {x} n={n} wd={weight_decay} nesterov={nesterov} step {t} launch {grid}x{block}", T::NAME)
                        };
                        check_exact(&what("p"), &p, &cp);
                        check_exact(&what("buf"), &buf, &cbuf);
                    }
                }
            }
        }
    }
}

#[test]
fn sgd_kernels_match_the_cpu_update_with_and_without_momentum_f32() {
    sgd_matches_the_cpu::<f32>();
}

#[test]
fn sgd_kernels_match_the_cpu_update_with_and_without_momentum_f64() {
    sgd_matches_the_cpu::<f64>();
}

/// `adam_multi` (every parameter in one launch) gives each element exactly
/// the update of the per-parameter `adam` kernel, over three steps, for
/// parameters of several lengths (one of them a single element) and
/// several launch shapes.
fn adam_multi_is_adam_per_parameter<T: Float>()
where
    Sim: Kernels<T>,
{
    let lengths = [7usize, 1, 300, 33];
    for weight_decay in [0.0, 0.01] {
        for &(grid, block) in LAUNCHES {
            let mut one: Vec<[Vec<T>; 3]> = lengths
                .iter()
                .enumerate()
                .map(|(k, &n)| [values::<T>(n, 1.0, 40 + k as u64), vec![T::zero(); n], vec![T::zero(); n]])
                .collect();
            let mut all = one.clone();
            for t in 1..=3u64 {
                let s = adam_step(t, weight_decay);
                let grads: Vec<Vec<T>> = lengths
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| values::<T>(n, 0.1, 50 + 10 * t + k as u64))
                    .collect();
                for ([p, m, v], g) in one.iter_mut().zip(&grads) {
                    launch_adam((grid, block), [&mut p[..], &mut m[..], &mut v[..]], g, &s, unguarded(&s));
                }
                let mut table = Vec::new();
                for ([p, m, v], g) in all.iter_mut().zip(&grads) {
                    let n = p.len() as u64;
                    table.extend([
                        n,
                        p.as_mut_ptr() as u64,
                        m.as_mut_ptr() as u64,
                        v.as_mut_ptr() as u64,
                        g.as_ptr() as u64,
                    ]);
                }
                let total: u64 = lengths.iter().map(|&n| n as u64).sum();
                launch(grid, block, || unsafe {
                    <Sim as Kernels<T>>::adam_multi(
                        lengths.len() as i64,
                        total as i64,
                        table.as_ptr(),
                        s.lr,
                        s.beta1,
                        s.beta2,
                        s.eps,
                        s.weight_decay,
                        i32::from(s.weight_decay != 0.0),
                        t as i64,
                        std::ptr::null(),
                    )
                });
            }
            for (k, (a, b)) in all.iter().zip(&one).enumerate() {
                for (what, x, y) in [("p", &a[0], &b[0]), ("m", &a[1], &b[1]), ("v", &a[2], &b[2])] {
                    check_exact(&format!("adam_multi parameter {k} {what} launch ({grid}, {block})"), x, y);
                }
            }
        }
    }
}

#[test]
fn adam_multi_is_adam_per_parameter_f32() {
    adam_multi_is_adam_per_parameter::<f32>();
}

#[test]
fn adam_multi_is_adam_per_parameter_f64() {
    adam_multi_is_adam_per_parameter::<f64>();
}

/// `loss_guard` over a run whose third loss is NaN: it sums loss * weight
/// until then, marks that step, keeps its loss, and ignores every later one
/// (an infinity included); it counts every step it records.
fn loss_guard_stops_at_the_first_non_finite_loss<T: Float>()
where
    Sim: Kernels<T>,
{
    let mut state = [0.0f64, -1.0, 0.0, 0.0, 0.0, 0.0];
    let losses = [1.5, 2.25, f64::NAN, 3.0, f64::INFINITY];
    for &l in &losses {
        let loss = [T::of(l)];
        let sp = state.as_mut_ptr();
        launch(1, 32, || unsafe { <Sim as Kernels<T>>::loss_guard(loss.as_ptr(), sp, 8.0) });
    }
    assert_eq!(&state[..4], &[1.0, 2.0, 1.5 * 8.0 + 2.25 * 8.0, 16.0], "loss_guard_{}", T::NAME);
    assert_eq!(state[5], 5.0, "loss_guard_{}: five steps recorded", T::NAME);
    assert!(
        state[4].is_nan(),
        "loss_guard_{}: the first non-finite loss was NaN, kept {}",
        T::NAME,
        state[4]
    );
    // An infinity stops it too, and is kept as it is.
    let mut state = [0.0f64, -1.0, 0.0, 0.0, 0.0, 7.0];
    let loss = [T::of(f64::NEG_INFINITY)];
    let sp = state.as_mut_ptr();
    launch(1, 1, || unsafe { <Sim as Kernels<T>>::loss_guard(loss.as_ptr(), sp, 1.0) });
    assert_eq!(state, [1.0, 7.0, 0.0, 0.0, f64::NEG_INFINITY, 8.0], "loss_guard_{}", T::NAME);
}

#[test]
fn loss_guard_stops_at_the_first_non_finite_loss_f32() {
    loss_guard_stops_at_the_first_non_finite_loss::<f32>();
}

#[test]
fn loss_guard_stops_at_the_first_non_finite_loss_f64() {
    loss_guard_stops_at_the_first_non_finite_loss::<f64>();
}

/// With the guard's flag set, every update leaves its parameters and state
/// as they were, bit for bit; with it clear, each updates exactly as with
/// no guard at all.
fn updates_skip_while_the_guard_is_set<T: Float>()
where
    Sim: Kernels<T>,
{
    let n = 37usize;
    let g: Vec<T> = values::<T>(n, 1.0, 71);
    let start: Vec<T> = values::<T>(n, 1.0, 72);
    let s = adam_step(3, 0.1);
    for flag in [1.0f64, 0.0] {
        // The guard's six numbers, with two steps recorded: step 3 is
        // t_base 1 plus those two.
        let skip = [flag, -1.0, 0.0, 0.0, 0.0, 2.0];
        // adam, then sgd, then sgd_momentum, each on its own copy.
        let run = |skip: *const f64| {
            let (mut p, mut m, mut v) =
                (start.clone(), start.clone(), start.iter().map(|x| *x * *x).collect::<Vec<T>>());
            let clock = if skip.is_null() { unguarded(&s) } else { (1, skip) };
            launch_adam((2, 16), [&mut p, &mut m, &mut v], &g, &s, clock);
            let mut q = start.clone();
            let qp = q.as_mut_ptr();
            launch(2, 16, || unsafe {
                <Sim as Kernels<T>>::sgd(n as i64, qp, g.as_ptr(), T::of(0.1), T::of(0.01), 1, skip)
            });
            let (mut r, mut buf) = (start.clone(), start.clone());
            let (rp, bp) = (r.as_mut_ptr(), buf.as_mut_ptr());
            launch(2, 16, || unsafe {
                <Sim as Kernels<T>>::sgd_momentum(
                    n as i64,
                    rp,
                    bp,
                    g.as_ptr(),
                    T::of(0.1),
                    T::of(0.0),
                    0,
                    T::of(0.9),
                    T::one(),
                    0,
                    0,
                    skip,
                )
            });
            [p, m, v, q, r, buf]
        };
        let guarded = run(skip.as_ptr());
        let want = if flag != 0.0 {
            let v: Vec<T> = start.iter().map(|x| *x * *x).collect();
            [start.clone(), start.clone(), v, start.clone(), start.clone(), start.clone()]
        } else {
            run(std::ptr::null())
        };
        for (k, (got, want)) in guarded.iter().zip(&want).enumerate() {
            let what = ["adam p", "adam m", "adam v", "sgd p", "sgd_momentum p", "sgd_momentum buf"][k];
            check_exact(&format!("{what} with the guard at {flag} ({})", T::NAME), got, want);
        }
    }
}

#[test]
fn updates_skip_while_the_guard_is_set_f32() {
    updates_skip_while_the_guard_is_set::<f32>();
}

#[test]
fn updates_skip_while_the_guard_is_set_f64() {
    updates_skip_while_the_guard_is_set::<f64>();
}
