//! The README's core reading path ("The core in about an hour") names line
//! ranges of the engine's files. This test keeps them true: every range the
//! path gives must be in the README's table, hold the items it is read for, and end where an item
//! ends; and the README's "About N lines" must be the ranges' total, give or
//! take a tenth. When the code moves, this fails and says which range to
//! update (in the README and here).

use std::path::{Path, PathBuf};

/// One range of the path (or of its table of names): the file, the lines,
/// and strings the range must contain.
struct Range {
    file: &'static str,
    lines: (usize, usize),
    holds: &'static [&'static str],
    /// Counted in the path's total (the names table's ranges are not).
    on_path: bool,
    /// Stops part-way through an item on purpose (the README says so).
    stops_early: bool,
}

const fn path(file: &'static str, a: usize, b: usize, holds: &'static [&'static str]) -> Range {
    Range { file, lines: (a, b), holds, on_path: true, stops_early: false }
}

/// A range that stops part-way through an item, as the README says it does.
const fn part(file: &'static str, a: usize, b: usize, holds: &'static [&'static str]) -> Range {
    Range { file, lines: (a, b), holds, on_path: true, stops_early: true }
}

const fn named(file: &'static str, a: usize, b: usize, holds: &'static [&'static str]) -> Range {
    Range { file, lines: (a, b), holds, on_path: false, stops_early: false }
}

const RANGES: &[Range] = &[
    path("autograd/src/lib.rs", 1, 37, &["//! # gradtape", "let ddx = grad("]),
    path("autograd/src/tape.rs", 1, 74, &["pub struct Tape", "pub struct Var", "pub(crate) struct Node"]),
    path("autograd/src/tape.rs", 149, 164, &["pub fn param(", "pub fn constant("]),
    path(
        "autograd/src/tape.rs",
        198,
        221,
        &["pub(crate) fn push(", "pub(crate) fn value(", "pub(crate) fn op("],
    ),
    path("autograd/src/tape.rs", 230, 239, &["pub fn value(", "pub fn shape("]),
    path("autograd/src/tape.rs", 262, 266, &["pub(crate) fn record("]),
    part("autograd/src/op.rs", 1, 47, &["pub(crate) enum Op", "Sigmoid(usize)", "SumAll(usize)"]),
    path("autograd/src/ops/unary.rs", 1, 27, &["//! Elementwise functions", "use crate::algebra::Algebra;"]),
    path("autograd/src/ops/unary.rs", 66, 70, &["pub fn sigmoid(self)"]),
    path("autograd/src/ops/reduce.rs", 16, 20, &["pub fn sum(self)"]),
    path(
        "autograd/src/algebra.rs",
        1,
        287,
        &["pub trait Algebra", "Algebra<T> for Tensor<T>", "fn scale(", "fn step("],
    ),
    path("autograd/src/algebra.rs", 345, 407, &["fn fused(", "fn accumulate(", "fn matmul_t_add_to("]),
    path("autograd/src/algebra.rs", 410, 424, &["Algebra<T> for Var<'t, T>"]),
    path("autograd/src/algebra.rs", 494, 521, &["fn step(", "fn max_mask(", "fn fused("]),
    path("autograd/src/ops/unary.rs", 98, 144, &["// ---- backward rules", "fn exp_grad", "fn sigmoid_grad"]),
    path("autograd/src/ops/reduce.rs", 60, 65, &["// ---- backward rules", "fn sum_all_grad"]),
    path(
        "autograd/src/grad.rs",
        1,
        388,
        &[
            "//! Reverse mode",
            "pub fn grad<",
            "fn swept_vars<",
            "fn swept_values<",
            "fn dependents<",
            "fn sweep<",
            "fn sweep_watched<",
            "unbroadcast_and_add",
            "fn vjp<",
        ],
    ),
    named("autograd/src/tape.rs", 82, 86, &["pub fn new()"]),
    named("autograd/src/op.rs", 221, 266, &["fn inputs("]),
    named("autograd/src/tape.rs", 100, 106, &["fn note_recorded_sweep("]),
    named("autograd/src/tape.rs", 113, 142, &["pub fn detect_anomaly(", "pub fn anomaly_detection("]),
];

/// The repository's root, where the README is: the crate's parent folder
/// when the crate sits in the repository as `autograd/`. A packaged copy of
/// the crate (from `cargo package`, or crates.io) has no README of the
/// workspace's beside it, so these tests say so and skip there; they run in
/// the repository, where the README and this source live.
fn repository_root() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent()?;
    (manifest.file_name()? == "autograd" && root.join("Cargo.toml").is_file()).then(|| root.to_path_buf())
}

fn in_repository() -> bool {
    let inside = repository_root().is_some();
    if !inside {
        eprintln!(
            "skipped: {} is not the repository's autograd/ folder (a packaged crate), so the workspace README \
             whose reading path this checks is not here",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    inside
}

fn read(relative: &str) -> String {
    let root = repository_root().expect("the tests check in_repository() first");
    std::fs::read_to_string(root.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The README's section from "### The core in about an hour" to the next
/// heading of the same level.
fn path_section(readme: &str) -> &str {
    let start =
        readme.find("### The core in about an hour").expect("README: no \"### The core in about an hour\"");
    let rest = &readme[start + 4..];
    let end = rest.find("\n### ").map_or(rest.len(), |i| i + 4);
    &readme[start..start + end]
}

/// Whether line `end` (1-based) closes what the range was reading: a
/// closing brace or fence, or a line followed by a blank one or the end of
/// the file.
fn ends_an_item(lines: &[&str], end: usize) -> bool {
    let last = lines[end - 1].trim();
    let next_blank = match lines.get(end) {
        None => true,
        Some(l) => l.trim().is_empty() || l.trim() == "//!",
    };
    last == "}" || last == "}," || last.ends_with("```") || next_blank
}

#[test]
fn the_readme_core_path_names_lines_that_hold_what_it_says() {
    if !in_repository() {
        return;
    }
    let readme = read("README.md");
    let section = path_section(&readme);
    let mut problems = Vec::new();
    for r in RANGES {
        let (a, b) = r.lines;
        let text = format!("{a}-{b}");
        let short = r.file.trim_start_matches("autograd/src/");
        let row_names_it = section.lines().any(|row| {
            (row.contains(&format!("`{}`", r.file)) || row.contains(short)) && row.contains(&text)
        });
        if !row_names_it {
            problems.push(format!("README's path does not give {} lines {text}", r.file));
        }
        let source = read(r.file);
        let lines: Vec<&str> = source.lines().collect();
        if b > lines.len() || a == 0 || a > b {
            problems.push(format!("{} has {} lines; the range {text} does not fit", r.file, lines.len()));
            continue;
        }
        let body = lines[a - 1..b].join("\n");
        for want in r.holds {
            if !body.contains(want) {
                problems.push(format!("{} lines {text} no longer hold `{want}`", r.file));
            }
        }
        if lines[a - 1].trim().is_empty() {
            problems.push(format!("{} lines {text} start on a blank line", r.file));
        }
        if !r.stops_early && !ends_an_item(&lines, b) {
            problems.push(format!(
                "{} lines {text} end inside an item (line {b}: {:?})",
                r.file,
                lines[b - 1]
            ));
        }
    }
    assert!(problems.is_empty(), "the reading path is out of date:\n{}", problems.join("\n"));
}

#[test]
fn the_readme_core_path_gives_its_length_honestly() {
    if !in_repository() {
        return;
    }
    let readme = read("README.md");
    let section = path_section(&readme);
    let total: usize = RANGES.iter().filter(|r| r.on_path).map(|r| r.lines.1 - r.lines.0 + 1).sum();
    let stated: usize = section
        .split("About ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .expect("README's path: no \"About N lines\"");
    let off = (stated as f64 - total as f64).abs() / total as f64;
    assert!(off <= 0.1, "README says about {stated} lines; the ranges add up to {total}");
}
