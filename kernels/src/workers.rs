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
}
