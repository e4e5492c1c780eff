//! The IDX reader on arbitrary bytes, raw or gzip: an error or images of
//! exactly the size the header announces, never a panic, and nothing read
//! past the header's announcement (plus one byte).
#![no_main]

use gradtape_models::data::idx::{decode_idx_images, decode_idx_labels};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-idx-ubyte");
    if let Ok(images) = decode_idx_images(data, path) {
        assert_eq!(images.images.shape()[1], images.rows * images.cols);
    }
    let _ = decode_idx_labels(data, path);
});
