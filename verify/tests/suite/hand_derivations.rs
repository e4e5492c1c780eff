//! Every autoencoder's gradients, derived by hand (`gradtape_verify::derivations`),
//! equal the engine's autodiff of the model's real training loss: on the
//! tutorial-size models (784 inputs) with random weights and real digits, to
//! 1e-10 relative in f64 and 1e-5 relative in f32, and on the small models
//! too. Also: the losses checked are the ones training uses, and the VAE's
//! derivation follows the BCE's log clamp when outputs saturate.

use gradtape::{grad_values, Tape, Tensor};
use gradtape_kernels::compare::{assert_close, pairs, Tol};
use gradtape_models::autoencoders::{Autoencoder, StepCtx};
use gradtape_verify::cases::{Case, CaseKind, Model, Size};
use gradtape_verify::compare::{Comparison, F32_TOLERANCE, F64_TOLERANCE};
use gradtape_verify::derivations::vae::{clamped_outputs, outputs};

fn assert_agree(kind: CaseKind, what: &str, cmp: &Comparison, tol: f64) {
    assert!(
        cmp.within(tol),
        "{kind} ({what}): hand derivation and autodiff differ in {}",
        cmp.describe_failures(tol)
    );
}

macro_rules! hand_equals_autodiff {
    ($($name:ident: $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[test]
            fn hand_derivation_equals_autodiff_in_f64_to_1e_10() {
                for seed in [7, 8] {
                    let cmp = Case::<f64>::new($kind, Size::Full, seed).hand_vs_autodiff();
                    assert_agree($kind, "full size, f64", &cmp, F64_TOLERANCE);
                }
            }

            #[test]
            fn hand_derivation_equals_autodiff_in_f32_to_1e_5() {
                for seed in [7, 8] {
                    let cmp = Case::<f32>::new($kind, Size::Full, seed).hand_vs_autodiff();
                    assert_agree($kind, "full size, f32", &cmp, F32_TOLERANCE);
                }
            }

            #[test]
            fn hand_derivation_equals_autodiff_on_the_small_model() {
                let cmp = Case::<f64>::new($kind, Size::Small, 7).hand_vs_autodiff();
                assert_agree($kind, "small, f64", &cmp, F64_TOLERANCE);
            }
        }
    )*};
}

hand_equals_autodiff! {
    zero_digit: CaseKind::ZeroDigit,
    deep: CaseKind::Deep,
    regularized: CaseKind::Regularized,
    denoising: CaseKind::Denoising,
    contractive_double_backward: CaseKind::ContractiveDoubleBackward,
    contractive_closed_form: CaseKind::ContractiveClosedForm,
    vae: CaseKind::Vae,
}

