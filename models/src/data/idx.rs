//! Reading and writing IDX files, the format MNIST is distributed in.
//!
//! An IDX file is a tiny header followed by raw bytes. The header is a
//! big-endian `u32` "magic number" that says what the bytes are, then one
//! big-endian `u32` per axis:
//!
//! ```text
//! images (idx3-ubyte): 0x00000803, n, rows, cols, then n*rows*cols pixels (0..=255)
//! labels (idx1-ubyte): 0x00000801, n,             then n labels (one byte each)
//! ```
//!
//! (In the magic number, `08` means "unsigned bytes" and the last byte is the
//! number of axes.) The files are usually gzip-compressed; the reader looks
//! at the first two bytes (`1f 8b` for gzip) and decompresses when needed,
//! so `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` both work.
//!
//! Pixels come back as `f32` in `[0, 1]` (byte / 255), one image per row of
//! an `[n, rows*cols]` tensor, which is what an autoencoder eats. The writer
//! does the reverse (rounding `x * 255`), so a write-read round trip of
//! images that came from bytes is exact.

use super::error::{DataError, IMAGES_MAGIC, LABELS_MAGIC};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use gradtape_kernels::Tensor;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

/// Images read from an IDX file: `[n, rows*cols]` pixels in `[0, 1]`.
#[derive(Clone, Debug)]
pub struct IdxImages {
    /// One flattened image per row, row-major within the image.
    pub images: Tensor<f32>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
}

/// Reads an IDX image file (`*-idx3-ubyte`, gzip-compressed or raw).
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    decode_idx_images(&read_file(path)?, path)
}

/// Reads an IDX label file (`*-idx1-ubyte`, gzip-compressed or raw).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    decode_idx_labels(&read_file(path)?, path)
}

/// Decodes the bytes of an IDX image file (gzip or raw) already in memory;
/// `path` is only used in error messages.
pub fn decode_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DataError> {
    let bytes = gunzip_if_gzip(bytes, path)?;
    let header = read_header(&bytes, path, IMAGES_MAGIC, 3)?;
    let (n, rows, cols) = (header[0], header[1], header[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            detail: format!("images of {rows}x{cols} pixels"),
        });
    }
    let body =
        check_length(&bytes, path, 16, &[n, rows, cols], &format!("{n} images of {rows}x{cols} pixels"))?;
    let pixels: Vec<f32> = body.iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok(IdxImages { images: Tensor::from_vec(pixels, &[n, rows * cols]), rows, cols })
}

/// Decodes the bytes of an IDX label file (gzip or raw) already in memory;
/// `path` is only used in error messages.
pub fn decode_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = gunzip_if_gzip(bytes, path)?;
    let n = read_header(&bytes, path, LABELS_MAGIC, 1)?[0];
    let body = check_length(&bytes, path, 8, &[n], &format!("{n} labels"))?;
    Ok(body.to_vec())
}

/// The bytes of an IDX image file holding `n` images of `rows x cols`
/// pixels, given as bytes in row-major order (not compressed).
///
/// Panics if `pixels.len()` is not `n * rows * cols` or a dimension does not
/// fit in 32 bits.
#[track_caller]
pub fn encode_idx_images(pixels: &[u8], n: usize, rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(
        pixels.len(),
        n * rows * cols,
        "encode_idx_images: {} pixels are not {n} images of {rows}x{cols}",
        pixels.len()
    );
    let mut out = Vec::with_capacity(16 + pixels.len());
    for word in [IMAGES_MAGIC, to_u32(n), to_u32(rows), to_u32(cols)] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// The bytes of an IDX label file (not compressed).
#[track_caller]
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&to_u32(labels.len()).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Writes images (`[n, rows*cols]`, values in `[0, 1]`, clamped) as an IDX
/// image file; gzip-compressed when the path ends in `.gz`.
///
/// Panics if the tensor is not `[n, rows*cols]` (a programming error).
#[track_caller]
pub fn write_idx_images(
    path: &Path,
    images: &Tensor<f32>,
    rows: usize,
    cols: usize,
) -> Result<(), DataError> {
    let shape = images.shape();
    assert!(
        shape.len() == 2 && shape[1] == rows * cols,
        "write_idx_images: images of shape {shape:?} are not [n, {rows}*{cols}]"
    );
    let pixels: Vec<u8> = images.data().iter().map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    write_file(path, &encode_idx_images(&pixels, shape[0], rows, cols))
}

/// Writes labels as an IDX label file; gzip-compressed when the path ends in
/// `.gz`.
pub fn write_idx_labels(path: &Path, labels: &[u8]) -> Result<(), DataError> {
    write_file(path, &encode_idx_labels(labels))
}

#[track_caller]
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("IDX dimension {n} does not fit in 32 bits"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), action: "read", source })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let io_err = |source| DataError::Io { path: path.to_path_buf(), action: "write", source };
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let encoded = if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).map_err(io_err)?;
        Cow::Owned(enc.finish().map_err(io_err)?)
    } else {
        Cow::Borrowed(bytes)
    };
    std::fs::write(path, &encoded).map_err(io_err)
}

/// Decompresses when the bytes start with the gzip magic `1f 8b`.
fn gunzip_if_gzip<'a>(bytes: &'a [u8], path: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::CorruptGzip { path: path.to_path_buf(), source })?;
    Ok(Cow::Owned(out))
}

/// Checks the magic number and returns the `axes` dimensions after it.
fn read_header(bytes: &[u8], path: &Path, magic: u32, axes: usize) -> Result<Vec<usize>, DataError> {
    let header_len = 4 * (1 + axes);
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    let truncated = || DataError::Truncated {
        path: path.to_path_buf(),
        expected_bytes: header_len as u64,
        found_bytes: bytes.len() as u64,
        what: format!("the {header_len}-byte IDX header"),
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    if word(0) != magic {
        return Err(DataError::WrongMagic { path: path.to_path_buf(), found: word(0), expected: magic });
    }
    if bytes.len() < header_len {
        return Err(truncated());
    }
    Ok((1..=axes).map(|i| word(i) as usize).collect())
}

/// Checks that the file holds exactly the header plus the product of `dims`
/// bytes, and returns the data after the header.
fn check_length<'b>(
    bytes: &'b [u8],
    path: &Path,
    header_len: usize,
    dims: &[usize],
    what: &str,
) -> Result<&'b [u8], DataError> {
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .and_then(|body| body.checked_add(header_len as u64))
        .ok_or_else(|| DataError::BadDimensions {
            path: path.to_path_buf(),
            detail: format!("{what} is too large to count"),
        })?;
    let found = bytes.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected_bytes: expected,
            found_bytes: found,
            what: format!("a header announcing {what}"),
        });
    }
    if found > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected_bytes: expected,
            found_bytes: found,
        });
    }
    Ok(&bytes[header_len..])
}
