//! Tests for `gradtape_models::data`: IDX reading and writing, the error
//! messages for bad files, the embedded MNIST digits, batching and noise.

use gradtape_kernels::Tensor;
use gradtape_models::data::idx::{encode_idx_images, encode_idx_labels};
use gradtape_models::data::{
    gaussian_noise_seeded, masking_noise, masking_noise_seeded, read_idx_images, read_idx_labels,
    write_idx_images, write_idx_labels, DataError, Dataset, LastBatch, MnistSplit, FASHION_MNIST_DIR,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// `n` images of `rows x cols` with every byte value represented.
fn sample_pixels(n: usize, rows: usize, cols: usize) -> Vec<u8> {
    (0..n * rows * cols).map(|i| (i * 37 % 256) as u8).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn small_dataset(n: usize) -> Dataset {
    let pixels: Vec<f32> = (0..n * 4).map(|i| i as f32).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(Tensor::from_vec(pixels, &[n, 4]), labels, 2, 2)
}

fn message_of<T: std::fmt::Debug>(result: Result<T, DataError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn idx_images_round_trip_exactly_through_gzip_and_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let (n, rows, cols) = (7, 3, 5);
    let bytes = sample_pixels(n, rows, cols);
    let images = Tensor::from_vec(bytes.iter().map(|&b| f32::from(b) / 255.0).collect(), &[n, rows * cols]);
    for name in ["imgs-idx3-ubyte", "imgs-idx3-ubyte.gz"] {
        let path = dir.path().join(name);
        write_idx_images(&path, &images, rows, cols).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.starts_with(&[0x1f, 0x8b]), name.ends_with(".gz"));
        let back = read_idx_images(&path).unwrap();
        assert_eq!((back.rows, back.cols), (rows, cols));
        assert_eq!(back.images, images, "{name}");
    }
    // The raw file is exactly the IDX layout: big-endian header, then bytes.
    let raw = std::fs::read(dir.path().join("imgs-idx3-ubyte")).unwrap();
    assert_eq!(&raw[..16], &[0, 0, 8, 3, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 5]);
    assert_eq!(&raw[16..], &bytes[..]);
}

#[test]
fn idx_labels_round_trip_through_gzip_and_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<u8> = (0..50).map(|i| (i * 7 % 10) as u8).collect();
    for name in ["labs-idx1-ubyte", "labs-idx1-ubyte.gz"] {
        let path = dir.path().join(name);
        write_idx_labels(&path, &labels).unwrap();
        assert_eq!(read_idx_labels(&path).unwrap(), labels);
    }
}

#[test]
fn reader_detects_gzip_by_its_magic_bytes_not_by_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let labels = vec![3u8, 1, 4, 1, 5];
    let zipped_without_gz = dir.path().join("a-idx1-ubyte");
    std::fs::write(&zipped_without_gz, gzip(&encode_idx_labels(&labels))).unwrap();
    let raw_with_gz = dir.path().join("b-idx1-ubyte.gz");
    std::fs::write(&raw_with_gz, encode_idx_labels(&labels)).unwrap();
    assert_eq!(read_idx_labels(&zipped_without_gz).unwrap(), labels);
    assert_eq!(read_idx_labels(&raw_with_gz).unwrap(), labels);
}

#[test]
fn truncated_image_data_is_an_error_naming_the_file_and_both_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short-idx3-ubyte");
    let mut bytes = encode_idx_images(&sample_pixels(4, 2, 2), 4, 2, 2);
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&path, &bytes).unwrap();
    let msg = message_of(read_idx_images(&path));
    assert!(msg.contains("short-idx3-ubyte"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    assert!(msg.contains("4 images of 2x2 pixels"), "{msg}");
    assert!(msg.contains("needs 32 bytes but the file has 29"), "{msg}");
}

#[test]
fn truncated_header_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-idx1-ubyte");
    std::fs::write(&path, [0u8, 0, 8]).unwrap();
    let msg = message_of(read_idx_labels(&path));
    assert!(msg.contains("tiny-idx1-ubyte"), "{msg}");
    assert!(msg.contains("truncated: the 8-byte IDX header"), "{msg}");
    let path = dir.path().join("half-idx3-ubyte");
    std::fs::write(&path, &encode_idx_images(&[], 0, 28, 28)[..10]).unwrap();
    let msg = message_of(read_idx_images(&path));
    assert!(
        msg.contains("half-idx3-ubyte: truncated: the 16-byte IDX header needs 16 bytes but the file has 10"),
        "{msg}"
    );
}

