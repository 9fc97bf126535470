//! The importer: one pass over the graph.

use crate::proto::{self, AttributeProto, ModelProto, NodeProto, TensorProto};
use hush_core::backend::{Conv2dParams, conv2d_output_shape};
use hush_core::plan::{
    Constant, ConvAttrs, Node, Op, Plan, PoolAttrs, ValueInfo, WeightInfo, Weights, layout,
};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

mod composite;
mod conv_transpose;
mod einsum;
mod embedding;
mod logic;
mod masks;
mod resize;

/// Why a model could not be imported.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ImportError {
    /// The bytes are not an ONNX protobuf.
    Decode(String),
    /// The model's opset is outside 13–21.
    Opset(i64),
    /// An operator (or a form of it) that Hush does not support.
    Unsupported {
        /// ONNX op type.
        op: String,
        /// Node name.
        node: String,
        /// What exactly is unsupported.
        detail: String,
    },
    /// The model is malformed or inconsistent.
    Invalid {
        /// Node name (or a tensor name).
        node: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Decode(e) => write!(f, "not an ONNX model: {e}"),
            ImportError::Opset(v) => write!(f, "opset {v} is not supported (13 to 21 are)"),
            ImportError::Unsupported { op, node, detail } => {
                write!(f, "unsupported operator {op} at node '{node}'")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            ImportError::Invalid { node, reason } => {
                write!(f, "invalid model at '{node}': {reason}")
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Import settings.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Fractional bits of the plan's fixed point (default 16).
    pub frac_bits: u32,
    /// Size of symbolic dimensions (the batch), default 1.
    pub symbolic_dim: usize,
    /// Shapes that override the model's input shapes, by input name.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Plan name; the model's graph name when `None`.
    pub name: Option<String>,
    /// The most constant elements the importer may compute in all, folding
    /// shape arithmetic and weight layout on constants (default
    /// [`MAX_FOLDED_ELEMENTS`]). A model file is the owner's, but may come
    /// from anywhere: this bounds the time and memory a small file can make
    /// the import spend (a chain of `ConstantOfShape`, `Expand`, `Concat`…).
    pub max_folded_elements: usize,
}

/// Default of [`ImportOptions::max_folded_elements`]: as many elements as one
/// tensor of a plan may hold (2^28; 2 GiB of `f64` computed in all).
pub const MAX_FOLDED_ELEMENTS: usize = hush_core::plan::MAX_ELEMENTS;

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            frac_bits: 16,
            symbolic_dim: 1,
            input_shapes: HashMap::new(),
            name: None,
            max_folded_elements: MAX_FOLDED_ELEMENTS,
        }
    }
}

/// An imported model.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The public plan.
    pub plan: Plan,
    /// The owner's weights.
    pub weights: Weights,
}

/// The ONNX operators the importer accepts (the manifest of `docs/OPS.md`;
/// a test checks both against the importer's dispatch).
pub fn supported_ops() -> &'static [&'static str] {
    &[
        "Abs",
        "Add",
        "And",
        "ArgMax",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Ceil",
        "Celu",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "ConvTranspose",
        "Cos",
        "DepthToSpace",
        "Div",
        "Dropout",
        "Einsum",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Floor",
        "Gather",
        "Gelu",
        "Gemm",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Greater",
        "GreaterOrEqual",
        "GroupNormalization",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "InstanceNormalization",
        "LayerNormalization",
        "LeakyRelu",
        "Less",
        "LessOrEqual",
        "Log",
        "LogSoftmax",
        "MatMul",
        "Max",
        "MaxPool",
        "Mean",
        "Min",
        "Mish",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "PRelu",
        "Pad",
        "Pow",
        "Range",
        "Reciprocal",
        "ReduceL1",
        "ReduceL2",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceSum",
        "ReduceSumSquare",
        "Relu",
        "Reshape",
        "Resize",
        "Round",
        "Selu",
        "Shape",
        "Sigmoid",
        "Sign",
        "Sin",
        "Slice",
        "Softmax",
        "Softplus",
        "Softsign",
        "SpaceToDepth",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Sum",
        "Tanh",
        "Tile",
        "Transpose",
        "Unsqueeze",
        "Where",
        "Xor",
    ]
}

/// The input of a data-movement op.
enum Src {
    Value(usize),
    Const(Arc<ArrayD<f64>>),
}

/// What a name in the graph stands for during import.
#[derive(Clone)]
enum Entry {
    /// A secret value of the plan.
    Secret(usize),
    /// A public constant (folded shape arithmetic, Constant nodes).
    Public(Arc<ArrayD<f64>>),
    /// A float initializer: becomes a weight where it meets a secret value.
    /// (Constants are shared: reading one for its shape or values does not
    /// copy it.)
    Init(Arc<ArrayD<f64>>),
}

impl Entry {
    /// A constant's value and whether it is the owner's weight (an
    /// initializer, or computed from one); `None` for a computed value.
    fn constant(self) -> Option<(Arc<ArrayD<f64>>, bool)> {
        match self {
            Entry::Init(c) => Some((c, true)),
            Entry::Public(c) => Some((c, false)),
            Entry::Secret(_) => None,
        }
    }
}

/// How a constant operand meets a computed value ([`Builder::constant_op`]).
#[derive(Clone, Copy)]
enum Combine {
    Add,
    Mul,
}

/// Which of the three elementwise operations [`Builder::binary`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Binary {
    Add,
    Sub,
    Mul,
}

/// Whether a helper's last node is the ONNX node's output or an
/// intermediate step of it ([`Builder::step_or_output`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Output,
    Step,
}

impl Last {
    /// The output when `is_last`, else a step.
    fn when(is_last: bool) -> Last {
        if is_last { Last::Output } else { Last::Step }
    }
}

/// A reduction's operand and geometry ([`Builder::reduction`]).
struct Reduction {
    x: usize,
    shape: Vec<usize>,
    axes: Vec<usize>,
    keepdims: bool,
    out: Vec<usize>,
}

/// Constants of a variadic node combined into one, and whether a weight
/// was among them.
type Combined = (Arc<ArrayD<f64>>, bool);

struct Builder {
    plan: Plan,
    weights: Vec<ArrayD<f64>>,
    names: HashMap<String, Entry>,
    /// Node index in the plan that produced each value.
    producer: HashMap<usize, usize>,
    /// How many ONNX nodes read each name.
    uses: HashMap<String, usize>,
    /// The first value given a shape over the plan's limits, if any: the
    /// import stops with an error after the node that made it.
    oversize: Option<String>,
    /// Constant elements computed so far, and the most allowed
    /// ([`ImportOptions::max_folded_elements`]).
    folded: usize,
    max_folded: usize,
    /// The model's opset (of the default domain).
    opset: i64,
    /// Computed values known to be 0 or 1 (comparisons, logic, boolean
    /// inputs), and known to be integers (`ArgMax`'s indices, `Sign`,
    /// integer inputs), each with the elements moved from them: what logic,
    /// `Where`, `Cast` and computed `Gather` indices may take.
    booleans: HashSet<usize>,
    integers: HashSet<usize>,
    /// ONNX names of the values made from an attention mask's stand-ins for
    /// `−∞` ([`masks`]).
    saturated: HashSet<String>,
}

fn invalid(node: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        node: node.to_string(),
        reason: reason.into(),
    }
}

fn unsupported(n: &NodeProto, detail: impl Into<String>) -> ImportError {
    ImportError::Unsupported {
        op: n.op_type().to_string(),
        node: n.name().to_string(),
        detail: detail.into(),
    }
}

fn tensor_to_array(t: &TensorProto) -> Result<ArrayD<f64>, ImportError> {
    let name = t.name();
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| invalid(name, "negative dimension")))
        .collect::<Result<_, _>>()?;
    if !hush_core::plan::shape_within_limits(&dims) {
        return Err(invalid(name, "tensor over the size limit"));
    }
    let count: usize = dims.iter().product();
    if !t.external_data.is_empty() {
        let file = t
            .external_data
            .iter()
            .find(|e| e.key() == "location")
            .map(|e| e.value().to_string())
            .unwrap_or_default();
        return Err(invalid(
            name,
            format!(
                "the values are in an external file ('{file}'), which is not supported: \
                 save the model with its weights inside the .onnx file"
            ),
        ));
    }
    use proto::tensor_proto::DataType;
    let dt = DataType::try_from(t.data_type()).map_err(|_| invalid(name, "unknown data type"))?;
    let raw = t.raw_data();
    let data: Vec<f64> = match dt {
        DataType::Float => {
            if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect()
            } else {
                t.float_data.iter().map(|&v| v as f64).collect()
            }
        }
        DataType::Double => {
            if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            } else {
                t.double_data.clone()
            }
        }
        DataType::Int64 => {
            if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64)
                    .collect()
            } else {
                t.int64_data.iter().map(|&v| v as f64).collect()
            }
        }
        DataType::Int32 => {
            if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| v as f64).collect()
            }
        }
        // Half floats, as 16-bit patterns: two raw bytes each, or one per
        // entry of int32_data.
        DataType::Float16 | DataType::Bfloat16 => {
            let bits: Vec<u16> = if !raw.is_empty() {
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| v as u16).collect()
            };
            let half = if dt == DataType::Float16 {
                f16_value
            } else {
                bf16_value
            };
            bits.into_iter().map(half).collect()
        }
        DataType::Bool => {
            if !raw.is_empty() {
                raw.iter().map(|&b| f64::from(u8::from(b != 0))).collect()
            } else {
                t.int32_data
                    .iter()
                    .map(|&v| f64::from(u8::from(v != 0)))
                    .collect()
            }
        }
        other => {
            return Err(invalid(
                name,
                format!("data type {other:?} is not supported"),
            ));
        }
    };
    if data.len() != count {
        return Err(invalid(
            name,
            format!("{} values for shape {dims:?}", data.len()),
        ));
    }
    ArrayD::from_shape_vec(IxDyn(&dims), data).map_err(|e| invalid(name, e.to_string()))
}

/// The value of a `Constant` node: a tensor, or a scalar or list of
/// floats or integers.
fn constant_value(n: &NodeProto) -> Result<ArrayD<f64>, ImportError> {
    let list = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&[v.len()]), v);
    let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    let a = |name| attr(n, name);
    if let Some(t) = a("value").and_then(|a| a.t.as_ref()) {
        return tensor_to_array(t);
    }
    let v = if let Some(f) = a("value_float").and_then(|a| a.f) {
        scalar(f64::from(f))
    } else if let Some(i) = a("value_int").and_then(|a| a.i) {
        scalar(i as f64)
    } else if let Some(fs) = a("value_floats") {
        list(fs.floats.iter().map(|&f| f64::from(f)).collect())
            .map_err(|e| invalid(n.name(), e.to_string()))?
    } else if let Some(is) = a("value_ints") {
        list(is.ints.iter().map(|&i| i as f64).collect())
            .map_err(|e| invalid(n.name(), e.to_string()))?
    } else {
        return Err(unsupported(
            n,
            "only the value, value_float(s) and value_int(s) forms",
        ));
    };
    Ok(v)
}

