//! Tests for the pictures module: every picture decodes as a PNG of the
//! documented size, grids put the right grey levels in the right places, the
//! PCA is right on data with a known answer, the HTML page is complete and
//! escaped, and bad paths or shapes give errors (naming the path) rather than
//! panics.

use std::path::{Path, PathBuf};

use gradtape_kernels::Tensor;
use gradtape_models::pictures::{self, PictureError, SEPARATOR_RGB};

/// A fresh, empty folder under the target directory for one test.
pub(crate) fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn open_rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display())).to_rgb8()
}

pub(crate) fn assert_size(path: &Path, expected: (u32, u32)) -> image::RgbImage {
    let img = open_rgb(path);
    assert_eq!(img.dimensions(), expected, "size of {}", path.display());
    img
}

pub(crate) fn grey(img: &image::RgbImage, x: u32, y: u32) -> u8 {
    let p = img.get_pixel(x, y).0;
    assert!(p[0] == p[1] && p[1] == p[2], "pixel ({x}, {y}) is {p:?}, not grey");
    p[0]
}

/// `n` images of `h * w` values; image `i` is filled with `value(i)`.
pub(crate) fn images(n: usize, h: usize, w: usize, value: impl Fn(usize) -> f32) -> Tensor<f32> {
    let data = (0..n).flat_map(|i| vec![value(i); h * w]).collect();
    Tensor::from_vec(data, &[n, h * w])
}

/// The latent map's digit colours ("tab10") and legend width, as
/// `pictures::plots` draws them.
pub(crate) const TAB10: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
pub(crate) const LEGEND_WIDTH: u32 = 100;

/// For each digit, the number of pixels inside the latent map's chart (away
/// from the axis labels, the title and the legend) that have the digit's
/// colour at some opacity over white: a dot is drawn at 70%, and dots drawn
/// over each other are darker, but always on the line from white to the
/// digit's colour.
pub(crate) fn dot_pixels_per_digit(img: &image::RgbImage) -> [usize; 10] {
    let (w, h) = pictures::LATENT_MAP_SIZE;
    let mut counts = [0; 10];
    for (x, y, p) in img.enumerate_pixels() {
        if x < 85 || x >= w - LEGEND_WIDTH - 15 || y < 60 || y >= h - 60 {
            continue;
        }
        for (digit, colour) in TAB10.iter().enumerate() {
            // The opacity each channel implies, where the colour differs
            // from white; all must agree.
            let mut alphas = (0..3)
                .filter(|&k| colour[k] < 250)
                .map(|k| (255.0 - p.0[k] as f64) / (255.0 - colour[k] as f64));
            let first = alphas.next().expect("no tab10 colour is white");
            let white_channels_stay_white = (0..3).filter(|&k| colour[k] >= 250).all(|k| p.0[k] >= 245);
            if (0.5..=1.05).contains(&first)
                && alphas.all(|a| (a - first).abs() < 0.06)
                && white_channels_stay_white
            {
                counts[digit] += 1;
            }
        }
    }
    counts
}

/// Asserts that drawing failed with an error whose message contains
/// `expected` (so that a different failure does not pass for this one).
#[track_caller]
pub(crate) fn assert_error(result: Result<(), PictureError>, expected: &str) {
    match result {
        Ok(()) => panic!("expected an error containing {expected:?}, got Ok"),
        Err(e) => assert!(e.to_string().contains(expected), "expected {expected:?} in: {e}"),
    }
}

