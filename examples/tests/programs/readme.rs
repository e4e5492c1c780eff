//! The README's first command and the output it shows. The command is run
//! as the README gives it (its flags, the built-in data) and every line of
//! the sample output that does not depend on the machine's speed must be
//! what the program prints now, digit for digit: the model's description
//! and every loss. A change to a loss fails here until the README shows the
//! new numbers.

use crate::cli::{assert_ok, gradtape, tmp};
use std::path::Path;

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first `cargo run --release -- ...` in the README, as the program's
/// arguments.
fn first_command(readme: &str) -> Vec<String> {
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("cargo run --release -- "))
        .expect("README: no `cargo run --release -- ...` command");
    line.trim_start()["cargo run --release -- ".len()..].split_whitespace().map(String::from).collect()
}

/// The ```text block after "The first command above prints:".
fn sample_output(readme: &str) -> Vec<String> {
    let at = readme
        .find("The first command above prints:")
        .expect("README: no \"The first command above prints:\"");
    let rest = &readme[at..];
    let start = rest.find("```text\n").expect("README: no ```text block after the first command") + 8;
    let end = rest[start..].find("```").expect("README: the sample output's block is not closed") + start;
    rest[start..end].lines().map(String::from).collect()
}

/// The words of an epoch line or the summary without the ones that measure
/// time: `epoch 1/10 train 310.67372 test 223.78675` (seconds and samples/s
/// dropped), or `done: 10 epochs, final test loss 141.97512,` (the time
/// dropped).
fn without_timings(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if line.starts_with("epoch") {
        words.iter().take(6).copied().collect::<Vec<_>>().join(" ")
    } else if line.starts_with("done:") {
        words.iter().take(7).copied().collect::<Vec<_>>().join(" ")
    } else {
        words.join(" ")
    }
}

#[test]
fn the_readmes_first_command_prints_the_losses_the_readme_shows() {
    let readme = readme();
    let args = first_command(&readme);
    assert_eq!(args[..2], ["train", "vae"], "the README's first command changed: update this test");
    let shown = sample_output(&readme);
    assert!(shown.len() >= 5, "README: the sample output has {} lines", shown.len());

    let cwd = tmp();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = assert_ok(&gradtape(cwd.path(), &arg_refs), &format!("gradtape {}", args.join(" ")));
    let printed: Vec<String> = printed.lines().map(without_timings).collect();

    let mut compared = 0;
    for line in shown.iter().filter(|l| l.as_str() != "...") {
        let want = without_timings(line);
        assert!(
            printed.contains(&want),
            "the README shows\n  {line}\nbut `gradtape {}` now prints\n  {}\n(update the README's sample output)",
            args.join(" "),
            printed.join("\n  ")
        );
        compared += 1;
    }
    assert!(compared >= 5, "only {compared} lines compared");
    assert!(shown.iter().any(|l| l.starts_with("done:")), "README: the sample output has no summary line");
}
