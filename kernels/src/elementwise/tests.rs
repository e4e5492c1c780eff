//! The elementwise kernels' tests: every vector width, both sides of the
//! threshold, broadcasting, NaN and the extremes.

use super::wide::*;
use super::*;

#[test]
fn every_vector_width_gives_the_same_bits_as_the_baseline_loops() {
    let x: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * 2.5e-4 * (1.0 + (i % 7) as f32)).collect();
    let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 0.25).collect();
    type Kernel = (&'static str, fn(f32) -> f32);
    let kernels: [Kernel; 5] = [
        ("exp", f32::exp_k),
        ("ln", f32::ln_k),
        ("tanh", f32::tanh_k),
        ("sigmoid", f32::sigmoid_k),
        ("expm1", crate::fastmath::expm1),
    ];
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
    let widths = widths();
    eprintln!("vector widths on this CPU: {widths:?}");
    for &width in &widths {
        for (name, f) in kernels {
            let (mut wide, mut base) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            // SAFETY: `widths()` lists only what this CPU has (so do the calls below).
            unsafe { map_at(width, &x, &mut wide, &f) };
            map_loop(&x, &mut base, &f);
            assert!(same(&wide, &base), "{name} at {width:?}");
        }
        let grad = |g: f32, s: f32| g * (s * (1.0 - s));
        let (mut wide, mut base) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        unsafe { zip_at(width, &x, &y, &mut wide, &grad) };
        zip_loop(&x, &y, &mut base, &grad);
        assert!(same(&wide, &base), "sigmoid's rule at {width:?}");
        // Adam's shape of update, with a square root and a division.
        let adam = |p: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            *m = 0.9 * *m + 0.1 * g;
            *v = 0.999 * *v + 0.001 * g * g;
            *p -= 1e-3 * *m / (v.sqrt() + 1e-8);
        };
        let mut wide = [x.clone(), y.clone(), x.iter().map(|v| v * v).collect::<Vec<f32>>()];
        let mut base = wide.clone();
        let [p, m, v] = &mut wide;
        unsafe { update3_at(width, p, m, v, &y, &adam) };
        let [p, m, v] = &mut base;
        update3_loop(p, m, v, &y, &adam);
        for (w, b) in wide.iter().zip(&base) {
            assert!(same(w, b), "Adam's update at {width:?}");
        }
    }
}

/// Runs the optimiser-shaped pass on `n` elements and returns the three
/// updated arrays.
fn run_update3(n: usize) -> [Vec<f32>; 3] {
    let mut a: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
    let mut b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 1e-39).collect(); // subnormal
    let mut c: Vec<f32> = (0..n).map(|i| (i % 11) as f32).collect();
    let d: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    update3_flush_denormals(&mut a, &mut b, &mut c, &d, |a, b, c, d| {
        *b = *b * 0.5 + d;
        *c = (*c + d * d).sqrt();
        *a -= 0.01 * *b / (*c + 1e-8);
    });
    [a, b, c]
}

#[test]
fn update3_updates_every_element_once_serially_and_in_parallel_alike() {
    let n = 1 << 15;
    // Above the pass's own (quarter) threshold: parallel.
    let [a, b, c] = with_parallel_threshold(4 * n, || run_update3(n));
    for i in [0, 1, 4, 5, 8191, 8192, n - 1] {
        let d = (i % 7) as f32 - 3.0;
        // The subnormal input reads as 0 under the flush.
        let want_b = 0.0 * 0.5 + d;
        let want_c = ((i % 11) as f32 + d * d).sqrt();
        let want_a = ((i % 13) as f32 * 0.1 - 0.6) - 0.01 * want_b / (want_c + 1e-8);
        assert_eq!((a[i], b[i], c[i]), (want_a, want_b, want_c), "element {i}");
    }
    // Serial (short) and parallel (long) runs agree element for element.
    let short = with_parallel_threshold(usize::MAX, || run_update3(1000));
    for k in 0..3 {
        assert_eq!(&short[k][..], &[a.as_slice(), b.as_slice(), c.as_slice()][k][..1000]);
    }
}

#[test]
#[should_panic(expected = "update3_flush_denormals: lengths differ: 3, 3, 2 and 3")]
fn update3_names_mismatched_lengths() {
    let (mut a, mut b, mut c) = (vec![0f32; 3], vec![0f32; 3], vec![0f32; 2]);
    update3_flush_denormals(&mut a, &mut b, &mut c, &[0.0; 3], |_, _, _, _| {});
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let a = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    let b = Tensor::<f64>::from_vec(vec![10.0, 20.0, 30.0], &[3]);
    assert_eq!(a.add(&b).to_vec(), vec![10.0, 21.0, 32.0, 13.0, 24.0, 35.0]);
    let c = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]);
    assert_eq!(a.mul(&c).to_vec(), vec![0.0, 1.0, 2.0, 6.0, 8.0, 10.0]);
    let s = Tensor::<f64>::scalar(2.0);
    assert_eq!(s.sub(&a).to_vec(), vec![2.0, 1.0, 0.0, -1.0, -2.0, -3.0]);
    let col = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]);
    let row = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
    assert_eq!(col.mul(&row).shape(), &[2, 3]);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
fn mismatched_shapes_name_the_op_and_both_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).add(&Tensor::zeros(&[2]));
}

