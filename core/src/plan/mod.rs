//! Plans: the public description of a model that both parties evaluate.
//!
//! A [`Plan`] holds the op graph with static shapes, the fixed-point setting
//! and a SHA-256 commitment to the weights; it goes to the client at session
//! start. The weights themselves ([`Weights`]) stay with the model owner.
//! Two evaluators run one plan: [`plain::evaluate`] in `f64` (the reference
//! of every test) and [`secure::evaluate`] under MPC.
//!
//! The serialized form is `postcard` behind a magic and a version; a plan
//! from a peer is checked against [`MAX_PLAN_BYTES`] before parsing and
//! validated ([`Plan::validate`]) after: indices in range, shapes within
//! limits, nodes in topological order.

pub mod layout;
pub mod plain;
pub mod secure;

use crate::backend::Conv2dParams;
use crate::backend::conv::window_positions;
use crate::error::{Error, PeerError, Result};
use crate::protocol::{AvgPool2dParams, MaxPool2dParams};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

/// Index of a value (a tensor flowing through the graph).
pub type ValueId = usize;
/// Index of a weight tensor (the owner's secret).
pub type WeightId = usize;

/// Version of the serialized plan format.
pub const PLAN_VERSION: u16 = 1;
/// Largest serialized plan accepted from a peer.
pub const MAX_PLAN_BYTES: usize = 16 << 20;
/// Most elements one tensor of a plan may have: the dealer's limit
/// ([`crate::preprocessing::wire::MAX_TENSOR_ELEMENTS`]), so that every
/// tensor a plan accepts can be asked of the dealer.
pub const MAX_ELEMENTS: usize = crate::preprocessing::wire::MAX_TENSOR_ELEMENTS;
const MAGIC: &[u8; 4] = b"HUSH";

/// A tensor flowing through the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    /// Name in the source model.
    pub name: String,
    /// Static shape.
    pub shape: Vec<usize>,
}

/// A weight tensor's public description (its values stay with the owner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightInfo {
    /// Name in the source model.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
}

/// A public constant tensor (part of the architecture, not a secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Constant {
    /// As an ndarray.
    pub fn to_array(&self) -> Result<ArrayD<f64>> {
        ArrayD::from_shape_vec(ndarray::IxDyn(&self.shape), self.data.clone())
            .map_err(|e| Error::Shape(format!("constant: {e}")))
    }
}

/// Convolution parameters, serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvAttrs {
    /// Stride (H, W).
    pub stride: [usize; 2],
    /// Padding (top, left, bottom, right).
    pub padding: [usize; 4],
    /// Dilation (H, W).
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
}

impl From<ConvAttrs> for Conv2dParams {
    fn from(a: ConvAttrs) -> Self {
        Conv2dParams {
            stride: a.stride,
            padding: a.padding,
            dilation: a.dilation,
            groups: a.groups,
        }
    }
}

/// Pooling parameters, serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolAttrs {
    /// Window (H, W).
    pub kernel: [usize; 2],
    /// Stride (H, W).
    pub stride: [usize; 2],
    /// Padding (top, left, bottom, right).
    pub padding: [usize; 4],
    /// Dilation (H, W), max pooling only.
    pub dilation: [usize; 2],
    /// Round output sizes up.
    pub ceil_mode: bool,
    /// Average pooling: divide by the whole window including padding.
    pub count_include_pad: bool,
}

impl PoolAttrs {
    /// Output height and width of this pooling on an input of `hw`
    /// (dilation counts for max pooling only); `None` when the window does
    /// not fit, the stride is zero or a size overflows.
    pub fn output_hw(&self, hw: [usize; 2], max: bool) -> Option<[usize; 2]> {
        let at = |d: usize| {
            let dil = if max { self.dilation[d] } else { 1 };
            let pad = [self.padding[d], self.padding[d + 2]];
            window_positions(
                hw[d],
                pad,
                self.kernel[d],
                self.stride[d],
                dil,
                self.ceil_mode,
            )
        };
        Some([at(0)?, at(1)?])
    }

