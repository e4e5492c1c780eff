//! `gradtape graph <model>`: one training step's tape, drawn.
//!
//! Records one step of a freshly built model (forward, loss, and the
//! backward sweep the step runs) on a batch of test digits, and writes the
//! tape as Graphviz DOT (`gradtape::dot`): for the contractive autoencoder
//! the Jacobian penalty's `create_graph` sweep shows in its own colour, as
//! the second graph the final backward walks. When Graphviz's `dot` is on
//! the PATH an SVG is written beside it; otherwise a line says so (Graphviz
//! is never a build dependency). `gradtape train` draws the same graph of
//! its trained model into the run folder, and `index.html` links it.

use super::output::check_output_file;
use super::train::load_data;
use super::CliError;
use crate::say;
use gradtape::{grad_values, Tape, Tensor};
use gradtape_models::autoencoders::{Autoencoder, ModelKind, StepCtx};
use gradtape_models::spec::ModelSpec;
use std::path::{Path, PathBuf};
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

/// What [`draw_step`] wrote.
pub struct StepGraph {
    /// Nodes on the tape (one per box in the drawing).
    pub nodes: usize,
    /// How many of them a `create_graph` sweep recorded.
    pub swept: usize,
    /// The SVG beside the DOT file, or why there is none.
    pub svg: Result<PathBuf, String>,
}

/// Records one training step of `model` on `images` (forward, loss and the
/// backward sweep of its parameters) and writes the tape to `dot_path` as
/// DOT, and as SVG beside it when Graphviz's `dot` is installed. The model
/// is left in the training mode it was in.
pub fn draw_step(
    model: &mut dyn Autoencoder<f32>,
    images: &Tensor<f32>,
    dot_path: &Path,
) -> Result<StepGraph, CliError> {
    let was = model.is_training();
    model.set_training(true);
    let (dot, nodes, swept) = {
        let tape = Tape::new();
        let p = model.params().bind(&tape);
        let device = model.params().device();
        let x = tape.constant(&images.to(device));
        let loss = model.loss(&p, x, &mut StepCtx::on(0, device)).total;
        let _ = grad_values(&[loss], p.vars(), None);
        let swept = (0..tape.len()).filter(|&i| tape.recorded_by_sweep(i)).count();
        (tape.to_dot(), tape.len(), swept)
    };
    model.set_training(was);
    gradtape_models::checkpoint::write_atomically(dot_path, dot.as_bytes())
        .map_err(|e| CliError::failure(format!("writing {e}")))?;
    let svg = svg_beside(dot_path);
    // Graphviz writes to a pipe, and the SVG goes through the same
    // write-then-rename as every other file (never written in place).
    let svg = match Command::new("dot").arg("-Tsvg").arg(dot_path).output() {
        Ok(out) if out.status.success() => {
            gradtape_models::pictures::write_whole(&svg, &out.stdout)
                .map_err(|e| CliError::failure(format!("writing the SVG: {e}")))?;
            Ok(svg)
        }
        Ok(out) => {
            return Err(CliError::failure(format!(
                "dot could not draw {}: {}",
                dot_path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
        Err(_) => Err("Graphviz's `dot` is not on the PATH (apt-get install graphviz)".to_string()),
    };
    Ok(StepGraph { nodes, swept, svg })
}

/// The SVG file written beside the DOT file `dot_path`: its name with the
/// extension `svg`.
pub fn svg_beside(dot_path: &Path) -> PathBuf {
    dot_path.with_extension("svg")
}

/// `gradtape graph`.
pub fn run(a: GraphArgs) -> Result<(), CliError> {
    let kind: ModelKind = a.model.parse().map_err(|e| CliError::usage(format!("MODEL: {e}")))?;
    if a.batch_size == 0 {
        return Err(CliError::usage("--batch-size must be at least 1"));
    }
    check_output_file(&a.out, "--out")?;
    let svg = svg_beside(&a.out);
    if svg == a.out {
        return Err(CliError::usage(format!(
            "--out: {} ends in .svg, where the SVG drawn from the DOT file goes; give the DOT file its own \
             name (e.g. {})",
            a.out.display(),
            a.out.with_extension("dot").display()
        )));
    }
    check_output_file(&svg, "--out (the SVG beside it)")?;
    let (_, test) = load_data(kind, None, "--data")?;
    let images = test.take(a.batch_size.min(test.len())).images;
    let mut model = ModelSpec::default_for(kind).build(0);
    let drawn = draw_step(model.as_mut(), &images, &a.out)?;
    say!(
        "wrote {} ({} nodes, {} of them recorded by a create_graph sweep)",
        a.out.display(),
        drawn.nodes,
        drawn.swept
    );
    match drawn.svg {
        Ok(svg) => say!("wrote {}", svg.display()),
        Err(why) => say!("no SVG: {why}"),
    }
    Ok(())
}
