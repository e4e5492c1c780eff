//! PyTorch weights in, and `torch.func`'s Hessian-vector products.
//!
//! `verify/reference/make_torch_interop.py` saved one small model of each
//! kind from PyTorch exactly as a user would,
//! `safetensors.torch.save_file(model.state_dict(), path)` (float32, in
//! `verify/reference/torch_weights/`), and recorded in
//! `verify/reference/torch_interop.safetensors` (float64) what PyTorch
//! computes with those weights: the codes and reconstructions of three real
//! digits, the training loss with the step's draws fixed, and for the deep,
//! contractive and VAE models the loss's Hessian-vector product along a
//! recorded `v` by `torch.func.jvp(torch.func.grad(loss), ...)`.
//!
//! Here gradtape builds each model from the PyTorch file by name alone
//! (`ModelSpec::sized_from` + `build_from`, as `gradtape train --init-from`
//! and `--weights` do), in f64, and must give PyTorch's outputs and loss to
//! 1e-6, and `gradtape::functional::hvp` must give `torch.func`'s product to
//! 1e-10. A file that does not fit is refused with every bad name listed.

use gradtape::functional::hvp;
use gradtape::{Tape, Tensor};
use gradtape_kernels::compare::{assert_close, Tol};
use gradtape_models::autoencoders::{ModelKind, StepCtx};
use gradtape_models::params::Bound;
use gradtape_models::spec::ModelSpec;
use gradtape_models::state_dict::{load_state_dict, read_state_dict, StateDict};
use gradtape_verify::cases::{Case, CaseKind, Size};
use gradtape_verify::reference::Reference;
use std::path::PathBuf;

/// Agreement with PyTorch's outputs and loss (both sides in f64 from the
/// same float32 weights).
const OUTPUTS: Tol = Tol { abs: 1e-12, rel: 1e-6 };
/// Agreement with `torch.func`'s Hessian-vector products.
const HVP: Tol = Tol { abs: 1e-14, rel: 1e-10 };

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
}

fn recorded() -> Reference {
    let bytes =
        std::fs::read(reference_dir().join("torch_interop.safetensors")).expect("the interop file exists");
    Reference::parse(&bytes).expect("the interop file reads")
}

