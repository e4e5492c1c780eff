//! `loss.backward()`: every parameter's gradient from a scalar loss, the
//! convenience form of [`grad_values`] a training step uses.

use crate::grad::grad_values;
use crate::op::Op;
use crate::tape::Var;
use gradtape_kernels::{Element, Tensor};

/// The gradients of a scalar loss with respect to every parameter leaf on its
/// tape, as returned by [`Var::backward`].
pub struct Gradients<T: Element> {
    ids: Vec<usize>,
    grads: Vec<Tensor<T>>,
}

impl<T: Element> Gradients<T> {
    /// The gradient for parameter `p`, if `p` is a parameter leaf of the tape.
    pub fn get(&self, p: Var<'_, T>) -> Option<&Tensor<T>> {
        self.ids.iter().position(|&id| id == p.id).map(|k| &self.grads[k])
    }

    /// The gradients in the order the parameters were read onto the tape.
    pub fn into_vec(self) -> Vec<Tensor<T>> {
        self.grads
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether the tape had no parameters.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

impl<T: Element> std::ops::Index<Var<'_, T>> for Gradients<T> {
    type Output = Tensor<T>;
    #[track_caller]
    fn index(&self, p: Var<'_, T>) -> &Tensor<T> {
        match self.get(p) {
            Some(g) => g,
            None => panic!("gradients: node {} is not a parameter leaf", p.id),
        }
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Backward pass from a scalar loss: gradients for every parameter leaf
    /// (made by [`Tape::param`](crate::Tape::param)) recorded before it. Records nothing. The
    /// convenience counterpart of PyTorch's `loss.backward()`, except that
    /// the gradients are returned rather than stored on the parameters.
    #[track_caller]
    pub fn backward(self) -> Gradients<T> {
        let ids: Vec<usize> = {
            let nodes = self.tape.nodes.borrow();
            (0..=self.id).filter(|&i| matches!(nodes[i].op, Op::Leaf { param: true })).collect()
        };
        let params: Vec<Var<'t, T>> = ids.iter().map(|&id| Var { tape: self.tape, id }).collect();
        let grads = grad_values(&[self], &params, None);
        Gradients { ids, grads }
    }
}
