//! Every loss and penalty of `gradtape_models::losses`, proved two ways:
//!
//! - its first and second derivatives, through `gradcheck` and
//!   `gradgradcheck` in f64 on random small shapes, for both reductions;
//! - its value, against the formula written out as a plain f64 loop, and at
//!   the edges where a naive formula breaks (BCE at p = 0 or 1, logits of
//!   ±200, a KL of exactly 0).

use gradtape::{Tape, Tensor, Var};
use gradtape_models::losses::{
    bce, bce_with_logits, code_l2, kl_diag_gaussian, kl_diag_gaussian_mean, kl_sparsity, l1_activity,
    mean_squared_weights, mse, Reduction,
};
use gradtape_verify::{gradcheck, gradgradcheck};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

const REDUCTIONS: [Reduction; 2] = [Reduction::Mean, Reduction::Sum];

/// Runs gradcheck and gradgradcheck, naming the loss on failure.
fn check<F>(name: &str, f: F, inputs: &[Tensor<f64>]) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>,
{
    let shapes: Vec<_> = inputs.iter().map(|x| x.shape().to_vec()).collect();
    gradcheck(&f, inputs)
        .map_err(|e| TestCaseError::fail(format!("{name} on {shapes:?}: gradcheck: {e}")))?;
    gradgradcheck(&f, inputs)
        .map_err(|e| TestCaseError::fail(format!("{name} on {shapes:?}: gradgradcheck: {e}")))?;
    Ok(())
}

/// A batch shape `[n, k]`, small enough for the Jacobians to be cheap.
fn batch_shape() -> impl Strategy<Value = Vec<usize>> {
    (1usize..=3, 1usize..=4).prop_map(|(n, k)| vec![n, k])
}

/// Values in (-1.7, -0.2] U [0.2, 1.7): away from the kink of |x| at 0.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::<f64>::uniform(shape, -1.5, 1.5, seed).map(|x| if x >= 0.0 { x + 0.2 } else { x - 0.2 })
}

/// Evaluates a loss on constants and returns its value.
fn value(f: impl for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>, inputs: &[Tensor<f64>]) -> f64 {
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.constant(x)).collect();
    f(&vars).item()
}

/// The gradients of a loss with respect to each of its inputs.
fn gradients(f: impl for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>, inputs: &[Tensor<f64>]) -> Vec<Vec<f64>> {
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    let loss = f(&vars);
    let g = loss.backward();
    vars.iter().map(|&v| g[v].to_vec()).collect()
}

fn reduce(per_element: &[f64], reduction: Reduction) -> f64 {
    let sum: f64 = per_element.iter().sum();
    match reduction {
        Reduction::Mean => sum / per_element.len() as f64,
        Reduction::Sum => sum,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

// ---- gradcheck and gradgradcheck ---------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn mse_passes_gradcheck_and_gradgradcheck_in_pred_and_target(
        shape in batch_shape(), seed in any::<u64>()
    ) {
        let inputs = [
            Tensor::<f64>::uniform(&shape, -1.0, 1.0, seed),
            Tensor::<f64>::uniform(&shape, -1.0, 1.0, seed ^ 1),
        ];
        for r in REDUCTIONS {
            check(&format!("mse {r:?}"), |v| vec![mse(v[0], v[1], r)], &inputs)?;
        }
    }

    #[test]
    fn bce_passes_gradcheck_and_gradgradcheck_for_probabilities_inside_the_clamps(
        shape in batch_shape(), seed in any::<u64>()
    ) {
        let inputs = [
            Tensor::<f64>::uniform(&shape, 0.05, 0.95, seed),
            Tensor::<f64>::uniform(&shape, 0.0, 1.0, seed ^ 1),
        ];
        for r in REDUCTIONS {
            check(&format!("bce {r:?}"), |v| vec![bce(v[0], v[1], r)], &inputs)?;
        }
    }

    #[test]
    fn bce_with_logits_passes_gradcheck_and_gradgradcheck(
        shape in batch_shape(), seed in any::<u64>()
    ) {
        let inputs = [
            Tensor::<f64>::uniform(&shape, -4.0, 4.0, seed),
            Tensor::<f64>::uniform(&shape, 0.0, 1.0, seed ^ 1),
        ];
        for r in REDUCTIONS {
            check(
                &format!("bce_with_logits {r:?}"),
                |v| vec![bce_with_logits(v[0], v[1], r)],
                &inputs,
            )?;
        }
    }

    #[test]
    fn kl_terms_pass_gradcheck_and_gradgradcheck_in_mu_and_logvar(
        shape in batch_shape(), seed in any::<u64>()
    ) {
        let inputs = [
            Tensor::<f64>::uniform(&shape, -1.5, 1.5, seed),
            Tensor::<f64>::uniform(&shape, -1.5, 1.5, seed ^ 1),
        ];
        check("kl_diag_gaussian", |v| vec![kl_diag_gaussian(v[0], v[1])], &inputs)?;
        check("kl_diag_gaussian_mean", |v| vec![kl_diag_gaussian_mean(v[0], v[1])], &inputs)?;
    }

    #[test]
    fn penalties_pass_gradcheck_and_gradgradcheck(shape in batch_shape(), seed in any::<u64>()) {
        let w = [Tensor::<f64>::uniform(&shape, -1.0, 1.0, seed)];
        check("mean_squared_weights", |v| vec![mean_squared_weights(v[0])], &w)?;
        // Nonzero entries: the norm is well away from its singularity at 0.
        let code = [away_from_zero(&shape, seed ^ 2)];
        check("code_l2", |v| vec![code_l2(v[0])], &code)?;
        // Away from the kink of |h| at 0.
        check("l1_activity", |v| vec![l1_activity(v[0])], &code)?;
    }

    #[test]
    fn kl_sparsity_passes_gradcheck_and_gradgradcheck_for_sigmoid_activations(
        shape in batch_shape(), seed in any::<u64>(), rho in 0.02f64..0.5
    ) {
        // Probabilities well inside (0, 1), as a sigmoid gives.
        let h = [Tensor::<f64>::uniform(&shape, 0.05, 0.95, seed)];
        check(&format!("kl_sparsity rho = {rho}"), |v| vec![kl_sparsity(v[0], rho)], &h)?;
        // And through the sigmoid itself, from pre-activations.
        let z = [Tensor::<f64>::uniform(&shape, -3.0, 3.0, seed ^ 3)];
        check("kl_sparsity of a sigmoid", |v| vec![kl_sparsity(v[0].sigmoid(), rho)], &z)?;
    }
}

