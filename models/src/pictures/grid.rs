//! Grids of small grey images: the generic [`image_grid`] and the pictures
//! built on it (reconstructions, filters, generations, denoising).

use std::path::Path;

use gradtape_kernels::Tensor;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{checked_size, grey_clamped, Canvas};
use super::{PictureError, SEPARATOR_RGB};

/// Each image pixel becomes a `TILE_SCALE` x `TILE_SCALE` block in
/// [`reconstructions`], [`filters`], [`generations`] and [`denoising`].
pub const TILE_SCALE: usize = 2;

/// How many digits [`reconstructions`] puts side by side in one row.
pub const RECONSTRUCTIONS_PER_ROW: usize = 10;

/// Pixels between one pair of rows (inputs over reconstructions) and the
/// next in [`reconstructions`], filled with [`SEPARATOR_RGB`].
pub const RECONSTRUCTIONS_PAIR_GAP: usize = 4;

/// Scale of the tiles in [`denoising`] (so the column headers fit above them).
pub const DENOISE_SCALE: usize = TILE_SCALE;

/// Height in pixels of the band with the column headers on top of
/// [`denoising`]; a 1-pixel separator line follows it.
pub const DENOISE_HEADER_HEIGHT: usize = 18;

/// Pixel size `(width, height)` of a grid of `rows` x `cols` tiles of
/// `height` x `width` images drawn at `scale`: tiles are `width * scale`
/// pixels wide and `height * scale` high, with a 1-pixel separator line
/// between neighbouring tiles and none around the outside:
///
/// `width = cols * width * scale + (cols - 1)`,
/// `height = rows * height * scale + (rows - 1)`.
pub fn grid_size(rows: usize, cols: usize, height: usize, width: usize, scale: usize) -> (u32, u32) {
    let side = |n: usize, len: usize| (n * len * scale + n.saturating_sub(1)) as u32;
    (side(cols, width), side(rows, height))
}

/// How a tile's values become grey levels.
#[derive(Clone, Copy)]
enum Shade {
    /// Brightness in [0, 1], clamped.
    Clamp,
    /// Stretched so the tile's own minimum is black and maximum white.
    OwnRange,
}

/// Draws `cells` (row by row; `None` = empty tile) as a grid whose top edge
/// is at `top` on `canvas`.
fn draw_grid(
    canvas: &mut Canvas,
    top: usize,
    cols: usize,
    (h, w, scale): (usize, usize, usize),
    cells: &[Option<&[f32]>],
    shade: Shade,
) {
    for (i, cell) in cells.iter().enumerate() {
        let Some(pixels) = cell else { continue };
        let (r, c) = (i / cols, i % cols);
        let (x0, y0) = (c * (w * scale + 1), top + r * (h * scale + 1));
        match shade {
            Shade::Clamp => canvas.tile((x0, y0), pixels, (h, w, scale), grey_clamped),
            Shade::OwnRange => {
                let (lo, hi) = pixels
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let span = hi - lo;
                canvas.tile((x0, y0), pixels, (h, w, scale), |v| {
                    if !v.is_finite() {
                        0
                    } else if span > 0.0 && span.is_finite() {
                        grey_clamped((v - lo) / span)
                    } else {
                        128
                    }
                })
            }
        }
    }
}

/// Checks the grid's numbers and returns the canvas for it, filled with the
/// separator colour (which is also what empty tiles show).
fn grid_canvas(
    path: &Path,
    rows: usize,
    cols: usize,
    (h, w, scale): (usize, usize, usize),
    extra_top: usize,
) -> Result<Canvas, PictureError> {
    if rows == 0 || cols == 0 || h == 0 || w == 0 || scale == 0 {
        return Err(PictureError::bad_input(
            path,
            format!("rows ({rows}), cols ({cols}), height ({h}), width ({w}) and scale ({scale}) must all be at least 1"),
        ));
    }
    let side = |n: usize, len: usize| {
        (n as u64).saturating_mul(len as u64).saturating_mul(scale as u64).saturating_add(n as u64 - 1)
    };
    let (width, height) = checked_size(side(cols, w), side(rows, h) + extra_top as u64, path)?;
    Ok(Canvas::new(width, height, SEPARATOR_RGB))
}

