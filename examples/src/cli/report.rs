//! What a finished run leaves in its folder: pictures of what the model
//! learned, the loss history as CSV, and an `index.html` that shows it all.

use super::snapshot::RunInfo;
use super::CliError;
use gradtape::{Tape, Tensor};
use gradtape_models::autoencoders::{mean_jacobian_norm, Autoencoder, ModelKind, StepCtx};
use gradtape_models::data::{masking_noise_seeded, Dataset};
use gradtape_models::pictures;
use gradtape_models::spec::ModelSpec;
use std::path::{Path, PathBuf};

/// Runs `f` on the model's parameters bound to a fresh tape, in evaluation
/// mode, and returns the resulting tensor.
fn eval_with<F>(model: &mut dyn Autoencoder<f32>, input: &Tensor<f32>, seed: u64, f: F) -> Tensor<f32>
where
    F: for<'t> Fn(
        &dyn Autoencoder<f32>,
        &gradtape_models::params::Bound<'t, f32>,
        gradtape::Var<'t, f32>,
        &mut StepCtx,
    ) -> gradtape::Var<'t, f32>,
{
    let was = model.is_training();
    model.set_training(false);
    // Computed where the parameters are; the result comes back to the host
    // for the pictures and files.
    let device = model.params().device();
    let out = {
        let tape = Tape::new();
        let p = model.params().bind(&tape);
        let x = tape.constant(&input.to(device));
        f(&*model, &p, x, &mut StepCtx::on(seed, device)).value().to_cpu()
    };
    model.set_training(was);
    out
}

/// Codes of `images` (the mean for a VAE).
pub fn encode_all(model: &mut dyn Autoencoder<f32>, images: &Tensor<f32>) -> Tensor<f32> {
    eval_with(model, images, 0, |m, p, x, ctx| m.encode(p, x, ctx))
}

/// Images decoded from `codes`.
pub fn decode_all(model: &mut dyn Autoencoder<f32>, codes: &Tensor<f32>) -> Tensor<f32> {
    eval_with(model, codes, 0, |m, p, z, ctx| m.decode(p, z, ctx))
}

/// Reconstructions of `images`.
pub fn reconstruct_all(model: &mut dyn Autoencoder<f32>, images: &Tensor<f32>) -> Tensor<f32> {
    eval_with(model, images, 0, |m, p, x, ctx| {
        let z = m.encode(p, x, ctx);
        m.decode(p, z, ctx)
    })
}

/// Codes to decode for a generations picture: a 15x15 grid spanning the
/// test codes for a 2-D code, the N(0, I) prior for a VAE, and otherwise
/// draws from a normal with the test codes' per-axis mean and spread.
/// Returns the codes, the grid side and a caption.
pub fn generation_codes(kind: ModelKind, codes: &Tensor<f32>, seed: u64) -> (Tensor<f32>, usize, String) {
    let (n, d) = (codes.shape()[0], codes.shape()[1]);
    if d == 2 && kind != ModelKind::Vae {
        let side = 15;
        let range = |axis: usize| {
            let mut v: Vec<f32> = (0..n).map(|i| codes.at(&[i, axis])).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            (v[n / 50], v[n - 1 - n / 50]) // 2nd to 98th percentile
        };
        let ((x0, x1), (y0, y1)) = (range(0), range(1));
        let mut grid = Vec::with_capacity(side * side * 2);
        for r in 0..side {
            for c in 0..side {
                grid.push(x0 + (x1 - x0) * c as f32 / (side - 1) as f32);
                grid.push(y1 - (y1 - y0) * r as f32 / (side - 1) as f32);
            }
        }
        let caption = format!("decoded from a {side}x{side} grid over the 2-D code space (2nd to 98th percentile of the test codes)");
        return (Tensor::from_vec(grid, &[side * side, 2]), side, caption);
    }
    let side = 10;
    if kind == ModelKind::Vae {
        let z = Tensor::normal(&[side * side, d], 0.0, 1.0, seed);
        return (z, side, "decoded from random codes drawn from the prior N(0, I)".into());
    }
    let mean = codes.mean_axis(0, false);
    let std = codes.sub(&mean).square().mean_axis(0, false).sqrt();
    let z = Tensor::normal(&[side * side, d], 0.0, 1.0, seed).mul(&std).add(&mean);
    (z, side, format!("decoded from random {d}-D codes drawn from a normal fitted to the test codes"))
}

/// Everything the run folder shows.
pub struct RunReport<'a> {
    /// The run folder the pictures, `history.csv` and `index.html` go to.
    pub out: &'a Path,
    /// The model trained (its kind decides which pictures are drawn).
    pub spec: &'a ModelSpec,
    /// The run's seed and its per-epoch losses, for the loss curve and the metrics.
    pub info: &'a RunInfo,
    /// The test images the pictures are drawn from.
    pub test: &'a Dataset,
    /// The settings table at the top of the page, as (name, value) rows.
    pub config: Vec<(String, String)>,
    /// Rows added to the page's metrics after the ones `write` measures
    /// itself (such as the training time).
    pub extra_metrics: Vec<(String, String)>,
}

