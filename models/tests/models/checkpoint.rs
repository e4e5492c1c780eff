//! Tests for `gradtape_models::checkpoint`: bit-exact round trips, the
//! safetensors layout, atomic writes, and loads that fail cleanly.

use gradtape_kernels::Tensor;
use gradtape_models::checkpoint::{load, load_into, save, Checkpoint, CheckpointError};
use std::collections::HashMap;
use std::path::Path;

fn params() -> Vec<(String, Tensor<f32>)> {
    vec![
        ("encoder.0.weight".to_string(), Tensor::normal(&[4, 6], 0.0, 1.0, 1)),
        ("encoder.0.bias".to_string(), Tensor::normal(&[4], 0.0, 1.0, 2)),
        ("decoder.0.weight".to_string(), Tensor::normal(&[6, 4], 0.0, 1.0, 3)),
        ("decoder.0.bias".to_string(), Tensor::zeros(&[6])),
    ]
}

fn save_params(path: &Path, params: &[(String, Tensor<f32>)]) {
    let refs: Vec<(&str, &Tensor<f32>)> = params.iter().map(|(n, t)| (n.as_str(), t)).collect();
    save(path, &refs, None).unwrap();
}

/// Fresh targets with the same names and shapes, filled with a marker value.
fn targets_like(params: &[(String, Tensor<f32>)]) -> Vec<(String, Tensor<f32>)> {
    params.iter().map(|(n, t)| (n.clone(), Tensor::full(t.shape(), 7.0))).collect()
}

fn load_targets(
    path: &Path,
    targets: &mut [(String, Tensor<f32>)],
) -> Result<HashMap<String, String>, CheckpointError> {
    let mut refs: Vec<(&str, &mut Tensor<f32>)> = targets.iter_mut().map(|(n, t)| (n.as_str(), t)).collect();
    load_into(path, &mut refs)
}

fn all_untouched(targets: &[(String, Tensor<f32>)]) -> bool {
    targets.iter().all(|(_, t)| t.data().iter().all(|&x| x == 7.0))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_then_load_is_bit_exact_including_special_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let special = Tensor::from_vec(
        vec![
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 8.0,
            f32::MAX,
            1.0e-30,
        ],
        &[2, 4],
    );
    let scalar = Tensor::scalar(3.25f32);
    save(&path, &[("special", &special), ("scalar", &scalar), ("w", &params()[0].1)], None).unwrap();
    let ck: Checkpoint<f32> = load(&path).unwrap();
    assert_eq!(ck.tensors.len(), 3);
    let bits = |t: &Tensor<f32>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(ck.get("special").unwrap()), bits(&special));
    assert_eq!(ck.get("special").unwrap().shape(), &[2, 4]);
    assert_eq!(ck.get("scalar").unwrap().shape(), &[] as &[usize]);
    assert_eq!(ck.get("w").unwrap(), &params()[0].1);
    assert!(ck.metadata.is_empty());
    assert_eq!(ck.path(), path.as_path());
}

#[test]
fn f64_tensors_round_trip_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f64.safetensors");
    let t = Tensor::<f64>::normal(&[3, 5], 0.0, 1.0, 11);
    save(&path, &[("x", &t)], None).unwrap();
    let ck = load::<f64>(&path).unwrap();
    assert_eq!(ck.get("x").unwrap(), &t);
}

#[test]
fn the_file_is_standard_safetensors_with_f32_little_endian_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.safetensors");
    let w = Tensor::from_vec(vec![1.0f32, -2.5, 3.0], &[1, 3]);
    save(&path, &[("encoder.0.weight", &w)], None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(
        header.contains(r#""encoder.0.weight":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]}"#),
        "{header}"
    );
    let data = &bytes[8 + n..];
    let expected: Vec<u8> = [1.0f32, -2.5, 3.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(data, &expected[..]);
}

#[test]
fn metadata_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.safetensors");
    let meta: HashMap<String, String> = [("epoch", "12"), ("model", "dae"), ("format", "pt")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    save(&path, &[("b", &Tensor::<f32>::ones(&[2]))], Some(meta.clone())).unwrap();
    assert_eq!(load::<f32>(&path).unwrap().metadata, meta);
    let mut target = Tensor::<f32>::zeros(&[2]);
    let got = load_into(&path, &mut [("b", &mut target)]).unwrap();
    assert_eq!(got, meta);
    assert_eq!(target.data(), &[1.0, 1.0]);
}

#[test]
fn load_into_fills_every_target_with_the_saved_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let saved = params();
    save_params(&path, &saved);
    let mut targets = targets_like(&saved);
    load_targets(&path, &mut targets).unwrap();
    for ((n1, a), (n2, b)) in saved.iter().zip(&targets) {
        assert_eq!(n1, n2);
        assert_eq!(a, b, "{n1}");
    }
}

#[test]
fn a_missing_tensor_is_an_error_naming_it_and_no_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    let saved = params();
    save_params(&path, &saved[..3]);
    let mut targets = targets_like(&saved);
    let err = load_targets(&path, &mut targets).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("partial.safetensors: missing tensor(s) `decoder.0.bias`"), "{msg}");
    assert!(msg.contains("the file holds `decoder.0.weight`, `encoder.0.bias`, `encoder.0.weight`"), "{msg}");
    assert!(all_untouched(&targets));
}