/// Splits an image tensor `[n, h * w]` (or `[n, h, w]`, `[n, 1, h, w]`) into
/// its `n` images.
fn images_of<'a>(
    t: &'a Tensor<f32>,
    h: usize,
    w: usize,
    what: &str,
    path: &Path,
) -> Result<Vec<&'a [f32]>, PictureError> {
    let shape = t.shape();
    let per: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || h == 0 || w == 0 || per != h * w {
        return Err(PictureError::bad_input(
            path,
            format!(
                "{what} should hold images of {h} x {w} pixels, shape [n, {}], but its shape is {shape:?}",
                h * w
            ),
        ));
    }
    if shape[0] == 0 {
        return Err(PictureError::bad_input(path, format!("{what} holds no images (shape {shape:?})")));
    }
    Ok(t.data().chunks_exact(per).collect())
}

/// Draws grey images as a grid of `rows` x `cols` tiles, filled row by row,
/// and writes it as a PNG to `path`.
///
/// Each image has `height * width` values (row by row), read as brightness
/// in `[0, 1]` (0 black, 1 white; clamped, NaN black). Each pixel becomes a
/// `scale` x `scale` block. Tiles are separated by 1-pixel lines of colour
/// [`SEPARATOR_RGB`]; tiles with no image (fewer images than `rows * cols`)
/// are filled with that colour too. The size is [`grid_size`]. More images
/// than tiles, or an image of the wrong length, is an error.
pub fn image_grid<S: AsRef<[f32]>>(
    images: &[S],
    rows: usize,
    cols: usize,
    height: usize,
    width: usize,
    scale: usize,
    path: impl AsRef<Path>,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let mut canvas = grid_canvas(path, rows, cols, (height, width, scale), 0)?;
    if images.len() > rows * cols {
        return Err(PictureError::bad_input(
            path,
            format!("{} images don't fit in a grid of {rows} x {cols} tiles", images.len()),
        ));
    }
    let mut cells = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        let image = image.as_ref();
        if image.len() != height * width {
            return Err(PictureError::bad_input(
                path,
                format!(
                    "image {i} has {} values, expected {height} x {width} = {}",
                    image.len(),
                    height * width
                ),
            ));
        }
        cells.push(Some(image));
    }
    draw_grid(&mut canvas, 0, cols, (height, width, scale), &cells, Shade::Clamp);
    canvas.save(path)
}

/// Rows and columns of tiles that [`reconstructions`] uses for `n` images:
/// `cols = min(n, RECONSTRUCTIONS_PER_ROW)` and two rows (inputs, then their
/// reconstructions) for every `RECONSTRUCTIONS_PER_ROW` images, so
/// `rows = 2 * ceil(n / RECONSTRUCTIONS_PER_ROW)`.
pub fn reconstructions_layout(n: usize) -> (usize, usize) {
    (2 * n.div_ceil(RECONSTRUCTIONS_PER_ROW), n.clamp(1, RECONSTRUCTIONS_PER_ROW))
}

/// Pixel size `(width, height)` of [`reconstructions`] for `n` images of
/// `h` x `w`: with `(rows, cols)` from [`reconstructions_layout`] and
/// `pairs = rows / 2`, each pair of rows is a grid of 2 x `cols` tiles
/// ([`grid_size`] at [`TILE_SCALE`]) and neighbouring pairs are
/// [`RECONSTRUCTIONS_PAIR_GAP`] pixels apart:
///
/// `width = cols * w * TILE_SCALE + (cols - 1)`,
/// `height = pairs * (2 * h * TILE_SCALE + 1) + (pairs - 1) * RECONSTRUCTIONS_PAIR_GAP`.
pub fn reconstructions_size(n: usize, h: usize, w: usize) -> (u32, u32) {
    let (rows, cols) = reconstructions_layout(n);
    let pairs = (rows / 2).max(1);
    let (width, pair_height) = grid_size(2, cols, h, w, TILE_SCALE);
    (width, pairs as u32 * pair_height + (pairs as u32 - 1) * RECONSTRUCTIONS_PAIR_GAP as u32)
}