    pub(crate) fn max(&self) -> MaxPool2dParams {
        MaxPool2dParams {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }
    pub(crate) fn avg(&self) -> AvgPool2dParams {
        AvgPool2dParams {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            count_include_pad: self.count_include_pad,
        }
    }
}

/// One operation. Inputs are [`Node::inputs`] (values); weights and
/// constants are named inside the op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Op {
    /// `x · W` over the last axis of `x` (`W` is `[k, n]`), the owner's weight.
    MatMulWeight {
        /// The weight.
        weight: WeightId,
    },
    /// Convolution of `x` `[N,C,H,W]` with the owner's kernel.
    Conv {
        /// The kernel `[O, C/g, kh, kw]`.
        weight: WeightId,
        /// Stride, padding, dilation, groups.
        attrs: ConvAttrs,
    },
    /// `x + W` (broadcast), the owner's tensor (biases).
    AddWeight {
        /// The weight.
        weight: WeightId,
    },
    /// `x ⊙ W` (broadcast), the owner's tensor (scales).
    MulWeight {
        /// The weight.
        weight: WeightId,
    },
    /// `x + c` for a public constant (broadcast).
    AddConst(Constant),
    /// `x ⊙ c` for a public constant (broadcast).
    MulConst(Constant),
    /// `a + b` of two values (broadcast).
    Add,
    /// `a − b` of two values (broadcast).
    Sub,
    /// `a ⊙ b` of two values (same shape).
    Mul,
    /// `a · b` of two values.
    MatMul,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)`.
    Clip {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// LeakyReLU.
    LeakyRelu {
        /// Slope below zero.
        alpha: f64,
    },
    /// Logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over an axis (the last axis only, for now).
    Softmax {
        /// Axis.
        axis: usize,
    },
    /// 2-D max pooling.
    MaxPool(PoolAttrs),
    /// 2-D average pooling.
    AveragePool(PoolAttrs),
    /// Mean over H and W, keeping them as size 1.
    GlobalAveragePool,
    /// Reshape to a static shape.
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// `e^x`.
    Exp,
    /// `√x` (positive inputs).
    Sqrt,
    /// `1/x` (positive inputs).
    Reciprocal,
    /// `x / y` of two values (positive divisors).
    Div,
    /// `x²`.
    Square,
    /// The error function.
    Erf,
    /// GELU, erf or tanh form.
    Gelu {
        /// Use the tanh approximation.
        tanh: bool,
    },
    /// `log softmax` over the last axis.
    LogSoftmax {
        /// Axis (must be the last).
        axis: usize,
    },
    /// `clip(αx + β, 0, 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
    /// `x·clip(x/6 + 1/2, 0, 1)`.
    HardSwish,
    /// Mean over axes.
    ReduceMean {
        /// Axes.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// Sum over axes.
    ReduceSum {
        /// Axes.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// Permute axes.
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// Keep the listed indices along each axis (Slice, Gather, Split).
    Select {
        /// Index list per axis.
        picks: Vec<Vec<usize>>,
    },
    /// Concatenate values along an axis.
    Concat {
        /// Axis.
        axis: usize,
    },
    /// Broadcast to a shape.
    Expand {
        /// Target shape.
        shape: Vec<usize>,
    },
    /// Zero padding, `(before, after)` per axis.
    Pad {
        /// Padding per axis.
        pads: Vec<(usize, usize)>,
    },
    /// Layer normalization over the last axis (scale and bias follow as
    /// separate weight ops).
    LayerNorm {
        /// Added to the variance.
        epsilon: f64,
    },
    /// Max over H and W, keeping them as size 1.
    GlobalMaxPool,
    /// Index of the maximum along an axis, as a number.
    ArgMax {
        /// Axis.
        axis: usize,
        /// Keep the axis as size 1.
        keepdims: bool,
    },
    /// `ln x` (positive inputs, in the reciprocal's range). Last, so that
    /// plans without it serialize as before it was added.
    Log,
    /// `1` where `x < 0`, else `0`: ONNX's comparisons and boolean values
    /// are numbers 0 and 1 in a plan. Appended for the same reason as `Log`.
    IsNegative,
    /// The one-hot code of `⌊x⌋` over `depth` classes: a new last axis of
    /// `depth`, `1` at `⌊x⌋` where `0 ≤ ⌊x⌋ < depth`, all `0` elsewhere (an
    /// embedding's selector of token ids). Appended for the same reason.
    OneHot {
        /// Number of classes.
        depth: usize,
    },
}

/// The output shape of [`Op::OneHot`] of an input of `shape`, checked
/// against the plan's `declared` one before anything of it is allocated (a
/// peer's plan may name any depth).
pub(crate) fn one_hot_shape(shape: &[usize], depth: usize, declared: &[usize]) -> Result<()> {
    let want = shape.iter().copied().chain([depth]);
    if !want.eq(declared.iter().copied()) {
        return Err(Error::Shape(alloc::format!(
            "one-hot of {shape:?} over {depth} classes declared as {declared:?}"
        )));
    }
    Ok(())
}

impl Op {
    /// The op's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatMulWeight { .. } => "MatMul(weight)",
            Op::Conv { .. } => "Conv",
            Op::AddWeight { .. } => "Add(weight)",
            Op::MulWeight { .. } => "Mul(weight)",
            Op::AddConst(_) => "Add(const)",
            Op::MulConst(_) => "Mul(const)",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::MatMul => "MatMul",
            Op::Relu => "Relu",
            Op::Clip { .. } => "Clip",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Softmax { .. } => "Softmax",
            Op::MaxPool(_) => "MaxPool",
            Op::AveragePool(_) => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::Reshape { .. } => "Reshape",
            Op::Exp => "Exp",
            Op::Sqrt => "Sqrt",
            Op::Reciprocal => "Reciprocal",
            Op::Div => "Div",
            Op::Square => "Square",
            Op::Erf => "Erf",
            Op::Gelu { .. } => "Gelu",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::ReduceSum { .. } => "ReduceSum",
            Op::Transpose { .. } => "Transpose",
            Op::Select { .. } => "Select",
            Op::Concat { .. } => "Concat",
            Op::Expand { .. } => "Expand",
            Op::Pad { .. } => "Pad",
            Op::LayerNorm { .. } => "LayerNorm",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::ArgMax { .. } => "ArgMax",
            Op::Log => "Log",
            Op::IsNegative => "IsNegative",
            Op::OneHot { .. } => "OneHot",
        }
    }

    fn weights(&self) -> Option<WeightId> {
        match self {
            Op::MatMulWeight { weight }
            | Op::Conv { weight, .. }
            | Op::AddWeight { weight }
            | Op::MulWeight { weight } => Some(*weight),
            _ => None,
        }
    }
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name in the source model.
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Input values.
    pub inputs: Vec<ValueId>,
    /// Output value.
    pub output: ValueId,
}

