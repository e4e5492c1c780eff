//! `sample`, `reconstruct` and `encode`: using a trained checkpoint, or
//! weights from elsewhere (a PyTorch `state_dict`) with `--weights`.

use super::output::{check_distinct, check_output_file};
use super::report::{decode_all, encode_all, generation_codes, reconstruct_all};
use super::snapshot;
use super::train::load_data;
use super::{check_device, CliError, Device};
use crate::say;
use gradtape::Tensor;
use gradtape_models::autoencoders::{Autoencoder, ModelKind};
use gradtape_models::checkpoint;
use gradtape_models::data::Dataset;
use gradtape_models::pictures;
use gradtape_models::spec::ModelSpec;
use std::path::{Path, PathBuf};

/// Where a command's model comes from: `--checkpoint` (a `gradtape train`
/// checkpoint), or `--weights` and `--model` (named tensors from anywhere,
/// such as a PyTorch `state_dict` saved with safetensors).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelSource {
    /// A checkpoint written by `gradtape train`.
    #[arg(long, required_unless_present = "weights", conflicts_with_all = ["weights", "model"])]
    pub checkpoint: Option<PathBuf>,
    /// Weights as named tensors, such as PyTorch's
    /// `safetensors.torch.save_file(model.state_dict(), FILE)` (float32 or
    /// float64), or a gradtape checkpoint (its weights, not its optimiser
    /// state); needs --model. The sizes are read off the tensors' shapes.
    #[arg(long, value_name = "FILE", requires = "model")]
    pub weights: Option<PathBuf>,
    /// The model the --weights are for: zero-digit, deep, regularized,
    /// denoising, contractive or vae.
    #[arg(long, value_name = "KIND", requires = "weights")]
    pub model: Option<String>,
}

/// Rebuilds the model of a checkpoint, or of `--weights`, in evaluation mode.
fn load_model(source: &ModelSource) -> Result<(Box<dyn Autoencoder<f32>>, ModelSpec), CliError> {
    let mut model = match (&source.checkpoint, &source.weights, &source.model) {
        (Some(path), _, _) => {
            let loaded = snapshot::load(path, "--checkpoint")?;
            let mut model = loaded.spec.build(0);
            loaded.restore_model(model.as_mut(), "--checkpoint")?;
            (model, loaded.spec)
        }
        (None, Some(path), Some(kind)) => {
            let kind: ModelKind = kind.parse().map_err(|e| CliError::usage(format!("--model: {e}")))?;
            let tensors = snapshot::read_weights(path, "--weights")?;
            model_from_weights(kind, &tensors, path)?
        }
        _ => return Err(CliError::usage("give --checkpoint, or --weights with --model")),
    };
    model.0.set_training(false);
    Ok(model)
}

/// The model of `kind` that weights read from `path` (`--weights`) make:
/// its sizes read off the tensors' shapes and bounded, as `--init-from`'s
/// are ([`snapshot::sized_spec`]), before anything is allocated; then
/// every name and shape checked.
pub fn model_from_weights(
    kind: ModelKind,
    tensors: &gradtape_models::state_dict::StateDict<f32>,
    path: &Path,
) -> Result<(Box<dyn Autoencoder<f32>>, ModelSpec), CliError> {
    let spec = snapshot::sized_spec(kind, tensors, path, "--weights")?;
    let model = spec
        .build_from::<f32, f32>(tensors)
        .map_err(|e| CliError::usage(format!("--weights: {}: {e}", path.display())))?;
    Ok((model, spec))
}

/// Options of `gradtape sample`.
#[derive(clap::Args, Debug, Clone)]
pub struct SampleArgs {
    /// Where the model comes from: `--checkpoint`, or `--weights` with `--model`.
    #[command(flatten)]
    pub source: ModelSource,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Latent points to decode, `;`-separated, numbers `,`-separated
    /// (e.g. "0,0;1.5,-2" for a 2-D code). Default: random points (the prior
    /// for a VAE, a grid or a fitted normal otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub points: Option<String>,
    /// Seed for random points (default 0; not with --points).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Data used to place random points for non-VAE models (default: built-in digits).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output PNG.
    #[arg(long, default_value = "samples.png")]
    pub out: PathBuf,
}

/// Options of `gradtape reconstruct`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReconstructArgs {
    /// Where the model comes from: `--checkpoint`, or `--weights` with `--model`.
    #[command(flatten)]
    pub source: ModelSource,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Test images to reconstruct, by index (e.g. 0,5,7); default the first --n.
    #[arg(long, value_delimiter = ',')]
    pub indices: Option<Vec<usize>>,
    /// How many test images, when no --indices are given (default 20).
    #[arg(long)]
    pub n: Option<usize>,
    /// Data folder (default: built-in digits).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output PNG.
    #[arg(long, default_value = "reconstructions.png")]
    pub out: PathBuf,
    /// Also write the reconstructions' numbers to this CSV
    /// (index,label,x0,x1,...; index into the test images).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

