//! An operator outside the supported set fails with its type and node name.

#![allow(clippy::unwrap_used)]

mod common;

use hush_onnx::proto::NodeProto;
use hush_onnx::{ImportError, ImportOptions, import, supported_ops};

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
    match import(&model("NonMaxSuppression", 17), &ImportOptions::default()) {
        Err(ImportError::Unsupported { op, node, .. }) => {
            assert_eq!(op, "NonMaxSuppression");
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

#[test]
fn the_manifest_is_the_importers_dispatch_and_docs_ops() {
    // Every listed operator reaches its importer: whatever a one-node model
    // of it fails with, it is not the unknown-operator error.
    for op in supported_ops() {
        if let Err(ImportError::Unsupported { detail, .. }) =
            import(&model(op, 17), &ImportOptions::default())
        {
            assert!(!detail.is_empty(), "{op} is listed but not dispatched");
        }
    }
    // docs/OPS.md's table names exactly the listed operators.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/OPS.md")).unwrap();
    let mut documented: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| operator") && !l.starts_with("| ---"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| cell.split(',').map(str::trim))
        .collect();
    documented.sort_unstable();
    let mut listed = supported_ops().to_vec();
    listed.sort_unstable();
    assert_eq!(documented, listed);
}
