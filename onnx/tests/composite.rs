//! Operators the importer composes from several plan operations — Elu,
//! Selu, Celu, Softsign, Softplus, Mish, ReduceMax, ReduceMin,
//! InstanceNormalization and GroupNormalization — and Log, in plaintext and
//! under MPC, against their ONNX definitions computed here in f64.
//! Tolerances are stated per case.

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, init, ints, model_with, node, with_int};
use hush_onnx::proto::{AttributeProto, NodeProto};
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};

fn with_float(mut n: NodeProto, name: &str, v: f32) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: Some(name.into()),
        r#type: Some(1), // FLOAT
        f: Some(v),
        ..Default::default()
    });
    n
}

fn input(shape: &[usize], v: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Values from −20 to 5: far below the exponential's floor (−15), in its
/// range, zero and positive.
fn spread() -> ArrayD<f64> {
    input(
        &[1, 10],
        vec![-20.0, -14.0, -6.0, -1.5, -0.3, 0.0, 0.4, 1.0, 2.0, 5.0],
    )
}

/// The definition an operator is checked against.
type Reference = Box<dyn Fn(f64) -> f64>;

#[test]
fn the_elu_family() {
    let x = spread();
    let elu = |x: f64, a: f64| if x > 0.0 { x } else { a * (x.exp() - 1.0) };
    let (sa, sg) = (1.673_263_2_f64, 1.050_701_f64);
    let cases: Vec<(&str, NodeProto, Reference)> = vec![
        (
            "Elu",
            node("Elu", &["x"], "y"),
            Box::new(move |x| elu(x, 1.0)),
        ),
        (
            "Elu α=0.5",
            with_float(node("Elu", &["x"], "y"), "alpha", 0.5),
            Box::new(move |x| elu(x, 0.5)),
        ),
        (
            "Selu",
            node("Selu", &["x"], "y"),
            Box::new(move |x| sg * elu(x, sa)),
        ),
        (
            "Celu α=2",
            with_float(node("Celu", &["x"], "y"), "alpha", 2.0),
            // max(0, x) + min(0, α(e^(x/α) − 1))
            Box::new(|x: f64| x.max(0.0) + (2.0 * ((x / 2.0).exp() - 1.0)).min(0.0)),
        ),
        (
            "Softsign",
            node("Softsign", &["x"], "y"),
            Box::new(|x: f64| x / (1.0 + x.abs())),
        ),
        (
            "Softplus",
            node("Softplus", &["x"], "y"),
            Box::new(|x: f64| x.exp().ln_1p()),
        ),
        (
            "Mish",
            node("Mish", &["x"], "y"),
            Box::new(|x: f64| x * x.exp().ln_1p().tanh()),
        ),
    ];
    for (case, n, f) in cases {
        let want: Vec<f64> = x.iter().map(|&v| f(v)).collect();
        // Plaintext: exact but for the exponential's floor (e^−15 < 3.1e−7,
        // times |x| ≤ 20 in Mish).
        // Under MPC: the exponential's relative 1e−3 (times α·γ ≤ 1.8), the
        // division's and the logarithm's 1e−3 relative (of values ≤ 1 and
        // ln 2), tanh's 6e−4, and the input's encoding.
        check_model_on(
            case,
            &model_with(17, &[1, 10], vec![n], vec![]),
            &x,
            &want,
            (1e-5, 2e-3),
        );
    }
}

#[test]
fn reduce_max_and_min() {
    // x [2, 3, 4], values in a fixed scramble with repeats.
    let shape = [2usize, 3, 4];
    let v: Vec<f64> = (0..24)
        .map(|i| ((i * 7 + 3) % 11) as f64 * 0.75 - 4.0)
        .collect();
    let x = input(&shape, v);
    let cases: [(&[i64], i64); 5] = [
        (&[1], 1),
        (&[0, 2], 0),
        (&[-1], 1),
        (&[2, 0, 1], 0),
        (&[0], 0),
    ];
    for op in ["ReduceMax", "ReduceMin"] {
        for (axes, keepdims) in cases {
            let pick = |a: f64, b: f64| {
                if op == "ReduceMax" {
                    a.max(b)
                } else {
                    a.min(b)
                }
            };
            let norm: Vec<usize> = axes.iter().map(|&a| a.rem_euclid(3) as usize).collect();
            let mut want = x.clone();
            let mut sorted = norm.clone();
            sorted.sort_unstable();
            for &a in sorted.iter().rev() {
                want = want.fold_axis(ndarray::Axis(a), f64::NAN, |&acc, &v| {
                    if acc.is_nan() { v } else { pick(acc, v) }
                });
                if keepdims == 1 {
                    want = want.insert_axis(ndarray::Axis(a));
                }
            }
            let want: Vec<f64> = want.iter().copied().collect();
            let case = format!("{op} axes {axes:?} keepdims {keepdims}");
            // Opset 17: axes as an attribute; 18: as an input.
            let at17 = with_int(
                common::with_ints(node(op, &["x"], "y"), "axes", axes),
                "keepdims",
                keepdims,
            );
            let at18 = with_int(node(op, &["x", "axes"], "y"), "keepdims", keepdims);
            for (opset, n, inits) in [(17, at17, vec![]), (18, at18, vec![ints("axes", axes)])] {
                // Comparisons and negations are exact: only the encoding
                // of the input to 16 fractional bits rounds.
                let ops = check_model_on(
                    &case,
                    &model_with(opset, &dims(&shape), vec![n], inits),
                    &x,
                    &want,
                    (1e-12, 1e-4),
                );
                assert!(
                    ops.contains(&"GlobalMaxPool".to_string()),
                    "{case}: {ops:?}"
                );
            }
        }
    }
}

/// Normalizes `x` [N, C, rest…] over groups of `C / groups` channels, then
/// applies the per-channel `scale` and `bias`.
fn group_norm_reference(
    x: &ArrayD<f64>,
    groups: usize,
    scale: &[f64],
    bias: &[f64],
    eps: f64,
) -> Vec<f64> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let per_channel: usize = x.shape()[2..].iter().product();
    let flat: Vec<f64> = x.iter().copied().collect();
    let group_len = c / groups * per_channel;
    let mut out = vec![0.0; flat.len()];
    for s in 0..n {
        for g in 0..groups {
            let start = (s * groups + g) * group_len;
            let part = &flat[start..start + group_len];
            let mean = part.iter().sum::<f64>() / group_len as f64;
            let var = part.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / group_len as f64;
            for (k, v) in part.iter().enumerate() {
                let ch = (start + k) / per_channel % c;
                out[start + k] = (v - mean) / (var + eps).sqrt() * scale[ch] + bias[ch];
            }
        }
    }
    out
}