#[test]
fn losses_of_rank_one_and_rank_three_inputs_pass_gradcheck() {
    for shape in [vec![5], vec![2, 2, 3]] {
        let a = Tensor::<f64>::uniform(&shape, 0.1, 0.9, 7);
        let b = Tensor::<f64>::uniform(&shape, 0.0, 1.0, 8);
        let pair = [a.clone(), b.clone()];
        for r in REDUCTIONS {
            check("mse", |v| vec![mse(v[0], v[1], r)], &pair).unwrap();
            check("bce", |v| vec![bce(v[0], v[1], r)], &pair).unwrap();
            check("bce_with_logits", |v| vec![bce_with_logits(v[0], v[1], r)], &pair).unwrap();
        }
        check("kl_mean", |v| vec![kl_diag_gaussian_mean(v[0], v[1])], &pair).unwrap();
        check("l1_activity", |v| vec![l1_activity(v[0])], &[a]).unwrap();
    }
}

// ---- values against the formulas -------------------------------------------------

#[test]
fn mse_equals_the_explicit_formula_for_both_reductions() {
    let p = Tensor::<f64>::uniform(&[3, 4], -2.0, 2.0, 1);
    let t = Tensor::<f64>::uniform(&[3, 4], -2.0, 2.0, 2);
    let per: Vec<f64> = p.data().iter().zip(t.data()).map(|(p, t)| (p - t) * (p - t)).collect();
    for r in REDUCTIONS {
        let got = value(|v| mse(v[0], v[1], r), &[p.clone(), t.clone()]);
        assert!(close(got, reduce(&per, r)), "{r:?}: {got} vs {}", reduce(&per, r));
    }
    let mean = value(|v| mse(v[0], v[1], Reduction::default()), &[p, t]);
    assert!(close(mean, reduce(&per, Reduction::Mean)), "the default reduction is Mean");
}

#[test]
fn bce_equals_the_explicit_formula_for_both_reductions() {
    let p = Tensor::<f64>::uniform(&[4, 5], 0.01, 0.99, 3);
    let t = Tensor::<f64>::uniform(&[4, 5], 0.0, 1.0, 4);
    let per: Vec<f64> =
        p.data().iter().zip(t.data()).map(|(&p, &t)| -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())).collect();
    for r in REDUCTIONS {
        let got = value(|v| bce(v[0], v[1], r), &[p.clone(), t.clone()]);
        assert!(close(got, reduce(&per, r)), "{r:?}: {got} vs {}", reduce(&per, r));
    }
    // And its gradient is (p - t) / (p (1 - p)), divided by n for Mean.
    let g = gradients(|v| bce(v[0], v[1], Reduction::Sum), &[p.clone(), t.clone()]);
    for ((&p, &t), &g) in p.data().iter().zip(t.data()).zip(&g[0]) {
        let want = (p - t) / (p * (1.0 - p));
        assert!(close(g, want), "d bce / dp = {g}, want {want}");
    }
}

