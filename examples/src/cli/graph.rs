//! `gradtape graph <model>`: one training step's tape, drawn.
//!
//! Records one step of a freshly built model (forward, loss, and the
//! backward sweep the step runs) on a batch of test digits, and writes the
//! tape as Graphviz DOT (`gradtape::dot`): for the contractive autoencoder
//! the Jacobian penalty's `create_graph` sweep shows in its own colour, as
//! the second graph the final backward walks. When Graphviz's `dot` is on
//! the PATH an SVG is written beside it; otherwise a line says so (Graphviz
//! is never a build dependency).

use super::train::load_data;
use super::CliError;
use gradtape::{grad_values, Tape};
use gradtape_models::autoencoders::{ModelKind, StepCtx};
use gradtape_models::spec::ModelSpec;
use std::path::PathBuf;
use std::process::Command;

/// Options of `gradtape graph`.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// The model whose training step to draw.
    pub model: String,
    /// Images in the step's batch.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Where to write the DOT file (an SVG goes beside it).
    #[arg(long, default_value = "tape.dot")]
    pub out: PathBuf,
}

/// `gradtape graph`.
pub fn run(a: GraphArgs) -> Result<(), CliError> {
    let kind: ModelKind = a.model.parse().map_err(|e| CliError::usage(format!("MODEL: {e}")))?;
    if a.batch_size == 0 {
        return Err(CliError::usage("--batch-size must be at least 1"));
    }
    let (_, test) = load_data(kind, None, "--data")?;
    let images = test.take(a.batch_size.min(test.len())).images;
    let mut model = ModelSpec::default_for(kind).build(0);
    model.set_training(true);
    let tape = Tape::new();
    let p = model.params().bind(&tape);
    let x = tape.constant(&images);
    let loss = model.loss(&p, x, &mut StepCtx::seeded(0)).total;
    let _ = grad_values(&[loss], p.vars(), None);
    let swept = (0..tape.len()).filter(|&i| tape.recorded_by_sweep(i)).count();
    let dot = tape.to_dot();
    write_atomically(&a.out, dot.as_bytes())?;
    println!(
        "wrote {} ({} nodes, {swept} of them recorded by a create_graph sweep)",
        a.out.display(),
        tape.len()
    );
    let svg = a.out.with_extension("svg");
    match Command::new("dot").arg("-Tsvg").arg(&a.out).arg("-o").arg(&svg).output() {
        Ok(out) if out.status.success() => println!("wrote {}", svg.display()),
        Ok(out) => {
            return Err(CliError::failure(format!(
                "dot could not draw {}: {}",
                a.out.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
        Err(_) => println!("no SVG: Graphviz's `dot` is not on the PATH (apt-get install graphviz)"),
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary sibling (named after the
/// file and this process) and a rename; the temporary is removed on error.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::failure(format!("--out: writing {}: {e}", path.display()))
    })
}