#[test]
fn instance_and_group_normalization() {
    let shape = [2usize, 4, 3, 3];
    let len: usize = shape.iter().product();
    let v: Vec<f64> = (0..len)
        .map(|i| ((i * 13 + 5) % 17) as f64 * 0.6 - 4.0 + (i / 18) as f64 * 0.3)
        .collect();
    let x = input(&shape, v);
    let scale = [0.5f32, -1.25, 2.0, 0.75];
    let bias = [0.1f32, 0.0, -0.6, 1.5];
    let f64s = |v: &[f32]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
    let eps = 1e-5;
    // Layer normalization: abs ≤ 2e−3 (docs/ACCURACY.md), times the
    // largest scale (2).
    let tolerance = (1e-9, 4e-3);

    let want = group_norm_reference(&x, 4, &f64s(&scale), &f64s(&bias), eps);
    let inits = vec![init("s", &[4], &scale), init("b", &[4], &bias)];
    let n = node("InstanceNormalization", &["x", "s", "b"], "y");
    let ops = check_model_on(
        "InstanceNormalization",
        &model_with(17, &dims(&shape), vec![n], inits),
        &x,
        &want,
        tolerance,
    );
    // The scale and bias are the owner's weights, not public constants.
    assert!(ops.contains(&"Mul(weight)".to_string()), "{ops:?}");
    assert!(ops.contains(&"Add(weight)".to_string()), "{ops:?}");

    // Opset 21: per channel.
    let want = group_norm_reference(&x, 2, &f64s(&scale), &f64s(&bias), eps);
    let n = with_int(
        node("GroupNormalization", &["x", "s", "b"], "y"),
        "num_groups",
        2,
    );
    let inits = vec![init("s", &[4], &scale), init("b", &[4], &bias)];
    check_model_on(
        "GroupNormalization (opset 21)",
        &model_with(21, &dims(&shape), vec![n.clone()], inits),
        &x,
        &want,
        tolerance,
    );
    // Opset 18: per group (each group's value for all its channels).
    let (gs, gb) = ([0.5f32, 2.0], [0.1f32, -0.6]);
    let want = group_norm_reference(
        &x,
        2,
        &[0.5, 0.5, 2.0, 2.0],
        &f64s(&[0.1, 0.1, -0.6, -0.6]),
        eps,
    );
    let inits = vec![init("s", &[2], &gs), init("b", &[2], &gb)];
    check_model_on(
        "GroupNormalization (opset 18)",
        &model_with(18, &dims(&shape), vec![n.clone()], inits),
        &x,
        &want,
        tolerance,
    );

    // Wrong lengths and group counts are errors naming the node.
    let inits = || vec![init("s", &[4], &scale), init("b", &[4], &bias)];
    let at18 = import(
        &model_with(18, &dims(&shape), vec![n], inits()),
        &Default::default(),
    );
    assert!(matches!(at18, Err(ImportError::Invalid { .. })), "{at18:?}");
    let three = with_int(
        node("GroupNormalization", &["x", "s", "b"], "y"),
        "num_groups",
        3,
    );
    let r = import(
        &model_with(21, &dims(&shape), vec![three], inits()),
        &Default::default(),
    );
    assert!(matches!(r, Err(ImportError::Invalid { .. })), "{r:?}");
}