/// The public plan of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Model name.
    pub name: String,
    /// Fractional bits of the fixed-point encoding.
    pub frac_bits: u32,
    /// Every value of the graph.
    pub values: Vec<ValueInfo>,
    /// The client's inputs.
    pub inputs: Vec<ValueId>,
    /// The outputs, revealed to the client.
    pub outputs: Vec<ValueId>,
    /// Shapes of the owner's weights.
    pub weights: Vec<WeightInfo>,
    /// Nodes in evaluation order.
    pub nodes: Vec<Node>,
    /// SHA-256 of the weights' canonical encoding ([`Weights::canonical_bytes`]).
    pub commitment: [u8; 32],
}

/// The owner's weights, in the plan's order.
#[derive(Clone, PartialEq)]
pub struct Weights {
    /// One tensor per [`Plan::weights`] entry.
    pub tensors: Vec<ArrayD<f64>>,
}

impl core::fmt::Debug for Weights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Weights {{ tensors: {} (values hidden) }}",
            self.tensors.len()
        )
    }
}

impl Weights {
    /// The bytes the commitment hashes: for each tensor, its rank, its
    /// dimensions and its values as little-endian `f64`, all as `u64`/`f64`
    /// little-endian.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        for t in &self.tensors {
            out.extend_from_slice(&(t.ndim() as u64).to_le_bytes());
            for &d in t.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            for v in t.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensors.iter().map(|t| t.len()).sum()
    }
}

/// The element count of `shape`, or `None` when it overflows.
pub fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Whether a tensor of `shape` is within the limits: rank at most 8, at
/// most [`MAX_ELEMENTS`] elements, zero axes counted as one
/// ([`crate::error::element_bound`]).
pub fn shape_within_limits(shape: &[usize]) -> bool {
    shape.len() <= 8 && crate::error::element_bound(shape).is_some_and(|n| n <= MAX_ELEMENTS)
}

