//! An operator outside the supported set fails with its type and node name.

#![allow(clippy::unwrap_used)]

use hush_onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto, tensor_shape_proto, type_proto,
};
use hush_onnx::{ImportError, ImportOptions, import};
use prost::Message;

fn model(op: &str, opset: i64) -> Vec<u8> {
    let dim = |v| tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    };
    let input = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![dim(1), dim(4)],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = NodeProto {
        name: Some("the_node".into()),
        op_type: Some(op.into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        ..Default::default()
    };
    ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            node: vec![node],
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

#[test]
fn unknown_ops_and_opsets_are_named_in_the_error() {
    match import(&model("Einsum", 17), &ImportOptions::default()) {
        Err(ImportError::Unsupported { op, node, .. }) => {
            assert_eq!(op, "Einsum");
            assert_eq!(node, "the_node");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        import(&model("Relu", 9), &ImportOptions::default()).unwrap_err(),
        ImportError::Opset(9)
    );
    let ok = import(&model("Relu", 17), &ImportOptions::default()).unwrap();
    assert_eq!(ok.plan.nodes.len(), 1);
    assert!(matches!(
        import(b"\x01\x02garbage", &ImportOptions::default()),
        Err(ImportError::Decode(_))
    ));
}