#[test]
fn logarithm() {
    // Over the reciprocal's range: 0.01 to 1000.
    let x = input(&[1, 6], vec![0.01, 0.2, 1.0, 2.5, 40.0, 1000.0]);
    let want: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    // Relative 1e−3 (docs/ACCURACY.md) of |ln x| ≤ 6.9.
    check_model_on(
        "Log",
        &model_with(17, &[1, 6], vec![node("Log", &["x"], "y")], vec![]),
        &x,
        &want,
        (1e-12, 7e-3),
    );
}

fn scrambled(shape: &[usize], seed: usize) -> ArrayD<f64> {
    let len: usize = shape.iter().product();
    let v = (0..len)
        .map(|i| (((i + seed) * 29 + 7) % 19) as f64 * 0.375 - 3.25)
        .collect();
    input(shape, v)
}

#[test]
fn softmax_and_log_softmax_over_any_axis() {
    let shape = [2usize, 3, 4];
    let x = scrambled(&shape, 0);
    for op in ["Softmax", "LogSoftmax"] {
        for axis in [0i64, 1, -1] {
            let a = axis.rem_euclid(3) as usize;
            let max = x.fold_axis(ndarray::Axis(a), f64::MIN, |&m, &v| m.max(v));
            let e = &x - &max.insert_axis(ndarray::Axis(a));
            let e = e.mapv(f64::exp);
            let sum = e.sum_axis(ndarray::Axis(a)).insert_axis(ndarray::Axis(a));
            let soft = &e / &sum;
            let want: Vec<f64> = if op == "Softmax" {
                soft.iter().copied().collect()
            } else {
                soft.iter().map(|v| v.ln()).collect()
            };
            let n = with_int(node(op, &["x"], "y"), "axis", axis);
            // docs/ACCURACY.md: softmax abs ≤ 1e−3, log-softmax abs ≤ 2e−3.
            check_model_on(
                &format!("{op} axis {axis}"),
                &model_with(17, &dims(&shape), vec![n], vec![]),
                &x,
                &want,
                (1e-12, 2e-3),
            );
        }
    }
}

#[test]
fn layer_normalization_over_trailing_axes() {
    let shape = [2usize, 3, 4];
    let x = scrambled(&shape, 3);
    let scale: Vec<f32> = (0..12).map(|i| 0.5 + i as f32 * 0.125).collect();
    let bias: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    // Axis 1: each sample normalized over its 12 values.
    let flat: Vec<f64> = x.iter().copied().collect();
    let mut want = Vec::new();
    for row in flat.chunks(12) {
        let mean = row.iter().sum::<f64>() / 12.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
        for (k, v) in row.iter().enumerate() {
            want.push((v - mean) / (var + 1e-5).sqrt() * scale[k] as f64 + bias[k] as f64);
        }
    }
    let n = with_int(node("LayerNormalization", &["x", "s", "b"], "y"), "axis", 1);
    let inits = vec![init("s", &[3, 4], &scale), init("b", &[3, 4], &bias)];
    // Layer normalization abs ≤ 2e−3 (docs/ACCURACY.md), times the largest
    // scale (1.875).
    check_model_on(
        "LayerNormalization axis 1",
        &model_with(17, &dims(&shape), vec![n], inits),
        &x,
        &want,
        (1e-9, 4e-3),
    );
    // A scale that does not broadcast to the input is refused.
    let n = node("LayerNormalization", &["x", "s"], "y");
    let r = import(
        &model_with(17, &dims(&shape), vec![n], vec![init("s", &[5], &[1.0; 5])]),
        &Default::default(),
    );
    assert!(matches!(r, Err(ImportError::Invalid { .. })), "{r:?}");
}

