//! Resize in nearest mode, against positions worked out by hand from ONNX's
//! formulas (the modes were also checked against onnxruntime: 112
//! combinations of coordinate transformation, rounding, scales and sizes
//! agree exactly; the test model ops_zoo2 runs a PyTorch upsampling).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model, ints, model, node, with_int};
use hush_onnx::proto::{AttributeProto, NodeProto, TensorProto};
use hush_onnx::{ImportError, ImportOptions, import};

fn text(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3), // STRING
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// x [1, 4] resized to `sizes` with the given attributes.
fn resize(sizes: &[i64], attrs: &[(&str, &str)]) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let mut n = node("Resize", &["x", "", "", "sizes"], "y");
    n.attribute.extend(attrs.iter().map(|(k, v)| text(k, v)));
    (vec![n], vec![ints("sizes", sizes)])
}

/// Sizes, text attributes, and the output expected.
type Case<'a> = (&'a [i64], &'a [(&'a str, &'a str)], [f64; 2]);

#[test]
fn nearest_positions() {
    // x = [0.5, −2, 1.25, 3] along the last axis (length 4).
    let cases: [Case; 4] = [
        // half_pixel, round_prefer_floor (the defaults), 4 → 2: positions
        // (i + 0.5)·2 − 0.5 = 0.5, 2.5 round down to 0 and 2.
        (&[1, 2], &[], [0.5, 1.25]),
        // round_prefer_ceil: 1 and 3.
        (
            &[1, 2],
            &[("nearest_mode", "round_prefer_ceil")],
            [-2.0, 3.0],
        ),
        // align_corners: i·3 for i = 0, 1: 0 and 3.
        (
            &[1, 2],
            &[("coordinate_transformation_mode", "align_corners")],
            [0.5, 3.0],
        ),
        // asymmetric, floor: i·2: 0 and 2.
        (
            &[1, 2],
            &[
                ("coordinate_transformation_mode", "asymmetric"),
                ("nearest_mode", "floor"),
            ],
            [0.5, 1.25],
        ),
    ];
    for (sizes, attrs, want) in cases {
        let (nodes, inits) = resize(sizes, attrs);
        let ops = check_model(&format!("{attrs:?}"), nodes, inits, &want, 1e-4);
        assert_eq!(ops, ["Select"]);
    }
    // Upsampling by 2 repeats each element (half_pixel: (i + 0.5)/2 − 0.5
    // rounds to i/2).
    let (nodes, inits) = resize(&[1, 8], &[]);
    let want = [0.5, 0.5, -2.0, -2.0, 1.25, 1.25, 3.0, 3.0];
    check_model("up", nodes, inits, &want, 1e-4);
}

#[test]
fn interpolation_and_oversized_outputs_are_refused() {
    let (nodes, inits) = resize(&[1, 8], &[("mode", "linear")]);
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Unsupported { .. })
    ));
    let (nodes, inits) = resize(&[1, 1 << 40], &[]);
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Invalid { .. })
    ));
    let (mut nodes, inits) = resize(&[1, 8], &[]);
    nodes[0] = with_int(nodes[0].clone(), "antialias", 1);
    assert!(matches!(
        import(&model(nodes, inits), &ImportOptions::default()),
        Err(ImportError::Unsupported { .. })
    ));
}