/// Number of distinct colours in the picture (to see that something was drawn).
pub(crate) fn colour_count(img: &image::RgbImage) -> usize {
    let mut seen: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[test]
fn grid_size_follows_the_formula() {
    assert_eq!(pictures::grid_size(1, 1, 28, 28, 1), (28, 28));
    assert_eq!(pictures::grid_size(2, 3, 4, 5, 2), (3 * 10 + 2, 2 * 8 + 1));
}

#[test]
fn image_grid_places_tiles_and_values() {
    let dir = out_dir("image_grid");
    let (h, w, scale) = (3, 4, 2);
    // Tile 0 all ones (white), tile 1 all zeros (black), tile 2 a gradient
    // with out-of-range values, tile 3 holds one NaN; tiles 4 and 5 empty.
    let mut gradient = vec![0.0f32; h * w];
    gradient[0] = -1.0; // clamps to black
    gradient[1] = 0.5;
    gradient[w] = 2.0; // clamps to white
    let mut with_nan = vec![1.0f32; h * w];
    with_nan[0] = f32::NAN;
    let tiles = vec![vec![1.0f32; h * w], vec![0.0f32; h * w], gradient, with_nan];
    let path = dir.join("grid.png");
    pictures::image_grid(&tiles, 2, 3, h, w, scale, &path).unwrap();
    let img = assert_size(&path, pictures::grid_size(2, 3, h, w, scale));
    assert_eq!(img.dimensions(), (3 * 8 + 2, 2 * 6 + 1));

    // Distance from one tile's left (top) edge to the next one's.
    let (tw, th) = ((w * scale + 1) as u32, (h * scale + 1) as u32);
    // Tile 0 (row 0, col 0): every pixel white.
    for y in 0..(h * scale) as u32 {
        for x in 0..(w * scale) as u32 {
            assert_eq!(grey(&img, x, y), 255);
        }
    }
    // Tile 1 (row 0, col 1): black.
    assert_eq!(grey(&img, tw, 0), 0);
    assert_eq!(grey(&img, tw + 7, 5), 0);
    // Tile 2 (row 0, col 2): clamping, and each value is a scale x scale block.
    let x2 = 2 * tw;
    assert_eq!(grey(&img, x2, 0), 0);
    assert_eq!(grey(&img, x2 + 1, 1), 0);
    assert_eq!(grey(&img, x2 + 2, 0), 128);
    assert_eq!(grey(&img, x2 + 3, 1), 128);
    assert_eq!(grey(&img, x2, 2), 255);
    assert_eq!(grey(&img, x2 + 1, 3), 255);
    // Tile 3 (row 1, col 0): NaN is black, the rest white.
    assert_eq!(grey(&img, 0, th), 0);
    assert_eq!(grey(&img, 2, th), 255);
    // Separators between tiles and empty tiles have the separator colour.
    assert_eq!(img.get_pixel(tw - 1, 0).0, SEPARATOR_RGB);
    assert_eq!(img.get_pixel(0, th - 1).0, SEPARATOR_RGB);
    assert_eq!(img.get_pixel(tw + 3, th + 2).0, SEPARATOR_RGB);
    assert_eq!(img.get_pixel(2 * tw + 3, th + 2).0, SEPARATOR_RGB);

    // Slices work as well as Vecs.
    let slices: Vec<&[f32]> = tiles.iter().map(|t| t.as_slice()).collect();
    pictures::image_grid(&slices, 2, 2, h, w, 1, dir.join("slices.png")).unwrap();
    assert_size(&dir.join("slices.png"), (2 * 4 + 1, 2 * 3 + 1));
}

#[test]
fn image_grid_rejects_bad_input_without_panicking() {
    let dir = out_dir("image_grid_bad");
    let path = dir.join("bad.png");
    let too_many = vec![vec![0.0f32; 4]; 5];
    let err = pictures::image_grid(&too_many, 2, 2, 2, 2, 1, &path).unwrap_err();
    assert!(matches!(err, PictureError::BadInput { .. }), "{err}");
    assert!(err.to_string().contains("bad.png"), "{err}");
    let wrong_len = vec![vec![0.0f32; 3]];
    assert_error(
        pictures::image_grid(&wrong_len, 1, 1, 2, 2, 1, &path),
        "image 0 has 3 values, expected 2 x 2 = 4",
    );
    assert_error(pictures::image_grid(&[vec![0.0f32; 4]], 0, 1, 2, 2, 1, &path), "rows (0), cols (1)");
    assert_error(pictures::image_grid(&[vec![0.0f32; 4]], 1, 1, 2, 2, 0, &path), "and scale (0) must all be");
    assert!(!path.exists());
}

#[test]
fn image_grid_creates_missing_folders() {
    let dir = out_dir("image_grid_folders");
    let path = dir.join("a").join("b").join("grid.png");
    pictures::image_grid(&[vec![0.5f32; 4]], 1, 1, 2, 2, 3, &path).unwrap();
    let img = assert_size(&path, (6, 6));
    assert_eq!(grey(&img, 5, 5), 128);
}

#[test]
fn a_file_used_as_a_folder_is_an_error_naming_the_path() {
    let dir = out_dir("bad_path");
    let blocker = dir.join("not_a_folder");
    std::fs::write(&blocker, b"a plain file").unwrap();
    let path = blocker.join("grid.png");
    let err = pictures::image_grid(&[vec![1.0f32; 4]], 1, 1, 2, 2, 1, &path).unwrap_err();
    assert!(matches!(err, PictureError::Io { .. }), "{err:?}");
    assert_eq!(err.path(), path);
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    let err = pictures::loss_curves(&[1.0, 0.5], &[1.1, 0.6], &path, "loss").unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    let codes = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[2, 2]);
    let err = pictures::latent_map(&codes, &[0, 1], &path, "codes").unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    let err = pictures::write_index_html(&blocker, "run", &[], &[], &[]).unwrap_err();
    assert!(err.to_string().contains("not_a_folder"), "{err}");
}