/// An IEEE half-precision float from its bits.
fn f16_value(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let fraction = f64::from(h & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// A bfloat16 from its bits: the top half of an f32.
fn bf16_value(h: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(h) << 16))
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

fn usize_list(n: &NodeProto, v: &[i64], what: &str) -> Result<Vec<usize>, ImportError> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| invalid(n.name(), format!("negative {what}"))))
        .collect()
}

fn pair(n: &NodeProto, name: &str, default: usize) -> Result<[usize; 2], ImportError> {
    match attr_ints(n, name) {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 => {
            let u = usize_list(n, &v, name)?;
            Ok([u[0], u[1]])
        }
        Some(_) => Err(unsupported(
            n,
            format!("{name} must have 2 entries (2-D only)"),
        )),
    }
}

fn pads(n: &NodeProto) -> Result<[usize; 4], ImportError> {
    if let Some(p) = attr_s(n, "auto_pad")
        && p != "NOTSET"
        && p != "VALID"
    {
        return Err(unsupported(n, format!("auto_pad {p}")));
    }
    match attr_ints(n, "pads") {
        None => Ok([0; 4]),
        Some(v) if v.len() == 4 => {
            let u = usize_list(n, &v, "pads")?;
            // ONNX order: [top, left, bottom, right]
            Ok([u[0], u[1], u[2], u[3]])
        }
        Some(_) => Err(unsupported(n, "pads must have 4 entries (2-D only)")),
    }
}

/// A view of constant `a` broadcast to `shape` (which
/// [`broadcast_shape`] gave).
fn broadcast_to<'a>(
    n: &NodeProto,
    a: &'a ArrayD<f64>,
    shape: &[usize],
) -> Result<ArrayViewD<'a, f64>, ImportError> {
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| invalid(n.name(), "broadcast"))
}

fn broadcast_shape(n: &NodeProto, a: &[usize], b: &[usize]) -> Result<Vec<usize>, ImportError> {
    hush_core::plan::plain::broadcast_shape(a, b).map_err(|e| invalid(n.name(), e.to_string()))
}

impl Builder {
    fn value(&mut self, name: &str, shape: Vec<usize>) -> usize {
        if self.oversize.is_none() && !hush_core::plan::shape_within_limits(&shape) {
            self.oversize = Some(name.to_string());
        }
        self.plan.values.push(ValueInfo {
            name: name.to_string(),
            shape,
        });
        self.plan.values.len() - 1
    }

    /// Fails if a value was given a shape over the plan's limits.
    fn check_sizes(&mut self) -> Result<(), ImportError> {
        match self.oversize.take() {
            Some(name) => Err(invalid(&name, "shape over the size limit")),
            None => Ok(()),
        }
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        self.plan.values[v].shape.clone()
    }

    fn weight(&mut self, name: &str, t: ArrayD<f64>) -> usize {
        self.plan.weights.push(WeightInfo {
            name: name.to_string(),
            shape: t.shape().to_vec(),
        });
        self.weights.push(t);
        self.weights.len() - 1
    }

    fn emit(&mut self, n: &NodeProto, op: Op, inputs: Vec<usize>, out_shape: Vec<usize>) -> usize {
        let out_name = n.output.first().cloned().unwrap_or_default();
        let v = self.add_node(n.name().to_string(), &out_name, op, inputs, out_shape);
        self.names.insert(out_name, Entry::Secret(v));
        v
    }

    /// Adds plan node `node`, `op` of `inputs`, whose output is a new value
    /// named `value` of `shape`; returns that value.
    fn add_node(
        &mut self,
        node: String,
        value: &str,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        let v = self.value(value, shape);
        // Moving elements keeps booleans boolean and integers integers (zero
        // padding included).
        let moves = matches!(
            op,
            Op::Reshape { .. }
                | Op::Transpose { .. }
                | Op::Select { .. }
                | Op::Concat { .. }
                | Op::Expand { .. }
                | Op::Pad { .. }
        );
        if moves && inputs.iter().all(|i| self.booleans.contains(i)) {
            self.booleans.insert(v);
        } else if moves && inputs.iter().all(|&i| self.is_integer(i)) {
            self.integers.insert(v);
        }
        self.plan.nodes.push(Node {
            name: node,
            op,
            inputs,
            output: v,
        });
        self.producer.insert(v, self.plan.nodes.len() - 1);
        v
    }

    /// An intermediate node of `n` (an ONNX node that becomes several plan
    /// nodes): its value is named `<node>.<step>`, which no graph name
    /// refers to.
    fn step(
        &mut self,
        n: &NodeProto,
        step: &str,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        let name = format!("{}.{step}", n.name());
        self.add_node(name.clone(), &name, op, inputs, shape)
    }

    /// A node of `n` that is its output when `last` says so (the value then
    /// bears the output's name), and otherwise the intermediate `step`.
    fn step_or_output(
        &mut self,
        n: &NodeProto,
        last: Last,
        step: &str,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        match last {
            Last::Output => self.emit(n, op, inputs, shape),
            Last::Step => self.step(n, step, op, inputs, shape),
        }
    }

