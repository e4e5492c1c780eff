//! Tests for the pictures module: every picture decodes as a PNG of the
//! documented size, grids put the right grey levels in the right places, the
//! PCA is right on data with a known answer, the HTML page is complete and
//! escaped, and bad paths or shapes give errors (naming the path) rather than
//! panics.

use std::path::{Path, PathBuf};

use gradtape_kernels::Tensor;
use gradtape_models::pictures::{self, PictureError, SEPARATOR_RGB};

/// A fresh, empty folder under the target directory for one test.
fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open_rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display())).to_rgb8()
}

fn assert_size(path: &Path, expected: (u32, u32)) -> image::RgbImage {
    let img = open_rgb(path);
    assert_eq!(img.dimensions(), expected, "size of {}", path.display());
    img
}

fn grey(img: &image::RgbImage, x: u32, y: u32) -> u8 {
    let p = img.get_pixel(x, y).0;
    assert!(p[0] == p[1] && p[1] == p[2], "pixel ({x}, {y}) is {p:?}, not grey");
    p[0]
}

/// `n` images of `h * w` values; image `i` is filled with `value(i)`.
fn images(n: usize, h: usize, w: usize, value: impl Fn(usize) -> f32) -> Tensor<f32> {
    let data = (0..n).flat_map(|i| vec![value(i); h * w]).collect();
    Tensor::from_vec(data, &[n, h * w])
}

/// The latent map's digit colours ("tab10") and legend width, as
/// `pictures::plots` draws them.
const TAB10: [[u8; 3]; 10] = [
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
const LEGEND_WIDTH: u32 = 100;

/// For each digit, the number of pixels inside the latent map's chart (away
/// from the axis labels, the title and the legend) that have the digit's
/// colour at some opacity over white: a dot is drawn at 70%, and dots drawn
/// over each other are darker, but always on the line from white to the
/// digit's colour.
fn dot_pixels_per_digit(img: &image::RgbImage) -> [usize; 10] {
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
fn assert_error(result: Result<(), PictureError>, expected: &str) {
    match result {
        Ok(()) => panic!("expected an error containing {expected:?}, got Ok"),
        Err(e) => assert!(e.to_string().contains(expected), "expected {expected:?} in: {e}"),
    }
}

/// Number of distinct colours in the picture (to see that something was drawn).
fn colour_count(img: &image::RgbImage) -> usize {
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

#[test]
fn latent_map_for_1_2_and_12_dimensional_codes() {
    let dir = out_dir("latent_map");
    let n = 300;
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for d in [1usize, 2, 12] {
        // Codes cluster by label, with some spread.
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                (0..d).map(move |j| {
                    ((i % 10) as f32) * ((j + 1) as f32).sin() + ((i * 7 + j * 3) % 11) as f32 * 0.05
                })
            })
            .collect();
        let codes = Tensor::from_vec(data, &[n, d]);
        let path = dir.join(format!("latent_{d}d.png"));
        pictures::latent_map(&codes, &labels, &path, "latent codes").unwrap();
        let img = assert_size(&path, pictures::LATENT_MAP_SIZE);
        assert!(colour_count(&img) > 20, "d = {d}: the picture looks empty");
        // Every digit has dots in the chart itself (not only in the legend,
        // which draws every digit's colour whatever the chart holds).
        let counts = dot_pixels_per_digit(&img);
        assert!(counts.iter().all(|&c| c >= 10), "d = {d}: pixels of each digit's dots: {counts:?}");
    }
    // A single code works too.
    let one = Tensor::from_vec(vec![0.5f32, -0.5], &[1, 2]);
    pictures::latent_map(&one, &[3], dir.join("one.png"), "one code").unwrap();
    assert_size(&dir.join("one.png"), pictures::LATENT_MAP_SIZE);
    // Identical codes (a zero range) work.
    let same = Tensor::from_vec(vec![1.0f32; 40], &[10, 4]);
    pictures::latent_map(&same, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], dir.join("same.png"), "same").unwrap();
}

#[test]
fn latent_map_rejects_bad_input() {
    let dir = out_dir("latent_map_bad");
    let path = dir.join("bad.png");
    let codes = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[2, 2]);
    let err = pictures::latent_map(&codes, &[1], &path, "t").unwrap_err();
    assert!(err.to_string().contains("bad.png"), "{err}");
    assert!(err.to_string().contains("2 codes but 1 labels"), "{err}");
    assert_error(pictures::latent_map(&codes, &[1, 10], &path, "t"), "label 10 is not a digit 0-9");
    let nan = Tensor::from_vec(vec![0.0f32, f32::NAN, 2.0, 3.0], &[2, 2]);
    assert_error(pictures::latent_map(&nan, &[1, 2], &path, "t"), "codes contain NaN or infinity");
    let empty = Tensor::from_vec(Vec::<f32>::new(), &[0, 2]);
    assert_error(pictures::latent_map(&empty, &[], &path, "t"), "codes should have shape [n, d], not [0, 2]");
    assert!(!path.exists());
}

