//! `bench -- op_overhead`'s chain of tiny ops, a fixed number of times and
//! untimed, for counting instructions: the engine's bookkeeping per
//! recorded op, steady under `valgrind --tool=callgrind` where timings on a
//! shared machine are not. The per-op figure is the difference of two
//! counts (N = 100 and 300 rounds of 301 ops) over 200 x 301:
//!
//! ```text
//! cargo build --release --example op_overhead_count
//! valgrind --tool=callgrind target/release/examples/op_overhead_count 100
//! valgrind --tool=callgrind target/release/examples/op_overhead_count 300
//! ```

use gradtape::{Tape, Tensor};
use std::hint::black_box;
fn main() {
    const ROUNDS: usize = 100;
    let n: usize = std::env::args().nth(1).map_or(2000, |a| a.parse().unwrap());
    let mut tape = Tape::<f32>::with_capacity(4 * ROUNDS + 8);
    let w = Tensor::<f32>::from_vec(vec![0.1, -0.2, 0.3, 0.4], &[4]);
    for _ in 0..n {
        tape.clear();
        let x = tape.param(&w);
        let mut y = x;
        for _ in 0..ROUNDS {
            y = ((y * 0.5) + x).sigmoid();
        }
        let loss = y.sum();
        black_box(loss.backward());
    }
}
