//! Initializers of the element types the importer reads: half floats
//! (float16, bfloat16) as raw bytes or int32_data, and booleans; values
//! stored in an external file are refused with a clear message.

#![allow(clippy::unwrap_used)]

mod common;

use common::{model, node, outputs, x};
use hush_onnx::proto::{StringStringEntryProto, TensorProto};
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