#[test]
fn truncated_gzip_stream_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut-idx3-ubyte.gz");
    let zipped = gzip(&encode_idx_images(&sample_pixels(20, 4, 4), 20, 4, 4));
    std::fs::write(&path, &zipped[..zipped.len() / 2]).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cut-idx3-ubyte.gz"), "{msg}");
    assert!(msg.contains("gzip file but is corrupt or truncated"), "{msg}");
}

#[test]
fn wrong_magic_number_is_an_error_saying_which_was_found_and_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&path, gzip(&encode_idx_labels(&[1, 2, 3]))).unwrap();
    let msg = message_of(read_idx_images(&path));
    assert!(
        msg.contains(
            "train-images-idx3-ubyte.gz: wrong magic number 0x00000801, expected 0x00000803 (an IDX image file)"
        ),
        "{msg}"
    );
    assert!(msg.contains("looks like an IDX label file"), "{msg}");
    let path = dir.path().join("labels-idx1-ubyte");
    std::fs::write(&path, b"PK\x03\x04 not idx at all").unwrap();
    let msg = message_of(read_idx_labels(&path));
    assert!(msg.contains("labels-idx1-ubyte: wrong magic number 0x504b0304, expected 0x00000801"), "{msg}");
}

#[test]
fn bytes_after_the_announced_data_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long-idx1-ubyte");
    let mut bytes = encode_idx_labels(&[1, 2, 3]);
    bytes.extend_from_slice(&[9, 9]);
    std::fs::write(&path, &bytes).unwrap();
    let msg = message_of(read_idx_labels(&path));
    assert!(msg.contains("long-idx1-ubyte: 2 unexpected bytes after the data"), "{msg}");
}

#[test]
fn zero_sized_images_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat-idx3-ubyte");
    std::fs::write(&path, encode_idx_images(&[], 5, 0, 28)).unwrap();
    let msg = message_of(read_idx_images(&path));
    assert!(msg.contains("flat-idx3-ubyte: bad dimensions: images of 0x28 pixels"), "{msg}");
}

#[test]
fn missing_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere-idx3-ubyte.gz");
    let msg = message_of(read_idx_images(&path));
    assert!(msg.contains("nowhere-idx3-ubyte.gz: cannot read"), "{msg}");
}

#[test]
fn image_and_label_counts_that_disagree_are_an_error_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("x-idx3-ubyte");
    let labels = dir.path().join("y-idx1-ubyte.gz");
    std::fs::write(&images, encode_idx_images(&sample_pixels(5, 2, 2), 5, 2, 2)).unwrap();
    write_idx_labels(&labels, &[0, 1, 2, 3]).unwrap();
    let msg = message_of(Dataset::from_files(&images, &labels));
    assert!(msg.contains("x-idx3-ubyte holds 5 images"), "{msg}");
    assert!(msg.contains("y-idx1-ubyte.gz holds 4 labels"), "{msg}");
}

/// Writes a small MNIST-format folder; `skip` names a file to leave out.
fn write_mnist_dir(dir: &Path, skip: Option<&str>) {
    let files: [(&str, Vec<u8>); 4] = [
        ("train-images-idx3-ubyte.gz", gzip(&encode_idx_images(&sample_pixels(6, 3, 3), 6, 3, 3))),
        ("train-labels-idx1-ubyte", encode_idx_labels(&[0, 1, 2, 0, 1, 2])),
        ("t10k-images.idx3-ubyte", encode_idx_images(&sample_pixels(2, 3, 3), 2, 3, 3)),
        ("t10k-labels-idx1-ubyte.gz", gzip(&encode_idx_labels(&[2, 2]))),
    ];
    for (name, bytes) in files {
        if Some(name) != skip {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn from_dir_reads_a_folder_of_raw_gzip_and_dotted_file_names() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist_dir(dir.path(), None);
    let split = MnistSplit::from_dir(dir.path()).unwrap();
    assert_eq!(split.train.len(), 6);
    assert_eq!(split.test.len(), 2);
    assert_eq!((split.train.rows, split.train.cols), (3, 3));
    assert_eq!(split.train.images.shape(), &[6, 9]);
    assert_eq!(split.test.labels, vec![2, 2]);
    assert_eq!(split.train.class_counts(), vec![2, 2, 2]);
}

#[test]
fn from_dir_with_a_missing_file_names_the_folder_and_the_expected_files() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist_dir(dir.path(), Some("t10k-labels-idx1-ubyte.gz"));
    let err = MnistSplit::from_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("missing t10k-labels-idx1-ubyte[.gz];"), "{msg}");
    for expected in
        ["train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]", "t10k-images-idx3-ubyte[.gz]"]
    {
        assert!(msg.contains(expected), "{msg}");
    }
}

