//! Timing in the same way as the PyTorch peer script (`torch_bench.py`):
//! a few warm-up steps, then groups of five steps for a fixed time, and the
//! median rate of the groups.

use std::time::{Duration, Instant};

/// Median rate (units per second) of `step`, which does `units_per_step`
/// units of work, measured over about `seconds` after `warmup` steps.
pub fn rate<R>(mut step: impl FnMut() -> R, units_per_step: f64, seconds: f64, warmup: usize) -> (f64, R) {
    let mut last = step();
    for _ in 1..warmup {
        last = step();
    }
    let mut samples = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end || samples.is_empty() {
        let t0 = Instant::now();
        for _ in 0..5 {
            last = step();
        }
        samples.push(units_per_step * 5.0 / t0.elapsed().as_secs_f64());
    }
    (median(&mut samples), last)
}

/// Median of a non-empty list.
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN timings"));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}
