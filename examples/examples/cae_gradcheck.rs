//! The notebook check, runnable: a 20-5-20 contractive autoencoder whose
//! Jacobian penalty is taken by `create_graph` gradients, one per hidden
//! unit; its parameter gradients derived by hand and compared with autodiff
//! in f64 and f32.
//!
//! ```text
//! cargo run --release --example cae_gradcheck
//! ```

use gradtape_verify::notebook::NotebookCae;
use std::process::ExitCode;

fn main() -> ExitCode {
    let f64_check = NotebookCae::<f64>::new(1, 2026);
    let f32_check = NotebookCae::<f32>::new(1, 2026);
    let (loss64, hand64, rows64) = f64_check.compare();
    let (loss32, hand32, rows32) = f32_check.compare();
    println!("Contractive autoencoder 20-5-20, one input, loss = MSE(y, x) + sum_i ||dh_i/dx||^2");
    println!("loss (f64): autodiff {loss64:.15}  by hand {hand64:.15}");
    println!("loss (f32): autodiff {loss32:.8}  by hand {hand32:.8}");
    println!();
    println!("{:<16} {:>22} {:>22}   verdict", "parameter", "f64 max |diff|", "f32 relative diff");
    let mut ok = true;
    for (a, b) in rows64.iter().zip(&rows32) {
        let pass = a.max_abs_diff <= 1e-12 && b.rel_diff <= 1e-6;
        ok &= pass;
        println!(
            "{:<16} {:>22.3e} {:>22.3e}   {}",
            a.parameter,
            a.max_abs_diff,
            b.rel_diff,
            if pass { "ok" } else { "MISMATCH" }
        );
    }
    println!();
    if ok {
        println!("gradients verified (f64 to 1e-12 absolute, f32 to 1e-6 relative)");
        ExitCode::SUCCESS
    } else {
        println!("gradients DO NOT match");
        ExitCode::FAILURE
    }
}