#[test]
fn from_dir_with_no_such_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("not-here");
    let msg = MnistSplit::from_dir(&gone).unwrap_err().to_string();
    assert!(msg.contains("not-here: no such folder"), "{msg}");
}

#[test]
fn embedded_mnist_has_8000_train_and_2000_test_digits_with_the_documented_class_counts() {
    let split = MnistSplit::embedded();
    assert_eq!(split.train.images.shape(), &[8000, 784]);
    assert_eq!(split.test.images.shape(), &[2000, 784]);
    assert_eq!((split.train.rows, split.train.cols), (28, 28));
    // From models/data/mnist-10k/SOURCE.md.
    assert_eq!(split.train.class_counts(), vec![815, 907, 792, 820, 779, 697, 809, 857, 739, 785]);
    assert_eq!(split.test.class_counts(), vec![186, 220, 199, 212, 201, 166, 205, 213, 205, 193]);
}

#[test]
fn embedded_pixels_lie_in_0_1_and_use_the_whole_range() {
    let split = MnistSplit::embedded();
    for data in [&split.train, &split.test] {
        let px = data.images.data();
        assert!(px.iter().all(|&x| (0.0..=1.0).contains(&x)));
        assert_eq!(px.iter().cloned().fold(f32::INFINITY, f32::min), 0.0);
        assert_eq!(px.iter().cloned().fold(f32::NEG_INFINITY, f32::max), 1.0);
        // Digits are mostly background: about a fifth of the pixels are ink.
        let ink = px.iter().filter(|&&x| x > 0.0).count() as f64 / px.len() as f64;
        assert!((0.1..0.3).contains(&ink), "ink fraction {ink}");
    }
    // A second call shares the decoded pixels instead of decoding again.
    assert!(MnistSplit::embedded().train.images.shares_storage_with(&split.train.images));
}

#[test]
fn fashion_mnist_from_the_debian_package_loads_when_installed() {
    let dir = Path::new(FASHION_MNIST_DIR);
    if !dir.is_dir() {
        println!("SKIPPED: {FASHION_MNIST_DIR} not found (apt-get install dataset-fashion-mnist)");
        return;
    }
    let split = MnistSplit::from_dir(dir).unwrap();
    assert_eq!(split.train.images.shape(), &[60000, 784]);
    assert_eq!(split.test.images.shape(), &[10000, 784]);
    assert_eq!(split.train.class_counts(), vec![6000; 10]);
    assert_eq!(split.test.class_counts(), vec![1000; 10]);
}

#[test]
fn take_and_select_pick_the_right_examples() {
    let data = small_dataset(10);
    let first = data.take(3);
    assert_eq!(first.len(), 3);
    assert_eq!(first.images.data(), &data.images.data()[..12]);
    assert_eq!(data.take(100).len(), 10);
    let picked = data.select(&[7, 2, 7]);
    assert_eq!(picked.labels, vec![7, 2, 7]);
    assert_eq!(picked.image(0), data.image(7));
    assert_eq!(picked.image(1), data.image(2));
}

