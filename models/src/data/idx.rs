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
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
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

/// The most data bytes (pixels or labels) one IDX file may announce: 1 GiB,
/// some 1.3 million 28x28 images (MNIST's training file is 47 MB). The
/// reader also never reads further than the header announces plus one byte
/// (to see trailing data), so a small gzip file that inflates to gigabytes
/// costs no more than its header says.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Reads an IDX image file (`*-idx3-ubyte`, gzip-compressed or raw).
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    let (mut source, raw_len) = open(path)?;
    images_from(&mut source, raw_len, path)
}

/// Reads an IDX label file (`*-idx1-ubyte`, gzip-compressed or raw).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let (mut source, raw_len) = open(path)?;
    labels_from(&mut source, raw_len, path)
}

/// Decodes the bytes of an IDX image file (gzip or raw) already in memory;
/// `path` is only used in error messages.
pub fn decode_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DataError> {
    images_from(&mut in_memory(bytes, path)?, bytes.len() as u64, path)
}

/// Decodes the bytes of an IDX label file (gzip or raw) already in memory;
/// `path` is only used in error messages.
pub fn decode_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    labels_from(&mut in_memory(bytes, path)?, bytes.len() as u64, path)
}

fn images_from<R: BufRead>(
    source: &mut Source<R>,
    raw_len: u64,
    path: &Path,
) -> Result<IdxImages, DataError> {
    let header = read_header(source, path, IMAGES_MAGIC, 3)?;
    let (n, rows, cols) = (header[0], header[1], header[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            detail: format!("images of {rows}x{cols} pixels"),
        });
    }
    let what = format!("{n} images of {rows}x{cols} pixels");
    let body = read_body(source, raw_len, path, 16, &[n, rows, cols], &what)?;
    let pixels: Vec<f32> = body.iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok(IdxImages { images: Tensor::from_vec(pixels, &[n, rows * cols]), rows, cols })
}

fn labels_from<R: BufRead>(source: &mut Source<R>, raw_len: u64, path: &Path) -> Result<Vec<u8>, DataError> {
    let n = read_header(source, path, LABELS_MAGIC, 1)?[0];
    read_body(source, raw_len, path, 8, &[n], &format!("{n} labels"))
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

/// An IDX file's bytes as they come: raw, or decompressed on the fly when
/// they start with the gzip magic `1f 8b`.
enum Source<R: BufRead> {
    Raw(R),
    Gzip(MultiGzDecoder<R>),
}

impl<R: BufRead> Source<R> {
    /// Looks at the first two bytes without consuming them.
    fn of(mut reader: R) -> Result<Source<R>, io::Error> {
        let start = reader.fill_buf()?;
        Ok(if start.starts_with(&[0x1f, 0x8b]) {
            Source::Gzip(MultiGzDecoder::new(reader))
        } else {
            Source::Raw(reader)
        })
    }

    fn is_gzip(&self) -> bool {
        matches!(self, Source::Gzip(_))
    }
}

impl<R: BufRead> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Raw(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
        }
    }
}

/// Bytes in memory as a source.
fn in_memory<'b>(bytes: &'b [u8], path: &Path) -> Result<Source<&'b [u8]>, DataError> {
    Source::of(bytes).map_err(|source| DataError::Io { path: path.to_path_buf(), action: "read", source })
}

/// Opens a regular file for reading; returns it and its size. A named pipe
/// or a device is refused without blocking ([`crate::files::open_regular`]).
fn open(path: &Path) -> Result<(Source<BufReader<File>>, u64), DataError> {
    let io_err = |source| DataError::Io { path: path.to_path_buf(), action: "read", source };
    let (file, len) = crate::files::open_regular(path).map_err(|e| match e {
        crate::files::OpenError::Io(source) => io_err(source),
        crate::files::OpenError::NotAFile(what) => DataError::NotAFile { path: path.to_path_buf(), what },
    })?;
    Ok((Source::of(BufReader::new(file)).map_err(io_err)?, len))
}