/// Shows what the autoencoder does to each input: input digits on one row
/// and, directly below each, the autoencoder's reconstruction of it.
///
/// `inputs` and `outputs` are `[n, h * w]` with the same `n`. Layout
/// ([`reconstructions_layout`]): up to [`RECONSTRUCTIONS_PER_ROW`] digits per
/// row; images `0..10` take rows 0 (inputs) and 1 (reconstructions), images
/// `10..20` rows 2 and 3, and so on; unused tiles in the last pair of rows are
/// empty. Within a pair, rows are 1 pixel apart like any grid; pairs are
/// [`RECONSTRUCTIONS_PAIR_GAP`] pixels apart so they read as pairs. Tiles are
/// drawn at [`TILE_SCALE`]; the size is [`reconstructions_size`].
pub fn reconstructions(
    inputs: &Tensor<f32>,
    outputs: &Tensor<f32>,
    h: usize,
    w: usize,
    path: impl AsRef<Path>,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let ins = images_of(inputs, h, w, "inputs", path)?;
    let outs = images_of(outputs, h, w, "outputs", path)?;
    if ins.len() != outs.len() {
        return Err(PictureError::bad_input(
            path,
            format!("{} inputs but {} reconstructions", ins.len(), outs.len()),
        ));
    }
    let (_, cols) = reconstructions_layout(ins.len());
    let (width, height) = reconstructions_size(ins.len(), h, w);
    let (width, height) = checked_size(width as u64, height as u64, path)?;
    let mut canvas = Canvas::new(width, height, SEPARATOR_RGB);
    let pair_pitch = 2 * h * TILE_SCALE + 1 + RECONSTRUCTIONS_PAIR_GAP;
    for (pair, (ins, outs)) in
        ins.chunks(RECONSTRUCTIONS_PER_ROW).zip(outs.chunks(RECONSTRUCTIONS_PER_ROW)).enumerate()
    {
        let mut cells: Vec<Option<&[f32]>> = vec![None; 2 * cols];
        for (c, (a, b)) in ins.iter().zip(outs).enumerate() {
            cells[c] = Some(*a);
            cells[cols + c] = Some(*b);
        }
        draw_grid(&mut canvas, pair * pair_pitch, cols, (h, w, TILE_SCALE), &cells, Shade::Clamp);
    }
    canvas.save(path)
}

/// Rows and columns of tiles that [`filters`] uses for `k` filters: a roughly
/// square grid, `cols = ceil(sqrt(k))`, `rows = ceil(k / cols)`.
pub fn filters_layout(k: usize) -> (usize, usize) {
    let mut cols = (k as f64).sqrt().ceil() as usize;
    while cols * cols < k {
        cols += 1;
    }
    let cols = cols.max(1);
    (k.div_ceil(cols).max(1), cols)
}

/// Shows the first encoder layer's weights: one tile per hidden unit, the
/// pattern of input pixels that unit responds to.
///
/// `weights` is `[k, h * w]` (one row of input weights per unit; transpose a
/// `[h * w, k]` matrix first). Weights have no natural brightness scale, so
/// each tile is stretched to its own range: its smallest weight is black, its
/// largest white (a constant tile is mid grey). Tiles are laid out by
/// [`filters_layout`] at [`TILE_SCALE`]; the PNG is
/// `grid_size(rows, cols, h, w, TILE_SCALE)` pixels.
pub fn filters(
    weights: &Tensor<f32>,
    h: usize,
    w: usize,
    path: impl AsRef<Path>,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let tiles = images_of(weights, h, w, "weights", path)?;
    let (rows, cols) = filters_layout(tiles.len());
    let cells: Vec<Option<&[f32]>> = tiles.into_iter().map(Some).collect();
    let mut canvas = grid_canvas(path, rows, cols, (h, w, TILE_SCALE), 0)?;
    draw_grid(&mut canvas, 0, cols, (h, w, TILE_SCALE), &cells, Shade::OwnRange);
    canvas.save(path)
}