#[test]
fn parallel_and_serial_paths_agree() {
    let a = Tensor::<f32>::normal(&[100_000], 0.0, 1.0, 1);
    let b = Tensor::<f32>::normal(&[100_000], 0.0, 1.0, 2);
    // Both sides forced, so that neither depends on the default
    // threshold (100,000 elements is below it).
    let par = with_parallel_threshold(1, || a.mul(&b).sigmoid());
    let serial = with_parallel_threshold(usize::MAX, || a.mul(&b).sigmoid());
    let by_hand: Vec<f32> = a.data().iter().zip(b.data()).map(|(x, y)| sigmoid(x * y)).collect();
    assert_eq!(par.to_vec(), by_hand);
    assert_eq!(serial.to_vec(), by_hand);
}

#[test]
fn a_thread_local_threshold_holds_inside_the_closure_only_and_on_this_thread_only() {
    let outside = parallel_threshold();
    with_parallel_threshold(7, || {
        assert_eq!(parallel_threshold(), 7);
        with_parallel_threshold(9, || assert_eq!(parallel_threshold(), 9));
        assert_eq!(parallel_threshold(), 7, "the inner setting is undone");
        let other = std::thread::spawn(parallel_threshold).join().unwrap();
        assert_ne!(other, 7, "another thread does not see this thread's setting");
    });
    assert_eq!(parallel_threshold(), outside);
    let caught = std::panic::catch_unwind(|| with_parallel_threshold(3, || panic!("inside")));
    assert!(caught.is_err());
    assert_eq!(parallel_threshold(), outside, "undone after a panic too");
}

#[test]
fn nan_goes_through_every_elementwise_kernel_and_mask() {
    // PyTorch gives NaN for each of these at NaN; `x > 0 ? x : 0` and
    // `f64::max` would have given a number.
    let t = Tensor::<f64>::from_vec(vec![f64::NAN, -2.0, 0.0, 3.0], &[4]);
    let t32 = t.cast::<f32>();
    type Kernel = (&'static str, fn(&Tensor<f64>) -> Tensor<f64>);
    let kernels: [Kernel; 12] = [
        ("relu", Tensor::relu),
        ("step", Tensor::step),
        ("sign", Tensor::sign),
        ("abs", Tensor::abs),
        ("clamp", |t| t.clamp(-1.0, 1.0)),
        ("inside_mask", |t| t.inside_mask(-1.0, 1.0)),
        ("softplus", Tensor::softplus),
        ("sigmoid", Tensor::sigmoid),
        ("tanh", Tensor::tanh),
        ("exp", Tensor::exp),
        ("sqrt of abs", |t| t.abs().sqrt()),
        ("square", Tensor::square),
    ];
    for (name, k) in kernels {
        let out = k(&t);
        assert!(out.data()[0].is_nan(), "{name}(NaN) = {}", out.data()[0]);
        assert!(out.data()[1..].iter().all(|v| !v.is_nan()), "{name}: {:?}", out.data());
    }
    // f32 has its own fast kernels.
    for (name, out) in [
        ("exp", t32.exp()),
        ("ln", t32.log()),
        ("tanh", t32.tanh()),
        ("sigmoid", t32.sigmoid()),
        ("softplus", t32.softplus()),
        ("relu", t32.relu()),
        ("clamp", t32.clamp(-1.0, 1.0)),
    ] {
        assert!(out.data()[0].is_nan(), "{name}(NaN) in f32 = {}", out.data()[0]);
    }
    // Away from NaN the values are the usual ones.
    assert_eq!(t.relu().to_vec()[1..], [0.0, 0.0, 3.0]);
    assert_eq!(t.step().to_vec()[1..], [0.0, 0.0, 1.0]);
    assert_eq!(t.sign().to_vec()[1..], [-1.0, 0.0, 1.0]);
    assert_eq!(t.clamp(-1.0, 1.0).to_vec()[1..], [-1.0, 0.0, 1.0]);
    assert_eq!(t.inside_mask(-1.0, 1.0).to_vec()[1..], [0.0, 1.0, 0.0]);
    let edges = Tensor::<f64>::from_vec(vec![-1.0, 1.0, f64::NEG_INFINITY, f64::INFINITY, -0.0], &[5]);
    assert_eq!(edges.inside_mask(-1.0, 1.0).to_vec(), [0.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(edges.step().to_vec(), [0.0, 1.0, 0.0, 1.0, 0.0]);
    assert_eq!(edges.sign().to_vec(), [-1.0, 1.0, -1.0, 1.0, 0.0]);
    assert_eq!(edges.relu().to_vec(), [0.0, 1.0, 0.0, f64::INFINITY, 0.0]);
    assert_eq!(edges.clamp(-0.5, 0.5).to_vec(), [-0.5, 0.5, -0.5, 0.5, 0.0]);
}

#[test]
fn sigmoid_and_softplus_are_stable_at_extremes() {
    let t = Tensor::<f32>::from_vec(vec![-200.0, 0.0, 200.0], &[3]);
    let s = t.sigmoid().to_vec();
    assert!(s[0] >= 0.0 && s[0] < 1e-37, "sigmoid(-200) = {}", s[0]);
    assert_eq!(&s[1..], &[0.5, 1.0]);
    let s64 = t.cast::<f64>().sigmoid().to_vec();
    assert!(s64[0] > 0.0 && s64[0] < 1e-86 && s64[2] == 1.0);
    let sp = t.softplus().to_vec();
    assert_eq!(sp[0], 0.0);
    assert!((sp[1] - 2f32.ln()).abs() < 1e-7);
    assert_eq!(sp[2], 200.0);
}
