//! An operator outside the supported set fails with its type and node name.

#![allow(clippy::unwrap_used)]

mod common;

use hush_onnx::proto::NodeProto;
use hush_onnx::{ImportError, ImportOptions, import};

/// One node `the_node` of type `op` from `x` to `y`.
fn model(op: &str, opset: i64) -> Vec<u8> {
    let node = NodeProto {
        name: Some("the_node".into()),
        ..common::node(op, &["x"], "y")
    };
    common::model_at(opset, vec![node], vec![])
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
