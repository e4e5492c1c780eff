//! Transforms with respect to some of a model's parameters:
//! `Params::bind_with` (the model with chosen parameters replaced by the
//! transform's leaves, the rest held fixed) together with
//! `functional::grad`, `functional::value_and_grad` and `functional::hvp`.
//!
//! - `grad` and `value_and_grad` against closed forms, and on a model's
//!   loss against central differences of the loss;
//! - through `bind_with`: the gradient with respect to two parameters
//!   equals those two entries of the full gradient, and `H v` in those two
//!   equals central differences of that gradient along `v`;
//! - `bind_with`'s refusals, by name.
//!
//! Every comparison goes through `assert_close`, for which a NaN or an
//! infinity on either side is a failure.

use gradtape::functional::{grad, hvp, value_and_grad, vjp};
use gradtape::{Tape, Tensor, Var};
use gradtape_kernels::compare::{assert_close, Tol};
use gradtape_models::params::{Bound, ParamId, Params};
use gradtape_verify::cases::{Case, CaseKind, Size};

const EPS: f64 = 1e-6;
/// Central differences against the analytic value: O(eps^2) truncation and
/// O(1e-16 / eps) rounding, relative to the largest entry.
const FD: Tol = Tol { abs: 1e-7, rel: 1e-6 };
/// Two analytic routes to the same numbers, summed in different orders.
const SAME: Tol = Tol { abs: 1e-12, rel: 1e-11 };

#[test]
fn grad_and_value_and_grad_give_the_closed_form_of_a_cubic() {
    // f(x, y) = sum(x^3) + sum(x) y: d/dx = 3 x^2 + y, d/dy = sum(x).
    let x = Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]);
    let y = Tensor::scalar(0.25);
    let want_x = Tensor::from_vec(vec![3.25, 12.25, 1.0], &[3]);
    let want_y = Tensor::scalar(-0.5);
    let g = grad(|_, v| (v[0] * v[0] * v[0]).sum() + v[0].sum() * v[1], &[x.clone(), y.clone()]);
    assert_close("d f / d x", &g[0], &want_x, Tol::abs(1e-15));
    assert_close("d f / d y", &g[1], &want_y, Tol::abs(1e-15));
    let (value, g2) = value_and_grad(|_, v| (v[0] * v[0] * v[0]).sum() + v[0].sum() * v[1], &[x, y]);
    // 1 - 8 + 0.125 + (-0.5)(0.25)
    assert_close("f", &value, &Tensor::scalar(-7.0), Tol::abs(1e-15));
    assert_close("value_and_grad's d f / d x", &g2[0], &want_x, Tol::EXACT);
    assert_close("value_and_grad's d f / d y", &g2[1], &want_y, Tol::EXACT);
}

#[test]
fn value_and_grad_of_a_models_loss_matches_central_differences_and_vjp() {
    let case = Case::<f64>::new(CaseKind::Deep, Size::Small, 21);
    let ws = case.params().tensors();
    let (loss, g) =
        value_and_grad(|tape, ps| case.loss(&Bound::from_vars(ps.to_vec()), tape.constant(&case.x)), ws);
    assert_close("the loss", &loss, &Tensor::scalar(case.loss_at(ws)), Tol::EXACT);
    let numeric = case.finite_differences(EPS);
    let (_, by_vjp) = vjp(
        |tape, ps| case.loss(&Bound::from_vars(ps.to_vec()), tape.constant(&case.x)),
        ws,
        &Tensor::scalar(1.0),
    );
    for (k, name) in case.params().names().iter().enumerate() {
        assert_close(&format!("grad for {name}"), &g[k], &numeric[k], FD);
        assert_close(&format!("grad for {name}, against vjp"), &g[k], &by_vjp[k], Tol::EXACT);
    }
}

/// The deep autoencoder's loss as a function of the parameters `chosen`
/// alone (the others held at the case's values), for the transforms.
fn partial_loss<'t>(
    case: &Case<f64>,
    chosen: &[ParamId],
    tape: &'t Tape<f64>,
    vars: &[Var<'t, f64>],
) -> Var<'t, f64> {
    let replace: Vec<_> = chosen.iter().copied().zip(vars.iter().copied()).collect();
    case.loss(&case.params().bind_with(tape, &replace), tape.constant(&case.x))
}

