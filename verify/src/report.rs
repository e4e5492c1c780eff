//! The verification report: every check, one table, one verdict.
//!
//! For every model (the contractive one twice, once per way of computing
//! its penalty) and every parameter, the table shows how far the hand
//! derivation is from
//!
//! - **autodiff**, on the tutorial-size model (784 inputs, default widths)
//!   with random weights and 8 real digits: the largest absolute difference
//!   in f64, and the relative difference in f32;
//! - **finite differences**, on the small model (16 inputs, 3 digits):
//!   every parameter entry nudged by `1e-6` either way; the row also needs
//!   `gradcheck` of the model's loss (autodiff against the same
//!   differences, torch's tolerances) to pass for that parameter;
//! - **PyTorch**, on the small model with the weights, digits and draws of
//!   `verify/reference/reference.safetensors`; the row also needs gradtape's
//!   autodiff to agree with PyTorch.
//!
//! A `loss` row compares the loss values the same ways, and a last row
//! reports `gradgradcheck` through the contractive autoencoder's
//! double-backward penalty. If anything fails, every op the models use is
//! checked alone ([`crate::diagnose`]) and the broken ones are named.
//!
//! `cargo run --release -p gradtape-verify --bin verify` prints the report
//! and exits non-zero if anything failed.

use crate::cases::{Case, CaseKind, Size};
use crate::compare::{Diff, F32_TOLERANCE, F64_TOLERANCE};
use crate::diagnose::suspect_ops;
use crate::gradcheck::{GradcheckError, GradcheckOptions};
use crate::reference::{Reference, ReferenceComparison, TOLERANCE as TORCH_TOLERANCE};
use gradtape::Tensor;
use std::fmt;
use std::time::Instant;

/// The seed of the random weights and draws of the report's cases.
pub const SEED: u64 = 7;

/// Step of the central differences.
pub const FD_STEP: f64 = 1e-6;

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// The case's label (`deep`, `contractive (closed form)`, ...).
    pub model: &'static str,
    /// A parameter name, `loss`, or the name of a whole-model check.
    pub parameter: String,
    /// Hand against autodiff, full size, f64.
    pub autodiff_f64: Option<Diff>,
    /// Hand against autodiff, full size, f32.
    pub autodiff_f32: Option<Diff>,
    /// Hand against central differences, small size: the largest absolute
    /// difference (or, for a whole-model check, its outcome in words).
    pub finite_differences: Option<Cell>,
    /// Hand against PyTorch, small size.
    pub pytorch: Option<Diff>,
    /// Whether every check of the row passed.
    pub pass: bool,
    /// Why not, when it did not.
    pub why: Vec<String>,
}

/// A finite-difference entry.
#[derive(Clone, Debug)]
pub enum Cell {
    /// The largest absolute difference between the hand-derived gradient
    /// and central differences, at the small size.
    Number(f64),
    /// A verdict without a number (`ok` or `FAILED` for gradgradcheck).
    Text(&'static str),
}

/// Everything the report found.
#[derive(Clone, Debug)]
pub struct Report {
    /// For each case a loss row and one row per parameter, then the
    /// second-order (gradgradcheck) row; in the order printed.
    pub rows: Vec<Row>,
    /// Ops whose backward rules fail gradcheck on their own (checked only
    /// when something failed).
    pub suspects: Vec<&'static str>,
    /// The PyTorch version of the reference data.
    pub torch: String,
    /// Wall-clock seconds the checks took.
    pub seconds: f64,
}

impl Report {
    /// Whether every row passed.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.pass)
    }

    /// The rows that failed.
    pub fn failures(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.pass).collect()
    }

    /// The last line: the verdict.
    pub fn verdict(&self) -> String {
        let n = self.rows.len();
        if self.passed() {
            format!(
                "verdict: PASS, all {n} rows agree: hand derivations = autodiff = finite differences = PyTorch \
                 ({:.1} s)",
                self.seconds
            )
        } else {
            let failed: Vec<String> =
                self.failures().iter().map(|r| format!("{} {}", r.model, r.parameter)).collect();
            let suspects = if self.suspects.is_empty() {
                "no single op fails gradcheck on its own".to_string()
            } else {
                format!("backward rule(s) failing on their own: {}", self.suspects.join(", "))
            };
            format!("verdict: FAIL, {} of {n} rows ({}); {suspects}", failed.len(), failed.join(", "))
        }
    }
}