#[test]
fn loss_curves_for_1_and_10_epochs() {
    let dir = out_dir("loss_curves");
    let path = dir.join("loss1.png");
    pictures::loss_curves(&[0.31], &[0.29], &path, "loss").unwrap();
    let img = assert_size(&path, pictures::LOSS_CURVES_SIZE);
    assert!(colour_count(&img) > 10);

    let train: Vec<f64> = (0..10).map(|e| 0.3 / (e as f64 + 1.0) + 0.05).collect();
    let test: Vec<f64> = train.iter().map(|v| v * 1.1).collect();
    let path = dir.join("loss10.png");
    pictures::loss_curves(&train, &test, &path, "loss per epoch").unwrap();
    let img = assert_size(&path, pictures::LOSS_CURVES_SIZE);
    // Both curve colours are present.
    assert!(img.pixels().any(|p| p.0 == [31, 119, 180]), "no train curve");
    assert!(img.pixels().any(|p| p.0 == [255, 127, 14]), "no test curve");

    // Only a training curve, a constant curve, and a NaN are fine.
    pictures::loss_curves(&train, &[], dir.join("train_only.png"), "train").unwrap();
    pictures::loss_curves(&[1.0; 5], &[1.0; 5], dir.join("flat.png"), "flat").unwrap();
    pictures::loss_curves(&[1.0, f64::NAN, 0.5], &[0.9], dir.join("nan.png"), "nan").unwrap();
    // Nothing to draw is an error.
    assert_error(
        pictures::loss_curves(&[], &[], dir.join("none.png"), "none"),
        "no finite loss values to draw",
    );
    assert_error(
        pictures::loss_curves(&[f64::NAN], &[], dir.join("none.png"), "none"),
        "no finite loss values to draw",
    );
}

/// Points on a tilted plane in 5-D: `x = mean + a * u + b * v`.
fn plane_points(n: usize) -> (Tensor<f32>, Vec<[f64; 2]>) {
    let u = [0.5f64, 0.5, 0.5, 0.5, 0.0];
    let v = [0.5f64, -0.5, 0.0, 0.0, 1.0 / 2f64.sqrt()];
    let mut vn = v;
    let norm = vn.iter().map(|x| x * x).sum::<f64>().sqrt();
    vn.iter_mut().for_each(|x| *x /= norm);
    let mean = [1.0f64, -2.0, 3.0, 0.5, 10.0];
    let mut data = Vec::new();
    let mut coords = Vec::new();
    for i in 0..n {
        let a = ((i * 37) % 23) as f64 * 0.3 - 3.0;
        let b = ((i * 11) % 17) as f64 * 0.1 - 0.8;
        coords.push([a, b]);
        for j in 0..5 {
            data.push((mean[j] + a * u[j] + b * vn[j]) as f32);
        }
    }
    (Tensor::from_vec(data, &[n, 5]), coords)
}

#[test]
fn pca_on_a_plane_preserves_distances() {
    let n = 60;
    let (codes, coords) = plane_points(n);
    let (projected, explained) = pictures::pca_2d(&codes);
    assert_eq!(projected.len(), n);
    assert!((explained[0] + explained[1] - 1.0).abs() < 1e-4, "{explained:?}");
    assert!(explained[0] >= explained[1]);
    for i in 0..n {
        for j in 0..i {
            let d_true =
                ((coords[i][0] - coords[j][0]).powi(2) + (coords[i][1] - coords[j][1]).powi(2)).sqrt();
            let d_proj = (((projected[i][0] - projected[j][0]) as f64).powi(2)
                + ((projected[i][1] - projected[j][1]) as f64).powi(2))
            .sqrt();
            assert!((d_true - d_proj).abs() < 1e-3, "pair ({i}, {j}): {d_true} vs {d_proj}");
        }
    }
    // The projection is centred.
    let mean0: f32 = projected.iter().map(|p| p[0]).sum::<f32>() / n as f32;
    assert!(mean0.abs() < 1e-4);
}

#[test]
fn pca_components_are_orthonormal_and_ordered() {
    // Random-looking 12-D data with very different spreads per axis,
    // rotated a little by mixing axes.
    let (n, d) = (200, 12);
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32 - 0.5
    };
    let mut data = Vec::new();
    for _ in 0..n {
        let raw: Vec<f32> = (0..d).map(|j| next() * (d - j) as f32).collect();
        for j in 0..d {
            data.push(raw[j] + 0.3 * raw[(j + 1) % d]);
        }
    }
    let codes = Tensor::from_vec(data, &[n, d]);
    let pca = pictures::Pca2::fit(&codes);
    let [u, v] = &pca.components;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!((dot(u, u) - 1.0).abs() < 1e-9);
    assert!((dot(v, v) - 1.0).abs() < 1e-9);
    assert!(dot(u, v).abs() < 1e-9);
    assert!(pca.variances[0] >= pca.variances[1]);

    // The first component has the largest variance of any direction we try:
    // compare with every coordinate axis and a few mixtures.
    let (projected, explained) = pictures::pca_2d(&codes);
    let var = |xs: &[f64]| {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64
    };
    let pc1: Vec<f64> = projected.iter().map(|p| p[0] as f64).collect();
    let var1 = var(&pc1);
    assert!((var1 - pca.variances[0]).abs() < 1e-3 * var1);
    let rows: Vec<&[f32]> = codes.data().chunks(d).collect();
    for axis in 0..d {
        let xs: Vec<f64> = rows.iter().map(|r| r[axis] as f64).collect();
        assert!(var(&xs) <= var1 * (1.0 + 1e-6), "axis {axis} spreads more than PC 1");
    }
    assert!(explained[0] > 0.0 && explained[0] < 1.0 && explained[1] > 0.0);
    assert!(explained[0] + explained[1] <= 1.0 + 1e-9);

    // Same input, same answer.
    assert_eq!(pictures::pca_2d(&codes).0, projected);
}

