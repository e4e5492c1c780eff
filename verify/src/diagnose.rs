//! When a model's gradients are wrong, which op is to blame?
//!
//! A failed model check says *that* a gradient is wrong and for which
//! parameter, but a model's loss goes through a dozen kinds of op. This
//! module runs `gradcheck` and `gradgradcheck` on each op the autoencoders
//! use, alone, on small fixed inputs away from kinks, and names the ones
//! whose backward rule disagrees with finite differences. The report prints
//! them when anything fails; the fault-injection test checks that a broken
//! sigmoid rule is named.

use crate::gradcheck::{gradcheck, gradgradcheck};
use gradtape::{Act, Tensor, Var};

type OpFn = Box<dyn for<'t> Fn(&[Var<'t, f64>]) -> Vec<Var<'t, f64>>>;

/// The result of checking one op.
pub struct OpCheck {
    /// The op's name, as in the engine (`sigmoid`, `matmul`, ...).
    pub name: &'static str,
    /// `Err` with gradcheck's message if either check failed.
    pub result: Result<(), String>,
}

/// Values in [-1.5, -0.2] U [0.2, 1.5]: away from the kinks at 0.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::uniform(shape, -1.3, 1.3, seed).map(|x| if x >= 0.0 { x + 0.2 } else { x - 0.2 })
}

/// Every op the autoencoders' losses use, each checked alone.
pub fn check_ops() -> Vec<OpCheck> {
    let a = away_from_zero(&[3, 4], 1);
    let b = away_from_zero(&[3, 4], 2);
    let w = away_from_zero(&[2, 4], 3);
    let bias = away_from_zero(&[4], 4);
    let pos = Tensor::uniform(&[3, 4], 0.2, 0.8, 5);
    let one = |x: &Tensor<f64>| vec![x.clone()];
    let cases: Vec<(&'static str, OpFn, Vec<Tensor<f64>>)> = vec![
        ("add", Box::new(|v| vec![v[0] + v[1]]), vec![a.clone(), bias.clone()]),
        ("sub", Box::new(|v| vec![v[0] - v[1]]), vec![a.clone(), b.clone()]),
        ("mul", Box::new(|v| vec![v[0] * v[1]]), vec![a.clone(), b.clone()]),
        ("div", Box::new(|v| vec![v[0] / v[1]]), vec![a.clone(), b.clone()]),
        ("neg", Box::new(|v| vec![-v[0]]), one(&a)),
        ("add_scalar", Box::new(|v| vec![v[0] + 0.5]), one(&a)),
        ("mul_scalar", Box::new(|v| vec![v[0] * 0.3]), one(&a)),
        ("matmul", Box::new(|v| vec![v[0].matmul_t(v[1], false, true)]), vec![a.clone(), w]),
        ("relu", Box::new(|v| vec![v[0].relu()]), one(&a)),
        ("sigmoid", Box::new(|v| vec![v[0].sigmoid()]), one(&a)),
        ("tanh", Box::new(|v| vec![v[0].tanh()]), one(&a)),
        ("exp", Box::new(|v| vec![v[0].exp()]), one(&a)),
        ("log", Box::new(|v| vec![v[0].log()]), one(&pos)),
        ("square", Box::new(|v| vec![v[0].square()]), one(&a)),
        ("sqrt", Box::new(|v| vec![v[0].sqrt()]), one(&pos)),
        ("clamp", Box::new(|v| vec![v[0].clamp(0.1, 0.9)]), one(&pos.map(|x| x.clamp(0.25, 0.75)))),
        ("sum", Box::new(|v| vec![v[0].sum()]), one(&a)),
        ("mean", Box::new(|v| vec![v[0].mean()]), one(&a)),
        ("sum_axis", Box::new(|v| vec![v[0].sum_axis(1, false)]), one(&a)),
        ("select", Box::new(|v| vec![v[0].column(1)]), one(&a)),
        // The fused layer op, with each activation the models give it.
        (
            "bias_act (relu)",
            Box::new(|v| vec![v[0].bias_act(v[1], Act::Relu)]),
            vec![a.clone(), bias.clone()],
        ),
        (
            "bias_act (sigmoid)",
            Box::new(|v| vec![v[0].bias_act(v[1], Act::Sigmoid)]),
            vec![a.clone(), bias.clone()],
        ),
        (
            "bias_act (tanh)",
            Box::new(|v| vec![v[0].bias_act(v[1], Act::Tanh)]),
            vec![a.clone(), bias.clone()],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, f, inputs)| {
            let result = gradcheck(|v| f(v), &inputs)
                .map_err(|e| format!("gradcheck: {e}"))
                .and_then(|()| gradgradcheck(|v| f(v), &inputs).map_err(|e| format!("gradgradcheck: {e}")));
            OpCheck { name, result }
        })
        .collect()
}

/// The names of the ops whose backward rules fail their checks.
pub fn suspect_ops() -> Vec<&'static str> {
    check_ops().into_iter().filter(|c| c.result.is_err()).map(|c| c.name).collect()
}
