//! The pixel buffer every picture is drawn into, PNG writing, and the
//! built-in font that plotters draws text with.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{create_parent, PictureError};

/// DejaVu Sans, built into the binary so text renders on machines with no
/// fonts installed (licence: models/assets/fonts/LICENSE-DejaVu.txt).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Largest width or height of a picture, in pixels: a guard against a typo
/// in a size asking for gigabytes of memory.
pub const MAX_SIDE: u64 = 32_768;

/// Registers the built-in font with plotters (once per process) under every
/// family name plotters might ask for.
pub(crate) fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for family in ["sans-serif", "serif", "monospace"] {
                plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS)
                    .map_err(|_| "the built-in DejaVu Sans font could not be read".to_string())?;
            }
            Ok(())
        })
        .clone()
}

/// An RGB picture in memory, 3 bytes per pixel, row by row.
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    pub buf: Vec<u8>,
}

impl Canvas {
    /// A `width` x `height` canvas filled with `rgb`. The caller has checked
    /// the size against [`MAX_SIDE`].
    pub fn new(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let mut buf = vec![0u8; width as usize * height as usize * 3];
        for px in buf.chunks_exact_mut(3) {
            px.copy_from_slice(&rgb);
        }
        Canvas { width, height, buf }
    }

    /// Sets one pixel; pixels outside the canvas are ignored.
    pub fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width as usize && y < self.height as usize {
            let i = (y * self.width as usize + x) * 3;
            self.buf[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// Draws an `h` x `w` grey image with its top-left corner at `(x0, y0)`,
    /// each pixel a `scale` x `scale` block of grey level `grey(value)`.
    pub fn tile(
        &mut self,
        (x0, y0): (usize, usize),
        pixels: &[f32],
        (h, w, scale): (usize, usize, usize),
        grey: impl Fn(f32) -> u8,
    ) {
        for r in 0..h {
            for c in 0..w {
                let g = grey(pixels[r * w + c]);
                for dy in 0..scale {
                    for dx in 0..scale {
                        self.put(x0 + c * scale + dx, y0 + r * scale + dy, [g, g, g]);
                    }
                }
            }
        }
    }

    /// Runs plotters drawing code on the whole canvas. Errors, and panics
    /// inside plotters, come back as [`PictureError::Draw`] naming `path`.
    pub fn plot(
        &mut self,
        path: &Path,
        draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<(), PictureError> {
        ensure_font().map_err(|m| PictureError::draw(path, m))?;
        let size = (self.width, self.height);
        let buf = &mut self.buf;
        let outcome = catch_unwind(AssertUnwindSafe(move || -> Result<(), String> {
            let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
            draw(&root).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(PictureError::draw(path, message)),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown reason".to_string());
                Err(PictureError::draw(path, format!("the plotting library failed: {why}")))
            }
        }
    }

    /// Encodes the canvas as an 8-bit RGB PNG and writes it to `path`,
    /// creating missing parent folders, whole or not at all (see
    /// [`super::write_whole`]).
    pub fn save(&self, path: &Path) -> Result<(), PictureError> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .and_then(|mut writer| writer.write_image_data(&self.buf))
            .map_err(|e| PictureError::Encode { path: path.to_path_buf(), message: e.to_string() })?;
        create_parent(path)?;
        super::write_whole(path, &png)
    }
}

/// Checks that a picture of `width` x `height` pixels is sensible and returns
/// the size as `u32`s.
pub(crate) fn checked_size(width: u64, height: u64, path: &Path) -> Result<(u32, u32), PictureError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PictureError::bad_input(
            path,
            format!("the picture would be {width} x {height} pixels (each side must be 1 to {MAX_SIDE})"),
        ));
    }
    Ok((width as u32, height as u32))
}

/// Grey level for a brightness in `[0, 1]`: clamped, NaN drawn black.
pub(crate) fn grey_clamped(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}
