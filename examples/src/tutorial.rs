//! What the tutorial programs (`examples/examples/tutorial_*.rs`) share:
//! their three options, and how they print an epoch.
//!
//! Each program is one model written from the library's pieces (the data,
//! `Params` and `Linear` layers, a loss, `Adam`, `backward` or `grad`), a
//! training loop and one picture, meant to be read top to bottom. Each has
//! a `run` function that the tests call with a short epoch.

use std::path::PathBuf;

/// `--epochs N`, `--train-limit N` (training images) and `--out DIR` (where
/// the picture goes), with each program's defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// Passes over the training images (`--epochs`); at least 1.
    pub epochs: usize,
    /// How many training images to use, from the start of the set
    /// (`--train-limit`); at least 1.
    pub train_limit: usize,
    /// The folder the picture is written to (`--out`); created if missing.
    pub out: PathBuf,
}

impl Options {
    /// Reads the options from the command line, starting from `defaults`.
    pub fn from_args(defaults: Options) -> Result<Options, String> {
        let mut o = defaults;
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag}: needs a value"))?;
            let number = || value.parse::<usize>().map_err(|_| format!("{flag} {value}: not a whole number"));
            match flag.as_str() {
                "--epochs" => o.epochs = number()?,
                "--train-limit" => o.train_limit = number()?,
                "--out" => o.out = PathBuf::from(&value),
                _ => return Err(format!("{flag}: unknown option (use --epochs, --train-limit, --out)")),
            }
        }
        if o.epochs == 0 || o.train_limit == 0 {
            return Err("--epochs and --train-limit must be at least 1".into());
        }
        std::fs::create_dir_all(&o.out).map_err(|e| format!("--out {}: {e}", o.out.display()))?;
        Ok(o)
    }
}

/// `epoch  3/10  train 0.05123  test 0.04987`.
pub fn print_epoch(epoch: usize, epochs: usize, train: f64, test: f64) {
    println!("epoch {epoch:>3}/{epochs}  train {train:.5}  test {test:.5}");
}
