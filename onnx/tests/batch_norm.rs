//! BatchNormalization: parameters that do not match the channels are an
//! error (not a panic), and a normalization is folded into the product
//! before it only where its channels are that product's columns.

#![allow(clippy::unwrap_used)]

mod common;

use common::{init, ints, model, node, outputs, x};
use hush_core::plan::Op;
use hush_onnx::{ImportError, ImportOptions, import};

fn bn(inputs: &[&str]) -> hush_onnx::proto::NodeProto {
    node("BatchNormalization", inputs, "y")
}

/// Scale, bias, mean and variance of the given lengths, for `x` of [1, 4].
fn params(lens: [usize; 4]) -> Vec<hush_onnx::proto::TensorProto> {
    ["g", "b", "m", "v"]
        .iter()
        .zip(lens)
        .map(|(name, l)| init(name, &[l as i64], &vec![1.0; l]))
        .collect()
}

#[test]
fn parameters_of_another_length_than_the_channels_are_refused() {
    for lens in [
        [4, 4, 4, 2],
        [4, 4, 3, 4],
        [4, 5, 4, 4],
        [2, 4, 4, 4],
        [0, 0, 0, 0],
    ] {
        let m = model(vec![bn(&["x", "g", "b", "m", "v"])], params(lens));
        match import(&m, &ImportOptions::default()) {
            Err(ImportError::Invalid { reason, .. }) => {
                assert!(reason.contains("a value per channel"), "{lens:?}: {reason}")
            }
            other => panic!("{lens:?}: {other:?}"),
        }
    }
    // A scale of another shape but one value per channel is read in order.
    let mut p = params([4, 4, 4, 4]);
    p[0] = init("g", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let m = import(
        &model(vec![bn(&["x", "g", "b", "m", "v"])], p),
        &ImportOptions::default(),
    )
    .unwrap();
    let want: Vec<f64> = x()
        .iter()
        .zip([1.0, 2.0, 3.0, 4.0])
        .map(|(x, g)| x * g / (1.0f64 + 1e-5).sqrt() + 1.0 - 1.0 * g / (1.0f64 + 1e-5).sqrt())
        .collect();
    for (g, w) in outputs(&m).iter().zip(&want) {
        assert!((g - w).abs() < 1e-9, "{g} vs {w}");
    }
}

/// `x` [1, 4] reshaped to [1, 2, 2], times `w` [2, n], then normalized over
/// axis 1 (2 channels): the product's columns are not the channels, so the
/// normalization must stay a node of its own.
#[test]
fn normalization_after_a_batched_product_is_not_folded_into_its_columns() {
    for n in [2usize, 3] {
        let w: Vec<f32> = (0..2 * n).map(|i| 0.5 + i as f32).collect();
        let (gamma, beta, mean, var) = (
            [2.0f32, -1.0],
            [0.25f32, 1.0],
            [0.5f32, -0.5],
            [4.0f32, 1.0],
        );
        let m = model(
            vec![
                node("Reshape", &["x", "shape"], "r"),
                node("MatMul", &["r", "w"], "p"),
                bn(&["p", "g", "b", "m", "v"]),
            ],
            vec![
                ints("shape", &[1, 2, 2]),
                init("w", &[2, n as i64], &w),
                init("g", &[2], &gamma),
                init("b", &[2], &beta),
                init("m", &[2], &mean),
                init("v", &[2], &var),
            ],
        );
        let m = import(&m, &ImportOptions::default()).unwrap();
        assert!(
            m.plan
                .nodes
                .iter()
                .any(|node| matches!(node.op, Op::MulWeight { .. })),
            "n = {n}: the normalization was folded into the product"
        );
        // Plaintext reference: row t of the product is channel t.
        let xs = x();
        let xs: Vec<f64> = xs.iter().copied().collect();
        let mut want = vec![];
        for t in 0..2 {
            let scale = gamma[t] as f64 / (var[t] as f64 + 1e-5).sqrt();
            for j in 0..n {
                let p: f64 = (0..2).map(|k| xs[2 * t + k] * w[k * n + j] as f64).sum();
                want.push((p - mean[t] as f64) * scale + beta[t] as f64);
            }
        }
        let got = outputs(&m);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "n = {n}: {got:?} vs {want:?}");
        }
    }
}