#[test]
fn reconstructions_layout_and_pixels() {
    let dir = out_dir("reconstructions");
    let (h, w, s) = (28, 28, pictures::TILE_SCALE);

    // 4 images: one pair of rows, 4 columns. Inputs white, outputs black.
    let inputs = images(4, h, w, |_| 1.0);
    let outputs = images(4, h, w, |_| 0.0);
    let path = dir.join("recon4.png");
    pictures::reconstructions(&inputs, &outputs, h, w, &path).unwrap();
    assert_eq!(pictures::reconstructions_layout(4), (2, 4));
    assert_eq!(pictures::reconstructions_size(4, h, w), pictures::grid_size(2, 4, h, w, s));
    let img = assert_size(&path, pictures::grid_size(2, 4, h, w, s));
    assert_eq!(img.dimensions(), (4 * 56 + 3, 2 * 56 + 1));
    let pitch = (h * s + 1) as u32;
    for c in 0..4 {
        assert_eq!(grey(&img, c * pitch + 10, 10), 255, "input {c} on the top row");
        assert_eq!(grey(&img, c * pitch + 10, pitch + 10), 0, "reconstruction {c} below it");
    }

    // 23 images: 10 per row pair, 3 pairs; image i's brightness is i / 22.
    let n = 23;
    let value = |i: usize| i as f32 / 22.0;
    let inputs = images(n, h, w, value);
    let outputs = images(n, h, w, |i| 1.0 - value(i));
    let path = dir.join("recon23.png");
    pictures::reconstructions(&inputs, &outputs, h, w, &path).unwrap();
    assert_eq!(pictures::reconstructions_layout(n), (6, 10));
    let gap = pictures::RECONSTRUCTIONS_PAIR_GAP as u32;
    let size = pictures::reconstructions_size(n, h, w);
    assert_eq!(size, (10 * 56 + 9, 3 * (2 * 56 + 1) + 2 * gap));
    let img = assert_size(&path, size);
    let pair_pitch = 2 * pitch - 1 + gap; // two tile rows, the separator between them, the gap
    assert_eq!(pair_pitch, 2 * 56 + 1 + gap);
    for i in 0..n {
        let (pair, c) = ((i / 10) as u32, (i % 10) as u32);
        let expect = |v: f32| (v * 255.0).round() as u8;
        let top = pair * pair_pitch;
        assert_eq!(grey(&img, c * pitch + 3, top + 3), expect(value(i)), "input {i}");
        assert_eq!(grey(&img, c * pitch + 3, top + pitch + 3), expect(1.0 - value(i)), "output {i}");
        // The last pixel row of the reconstruction tile, then the gap.
        assert_eq!(grey(&img, c * pitch + 3, top + 2 * pitch - 2), expect(1.0 - value(i)), "output {i}");
        if pair < 2 {
            assert_eq!(img.get_pixel(c * pitch + 3, top + 2 * pitch - 1).0, SEPARATOR_RGB);
            assert_eq!(img.get_pixel(c * pitch + 3, top + 2 * pitch - 1 + gap - 1).0, SEPARATOR_RGB);
        }
    }
    // Tiles after image 22 are empty.
    assert_eq!(img.get_pixel(3 * pitch + 3, 2 * pair_pitch + 3).0, SEPARATOR_RGB);
    assert_eq!(img.get_pixel(3 * pitch + 3, 2 * pair_pitch + pitch + 3).0, SEPARATOR_RGB);

    // Mismatched counts and shapes are errors.
    let err = pictures::reconstructions(&images(3, h, w, |_| 0.0), &images(4, h, w, |_| 0.0), h, w, &path)
        .unwrap_err();
    assert!(err.to_string().contains("recon23.png"), "{err}");
    assert_error(
        pictures::reconstructions(&inputs, &outputs, 27, 28, &path),
        "inputs should hold images of 27 x 28 pixels",
    );
}

