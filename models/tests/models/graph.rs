//! One training step's tape, drawn: the contractive autoencoder's Jacobian
//! penalty is a `create_graph` sweep, so its drawing has recorded-sweep
//! nodes; the deep autoencoder's has none.

use gradtape::{grad_values, Tape, Tensor};
use gradtape_models::autoencoders::{ModelKind, StepCtx};
use gradtape_models::spec::ModelSpec;

/// The number of nodes a `create_graph` sweep recorded in one step of
/// `kind`, and the DOT of the step.
fn one_step(kind: ModelKind) -> (usize, String, usize) {
    let model = ModelSpec::default_for(kind).build(0);
    let tape = Tape::<f32>::new();
    let p = model.params().bind(&tape);
    let x = tape.constant(&Tensor::uniform(&[4, 784], 0.0, 1.0, 1));
    let loss = model.loss(&p, x, &mut StepCtx::seeded(0)).total;
    let grads = grad_values(&[loss], p.vars(), None);
    assert_eq!(grads.len(), model.params().len());
    let marked = (0..tape.len()).filter(|&i| tape.recorded_by_sweep(i)).count();
    (marked, tape.to_dot(), tape.len())
}

#[test]
fn the_contractive_step_draws_its_create_graph_sweep_and_the_deep_step_has_none() {
    let (marked, dot, len) = one_step(ModelKind::Contractive);
    assert!(marked > 0, "the contractive penalty's sweep should be marked");
    assert_eq!(dot.matches("fillcolor=\"#fce5cd\"").count(), marked);
    assert_eq!(dot.matches("[label=").count(), len);
    let (marked, dot, len) = one_step(ModelKind::Deep);
    assert_eq!(marked, 0);
    assert_eq!(dot.matches("fillcolor=\"#fce5cd\"").count(), 0);
    assert_eq!(dot.matches("[label=").count(), len);
}