fn pic_err(e: pictures::PictureError) -> CliError {
    CliError::failure(format!("writing pictures: {e}"))
}

/// Writes the pictures, `history.csv` and `index.html`; returns the page.
pub fn write(model: &mut dyn Autoencoder<f32>, r: RunReport<'_>) -> Result<PathBuf, CliError> {
    let (h, w) = (r.test.rows, r.test.cols);
    let out = r.out;
    let shown = r.test.take(20.min(r.test.len()));
    let mut pics: Vec<(String, String)> = Vec::new();

    let recon = reconstruct_all(model, &shown.images);
    pictures::reconstructions(&shown.images, &recon, h, w, out.join("reconstructions.png"))
        .map_err(pic_err)?;
    pics.push(("Test digits (top) and their reconstructions (below)".into(), "reconstructions.png".into()));

    let first = model.params().get(model.first_layer()).clone();
    pictures::filters(&first, h, w, out.join("filters.png")).map_err(pic_err)?;
    pics.push((
        format!(
            "Encoder filters: the {} rows of the first layer's weights, each scaled to its own range",
            first.shape()[0]
        ),
        "filters.png".into(),
    ));

    let sample = r.test.take(r.test.len().min(2000));
    let codes = encode_all(model, &sample.images);
    let d = codes.shape()[1];
    let title =
        if d > 2 { format!("latent codes of {} test digits", sample.len()) } else { "latent codes".into() };
    pictures::latent_map(&codes, &sample.labels, out.join("latent.png"), &title).map_err(pic_err)?;
    pics.push((
        format!("Latent map: the {d}-D codes of the test digits, coloured by digit"),
        "latent.png".into(),
    ));

    if r.spec.kind != ModelKind::ZeroDigit {
        let (z, side, caption) = generation_codes(r.spec.kind, &codes, r.info.seed);
        let images = decode_all(model, &z);
        pictures::generations(&images, side, h, w, out.join("generations.png")).map_err(pic_err)?;
        pics.push((format!("Generations: {caption}"), "generations.png".into()));

        let rate = if r.spec.noise > 0.0 { r.spec.noise } else { 0.2 };
        let clean = r.test.take(8.min(r.test.len())).images;
        let noisy = masking_noise_seeded(&clean, rate, r.info.seed);
        let denoised = reconstruct_all(model, &noisy);
        pictures::denoising(&noisy, &denoised, &clean, h, w, out.join("denoising.png")).map_err(pic_err)?;
        pics.push((
            format!("Denoising: input with masking noise {rate} | the model's output | the clean digit"),
            "denoising.png".into(),
        ));
    }

    pictures::loss_curves(&r.info.train_losses, &r.info.test_losses, out.join("loss.png"), "loss per epoch")
        .map_err(pic_err)?;
    pics.push(("Training and test loss after each epoch".into(), "loss.png".into()));

    let mut csv = String::from("epoch,train_loss,test_loss\n");
    for (i, (a, b)) in r.info.train_losses.iter().zip(&r.info.test_losses).enumerate() {
        csv.push_str(&format!("{},{a},{b}\n", i + 1));
    }
    gradtape_models::checkpoint::write_atomically(&out.join("history.csv"), csv.as_bytes())
        .map_err(|e| CliError::failure(format!("writing {e}")))?;

    let mut metrics = vec![
        ("epochs".to_string(), r.info.epoch.to_string()),
        ("final train loss".to_string(), fmt_loss(r.info.train_losses.last())),
        ("final test loss".to_string(), fmt_loss(r.info.test_losses.last())),
    ];
    if r.spec.kind == ModelKind::Contractive {
        let params = model.params();
        let weight = params.get(model.first_layer());
        let bias = params.by_name("encoder.bias").expect("the contractive encoder has a bias");
        let norm = mean_jacobian_norm(weight, bias, &sample.images);
        metrics.push(("mean ||J_f(x)||_F on the test digits (contraction)".into(), format!("{norm:.5}")));
    }
    metrics.extend(r.extra_metrics);

    // One training step of the trained model, drawn: the tape as DOT, and
    // as SVG where Graphviz is installed.
    let step = r.test.take(4.min(r.test.len())).images;
    let drawn = super::graph::draw_step(model, &step, &out.join("tape.dot"))?;
    let what = format!(
        "one training step's tape on {} test digits ({} nodes, {} recorded by a create_graph sweep)",
        step.shape()[0],
        drawn.nodes,
        drawn.swept
    );
    let links = match drawn.svg {
        Ok(_) => vec![
            (format!("{what}, drawn"), "tape.svg".to_string()),
            (format!("{what}, as Graphviz DOT"), "tape.dot".to_string()),
        ],
        Err(why) => vec![(format!("{what}, as Graphviz DOT (no SVG: {why})"), "tape.dot".to_string())],
    };
    let title = format!("gradtape: {} autoencoder", r.spec.kind);
    pictures::write_index_html_with_links(out, &title, &r.config, &metrics, &pics, &links).map_err(pic_err)
}

fn fmt_loss(v: Option<&f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.5}"))
}
