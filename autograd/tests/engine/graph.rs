//! The tape drawn as DOT: one box per node and one edge per op input, the
//! nodes of a `create_graph` sweep marked, and the restriction to the nodes
//! between inputs and outputs.

use gradtape::{grad, Tape, Tensor};

fn count(dot: &str, needle: &str) -> usize {
    dot.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn the_drawing_has_a_node_per_value_and_an_edge_per_op_input() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let w = tape.param(&Tensor::from_vec(vec![0.5, -1.0], &[2]));
    let b = tape.param(&Tensor::scalar(0.1));
    let y = ((x * w) + b).sigmoid().sum(); // mul 2, add 2, sigmoid 1, sum 1
    let dot = tape.to_dot();
    assert!(dot.starts_with("digraph tape {") && dot.trim_end().ends_with('}'), "{dot}");
    assert_eq!(count(&dot, "[label="), tape.len());
    assert_eq!(count(&dot, " -> "), 6);
    assert_eq!(count(&dot, "fillcolor=\"#cfe2f3\""), 2, "two parameters");
    assert_eq!(count(&dot, "fillcolor=\"#e6e6e6\""), 1, "one constant");
    assert!(
        dot.contains(&format!("n{} [label=\"#{} sigmoid\\n[2]\"", y.index() - 1, y.index() - 1)),
        "{dot}"
    );
    assert!((0..tape.len()).all(|i| !tape.recorded_by_sweep(i)));
}

#[test]
fn the_nodes_of_a_create_graph_sweep_are_marked_and_a_plain_sweep_adds_none() {
    for create_graph in [false, true] {
        let tape = Tape::<f64>::new();
        let x = tape.param(&Tensor::from_vec(vec![0.3, -0.2], &[2]));
        let y = x.sigmoid().sum();
        let before = tape.len();
        let dx = grad(&[y], &[x], None, create_graph)[0];
        let marked: Vec<usize> = (0..tape.len()).filter(|&i| tape.recorded_by_sweep(i)).collect();
        let dot = tape.to_dot();
        if create_graph {
            // The rule g s (1 - s), recorded after the forward nodes as one
            // formula node, sigmoid_grad (its plain ops without fusion).
            assert!(!marked.is_empty() && marked.iter().all(|&i| i >= before), "{marked:?}");
            assert!(dot.contains(&format!("n{0} [label=\"#{0} sigmoid_grad", dx.index())), "{dot}");
            assert!(marked.contains(&dx.index()) || marked.iter().any(|&i| i < dx.index()));
            assert_eq!(count(&dot, "fillcolor=\"#fce5cd\""), marked.len());
        } else {
            assert!(marked.is_empty(), "{marked:?}");
            assert_eq!(count(&dot, "fillcolor=\"#fce5cd\""), 0);
        }
    }
}

#[test]
fn drawing_between_inputs_and_outputs_leaves_out_the_rest() {
    let tape = Tape::<f64>::new();
    let x = tape.param(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let unrelated = tape.param(&Tensor::from_vec(vec![3.0], &[1])).exp();
    let y = x.square().sum();
    let _ = unrelated;
    let dot = tape.to_dot_between(&[x], &[y]);
    assert_eq!(count(&dot, "[label="), 3, "x, square, sum: {dot}");
    assert_eq!(count(&dot, " -> "), 2);
    assert!(!dot.contains("exp"), "{dot}");
}

/// `without_fusion` records the plain ops a fused op stands for, and turns
/// fusion back on when its closure returns, or panics.
#[test]
fn without_fusion_records_the_plain_ops_and_is_undone_on_return_and_on_panic() {
    use gradtape::{fusion_enabled, without_fusion};
    let x = Tensor::from_vec(vec![3.0, 4.0], &[2]);
    let nodes = |tape: &Tape<f64>| {
        let y = tape.param(&x).norm();
        (tape.len(), y.value().item())
    };
    let fused = nodes(&Tape::new());
    let plain = without_fusion(|| {
        assert!(!fusion_enabled());
        nodes(&Tape::new())
    });
    assert_eq!((fused, plain), ((2, 5.0), (3, 5.0)), "norm: the leaf and one node, or sum_squares and sqrt");
    assert!(fusion_enabled());
    let caught = std::panic::catch_unwind(|| without_fusion(|| panic!("inside")));
    assert!(caught.is_err());
    assert!(fusion_enabled(), "fusion was left off after a panic inside without_fusion");
}