#[test]
fn bce_at_probabilities_zero_and_one_is_finite_and_clamped_like_pytorch() {
    // torch.nn.BCELoss(reduction="none")(p, t) with each log clamped at -100:
    // p = 0, t = 1 and p = 1, t = 0 cost 100; a soft target t = 0.3 at p = 0
    // costs 0.3 * 100.
    let p = Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0], &[2, 3]);
    let t = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.3, 0.3], &[2, 3]);
    let per = [0.0, 0.0, 100.0, 100.0, 30.0, 70.0];
    for r in REDUCTIONS {
        let got = value(|v| bce(v[0], v[1], r), &[p.clone(), t.clone()]);
        assert!(got.is_finite());
        assert!(close(got, reduce(&per, r)), "{r:?}: {got} vs {}", reduce(&per, r));
    }
    // Gradients stay finite (no 0/0 inside the log's backward rule). Where a
    // log is clamped its contribution is 0; the other log is exact:
    // p = 0 gives (1 - t) / (1 - p) = 1 - t, p = 1 gives -t / p = -t.
    let g = gradients(|v| bce(v[0], v[1], Reduction::Sum), &[p, t]);
    let want_p = [1.0, -1.0, 0.0, 0.0, 0.7, -0.3];
    for (i, (&g, &w)) in g[0].iter().zip(&want_p).enumerate() {
        assert!(g.is_finite() && close(g, w), "d/dp[{i}] = {g}, want {w}");
    }
    assert!(g[1].iter().all(|x| x.is_finite()), "d/dt: {:?}", g[1]);
    // d/dt = -(ln p - ln(1 - p)) with the clamped logs.
    assert_eq!(g[1], vec![100.0, -100.0, 100.0, -100.0, 100.0, -100.0]);
}

#[test]
fn bce_is_finite_in_f32_when_a_sigmoid_saturates() {
    // In f32, sigmoid(20) rounds to exactly 1.0.
    let tape = Tape::<f32>::new();
    let x = tape.param(&Tensor::from_vec(vec![20.0f32, -120.0, 0.5], &[3]));
    let p = x.sigmoid();
    assert_eq!(p.value().data()[0], 1.0);
    assert_eq!(p.value().data()[1], 0.0);
    let t = tape.constant(&Tensor::from_vec(vec![0.0f32, 1.0, 1.0], &[3]));
    let loss = bce(p, t, Reduction::Sum);
    let want = 200.0 - (0.5f64.exp() / (1.0 + 0.5f64.exp())).ln();
    assert!((loss.item() as f64 - want).abs() < 1e-4, "{} vs {want}", loss.item());
    let g = loss.backward();
    assert!(g[x].data().iter().all(|v| v.is_finite()), "{:?}", g[x]);
}

#[test]
fn bce_with_logits_equals_bce_of_sigmoid_for_moderate_logits() {
    let x = Tensor::<f64>::uniform(&[3, 5], -6.0, 6.0, 5);
    let t = Tensor::<f64>::uniform(&[3, 5], 0.0, 1.0, 6);
    for r in REDUCTIONS {
        let a = value(|v| bce_with_logits(v[0], v[1], r), &[x.clone(), t.clone()]);
        let b = value(|v| bce(v[0].sigmoid(), v[1], r), &[x.clone(), t.clone()]);
        assert!(close(a, b), "{r:?}: {a} vs {b}");
        let per: Vec<f64> = x
            .data()
            .iter()
            .zip(t.data())
            .map(|(&x, &t)| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p())
            .collect();
        assert!(close(a, reduce(&per, r)), "{r:?}: {a} vs {}", reduce(&per, r));
    }
    let ga = gradients(|v| bce_with_logits(v[0], v[1], Reduction::Sum), &[x.clone(), t.clone()]);
    let gb = gradients(|v| bce(v[0].sigmoid(), v[1], Reduction::Sum), &[x, t]);
    for (a, b) in ga[0].iter().zip(&gb[0]) {
        assert!((a - b).abs() < 1e-10, "{a} vs {b}");
    }
}

