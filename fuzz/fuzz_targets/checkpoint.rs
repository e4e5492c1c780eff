//! The checkpoint loader on arbitrary bytes, then everything that reads its
//! metadata: the model spec, and the training run `--resume` and `sample`
//! rebuild (its entries, its tensors against the model they describe).
#![no_main]

use gradtape_examples::cli::snapshot;
use gradtape_models::checkpoint::load_from_bytes;
use gradtape_models::spec::{ModelSpec, MAX_PARAMETERS};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    let Ok(file) = load_from_bytes::<f32>(data, path) else { return };
    let numbers: usize = file.tensors.values().map(|t| t.len()).sum();
    assert!(4 * numbers <= data.len(), "more numbers than bytes");
    if let Ok(spec) = ModelSpec::from_metadata(&file.metadata) {
        assert!(spec.parameter_count() <= MAX_PARAMETERS as u128);
    }
    if let Ok(loaded) = snapshot::from_checkpoint(file, "--checkpoint") {
        // Only a checkpoint whose tensors are its model's gets this far, so
        // building the model allocates no more than the file holds.
        let mut model = loaded.spec.build(0);
        let _ = loaded.restore_model(model.as_mut(), "--checkpoint");
    }
});
