//! Tests for the pictures module, continued: the latent map, the loss
//! curves, the PCA behind the latent map (right on data with a known answer,
//! orthonormal, steady on degenerate codes) and the HTML page (complete and
//! escaped).

use super::pictures::*;
use gradtape_kernels::Tensor;
use gradtape_models::pictures::{self};

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
