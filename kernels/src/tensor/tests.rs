//! The tensor's own tests: shared storage, seeded randomness, shapes.

use super::*;

#[test]
fn cloning_shares_storage_and_writing_copies_only_when_shared() {
    let a = Tensor::<f32>::ones(&[2, 3]);
    let mut b = a.clone();
    assert!(a.shares_storage_with(&b));
    b.data_mut()[0] = 5.0;
    assert!(!a.shares_storage_with(&b));
    assert_eq!(a.data()[0], 1.0);
    let ptr = b.data().as_ptr();
    b.data_mut()[1] = 7.0; // no longer shared: written in place
    assert_eq!(b.data().as_ptr(), ptr);
}

#[test]
fn seeded_random_is_reproducible_and_matches_across_precisions() {
    let a = Tensor::<f64>::normal(&[10], 0.0, 1.0, 7);
    let b = Tensor::<f64>::normal(&[10], 0.0, 1.0, 7);
    let c = Tensor::<f32>::normal(&[10], 0.0, 1.0, 7);
    assert_eq!(a, b);
    assert_ne!(a, Tensor::<f64>::normal(&[10], 0.0, 1.0, 8), "another seed, other numbers");
    assert_ne!(
        Tensor::<f32>::uniform(&[10], 0.0, 1.0, 7),
        Tensor::<f32>::uniform(&[10], 0.0, 1.0, 8),
        "another seed, other numbers"
    );
    assert_eq!((a.len(), c.len()), (10, 10));
    for (x, y) in a.data().iter().zip(c.data()) {
        assert_eq!(*x as f32, *y);
    }
    let m = Tensor::<f32>::bernoulli(&[10_000], 0.3, 1);
    let frac = m.data().iter().sum::<f32>() / 10_000.0;
    assert!((frac - 0.3).abs() < 0.02, "fraction of ones {frac}");
    assert_eq!(m, Tensor::<f32>::bernoulli(&[10_000], 0.3, 1));
    assert_ne!(m, Tensor::<f32>::bernoulli(&[10_000], 0.3, 2), "another seed, another mask");
    assert!(m.data().iter().all(|&x| x == 0.0 || x == 1.0));
    // The ends are exact, and a length that is not a whole number of
    // blocks is filled to the end.
    assert!(Tensor::<f32>::bernoulli(&[3000], 0.0, 2).data().iter().all(|&x| x == 0.0));
    assert!(Tensor::<f32>::bernoulli(&[3000], 1.0, 2).data().iter().all(|&x| x == 1.0));
    let tail = Tensor::<f32>::bernoulli(&[2500], 0.5, 3);
    let ones_in_tail = tail.data()[2048..].iter().sum::<f32>();
    assert!((200.0..=252.0).contains(&ones_in_tail), "ones among the last 452: {ones_in_tail}");
    // A long mask is drawn in separately seeded pieces, in parallel: still
    // reproducible, every piece (the short last one too) has its share of
    // ones, and no two pieces repeat each other.
    let n = 3 * MASK_STREAM + 1000;
    let long = Tensor::<f32>::bernoulli(&[n], 0.25, 4);
    assert_eq!(long, Tensor::<f32>::bernoulli(&[n], 0.25, 4));
    assert_ne!(long, Tensor::<f32>::bernoulli(&[n], 0.25, 5));
    let pieces: Vec<&[f32]> = long.data().chunks(MASK_STREAM).collect();
    for piece in &pieces {
        let frac = piece.iter().sum::<f32>() / piece.len() as f32;
        assert!((frac - 0.25).abs() < 0.04, "fraction of ones in a piece {frac}");
    }
    assert!(pieces[0] != pieces[1] && pieces[1] != pieces[2]);
    let u = Tensor::<f32>::uniform(&[1000], -2.0, 3.0, 3);
    assert!(u.data().iter().all(|&x| (-2.0..3.0).contains(&x)));
}

#[test]
#[should_panic(expected = "from_vec: 5 elements cannot have shape [2, 3]")]
fn from_vec_checks_the_shape() {
    let _ = Tensor::<f32>::from_vec(vec![0.0; 5], &[2, 3]);
}

#[test]
fn max_abs_diff_is_nan_or_infinite_when_a_pair_is() {
    let r = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    let with = |i: usize, v: f64| {
        let mut t = r.clone();
        t.data_mut()[i] = v;
        t
    };
    assert_eq!(with(0, 1.5).max_abs_diff(&r), 0.5);
    assert!(with(1, f64::NAN).max_abs_diff(&r).is_nan(), "a NaN in the middle");
    assert!(r.max_abs_diff(&with(0, f64::NAN)).is_nan(), "a NaN first, on the other side");
    let two = with(0, f64::NAN);
    assert!(with(2, 100.0).max_abs_diff(&two).is_nan(), "a larger finite difference after a NaN");
    assert_eq!(with(2, f64::INFINITY).max_abs_diff(&r), f64::INFINITY);
    let inf = with(1, f64::INFINITY);
    assert!(inf.max_abs_diff(&inf).is_nan(), "the same infinity on both sides");
    let nan_diff = with(1, f64::NAN).max_abs_diff(&r);
    assert!(nan_diff.partial_cmp(&1e-10).is_none(), "so `<= tol` fails");
}

#[test]
fn arange_at_and_reshape() {
    let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    assert_eq!(t.at(&[1, 2]), 5.0);
    assert_eq!(t.shape(), &[2, 3]);
}