/// Options of `gradtape encode`.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Where the model comes from: `--checkpoint`, or `--weights` with `--model`.
    #[command(flatten)]
    pub source: ModelSource,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Data folder (default: built-in digits).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split to encode.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// Output CSV (index,label,z0,z1,...).
    #[arg(long, default_value = "codes.csv")]
    pub out: PathBuf,
}

/// A part of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

/// The largest coordinate `--points` takes: codes of trained models are
/// within a few units of 0, and past this every decoded image is the
/// same saturated one.
pub const MAX_POINT: f64 = 1e6;

fn parse_points(text: &str, d: usize) -> Result<Tensor<f32>, CliError> {
    let mut values = Vec::new();
    let mut n = 0;
    for (i, point) in text.split(';').filter(|p| !p.trim().is_empty()).enumerate() {
        let nums: Vec<f64> =
            point.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| {
                CliError::usage(format!("--points: point {} ({point:?}) is not a list of numbers", i + 1))
            })?;
        if let Some(x) = nums.iter().find(|x| !x.is_finite() || x.abs() > MAX_POINT) {
            return Err(CliError::usage(format!(
                "--points: point {} ({point:?}) has {}; every number must be finite and within \
                 -{MAX_POINT:e} to {MAX_POINT:e}",
                i + 1,
                super::output::num(*x)
            )));
        }
        let nums: Vec<f32> = nums.iter().map(|&x| x as f32).collect();
        if nums.len() != d {
            return Err(CliError::usage(format!(
                "--points: point {} has {} numbers but the model's code has {d}",
                i + 1,
                nums.len()
            )));
        }
        values.extend(nums);
        n += 1;
    }
    if n == 0 {
        return Err(CliError::usage("--points: no points given"));
    }
    Ok(Tensor::from_vec(values, &[n, d]))
}

/// Refuses data whose images are not the model's input size (weights of
/// another size given with --weights, say).
fn check_input(model: &dyn Autoencoder<f32>, data: &Dataset) -> Result<(), CliError> {
    if data.pixels() != model.input_dim() {
        return Err(CliError::usage(format!(
            "--data: the images have {} pixels but the model's input is {}",
            data.pixels(),
            model.input_dim()
        )));
    }
    Ok(())
}

fn image_side(data: &Dataset) -> (usize, usize) {
    (data.rows, data.cols)
}

/// `gradtape sample`.
pub fn sample(a: SampleArgs) -> Result<(), CliError> {
    check_output_file(&a.out, "--out")?;
    if let (Some(seed), Some(_)) = (a.seed, &a.points) {
        return Err(CliError::usage(format!(
            "--seed {seed}: the seed places random points, and --points gives them; give one or the other"
        )));
    }
    let device = check_device(a.device)?;
    let (mut model, spec) = load_model(&a.source)?;
    model.params_mut().to_device(device);
    let (_, test) = load_data(spec.kind, a.data.as_deref(), "--data")?;
    check_input(model.as_ref(), &test)?;
    if a.points.is_none() {
        // Random points are placed by the test codes.
        check_not_empty(&test, "test")?;
    }
    let (h, w) = image_side(&test);
    let (codes, side) = match &a.points {
        Some(text) => {
            let z = parse_points(text, model.latent_dim())?;
            let side = (z.shape()[0] as f64).sqrt().ceil() as usize;
            (z, side)
        }
        None => {
            let reference = encode_all(model.as_mut(), &test.take(test.len().min(2000)).images);
            let (z, side, caption) = generation_codes(spec.kind, &reference, a.seed.unwrap_or(0));
            say!("{caption}");
            (z, side)
        }
    };
    let images = decode_all(model.as_mut(), &codes);
    pictures::generations(&images, side, h, w, &a.out).map_err(|e| CliError::failure(e.to_string()))?;
    say!("wrote {} decoded images to {}", images.shape()[0], a.out.display());
    Ok(())
}