    fn get(&self, n: &NodeProto, i: usize) -> Result<Entry, ImportError> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(n.name(), format!("missing input {i}")))?;
        self.names.get(name).cloned().ok_or_else(|| {
            invalid(
                n.name(),
                format!("input '{name}' is not defined before use"),
            )
        })
    }

    fn opt(&self, n: &NodeProto, i: usize) -> Result<Option<Entry>, ImportError> {
        match n.input.get(i) {
            Some(s) if !s.is_empty() => self.get(n, i).map(Some),
            _ => Ok(None),
        }
    }

    /// A public constant: a `Constant` node's value or a shape.
    fn set_public(&mut self, n: &NodeProto, v: ArrayD<f64>) {
        if let Some(o) = n.output.first() {
            self.names.insert(o.clone(), Entry::Public(Arc::new(v)));
        }
    }

    /// A constant computed by `n` from its constant inputs: still the
    /// owner's secret if any of them is (see [`Builder::derives_from_weights`]),
    /// public otherwise.
    fn set_folded(&mut self, n: &NodeProto, v: ArrayD<f64>) {
        let e = self.folded(n, v);
        if let Some(o) = n.output.first() {
            self.names.insert(o.clone(), e);
        }
    }

    /// `v`, computed by `n` from constants, as the entry it must be: a
    /// weight-derived value stays a weight, so that it reaches the plan as a
    /// weight only the owner holds and never as a public constant the client
    /// would read (a reshaped, transposed or scaled initializer is as secret
    /// as the initializer).
    fn folded(&self, n: &NodeProto, v: ArrayD<f64>) -> Entry {
        let v = Arc::new(v);
        if self.derives_from_weights(n) {
            Entry::Init(v)
        } else {
            Entry::Public(v)
        }
    }

    /// Charges a constant of `shape` that `n` is about to compute to the
    /// import's folding budget, before it is allocated: refused when one
    /// tensor would be over the plan's size limit, or the constants computed
    /// in all over [`ImportOptions::max_folded_elements`].
    fn charge_fold(&mut self, n: &NodeProto, shape: &[usize]) -> Result<(), ImportError> {
        // The plan's own limit (zero axes counted as one: ndarray cannot make
        // even an empty array whose other axes multiply past isize::MAX).
        if !hush_core::plan::shape_within_limits(shape) {
            return Err(invalid(
                n.name(),
                format!("constant of shape {shape:?} is over the size limit"),
            ));
        }
        let elements: usize = shape.iter().product();
        self.folded = self.folded.saturating_add(elements);
        if self.folded > self.max_folded {
            return Err(invalid(
                n.name(),
                format!(
                    "constant folding over {} elements in all (ImportOptions::max_folded_elements)",
                    self.max_folded
                ),
            ));
        }
        Ok(())
    }

    /// Whether an input of `n` is a float initializer or was computed from
    /// one (the model owner's secret).
    fn derives_from_weights(&self, n: &NodeProto) -> bool {
        n.input
            .iter()
            .filter(|i| !i.is_empty())
            .any(|i| matches!(self.names.get(i), Some(Entry::Init(_))))
    }

    fn alias(&mut self, n: &NodeProto, e: Entry) {
        if let Some(o) = n.output.first() {
            self.names.insert(o.clone(), e);
        }
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type();
        if !n.domain().is_empty() && n.domain() != "ai.onnx" {
            return Err(unsupported(n, format!("domain '{}'", n.domain())));
        }
        match op {
            "Identity" | "Dropout" => {
                let e = self.get(n, 0)?;
                self.alias(n, e);
            }
            "Constant" => self.set_public(n, constant_value(n)?),
            _ if self.all_public(n) && constant_unary(op).is_some() => {
                let f = constant_unary(op).unwrap_or_else(|| unreachable!("matched"));
                let a = self.public_of(n, 0)?;
                self.charge_fold(n, a.shape())?;
                let v = a.mapv(f);
                self.set_folded(n, v);
            }
            "Shape" => {
                let shape = self.shape_of(&self.get(n, 0)?);
                let v: Vec<f64> = shape.iter().map(|&d| d as f64).collect();
                let len = v.len();
                self.set_public(
                    n,
                    ArrayD::from_shape_vec(IxDyn(&[len]), v)
                        .map_err(|e| invalid(n.name(), e.to_string()))?,
                );
            }
            "Cast" => self.cast(n)?,
            "Gather" | "Unsqueeze" | "Concat" if self.all_public(n) => self.fold_public(n)?,
            "Gather" if matches!(self.get(n, 1)?, Entry::Secret(_)) => self.gather_computed(n)?,
            "Equal" if !self.all_public(n) => self.equal(n)?,
            "Equal" | "Range" | "ConstantOfShape" => self.fold_more(n)?,
            "Where" => self.where_op(n)?,
            "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => self.compare(n)?,
            "Not" | "And" | "Or" | "Xor" => self.logic(n)?,
            "Gather" | "Slice" | "Split" | "Squeeze" | "Unsqueeze" | "Concat" | "Expand"
            | "Tile" | "Transpose" | "Pad" | "Resize" => self.movement(n)?,
            "Exp" | "Sqrt" | "Log" | "Erf" | "Reciprocal" | "Gelu" | "HardSigmoid"
            | "HardSwish" | "GlobalMaxPool" => self.unary_more(n)?,
            "Softmax" | "LogSoftmax" => self.softmax(n)?,
            "Div" | "Pow" => self.div_pow(n)?,
            "ReduceMean" | "ReduceSum" => self.reduce(n)?,
            "ReduceMax" | "ReduceMin" => self.reduce_max_min(n)?,
            "InstanceNormalization" | "GroupNormalization" => self.group_norm(n)?,
            "Elu" | "Selu" | "Celu" => self.elu(n)?,
            "Softsign" => self.softsign(n)?,
            "Softplus" | "Mish" => self.softplus(n)?,
            "PRelu" => self.prelu(n)?,
            "ReduceL1" | "ReduceL2" | "ReduceSumSquare" => self.reduce_norm(n)?,
            "DepthToSpace" | "SpaceToDepth" => self.depth_space(n)?,
            "ConvTranspose" => self.conv_transpose(n)?,
            "Einsum" => self.einsum(n)?,
            "LayerNormalization" => self.layer_norm(n)?,
            "ArgMax" => {
                let x = self.secret(n, 0)?;
                let s = self.shape(x);
                let axis = norm_axis(n, attr_i(n, "axis", 0), s.len())?;
                if attr_i(n, "select_last_index", 0) != 0 {
                    return Err(unsupported(n, "select_last_index"));
                }
                let keepdims = attr_i(n, "keepdims", 1) != 0;
                let mut out = s.clone();
                if keepdims {
                    out[axis] = 1;
                } else {
                    out.remove(axis);
                }
                let v = self.emit(n, Op::ArgMax { axis, keepdims }, vec![x], out);
                self.integers.insert(v);
            }
            "Conv" => self.conv(n)?,
            "Gemm" => self.gemm(n)?,
            "MatMul" => self.matmul(n)?,
            "Add" | "Sub" | "Mul" => self.elementwise(n)?,
            "BatchNormalization" => self.batch_norm(n)?,
            "Relu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "Clip" => self.unary(n)?,
            "Max" | "Min" => self.max_min(n)?,
            "Sum" | "Mean" => self.sum_mean(n)?,
            "Neg" | "Abs" => {
                let x = self.secret(n, 0)?;
                if n.op_type() == "Neg" {
                    // Local: a product with a public integer.
                    let s = self.shape(x);
                    self.emit(n, Op::MulConst(scalar(-1.0)), vec![x], s);
                } else {
                    self.abs(n, x, Last::Output);
                }
            }
            "MaxPool" | "AveragePool" => self.pool(n)?,
            "GlobalAveragePool" => {
                let x = self.secret(n, 0)?;
                let s = self.shape(x);
                if s.len() != 4 {
                    return Err(invalid(n.name(), "GlobalAveragePool needs [N,C,H,W]"));
                }
                self.emit(n, Op::GlobalAveragePool, vec![x], vec![s[0], s[1], 1, 1]);
            }
            "Flatten" | "Reshape" => self.reshape(n)?,
            "Sign" => {
                // [x > 0] − [x < 0] (0 at 0, as ONNX), both tests in one batch.
                let x = self.secret(n, 0)?;
                let tests = [(-1.0, 0.0, 1.0), (1.0, 0.0, -1.0)];
                let s = self.sign_test_pair(n, x, tests, Last::Output)?;
                self.integers.insert(s);
            }
            "Sin" | "Cos" | "Floor" | "Ceil" | "Round" => {
                return Err(unsupported(n, "only on constants"));
            }
            _ => return Err(unsupported(n, "")),
        }
        Ok(())
    }

    fn all_public(&self, n: &NodeProto) -> bool {
        n.input.iter().filter(|i| !i.is_empty()).all(|i| {
            matches!(
                self.names.get(i),
                Some(Entry::Public(_)) | Some(Entry::Init(_))
            )
        })
    }

    /// Integers of an optional constant input, or of an attribute.
    fn ints_of(
        &self,
        n: &NodeProto,
        input: usize,
        attr_name: &str,
    ) -> Result<Option<Vec<i64>>, ImportError> {
        match self.opt(n, input)? {
            Some(Entry::Public(a)) | Some(Entry::Init(a)) => {
                Ok(Some(a.iter().map(|&v| v as i64).collect()))
            }
            Some(Entry::Secret(_)) => {
                Err(unsupported(n, format!("input {input} must be constant")))
            }
            None => Ok(attr_ints(n, attr_name)),
        }
    }

    /// Equal, Where, Range, ConstantOfShape: shape arithmetic on constants.
    fn fold_more(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if !self.all_public(n) {
            return Err(unsupported(n, "only on constants (shape arithmetic)"));
        }
        let v = match n.op_type() {
            "Equal" => {
                let (a, b) = (self.public_of(n, 0)?, self.public_of(n, 1)?);
                let shape = broadcast_shape(n, a.shape(), b.shape())?;
                self.charge_fold(n, &shape)?;
                let (a, b) = (broadcast_to(n, &a, &shape)?, broadcast_to(n, &b, &shape)?);
                ndarray::Zip::from(&a)
                    .and(&b)
                    .map_collect(|&x, &y| if x == y { 1.0 } else { 0.0 })
            }
            "Where" => {
                let (c, a, b) = (
                    self.public_of(n, 0)?,
                    self.public_of(n, 1)?,
                    self.public_of(n, 2)?,
                );
                let shape =
                    broadcast_shape(n, &broadcast_shape(n, c.shape(), a.shape())?, b.shape())?;
                self.charge_fold(n, &shape)?;
                let (c, a, b) = (
                    broadcast_to(n, &c, &shape)?,
                    broadcast_to(n, &a, &shape)?,
                    broadcast_to(n, &b, &shape)?,
                );
                ndarray::Zip::from(&c)
                    .and(&a)
                    .and(&b)
                    .map_collect(|&c, &a, &b| if c != 0.0 { a } else { b })
            }
            "Range" => {
                let (start, limit, delta) = (
                    self.public_of(n, 0)?,
                    self.public_of(n, 1)?,
                    self.public_of(n, 2)?,
                );
                let (s0, l, d) = (
                    start.iter().next().copied().unwrap_or(0.0),
                    limit.iter().next().copied().unwrap_or(0.0),
                    delta.iter().next().copied().unwrap_or(1.0),
                );
                if d == 0.0 {
                    return Err(invalid(n.name(), "zero delta"));
                }
                let count = ((l - s0) / d).ceil().max(0.0) as usize;
                self.charge_fold(n, &[count])?;
                ArrayD::from_shape_fn(IxDyn(&[count]), |ix| s0 + d * ix[0] as f64)
            }
            _ => {
                let shape: Vec<usize> = self.public_of(n, 0)?.iter().map(|&v| v as usize).collect();
                self.charge_fold(n, &shape)?;
                let fill = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .map(tensor_to_array)
                    .transpose()?
                    .and_then(|t| t.iter().next().copied())
                    .unwrap_or(0.0);
                ArrayD::from_elem(IxDyn(&shape), fill)
            }
        };
        self.set_folded(n, v);
        Ok(())
    }

    /// Data movement on computed values (all local under MPC).
    fn movement(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type();
        if op == "Concat" {
            let ids: Vec<usize> = (0..n.input.len())
                .map(|i| self.secret(n, i))
                .collect::<Result<_, _>>()?;
            let shapes: Vec<Vec<usize>> = ids.iter().map(|&i| self.shape(i)).collect();
            let Some(first) = shapes.first() else {
                return Err(invalid(n.name(), "Concat without inputs"));
            };
            let axis = norm_axis(n, attr_i(n, "axis", 0), first.len())?;
            let agree = |s: &Vec<usize>| {
                s.len() == first.len()
                    && s.iter()
                        .zip(first)
                        .enumerate()
                        .all(|(a, (d, f))| a == axis || d == f)
            };
            if !shapes.iter().all(agree) {
                return Err(invalid(n.name(), "Concat inputs of different shapes"));
            }
            let mut out = first.clone();
            out[axis] = shapes
                .iter()
                .try_fold(0usize, |t, s| t.checked_add(s[axis]))
                .ok_or_else(|| invalid(n.name(), "Concat size overflows"))?;
            self.emit(n, Op::Concat { axis }, ids, out);
            return Ok(());
        }
        // The same movement applies to computed values (a node) and to
        // constants (folded now).
        let x = match self.get(n, 0)? {
            Entry::Secret(v) => Src::Value(v),
            Entry::Public(a) | Entry::Init(a) => Src::Const(a),
        };
        let s = match &x {
            Src::Value(v) => self.shape(*v),
            Src::Const(a) => a.shape().to_vec(),
        };
        let rank = s.len();
        let full = |d: usize| (0..d).collect::<Vec<usize>>();
        match op {
            "Transpose" => {
                let perm: Vec<usize> = match attr_ints(n, "perm") {
                    Some(p) => usize_list(n, &p, "perm")?,
                    None => (0..rank).rev().collect(),
                };
                // A permutation of the axes: each once, each in range.
                if perm.len() != rank || (0..rank).any(|a| !perm.contains(&a)) {
                    return Err(invalid(n.name(), "perm is not a permutation of the axes"));
                }
                let out = perm.iter().map(|&a| s[a]).collect();
                self.finish_move(n, &x, Op::Transpose { perm }, out)?;
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = self.ints_of(n, 1, "axes")?;
                let out: Vec<usize> = if op == "Squeeze" {
                    match axes {
                        None => s.iter().copied().filter(|&d| d != 1).collect(),
                        Some(ax) => {
                            let ax: Vec<usize> = ax
                                .iter()
                                .map(|&a| norm_axis(n, a, rank))
                                .collect::<Result<_, _>>()?;
                            if let Some(&a) = ax.iter().find(|&&a| s[a] != 1) {
                                return Err(invalid(
                                    n.name(),
                                    format!("Squeeze of axis {a}, of size {} in {s:?}", s[a]),
                                ));
                            }
                            s.iter()
                                .enumerate()
                                .filter(|(i, _)| !ax.contains(i))
                                .map(|(_, &d)| d)
                                .collect()
                        }
                    }
                } else {
                    let ax = axes.ok_or_else(|| invalid(n.name(), "Unsqueeze without axes"))?;
                    let r = rank + ax.len();
                    let mut ax: Vec<usize> = ax
                        .iter()
                        .map(|&a| norm_axis(n, a, r))
                        .collect::<Result<_, _>>()?;
                    ax.sort_unstable();
                    let mut out = s.clone();
                    for a in ax {
                        out.insert(a, 1);
                    }
                    out
                };
                self.finish_move(n, &x, Op::Reshape { shape: out.clone() }, out)?;
            }
            "Resize" => self.resize(n, &x, &s)?,
            "Tile" => {
                let repeats = self
                    .ints_of(n, 1, "repeats")?
                    .ok_or_else(|| invalid(n.name(), "repeats missing"))?;
                let repeats = usize_list(n, &repeats, "repeats")?;
                if repeats.len() != rank {
                    return Err(invalid(n.name(), "one repeat per axis"));
                }
                let out: Vec<usize> = s
                    .iter()
                    .zip(&repeats)
                    .map(|(&d, &r)| d.checked_mul(r))
                    .collect::<Option<_>>()
                    .filter(|out: &Vec<usize>| hush_core::plan::shape_within_limits(out))
                    .ok_or_else(|| invalid(n.name(), "tiled shape over the size limit"))?;
                // Axis a of the output reads index i mod d of the input.
                let picks = s
                    .iter()
                    .zip(&out)
                    .map(|(&d, &o)| (0..o).map(|i| i % d).collect())
                    .collect();
                self.finish_move(n, &x, Op::Select { picks }, out)?;
            }
            "Expand" => {
                let target: Vec<usize> =
                    self.public_of(n, 1)?.iter().map(|&v| v as usize).collect();
                let out = broadcast_shape(n, &s, &target)?;
                self.finish_move(n, &x, Op::Expand { shape: out.clone() }, out)?;
            }
            "Pad" => {
                let mode = attr_s(n, "mode").unwrap_or_else(|| "constant".into());
                if mode != "constant" {
                    return Err(unsupported(n, format!("mode {mode}")));
                }
                if let Some(Entry::Public(v)) | Some(Entry::Init(v)) = self.opt(n, 2)?
                    && v.iter().any(|&x| x != 0.0)
                {
                    return Err(unsupported(n, "non-zero padding value"));
                }
                let p = self
                    .ints_of(n, 1, "pads")?
                    .ok_or_else(|| invalid(n.name(), "pads missing"))?;
                let axes: Vec<usize> = match self.ints_of(n, 3, "axes_unused")? {
                    Some(a) => a
                        .iter()
                        .map(|&v| norm_axis(n, v, rank))
                        .collect::<Result<_, _>>()?,
                    None => full(rank),
                };
                if p.len() != 2 * axes.len() || p.iter().any(|&v| v < 0) {
                    return Err(unsupported(n, "negative or malformed pads"));
                }
                let mut pads = vec![(0usize, 0usize); rank];
                for (k, &a) in axes.iter().enumerate() {
                    pads[a] = (p[k] as usize, p[k + axes.len()] as usize);
                }
                let out = s
                    .iter()
                    .zip(&pads)
                    .map(|(&d, &(b, a))| d.checked_add(b)?.checked_add(a))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| invalid(n.name(), "padded size overflows"))?;
                self.finish_move(n, &x, Op::Pad { pads }, out)?;
            }
            "Gather" => {
                let axis = norm_axis(n, attr_i(n, "axis", 0), rank)?;
                let idx = self.public_of(n, 1)?;
                if idx.ndim() > 1 {
                    return Err(unsupported(n, "multi-dimensional indices"));
                }
                let picks_axis = gather_indices(n, &idx, s[axis])?;
                let mut picks: Vec<Vec<usize>> = s.iter().map(|&d| full(d)).collect();
                picks[axis] = picks_axis.clone();
                let mut sel_shape = s.clone();
                sel_shape[axis] = picks_axis.len();
                let Src::Value(xv) = x else {
                    return Err(invalid(n.name(), "Gather on constants is folded elsewhere"));
                };
                if idx.ndim() == 0 {
                    let tmp = self.step(
                        n,
                        "gathered",
                        Op::Select { picks },
                        vec![xv],
                        sel_shape.clone(),
                    );
                    let mut out = sel_shape;
                    out.remove(axis);
                    self.emit(n, Op::Reshape { shape: out.clone() }, vec![tmp], out);
                } else {
                    self.emit(n, Op::Select { picks }, vec![xv], sel_shape);
                }
            }
            "Slice" => {
                let starts = self
                    .ints_of(n, 1, "starts")?
                    .ok_or_else(|| invalid(n.name(), "starts"))?;
                let ends = self
                    .ints_of(n, 2, "ends")?
                    .ok_or_else(|| invalid(n.name(), "ends"))?;
                let axes: Vec<usize> = match self.ints_of(n, 3, "axes")? {
                    Some(a) => a
                        .iter()
                        .map(|&v| norm_axis(n, v, rank))
                        .collect::<Result<_, _>>()?,
                    None => (0..starts.len()).collect(),
                };
                let steps = self
                    .ints_of(n, 4, "steps")?
                    .unwrap_or_else(|| vec![1; starts.len()]);
                if [ends.len(), axes.len(), steps.len()] != [starts.len(); 3]
                    || axes.iter().any(|&a| a >= rank)
                {
                    return Err(invalid(
                        n.name(),
                        "Slice starts, ends, axes and steps must be one per sliced axis",
                    ));
                }
                let mut picks: Vec<Vec<usize>> = s.iter().map(|&d| full(d)).collect();
                for (k, &a) in axes.iter().enumerate() {
                    let d = s[a] as i64;
                    let step = steps.get(k).copied().unwrap_or(1);
                    if step == 0 {
                        return Err(invalid(n.name(), "zero step"));
                    }
                    let clampi = |v: i64, lo: i64, hi: i64| v.clamp(lo, hi);
                    let norm = |v: i64| if v < 0 { v + d } else { v };
                    let (mut b, mut e) = (norm(starts[k]), norm(ends[k].clamp(-d - 1, d + 1)));
                    let mut idx = Vec::new();
                    if step > 0 {
                        b = clampi(b, 0, d);
                        e = clampi(e, 0, d);
                        let mut i = b;
                        while i < e {
                            idx.push(i as usize);
                            let Some(next) = i.checked_add(step) else {
                                break;
                            };
                            i = next;
                        }
                    } else {
                        b = clampi(b, -1, d - 1);
                        e = clampi(e, -1, d - 1);
                        let mut i = b;
                        while i > e {
                            idx.push(i as usize);
                            let Some(next) = i.checked_add(step) else {
                                break;
                            };
                            i = next;
                        }
                    }
                    picks[a] = idx;
                }
                let out = picks.iter().map(|p| p.len()).collect();
                self.finish_move(n, &x, Op::Select { picks }, out)?;
            }
            _ => {
                // Split
                let axis = norm_axis(n, attr_i(n, "axis", 0), rank)?;
                let parts = n.output.len();
                let sizes: Vec<usize> = match self.ints_of(n, 1, "split")? {
                    Some(v) => usize_list(n, &v, "split")?,
                    None => {
                        let k = s[axis].div_ceil(parts.max(1));
                        (0..parts)
                            .map(|i| k.min(s[axis].saturating_sub(i * k)))
                            .collect()
                    }
                };
                let total = sizes.iter().try_fold(0usize, |t, &k| t.checked_add(k));
                if sizes.len() != parts || total != Some(s[axis]) {
                    return Err(invalid(n.name(), "split sizes do not add up"));
                }
                let mut start = 0;
                for (i, &len) in sizes.iter().enumerate() {
                    let mut picks: Vec<Vec<usize>> = s.iter().map(|&d| full(d)).collect();
                    picks[axis] = (start..start + len).collect();
                    start += len;
                    let mut out = s.clone();
                    out[axis] = len;
                    let name = n.output[i].clone();
                    match &x {
                        Src::Value(xv) => {
                            let v = self.add_node(
                                format!("{}[{i}]", n.name()),
                                &name,
                                Op::Select { picks },
                                vec![*xv],
                                out,
                            );
                            self.names.insert(name, Entry::Secret(v));
                        }
                        Src::Const(a) => {
                            self.charge_fold(n, &out)?;
                            let v = layout::select(a, &picks)
                                .map_err(|e| invalid(n.name(), e.to_string()))?;
                            let e = self.folded(n, v);
                            self.names.insert(name, e);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Emits a movement node for a computed value, or applies it to a constant.
    fn finish_move(
        &mut self,
        n: &NodeProto,
        x: &Src,
        op: Op,
        out: Vec<usize>,
    ) -> Result<(), ImportError> {
        match x {
            Src::Value(v) => {
                self.emit(n, op, vec![*v], out);
            }
            Src::Const(a) => {
                self.charge_fold(n, &out)?;
                let r = match &op {
                    Op::Transpose { perm } => layout::transpose(a, perm),
                    Op::Select { picks } => layout::select(a, picks),
                    Op::Pad { pads } => layout::pad(a, pads, 0.0),
                    Op::Expand { shape } => layout::expand(a, shape),
                    Op::Reshape { shape } => layout::reshape(a, shape),
                    _ => return Err(unsupported(n, "on constants")),
                }
                .map_err(|e| invalid(n.name(), e.to_string()))?;
                self.set_folded(n, r);
            }
        }
        Ok(())
    }

    fn unary_more(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let (op, out) = match n.op_type() {
            "Exp" => (Op::Exp, s),
            "Sqrt" => (Op::Sqrt, s),
            "Log" => (Op::Log, s),
            "Erf" => (Op::Erf, s),
            "Reciprocal" => (Op::Reciprocal, s),
            "Gelu" => {
                let approx = attr_s(n, "approximate").unwrap_or_else(|| "none".into());
                (
                    Op::Gelu {
                        tanh: approx == "tanh",
                    },
                    s,
                )
            }
            "HardSigmoid" => (
                Op::HardSigmoid {
                    alpha: attr_f(n, "alpha", 0.2) as f64,
                    beta: attr_f(n, "beta", 0.5) as f64,
                },
                s,
            ),
            "HardSwish" => (Op::HardSwish, s),
            _ => {
                if s.len() != 4 {
                    return Err(invalid(n.name(), "GlobalMaxPool needs [N,C,H,W]"));
                }
                (Op::GlobalMaxPool, vec![s[0], s[1], 1, 1])
            }
        };
        self.emit(n, op, vec![x], out);
        Ok(())
    }

    fn div_pow(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (a, b) = (self.get(n, 0)?, self.get(n, 1)?);
        if n.op_type() == "Pow" {
            let Entry::Secret(x) = a else {
                return self.fold_binary(n, |x, y| x.powf(y));
            };
            let e = match b {
                Entry::Public(e) | Entry::Init(e) if e.len() == 1 => {
                    e.iter().next().copied().unwrap_or(0.0)
                }
                _ => return Err(unsupported(n, "exponent must be a constant scalar")),
            };
            let s = self.shape(x);
            let op = match e {
                1.0 => {
                    self.alias(n, Entry::Secret(x));
                    return Ok(());
                }
                2.0 => Op::Square,
                0.5 => Op::Sqrt,
                -1.0 => Op::Reciprocal,
                _ => return Err(unsupported(n, format!("exponent {e}"))),
            };
            self.emit(n, op, vec![x], s);
            return Ok(());
        }
        match (a, b) {
            (Entry::Secret(x), Entry::Secret(y)) => {
                let out = broadcast_shape(n, &self.shape(x), &self.shape(y))?;
                self.emit(n, Op::Div, vec![x, y], out);
            }
            (Entry::Secret(x), Entry::Public(c)) => {
                let out = broadcast_shape(n, &self.shape(x), c.shape())?;
                self.emit(n, Op::MulConst(constant(c.mapv(|v| 1.0 / v))), vec![x], out);
            }
            (Entry::Secret(x), Entry::Init(c)) => {
                let out = broadcast_shape(n, &self.shape(x), c.shape())?;
                let w = self.weight(&n.input[1], c.mapv(|v| 1.0 / v));
                self.emit(n, Op::MulWeight { weight: w }, vec![x], out);
            }
            (Entry::Public(c), Entry::Secret(y)) => self.constant_over(n, c, false, y)?,
            (Entry::Init(c), Entry::Secret(y)) => self.constant_over(n, c, true, y)?,
            _ => return self.fold_binary(n, |x, y| x / y),
        }
        Ok(())
    }

    /// `c / y`: the reciprocal of `y`, times `c` (the owner's weight when
    /// `is_weight`, a public constant otherwise). A public 1 needs no product;
    /// a weight always gets one, so that the plan does not show its value.
    fn constant_over(
        &mut self,
        n: &NodeProto,
        c: Arc<ArrayD<f64>>,
        is_weight: bool,
        y: usize,
    ) -> Result<(), ImportError> {
        let s = self.shape(y);
        if !is_weight && c.len() == 1 && c.iter().all(|&v| v == 1.0) {
            self.emit(n, Op::Reciprocal, vec![y], s);
            return Ok(());
        }
        let out = broadcast_shape(n, &s, c.shape())?;
        let r = self.step(n, "reciprocal", Op::Reciprocal, vec![y], s);
        let c = Arc::unwrap_or_clone(c);
        let op = self.constant_op(Combine::Mul, &n.input[0], c, is_weight);
        self.emit(n, op, vec![r], out);
        Ok(())
    }

    /// The op that multiplies by, or adds, constant `c`: a weight named
    /// `name` when `is_weight` (the owner's secret: its values never reach
    /// the plan the client reads), a public constant of the plan otherwise.
    fn constant_op(&mut self, how: Combine, name: &str, c: ArrayD<f64>, is_weight: bool) -> Op {
        match (how, is_weight) {
            (Combine::Mul, true) => Op::MulWeight {
                weight: self.weight(name, c),
            },
            (Combine::Add, true) => Op::AddWeight {
                weight: self.weight(name, c),
            },
            (Combine::Mul, false) => Op::MulConst(constant(c)),
            (Combine::Add, false) => Op::AddConst(constant(c)),
        }
    }

    fn fold_binary(&mut self, n: &NodeProto, f: fn(f64, f64) -> f64) -> Result<(), ImportError> {
        let (a, b) = (self.public_of(n, 0)?, self.public_of(n, 1)?);
        let shape = broadcast_shape(n, a.shape(), b.shape())?;
        self.charge_fold(n, &shape)?;
        let (a, b) = (broadcast_to(n, &a, &shape)?, broadcast_to(n, &b, &shape)?);
        let v = ndarray::Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y));
        self.set_folded(n, v);
        Ok(())
    }

    fn reduce(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Some(r) = self.reduction(n)? else {
            return Ok(());
        };
        let (axes, keepdims) = (r.axes, r.keepdims);
        let op = if n.op_type() == "ReduceMean" {
            Op::ReduceMean { axes, keepdims }
        } else {
            Op::ReduceSum { axes, keepdims }
        };
        self.emit(n, op, vec![r.x], r.out);
        Ok(())
    }

    /// Reduction `n`'s operand, axes (attribute, or input 1 from opset 18;
    /// sorted, without repeats) and output shape; `None` when it reduces
    /// nothing (`noop_with_empty_axes` and no axes), after making its output
    /// the input itself.
    fn reduction(&mut self, n: &NodeProto) -> Result<Option<Reduction>, ImportError> {
        let x = self.secret(n, 0)?;
        let shape = self.shape(x);
        let keepdims = attr_i(n, "keepdims", 1) != 0;
        let mut axes: Vec<usize> = match self.ints_of(n, 1, "axes")? {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&v| norm_axis(n, v, shape.len()))
                .collect::<Result<_, _>>()?,
            _ => {
                if attr_i(n, "noop_with_empty_axes", 0) != 0 {
                    self.alias(n, Entry::Secret(x));
                    return Ok(None);
                }
                (0..shape.len()).collect()
            }
        };
        axes.sort_unstable();
        axes.dedup();
        let out = reduced_shape(&shape, &axes, keepdims);
        Ok(Some(Reduction {
            x,
            shape,
            axes,
            keepdims,
            out,
        }))
    }

    fn layer_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let axis = norm_axis(n, attr_i(n, "axis", -1), s.len())?;
        if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
            return Err(unsupported(n, "mean and inverse deviation outputs"));
        }
        let Entry::Init(scale) = self.get(n, 1)? else {
            return Err(unsupported(n, "scale must be an initializer"));
        };
        for p in std::iter::once(&scale).chain(match self.opt(n, 2)? {
            Some(Entry::Init(ref b)) => Some(b),
            _ => None,
        }) {
            if broadcast_shape(n, &s, p.shape())? != s {
                return Err(invalid(
                    n.name(),
                    format!("scale or bias {:?} for input {s:?}", p.shape()),
                ));
            }
        }
        let epsilon = attr_f(n, "epsilon", 1e-5) as f64;
        // Over the axes from `axis` on: the plan's LayerNorm normalizes the
        // last axis, so those axes are flattened into one around it.
        let normed = if axis + 1 == s.len() {
            self.step(
                n,
                "normalized",
                Op::LayerNorm { epsilon },
                vec![x],
                s.clone(),
            )
        } else {
            let view = vec![s[..axis].iter().product(), s[axis..].iter().product()];
            let reshape = |shape: &Vec<usize>| Op::Reshape {
                shape: shape.clone(),
            };
            let v = self.step(n, "flattened", reshape(&view), vec![x], view.clone());
            let v = self.step(n, "normalized", Op::LayerNorm { epsilon }, vec![v], view);
            self.step(n, "unflattened", reshape(&s), vec![v], s.clone())
        };
        let sid = self.weight(&n.input[1], Arc::unwrap_or_clone(scale));
        let bias = self.opt(n, 2)?;
        if bias.is_none() {
            self.emit(n, Op::MulWeight { weight: sid }, vec![normed], s);
            return Ok(());
        }
        let scaled = self.step(
            n,
            "scaled",
            Op::MulWeight { weight: sid },
            vec![normed],
            s.clone(),
        );
        let Some(Entry::Init(b)) = bias else {
            return Err(unsupported(n, "bias must be an initializer"));
        };
        let bid = self.weight(&n.input[2], Arc::unwrap_or_clone(b));
        self.emit(n, Op::AddWeight { weight: bid }, vec![scaled], s);
        Ok(())
    }

    /// Whether computed value `v` is known to hold integers (booleans
    /// included).
    fn is_integer(&self, v: usize) -> bool {
        self.integers.contains(&v) || self.booleans.contains(&v)
    }

    /// The shape of what a name stands for, computed or constant.
    fn shape_of(&self, e: &Entry) -> Vec<usize> {
        match e {
            Entry::Secret(v) => self.shape(*v),
            Entry::Public(a) | Entry::Init(a) => a.shape().to_vec(),
        }
    }

    fn secret(&self, n: &NodeProto, i: usize) -> Result<usize, ImportError> {
        match self.get(n, i)? {
            Entry::Secret(v) => Ok(v),
            _ => Err(unsupported(
                n,
                format!("input {i} is constant where a computed value was expected"),
            )),
        }
    }

    fn public_of(&self, n: &NodeProto, i: usize) -> Result<Arc<ArrayD<f64>>, ImportError> {
        match self.get(n, i)? {
            Entry::Public(a) | Entry::Init(a) => Ok(a),
            Entry::Secret(_) => Err(unsupported(n, format!("input {i} must be constant"))),
        }
    }

    /// Gather / Unsqueeze / Concat on constants (shape arithmetic; Squeeze
    /// and Expand of constants are [`Builder::movement`]s).
    fn fold_public(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let out = match n.op_type() {
            "Gather" => {
                let data = self.public_of(n, 0)?;
                let idx = self.public_of(n, 1)?;
                let axis = attr_i(n, "axis", 0);
                let axis = if axis < 0 {
                    axis + data.ndim() as i64
                } else {
                    axis
                } as usize;
                if axis >= data.ndim() {
                    return Err(invalid(n.name(), "axis out of range"));
                }
                let picks = gather_indices(n, &idx, data.shape()[axis])?;
                let mut sel_shape = data.shape().to_vec();
                sel_shape[axis] = picks.len();
                self.charge_fold(n, &sel_shape)?;
                let sel = data.select(Axis(axis), &picks);
                if idx.ndim() == 0 {
                    sel.index_axis(Axis(axis), 0).to_owned()
                } else {
                    sel
                }
            }
            "Unsqueeze" => {
                let mut data = Arc::unwrap_or_clone(self.public_of(n, 0)?);
                self.charge_fold(n, data.shape())?;
                let axes = match self.opt(n, 1)? {
                    Some(Entry::Public(a)) | Some(Entry::Init(a)) => {
                        a.iter().map(|&v| v as i64).collect()
                    }
                    _ => attr_ints(n, "axes").unwrap_or_default(),
                };
                let rank = (data.ndim() + axes.len()) as i64;
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| if a < 0 { a + rank } else { a } as usize)
                    .collect();
                axes.sort_unstable();
                for a in axes {
                    if a > data.ndim() {
                        return Err(invalid(n.name(), "axis out of range"));
                    }
                    data.insert_axis_inplace(Axis(a));
                }
                data
            }
            _ => {
                let axis = attr_i(n, "axis", 0);
                let parts: Vec<Arc<ArrayD<f64>>> = (0..n.input.len())
                    .map(|i| self.public_of(n, i))
                    .collect::<Result<_, _>>()?;
                let rank = parts.first().map_or(1, |p| p.ndim()) as i64;
                let axis = if axis < 0 { axis + rank } else { axis };
                // ndarray's concatenate asserts (panics) on another rank.
                if !(0..rank).contains(&axis) || parts.iter().any(|p| p.ndim() as i64 != rank) {
                    return Err(invalid(n.name(), "Concat axis or input ranks out of range"));
                }
                let axis = axis as usize;
                let total = parts
                    .iter()
                    .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
                    .unwrap_or(usize::MAX);
                self.charge_fold(n, &[total])?;
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                ndarray::concatenate(Axis(axis), &views)
                    .map_err(|e| invalid(n.name(), e.to_string()))?
            }
        };
        self.set_folded(n, out);
        Ok(())
    }

    fn conv(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let w = self.kernel(n)?;
        let attrs = ConvAttrs {
            stride: pair(n, "strides", 1)?,
            padding: pads(n)?,
            dilation: pair(n, "dilations", 1)?,
            groups: attr_i(n, "group", 1).max(1) as usize,
        };
        self.conv_with_bias(n, x, Arc::unwrap_or_clone(w), attrs)
    }

    /// A convolution's kernel (input 1): the owner's 2-D kernel.
    fn kernel(&self, n: &NodeProto) -> Result<Arc<ArrayD<f64>>, ImportError> {
        let Entry::Init(w) = self.get(n, 1)? else {
            return Err(unsupported(
                n,
                "the kernel must be an initializer (the owner's weight)",
            ));
        };
        if w.ndim() != 4 {
            return Err(unsupported(n, "only 2-D convolutions"));
        }
        Ok(w)
    }

    /// `x` convolved with `kernel` (the owner's weight, registered under
    /// input 1's name), plus `n`'s optional bias (input 2) per channel.
    fn conv_with_bias(
        &mut self,
        n: &NodeProto,
        x: usize,
        kernel: ArrayD<f64>,
        attrs: ConvAttrs,
    ) -> Result<(), ImportError> {
        let xs = self.shape(x);
        if xs.len() != 4 {
            return Err(invalid(
                n.name(),
                format!("{} input must be [N,C,H,W]", n.op_type()),
            ));
        }
        let p: Conv2dParams = attrs.into();
        // Channels, groups and window, as the evaluation will check them.
        let [_, o, oh, ow] = conv2d_output_shape(&xs, kernel.shape(), &p)
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let out = vec![xs[0], o, oh, ow];
        let wid = self.weight(&n.input[1], kernel);
        let conv = Op::Conv { weight: wid, attrs };
        let Some(bias) = self.opt(n, 2)? else {
            self.emit(n, conv, vec![x], out);
            return Ok(());
        };
        let Entry::Init(b) = bias else {
            return Err(unsupported(n, "the bias must be an initializer"));
        };
        let conv_out = self.emit(n, conv, vec![x], out.clone());
        let b = Arc::unwrap_or_clone(b)
            .into_shape_with_order(IxDyn(&[1, o, 1, 1]))
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let bid = self.weight(&n.input[2], b);
        self.emit(n, Op::AddWeight { weight: bid }, vec![conv_out], out);
        Ok(())
    }

    fn gemm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if attr_i(n, "transA", 0) != 0 {
            return Err(unsupported(n, "transA"));
        }
        let x = self.secret(n, 0)?;
        let Entry::Init(b) = self.get(n, 1)? else {
            return Err(unsupported(
                n,
                "B must be an initializer (the owner's weight)",
            ));
        };
        let mut w = if attr_i(n, "transB", 0) != 0 {
            b.t().to_owned()
        } else {
            Arc::unwrap_or_clone(b)
        };
        let alpha = attr_f(n, "alpha", 1.0) as f64;
        if alpha != 1.0 {
            w.mapv_inplace(|v| v * alpha);
        }
        let xs = self.shape(x);
        if xs.len() != 2 || w.ndim() != 2 || xs[1] != w.shape()[0] {
            return Err(invalid(
                n.name(),
                format!("Gemm shapes {xs:?} · {:?}", w.shape()),
            ));
        }
        let out_shape = vec![xs[0], w.shape()[1]];
        let wid = self.weight(&n.input[1], w);
        let mm = self.emit(
            n,
            Op::MatMulWeight { weight: wid },
            vec![x],
            out_shape.clone(),
        );
        if let Some(c) = self.opt(n, 2)? {
            let Entry::Init(c) = c else {
                return Err(unsupported(n, "C must be an initializer"));
            };
            let beta = attr_f(n, "beta", 1.0) as f64;
            let mut c = Arc::unwrap_or_clone(c);
            c.mapv_inplace(|v| v * beta);
            if broadcast_shape(n, &out_shape, c.shape())? != out_shape {
                return Err(invalid(
                    n.name(),
                    format!("C of shape {:?} for a {out_shape:?} product", c.shape()),
                ));
            }
            let cid = self.weight(&n.input[2], c);
            self.emit(n, Op::AddWeight { weight: cid }, vec![mm], out_shape);
        }
        Ok(())
    }

    fn matmul(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        match (self.get(n, 0)?, self.get(n, 1)?) {
            (Entry::Secret(x), Entry::Init(w)) | (Entry::Secret(x), Entry::Public(w)) => {
                let xs = self.shape(x);
                if w.ndim() != 2 || xs.last() != Some(&w.shape()[0]) {
                    return Err(unsupported(
                        n,
                        format!("MatMul {xs:?} · {:?} (weight must be 2-D)", w.shape()),
                    ));
                }
                let mut out = xs.clone();
                if let Some(l) = out.last_mut() {
                    *l = w.shape()[1];
                }
                let wid = self.weight(&n.input[1], Arc::unwrap_or_clone(w));
                self.emit(n, Op::MatMulWeight { weight: wid }, vec![x], out);
            }
            (Entry::Secret(a), Entry::Secret(b)) => {
                let (sa, sb) = (self.shape(a), self.shape(b));
                if sa.len() < 2 || sb.len() < 2 {
                    return Err(unsupported(n, "MatMul of vectors"));
                }
                let op = hush_core::bilinear::BilinearOp::MatMul { lhs: sa, rhs: sb };
                let out = op
                    .out_shape()
                    .map_err(|e| invalid(n.name(), e.to_string()))?;
                self.emit(n, Op::MatMul, vec![a, b], out);
            }
            _ => return Err(unsupported(n, "MatMul with a constant left operand")),
        }
        Ok(())
    }

    fn elementwise(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let how = match n.op_type() {
            "Add" => Binary::Add,
            "Sub" => Binary::Sub,
            _ => Binary::Mul,
        };
        if self.all_public(n) {
            let f: fn(f64, f64) -> f64 = match how {
                Binary::Add => |x, y| x + y,
                Binary::Sub => |x, y| x - y,
                Binary::Mul => |x, y| x * y,
            };
            return self.fold_binary(n, f);
        }
        self.binary(n, how, (0, 1), Last::Output, "")?;
        Ok(())
    }

    /// `a + b`, `a − b` or `a ⊙ b` of inputs `i` and `j` of `n`, broadcast,
    /// at least one of them computed: of two computed values a plan `Add`,
    /// `Sub` or `Mul`; with a constant operand a local product or sum with
    /// it, which is the owner's weight when the constant is ([`Builder::
    /// constant_op`]); `c − x` is `(−x) + c`. The last node is `n`'s output
    /// or its intermediate `step`, as `last` says.
    fn binary(
        &mut self,
        n: &NodeProto,
        how: Binary,
        (i, j): (usize, usize),
        last: Last,
        step: &str,
    ) -> Result<usize, ImportError> {
        let (first, second) = (self.get(n, i)?, self.get(n, j)?);
        let first_secret = matches!(first, Entry::Secret(_));
        let (a, other) = match (first, second) {
            (Entry::Secret(a), Entry::Secret(b)) => {
                let out = broadcast_shape(n, &self.shape(a), &self.shape(b))?;
                let o = match how {
                    Binary::Add => Op::Add,
                    Binary::Sub => Op::Sub,
                    Binary::Mul => Op::Mul,
                };
                return Ok(self.step_or_output(n, last, step, o, vec![a, b], out));
            }
            (Entry::Secret(a), other) | (other, Entry::Secret(a)) => (a, other),
            _ => {
                return Err(unsupported(
                    n,
                    format!(
                        "inputs {i} and {j} are both constant where a computed value was expected"
                    ),
                ));
            }
        };
        // c − x is (−x) + c; x − c is x + (−c).
        let (a, negate_c) = if how == Binary::Sub && !first_secret {
            let s = self.shape(a);
            let neg = scalar(-1.0);
            let name = if step.is_empty() {
                "negated".to_string()
            } else {
                format!("{step}.negated")
            };
            (self.step(n, &name, Op::MulConst(neg), vec![a], s), false)
        } else {
            (a, how == Binary::Sub)
        };
        let Some((c, is_weight)) = other.constant() else {
            unreachable!("matched above")
        };
        let c = if negate_c {
            c.mapv(|v| -v)
        } else {
            Arc::unwrap_or_clone(c)
        };
        let out = broadcast_shape(n, &self.shape(a), c.shape())?;
        let name = n.input[if first_secret { j } else { i }].clone();
        let combine = if how == Binary::Mul {
            Combine::Mul
        } else {
            Combine::Add
        };
        let o = self.constant_op(combine, &name, c, is_weight);
        Ok(self.step_or_output(n, last, step, o, vec![a], out))
    }

    fn batch_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let get = |i| match self.get(n, i) {
            Ok(Entry::Init(a)) | Ok(Entry::Public(a)) => Ok(a),
            _ => Err(unsupported(
                n,
                "scale, bias, mean and variance must be initializers",
            )),
        };
        let (gamma, beta, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let eps = attr_f(n, "epsilon", 1e-5) as f64;
        let xs = self.shape(x);
        // One value per channel (axis 1) in each of the four.
        let c = match xs.get(1) {
            Some(&c) if [&gamma, &beta, &mean, &var].iter().all(|a| a.len() == c) => c,
            _ => {
                return Err(invalid(
                    n.name(),
                    format!(
                        "BatchNormalization of {xs:?} needs a value per channel in scale, \
                         bias, mean and variance (they have {}, {}, {}, {})",
                        gamma.len(),
                        beta.len(),
                        mean.len(),
                        var.len()
                    ),
                ));
            }
        };
        let scale: Vec<f64> = gamma
            .iter()
            .zip(var.iter())
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f64> = beta
            .iter()
            .zip(mean.iter())
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        // Fold into a preceding Conv (optionally followed by its bias) that
        // nothing else reads.
        let input_name = &n.input[0];
        if self.uses.get(input_name).copied() == Some(1)
            && let Some(folded) = self.fold_bn(x, &scale, &shift)?
        {
            self.names
                .insert(n.output[0].clone(), Entry::Secret(folded));
            return Ok(());
        }
        let mut bshape = vec![1; xs.len()];
        bshape[1] = c;
        let sc = ArrayD::from_shape_vec(IxDyn(&bshape), scale)
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let sh = ArrayD::from_shape_vec(IxDyn(&bshape), shift)
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let sid = self.weight(&format!("{}.scale", n.name()), sc);
        let m = self.emit(n, Op::MulWeight { weight: sid }, vec![x], xs.clone());
        let hid = self.weight(&format!("{}.shift", n.name()), sh);
        self.emit(n, Op::AddWeight { weight: hid }, vec![m], xs);
        Ok(())
    }

    /// Folds a per-channel affine map into the Conv that produced `x`
    /// (directly, or through its bias). Returns the new output value.
    fn fold_bn(
        &mut self,
        x: usize,
        scale: &[f64],
        shift: &[f64],
    ) -> Result<Option<usize>, ImportError> {
        let Some(&pi) = self.producer.get(&x) else {
            return Ok(None);
        };
        let linear = |op: &Op| matches!(op, Op::Conv { .. } | Op::MatMulWeight { .. });
        let (conv_idx, bias_idx) = match &self.plan.nodes[pi].op {
            op if linear(op) => (pi, None),
            Op::AddWeight { .. } => {
                let prev = self.plan.nodes[pi].inputs[0];
                match self.producer.get(&prev) {
                    Some(&ci) if linear(&self.plan.nodes[ci].op) => (ci, Some(pi)),
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let c = scale.len();
        // Output channels: axis 0 of a kernel, axis 1 of a [k, n] matrix.
        let (weight, out_axis, bias_shape) = match self.plan.nodes[conv_idx].op {
            Op::Conv { weight, .. } => (weight, 0, vec![1, c, 1, 1]),
            // A [k, n] matrix's columns are the channels of a [batch, n]
            // product only: on [batch, c, n] BatchNormalization scales
            // axis 1, not the columns.
            Op::MatMulWeight { weight }
                if self.weights[weight].ndim() == 2
                    && self.shape(self.plan.nodes[conv_idx].output).len() == 2 =>
            {
                (weight, 1, vec![c])
            }
            _ => return Ok(None),
        };
        if let Some(bi) = bias_idx {
            let Op::AddWeight { weight: b } = self.plan.nodes[bi].op else {
                return Ok(None);
            };
            if self.weights[b].len() != c {
                return Ok(None);
            }
        }
        for (o, mut filt) in self.weights[weight]
            .axis_iter_mut(Axis(out_axis))
            .enumerate()
        {
            filt.mapv_inplace(|v| v * scale[o]);
        }
        match bias_idx {
            Some(bi) => {
                let Op::AddWeight { weight: b } = self.plan.nodes[bi].op else {
                    return Ok(None);
                };
                for (o, v) in self.weights[b].iter_mut().enumerate() {
                    *v = *v * scale[o % c] + shift[o % c];
                }
                Ok(Some(self.plan.nodes[bi].output))
            }
            None => {
                let conv_out = self.plan.nodes[conv_idx].output;
                let shape = self.shape(conv_out);
                let b = ArrayD::from_shape_vec(IxDyn(&bias_shape), shift.to_vec())
                    .map_err(|e| invalid("bn", e.to_string()))?;
                let name = format!("{}.folded_bias", self.plan.nodes[conv_idx].name);
                let bid = self.weight(&name, b);
                let op = Op::AddWeight { weight: bid };
                Ok(Some(self.add_node(
                    name.clone(),
                    &name,
                    op,
                    vec![conv_out],
                    shape,
                )))
            }
        }
    }

    /// The inputs of a variadic elementwise node: its computed values, and
    /// its constants combined into one with `f` (broadcast, within the
    /// folding budget) together with whether a weight was among them (the
    /// combination is then the owner's too).
    fn variadic(
        &mut self,
        n: &NodeProto,
        f: fn(f64, f64) -> f64,
    ) -> Result<(Vec<usize>, Option<Combined>), ImportError> {
        let mut values = vec![];
        let mut combined: Option<Combined> = None;
        for i in 0..n.input.len() {
            let (c, is_weight) = match self.get(n, i)? {
                Entry::Secret(v) => {
                    values.push(v);
                    continue;
                }
                Entry::Public(c) => (c, false),
                Entry::Init(c) => (c, true),
            };
            combined = Some(match combined {
                None => (c, is_weight),
                Some((acc, weight)) => {
                    let shape = broadcast_shape(n, acc.shape(), c.shape())?;
                    self.charge_fold(n, &shape)?;
                    let (x, y) = (broadcast_to(n, &acc, &shape)?, broadcast_to(n, &c, &shape)?);
                    let v = ndarray::Zip::from(&x).and(&y).map_collect(|&x, &y| f(x, y));
                    (Arc::new(v), weight || is_weight)
                }
            });
        }
        Ok((values, combined))
    }

    /// Elementwise `Max` / `Min` of any number of inputs. Constants are
    /// combined at import (folded entirely when all are); each computed
    /// operand then costs one comparison: `max(a, b) = b + relu(a − b)`,
    /// `min(a, b) = a − relu(a − b)`, with `a − c` and `+ c` local for a
    /// constant (or weight) `c`.
    fn max_min(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let max = n.op_type() == "Max";
        let (values, combined) = self.variadic(n, if max { f64::max } else { f64::min })?;
        let Some((&first, rest)) = values.split_first() else {
            let (c, _) = combined.ok_or_else(|| invalid(n.name(), "no inputs"))?;
            self.set_folded(n, Arc::unwrap_or_clone(c));
            return Ok(());
        };
        let steps = rest.len() + usize::from(combined.is_some());
        if steps == 0 {
            self.alias(n, Entry::Secret(first));
            return Ok(());
        }
        let mut acc = first;
        for (k, &v) in rest.iter().enumerate() {
            let s = broadcast_shape(n, &self.shape(acc), &self.shape(v))?;
            let d = self.step(
                n,
                &format!("{k}.difference"),
                Op::Sub,
                vec![acc, v],
                s.clone(),
            );
            let r = self.step(n, &format!("{k}.relu"), Op::Relu, vec![d], s.clone());
            let (op, inputs) = if max {
                (Op::Add, vec![v, r])
            } else {
                (Op::Sub, vec![acc, r])
            };
            let last = Last::when(k + 1 == steps);
            acc = self.step_or_output(n, last, &format!("{k}.result"), op, inputs, s);
        }
        if let Some((c, weight)) = combined {
            let s = broadcast_shape(n, &self.shape(acc), c.shape())?;
            let c = Arc::unwrap_or_clone(c);
            let minus = self.constant_op(
                Combine::Add,
                &format!("{}.negated", n.name()),
                c.mapv(|v| -v),
                weight,
            );
            let plus = self.constant_op(Combine::Add, &format!("{}.constant", n.name()), c, weight);
            let d = self.step(n, "difference", minus, vec![acc], s.clone());
            let r = self.step(n, "relu", Op::Relu, vec![d], s.clone());
            if max {
                self.emit(n, plus, vec![r], s);
            } else {
                self.emit(n, Op::Sub, vec![acc, r], s);
            }
        }
        Ok(())
    }

    /// Elementwise `Sum` / `Mean` of any number of inputs: additions
    /// (local), constants and weights combined at import, then for `Mean` a
    /// product with the public `1/count`.
    fn sum_mean(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let count = n.input.len();
        let (values, combined) = self.variadic(n, |x, y| x + y)?;
        let mean = n.op_type() == "Mean";
        let scale = |a: ArrayD<f64>| {
            if mean {
                a.mapv(|v| v / count as f64)
            } else {
                a
            }
        };
        let Some((&first, rest)) = values.split_first() else {
            let (c, _) = combined.ok_or_else(|| invalid(n.name(), "no inputs"))?;
            self.set_folded(n, scale(Arc::unwrap_or_clone(c)));
            return Ok(());
        };
        // Each step: an op on the running value (and another value), and
        // its output shape; the last step writes the node's output.
        let mut steps: Vec<(Op, Option<usize>, Vec<usize>)> = vec![];
        let mut shape = self.shape(first);
        for &v in rest {
            shape = broadcast_shape(n, &shape, &self.shape(v))?;
            steps.push((Op::Add, Some(v), shape.clone()));
        }
        if let Some((c, is_weight)) = combined {
            shape = broadcast_shape(n, &shape, c.shape())?;
            let c = Arc::unwrap_or_clone(c);
            let name = format!("{}.constants", n.name());
            let op = self.constant_op(Combine::Add, &name, c, is_weight);
            steps.push((op, None, shape.clone()));
        }
        if mean {
            let scale = scalar(1.0 / count as f64);
            steps.push((Op::MulConst(scale), None, shape));
        }
        let last = steps.len().checked_sub(1);
        let mut acc = first;
        for (k, (op, other, shape)) in steps.into_iter().enumerate() {
            let inputs = [acc].into_iter().chain(other).collect();
            acc = if Some(k) == last {
                self.emit(n, op, inputs, shape)
            } else {
                self.step(n, &format!("{k}"), op, inputs, shape)
            };
        }
        if last.is_none() {
            self.alias(n, Entry::Secret(first));
        }
        Ok(())
    }

    fn unary(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let op = match n.op_type() {
            "Relu" => Op::Relu,
            "Sigmoid" => Op::Sigmoid,
            "Tanh" => Op::Tanh,
            "LeakyRelu" => Op::LeakyRelu {
                alpha: attr_f(n, "alpha", 0.01) as f64,
            },
            "Clip" => {
                let bound = |i: usize, default: f64| -> Result<f64, ImportError> {
                    match self.opt(n, i)? {
                        Some(Entry::Public(a)) | Some(Entry::Init(a)) => a
                            .iter()
                            .next()
                            .copied()
                            .ok_or_else(|| invalid(n.name(), "empty bound")),
                        Some(Entry::Secret(_)) => Err(unsupported(n, "computed clip bounds")),
                        None => Ok(default),
                    }
                };
                let (lo, hi) = (bound(1, -1e9)?, bound(2, 1e9)?);
                Op::Clip { lo, hi }
            }
            _ => return Err(unsupported(n, "")),
        };
        self.emit(n, op, vec![x], s);
        Ok(())
    }

    /// `Softmax` and `LogSoftmax` over any axis (of any size: the plan's
    /// softmax subtracts each row's maximum; masks of `−∞`: [`masks`]).
    fn softmax(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        self.softmax_of(n, x, Last::Output)?;
        Ok(())
    }

    /// `n`'s `Softmax` or `LogSoftmax` of computed value `x`: the plan's
    /// operations work on the last axis, so another axis is swapped with it
    /// before and after (transpositions, local under MPC). The result is
    /// `n`'s output or an intermediate step, as `last` says.
    fn softmax_of(&mut self, n: &NodeProto, x: usize, last: Last) -> Result<usize, ImportError> {
        let s = self.shape(x);
        let Some(end) = s.len().checked_sub(1) else {
            return Err(invalid(n.name(), "softmax of a scalar"));
        };
        let axis = norm_axis(n, attr_i(n, "axis", -1), s.len())?;
        let op = if n.op_type() == "Softmax" {
            Op::Softmax { axis: end }
        } else {
            Op::LogSoftmax { axis: end }
        };
        if axis == end {
            return Ok(self.step_or_output(n, last, "normalized", op, vec![x], s));
        }
        let mut perm: Vec<usize> = (0..s.len()).collect();
        perm.swap(axis, end);
        let mut swapped = s.clone();
        swapped.swap(axis, end);
        let t = self.step(
            n,
            "swapped",
            Op::Transpose { perm: perm.clone() },
            vec![x],
            swapped.clone(),
        );
        let y = self.step(n, "normalized", op, vec![t], swapped);
        Ok(self.step_or_output(n, last, "swapped_back", Op::Transpose { perm }, vec![y], s))
    }

    fn pool(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let xs = self.shape(x);
        if xs.len() != 4 {
            return Err(unsupported(n, "only 2-D pooling"));
        }
        let kernel = attr_ints(n, "kernel_shape")
            .ok_or_else(|| invalid(n.name(), "kernel_shape missing"))?;
        if kernel.len() != 2 {
            return Err(unsupported(n, "only 2-D pooling"));
        }
        let k = usize_list(n, &kernel, "kernel")?;
        let a = PoolAttrs {
            kernel: [k[0], k[1]],
            stride: pair(n, "strides", 1)?,
            padding: pads(n)?,
            dilation: pair(n, "dilations", 1)?,
            ceil_mode: attr_i(n, "ceil_mode", 0) != 0,
            count_include_pad: attr_i(n, "count_include_pad", 0) != 0,
        };
        let max = n.op_type() == "MaxPool";
        if !max && a.ceil_mode {
            // The secure evaluation would refuse it at the server's start.
            return Err(unsupported(n, "ceil_mode (average pooling)"));
        }
        if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
            return Err(unsupported(n, "MaxPool indices output"));
        }
        let out = a
            .output_hw([xs[2], xs[3]], max)
            .ok_or_else(|| invalid(n.name(), "pooling window does not fit"))?;
        let op = if max {
            Op::MaxPool(a)
        } else {
            Op::AveragePool(a)
        };
        self.emit(n, op, vec![x], vec![xs[0], xs[1], out[0], out[1]]);
        Ok(())
    }

    fn reshape(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (src_shape, entry) = match self.get(n, 0)? {
            Entry::Secret(v) => (self.shape(v), Entry::Secret(v)),
            Entry::Public(a) => (a.shape().to_vec(), Entry::Public(a)),
            Entry::Init(a) => (a.shape().to_vec(), Entry::Init(a)),
        };
        let total: usize = src_shape.iter().product();
        let shape: Vec<usize> = if n.op_type() == "Flatten" {
            // Flatten's axis may also be the rank itself (everything in the
            // first dimension).
            let rank = src_shape.len() as i64;
            let axis = attr_i(n, "axis", 1);
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..=rank).contains(&axis) {
                return Err(invalid(
                    n.name(),
                    format!("Flatten axis out of range for rank {rank}"),
                ));
            }
            let head: usize = src_shape[..axis as usize].iter().product();
            vec![head, total / head.max(1)]
        } else {
            let spec = self.public_of(n, 1)?;
            let mut out: Vec<i64> = spec.iter().map(|&v| v as i64).collect();
            if attr_i(n, "allowzero", 0) == 0 {
                for (i, d) in out.iter_mut().enumerate() {
                    if *d == 0 {
                        *d = *src_shape
                            .get(i)
                            .ok_or_else(|| invalid(n.name(), "0 beyond the input rank"))?
                            as i64;
                    }
                }
            }
            let known: i64 = out
                .iter()
                .filter(|&&d| d != -1)
                .try_fold(1i64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| invalid(n.name(), "reshape dimensions overflow"))?;
            if out.iter().filter(|&&d| d == -1).count() > 1 || known <= 0 && out.contains(&-1) {
                return Err(invalid(n.name(), "cannot infer the reshape"));
            }
            out.iter()
                .map(|&d| if d == -1 { total as i64 / known } else { d })
                .map(|d| usize::try_from(d).map_err(|_| invalid(n.name(), "negative dimension")))
                .collect::<Result<_, _>>()?
        };
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(total) {
            return Err(invalid(
                n.name(),
                format!("cannot reshape {src_shape:?} to {shape:?}"),
            ));
        }
        match entry {
            Entry::Secret(v) => {
                self.emit(
                    n,
                    Op::Reshape {
                        shape: shape.clone(),
                    },
                    vec![v],
                    shape,
                );
            }
            Entry::Public(a) | Entry::Init(a) => {
                self.charge_fold(n, a.shape())?;
                let r = a
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(&shape))
                    .map_err(|e| invalid(n.name(), e.to_string()))?;
                self.set_folded(n, r);
            }
        }
        Ok(())
    }
}