/// Runs every check and collects the table.
pub fn run() -> Report {
    let started = Instant::now();
    let reference = Reference::embedded();
    let torch = match &reference {
        Ok(r) => r.torch_version().to_string(),
        Err(_) => "unavailable".to_string(),
    };
    let mut rows = Vec::new();
    for kind in CaseKind::ALL {
        rows.extend(model_rows(kind, reference.as_ref().map_err(Clone::clone)));
    }
    rows.push(gradgradcheck_row(CaseKind::ContractiveDoubleBackward));
    let suspects = if rows.iter().all(|r| r.pass) { Vec::new() } else { suspect_ops() };
    Report { rows, suspects, torch, seconds: started.elapsed().as_secs_f64() }
}

/// The rows of one model: `loss`, then one per parameter.
pub fn model_rows(kind: CaseKind, reference: Result<&Reference, String>) -> Vec<Row> {
    let model = kind.label();
    let full64 = Case::<f64>::new(kind, Size::Full, SEED).hand_vs_autodiff();
    let full32 = Case::<f32>::new(kind, Size::Full, SEED).hand_vs_autodiff();
    let small = Case::<f64>::new(kind, Size::Small, SEED);
    let hand = small.by_hand();
    let fd = small.finite_differences(FD_STEP);
    let gradcheck = small.gradcheck();
    let torch: Result<ReferenceComparison, String> = reference.and_then(|r| r.compare(kind));

    // The loss row.
    let mut why = Vec::new();
    check(&mut why, full64.loss, F64_TOLERANCE, "loss vs autodiff (f64)");
    check(&mut why, full32.loss, F32_TOLERANCE, "loss vs autodiff (f32)");
    let torch_loss = match &torch {
        Ok(t) => {
            check(&mut why, t.hand.loss, TORCH_TOLERANCE, "hand loss vs PyTorch");
            check(&mut why, t.autodiff.loss, TORCH_TOLERANCE, "autodiff loss vs PyTorch");
            Some(t.hand.loss)
        }
        Err(e) => {
            why.push(e.clone());
            None
        }
    };
    let mut rows = vec![Row {
        model,
        parameter: "loss".to_string(),
        autodiff_f64: Some(full64.loss),
        autodiff_f32: Some(full32.loss),
        finite_differences: None,
        pytorch: torch_loss,
        pass: why.is_empty(),
        why,
    }];

    // One row per parameter.
    let opts = GradcheckOptions::default();
    for (i, name) in small.params().names().iter().enumerate() {
        let mut why = Vec::new();
        check(&mut why, full64.params[i].diff, F64_TOLERANCE, "hand vs autodiff (f64)");
        check(&mut why, full32.params[i].diff, F32_TOLERANCE, "hand vs autodiff (f32)");
        let fd_abs = hand.grads[i].max_abs_diff(&fd[i]);
        if !within_gradcheck_tolerance(&hand.grads[i], &fd[i], opts) {
            why.push(format!("hand vs finite differences: max |diff| {fd_abs:.1e}"));
        }
        if let Err(e) = &gradcheck {
            if error_input(e) == i {
                why.push(format!("gradcheck: {e}"));
            }
        }
        let pytorch = match &torch {
            Ok(t) => {
                check(&mut why, t.hand.params[i].diff, TORCH_TOLERANCE, "hand vs PyTorch");
                check(&mut why, t.autodiff.params[i].diff, TORCH_TOLERANCE, "autodiff vs PyTorch");
                Some(t.hand.params[i].diff)
            }
            Err(_) => None, // already reported on the loss row
        };
        if torch.is_err() {
            why.push("no PyTorch reference".to_string());
        }
        rows.push(Row {
            model,
            parameter: name.clone(),
            autodiff_f64: Some(full64.params[i].diff),
            autodiff_f32: Some(full32.params[i].diff),
            finite_differences: Some(Cell::Number(fd_abs)),
            pytorch,
            pass: why.is_empty(),
            why,
        });
    }
    rows
}