#[test]
fn pca_handles_degenerate_codes() {
    // All codes equal: everything projects to the origin.
    let same = Tensor::from_vec(vec![2.0f32; 30], &[10, 3]);
    let (points, explained) = pictures::pca_2d(&same);
    assert!(points.iter().all(|p| p == &[0.0, 0.0]));
    assert_eq!(explained, [0.0, 0.0]);
    // Codes on a line: the second component explains nothing but is still
    // a unit vector at right angles to the first.
    let line: Vec<f32> = (0..10).flat_map(|i| [i as f32, 2.0 * i as f32, -(i as f32)]).collect();
    let pca = pictures::Pca2::fit(&Tensor::from_vec(line, &[10, 3]));
    let [u, v] = &pca.components;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!((dot(v, v) - 1.0).abs() < 1e-9 && dot(u, v).abs() < 1e-9);
    assert!((pca.explained()[0] - 1.0).abs() < 1e-9);
    // 1-D codes.
    let (points, explained) = pictures::pca_2d(&Tensor::from_vec(vec![1.0f32, 3.0], &[2, 1]));
    assert_eq!(points, vec![[-1.0, 0.0], [1.0, 0.0]]);
    assert_eq!(explained, [1.0, 0.0]);
}

#[test]
fn index_html_lists_everything_and_escapes_text() {
    let dir = out_dir("index_html");
    pictures::image_grid(&[vec![1.0f32; 4]], 1, 1, 2, 2, 1, dir.join("recon.png")).unwrap();
    let config = vec![
        ("model".to_string(), "ae".to_string()),
        ("note".to_string(), "<script>alert('x')</script> & more".to_string()),
    ];
    let metrics =
        vec![("test loss".to_string(), "0.0912".to_string()), ("epochs".to_string(), "10".to_string())];
    let pics = vec![
        ("Reconstructions".to_string(), "recon.png".to_string()),
        ("Latent map".to_string(), "latent.png".to_string()),
        ("Loss <curves>".to_string(), "loss.png".to_string()),
    ];
    let page = pictures::write_index_html(&dir.join("site"), "Run <1>", &config, &metrics, &pics).unwrap();
    assert_eq!(page, dir.join("site").join("index.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    for (_, file) in &pics {
        assert!(html.contains(&format!("src=\"{file}\"")), "no <img> for {file}");
    }
    assert!(!html.contains("<script>"), "unescaped script tag");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    assert!(html.contains("Run &lt;1&gt;"));
    assert!(html.contains("Loss &lt;curves&gt;"));
    assert!(html.contains("test loss") && html.contains("0.0912"));
    assert!(html.contains("model") && html.contains(">ae<"));
    // Self-contained: no external resources.
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<link"));
    assert!(html.contains("<style>"));
    // Pictures not next to the page are marked missing (recon.png is one
    // folder up here).
    assert_eq!(html.matches("(file missing)").count(), 3);

    // Next to the pictures: recon.png is found.
    let page = pictures::write_index_html(&dir, "Run", &config, &metrics, &pics).unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    assert_eq!(html.matches("(file missing)").count(), 2);
}

#[test]
fn latent_map_with_a_full_test_set_of_32_d_codes() {
    // The size the CLI draws: 10 000 test digits, 32-D codes.
    let dir = out_dir("latent_map_big");
    let (n, d) = (10_000, 32);
    let mut state = 7u64;
    let data: Vec<f32> = (0..n * d)
        .map(|k| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((k / d) % 10) as f32 * 0.3 * ((k % d) as f32).cos() + (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let t0 = std::time::Instant::now();
    pictures::latent_map(&Tensor::from_vec(data, &[n, d]), &labels, dir.join("big.png"), "latent codes")
        .unwrap();
    assert_size(&dir.join("big.png"), pictures::LATENT_MAP_SIZE);
    let seconds = t0.elapsed().as_secs_f64();
    eprintln!("latent map of {n} x {d} codes: {seconds:.2} s");
    // The CLI draws this after every run; a second or so in an optimised
    // test build. The bound is loose (a shared, loaded machine) but catches
    // an accidentally quadratic PCA or plot.
    assert!(seconds < 30.0, "latent map of {n} x {d} codes took {seconds:.1} s");
}
