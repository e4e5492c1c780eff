//! gradtape against an outside reference: the losses and gradients PyTorch
//! computes for small versions of every autoencoder, with the same weights,
//! digits and draws (`verify/reference/reference.safetensors`, made by
//! `verify/reference/make_reference.py`; no Python is needed here). Both the
//! engine's autodiff of the model's real loss and the hand derivation must
//! agree with PyTorch to 1e-6 relative, in f64.

use gradtape_verify::cases::{small, CaseKind};
use gradtape_verify::reference::{Reference, TOLERANCE};

fn reference() -> Reference {
    Reference::embedded().unwrap_or_else(|e| panic!("cannot read the reference data: {e}"))
}

#[test]
fn reference_file_is_small_and_made_for_the_rust_sizes() {
    let bytes = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/reference/reference.safetensors"))
        .expect("the reference file exists")
        .len();
    assert!(bytes < 1 << 20, "{bytes} bytes");
    let r = reference();
    r.check_sizes().unwrap();
    assert!(r.metadata("torch").is_some_and(|v| !v.is_empty()), "the PyTorch version is recorded");
    assert_eq!(r.metadata("batch"), Some(small::BATCH.to_string().as_str()));
}

#[test]
fn reference_batches_are_real_digits_from_the_built_in_data() {
    // `case` refuses a batch that is not the shrunk first digits.
    let r = reference();
    for kind in CaseKind::ALL {
        let case = r.case(kind).unwrap();
        assert!(case.x.data().iter().any(|&p| p > 0.1), "{kind}: some ink");
    }
}

macro_rules! matches_pytorch {
    ($($name:ident: $kind:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            let cmp = reference().compare($kind).unwrap();
            assert!(
                cmp.autodiff.within(TOLERANCE),
                "{}: autodiff differs from PyTorch in {}",
                $kind,
                cmp.autodiff.describe_failures(TOLERANCE)
            );
            assert!(
                cmp.hand.within(TOLERANCE),
                "{}: the hand derivation differs from PyTorch in {}",
                $kind,
                cmp.hand.describe_failures(TOLERANCE)
            );
        }
    )*};
}

matches_pytorch! {
    zero_digit_loss_and_gradients_match_pytorch: CaseKind::ZeroDigit,
    deep_loss_and_gradients_match_pytorch: CaseKind::Deep,
    regularized_loss_and_gradients_match_pytorch: CaseKind::Regularized,
    denoising_loss_and_gradients_match_pytorch: CaseKind::Denoising,
    contractive_by_double_backward_matches_pytorch_double_backward: CaseKind::ContractiveDoubleBackward,
    contractive_in_closed_form_matches_pytorch_double_backward: CaseKind::ContractiveClosedForm,
    vae_loss_and_gradients_match_pytorch: CaseKind::Vae,
}

#[test]
fn a_wrong_reference_gradient_would_be_noticed() {
    // Scale one stored PyTorch gradient by 1.001: the comparison must fail
    // for exactly that parameter, so the tests above can fail.
    let r = reference();
    let case = r.case(CaseKind::Deep).unwrap();
    let names = case.params().names();
    let (loss, mut grads) = r.expected(CaseKind::Deep, names).unwrap();
    grads[2] = grads[2].mul_scalar(1.001);
    let (auto_loss, auto) = case.autodiff();
    let cmp = gradtape_verify::compare::Comparison::new(names, (auto_loss, &auto), (loss, &grads));
    let failed: Vec<_> = cmp.failures(TOLERANCE).iter().map(|p| p.parameter.clone()).collect();
    assert_eq!(failed, vec![names[2].clone()]);
}