/// The weights PyTorch saved for `kind`.
fn torch_weights(kind: ModelKind) -> StateDict<f32> {
    let path = reference_dir().join("torch_weights").join(format!("{kind}.safetensors"));
    read_state_dict(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn case_kind(kind: ModelKind) -> CaseKind {
    match kind {
        ModelKind::ZeroDigit => CaseKind::ZeroDigit,
        ModelKind::Deep => CaseKind::Deep,
        ModelKind::Regularized => CaseKind::Regularized,
        ModelKind::Denoising => CaseKind::Denoising,
        ModelKind::Contractive => CaseKind::ContractiveDoubleBackward,
        ModelKind::Vae => CaseKind::Vae,
    }
}

/// The small verification case of `kind` with PyTorch's weights, batch and
/// draws (the loss's hyperparameters are the small sizes' of
/// `make_reference.py`, which `make_torch_interop.py` shares).
fn case_with_torch_weights(kind: ModelKind, r: &Reference) -> Case<f64> {
    let mut case = Case::<f64>::new(case_kind(kind), Size::Small, 0);
    load_state_dict(case.params_mut(), &torch_weights(kind), kind.name()).unwrap_or_else(|e| panic!("{e}"));
    case.x = r.tensor(&format!("{kind}/x")).unwrap().clone();
    let draw = |key: &str| r.tensor(&format!("{kind}/{key}")).ok().cloned();
    case.draws.noise_mask = draw("noise_mask");
    case.draws.dropout_mask = draw("dropout_mask");
    case.draws.eps = draw("eps");
    case
}

#[test]
fn every_model_built_from_pytorch_weights_gives_pytorchs_codes_reconstructions_and_loss() {
    let r = recorded();
    assert!(r.torch_version().starts_with('2'), "the PyTorch version is recorded: {}", r.torch_version());
    for kind in ModelKind::ALL {
        let weights = torch_weights(kind);
        // By name alone: the sizes come from the shapes.
        let spec = ModelSpec::sized_from(kind, &weights);
        let mut model = spec.build_from::<f64, f32>(&weights).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.kind(), kind);
        model.set_training(false);
        let tape = Tape::new();
        let p = model.params().bind(&tape);
        let x = tape.constant(r.tensor(&format!("{kind}/x")).unwrap());
        let mut ctx = StepCtx::seeded(0);
        let code = model.encode(&p, x, &mut ctx);
        let reconstruction = model.decode(&p, code, &mut ctx);
        let want = |key: &str| r.tensor(&format!("{kind}/{key}")).unwrap();
        assert_close(&format!("{kind}: code"), &code.value(), want("code"), OUTPUTS);
        assert_close(
            &format!("{kind}: reconstruction"),
            &reconstruction.value(),
            want("reconstruction"),
            OUTPUTS,
        );

        let (loss, _) = case_with_torch_weights(kind, &r).autodiff();
        let want = want("loss").item();
        assert!((loss - want).abs() <= 1e-6 * want.abs(), "{kind}: loss {loss}, PyTorch's {want}");
    }
}

#[test]
fn pytorch_weights_of_another_model_are_refused_with_every_bad_name() {
    // The regularised model's names with the deep model's file: everything
    // that does not match is listed, in one error.
    let deep = torch_weights(ModelKind::Deep);
    let spec = ModelSpec::sized_from(ModelKind::Regularized, &deep);
    let err = spec.build_from::<f64, f32>(&deep).err().expect("refused");
    assert_eq!(err.missing, ["decoder.1.weight", "decoder.1.bias", "decoder.3.weight", "decoder.3.bias"]);
    assert_eq!(
        err.unexpected,
        [
            "decoder.0.bias",
            "decoder.0.weight",
            "decoder.2.bias",
            "decoder.2.weight",
            "decoder.4.bias",
            "decoder.4.weight",
            "encoder.4.bias",
            "encoder.4.weight"
        ]
    );
    assert!(err.mis_shaped.is_empty(), "the sizes were read off the file: {:?}", err.mis_shaped);

    // Sizes given, not read: the shapes that differ are listed too.
    let mut spec = ModelSpec::default_for(ModelKind::Deep);
    spec.widths = vec![16, 8, 5, 3];
    let err = spec.build_from::<f64, f32>(&deep).err().expect("refused");
    assert!(err.missing.is_empty() && err.unexpected.is_empty());
    let names: Vec<&str> = err.mis_shaped.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "encoder.2.weight",
            "encoder.2.bias",
            "encoder.4.weight",
            "decoder.0.weight",
            "decoder.0.bias",
            "decoder.2.weight"
        ]
    );
    let message = err.to_string();
    for name in names {
        assert!(message.contains(&format!("`{name}`")), "{message}");
    }

    // And loading into existing parameters changes nothing on refusal.
    let mut case = Case::<f64>::new(CaseKind::Regularized, Size::Small, 0);
    let before = case.params().tensors().to_vec();
    assert!(load_state_dict(case.params_mut(), &deep, "regularized").is_err());
    assert_eq!(case.params().tensors(), &before[..]);
}

/// gradtape's `H v` of the loss of `kind` against `torch.func`'s.
fn check_hvp_against_torch_func(kind: ModelKind) {
    let r = recorded();
    let case = case_with_torch_weights(kind, &r);
    let names = case.params().names();
    let tangents: Vec<Tensor<f64>> =
        names.iter().map(|n| r.tensor(&format!("{kind}/v/{n}")).unwrap().clone()).collect();
    let (l, hv) = hvp(
        |tape, ps| case.loss(&Bound::from_vars(ps.to_vec()), tape.constant(&case.x)),
        case.params().tensors(),
        &tangents,
    );
    let want = r.tensor(&format!("{kind}/loss")).unwrap().item();
    assert!((l.item() - want).abs() <= 1e-12 * want.abs(), "{kind}: loss {}, PyTorch's {want}", l.item());
    for (h, name) in hv.iter().zip(names) {
        let expected = r.tensor(&format!("{kind}/hvp/{name}")).unwrap();
        assert_close(&format!("{kind}: Hv for {name} against torch.func"), h, expected, HVP);
    }
}

#[test]
fn deep_loss_hvp_matches_torch_func() {
    check_hvp_against_torch_func(ModelKind::Deep);
}

#[test]
fn contractive_loss_hvp_through_the_double_backward_penalty_matches_torch_func() {
    // The penalty is a gradient (of the code with respect to the input), so
    // this Hessian-vector product is a third derivative of the forward pass.
    check_hvp_against_torch_func(ModelKind::Contractive);
}

#[test]
fn vae_loss_hvp_with_eps_fixed_matches_torch_func() {
    check_hvp_against_torch_func(ModelKind::Vae);
}
