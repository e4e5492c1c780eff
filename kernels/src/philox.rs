//! Philox4x32-10, the counter-based random number generator that the CUDA
//! mask kernels use (`kernels/cuda/philox.cuh`), written again in Rust as
//! the reference they are checked against bit for bit, and so that the host
//! can draw the very masks a GPU would.
//!
//! A counter-based generator is a keyed bijection with no state: a 128-bit
//! counter and a 64-bit key go in, 128 random bits come out (Salmon et al.,
//! "Parallel random numbers: as easy as 1, 2, 3", SC 2011). Element `i` of a
//! mask drawn with `seed` on call `counter` is therefore a function of
//! `(seed, counter, i)` alone, whatever the launch shape or thread count:
//!
//! ```text
//! block(seed, counter, b) = philox4x32_10([b lo, b hi, counter lo, counter hi], [seed lo, seed hi])
//! bits(i)   = word i % 4 of block(i / 4)                   (bernoulli)
//! normal(i) = Box-Muller on all four words of block(i)     (normal)
//! ```

/// Multipliers of the two 32x32-bit products in a round.
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
/// Weyl constants added to the key between rounds (golden ratio, sqrt 3 - 1).
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with ten rounds: `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// Block `block` of the stream `(seed, counter)`.
pub fn block(seed: u64, counter: u64, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, counter as u32, (counter >> 32) as u32],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// The 32 random bits of element `i`.
pub fn bits(seed: u64, counter: u64, i: u64) -> u32 {
    block(seed, counter, i / 4)[(i % 4) as usize]
}

/// The threshold a mask with ones at probability `p_one` compares its bits
/// with: `round(p_one * 2^32)`, as `Tensor::bernoulli` does.
#[track_caller]
pub fn threshold(p_one: f64) -> u64 {
    assert!((0.0..=1.0).contains(&p_one), "threshold: p = {p_one} is not a probability");
    (p_one * 4_294_967_296.0).round() as u64
}

/// Element `i` of a mask: `bits(i) < threshold`.
pub fn bernoulli(seed: u64, counter: u64, i: u64, threshold: u64) -> bool {
    u64::from(bits(seed, counter, i)) < threshold
}

/// A standard normal draw for element `i` (Box-Muller on block `i`):
///
/// ```text
/// u1 = (top 53 bits of w1:w0 + 1/2) / 2^53    in (0, 1)
/// u2 = (top 53 bits of w3:w2) / 2^53          in [0, 1)
/// z  = sqrt(-2 ln u1) cos(2 pi u2)
/// ```
pub fn normal(seed: u64, counter: u64, i: u64) -> f64 {
    let [w0, w1, w2, w3] = block(seed, counter, i);
    let a = ((u64::from(w1) << 32) | u64::from(w0)) >> 11;
    let c = ((u64::from(w3) << 32) | u64::from(w2)) >> 11;
    let scale = 1.0 / 9_007_199_254_740_992.0; // 2^-53
    let u1 = (a as f64 + 0.5) * scale;
    let u2 = c as f64 * scale;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32_10 (kat_vectors).
    #[test]
    fn philox4x32_10_matches_random123s_known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn elements_are_the_words_of_consecutive_blocks() {
        let b1 = block(7, 3, 1);
        assert_eq!((4..8).map(|i| bits(7, 3, i)).collect::<Vec<_>>(), b1.to_vec());
        // Seed, counter and index all change the bits.
        assert_ne!(bits(7, 3, 5), bits(8, 3, 5));
        assert_ne!(bits(7, 3, 5), bits(7, 4, 5));
    }

    #[test]
    fn masks_and_normals_have_the_right_statistics() {
        let n = 200_000u64;
        let t = threshold(0.3);
        let ones = (0..n).filter(|&i| bernoulli(1, 0, i, t)).count() as f64 / n as f64;
        assert!((ones - 0.3).abs() < 0.005, "fraction of ones {ones}");
        assert!((0..1000).all(|i| !bernoulli(1, 0, i, threshold(0.0)) && bernoulli(1, 0, i, threshold(1.0))));
        let z: Vec<f64> = (0..n).map(|i| normal(2, 0, i)).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "mean {mean}, variance {var}");
        assert!(z.iter().all(|x| x.is_finite()));
    }
}