#[test]
fn bce_with_logits_stays_finite_and_exact_at_plus_minus_200() {
    let x = Tensor::from_vec(vec![200.0, -200.0, 200.0, -200.0], &[4]);
    let t = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4]);
    // Right answers cost ln(1 + e^-200) ~ 1e-87; wrong ones cost 200.
    let got = value(|v| bce_with_logits(v[0], v[1], Reduction::Sum), &[x.clone(), t.clone()]);
    assert!(close(got, 400.0), "{got}");
    let g = gradients(|v| bce_with_logits(v[0], v[1], Reduction::Sum), &[x, t]);
    // d/dx = sigmoid(x) - t.
    let want = [0.0, (-200.0f64).exp(), 1.0, -1.0];
    for (g, w) in g[0].iter().zip(want) {
        assert!(g.is_finite() && (g - w).abs() <= 1e-15 * w.abs().max(1e-300) + 1e-300, "{g} vs {w}");
    }
}

#[test]
fn bce_with_logits_has_derivative_sigmoid_minus_target_at_exactly_zero() {
    // max(x, 0) and |x| have kinks at 0 that cancel; the loss is smooth there.
    let x = Tensor::zeros(&[3]);
    let t = Tensor::from_vec(vec![0.0, 0.25, 1.0], &[3]);
    let g = gradients(|v| bce_with_logits(v[0], v[1], Reduction::Sum), &[x, t]);
    assert_eq!(g[0], vec![0.5, 0.25, -0.5]);
}

#[test]
fn kl_is_zero_at_the_standard_normal_and_matches_the_formula_elsewhere() {
    let zero = Tensor::<f64>::zeros(&[4, 3]);
    assert_eq!(value(|v| kl_diag_gaussian(v[0], v[1]), &[zero.clone(), zero.clone()]), 0.0);
    assert_eq!(value(|v| kl_diag_gaussian_mean(v[0], v[1]), &[zero.clone(), zero]), 0.0);

    let mu = Tensor::<f64>::uniform(&[4, 3], -2.0, 2.0, 9);
    let logvar = Tensor::<f64>::uniform(&[4, 3], -2.0, 2.0, 10);
    let mut sum = 0.0;
    for (&m, &lv) in mu.data().iter().zip(logvar.data()) {
        // KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - ln s^2) / 2 per dimension.
        sum += 0.5 * (lv.exp() + m * m - 1.0 - lv);
    }
    let got = value(|v| kl_diag_gaussian(v[0], v[1]), &[mu.clone(), logvar.clone()]);
    assert!(close(got, sum), "{got} vs {sum}");
    assert!(got > 0.0);
    let got = value(|v| kl_diag_gaussian_mean(v[0], v[1]), &[mu.clone(), logvar.clone()]);
    assert!(close(got, sum / 4.0), "{got} vs {}", sum / 4.0);

    // d/dmu = mu, d/dlogvar = (e^logvar - 1) / 2.
    let g = gradients(|v| kl_diag_gaussian(v[0], v[1]), &[mu.clone(), logvar.clone()]);
    for ((&m, &lv), (&gm, &glv)) in mu.data().iter().zip(logvar.data()).zip(g[0].iter().zip(&g[1])) {
        assert!(close(gm, m), "d/dmu = {gm}, want {m}");
        assert!(close(glv, 0.5 * (lv.exp() - 1.0)), "d/dlogvar = {glv}");
    }
}

#[test]
fn penalties_equal_their_formulas() {
    let w = Tensor::<f64>::uniform(&[3, 5], -2.0, 2.0, 11);
    let n = w.len() as f64;
    let want = w.data().iter().map(|x| x * x).sum::<f64>() / n;
    let got = value(|v| mean_squared_weights(v[0]), std::slice::from_ref(&w));
    assert!(close(got, want), "mean_squared_weights: {got} vs {want}");

    // torch.norm(code): the square root of the sum of all squares.
    let want = w.data().iter().map(|x| x * x).sum::<f64>().sqrt();
    let got = value(|v| code_l2(v[0]), std::slice::from_ref(&w));
    assert!(close(got, want), "code_l2: {got} vs {want}");
    let exact = value(|v| code_l2(v[0]), &[Tensor::from_vec(vec![3.0, 4.0], &[1, 2])]);
    assert_eq!(exact, 5.0);

    // Mean over the 3 rows of each row's L1 norm.
    let mut want = 0.0;
    for r in 0..3 {
        want += (0..5).map(|c| w.data()[r * 5 + c].abs()).sum::<f64>();
    }
    want /= 3.0;
    let got = value(|v| l1_activity(v[0]), std::slice::from_ref(&w));
    assert!(close(got, want), "l1_activity: {got} vs {want}");
    let g = gradients(|v| l1_activity(v[0]), std::slice::from_ref(&w));
    for (g, x) in g[0].iter().zip(w.data()) {
        assert_eq!(*g, x.signum() / 3.0);
    }
}