/// Shows images the decoder made up: `images` (`[n, h * w]`, brightness in
/// `[0, 1]`) decoded from codes on a grid over a 2-D code space (row by row),
/// or from random codes drawn from the prior.
///
/// The grid is `grid_side` x `grid_side` tiles at [`TILE_SCALE`] (so
/// `grid_size(grid_side, grid_side, h, w, TILE_SCALE)` pixels); `n` may be
/// smaller than `grid_side²` (the rest stays empty) but not larger.
pub fn generations(
    images: &Tensor<f32>,
    grid_side: usize,
    h: usize,
    w: usize,
    path: impl AsRef<Path>,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let tiles = images_of(images, h, w, "images", path)?;
    image_grid(&tiles, grid_side, grid_side, h, w, TILE_SCALE, path)
}

/// Pixel size `(width, height)` of [`denoising`] for `n` triplets of
/// `h` x `w` images: three tiles of `w * DENOISE_SCALE` pixels and two
/// separators across; a header band of [`DENOISE_HEADER_HEIGHT`] pixels, then
/// for each triplet a separator line and a row of tiles `h * DENOISE_SCALE`
/// high:
///
/// `width = 3 * w * DENOISE_SCALE + 2`,
/// `height = DENOISE_HEADER_HEIGHT + n * (h * DENOISE_SCALE + 1)`.
pub fn denoising_size(n: usize, h: usize, w: usize) -> (u32, u32) {
    ((3 * w * DENOISE_SCALE + 2) as u32, (DENOISE_HEADER_HEIGHT + n * (h * DENOISE_SCALE + 1)) as u32)
}

/// Shows what the denoising autoencoder does: each row is one digit, as
/// `noisy | denoised | clean` (the corrupted input, the network's output, and
/// the original it should recover), under column headers with those words.
///
/// All three tensors are `[n, h * w]` with the same `n`, brightness in
/// `[0, 1]`. The size is [`denoising_size`].
pub fn denoising(
    noisy: &Tensor<f32>,
    reconstructed: &Tensor<f32>,
    clean: &Tensor<f32>,
    h: usize,
    w: usize,
    path: impl AsRef<Path>,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let columns = [
        ("noisy", images_of(noisy, h, w, "noisy", path)?),
        ("denoised", images_of(reconstructed, h, w, "reconstructed", path)?),
        ("clean", images_of(clean, h, w, "clean", path)?),
    ];
    let n = columns[0].1.len();
    if columns.iter().any(|(_, c)| c.len() != n) {
        return Err(PictureError::bad_input(
            path,
            format!(
                "noisy, reconstructed and clean hold {}, {} and {} images; they must match",
                columns[0].1.len(),
                columns[1].1.len(),
                columns[2].1.len()
            ),
        ));
    }
    let scale = DENOISE_SCALE;
    let mut canvas = grid_canvas(path, n, 3, (h, w, scale), DENOISE_HEADER_HEIGHT + 1)?;
    let header_bytes = canvas.width as usize * DENOISE_HEADER_HEIGHT * 3;
    canvas.buf[..header_bytes].fill(255);
    let cells: Vec<Option<&[f32]>> =
        (0..n).flat_map(|i| columns.iter().map(move |(_, c)| Some(c[i]))).collect();
    draw_grid(&mut canvas, DENOISE_HEADER_HEIGHT + 1, 3, (h, w, scale), &cells, Shade::Clamp);

    let tile_w = (w * scale) as i32;
    canvas.plot(path, |root| {
        for (c, (header, _)) in columns.iter().enumerate() {
            // The largest font size (at most 14 px) whose text fits the tile.
            let mut size = 14.0;
            let style = loop {
                let style = TextStyle::from(("sans-serif", size).into_font())
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let (tw, _) = root.estimate_text_size(header, &style)?;
                if tw as i32 <= tile_w - 2 || size <= 6.0 {
                    break style;
                }
                size -= 1.0;
            };
            let x = c as i32 * (tile_w + 1) + tile_w / 2;
            root.draw_text(header, &style, (x, DENOISE_HEADER_HEIGHT as i32 / 2))?;
        }
        Ok(())
    })?;
    canvas.save(path)
}