/// `gradtape reconstruct`.
pub fn reconstruct(a: ReconstructArgs) -> Result<(), CliError> {
    check_output_file(&a.out, "--out")?;
    if let Some(csv) = &a.csv {
        check_output_file(csv, "--csv")?;
        check_distinct(&[("--out", &a.out), ("--csv", csv)])?;
    }
    if let (Some(n), Some(_)) = (a.n, &a.indices) {
        return Err(CliError::usage(format!(
            "--n {n}: --indices already chooses the images; give one or the other"
        )));
    }
    if a.n == Some(0) {
        return Err(CliError::usage("--n must be at least 1"));
    }
    let device = check_device(a.device)?;
    let (mut model, spec) = load_model(&a.source)?;
    model.params_mut().to_device(device);
    let (_, test) = load_data(spec.kind, a.data.as_deref(), "--data")?;
    check_input(model.as_ref(), &test)?;
    check_not_empty(&test, "test")?;
    let (h, w) = image_side(&test);
    let chosen = match &a.indices {
        Some(ix) => {
            if let Some(bad) = ix.iter().find(|&&i| i >= test.len()) {
                return Err(CliError::usage(format!(
                    "--indices: {bad} is past the {} test images",
                    test.len()
                )));
            }
            check_picture_fits(ix.len(), h, w, "--indices")?;
            test.select(ix)
        }
        None => {
            let n = a.n.unwrap_or(20).min(test.len());
            check_picture_fits(n, h, w, "--n")?;
            test.take(n)
        }
    };
    let recon = reconstruct_all(model.as_mut(), &chosen.images);
    pictures::reconstructions(&chosen.images, &recon, h, w, &a.out)
        .map_err(|e| CliError::failure(e.to_string()))?;
    if let Some(path) = &a.csv {
        let indices: Vec<usize> = match &a.indices {
            Some(ix) => ix.clone(),
            None => (0..chosen.len()).collect(),
        };
        let rows: Vec<(usize, u8)> = indices.iter().zip(&chosen.labels).map(|(&i, &l)| (i, l)).collect();
        write_csv(path, "x", &rows, &recon)?;
        say!("wrote their numbers to {}", path.display());
    }
    let mse = recon.sub(&chosen.images).square().mean_all().item();
    say!("wrote {} reconstructions to {} (mean squared error {mse:.5})", chosen.len(), a.out.display());
    Ok(())
}

/// `gradtape encode`.
pub fn encode(a: EncodeArgs) -> Result<(), CliError> {
    check_output_file(&a.out, "--out")?;
    let device = check_device(a.device)?;
    let (mut model, spec) = load_model(&a.source)?;
    model.params_mut().to_device(device);
    let (train, test) = load_data(spec.kind, a.data.as_deref(), "--data")?;
    check_input(model.as_ref(), &test)?;
    let data = if a.split == Split::Train { train } else { test };
    check_not_empty(&data, if a.split == Split::Train { "training" } else { "test" })?;
    let codes = encode_all(model.as_mut(), &data.images);
    let d = codes.shape()[1];
    let rows: Vec<(usize, u8)> = data.labels.iter().enumerate().map(|(i, &l)| (i, l)).collect();
    write_csv(&a.out, "z", &rows, &codes)?;
    say!("wrote {} codes of {d} numbers to {}", data.len(), a.out.display());
    Ok(())
}

/// Writes `index,label,{prefix}0,{prefix}1,...` and one line per row of
/// `values` (`[n, d]`), atomically (a temporary file, then a rename).
fn write_csv(path: &Path, prefix: &str, rows: &[(usize, u8)], values: &Tensor<f32>) -> Result<(), CliError> {
    let d = values.shape()[1];
    let mut csv = String::from("index,label");
    for j in 0..d {
        csv.push_str(&format!(",{prefix}{j}"));
    }
    csv.push('\n');
    let values = values.to_cpu();
    for (r, (index, label)) in rows.iter().enumerate() {
        csv.push_str(&format!("{index},{label}"));
        for &v in &values.data()[r * d..(r + 1) * d] {
            csv.push_str(&format!(",{v}"));
        }
        csv.push('\n');
    }
    checkpoint::write_atomically(path, csv.as_bytes()).map_err(|e| CliError::failure(format!("writing {e}")))
}

/// Refuses, before the model runs, a reconstructions picture of `n`
/// images of `h` x `w` that would be over [`pictures::MAX_SIDE`] pixels on
/// a side, naming `flag` and the most images that fit.
fn check_picture_fits(n: usize, h: usize, w: usize, flag: &str) -> Result<(), CliError> {
    let fits = |n: usize| {
        let (width, height) = pictures::reconstructions_size(n, h, w);
        u64::from(width) <= pictures::MAX_SIDE && u64::from(height) <= pictures::MAX_SIDE
    };
    if fits(n) {
        return Ok(());
    }
    let (width, height) = pictures::reconstructions_size(n, h, w);
    // The most that fit: the picture grows with n.
    let (mut lo, mut hi) = (1, n);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Err(CliError::usage(format!(
        "{flag}: {n} images make a picture of {width} x {height} pixels, over the {} pixels a side may have; \
         give at most {lo}",
        pictures::MAX_SIDE
    )))
}

/// Refuses a data set with no images in the part a command uses.
fn check_not_empty(data: &Dataset, what: &str) -> Result<(), CliError> {
    if data.is_empty() {
        return Err(CliError::usage(format!("--data: the data holds no {what} images")));
    }
    Ok(())
}