#[test]
fn a_wrong_shape_is_an_error_naming_the_tensor_and_both_shapes_and_no_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.safetensors");
    let mut saved = params();
    saved[3].1 = Tensor::zeros(&[5]);
    save_params(&path, &saved);
    let mut targets = targets_like(&params());
    let msg = load_targets(&path, &mut targets).unwrap_err().to_string();
    assert!(
        msg.contains("shape.safetensors: tensor `decoder.0.bias` has shape [5] in the file, expected [6]"),
        "{msg}"
    );
    // decoder.0.bias is the last target: the three before it were valid, and
    // still nothing was written.
    assert!(all_untouched(&targets));
}

#[test]
fn a_wrong_dtype_is_an_error_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("double.safetensors");
    save(&path, &[("w", &Tensor::<f64>::ones(&[2]))], None).unwrap();
    let mut targets = vec![("w".to_string(), Tensor::<f32>::full(&[2], 7.0))];
    let msg = load_targets(&path, &mut targets).unwrap_err().to_string();
    assert!(msg.contains("double.safetensors: tensor `w` is stored as F64, expected F32"), "{msg}");
    assert!(all_untouched(&targets));
}

#[test]
fn an_unexpected_tensor_fails_load_into_but_copy_into_ignores_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.safetensors");
    let saved = params();
    save_params(&path, &saved);
    let mut targets = targets_like(&saved[..2]);
    let msg = load_targets(&path, &mut targets).unwrap_err().to_string();
    assert!(
        msg.contains("extra.safetensors: unexpected tensor(s) `decoder.0.bias`, `decoder.0.weight`"),
        "{msg}"
    );
    assert!(all_untouched(&targets));
    let ck = load::<f32>(&path).unwrap();
    let mut refs: Vec<(&str, &mut Tensor<f32>)> = targets.iter_mut().map(|(n, t)| (n.as_str(), t)).collect();
    ck.copy_into(&mut refs).unwrap();
    assert_eq!(targets[0].1, saved[0].1);
    assert_eq!(targets[1].1, saved[1].1);
}

#[test]
fn a_truncated_file_is_an_error_and_no_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.safetensors");
    let saved = params();
    save_params(&path, &saved);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() - 1, bytes.len() / 2, 20, 5, 0] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let mut targets = targets_like(&saved);
        let msg = load_targets(&path, &mut targets).unwrap_err().to_string();
        assert!(
            msg.contains("cut.safetensors: not a valid safetensors file (corrupt or truncated)"),
            "kept {keep} bytes: {msg}"
        );
        assert!(all_untouched(&targets));
    }
}

#[test]
fn a_corrupt_header_is_an_error_and_no_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbled.safetensors");
    let saved = params();
    save_params(&path, &saved);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] = b'#'; // inside the JSON header
    std::fs::write(&path, &bytes).unwrap();
    let mut targets = targets_like(&saved);
    let msg = load_targets(&path, &mut targets).unwrap_err().to_string();
    assert!(msg.contains("garbled.safetensors: not a valid safetensors file"), "{msg}");
    assert!(all_untouched(&targets));
}

#[test]
fn a_nonexistent_file_is_an_error_naming_it_and_no_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never-saved.safetensors");
    let mut targets = targets_like(&params());
    let err = load_targets(&path, &mut targets).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    let msg = err.to_string();
    assert!(msg.contains("never-saved.safetensors: cannot read"), "{msg}");
    assert!(all_untouched(&targets));
}

#[test]
fn saving_replaces_the_old_file_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let saved = params();
    save_params(&path, &saved);
    save_params(&path, &saved[..1]);
    assert_eq!(files_in(dir.path()), vec!["model.safetensors"]);
    assert_eq!(load::<f32>(&path).unwrap().tensors.len(), 1);
}

#[test]
fn a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let saved = params();
    save_params(&path, &saved);
    let before = std::fs::read(&path).unwrap();
    let w = Tensor::<f32>::ones(&[2]);
    let msg = save(&path, &[("w", &w), ("w", &w)], None).unwrap_err().to_string();
    assert!(msg.contains("model.safetensors: cannot save tensor `w`: the name is given twice"), "{msg}");
    let msg = save(&path, &[("__metadata__", &w)], None).unwrap_err().to_string();
    assert!(msg.contains("reserved"), "{msg}");
    // A target that is a folder (or a link, a device, a pipe) is refused
    // before a temporary file is made, and never replaced.
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"x").unwrap();
    let msg = save(&folder, &[("w", &w)], None).unwrap_err().to_string();
    assert!(msg.contains("a-folder: not a regular file (a folder)"), "{msg}");
    assert!(folder.join("inside").is_file());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(files_in(dir.path()), vec!["a-folder", "model.safetensors"]);
}

#[test]
fn saving_into_a_missing_folder_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("model.safetensors");
    let msg = save(&path, &[("w", &Tensor::<f32>::ones(&[2]))], None).unwrap_err().to_string();
    assert!(msg.contains("no-such-dir/model.safetensors: cannot create a temporary file beside it"), "{msg}");
}