/// `gradgradcheck` of a model's loss with respect to all its parameters
/// (small size), as one row.
pub fn gradgradcheck_row(kind: CaseKind) -> Row {
    let result = Case::<f64>::new(kind, Size::Small, SEED).gradgradcheck();
    let pass = result.is_ok();
    Row {
        model: kind.label(),
        parameter: "2nd order (gradgradcheck)".to_string(),
        autodiff_f64: None,
        autodiff_f32: None,
        finite_differences: Some(Cell::Text(if pass { "ok" } else { "FAILED" })),
        pytorch: None,
        pass,
        why: result.err().map(|e| format!("gradgradcheck: {e}")).into_iter().collect(),
    }
}

fn check(why: &mut Vec<String>, diff: Diff, tol: f64, what: &str) {
    if let Some((index, value)) = diff.non_finite {
        why.push(format!("{what}: {value} at index {index}"));
    } else if !diff.within(tol) {
        why.push(format!("{what}: relative difference {:.1e} > {tol:.0e}", diff.rel));
    }
}

/// gradcheck's criterion, entry by entry: `|a - n| <= atol + rtol |n|`.
fn within_gradcheck_tolerance(a: &Tensor<f64>, n: &Tensor<f64>, opts: GradcheckOptions) -> bool {
    a.data().iter().zip(n.data()).all(|(a, n)| (a - n).abs() <= opts.atol + opts.rtol * n.abs())
}

/// The input (here: the parameter) a gradcheck error is about.
fn error_input(e: &GradcheckError) -> usize {
    match e {
        GradcheckError::Mismatch { input, .. }
        | GradcheckError::NotReentrant { input, .. }
        | GradcheckError::NonZeroForZeroGradOutputs { input, .. } => *input,
    }
}

fn fmt_diff(d: Option<Diff>, relative: bool) -> String {
    match d {
        None => "-".to_string(),
        Some(d) => format!("{:.1e}", if relative { d.rel } else { d.abs }),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "gradtape verification report: each model's gradients, derived by hand, against")?;
        writeln!(
            f,
            "  autodiff     the tutorial-size model (784 inputs; zero-digit 25), random weights, 8 real"
        )?;
        writeln!(f, "               digits: f64 max |hand - autodiff| (pass: relative <= 1e-10), f32 relative (<= 1e-5)")?;
        writeln!(
            f,
            "  finite diff  a small model (16 inputs; zero-digit 25), 3 real digits, central differences,"
        )?;
        writeln!(
            f,
            "               step 1e-6: max |hand - fd| (pass: <= 1e-5 + 1e-3 |fd| per entry, and gradcheck)"
        )?;
        writeln!(
            f,
            "  PyTorch      the small models with the weights, digits and draws of verify/reference, run"
        )?;
        writeln!(
            f,
            "               by PyTorch {}: max |hand - torch| (pass: hand and autodiff relative <= 1e-6)",
            self.torch
        )?;
        writeln!(f)?;
        let header =
            ["model", "parameter", "autodiff f64", "autodiff f32", "finite diff", "PyTorch", "result"];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                let fd = match &r.finite_differences {
                    None => "-".to_string(),
                    Some(Cell::Number(x)) => format!("{x:.1e}"),
                    Some(Cell::Text(t)) => t.to_string(),
                };
                [
                    r.model.to_string(),
                    r.parameter.clone(),
                    fmt_diff(r.autodiff_f64, false),
                    fmt_diff(r.autodiff_f32, true),
                    fd,
                    fmt_diff(r.pytorch, false),
                    if r.pass { "pass" } else { "FAIL" }.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.len());
            }
        }
        let line = |cells: [&str; 7]| {
            let mut s = String::new();
            for (k, (c, w)) in cells.iter().zip(widths).enumerate() {
                if k < 2 {
                    s += &format!("{c:<w$}  ");
                } else {
                    s += &format!("{c:>w$}  ");
                }
            }
            s.trim_end().to_string()
        };
        writeln!(f, "{}", line(header))?;
        let rules = widths.map(|w| "-".repeat(w));
        writeln!(f, "{}", line(rules.each_ref().map(String::as_str)))?;
        for row in &cells {
            writeln!(f, "{}", line(row.each_ref().map(String::as_str)))?;
        }
        let failures = self.failures();
        if !failures.is_empty() {
            writeln!(f)?;
            for r in failures {
                writeln!(f, "FAIL {} {}: {}", r.model, r.parameter, r.why.join("; "))?;
            }
        }
        writeln!(f)?;
        write!(f, "{}", self.verdict())
    }
}