#[test]
fn the_full_size_cases_are_the_tutorial_models_on_real_digits() {
    for kind in CaseKind::ALL {
        let case = Case::<f64>::new(kind, Size::Full, 7);
        let d = if kind == CaseKind::ZeroDigit { 25 } else { 784 };
        assert_eq!(case.x.shape(), &[8, d], "{kind}");
        // Real digits: mostly background, some ink, values in [0, 1].
        let ink = case.x.data().iter().filter(|&&p| p > 0.5).count();
        assert!(ink > 0 && ink < case.x.len() / 2, "{kind}: {ink} bright pixels");
        assert!(case.x.data().iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
}

#[test]
fn both_contractive_penalty_modes_compute_the_same_loss_and_gradients() {
    let (l_db, g_db) = Case::<f64>::new(CaseKind::ContractiveDoubleBackward, Size::Full, 7).autodiff();
    let (l_cf, g_cf) = Case::<f64>::new(CaseKind::ContractiveClosedForm, Size::Full, 7).autodiff();
    assert!((l_db - l_cf).abs() <= 1e-12 * l_cf.abs());
    for (i, (a, b)) in pairs("contractive gradients", &g_db, &g_cf).enumerate() {
        assert_close(&format!("contractive gradient {i}"), a, b, Tol::rel(1e-10));
    }
}

/// The cases call `loss_with_masks` / `loss_with_eps` with fixed draws. This
/// proves that the training loss (`Autoencoder::loss`) is exactly that
/// function with the draws taken from the step's generator, in the order
/// the model takes them, so the checks cover what training runs.
#[test]
fn the_checked_losses_are_the_training_losses_with_the_same_draws() {
    for kind in [CaseKind::Regularized, CaseKind::Denoising, CaseKind::Vae] {
        let mut case = Case::<f64>::new(kind, Size::Small, 7);
        let n = case.x.shape()[0];
        let step_seed = 99;
        // Draw what the training loss will draw, in its order.
        let mut ctx = StepCtx::seeded(step_seed);
        match &case.model {
            Model::Regularized(m) => {
                case.draws.noise_mask = (m.noise() > 0.0).then(|| m.noise_mask(case.x.shape(), &mut ctx));
                case.draws.dropout_mask = Some(m.dropout().mask(&[n, m.latent_dim()], &mut ctx.rng));
            }
            Model::Vae(m) => {
                case.draws.eps = Some(Tensor::normal_with(&[n, m.latent_dim()], 0.0, 1.0, &mut ctx.rng));
            }
            _ => unreachable!(),
        }
        let (loss, grads) = case.autodiff();
        let tape = Tape::new();
        let p = case.params().bind(&tape);
        let x = tape.constant(&case.x);
        let mut ctx = StepCtx::seeded(step_seed);
        let training = match &case.model {
            Model::Regularized(m) => m.loss(&p, x, &mut ctx).total,
            Model::Vae(m) => m.loss(&p, x, &mut ctx).total,
            _ => unreachable!(),
        };
        assert_eq!(training.item(), loss, "{kind}: the training loss differs");
        let training_grads = grad_values(&[training], p.vars(), None);
        assert_eq!(training_grads, grads, "{kind}: the training gradients differ");
    }
}

#[test]
fn no_vae_output_sits_at_the_bce_clamp_on_the_checked_batches() {
    for size in [Size::Full, Size::Small] {
        let c64 = Case::<f64>::new(CaseKind::Vae, size, 7);
        let c32 = Case::<f32>::new(CaseKind::Vae, size, 7);
        for (clamped, precision) in
            [(clamped_outputs(&vae_outputs(&c64)), "f64"), (clamped_outputs(&vae_outputs(&c32)), "f32")]
        {
            assert_eq!(clamped, 0, "{size:?} {precision}: the plain derivative p - x applies everywhere");
        }
    }
}

fn vae_outputs<T: gradtape::Element>(case: &Case<T>) -> Tensor<T> {
    match &case.model {
        Model::Vae(m) => outputs(m, &case.x, case.draws.eps.as_ref().unwrap()),
        _ => unreachable!(),
    }
}

/// Saturate some of the VAE's outputs (logits of +-50 and beyond round the
/// sigmoid to exactly 1 or 0, and -100.5 puts ln p just below the clamp):
/// the model's BCE clamps those logs at -100, and the derivation's
/// clamp-aware form still matches autodiff, loss and gradients.
#[test]
fn vae_derivation_follows_the_bce_log_clamp_when_outputs_saturate() {
    fn saturate<T: gradtape::Element>(case: &mut Case<T>) {
        let names = case.params().names().to_vec();
        let k = names.iter().position(|n| n == "decoder.out.bias").unwrap();
        let bias = &mut case.params_mut().tensors_mut()[k];
        for (j, b) in bias.data_mut().iter_mut().enumerate() {
            *b = T::of([50.0, -50.0, -100.5, -200.0, -800.0, 0.0][j % 6]);
        }
    }
    let mut c64 = Case::<f64>::new(CaseKind::Vae, Size::Small, 7);
    saturate(&mut c64);
    assert!(clamped_outputs(&vae_outputs(&c64)) > 0);
    let cmp = c64.hand_vs_autodiff();
    assert!(cmp.within(F64_TOLERANCE), "f64: {}", cmp.describe_failures(F64_TOLERANCE));
    let (loss, grads) = c64.autodiff();
    assert!(loss.is_finite() && loss > 100.0, "clamped terms cost 100 each: loss {loss}");
    assert!(grads.iter().all(|g| g.data().iter().all(|v| v.is_finite())));

    let mut c32 = Case::<f32>::new(CaseKind::Vae, Size::Small, 7);
    saturate(&mut c32);
    assert!(clamped_outputs(&vae_outputs(&c32)) > 0);
    let cmp = c32.hand_vs_autodiff();
    assert!(cmp.within(F32_TOLERANCE), "f32: {}", cmp.describe_failures(F32_TOLERANCE));
}
