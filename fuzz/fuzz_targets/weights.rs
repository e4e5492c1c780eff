//! The `--weights` loader on arbitrary bytes: the file read as named
//! tensors in float32 or float64 (`state_dict_from_bytes`), a gradtape
//! checkpoint's optimiser state dropped and every number checked finite
//! (`snapshot::weights_of`), then, for every model kind, the sizes read off
//! the shapes and bounded before anything is allocated and the model built
//! (`inspect::model_from_weights`), as `sample`, `reconstruct` and `encode`
//! do with `--weights FILE --model KIND`.
#![no_main]

use gradtape_examples::cli::{inspect, snapshot};
use gradtape_models::autoencoders::ModelKind;
use gradtape_models::spec::MAX_PARAMETERS;
use gradtape_models::state_dict::state_dict_from_bytes;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    let Ok(tensors) = state_dict_from_bytes(data, path) else { return };
    let numbers: usize = tensors.values().map(|t| t.len()).sum();
    assert!(4 * numbers <= data.len(), "more numbers than bytes");
    let Ok(weights) = snapshot::weights_of(tensors, path, "--weights") else { return };
    assert!(weights.values().all(|t| t.data().iter().all(|x| x.is_finite())));
    for kind in ModelKind::ALL {
        match inspect::model_from_weights(kind, &weights, path) {
            Ok((model, spec)) => {
                // Only weights that are the model's get this far: it holds
                // no more numbers than the file, and is within the limits.
                assert!(spec.parameter_count() <= MAX_PARAMETERS as u128);
                assert!(model.params().count() <= numbers);
            }
            Err(e) => {
                assert_eq!(e.code, 2);
                assert!(e.message.starts_with("--weights: ") && !e.message.contains('\n'), "{}", e.message);
            }
        }
    }
});
