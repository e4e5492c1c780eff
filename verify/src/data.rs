//! Real batches for the checks: digits from the 10,000 MNIST images built
//! into `gradtape-models` ([`MnistSplit::embedded`]), at full size or
//! shrunk to a few pixels for the small models that finite differences and
//! the PyTorch reference use.

use gradtape::{Element, Tensor};
use gradtape_models::data::MnistSplit;

/// The first `n` training digits as a `[n, 784]` batch (pixels in [0, 1]).
pub fn real_batch<T: Element>(n: usize) -> Tensor<T> {
    let images = MnistSplit::embedded().train.images;
    images.slice_axis(0, 0, n).cast()
}

/// The first `n` training digits shrunk to `side x side` pixels, as a
/// `[n, side * side]` batch: each new pixel is the mean of a square block of
/// `28 / side` original pixels, the blocks centred in the 28x28 image.
/// Real digits, small enough for a model whose input is 16 or 25 numbers.
/// (`verify/reference/make_reference.py` computes exactly the same.)
#[track_caller]
pub fn downsampled_batch<T: Element>(n: usize, side: usize) -> Tensor<T> {
    let data = MnistSplit::embedded().train;
    assert!(data.rows == 28 && data.cols == 28, "downsampled_batch: expected 28x28 digits");
    assert!((1..=28).contains(&side), "downsampled_batch: side {side} must be in 1..=28");
    let block = 28 / side;
    let offset = (28 - block * side) / 2;
    let pixels = data.images.data();
    let mut out = Vec::with_capacity(n * side * side);
    for img in 0..n {
        let image = &pixels[img * 784..(img + 1) * 784];
        for bi in 0..side {
            for bj in 0..side {
                let mut sum = 0.0f64;
                for r in 0..block {
                    for c in 0..block {
                        sum += image[(offset + bi * block + r) * 28 + offset + bj * block + c] as f64;
                    }
                }
                out.push(T::of(sum / (block * block) as f64));
            }
        }
    }
    Tensor::from_vec(out, &[n, side * side])
}