/// Gather indices (negative ones count from the end) checked against `len`.
fn gather_indices(n: &NodeProto, idx: &ArrayD<f64>, len: usize) -> Result<Vec<usize>, ImportError> {
    let len = len as i64;
    idx.iter()
        .map(|&v| {
            let v = v as i64;
            let v = if v < 0 { v + len } else { v };
            usize::try_from(v)
                .ok()
                .filter(|&u| (u as i64) < len)
                .ok_or_else(|| invalid(n.name(), "index out of range"))
        })
        .collect()
}

/// The shape `s` reduced over `axes` (kept as size 1 with `keepdims`).
fn reduced_shape(s: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    s.iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keepdims.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

fn norm_axis(n: &NodeProto, a: i64, rank: usize) -> Result<usize, ImportError> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    if a < 0 || a >= r.max(1) {
        return Err(invalid(
            n.name(),
            format!("axis out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// Elementwise functions folded on constants (shape arithmetic such as
/// `Floor(Mul(Cast(Shape)))` in exported upsampling, positional tables
/// computed in the graph). `Sin`, `Cos`, `Floor`, `Ceil` and `Round` take
/// constants only; the others also computed values.
fn constant_unary(op: &str) -> Option<fn(f64) -> f64> {
    Some(match op {
        "Exp" => f64::exp,
        "Sqrt" => f64::sqrt,
        "Log" => f64::ln,
        "Reciprocal" => f64::recip,
        "Relu" => |v| v.max(0.0),
        "Sigmoid" => |v| 1.0 / (1.0 + (-v).exp()),
        "Tanh" => f64::tanh,
        "Neg" => |v| -v,
        "Abs" => f64::abs,
        "Sin" => f64::sin,
        "Cos" => f64::cos,
        "Floor" => f64::floor,
        "Ceil" => f64::ceil,
        "Round" => f64::round_ties_even,
        "Sign" => |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
        _ => return None,
    })
}

/// What numbers an ONNX element type holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbers {
    Real,
    Integer,
    Boolean,
}

/// The numbers of TensorProto.DataType `data_type` (a `Cast`'s `to`, a
/// graph input's element type): 1 float, 10 float16, 11 double, 16
/// bfloat16; 2–7 and 12–13 the integer types; 9 bool. `None` for others.
fn numbers_of(data_type: i64) -> Option<Numbers> {
    match data_type {
        1 | 10 | 11 | 16 => Some(Numbers::Real),
        2..=7 | 12 | 13 => Some(Numbers::Integer),
        9 => Some(Numbers::Boolean),
        _ => None,
    }
}

/// The numbers a graph input declares.
fn input_numbers(input: &proto::ValueInfoProto) -> Option<Numbers> {
    match input.r#type.as_ref()?.value.as_ref()? {
        proto::type_proto::Value::TensorType(t) => numbers_of(t.elem_type? as i64),
        _ => None,
    }
}

/// A public scalar constant of the plan (broadcast to any shape).
fn scalar(v: f64) -> Constant {
    constant(ArrayD::from_elem(IxDyn(&[]), v))
}

fn constant(c: ArrayD<f64>) -> Constant {
    Constant {
        shape: c.shape().to_vec(),
        data: c.iter().copied().collect(),
    }
}

/// Imports an ONNX model from its bytes.
pub fn import(bytes: &[u8], opts: &ImportOptions) -> Result<Imported, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    let mut opset = 21;
    for o in &model.opset_import {
        if o.domain().is_empty() || o.domain() == "ai.onnx" {
            let v = o.version();
            if !(13..=21).contains(&v) {
                return Err(ImportError::Opset(v));
            }
            opset = v;
        }
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("model", "no graph"))?;
    let mut b = Builder {
        plan: Plan {
            name: opts
                .name
                .clone()
                .unwrap_or_else(|| graph.name().to_string()),
            frac_bits: opts.frac_bits,
            values: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            weights: Vec::new(),
            nodes: Vec::new(),
            commitment: [0; 32],
        },
        weights: Vec::new(),
        names: HashMap::new(),
        producer: HashMap::new(),
        uses: HashMap::new(),
        oversize: None,
        folded: 0,
        max_folded: opts.max_folded_elements,
        opset,
        booleans: HashSet::new(),
        saturated: HashSet::new(),
        integers: HashSet::new(),
    };
    for n in &graph.node {
        for i in &n.input {
            *b.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for t in &graph.initializer {
        let a = Arc::new(tensor_to_array(t)?);
        let is_int = matches!(
            proto::tensor_proto::DataType::try_from(t.data_type()),
            Ok(proto::tensor_proto::DataType::Int64 | proto::tensor_proto::DataType::Int32)
        );
        b.names.insert(
            t.name().to_string(),
            if is_int {
                Entry::Public(a)
            } else {
                Entry::Init(a)
            },
        );
    }
    for input in &graph.input {
        if b.names.contains_key(input.name()) {
            continue; // an initializer listed as an input (older exporters)
        }
        let shape = match opts.input_shapes.get(input.name()) {
            Some(s) => s.clone(),
            None => {
                let dims = input
                    .r#type
                    .as_ref()
                    .and_then(|t| match &t.value {
                        Some(proto::type_proto::Value::TensorType(tt)) => tt.shape.as_ref(),
                        _ => None,
                    })
                    .ok_or_else(|| invalid(input.name(), "input without a tensor shape"))?;
                dims.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(proto::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                            usize::try_from(*v)
                                .map_err(|_| invalid(input.name(), "negative dimension"))
                        }
                        _ => Ok(opts.symbolic_dim),
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let v = b.value(input.name(), shape);
        // An integer or boolean input (token ids, a mask) holds such numbers:
        // Gather, Cast and logic may take it.
        match input_numbers(input) {
            Some(Numbers::Boolean) => {
                b.booleans.insert(v);
            }
            Some(Numbers::Integer) => {
                b.integers.insert(v);
            }
            _ => {}
        }
        b.plan.inputs.push(v);
        b.names.insert(input.name().to_string(), Entry::Secret(v));
        b.check_sizes()?;
    }
    for n in &graph.node {
        b.node_with_masks(n)?;
        b.check_sizes()?;
    }
    for out in &graph.output {
        if b.saturated.contains(out.name()) {
            return Err(invalid(
                out.name(),
                "the output holds a mask made of -inf or of constants below -2^20, which \
                 fixed point has no numbers for (such a mask may only reach a Softmax)",
            ));
        }
        match b.names.get(out.name()) {
            Some(Entry::Secret(v)) => b.plan.outputs.push(*v),
            _ => return Err(invalid(out.name(), "output is not computed from the input")),
        }
    }
    let weights = Weights { tensors: b.weights };
    b.plan.optimize();
    b.plan.commitment = Sha256::digest(weights.canonical_bytes()).into();
    b.plan
        .validate()
        .map_err(|e| invalid("plan", e.to_string()))?;
    Ok(Imported {
        plan: b.plan,
        weights,
    })
}
