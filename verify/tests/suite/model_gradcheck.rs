//! Whole-model finite-difference checks: `gradcheck` of every autoencoder's
//! real training loss as a function of all its parameters (f64, the small
//! models on 3 real digits, draws fixed), the hand derivations against the
//! same central differences, and `gradgradcheck` through the contractive
//! autoencoder's double-backward Jacobian penalty.

use gradtape_kernels::compare::pairs;
use gradtape_models::autoencoders::Autoencoder;
use gradtape_models::params::Bound;
use gradtape_verify::cases::{Case, CaseKind, Model, Size};
use gradtape_verify::gradgradcheck;

macro_rules! model_gradcheck {
    ($($name:ident: $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[test]
            fn loss_passes_gradcheck_in_all_parameters() {
                let case = Case::<f64>::new($kind, Size::Small, 7);
                if let Err(e) = case.gradcheck() {
                    let names = case.params().names();
                    panic!("{}: gradcheck failed: {e} (inputs are the parameters {names:?})", $kind);
                }
            }

            #[test]
            fn hand_derivation_matches_central_differences() {
                let case = Case::<f64>::new($kind, Size::Small, 7);
                let hand = case.by_hand();
                let fd = case.finite_differences(1e-6);
                let names = case.params().names();
                assert_eq!(hand.grads.len(), names.len(), "{}: one hand gradient per parameter", $kind);
                for (name, (h, n)) in names.iter().zip(pairs("gradients", &hand.grads, &fd)) {
                    for (j, (a, b)) in pairs(name, h.data(), n.data()).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 + 1e-3 * b.abs(),
                            "{}: {name}[{j}]: hand {a:e}, finite differences {b:e}",
                            $kind
                        );
                    }
                }
            }
        }
    )*};
}

model_gradcheck! {
    zero_digit: CaseKind::ZeroDigit,
    deep: CaseKind::Deep,
    regularized: CaseKind::Regularized,
    denoising: CaseKind::Denoising,
    contractive_double_backward: CaseKind::ContractiveDoubleBackward,
    contractive_closed_form: CaseKind::ContractiveClosedForm,
    vae: CaseKind::Vae,
}

/// Second derivatives of the whole contractive loss with respect to every
/// parameter, through the Jacobian penalty that was itself built by
/// `grad(.., create_graph = true)`.
#[test]
fn contractive_loss_with_double_backward_penalty_passes_gradgradcheck() {
    let case = Case::<f64>::new(CaseKind::ContractiveDoubleBackward, Size::Small, 7);
    case.gradgradcheck().unwrap_or_else(|e| panic!("gradgradcheck: {e}"));
}

/// The penalty alone, `sum_n ||dh_n/dx_n||_F^2` as the model computes it by
/// double backward, as a function of the encoder's weights *and* the input:
/// gradgradcheck differentiates the recorded Jacobian twice more.
#[test]
fn contractive_double_backward_penalty_passes_gradgradcheck_in_weights_and_input() {
    let case = Case::<f64>::new(CaseKind::ContractiveDoubleBackward, Size::Small, 7);
    let Model::Contractive(model) = &case.model else { unreachable!() };
    let mut inputs = case.params().tensors().to_vec();
    inputs.push(case.x.slice_axis(0, 0, 2));
    let np = case.params().len();
    let result = gradgradcheck(
        |vars| {
            let p = Bound::from_vars(vars[..np].to_vec());
            let x = vars[np];
            let h = model.encode(&p, x, &mut gradtape_models::autoencoders::StepCtx::seeded(0));
            vec![model.penalty_by_double_backward_loop(h, x)]
        },
        &inputs,
    );
    result.unwrap_or_else(|e| panic!("gradgradcheck of the penalty: {e}"));
}

#[test]
fn the_small_models_are_small_enough_for_finite_differences() {
    for kind in CaseKind::ALL {
        let case = Case::<f64>::new(kind, Size::Small, 7);
        assert_eq!(case.x.shape()[0], 3, "{kind}");
        assert!(case.params().count() < 500, "{kind}: {} parameters", case.params().count());
    }
}
