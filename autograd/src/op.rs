//! What each node remembers about how it was made.
//!
//! An [`Op`] names the operation and holds the indices of its inputs on the
//! tape plus any constant it needs (a scalar, an axis). It is `Copy` and a
//! few words long, so recording costs little. The backward rule for each op
//! lives beside its forward function in [`crate::ops`].

/// The operation that produced a node.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<T> {
    /// A value read in from outside: a parameter or a constant.
    Leaf {
        param: bool,
    },
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    Neg(usize),
    AddScalar(usize),
    MulScalar(usize, T),
    Exp(usize),
    Log(usize),
    Pow(usize, T),
    Sqrt(usize),
    Square(usize),
    Abs(usize),
    Sigmoid(usize),
    Tanh(usize),
    Relu(usize),
    Softplus(usize),
    Clamp(usize, T, T),
    SumAll(usize),
    SumSquares(usize),
    MeanAll(usize),
    MaxAll(usize),
    SumAxis {
        x: usize,
        axis: usize,
    },
    MeanAxis {
        x: usize,
        axis: usize,
    },
    MaxAxis {
        x: usize,
        axis: usize,
    },
    Reshape(usize),
    Transpose(usize),
    BroadcastTo(usize),
    SumTo(usize),
    Select {
        x: usize,
        axis: usize,
        index: usize,
    },
    Unselect {
        x: usize,
        axis: usize,
        index: usize,
    },
    Slice {
        x: usize,
        axis: usize,
        start: usize,
    },
    Pad {
        x: usize,
        axis: usize,
        start: usize,
    },
    MatMul {
        a: usize,
        b: usize,
        ta: bool,
        tb: bool,
    },
}

impl<T> Op<T> {
    /// The input node indices (none for a leaf, one or two otherwise).
    pub(crate) fn inputs(&self) -> [Option<usize>; 2] {
        use Op::*;
        match *self {
            Leaf { .. } => [None, None],
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | MatMul { a, b, .. } => [Some(a), Some(b)],
            Neg(x)
            | AddScalar(x)
            | MulScalar(x, _)
            | Exp(x)
            | Log(x)
            | Pow(x, _)
            | Sqrt(x)
            | Square(x)
            | Abs(x)
            | Sigmoid(x)
            | Tanh(x)
            | Relu(x)
            | Softplus(x)
            | Clamp(x, _, _)
            | SumAll(x)
            | SumSquares(x)
            | MeanAll(x)
            | MaxAll(x)
            | Reshape(x)
            | Transpose(x)
            | BroadcastTo(x)
            | SumTo(x) => [Some(x), None],
            SumAxis { x, .. }
            | MeanAxis { x, .. }
            | MaxAxis { x, .. }
            | Select { x, .. }
            | Unselect { x, .. }
            | Slice { x, .. }
            | Pad { x, .. } => [Some(x), None],
        }
    }
}
