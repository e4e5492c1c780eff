//! Files from outside, mutated at random: every damaged IDX file and
//! checkpoint gives an error value, never a panic, and nothing is read or
//! allocated past the stated limits. (The fuzzers in `fuzz/` do the same
//! with coverage guidance, for longer; these run in every `cargo test`.)

use gradtape::Tensor;
use gradtape_models::autoencoders::ModelKind;
use gradtape_models::checkpoint;
use gradtape_models::data::idx::{
    decode_idx_images, decode_idx_labels, encode_idx_images, encode_idx_labels,
};
use gradtape_models::spec::ModelSpec;
use proptest::prelude::*;
use std::io::Write;
use std::path::Path;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A real IDX image file of 6 images of 4x5 pixels and its label file.
fn idx_files() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..6 * 4 * 5).map(|i| (i * 37 % 256) as u8).collect();
    (encode_idx_images(&pixels, 6, 4, 5), encode_idx_labels(&[3, 1, 4, 1, 5, 9]))
}

/// One mutation of a file: truncation, byte flips, or a header word set to
/// an extreme.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    /// Sets the 4-byte big-endian word at this index (in the IDX header).
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<usize>(), 1u8..=255), 1..8).prop_map(Mutation::Flip),
        (0usize..4, prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(1 << 31), any::<u32>()])
            .prop_map(|(i, w)| Mutation::Word(i, w)),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Truncate(at) => out.truncate(at % (bytes.len() + 1)),
        Mutation::Flip(flips) => {
            for &(at, bits) in flips {
                let i = at % out.len();
                out[i] ^= bits;
            }
        }
        Mutation::Word(i, w) => {
            let at = 4 * i;
            if at + 4 <= out.len() {
                out[at..at + 4].copy_from_slice(&w.to_be_bytes());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_damaged_idx_file_is_an_error_or_decodes_to_what_its_header_says(m in mutation(), zipped in any::<bool>()) {
        let (images, labels) = idx_files();
        let path = Path::new("mutated-idx-ubyte");
        for (original, is_images) in [(&images, true), (&labels, false)] {
            let damaged = apply(original, &m);
            let bytes = if zipped { gzip(&damaged) } else { damaged.clone() };
            if is_images {
                if let Ok(got) = decode_idx_images(&bytes, path) {
                    // Only a file whose length is exactly what its header
                    // announces decodes, and then to that shape.
                    prop_assert_eq!(got.images.len() + 16, damaged.len());
                    prop_assert_eq!(got.images.shape()[1], got.rows * got.cols);
                }
            } else if let Ok(got) = decode_idx_labels(&bytes, path) {
                prop_assert_eq!(got.len() + 8, damaged.len());
            }
            // A damaged gzip stream itself (not what it holds).
            if zipped {
                let stream = apply(&gzip(original), &m);
                let _ = decode_idx_images(&stream, path);
                let _ = decode_idx_labels(&stream, path);
            }
        }
    }
}

/// A real training-style checkpoint: a small model's weights and metadata.
fn checkpoint_bytes(dir: &Path) -> Vec<u8> {
    let mut spec = ModelSpec::default_for(ModelKind::Vae);
    spec.widths = vec![12, 5, 2];
    let model = spec.build(1);
    let named = model.params().named();
    let path = dir.join("real.safetensors");
    checkpoint::save(&path, &named, Some(spec.to_metadata())).unwrap();
    std::fs::read(path).unwrap()
}

/// Edits of the header's text that a byte flip rarely finds.
#[derive(Clone, Debug)]
enum HeaderEdit {
    None,
    /// Another dtype for every tensor.
    Dtype(&'static str),
    /// The first tensor entry given twice.
    Duplicate,
    /// A shape dimension made huge or zero.
    Shape(&'static str),
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    prop_oneof![
        Just(HeaderEdit::None),
        prop_oneof![Just("F64"), Just("F16"), Just("I64"), Just("U8"), Just("BOOL")]
            .prop_map(HeaderEdit::Dtype),
        Just(HeaderEdit::Duplicate),
        prop_oneof![Just("0"), Just("4294967296"), Just("18446744073709551615")].prop_map(HeaderEdit::Shape),
    ]
}

/// The file with its header text edited (the length prefix kept right).
fn edit_header(bytes: &[u8], edit: &HeaderEdit) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end().to_string();
    let header = match edit {
        HeaderEdit::None => return bytes.to_vec(),
        HeaderEdit::Dtype(d) => header.replace("\"F32\"", &format!("\"{d}\"")),
        HeaderEdit::Duplicate => {
            // `{"__metadata__":{...},"name":{...},...}`: repeat the entry
            // after the metadata.
            let start = header.find("},\"").map(|i| i + 2).unwrap();
            let end = start + header[start..].find('}').unwrap() + 1;
            let entry = header[start..end].to_string();
            format!("{},{}{}", &header[..end], entry, &header[end..])
        }
        HeaderEdit::Shape(d) => header.replacen("\"shape\":[", &format!("\"shape\":[{d},"), 1),
    };
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_the_file(m in mutation(), edit in header_edit()) {
        let dir = tempfile::tempdir().unwrap();
        let real = checkpoint_bytes(dir.path());
        let damaged = apply(&edit_header(&real, &edit), &m);
        let path = dir.path().join("damaged.safetensors");
        std::fs::write(&path, &damaged).unwrap();
        match checkpoint::load::<f32>(&path) {
            Ok(file) => {
                // What loads is no larger than the file: nothing was made up.
                let numbers: usize = file.tensors.values().map(|t| t.len()).sum();
                prop_assert!(4 * numbers <= damaged.len());
                if let Ok(spec) = ModelSpec::from_metadata(&file.metadata) {
                    prop_assert!(spec.parameter_count() <= gradtape_models::spec::MAX_PARAMETERS as u128);
                }
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("damaged.safetensors"), "{}", message);
            }
        }
    }
}

#[test]
fn a_name_given_twice_in_a_header_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let real = checkpoint_bytes(dir.path());
    let path = dir.path().join("twice.safetensors");
    std::fs::write(&path, edit_header(&real, &HeaderEdit::Duplicate)).unwrap();
    let message = checkpoint::load::<f32>(&path).unwrap_err().to_string();
    assert!(
        message.contains("twice.safetensors") && message.contains("appears twice in the header"),
        "{message}"
    );
    // A metadata key given twice too.
    let header =
        br#"{"__metadata__":{"a":"1","a":"2"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    std::fs::write(&path, &bytes).unwrap();
    let message = checkpoint::load::<f32>(&path).unwrap_err().to_string();
    assert!(message.contains("the metadata key `a` appears twice"), "{message}");
}

