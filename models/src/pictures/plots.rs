//! Charts drawn with plotters: the latent map and the loss curves.

use std::path::Path;

use gradtape_kernels::Tensor;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{checked_size, Canvas};
use super::pca::pca_2d;
use super::PictureError;

/// Pixel size `(width, height)` of [`latent_map`].
pub const LATENT_MAP_SIZE: (u32, u32) = (800, 640);

/// Pixel size `(width, height)` of [`loss_curves`].
pub const LOSS_CURVES_SIZE: (u32, u32) = (720, 480);

/// Width of the legend column on the right of [`latent_map`].
const LEGEND_WIDTH: u32 = 100;

/// One colour per digit 0-9 (the "tab10" palette, easy to tell apart).
const DIGIT_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// A named, coloured line of `(epoch, loss)` points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// `lo..hi` with a little room on both sides (a range of width 0 is widened).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else {
        let pad = (lo.abs() * 0.1).max(1e-3);
        (lo - pad, hi + pad)
    }
}

fn padded_range((lo, hi): (f64, f64)) -> (f64, f64) {
    padded(lo, hi)
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// A fraction as a percentage, with a decimal for small values.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Labels only the whole-number ticks (epochs, digits).
fn whole_numbers(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// Draws `title` centred at the top of `root` (shrinking the font until it
/// fits the width) and returns the area below it.
fn with_title<'a>(root: &Area<'a>, title: &str) -> Result<Area<'a>, Box<dyn std::error::Error>> {
    let width = root.dim_in_pixel().0 as i32;
    let mut size = 20.0;
    loop {
        let style = TextStyle::from(("sans-serif", size).into_font()).color(&BLACK);
        let (tw, _) = root.estimate_text_size(title, &style)?;
        if tw as i32 <= width - 20 || size <= 9.0 {
            let style = style.pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text(title, &style, (width / 2, 18))?;
            let (_, below) = root.split_vertically(36);
            return Ok(below);
        }
        size -= 1.0;
    }
}

/// Shows where the encoder puts each digit: one dot per code, coloured by
/// the digit's true label (10 colours, legend on the right).
///
/// `codes` is `[n, d]`, `labels` the `n` digits (0 to 9). How the codes
/// become a flat picture depends on `d`, and the title says which:
///
/// * `d == 2`: the two code numbers are the two axes (`z[0]`, `z[1]`).
/// * `d > 2`: the codes are projected onto their top two principal components
///   ([`pca_2d`]); the title gains "(PCA of d-D to 2-D)" and the axes say how
///   much of the variance each component holds.
/// * `d == 1`: one horizontal strip per digit: the x axis is the code, the y
///   axis the true digit (no random jitter), so you can see which digits the
///   single number keeps apart.
///
/// Dots are drawn in the order of the rows, so no digit hides the others
/// wholesale. The PNG is [`LATENT_MAP_SIZE`] pixels. NaN or infinite codes,
/// labels above 9, or a label count that doesn't match are errors.
pub fn latent_map(
    codes: &Tensor<f32>,
    labels: &[u8],
    path: impl AsRef<Path>,
    title: &str,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let shape = codes.shape();
    if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
        return Err(PictureError::bad_input(path, format!("codes should have shape [n, d], not {shape:?}")));
    }
    let (n, d) = (shape[0], shape[1]);
    if labels.len() != n {
        return Err(PictureError::bad_input(path, format!("{n} codes but {} labels", labels.len())));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(PictureError::bad_input(path, format!("label {bad} is not a digit 0-9")));
    }
    let data = codes.data();
    if data.iter().any(|v| !v.is_finite()) {
        return Err(PictureError::bad_input(path, "codes contain NaN or infinity (did training diverge?)"));
    }

    let (points, title, x_desc, y_desc): (Vec<(f64, f64)>, String, String, String) = match d {
        1 => (
            data.iter().zip(labels).map(|(&z, &l)| (z as f64, l as f64)).collect(),
            format!("{title} (1-D codes: one strip per digit)"),
            "z (the 1-D code)".into(),
            "true digit".into(),
        ),
        2 => (
            data.chunks_exact(2).map(|z| (z[0] as f64, z[1] as f64)).collect(),
            title.to_string(),
            "z[0]".into(),
            "z[1]".into(),
        ),
        _ => {
            let (projected, explained) = pca_2d(codes);
            (
                projected.iter().map(|p| (p[0] as f64, p[1] as f64)).collect(),
                format!("{title} (PCA of {d}-D to 2-D)"),
                format!("principal component 1 ({} of variance)", percent(explained[0])),
                format!("principal component 2 ({} of variance)", percent(explained[1])),
            )
        }
    };
    let (x_lo, x_hi) = min_max(points.iter().map(|p| p.0));
    let x_range = padded(x_lo, x_hi);
    let y_range = if d == 1 { (-0.6, 9.6) } else { padded_range(min_max(points.iter().map(|p| p.1))) };
    let mut present = [false; 10];
    labels.iter().for_each(|&l| present[l as usize] = true);

    let (w, h) = checked_size(LATENT_MAP_SIZE.0 as u64, LATENT_MAP_SIZE.1 as u64, path)?;
    let mut canvas = Canvas::new(w, h, [255; 3]);
    canvas.plot(path, |root| -> DrawResult {
        root.fill(&WHITE)?;
        let body = with_title(root, &title)?;
        let (plot_area, legend_area) = body.split_horizontally(w - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc.as_str()).y_desc(y_desc.as_str()).light_line_style(RGBColor(235, 235, 235));
        if d == 1 {
            mesh.y_labels(12).y_label_formatter(&whole_numbers);
        }
        mesh.draw()?;
        chart.draw_series(
            points
                .iter()
                .zip(labels)
                .map(|(&p, &l)| Circle::new(p, 2, DIGIT_COLOURS[l as usize].mix(0.7).filled())),
        )?;

        let text = TextStyle::from(("sans-serif", 14).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        legend_area.draw_text("digit", &text, (12, 24))?;
        let mut y = 50;
        for (digit, colour) in DIGIT_COLOURS.iter().enumerate().filter(|(l, _)| present[*l]) {
            legend_area.draw(&Circle::new((20, y), 5, colour.filled()))?;
            legend_area.draw_text(&digit.to_string(), &text, (34, y))?;
            y += 24;
        }
        Ok(())
    })?;
    canvas.save(path)
}

