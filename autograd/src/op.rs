//! What each node remembers about how it was made.
//!
//! An [`Op`] names the operation and holds the indices of its inputs on the
//! tape plus any constant it needs (a scalar, an axis). It is `Copy` and a
//! few words long, so recording costs little. The backward rule for each op
//! lives beside its forward function in [`crate::ops`].

/// The operation that produced a node.
///
/// Each variant also has a plain name in [`OpKind`] (made by the derive
/// below), which lists every op the compiler knows of: the coverage test in
/// `verify/tests/suite/ops_gradcheck.rs` fails if one has no gradcheck case.
#[derive(Clone, Copy, Debug, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(OpKind),
    vis(pub),
    derive(Hash, PartialOrd, Ord, strum::EnumIter),
    doc = "The kind of op that recorded a node, without its inputs or constants \
           ([`Tape::op_kinds`](crate::Tape::op_kinds) reads them off a tape). \
           Each variant is named after the op: `Sigmoid` is `Var::sigmoid`, \
           `BiasAct` is `Var::bias_act`, `Leaf` a parameter or constant.",
    allow(missing_docs)
)]
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
    /// `act(z + b)` in one pass (a fused op: see `ops/fused.rs`).
    BiasAct {
        z: usize,
        b: usize,
        act: gradtape_kernels::Act,
    },
    /// `act(x W^T + b)`, a whole linear layer (a fused op: see
    /// `ops/fused.rs`): on a GPU, the bias and ReLU inside the product.
    /// `mask` is a constant the op recorded where the product applied the
    /// ReLU (a GPU): the ReLU's mask, which the next layer's rule reads to
    /// give this layer the gradient of its pre-activation directly.
    Linear {
        x: usize,
        w: usize,
        b: usize,
        act: gradtape_kernels::Act,
        mask: Option<usize>,
    },
    /// `mu + exp(logvar / 2) * eps` in one pass (a fused op: see
    /// `ops/fused.rs`). `eps` is a constant the op recorded: no gradient
    /// flows to it, so it is not one of the op's inputs, but the rule reads
    /// it.
    Reparameterize {
        mu: usize,
        logvar: usize,
        eps: usize,
    },
    /// `a + b * s` for two tensors of one shape, in one pass (a fused op:
    /// see `ops/fused.rs`): a loss and its weighted penalty.
    AddScaled {
        a: usize,
        b: usize,
        s: T,
    },
    /// `sqrt(sum x^2)`, the L2 norm of all elements, in one reduction (a
    /// fused op: see `ops/fused.rs`).
    Norm(usize),
    /// `scale * sum_i term(a_i, b_i)` in one pass (a fused loss: see
    /// `ops/fused.rs`).
    LossSum {
        a: usize,
        b: usize,
        term: gradtape_kernels::LossTerm,
        scale: T,
    },
    /// `scale * sum_l (sum_i d[l,i]^2) (sum_c b[l,c]^2)`, the sum of the
    /// squares of `H` outer products `d[l] b[l]^T` (the contractive
    /// penalty's Jacobian rows, kept as factors), in one reduction (a fused
    /// op: see `ops/fused.rs`). `d_rows` and `b_rows` are constants the op
    /// recorded, the two factors' row sums of squares: the rule reads them
    /// (no gradient flows to them).
    OuterSumSquares {
        d: usize,
        b: usize,
        scale: T,
        d_rows: usize,
        b_rows: usize,
    },
    /// A backward formula `f(g, x)` recorded as one node (`sigmoid_grad`,
    /// `g * s (1 - s)`, and the rest of `gradtape_kernels::Formula`): what
    /// a `create_graph` sweep records for a unary op's rule, in place of
    /// the plain ops of its composition (a fused op: see `ops/fused.rs`).
    Formula {
        formula: gradtape_kernels::Formula<T>,
        g: usize,
        x: usize,
    },
}

impl OpKind {
    /// Every kind of op, in the order of the enum.
    pub fn all() -> impl Iterator<Item = OpKind> {
        <OpKind as strum::IntoEnumIterator>::iter()
    }
}

impl<T> Op<T> {
    /// The op's name, as messages give it (the method that records it).
    pub(crate) fn name(&self) -> &'static str {
        use Op::*;
        match self {
            Leaf { param: true } => "parameter",
            Leaf { param: false } => "constant",
            Add(..) => "add",
            Sub(..) => "sub",
            Mul(..) => "mul",
            Div(..) => "div",
            Neg(..) => "neg",
            AddScalar(..) => "add_scalar",
            MulScalar(..) => "mul_scalar",
            Exp(..) => "exp",
            Log(..) => "log",
            Pow(..) => "powf",
            Sqrt(..) => "sqrt",
            Square(..) => "square",
            Abs(..) => "abs",
            Sigmoid(..) => "sigmoid",
            Tanh(..) => "tanh",
            Relu(..) => "relu",
            Softplus(..) => "softplus",
            Clamp(..) => "clamp",
            SumAll(..) => "sum",
            SumSquares(..) => "sum_squares",
            MeanAll(..) => "mean",
            MaxAll(..) => "max",
            SumAxis { .. } => "sum_axis",
            MeanAxis { .. } => "mean_axis",
            MaxAxis { .. } => "max_axis",
            Reshape(..) => "reshape",
            Transpose(..) => "transpose",
            BroadcastTo(..) => "broadcast_to",
            SumTo(..) => "sum_to",
            Select { .. } => "select",
            Unselect { .. } => "unselect",
            Slice { .. } => "slice_axis",
            Pad { .. } => "pad_axis",
            MatMul { .. } => "matmul",
            BiasAct { .. } => "bias_act",
            Linear { .. } => "linear_act",
            LossSum { .. } => "loss_sum",
            Reparameterize { .. } => "reparameterize",
            Norm(..) => "norm",
            AddScaled { .. } => "add_scaled",
            OuterSumSquares { .. } => "outer_sum_squares",
            Formula { formula, .. } => gradtape_kernels::FormulaKind::from(formula).name(),
        }
    }

    /// The input node indices (none for a leaf; one, two, or a linear
    /// layer's three otherwise).
    pub(crate) fn inputs(&self) -> [Option<usize>; 3] {
        use Op::*;
        match *self {
            Leaf { .. } => [None, None, None],
            Linear { x, w, b, .. } => [Some(x), Some(w), Some(b)],
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | MatMul { a, b, .. } => [Some(a), Some(b), None],
            BiasAct { z, b, .. }
            | AddScaled { a: z, b, .. }
            | LossSum { a: z, b, .. }
            | Reparameterize { mu: z, logvar: b, .. }
            | Formula { g: z, x: b, .. }
            | OuterSumSquares { d: z, b, .. } => [Some(z), Some(b), None],
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
            | SumTo(x)
            | Norm(x) => [Some(x), None, None],
            SumAxis { x, .. }
            | MeanAxis { x, .. }
            | MaxAxis { x, .. }
            | Select { x, .. }
            | Unselect { x, .. }
            | Slice { x, .. }
            | Pad { x, .. } => [Some(x), None, None],
        }
    }
}
