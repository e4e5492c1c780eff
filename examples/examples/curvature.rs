//! Curvature by autodiff: the functional transforms of `gradtape::functional`
//! on a function you can check by hand, then on the notebook's contractive
//! autoencoder.
//!
//! ```text
//! cargo run --release --example curvature
//! ```
//!
//! Part 1 takes Rosenbrock's function of two numbers and prints its
//! gradient, Hessian, a Hessian-vector product and a Jacobian-vector
//! product (here a directional derivative) beside their closed forms.
//!
//! Part 2 takes the 20-5-20 contractive autoencoder of the notebook
//! (`verify/src/notebook.rs`), whose loss already contains a gradient (the
//! Jacobian penalty, one `create_graph` gradient per hidden unit), and asks
//! for its Hessian with respect to the encoder bias: second derivatives of
//! a loss that holds first derivatives, so third derivatives of the
//! network. The eigenvalues of the reconstruction's Hessian, the penalty's
//! and the total show what curvature the penalty adds.

use gradtape::functional::{hessian, hvp, jvp, vjp};
use gradtape::{grad, Tape, Tensor, Var};
use gradtape_verify::notebook::NotebookCae;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut ok = true;
    ok &= rosenbrock();
    println!();
    ok &= contractive();
    println!();
    if ok {
        println!("every transform matches its closed form");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH: some transform disagrees with its closed form");
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// Part 1: a function of two numbers

/// Rosenbrock's function, `f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`, with `x`
/// and `y` as two inputs (0-d tensors).
fn rosenbrock_f<'t>(_tape: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
    let (x, y) = (v[0], v[1]);
    x.rsub_scalar(1.0).square() + (y - x.square()).square().mul_scalar(100.0)
}

fn rosenbrock() -> bool {
    let (x, y) = (-1.2, 1.0);
    let (vx, vy) = (1.0, 0.5);
    let at = [Tensor::scalar(x), Tensor::scalar(y)];
    let v = [Tensor::scalar(vx), Tensor::scalar(vy)];
    let num = |t: &Tensor<f64>| t.item();

    // Closed forms.
    let g = [-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)];
    let h = [[2.0 - 400.0 * (y - x * x) + 800.0 * x * x, -400.0 * x], [-400.0 * x, 200.0]];
    let hv = [h[0][0] * vx + h[0][1] * vy, h[1][0] * vx + h[1][1] * vy];
    let jv = g[0] * vx + g[1] * vy;

    // Autodiff: one call each.
    let (f, grads) = vjp(rosenbrock_f, &at, &Tensor::scalar(1.0));
    let hess = hessian(rosenbrock_f, &at);
    let (_, hvs) = hvp(rosenbrock_f, &at, &v);
    let (_, jvs) = jvp(rosenbrock_f, &at, &v);

    println!(
        "Part 1. Rosenbrock f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 at (x, y) = ({x}, {y}), f = {:.6}",
        num(&f)
    );
    println!("        v = ({vx}, {vy})");
    println!();
    println!("{:<28} {:>22} {:>22}", "", "autodiff", "closed form");
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    rows.push(("df/dx   = vjp(f, 1)[0]".into(), num(&grads[0]), g[0]));
    rows.push(("df/dy   = vjp(f, 1)[1]".into(), num(&grads[1]), g[1]));
    for (i, a) in ["x", "y"].iter().enumerate() {
        for (j, b) in ["x", "y"].iter().enumerate() {
            rows.push((format!("d2f/d{a}d{b} = hessian[{i}][{j}]"), num(&hess[i][j]), h[i][j]));
        }
    }
    rows.push(("(H v)_x = hvp(f, v)[0]".into(), num(&hvs[0]), hv[0]));
    rows.push(("(H v)_y = hvp(f, v)[1]".into(), num(&hvs[1]), hv[1]));
    rows.push(("grad f . v = jvp(f, v)".into(), num(&jvs), jv));
    let mut ok = true;
    for (name, auto, closed) in &rows {
        let good = (auto - closed).abs() <= 1e-12 * closed.abs().max(1.0);
        ok &= good;
        println!("{name:<28} {auto:>22.12} {closed:>22.12}{}", if good { "" } else { "   MISMATCH" });
    }
    // The Hessian's eigenvalues: closed form for 2x2 against the Jacobi
    // routine used in part 2.
    let flat: Vec<f64> = hess.iter().flatten().map(num).collect();
    let eig = symmetric_eigenvalues(&flat, 2);
    let (mid, rad) =
        ((h[0][0] + h[1][1]) / 2.0, ((h[0][0] - h[1][1]).powi(2) / 4.0 + h[0][1].powi(2)).sqrt());
    let closed = [mid - rad, mid + rad];
    for (k, (a, c)) in eig.iter().zip(&closed).enumerate() {
        let good = (a - c).abs() <= 1e-9 * c.abs();
        ok &= good;
        println!(
            "{:<28} {a:>22.12} {c:>22.12}{}",
            format!("eigenvalue {k} of H"),
            if good { "" } else { "   MISMATCH" }
        );
    }
    println!();
    println!(
        "The valley floor is flat and its walls steep: H's eigenvalues differ {:.0}-fold, which is why plain",
        eig[1] / eig[0]
    );
    println!("gradient descent crawls along it.");
    ok
}

