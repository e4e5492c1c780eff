//! Running a whole training loop on one of rayon's workers.
//!
//! The kernels split large products and elementwise passes across rayon's
//! worker threads. Called from the program's main thread, each parallel
//! pass hands its pieces to the workers and the main thread sleeps until
//! they are done; in between, the main thread does the serial work (small
//! ops, the tape) while the workers, just finished, spin for a moment
//! looking for more. On a two-core machine that is three busy threads on two
//! cores, and the serial work runs slower for it.
//!
//! [`on_worker`] moves a loop onto a worker instead: the worker that runs it
//! does the serial work and takes its own share of every parallel pass, and
//! the main thread sleeps throughout. Nothing changes in the results; the
//! same passes are split the same way.
//!
//! [`on_worker_kept_awake`] (what training uses) also keeps the other
//! workers from falling asleep between parallel passes, so that a split pass
//! does not wait for one to be woken. [`on_worker_for`] picks between the
//! two by device: a loop whose work runs on a GPU leaves the CPU workers
//! nothing to take, and keeping them awake there would only keep every core
//! of the host busy polling.

use crate::device::Device;
use rayon::Yield;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `f` on a rayon worker of the global pool (directly, if this thread
/// already is one) and returns its result; panics in `f` propagate.
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    // Called from outside the pool, `rayon::scope` runs its body on a worker
    // and blocks this thread until it returns.
    rayon::scope(|_| f())
}

/// [`on_worker`], with every other worker of the pool kept awake until `f`
/// returns: each polls for work ([`rayon::yield_now`]) instead of going to
/// sleep when it finds none.
///
/// Why: between two parallel passes of a training step the serial work
/// (small ops, the tape) lasts long enough for rayon's idle workers to fall
/// asleep, and waking one costs more than the pass it was woken for. On the
/// two-core benchmark machine a split elementwise pass of 16,384 numbers
/// took 17.8 us instead of 1.9 us serially, nearly all of it the wake-up,
/// and the `vae` workload ran no faster on two threads than on one. Kept
/// awake, a worker picks up its half of a product at once. This is what
/// OpenMP runtimes (PyTorch's) and Eigen's pool (JAX's) do between parallel
/// regions; the price is a busy core while training runs, which uses that
/// core anyway. Results do not change: the same passes split the same way.
pub fn on_worker_kept_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    on_worker(|| {
        let helpers = rayon::current_num_threads().saturating_sub(1);
        if helpers == 0 {
            return f();
        }
        let caller = rayon::current_thread_index();
        let done = AtomicBool::new(false);
        rayon::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|_| {
                    // The caller may pick this job up itself while it waits
                    // inside `f`; it must not spin there, or `f` never ends.
                    if rayon::current_thread_index() == caller {
                        return;
                    }
                    while !done.load(Ordering::Acquire) {
                        if let Some(Yield::Idle) = rayon::yield_now() {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
            // Set on the way out, a panic in `f` included, so that the
            // scope's wait for the helpers ends.
            let _release = Release(&done);
            f()
        })
    })
}

/// [`on_worker_kept_awake`] for a loop whose tensors live on the CPU, plain
/// [`on_worker`] for one whose tensors live on a GPU (where the kernels
/// never hand work to rayon's workers).
pub fn on_worker_for<R: Send>(device: Device, f: impl FnOnce() -> R + Send) -> R {
    if device.is_cuda() {
        on_worker(f)
    } else {
        on_worker_kept_awake(f)
    }
}

/// Sets its flag when dropped.
struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closure_runs_on_a_worker_and_its_result_comes_back() {
        let (index, value) = on_worker(|| (rayon::current_thread_index(), 6 * 7));
        assert!(index.is_some(), "ran outside the pool");
        assert_eq!(value, 42);
        // A nested call runs in place, on the same worker.
        let (outer, inner) =
            on_worker(|| (rayon::current_thread_index(), on_worker(rayon::current_thread_index)));
        assert_eq!(outer, inner);
    }

    #[test]
    #[should_panic(expected = "inside the worker")]
    fn a_panic_inside_reaches_the_caller() {
        on_worker(|| panic!("inside the worker"));
    }

    #[test]
    fn kept_awake_the_other_workers_still_take_work_and_the_call_ends() {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        let (sum, ran_on) = pool.install(|| {
            on_worker_kept_awake(|| {
                // A parallel pass from inside: the kept-awake worker takes
                // part of it (which threads ran it is recorded).
                let threads = std::sync::Mutex::new(std::collections::BTreeSet::new());
                let sum: u64 = (0..200u64)
                    .into_par_iter()
                    .map(|i| {
                        threads.lock().expect("lock").insert(rayon::current_thread_index());
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        i
                    })
                    .sum();
                (sum, threads.into_inner().expect("lock").len())
            })
        });
        assert_eq!(sum, 199 * 200 / 2);
        assert_eq!(ran_on, 2, "the pass ran on one worker only");
    }

    #[test]
    #[should_panic(expected = "inside, kept awake")]
    fn a_panic_while_kept_awake_reaches_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        pool.install(|| on_worker_kept_awake(|| panic!("inside, kept awake")));
    }

    #[test]
    fn kept_awake_on_one_thread_just_runs() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool");
        assert_eq!(pool.install(|| on_worker_kept_awake(|| 6 * 7)), 42);
    }

    /// CPU time (user plus system, in clock ticks) of this process's
    /// threads whose names start with `prefix`, from `/proc`.
    #[cfg(target_os = "linux")]
    fn cpu_ticks_of_threads_named(prefix: &str) -> u64 {
        let mut ticks = 0;
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).expect("a thread's stat");
            // The fields after the name (which is in parentheses): state is
            // the first, utime and stime the 12th and 13th.
            let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            ticks += fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        }
        ticks
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_other_workers_poll_for_a_cpu_loop_and_sleep_for_a_gpu_loop() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("gt-probe-{i}"))
            .build()
            .expect("a pool");
        // The loop sleeps for 300 ms; what did the pool's threads spend?
        let spent = |device| {
            pool.install(|| {
                let before = cpu_ticks_of_threads_named("gt-probe-");
                on_worker_for(device, || std::thread::sleep(std::time::Duration::from_millis(300)));
                cpu_ticks_of_threads_named("gt-probe-") - before
            })
        };
        let (cpu, gpu) = (spent(Device::Cpu), spent(Device::Cuda(0)));
        // Polling, the helper is on a core for most of the 300 ms (30
        // ticks); asleep, for none of it.
        assert!(cpu >= 5, "kept awake, the helper spent only {cpu} ticks");
        assert!(gpu <= 2, "left to sleep, the pool still spent {gpu} ticks");
    }
}