#[test]
fn an_epoch_of_batches_visits_every_example_exactly_once() {
    let data = small_dataset(103);
    let mut seen = Vec::new();
    let batches = data.batches(10, 5, LastBatch::Keep);
    assert_eq!(batches.len(), 11);
    for batch in batches {
        assert_eq!(batch.images.shape(), &[batch.indices.len(), 4]);
        for (row, &i) in batch.indices.iter().enumerate() {
            assert_eq!(&batch.images.data()[row * 4..row * 4 + 4], data.image(i));
            assert_eq!(batch.labels[row], data.labels[i]);
        }
        seen.extend(batch.indices);
    }
    assert_eq!(seen.len(), 103);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 103);
    assert_ne!(seen, (0..103).collect::<Vec<_>>(), "the order is shuffled");
}

#[test]
fn the_same_seed_gives_the_same_batches_and_another_seed_another_order() {
    let data = small_dataset(50);
    let order = |seed| data.batches(8, seed, LastBatch::Keep).order().to_vec();
    assert_eq!(order(1), order(1));
    assert_ne!(order(1), order(2));
    let a: Vec<Vec<u8>> = data.batches(8, 3, LastBatch::Keep).map(|b| b.labels).collect();
    let b: Vec<Vec<u8>> = data.batches(8, 3, LastBatch::Keep).map(|b| b.labels).collect();
    assert_eq!(a, b);
}

#[test]
fn the_last_partial_batch_is_kept_or_dropped_as_asked() {
    let data = small_dataset(10);
    let sizes = |last| -> Vec<usize> { data.batches(3, 0, last).map(|b| b.labels.len()).collect() };
    assert_eq!(sizes(LastBatch::Keep), vec![3, 3, 3, 1]);
    assert_eq!(sizes(LastBatch::Drop), vec![3, 3, 3]);
    assert_eq!(data.batches(3, 0, LastBatch::Drop).len(), 3);
    let exact = small_dataset(9);
    assert_eq!(exact.batches(3, 0, LastBatch::Drop).count(), 3);
    assert_eq!(exact.batches(3, 0, LastBatch::Keep).count(), 3);
}

#[test]
fn masking_noise_zeroes_about_rate_of_the_pixels_and_leaves_the_rest() {
    let x = Tensor::<f32>::full(&[100, 1000], 0.5);
    for rate in [0.0, 0.1, 0.3, 0.75, 1.0] {
        let y = masking_noise_seeded(&x, rate, 42);
        assert_eq!(y.shape(), x.shape());
        let zeros = y.data().iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((zeros - rate).abs() < 0.01, "rate {rate}: zero fraction {zeros}");
        assert!(y.data().iter().all(|&v| v == 0.0 || v == 0.5));
    }
    assert_eq!(x.data()[0], 0.5, "the input is not changed");
}

#[test]
fn noise_is_reproducible_by_seed_and_generator() {
    let x = Tensor::<f32>::uniform(&[20, 30], 0.0, 1.0, 9);
    assert_eq!(masking_noise_seeded(&x, 0.4, 1), masking_noise_seeded(&x, 0.4, 1));
    assert_ne!(masking_noise_seeded(&x, 0.4, 1), masking_noise_seeded(&x, 0.4, 2));
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(masking_noise(&x, 0.4, &mut rng), masking_noise_seeded(&x, 0.4, 1));
    assert_eq!(gaussian_noise_seeded(&x, 0.2, true, 3), gaussian_noise_seeded(&x, 0.2, true, 3));
    assert_ne!(gaussian_noise_seeded(&x, 0.2, true, 3), gaussian_noise_seeded(&x, 0.2, true, 4));
}

#[test]
fn gaussian_noise_has_the_asked_spread_and_clamping_keeps_pixels_in_0_1() {
    let x = Tensor::<f32>::full(&[200, 500], 0.5);
    let y = gaussian_noise_seeded(&x, 0.1, false, 7);
    let d: Vec<f64> = y.data().iter().map(|&v| f64::from(v) - 0.5).collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let std = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
    assert!(mean.abs() < 0.002, "mean {mean}");
    assert!((std - 0.1).abs() < 0.002, "std {std}");
    let wide = gaussian_noise_seeded(&x, 1.0, false, 7);
    assert!(wide.data().iter().any(|&v| !(0.0..=1.0).contains(&v)));
    let clamped = gaussian_noise_seeded(&x, 1.0, true, 7);
    assert!(clamped.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
}
