//! Pooling sizes from a model file: out-of-range pads, dilations, kernels
//! and strides are an error (they overflowed and panicked), and the output
//! shape is the plaintext evaluator's.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ints, model, node, outputs, with_int, with_ints};
use hush_onnx::{ImportError, ImportOptions, import};

/// Integer-list attributes of a node, by name.
type Attrs<'a> = &'a [(&'a str, &'a [i64])];

/// `x` [1, 4] as [1, 1, 2, 2], then `op` with the given attributes.
fn pooled(op: &str, attrs: Attrs, ceil: bool) -> Vec<u8> {
    let mut n = node(op, &["r"], "y");
    for (k, v) in attrs {
        n = with_ints(n, k, v);
    }
    if ceil {
        n = with_int(n, "ceil_mode", 1);
    }
    model(
        vec![node("Reshape", &["x", "shape"], "r"), n],
        vec![ints("shape", &[1, 1, 2, 2])],
    )
}

#[test]
fn sizes_that_overflow_are_refused() {
    let big = i64::MAX;
    let cases: [Attrs; 5] = [
        &[("kernel_shape", &[2, 2]), ("pads", &[big, 0, big, 0])],
        &[("kernel_shape", &[big, 2]), ("pads", &[big, 0, big, 0])],
        &[("kernel_shape", &[4, 2]), ("dilations", &[big, 1])],
        &[("kernel_shape", &[1, 1]), ("strides", &[0, 1])],
        &[("kernel_shape", &[3, 3])],
    ];
    for op in ["MaxPool", "AveragePool"] {
        for (i, attrs) in cases.iter().enumerate() {
            for ceil in [false, true] {
                match import(&pooled(op, attrs, ceil), &ImportOptions::default()) {
                    Err(ImportError::Invalid { reason, .. }) => {
                        assert!(reason.contains("does not fit"), "{op} {i}: {reason}")
                    }
                    // Dilation is max pooling's only.
                    Ok(_) if op == "AveragePool" && i == 2 => {}
                    Err(ImportError::Unsupported { detail, .. }) if op == "AveragePool" && ceil => {
                        assert!(detail.contains("ceil_mode"), "{detail}")
                    }
                    other => panic!("{op} case {i} ceil {ceil}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn output_shapes_are_the_evaluators() {
    // x as [[0.5, -2], [1.25, 3]].
    let m = |attrs: Attrs, ceil| {
        import(&pooled("MaxPool", attrs, ceil), &ImportOptions::default()).unwrap()
    };
    let cases: [(Attrs, bool, Vec<f64>); 4] = [
        (&[("kernel_shape", &[2, 2])], false, vec![3.0]),
        (&[("kernel_shape", &[1, 2])], false, vec![0.5, 3.0]),
        (
            &[("kernel_shape", &[2, 2]), ("pads", &[1, 1, 1, 1])],
            false,
            vec![0.5, 0.5, -2.0, 1.25, 3.0, 3.0, 1.25, 3.0, 3.0],
        ),
        (
            &[
                ("kernel_shape", &[1, 1]),
                ("strides", &[2, 2]),
                ("pads", &[0, 0, 1, 1]),
            ],
            true,
            vec![0.5],
        ),
    ];
    for (attrs, ceil, want) in cases {
        let got = outputs(&m(attrs, ceil));
        assert_eq!(got, want, "{attrs:?} ceil {ceil}");
    }
}
