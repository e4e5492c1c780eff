//! The `index.html` page that gathers a training run's settings, final
//! numbers and pictures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::PictureError;

const STYLE: &str = "\
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.25em 0.9em 0.25em 0; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; }
td { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { margin-top: 0.3em; color: #444; }
.missing { color: #a00; }
.empty { color: #777; font-style: italic; }
";

/// Escapes text for use in HTML element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, rows: &[(String, String)]) {
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">(none)</p>\n");
        return;
    }
    out.push_str("<table>\n");
    for (key, value) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(key), escape(value));
    }
    out.push_str("</table>\n");
}

/// Writes `dir/index.html`, one self-contained page (inline CSS, nothing
/// fetched from elsewhere) showing a training run: `title` as the heading,
/// the `config` table (setting, value), the final `metrics` table (name,
/// value) and every picture as `(caption, file name)`, in the order given.
///
/// File names are relative to `dir` (the PNGs are expected next to the
/// page); a picture whose file is not there is still listed, marked missing.
/// All text is HTML-escaped. `dir` is created if needed. Returns the path of
/// the page.
pub fn write_index_html(
    dir: &Path,
    title: &str,
    config: &[(String, String)],
    metrics: &[(String, String)],
    pictures: &[(String, String)],
) -> Result<PathBuf, PictureError> {
    write_index_html_with_links(dir, title, config, metrics, pictures, &[])
}

/// [`write_index_html`] with a last section of `links`, `(caption, file
/// name)`, each a link to a file beside the page (the run's tape drawn as a
/// graph, say), marked missing when the file is not there.
pub fn write_index_html_with_links(
    dir: &Path,
    title: &str,
    config: &[(String, String)],
    metrics: &[(String, String)],
    pictures: &[(String, String)],
    links: &[(String, String)],
) -> Result<PathBuf, PictureError> {
    let path = dir.join("index.html");
    let title = escape(title);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    out.push_str("<h2>Configuration</h2>\n");
    table(&mut out, config);
    out.push_str("<h2>Final metrics</h2>\n");
    table(&mut out, metrics);
    out.push_str("<h2>Pictures</h2>\n");
    if pictures.is_empty() {
        out.push_str("<p class=\"empty\">(no pictures)</p>\n");
    }
    for (caption, file) in pictures {
        let (caption_html, file_html) = (escape(caption), escape(file));
        let missing =
            if dir.join(file).is_file() { "" } else { " <span class=\"missing\">(file missing)</span>" };
        let _ = writeln!(
            out,
            "<figure>\n<img src=\"{file_html}\" alt=\"{caption_html}\">\n\
             <figcaption>{caption_html} <small>({file_html})</small>{missing}</figcaption>\n</figure>"
        );
    }
    if !links.is_empty() {
        out.push_str("<h2>Files</h2>\n<ul>\n");
        for (caption, file) in links {
            let (caption_html, file_html) = (escape(caption), escape(file));
            let missing =
                if dir.join(file).is_file() { "" } else { " <span class=\"missing\">(file missing)</span>" };
            let _ =
                writeln!(out, "<li><a href=\"{file_html}\">{file_html}</a>: {caption_html}{missing}</li>");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");

    std::fs::create_dir_all(dir).map_err(|source| PictureError::Io { path: path.clone(), source })?;
    super::write_whole(&path, out.as_bytes())?;
    Ok(path)
}