#[test]
fn bind_with_takes_the_gradient_and_hvp_in_two_parameters_with_the_rest_held_fixed() {
    let case = Case::<f64>::new(CaseKind::Deep, Size::Small, 22);
    let params = case.params();
    // One by name, one by id: the first layer's weight and the last bias.
    let w = params.id("encoder.0.weight").expect("the deep autoencoder has encoder.0.weight");
    let b = ParamId(params.len() - 1);
    let chosen = [w, b];
    let at: Vec<Tensor<f64>> = chosen.iter().map(|&id| params.get(id).clone()).collect();

    // The gradient in the two is those two entries of the full gradient.
    let g = grad(|tape, v| partial_loss(&case, &chosen, tape, v), &at);
    let (_, full) = case.autodiff();
    for (k, &id) in chosen.iter().enumerate() {
        assert_close(&format!("grad in {}", params.names()[id.0]), &g[k], &full[id.0], SAME);
    }

    // H v in the two, against (g(w + eps v) - g(w - eps v)) / (2 eps).
    let vs: Vec<Tensor<f64>> =
        at.iter().enumerate().map(|(k, x)| Tensor::normal(x.shape(), 0.0, 1.0, 90 + k as u64)).collect();
    let (loss, hv) = hvp(|tape, v| partial_loss(&case, &chosen, tape, v), &at, &vs);
    assert_close("the loss", &loss, &Tensor::scalar(case.loss_at(params.tensors())), Tol::EXACT);
    let shifted = |t: f64| -> Vec<Tensor<f64>> {
        let xs: Vec<Tensor<f64>> = at.iter().zip(&vs).map(|(x, v)| x.add(&v.mul_scalar(t))).collect();
        grad(|tape, v| partial_loss(&case, &chosen, tape, v), &xs)
    };
    let (plus, minus) = (shifted(EPS), shifted(-EPS));
    for (k, &id) in chosen.iter().enumerate() {
        let numeric = plus[k].sub(&minus[k]).mul_scalar(0.5 / EPS);
        assert_close(&format!("H v in {}", params.names()[id.0]), &hv[k], &numeric, FD);
        assert!(hv[k].data().iter().any(|&e| e != 0.0), "H v in {} is all zeros", params.names()[id.0]);
    }
}

#[test]
fn the_parameters_bind_with_does_not_replace_are_constants() {
    let mut params = Params::<f64>::new();
    let a = params.add("a", Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let b = params.add("b", Tensor::scalar(3.0));
    let tape = Tape::new();
    let replacement = tape.param(&Tensor::from_vec(vec![5.0, 7.0], &[2]));
    let p = params.bind_with(&tape, &[(a, replacement)]);
    assert_eq!(p[a].index(), replacement.index(), "the replacement is used as it is");
    assert!(!p[b].is_param(), "b is held fixed");
    assert_eq!(p[b].item(), 3.0);
    // backward sees one parameter leaf: the replacement. loss = b sum(a).
    let g = (p[a].sum() * p[b]).backward();
    assert_eq!(g.len(), 1);
    assert_eq!(g[replacement].data(), &[3.0, 3.0]);
}

#[test]
#[should_panic(expected = "bind_with: parameter \"b\" has shape [] but its replacement has shape [2]")]
fn a_replacement_of_the_wrong_shape_is_refused_by_name() {
    let mut params = Params::<f64>::new();
    params.add("a", Tensor::zeros(&[2]));
    let b = params.add("b", Tensor::scalar(0.0));
    let tape = Tape::new();
    let _ = params.bind_with(&tape, &[(b, tape.param(&Tensor::zeros(&[2])))]);
}

#[test]
#[should_panic(expected = "bind_with: parameter \"a\" is replaced twice")]
fn a_parameter_replaced_twice_is_refused() {
    let mut params = Params::<f64>::new();
    let a = params.add("a", Tensor::zeros(&[2]));
    let tape = Tape::new();
    let v = tape.param(&Tensor::zeros(&[2]));
    let _ = params.bind_with(&tape, &[(a, v), (a, v)]);
}

#[test]
#[should_panic(expected = "bind_with: parameter id 3 is out of range (1 parameters)")]
fn an_id_out_of_range_is_refused() {
    let mut params = Params::<f64>::new();
    params.add("a", Tensor::zeros(&[2]));
    let tape = Tape::new();
    let _ = params.bind_with(&tape, &[(ParamId(3), tape.param(&Tensor::zeros(&[2])))]);
}
