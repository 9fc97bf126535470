//! Graphs whose shapes do not agree fail at import with the node's name,
//! not later, when the server rehearses or evaluates the plan.

#![allow(clippy::unwrap_used)]

mod common;

use common::{init, ints, model, node, with_int};
use hush_onnx::{ImportError, ImportOptions, import};

fn invalid_at(bytes: &[u8], node: &str, words: &str) {
    match import(bytes, &ImportOptions::default()) {
        Err(ImportError::Invalid { node: at, reason }) => {
            assert_eq!(at, node);
            assert!(reason.contains(words), "{reason}");
        }
        other => panic!("{node}: {other:?}"),
    }
}

#[test]
fn squeeze_of_an_axis_longer_than_one() {
    // x is [1, 4]: axis 1 has 4 elements.
    let m = model(
        vec![node("Squeeze", &["x", "axes"], "y")],
        vec![ints("axes", &[1])],
    );
    invalid_at(&m, "Squeeze_y", "Squeeze of axis 1, of size 4");
    let m = model(
        vec![node("Squeeze", &["x", "axes"], "y")],
        vec![ints("axes", &[0])],
    );
    assert!(import(&m, &ImportOptions::default()).is_ok());
}

#[test]
fn gemm_bias_larger_than_the_product() {
    // [1, 4] · [4, 2] is [1, 2]; a [3, 2] C would broadcast the output up.
    let m = model(
        vec![node("Gemm", &["x", "b", "c"], "y")],
        vec![init("b", &[4, 2], &[1.0; 8]), init("c", &[3, 2], &[1.0; 6])],
    );
    invalid_at(&m, "Gemm_y", "C of shape [3, 2] for a [1, 2] product");
    let m = model(
        vec![node("Gemm", &["x", "b", "c"], "y")],
        vec![init("b", &[4, 2], &[1.0; 8]), init("c", &[2], &[1.0; 2])],
    );
    assert!(import(&m, &ImportOptions::default()).is_ok());
}

#[test]
fn convolution_whose_kernel_does_not_match_the_channels() {
    // x as [1, 4, 1, 1]; a kernel for 2 input channels needs 2 groups.
    let conv = |group: i64| {
        model(
            vec![
                node("Reshape", &["x", "shape"], "r"),
                with_int(node("Conv", &["r", "w"], "y"), "group", group),
            ],
            vec![
                ints("shape", &[1, 4, 1, 1]),
                init("w", &[2, 2, 1, 1], &[1.0; 4]),
            ],
        )
    };
    invalid_at(
        &conv(1),
        "Conv_y",
        "input channels 4, kernel [2, 2, 1, 1] and groups 1",
    );
    invalid_at(&conv(3), "Conv_y", "groups 3 do not agree");
    assert!(import(&conv(2), &ImportOptions::default()).is_ok());
}

#[test]
fn softmax_axis_out_of_range() {
    // An axis near i64::MAX overflowed the importer's `axis + 1` (a panic in
    // debug builds, found by the fuzz mutations of the transformer seed).
    for axis in [i64::MAX, 2, -3] {
        let m = model(
            vec![with_int(node("Softmax", &["x"], "y"), "axis", axis)],
            vec![],
        );
        invalid_at(&m, "Softmax_y", "axis out of range");
    }
}

#[test]
fn flatten_axis_out_of_range() {
    // An axis beyond [−rank, rank] was clamped into range; ONNX calls such a
    // model invalid. The input is [1, 4]: axes −2 to 2 are fine.
    for axis in [3, -3, i64::MAX, i64::MIN] {
        let m = model(
            vec![with_int(node("Flatten", &["x"], "y"), "axis", axis)],
            vec![],
        );
        invalid_at(&m, "Flatten_y", "axis out of range");
    }
    for axis in [-2, 0, 2] {
        let m = model(
            vec![with_int(node("Flatten", &["x"], "y"), "axis", axis)],
            vec![],
        );
        assert!(hush_onnx::import(&m, &Default::default()).is_ok(), "{axis}");
    }
}
