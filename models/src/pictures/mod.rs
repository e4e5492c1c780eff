//! Pictures of what an autoencoder learned, written as PNG files plus one
//! `index.html` page that shows them all.
//!
//! Numbers in a log file say *how well* a model does; pictures say *what* it
//! does. This module turns the tensors that training produces into images a
//! person can look at:
//!
//! * [`reconstructions`]: digits going in (top row) and what the autoencoder
//!   gives back (the row below). Blurry or wrong digits are easy to spot.
//! * [`filters`]: the weights of the first encoder layer, one small picture per
//!   hidden unit. Each unit looks for a pattern of pixels; the picture *is* that
//!   pattern (bright = "I want ink here", dark = "I want no ink here").
//! * [`latent_map`]: every test digit's code as a dot, coloured by which digit
//!   it really is. If the colours form separate clouds, the code has learned
//!   what digit it is looking at without ever being told. Codes with more than
//!   two numbers are flattened to two with [`pca_2d`] (principal component
//!   analysis: the two directions in which the codes vary most).
//! * [`generations`]: images the decoder makes from codes we choose (a grid over
//!   a 2-D code space, or random codes from a VAE's prior).
//! * [`denoising`]: a noisy digit, what the denoising autoencoder made of it,
//!   and the clean original, side by side.
//! * [`loss_curves`]: the training and test loss after each epoch.
//! * [`write_index_html`]: one self-contained web page with the settings, the
//!   final numbers and every picture.
//!
//! The lower-level [`image_grid`] draws any list of small grey images as a grid.
//!
//! # Turning it on
//!
//! This module sits behind the crate's `pictures` feature, which brings in
//! the two crates it draws with (`png` and `plotters`) and nothing of the
//! command-line program's:
//!
//! ```toml
//! gradtape-models = { version = "0.1", features = ["pictures"] }
//! ```
//!
//! ```
//! use gradtape_models::pictures;
//! use gradtape_kernels::Tensor;
//!
//! // Two 2x2 "digits" and their reconstructions, side by side.
//! let inputs = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], &[2, 4]);
//! let outputs = Tensor::from_vec(vec![0.1f32, 0.9, 0.8, 0.2, 0.9, 0.1, 0.2, 0.7], &[2, 4]);
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("reconstructions.png");
//! pictures::reconstructions(&inputs, &outputs, 2, 2, &path).unwrap();
//! assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
//! ```
//!
//! # Conventions
//!
//! * Pixel values are read as brightness in `[0, 1]` (0 = black, 1 = white);
//!   anything outside is clamped, and NaN is drawn black. [`filters`] is the
//!   exception: it stretches each tile to its own range.
//! * Image tensors are `[n, h * w]` (one flattened image per row); `[n, h, w]`
//!   and `[n, 1, h, w]` work too, as long as each of the `n` images has `h * w`
//!   numbers.
//! * Every picture is an 8-bit RGB PNG. Grids separate their tiles with 1-pixel
//!   lines of colour [`SEPARATOR_RGB`]; each image pixel becomes a `scale` x
//!   `scale` block (see [`grid_size`] for the exact size of a grid).
//! * Missing parent folders are created. Every failure (a bad shape, a folder
//!   that can't be made, a file that can't be written) comes back as a
//!   [`PictureError`] that names the file; nothing here panics on bad input.
//! * Text (titles, axis labels, legends, column headers) is drawn with the
//!   DejaVu Sans font that is built into the program (see
//!   `models/assets/fonts/LICENSE-DejaVu.txt`), so pictures look the same on
//!   a machine that has no fonts installed at all.

mod canvas;
mod grid;
mod html;
mod pca;
mod plots;

use std::fmt;
use std::path::{Path, PathBuf};

pub use canvas::MAX_SIDE;
pub use grid::{
    denoising, denoising_size, filters, filters_layout, generations, grid_size, image_grid, reconstructions,
    reconstructions_layout, reconstructions_size, DENOISE_HEADER_HEIGHT, DENOISE_SCALE,
    RECONSTRUCTIONS_PAIR_GAP, RECONSTRUCTIONS_PER_ROW, TILE_SCALE,
};
pub use html::{write_index_html, write_index_html_with_links};
pub use pca::{pca_2d, Pca2};
pub use plots::{latent_map, loss_curves, LATENT_MAP_SIZE, LOSS_CURVES_SIZE};

/// Colour of the 1-pixel lines between the tiles of a grid, and of empty
/// tiles. A muted blue, so it can't be mistaken for a grey image pixel.
pub const SEPARATOR_RGB: [u8; 3] = [70, 100, 150];

/// Why a picture could not be made. Every variant names the file it was for.
#[derive(Debug)]
pub enum PictureError {
    /// The data handed in doesn't fit the picture (wrong shape, too many
    /// images, NaN in codes, ...).
    BadInput {
        /// The picture that was asked for.
        path: PathBuf,
        /// What is wrong with the data.
        message: String,
    },
    /// A folder couldn't be created or a file couldn't be written.
    Io {
        /// The picture (or page) that was being written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    Encode {
        /// The picture that was being encoded.
        path: PathBuf,
        /// The encoder's error.
        message: String,
    },
    /// Drawing a chart or its text failed.
    Draw {
        /// The picture that was being drawn.
        path: PathBuf,
        /// The drawing library's error.
        message: String,
    },
}

impl PictureError {
    /// The file the failed picture was meant for.
    pub fn path(&self) -> &Path {
        match self {
            PictureError::BadInput { path, .. }
            | PictureError::Io { path, .. }
            | PictureError::Encode { path, .. }
            | PictureError::Draw { path, .. } => path,
        }
    }

    pub(crate) fn bad_input(path: &Path, message: impl Into<String>) -> Self {
        PictureError::BadInput { path: path.to_path_buf(), message: message.into() }
    }

    pub(crate) fn draw(path: &Path, message: impl fmt::Display) -> Self {
        PictureError::Draw { path: path.to_path_buf(), message: message.to_string() }
    }
}

impl fmt::Display for PictureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PictureError::BadInput { path, message } => {
                write!(f, "can't draw {}: {message}", path.display())
            }
            PictureError::Io { path, source } => write!(f, "can't write {}: {source}", path.display()),
            PictureError::Encode { path, message } => {
                write!(f, "can't encode PNG {}: {message}", path.display())
            }
            PictureError::Draw { path, message } => write!(f, "can't draw {}: {message}", path.display()),
        }
    }
}

impl std::error::Error for PictureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PictureError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes `bytes` to `path` as every file of the program is written: to a
/// temporary sibling, synced, then renamed into place
/// ([`write_atomically`](crate::checkpoint::write_atomically)), so a full disk leaves
/// the previous file whole and a device, pipe or symbolic link at `path` is
/// refused rather than replaced.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), PictureError> {
    use crate::checkpoint::{write_atomically, CheckpointError};
    write_atomically(path, bytes).map_err(|e| {
        let source = match e {
            CheckpointError::Io { source, action, .. } => {
                std::io::Error::new(source.kind(), format!("cannot {action}: {source}"))
            }
            CheckpointError::NotAFile { what, .. } => {
                std::io::Error::other(format!("it is {what}, not a regular file, and is not replaced"))
            }
            other => std::io::Error::other(other.to_string()),
        };
        PictureError::Io { path: path.to_path_buf(), source }
    })
}

/// Creates the parent folder of `path` (and its parents) if missing.
pub(crate) fn create_parent(path: &Path) -> Result<(), PictureError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|source| PictureError::Io { path: path.to_path_buf(), source }),
        _ => Ok(()),
    }
}
