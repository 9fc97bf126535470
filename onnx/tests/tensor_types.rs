//! Initializers of the element types the importer reads: half floats
//! (float16, bfloat16) as raw bytes or int32_data, and booleans; values
//! stored in an external file are refused with a clear message. `Constant`
//! nodes in each of their forms.

#![allow(clippy::unwrap_used)]

mod common;

use common::{model, node, outputs, x};
use hush_onnx::proto::{AttributeProto, NodeProto, StringStringEntryProto, TensorProto};
use hush_onnx::{ImportError, ImportOptions, import};

const FLOAT16: i32 = 10;
const BOOL: i32 = 9;
const BFLOAT16: i32 = 16;

fn tensor(name: &str, data_type: i32) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![1, 4],
        data_type: Some(data_type),
        ..Default::default()
    }
}

/// `x · w` for the initializer `w`, on [`x`].
fn times(w: TensorProto) -> Vec<f64> {
    let m = model(vec![node("Mul", &["x", "w"], "y")], vec![w]);
    outputs(&import(&m, &ImportOptions::default()).unwrap())
}

fn expected(w: [f64; 4]) -> Vec<f64> {
    x().iter().zip(w).map(|(x, w)| x * w).collect()
}

#[test]
fn half_floats_as_raw_bytes_and_as_int32_data() {
    // 1.5, −2, 2^-24 (the smallest subnormal), 65504 (the largest finite).
    let f16 = [0x3e00u16, 0xc000, 0x0001, 0x7bff];
    let want = expected([1.5, -2.0, 2f64.powi(-24), 65504.0]);
    let raw = TensorProto {
        raw_data: Some(f16.iter().flat_map(|h| h.to_le_bytes()).collect()),
        ..tensor("w", FLOAT16)
    };
    assert_eq!(times(raw), want);
    let int32 = TensorProto {
        int32_data: f16.iter().map(|&h| i32::from(h)).collect(),
        ..tensor("w", FLOAT16)
    };
    assert_eq!(times(int32), want);
    // bfloat16: the top half of an f32 (1.5, −2, 0.25, 3).
    let bf16 = [0x3fc0u16, 0xc000, 0x3e80, 0x4040];
    let raw = TensorProto {
        raw_data: Some(bf16.iter().flat_map(|h| h.to_le_bytes()).collect()),
        ..tensor("w", BFLOAT16)
    };
    assert_eq!(times(raw), expected([1.5, -2.0, 0.25, 3.0]));
}

#[test]
fn booleans() {
    let raw = TensorProto {
        raw_data: Some(vec![1, 0, 0, 7]),
        ..tensor("w", BOOL)
    };
    assert_eq!(times(raw), expected([1.0, 0.0, 0.0, 1.0]));
}

#[test]
fn values_in_an_external_file_are_refused() {
    let w = TensorProto {
        external_data: vec![StringStringEntryProto {
            key: Some("location".into()),
            value: Some("weights.bin".into()),
        }],
        data_location: Some(1),
        ..tensor("w", 1)
    };
    let m = model(vec![node("Mul", &["x", "w"], "y")], vec![w]);
    match import(&m, &ImportOptions::default()) {
        Err(ImportError::Invalid { node, reason }) => {
            assert_eq!(node, "w");
            assert!(reason.contains("external file ('weights.bin')"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// A `Constant` node `c` with one attribute.
fn constant_node(attribute: AttributeProto) -> NodeProto {
    NodeProto {
        attribute: vec![attribute],
        ..node("Constant", &[], "c")
    }
}

#[test]
fn constant_nodes_in_every_form() {
    let attr = |name: &str, kind: i32| AttributeProto {
        name: Some(name.into()),
        r#type: Some(kind),
        ..Default::default()
    };
    let run = |c: NodeProto| {
        let m = model(vec![c, node("Mul", &["x", "c"], "y")], vec![]);
        outputs(&import(&m, &ImportOptions::default()).unwrap())
    };
    let value_float = AttributeProto {
        f: Some(2.5),
        ..attr("value_float", 1)
    };
    assert_eq!(run(constant_node(value_float)), expected([2.5; 4]));
    let value_int = AttributeProto {
        i: Some(-3),
        ..attr("value_int", 2)
    };
    assert_eq!(run(constant_node(value_int)), expected([-3.0; 4]));
    let value_floats = AttributeProto {
        floats: vec![1.0, 0.5, -1.0, 2.0],
        ..attr("value_floats", 6)
    };
    assert_eq!(
        run(constant_node(value_floats)),
        expected([1.0, 0.5, -1.0, 2.0])
    );
    let value_ints = AttributeProto {
        ints: vec![4, 3, 2, 1],
        ..attr("value_ints", 7)
    };
    assert_eq!(
        run(constant_node(value_ints)),
        expected([4.0, 3.0, 2.0, 1.0])
    );
    // A sparse tensor or a string is not a form the importer reads.
    let m = model(
        vec![
            constant_node(attr("value_string", 3)),
            node("Mul", &["x", "c"], "y"),
        ],
        vec![],
    );
    assert!(matches!(
        import(&m, &ImportOptions::default()),
        Err(ImportError::Unsupported { .. })
    ));
}