/// Shows how training went: the training loss and the test loss after each
/// epoch, as two lines with dots (epoch 1 is the first dot), with a legend
/// and the axes labelled "epoch" and "loss".
///
/// `train[i]` and `test[i]` are the losses after epoch `i + 1`; either list
/// may be shorter or empty. A single epoch shows as single dots. NaN or
/// infinite values are left out (the title then says how many); if no value
/// is left at all that is an error. The y axis is linear. The PNG is
/// [`LOSS_CURVES_SIZE`] pixels.
pub fn loss_curves(
    train: &[f64],
    test: &[f64],
    path: impl AsRef<Path>,
    title: &str,
) -> Result<(), PictureError> {
    let path = path.as_ref();
    let series: Vec<Series> = [("train", DIGIT_COLOURS[0], train), ("test", DIGIT_COLOURS[1], test)]
        .into_iter()
        .map(|(name, colour, values)| {
            let points = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| ((i + 1) as f64, v))
                .collect();
            (name, colour, points)
        })
        .collect();
    let finite: usize = series.iter().map(|s| s.2.len()).sum();
    if finite == 0 {
        return Err(PictureError::bad_input(path, "no finite loss values to draw"));
    }
    let left_out = train.len() + test.len() - finite;
    let title = if left_out > 0 {
        format!("{title} ({left_out} NaN/infinite values left out)")
    } else {
        title.to_string()
    };
    let epochs = train.len().max(test.len());
    let x_range = (0.5, epochs as f64 + 0.5);
    let y_range = padded_range(min_max(series.iter().flat_map(|s| s.2.iter().map(|p| p.1))));

    let (w, h) = checked_size(LOSS_CURVES_SIZE.0 as u64, LOSS_CURVES_SIZE.1 as u64, path)?;
    let mut canvas = Canvas::new(w, h, [255; 3]);
    canvas.plot(path, |root| -> DrawResult {
        root.fill(&WHITE)?;
        let body = with_title(root, &title)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .margin_right(25)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .x_labels(epochs.min(10) + 2)
            .x_label_formatter(&whole_numbers)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (name, colour, points) in &series {
            if points.is_empty() {
                continue;
            }
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    canvas.save(path)
}