impl Plan {
    /// Checks indices, shape limits and evaluation order. Plans from a peer
    /// must pass this before use.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &'static str| Err(Error::Peer(PeerError::Malformed(m)));
        if self.frac_bits > 30 {
            return bad("fixed-point bits out of range");
        }
        for v in &self.values {
            if !shape_within_limits(&v.shape) {
                return bad("value shape over the limits");
            }
        }
        for w in &self.weights {
            if !shape_within_limits(&w.shape) {
                return bad("weight shape over the limits");
            }
        }
        let nv = self.values.len();
        let mut defined = alloc::vec![false; nv];
        for &i in &self.inputs {
            if i >= nv {
                return bad("input index out of range");
            }
            defined[i] = true;
        }
        for n in &self.nodes {
            if n.output >= nv || n.inputs.iter().any(|&i| i >= nv || !defined[i]) {
                return bad("node refers to an undefined value");
            }
            if n.op.weights().is_some_and(|w| w >= self.weights.len()) {
                return bad("node refers to an unknown weight");
            }
            if let Op::AddConst(c) | Op::MulConst(c) = &n.op
                && elements(&c.shape) != Some(c.data.len())
            {
                return bad("constant data does not match its shape");
            }
            defined[n.output] = true;
        }
        if self.outputs.iter().any(|&o| o >= nv || !defined[o]) {
            return bad("output never computed");
        }
        Ok(())
    }

    /// The serialized plan: `HUSH`, version, then postcard.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::from(&MAGIC[..]);
        out.extend_from_slice(&PLAN_VERSION.to_le_bytes());
        let body = postcard::to_allocvec(self)
            .map_err(|e| Error::Usage(format!("plan does not serialize: {e}")))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses and validates a plan received from a peer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan> {
        if bytes.len() > MAX_PLAN_BYTES {
            return Err(PeerError::Malformed("plan over the size limit").into());
        }
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(PeerError::Malformed("not a Hush plan").into());
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != PLAN_VERSION {
            return Err(PeerError::Version {
                ours: PLAN_VERSION as u8,
                theirs: version.min(255) as u8,
            }
            .into());
        }
        let plan: Plan = postcard::from_bytes(&bytes[6..])
            .map_err(|_| PeerError::Malformed("plan does not parse"))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Rewrites that keep the function and lower the cost under MPC:
    /// `MaxPool(Relu(x))` becomes `Relu(MaxPool(x))` (both are monotone and
    /// padded cells never win), so the comparisons of the ReLU run on the
    /// pooled, smaller tensor. Returns how many rewrites were made.
    pub fn optimize(&mut self) -> usize {
        let mut uses = alloc::vec![0usize; self.values.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        for &o in &self.outputs {
            uses[o] += 1;
        }
        let mut producer = alloc::vec![usize::MAX; self.values.len()];
        for (k, n) in self.nodes.iter().enumerate() {
            producer[n.output] = k;
        }
        let mut count = 0;
        for k in 0..self.nodes.len() {
            if !matches!(self.nodes[k].op, Op::MaxPool(_)) || self.nodes[k].inputs.len() != 1 {
                continue;
            }
            let r = self.nodes[k].inputs[0];
            let ri = producer[r];
            if ri == usize::MAX || self.nodes[ri].op != Op::Relu || uses[r] != 1 {
                continue;
            }
            // relu: a → r, pool: r → m   becomes   pool: a → r, relu: r → m
            let a = self.nodes[ri].inputs[0];
            let m = self.nodes[k].output;
            self.values[r].shape = self.values[m].shape.clone();
            let pool_op = self.nodes[k].op.clone();
            let (pool_name, relu_name) = (self.nodes[k].name.clone(), self.nodes[ri].name.clone());
            self.nodes[ri] = Node {
                name: pool_name,
                op: pool_op,
                inputs: alloc::vec![a],
                output: r,
            };
            self.nodes[k] = Node {
                name: relu_name,
                op: Op::Relu,
                inputs: alloc::vec![r],
                output: m,
            };
            count += 1;
        }
        count
    }

    /// Number of scalar weights.
    pub fn parameter_count(&self) -> usize {
        self.weights.iter().filter_map(|w| elements(&w.shape)).sum()
    }
}