#[test]
fn kl_sparsity_equals_the_bernoulli_kl_of_each_units_mean_activation() {
    let rho = 0.05;
    let h = Tensor::<f64>::uniform(&[4, 3], 0.01, 0.99, 12);
    // By hand: the mean of each column, then the two-outcome KL.
    let mut want = 0.0;
    let mut slope = [0.0; 3];
    for (j, slope_j) in slope.iter_mut().enumerate() {
        let mean = (0..4).map(|r| h.data()[r * 3 + j]).sum::<f64>() / 4.0;
        want += rho * (rho / mean).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - mean)).ln();
        *slope_j = (-rho / mean + (1.0 - rho) / (1.0 - mean)) / 4.0;
    }
    let got = value(|v| kl_sparsity(v[0], rho), std::slice::from_ref(&h));
    assert!(close(got, want), "kl_sparsity: {got} vs {want}");
    assert!(got > 0.0, "means away from rho cost something: {got}");
    // d/dh_rj depends on the column only.
    let g = gradients(|v| kl_sparsity(v[0], rho), std::slice::from_ref(&h));
    for (i, &g) in g[0].iter().enumerate() {
        assert!(close(g, slope[i % 3]), "d/dh[{i}] = {g}, want {}", slope[i % 3]);
    }
    // Every unit's mean on target: the penalty is 0 (to rounding).
    let on_target = Tensor::from_vec(vec![0.04, 0.01, 0.06, 0.09], &[2, 2]);
    let zero = value(|v| kl_sparsity(v[0], rho), &[on_target]);
    assert!(zero.abs() < 1e-14, "on target: {zero}");
}

// ---- shape errors ------------------------------------------------------------------

thread_local! {
    static CAUGHT: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Runs `f`, which must panic, and returns the panic's message and the file
/// it was reported at. Panics on other threads go to the usual hook.
fn panic_of(f: impl FnOnce()) -> (String, String) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let capturing = CAUGHT.with(|c| c.borrow().is_some());
            if !capturing {
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let file = info.location().map(|l| l.file().to_string()).unwrap_or_default();
            CAUGHT.with(|c| *c.borrow_mut() = Some((message, file)));
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = Some((String::new(), String::new())));
    let result = catch_unwind(AssertUnwindSafe(f));
    let caught = CAUGHT.with(|c| c.borrow_mut().take()).unwrap();
    assert!(result.is_err(), "expected a panic");
    caught
}

/// An expected panic message and the call that should raise it.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

#[test]
fn shape_mismatches_panic_at_the_call_site_with_the_loss_name_and_both_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.constant(&Tensor::zeros(&[2, 3]));
    let b = tape.constant(&Tensor::zeros(&[3]));
    let c = tape.constant(&Tensor::zeros(&[1, 3]));
    let cases: Vec<Case<'_>> = vec![
        (
            "mse: pred has shape [2, 3] but target has shape [3]",
            Box::new(|| {
                mse(a, b, Reduction::Mean);
            }),
        ),
        (
            "bce: prob has shape [2, 3] but target has shape [1, 3]",
            Box::new(|| {
                bce(a, c, Reduction::Sum);
            }),
        ),
        (
            "bce_with_logits: logits has shape [3] but target has shape [2, 3]",
            Box::new(|| {
                bce_with_logits(b, a, Reduction::Mean);
            }),
        ),
        (
            "kl_diag_gaussian: mu has shape [1, 3] but logvar has shape [2, 3]",
            Box::new(|| {
                kl_diag_gaussian(c, a);
            }),
        ),
        (
            "kl_diag_gaussian_mean: mu has shape [2, 3] but logvar has shape [3]",
            Box::new(|| {
                kl_diag_gaussian_mean(a, b);
            }),
        ),
        (
            "l1_activity: expected a batch",
            Box::new(|| {
                l1_activity(tape.scalar(1.0));
            }),
        ),
        (
            "kl_sparsity: expected a batch",
            Box::new(|| {
                kl_sparsity(tape.scalar(0.5), 0.1);
            }),
        ),
        (
            "kl_sparsity: the target rho = 1 must lie strictly between 0 and 1",
            Box::new(|| {
                kl_sparsity(a, 1.0);
            }),
        ),
    ];
    for (want, f) in cases {
        let (message, file) = panic_of(f);
        assert!(message.contains(want), "message {message:?} lacks {want:?}");
        assert!(file.ends_with("losses_gradcheck.rs"), "{want}: reported at {file}, not at the caller");
    }
}