// ---------------------------------------------------------------------------
// Part 2: the contractive autoencoder's curvature in its encoder bias

/// Which part of the notebook's loss to take.
#[derive(Clone, Copy)]
enum Part {
    Reconstruction,
    Penalty,
    Total,
}

/// The notebook's loss, `mean((y - x)^2) + sum_j ||d h_j / d x||^2`, as a
/// function of the encoder bias `b1` (everything else held fixed), with
/// the penalty taken exactly as the notebook does: one `create_graph`
/// gradient per hidden unit.
fn cae_loss<'t>(cae: &NotebookCae<f64>, tape: &'t Tape<f64>, b1: Var<'t, f64>, part: Part) -> Var<'t, f64> {
    let (w1, w2, b2) = (tape.constant(&cae.w1), tape.constant(&cae.w2), tape.constant(&cae.b2));
    let x = tape.constant(&cae.x);
    let h = (x.matmul_t(w1, false, true) + b1).sigmoid();
    let y = (h.matmul_t(w2, false, true) + b2).sigmoid();
    let reconstruction = (y - x).square().mean();
    let mut penalty = tape.scalar(0.0);
    for j in 0..cae.w1.shape()[0] {
        let row = grad(&[h.column(j).sum()], &[x], None, true)[0];
        penalty = penalty + row.square().sum();
    }
    match part {
        Part::Reconstruction => reconstruction,
        Part::Penalty => penalty,
        Part::Total => reconstruction + penalty,
    }
}