#[test]
fn filters_normalise_each_tile_to_its_own_range() {
    let dir = out_dir("filters");
    let (h, w) = (4, 5);
    let k = 7;
    // Filter j has values j*10 + (pixel index), so each tile's min is its
    // first pixel and its max its last; filter 6 is constant.
    let mut data = Vec::new();
    for j in 0..k {
        for p in 0..h * w {
            data.push(if j == 6 { -3.0 } else { j as f32 * 10.0 - 50.0 + p as f32 * 0.1 * (j + 1) as f32 });
        }
    }
    let weights = Tensor::from_vec(data, &[k, h * w]);
    let path = dir.join("filters.png");
    pictures::filters(&weights, h, w, &path).unwrap();
    assert_eq!(pictures::filters_layout(k), (3, 3));
    let s = pictures::TILE_SCALE;
    let img = assert_size(&path, pictures::grid_size(3, 3, h, w, s));
    let (px, py) = ((w * s + 1) as u32, (h * s + 1) as u32);
    for j in 0..6u32 {
        let (x0, y0) = ((j % 3) * px, (j / 3) * py);
        assert_eq!(grey(&img, x0, y0), 0, "filter {j}: its minimum is black");
        let (xl, yl) = (x0 + (w * s) as u32 - 1, y0 + (h * s) as u32 - 1);
        assert_eq!(grey(&img, xl, yl), 255, "filter {j}: its maximum is white");
        // A pixel in the middle is strictly between.
        let mid = grey(&img, x0 + 4, y0 + 4);
        assert!(mid > 0 && mid < 255, "filter {j}: middle pixel {mid}");
    }
    // The constant filter is mid grey.
    assert_eq!(grey(&img, 0, 2 * py), 128);
    // Two empty tiles at the end.
    assert_eq!(img.get_pixel(px + 1, 2 * py + 1).0, SEPARATOR_RGB);

    assert_eq!(pictures::filters_layout(1), (1, 1));
    assert_eq!(pictures::filters_layout(64), (8, 8));
    assert_eq!(pictures::filters_layout(65), (8, 9));
    assert_eq!(pictures::filters_layout(256), (16, 16));
}

#[test]
fn generations_grid() {
    let dir = out_dir("generations");
    let (h, w, side) = (28, 28, 4);
    let imgs = images(side * side, h, w, |i| i as f32 / 15.0);
    let path = dir.join("generated.png");
    pictures::generations(&imgs, side, h, w, &path).unwrap();
    let img = assert_size(&path, pictures::grid_size(side, side, h, w, pictures::TILE_SCALE));
    let pitch = (h * pictures::TILE_SCALE + 1) as u32;
    assert_eq!(grey(&img, 5, 5), 0);
    assert_eq!(grey(&img, 3 * pitch + 5, 3 * pitch + 5), 255);
    assert_eq!(grey(&img, pitch + 5, 5), 17);
    // More images than the grid holds is an error.
    assert_error(
        pictures::generations(&images(17, h, w, |_| 0.0), side, h, w, &path),
        "17 images don't fit in a grid of 4 x 4 tiles",
    );
}

#[test]
fn denoising_triplets_with_headers() {
    let dir = out_dir("denoising");
    let (h, w, n) = (28, 28, 5);
    let noisy = images(n, h, w, |_| 0.25);
    let denoised = images(n, h, w, |_| 0.5);
    let clean = images(n, h, w, |_| 1.0);
    let path = dir.join("denoising.png");
    pictures::denoising(&noisy, &denoised, &clean, h, w, &path).unwrap();
    let size = pictures::denoising_size(n, h, w);
    let s = pictures::DENOISE_SCALE;
    assert_eq!(size, ((3 * w * s + 2) as u32, (pictures::DENOISE_HEADER_HEIGHT + n * (h * s + 1)) as u32));
    let img = assert_size(&path, size);
    let top = pictures::DENOISE_HEADER_HEIGHT as u32 + 1;
    let pitch = (w * s + 1) as u32;
    for r in 0..n as u32 {
        let y = top + r * (h * s + 1) as u32 + 5;
        assert_eq!(grey(&img, 5, y), 64, "noisy, row {r}");
        assert_eq!(grey(&img, pitch + 5, y), 128, "denoised, row {r}");
        assert_eq!(grey(&img, 2 * pitch + 5, y), 255, "clean, row {r}");
    }
    // The header band has text in it (dark pixels over a white background).
    let header_dark = (0..img.width())
        .flat_map(|x| (0..pictures::DENOISE_HEADER_HEIGHT as u32).map(move |y| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100)
        .count();
    assert!(header_dark > 30, "header text: {header_dark} dark pixels");
    assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);

    let err = pictures::denoising(&noisy, &images(4, h, w, |_| 0.0), &clean, h, w, &path).unwrap_err();
    assert!(matches!(err, PictureError::BadInput { .. }));
}