/// Reads up to `limit` bytes (fewer only at the end of the data).
fn read_up_to<R: BufRead>(source: &mut Source<R>, limit: u64, path: &Path) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::with_capacity(limit.min(1 << 24) as usize);
    let gzip = source.is_gzip();
    source.take(limit).read_to_end(&mut out).map_err(|source| {
        if gzip {
            DataError::CorruptGzip { path: path.to_path_buf(), source }
        } else {
            DataError::Io { path: path.to_path_buf(), action: "read", source }
        }
    })?;
    Ok(out)
}

/// Reads and checks the magic number; returns the `axes` dimensions after
/// it.
fn read_header<R: BufRead>(
    source: &mut Source<R>,
    path: &Path,
    magic: u32,
    axes: usize,
) -> Result<Vec<usize>, DataError> {
    let header_len = 4 * (1 + axes);
    let bytes = read_up_to(source, header_len as u64, path)?;
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

/// Reads the data after the header: exactly the product of `dims` bytes,
/// which must be at most [`MAX_IDX_BYTES`]. Reads one byte more to tell
/// whether anything follows, and never further. `raw_len` is the size of
/// the file as stored (for messages about a raw file).
fn read_body<R: BufRead>(
    source: &mut Source<R>,
    raw_len: u64,
    path: &Path,
    header_len: u64,
    dims: &[usize],
    what: &str,
) -> Result<Vec<u8>, DataError> {
    let body =
        dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).filter(|&b| b <= MAX_IDX_BYTES);
    let Some(body) = body else {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            detail: format!("a header announcing {what} is over the limit of {MAX_IDX_BYTES} bytes (1 GiB)"),
        });
    };
    let data = read_up_to(source, body + 1, path)?;
    let found = data.len() as u64;
    if found < body {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected_bytes: header_len + body,
            found_bytes: header_len + found,
            what: format!("a header announcing {what}"),
        });
    }
    if found > body {
        return Err(if source.is_gzip() {
            DataError::TrailingData { path: path.to_path_buf(), expected_bytes: header_len + body }
        } else {
            DataError::TrailingBytes {
                path: path.to_path_buf(),
                expected_bytes: header_len + body,
                found_bytes: raw_len,
            }
        });
    }
    Ok(data)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless source of zero bytes after a given header, counting what
    /// is consumed: what `/dev/zero` or a gzip bomb looks like to the reader.
    struct Endless {
        header: Vec<u8>,
        zeros: Vec<u8>,
        consumed: u64,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = {
                let available = self.fill_buf()?;
                let n = available.len().min(buf.len());
                buf[..n].copy_from_slice(&available[..n]);
                n
            };
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for Endless {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            let at = self.consumed as usize;
            Ok(if at < self.header.len() { &self.header[at..] } else { &self.zeros })
        }
        fn consume(&mut self, n: usize) {
            self.consumed += n as u64;
        }
    }

    #[test]
    fn the_reader_stops_one_byte_past_what_the_header_announces() {
        let header = encode_idx_images(&[0; 3 * 28 * 28], 3, 28, 28)[..16].to_vec();
        let mut source = Source::Raw(Endless { header, zeros: vec![0; 8192], consumed: 0 });
        let err = images_from(&mut source, u64::MAX, Path::new("endless")).unwrap_err();
        assert!(matches!(err, DataError::TrailingBytes { expected_bytes: 2368, .. }), "{err:?}");
        let Source::Raw(endless) = source else { unreachable!() };
        assert_eq!(endless.consumed, 16 + 3 * 28 * 28 + 1);
    }

    #[test]
    fn a_header_announcing_more_than_the_limit_is_refused_before_reading_the_data() {
        // 65,536 images of 128x128: 1 GiB, then one image more.
        let mut header = Vec::new();
        for w in [IMAGES_MAGIC, 65_537, 128, 128] {
            header.extend_from_slice(&w.to_be_bytes());
        }
        let mut source = Source::Raw(Endless { header, zeros: vec![0; 8192], consumed: 0 });
        let err = images_from(&mut source, u64::MAX, Path::new("huge")).unwrap_err();
        assert!(err.to_string().contains("over the limit of 1073741824 bytes"), "{err}");
        let Source::Raw(endless) = source else { unreachable!() };
        assert_eq!(endless.consumed, 16);
    }
}
