//! `sample`, `reconstruct` and `encode`: using a trained checkpoint, or
//! weights from elsewhere (a PyTorch `state_dict`) with `--weights`.

use super::report::{decode_all, encode_all, generation_codes, reconstruct_all};
use super::snapshot;
use super::train::load_data;
use super::{check_device, CliError, Device};
use crate::pictures;
use gradtape::Tensor;
use gradtape_models::autoencoders::{Autoencoder, ModelKind};
use gradtape_models::checkpoint;
use gradtape_models::data::Dataset;
use gradtape_models::spec::ModelSpec;
use gradtape_models::state_dict::read_state_dict;
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
    /// float64); needs --model. The sizes are read off the tensors' shapes.
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
            let tensors = read_state_dict(path).map_err(|e| CliError::usage(format!("--weights: {e}")))?;
            let spec = ModelSpec::sized_from(kind, &tensors);
            let model = spec
                .build_from::<f32, f32>(&tensors)
                .map_err(|e| CliError::usage(format!("--weights: {}: {e}", path.display())))?;
            (model, spec)
        }
        _ => return Err(CliError::usage("give --checkpoint, or --weights with --model")),
    };
    model.0.set_training(false);
    Ok(model)
}

/// Options of `gradtape sample`.
#[derive(clap::Args, Debug, Clone)]
pub struct SampleArgs {
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
    /// Seed for random points.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
    #[command(flatten)]
    pub source: ModelSource,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Test images to reconstruct, by index (e.g. 0,5,7); default the first --n.
    #[arg(long, value_delimiter = ',')]
    pub indices: Option<Vec<usize>>,
    /// How many test images, when no --indices are given.
    #[arg(long, default_value_t = 20)]
    pub n: usize,
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
    Train,
    Test,
}

fn parse_points(text: &str, d: usize) -> Result<Tensor<f32>, CliError> {
    let mut values = Vec::new();
    let mut n = 0;
    for (i, point) in text.split(';').filter(|p| !p.trim().is_empty()).enumerate() {
        let nums: Vec<f32> =
            point.split(',').map(|x| x.trim().parse::<f32>()).collect::<Result<_, _>>().map_err(|_| {
                CliError::usage(format!("--points: point {} ({point:?}) is not a list of numbers", i + 1))
            })?;
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
    check_output_path(&a.out, "--out")?;
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
            let (z, side, caption) = generation_codes(spec.kind, &reference, a.seed);
            println!("{caption}");
            (z, side)
        }
    };
    let images = decode_all(model.as_mut(), &codes);
    pictures::generations(&images, side, h, w, &a.out).map_err(|e| CliError::failure(e.to_string()))?;
    println!("wrote {} decoded images to {}", images.shape()[0], a.out.display());
    Ok(())
}

/// `gradtape reconstruct`.
pub fn reconstruct(a: ReconstructArgs) -> Result<(), CliError> {
    check_output_path(&a.out, "--out")?;
    if let Some(csv) = &a.csv {
        check_output_path(csv, "--csv")?;
    }
    if a.n == 0 {
        return Err(CliError::usage("--n must be at least 1"));
    }
    let device = check_device(a.device)?;
    let (mut model, spec) = load_model(&a.source)?;
    model.params_mut().to_device(device);
    let (_, test) = load_data(spec.kind, a.data.as_deref(), "--data")?;
    check_input(model.as_ref(), &test)?;
    check_not_empty(&test, "test")?;
    let chosen = match &a.indices {
        Some(ix) => {
            if let Some(bad) = ix.iter().find(|&&i| i >= test.len()) {
                return Err(CliError::usage(format!(
                    "--indices: {bad} is past the {} test images",
                    test.len()
                )));
            }
            test.select(ix)
        }
        None => test.take(a.n.min(test.len())),
    };
    let recon = reconstruct_all(model.as_mut(), &chosen.images);
    let (h, w) = image_side(&test);
    pictures::reconstructions(&chosen.images, &recon, h, w, &a.out)
        .map_err(|e| CliError::failure(e.to_string()))?;
    if let Some(path) = &a.csv {
        let indices: Vec<usize> = match &a.indices {
            Some(ix) => ix.clone(),
            None => (0..chosen.len()).collect(),
        };
        let rows: Vec<(usize, u8)> = indices.iter().zip(&chosen.labels).map(|(&i, &l)| (i, l)).collect();
        write_csv(path, "x", &rows, &recon)?;
        println!("wrote their numbers to {}", path.display());
    }
    let mse = recon.sub(&chosen.images).square().mean_all().item();
    println!("wrote {} reconstructions to {} (mean squared error {mse:.5})", chosen.len(), a.out.display());
    Ok(())
}

/// `gradtape encode`.
pub fn encode(a: EncodeArgs) -> Result<(), CliError> {
    check_output_path(&a.out, "--out")?;
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
    println!("wrote {} codes of {d} numbers to {}", data.len(), a.out.display());
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

/// Refuses an output path that is a folder (or sits in no folder), before
/// any work: `flag` names the option.
pub fn check_output_path(path: &Path, flag: &str) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::usage(format!("{flag}: {} is a folder; give a file name", path.display())));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(CliError::usage(format!(
            "{flag}: there is no folder {} to write {} in",
            parent.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a data set with no images in the part a command uses.
fn check_not_empty(data: &Dataset, what: &str) -> Result<(), CliError> {
    if data.is_empty() {
        return Err(CliError::usage(format!("--data: the data holds no {what} images")));
    }
    Ok(())
}
