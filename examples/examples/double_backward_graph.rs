//! A gradient of a gradient, drawn: `y = sigmoid(w x)`, its derivative in
//! `x` taken with `create_graph`, and the derivative of that in `w`, each
//! beside its closed form; then the whole tape as Graphviz DOT, the nodes
//! the `create_graph` sweep recorded in their own colour.
//!
//! ```text
//! cargo run --release --example double_backward_graph [-- FILE.dot]
//! dot -Tpng FILE.dot -o FILE.png
//! ```
//!
//! The README's picture (`docs/double-backward.png`) is this program's
//! output drawn that way.

use gradtape::{grad, Tape, Tensor};
use std::process::ExitCode;

fn main() -> ExitCode {
    let out = std::env::args().nth(1).unwrap_or_else(|| "double-backward.dot".to_string());
    let (w0, x0) = (0.8_f64, 1.5_f64);

    let tape = Tape::<f64>::new();
    let w = tape.param(&Tensor::scalar(w0));
    let x = tape.constant(&Tensor::scalar(x0));
    // y = sigmoid(w x)
    let y = (w * x).sigmoid();
    // dy/dx = w s (1 - s), recorded on the tape because create_graph = true
    let dy_dx = grad(&[y], &[x], None, true)[0];
    // d/dw (dy/dx) = s (1 - s) (1 + w x (1 - 2 s)): a backward of the backward
    let d2 = grad(&[dy_dx], &[w], None, false)[0];

    let s = 1.0 / (1.0 + (-w0 * x0).exp());
    let closed = [
        ("y", s),
        ("dy/dx", w0 * s * (1.0 - s)),
        ("d(dy/dx)/dw", s * (1.0 - s) * (1.0 + w0 * x0 * (1.0 - 2.0 * s))),
    ];
    let got = [y.item(), dy_dx.item(), d2.item()];
    println!("y = sigmoid(w x) at w = {w0}, x = {x0}");
    println!("{:<14} {:>20} {:>20}", "", "autodiff", "closed form");
    let mut ok = true;
    for ((name, want), have) in closed.iter().zip(got) {
        ok &= (have - want).abs() <= 1e-14;
        println!("{name:<14} {have:>20.15} {want:>20.15}");
    }

    let swept = (0..tape.len()).filter(|&i| tape.recorded_by_sweep(i)).count();
    if let Err(e) = std::fs::write(&out, tape.to_dot()) {
        eprintln!("error: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {out}: {} nodes, {swept} of them recorded by the create_graph sweep", tape.len());
    if ok {
        println!("every value matches its closed form");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH");
        ExitCode::FAILURE
    }
}