#[test]
fn prelu_with_a_weight_or_a_constant_slope() {
    let shape = [1usize, 3, 2, 2];
    let x = scrambled(&shape, 5);
    let slope = [0.25f32, -0.5, 1.5];
    let want: Vec<f64> = x
        .indexed_iter()
        .map(|(ix, &v)| if v > 0.0 { v } else { slope[ix[1]] as f64 * v })
        .collect();
    let n = node("PRelu", &["x", "slope"], "y");
    // Comparisons exact; one product with the slope, truncated once.
    let ops = check_model_on(
        "PRelu (weight)",
        &model_with(
            17,
            &dims(&shape),
            vec![n.clone()],
            vec![init("slope", &[3, 1, 1], &slope)],
        ),
        &x,
        &want,
        (1e-12, 1e-4),
    );
    assert!(ops.contains(&"Mul(weight)".to_string()), "{ops:?}");
    let want: Vec<f64> = x
        .iter()
        .map(|&v| if v > 0.0 { v } else { 0.1 * v })
        .collect();
    let ops = check_model_on(
        "PRelu (constant)",
        &model_with(
            17,
            &dims(&shape),
            vec![common::constant("slope", &[], &[0.1]), n],
            vec![],
        ),
        &x,
        &want,
        (1e-6, 1e-4),
    );
    assert!(ops.contains(&"Mul(const)".to_string()), "{ops:?}");
}

#[test]
fn l1_l2_and_sum_of_squares_reductions() {
    let shape = [2usize, 3, 4];
    let x = scrambled(&shape, 11);
    for (op, f) in [
        ("ReduceL1", (|v: f64| v.abs()) as fn(f64) -> f64),
        ("ReduceL2", |v: f64| v * v),
        ("ReduceSumSquare", |v: f64| v * v),
    ] {
        let sums = x.mapv(f).sum_axis(ndarray::Axis(2));
        let want: Vec<f64> = if op == "ReduceL2" {
            sums.iter().map(|v| v.sqrt()).collect()
        } else {
            sums.iter().copied().collect()
        };
        let n = with_int(
            common::with_ints(node(op, &["x"], "y"), "axes", &[2]),
            "keepdims",
            0,
        );
        // Squares truncate once each (4 terms of ≤ 11); the square root
        // abs ≤ 1e−3 (docs/ACCURACY.md).
        check_model_on(
            op,
            &model_with(17, &dims(&shape), vec![n], vec![]),
            &x,
            &want,
            (1e-9, 2e-3),
        );
    }
}

#[test]
fn a_norm_that_reduces_nothing_is_refused() {
    let noop = |n| with_int(n, "noop_with_empty_axes", 1);
    let shape = [2i64, 3];
    let with_axes = noop(common::with_ints(
        node("ReduceL2", &["x"], "y"),
        "axes",
        &[1],
    ));
    assert!(
        import(
            &model_with(17, &shape, vec![with_axes], vec![]),
            &Default::default()
        )
        .is_ok()
    );
    let without = noop(node("ReduceL2", &["x"], "y"));
    let r = import(
        &model_with(17, &shape, vec![without], vec![]),
        &Default::default(),
    );
    assert!(matches!(r, Err(ImportError::Unsupported { .. })), "{r:?}");
}

#[test]
fn depth_to_space_and_back() {
    // x [1, 8, 2, 3], blocksize 2.
    let shape = [1usize, 8, 2, 3];
    let x = scrambled(&shape, 2);
    let b = 2;
    let c = 8 / (b * b);
    for mode in ["DCR", "CRD"] {
        let mut want = ArrayD::zeros(IxDyn(&[1, c, 4, 6]));
        for ch in 0..c {
            for h in 0..2 {
                for w in 0..3 {
                    for i in 0..b {
                        for j in 0..b {
                            let from = if mode == "DCR" {
                                (i * b + j) * c + ch
                            } else {
                                ch * b * b + i * b + j
                            };
                            want[[0, ch, h * b + i, w * b + j]] = x[[0, from, h, w]];
                        }
                    }
                }
            }
        }
        let mut n = with_int(node("DepthToSpace", &["x"], "y"), "blocksize", 2);
        n.attribute.push(AttributeProto {
            name: Some("mode".into()),
            r#type: Some(3), // STRING
            s: Some(mode.as_bytes().to_vec()),
            ..Default::default()
        });
        let want: Vec<f64> = want.iter().copied().collect();
        // Data movement only: exact but for the input's encoding.
        let ops = check_model_on(
            mode,
            &model_with(17, &dims(&shape), vec![n], vec![]),
            &x,
            &want,
            (f64::EPSILON, 1e-4),
        );
        assert!(
            ops.iter().all(|o| o == "Reshape" || o == "Transpose"),
            "{ops:?}"
        );
    }
    // SpaceToDepth then DepthToSpace (DCR) is the identity.
    let nodes = vec![
        with_int(node("SpaceToDepth", &["x"], "t"), "blocksize", 2),
        with_int(node("DepthToSpace", &["t"], "y"), "blocksize", 2),
    ];
    let shape = [1usize, 2, 4, 6];
    let x = scrambled(&shape, 4);
    let want: Vec<f64> = x.iter().copied().collect();
    check_model_on(
        "SpaceToDepth, DepthToSpace",
        &model_with(17, &dims(&shape), nodes, vec![]),
        &x,
        &want,
        (f64::EPSILON, 1e-4),
    );
}