#[test]
fn equal_tensors_and_metadata_give_equal_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
    let meta: std::collections::HashMap<String, String> =
        (0..40).map(|i| (format!("key{i}"), format!("value {i}"))).collect();
    let mut files = Vec::new();
    for name in ["a", "b", "c"] {
        let path = dir.path().join(name);
        // Each HashMap iterates in its own order.
        let meta: std::collections::HashMap<String, String> = meta.clone().into_iter().collect();
        checkpoint::save(&path, &[("w", &t), ("b", &t)], Some(meta)).unwrap();
        files.push(std::fs::read(&path).unwrap());
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
    let back = checkpoint::load::<f32>(dir.path().join("a")).unwrap();
    assert_eq!(back.metadata, meta);
    assert_eq!(back.get("w").unwrap(), &t);
}

#[test]
fn a_failed_write_leaves_the_previous_file_whole_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let old = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    checkpoint::save(&path, &[("w", &old)], None).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A disk that fills up half-way through the write.
    let err = checkpoint::write_atomically_with(&path, &[7u8; 4096], |file, bytes| {
        file.write_all(&bytes[..1000])?;
        Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"))
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("checkpoint.safetensors: cannot write: No space left on device"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the previous checkpoint changed");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["checkpoint.safetensors"], "a temporary file was left behind");
}