fn contractive() -> bool {
    let cae = NotebookCae::<f64>::new(1, 2026);
    let at = [cae.b1.clone()];
    let n = cae.b1.len();
    let hess = |part: Part| hessian(|tape, v| cae_loss(&cae, tape, v[0], part), &at).remove(0).remove(0);
    let (h_rec, h_pen, h_tot) = (hess(Part::Reconstruction), hess(Part::Penalty), hess(Part::Total));

    println!("Part 2. The notebook's contractive autoencoder (20-5-20, one input, seed 2026):");
    println!("        L(b1) = mean((y - x)^2) + sum_j ||dh_j/dx||^2, Hessian in the encoder bias b1 (5 x 5)");
    println!();
    println!("H = hessian(L, b1):");
    for i in 0..n {
        let row: Vec<String> = (0..n).map(|j| format!("{:>11.6}", h_tot.data()[i * n + j])).collect();
        println!("    [{} ]", row.join(""));
    }

    // The penalty's Hessian in b1 is diagonal: unit j's term depends on
    // b1[j] only, through z_j = (W1 x + b1)_j. With a = h (1 - h) and
    // s_j = sum_i W1[j, i]^2 its entry is d^2/dz^2 (a^2 s_j)
    // = 4 a^2 ((1 - 2h)^2 - a) s_j.
    let x = &cae.x;
    let hid = x.matmul_t(&cae.w1, false, true).add(&cae.b1).sigmoid();
    let s = cae.w1.square().sum_axis(1, false);
    let closed: Vec<f64> = (0..n)
        .map(|j| {
            let hj = hid.data()[j];
            let a = hj * (1.0 - hj);
            4.0 * a * a * ((1.0 - 2.0 * hj).powi(2) - a) * s.data()[j]
        })
        .collect();
    let mut ok = true;
    println!();
    println!("{:<6} {:>10} {:>22} {:>22}", "unit", "z_j", "penalty H[j][j]", "4a^2((1-2h)^2-a)s_j");
    for (j, &want) in closed.iter().enumerate() {
        let hj = hid.data()[j];
        let z = (hj / (1.0 - hj)).ln();
        let auto = h_pen.data()[j * n + j];
        let good = (auto - want).abs() <= 1e-12 * want.abs().max(1e-3);
        ok &= good;
        println!("{j:<6} {z:>10.4} {auto:>22.12} {want:>22.12}{}", if good { "" } else { "   MISMATCH" });
    }
    let off_diagonal =
        (0..n * n).filter(|k| k / n != k % n).map(|k| h_pen.data()[k].abs()).fold(0.0, f64::max);
    println!("largest off-diagonal entry of the penalty's Hessian: {off_diagonal:.1e}");
    ok &= off_diagonal <= 1e-14;

    // The total is the sum of the parts, and hvp agrees with H v.
    ok &= h_tot.max_abs_diff(&h_rec.add(&h_pen)) <= 1e-14;
    let v = Tensor::normal(&[n], 0.0, 1.0, 7);
    let (_, hv) = hvp(|tape, b| cae_loss(&cae, tape, b[0], Part::Total), &at, std::slice::from_ref(&v));
    let h_v = h_tot.reshape(&[n, n]).matmul(&v.reshape(&[n, 1])).reshape(&[n]);
    ok &= hv[0].max_abs_diff(&h_v) <= 1e-14;

    println!();
    println!("eigenvalues (ascending)");
    let mut spectra = Vec::new();
    for (name, h) in [("reconstruction", &h_rec), ("penalty", &h_pen), ("total", &h_tot)] {
        let e = symmetric_eigenvalues(h.data(), n);
        let shown: Vec<String> = e.iter().map(|v| format!("{v:>11.6}")).collect();
        println!("  {name:<15}{}", shown.join(""));
        spectra.push(e);
    }
    let largest = |e: &[f64]| e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let near_middle = (0..n).filter(|&j| closed[j] < 0.0).count();
    let negative = spectra[2].iter().filter(|&&v| v < 0.0).count();
    println!();
    println!("The penalty ||dh/dx||^2 is largest where a sigmoid is steepest (z = 0): in a unit's own bias it is a");
    println!(
        "bump, with curvature 4a^2((1-2h)^2 - a) s_j, negative for |z_j| < 0.96 and positive beyond. Here"
    );
    println!(
        "{near_middle} of {n} units sit inside that band, so the penalty bends the loss downward along them, {:.0} times",
        largest(&spectra[1]) / largest(&spectra[0])
    );
    println!("more strongly than the reconstruction curves it either way; {negative} of the {n} eigenvalues of the total");
    println!("are negative. Descent on b1 therefore pushes the units towards saturation, where the encoder is flat");
    println!(
        "and the penalty small, against the reconstruction, which needs units that respond to the input."
    );
    ok
}

// ---------------------------------------------------------------------------

/// The eigenvalues of the symmetric `n x n` matrix `a` (row-major),
/// ascending, by cyclic Jacobi rotations: each rotation in the `(p, q)`
/// plane zeroes `a[p][q]`, and the sum of squares off the diagonal falls
/// with every sweep until the diagonal holds the eigenvalues.
fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    let mut a = a.to_vec();
    let off = |a: &[f64]| (0..n * n).filter(|k| k / n != k % n).map(|k| a[k] * a[k]).sum::<f64>();
    let total: f64 = a.iter().map(|v| v * v).sum();
    for _sweep in 0..50 {
        if off(&a) <= 1e-30 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The angle that zeroes a[p][q] (the smaller of the two).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // a <- R^T a R, columns then rows.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut eig: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    eig.sort_by(f64::total_cmp);
    eig
}
