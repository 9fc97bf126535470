//! Builds small ONNX graphs for the importer's tests.

#![allow(clippy::unwrap_used, dead_code)]

use hush_core::backend::CpuBackend;
use hush_core::channel::memory::run_parties;
use hush_core::plan::secure;
use hush_core::preprocessing::seeded::{SeededDealer, in_process};
use hush_core::protocol::{Config, Party};
use hush_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto, type_proto,
};
use ndarray::{ArrayD, IxDyn};
use prost::Message;

pub const FLOAT: i32 = 1;
pub const INT64: i32 = 7;

pub fn init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(INT64),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        name: Some(format!("{op}_{output}")),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// A `Constant` node whose value is the float tensor `v`.
pub fn constant(output: &str, dims: &[i64], v: &[f32]) -> NodeProto {
    NodeProto {
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(4), // TENSOR
            t: Some(init("", dims, v)),
            ..Default::default()
        }],
        ..node("Constant", &[], output)
    }
}

pub fn with_ints(mut n: NodeProto, name: &str, v: &[i64]) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: Some(name.into()),
        r#type: Some(7), // INTS
        ints: v.to_vec(),
        ..Default::default()
    });
    n
}

pub fn with_int(mut n: NodeProto, name: &str, v: i64) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: Some(name.into()),
        r#type: Some(2), // INT
        i: Some(v),
        ..Default::default()
    });
    n
}

/// A model with input `x` of shape [1, 4], output `y`, at opset 17.
pub fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>) -> Vec<u8> {
    model_at(17, nodes, initializers)
}

/// [`model`] at another opset.
pub fn model_at(opset: i64, nodes: Vec<NodeProto>, initializers: Vec<TensorProto>) -> Vec<u8> {
    model_with(opset, &[1, 4], nodes, initializers)
}

/// A model with input `x` of shape `input`, output `y`, at `opset`.
pub fn model_with(
    opset: i64,
    input: &[i64],
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
) -> Vec<u8> {
    let dim = |v| tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    };
    let input = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto {
                    dim: input.iter().map(|&d| dim(d)).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: initializers,
            input: vec![input],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The plaintext evaluation of an imported model on [`x`], flattened.
pub fn outputs(m: &hush_onnx::Imported) -> Vec<f64> {
    hush_core::plan::plain::evaluate(&m.plan, &m.weights, &[x()])
        .unwrap()
        .remove(0)
        .iter()
        .copied()
        .collect()
}

pub fn x() -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[1, 4]), vec![0.5, -2.0, 1.25, 3.0]).unwrap()
}

/// The secure evaluation of an imported model on `x`: two parties in this
/// process (the client, party 0, gives `x`; the owner, party 1, holds the
/// weights), with the in-process dealer. Panics with `name` on an error.
pub fn secure_evaluate(name: &str, m: &hush_onnx::Imported, x: &ArrayD<f64>) -> ArrayD<f64> {
    secure_evaluate_many(name, m, std::slice::from_ref(x)).remove(0)
}

/// [`secure_evaluate`] of a model with several inputs (in its order): every
/// output, in its order.
pub fn secure_evaluate_many(
    name: &str,
    m: &hush_onnx::Imported,
    inputs: &[ArrayD<f64>],
) -> Vec<ArrayD<f64>> {
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let mut preps = in_process(
        &SeededDealer::<CpuBackend>::random_seeds(2).unwrap(),
        CpuBackend,
    )
    .into_iter();
    let (plan, weights) = (&m.plan, &m.weights);
    let out = run_parties(2, |ch| {
        let prep = preps.next().unwrap();
        let inputs = inputs.to_vec();
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, Config::default()).await?;
            let me = p.id();
            let s = secure::setup(&mut p, plan, roles, (me == 1).then_some(weights)).await?;
            secure::evaluate(&mut p, plan, roles, &s, (me == 0).then_some(&inputs[..])).await
        }
    });
    out.into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap()
}

/// Imports `nodes` (reading `x`, writing `y`) and checks that its plaintext
/// output is `want` (within f64 rounding, 1e-9) and its secure one within
/// `tolerance`; returns the plan's operator names.
pub fn check_model(
    case: &str,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    want: &[f64],
    tolerance: f64,
) -> Vec<String> {
    check_model_on(
        case,
        &model(nodes, initializers),
        &x(),
        want,
        (1e-9, tolerance),
    )
}

/// Imports `model` and checks that its output on `x` is `want` within
/// `tolerances`: `.0` in plaintext, `.1` under MPC; returns the plan's
/// operator names.
pub fn check_model_on(
    case: &str,
    model: &[u8],
    x: &ArrayD<f64>,
    want: &[f64],
    (plain_tolerance, tolerance): (f64, f64),
) -> Vec<String> {
    let m = hush_onnx::import(model, &Default::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
    let got: Vec<f64> =
        hush_core::plan::plain::evaluate(&m.plan, &m.weights, std::slice::from_ref(x))
            .unwrap_or_else(|e| panic!("{case}: {e}"))
            .remove(0)
            .iter()
            .copied()
            .collect();
    assert_eq!(got.len(), want.len(), "{case}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < plain_tolerance,
            "{case}: plaintext {got:?} vs {want:?}"
        );
    }
    let secure = secure_evaluate(case, &m, x);
    for (s, w) in secure.iter().zip(want) {
        assert!(
            (s - w).abs() < tolerance,
            "{case}: secure {secure} vs {want:?}"
        );
    }
    m.plan
        .nodes
        .iter()
        .map(|n| n.op.name().to_string())
        .collect()
}
