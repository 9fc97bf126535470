//! A float initializer is the model owner's secret, and so is every constant
//! computed from one (reshaped, transposed, gathered, cast, scaled, joined):
//! where it meets the client's data it must become a weight of the plan, held
//! by the owner alone, never a public constant of the plan the client reads.
//! Constants that are not computed from initializers stay public constants.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_core::plan::Op;
use hush_onnx::proto::{NodeProto, TensorProto};
use hush_onnx::{ImportOptions, import};

/// The owner's weights: values no plan constant may contain.
const W: [f32; 4] = [0.3172, -1.2809, 0.5733, 2.9061];
const W2: [f32; 4] = [-0.6827, 1.4391, 0.1674, -2.2495];

/// Imports `bytes`, checks that no plan constant and no byte of the
/// serialized plan holds one of the weights' values, and returns the plan's
/// output on [`x`].
fn private_and_evaluated(case: &str, bytes: &[u8]) -> Vec<f64> {
    let m = import(bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
    for n in &m.plan.nodes {
        // The one public constant allowed: −1, negating the client's value
        // in `w − x`.
        if let Op::MulConst(c) = &n.op
            && c.data == [-1.0]
        {
            continue;
        }
        if let Op::AddConst(c) | Op::MulConst(c) = &n.op {
            panic!(
                "{case}: node {} carries a public constant {:?}",
                n.name, c.data
            );
        }
    }
    let plan = m.plan.to_bytes().unwrap();
    for w in W.iter().chain(&W2) {
        let candidates = [*w as f64, 1.0 / *w as f64, 2.0 * *w as f64, -(*w as f64)];
        for v in candidates {
            let needle = v.to_le_bytes();
            assert!(
                !plan.windows(8).any(|b| b == needle),
                "{case}: the plan the client reads contains the weight-derived {v}"
            );
            let needle32 = (v as f32).to_le_bytes();
            assert!(
                !plan.windows(4).any(|b| b == needle32),
                "{case}: the plan contains the weight-derived {v} as f32"
            );
        }
    }
    assert!(!m.weights.tensors.is_empty(), "{case}: no weights");
    outputs(&m)
}

/// Each case imports private and evaluates to its expected output.
fn all_private(cases: Vec<Case>) {
    for (case, nodes, inits, want) in cases {
        let got = private_and_evaluated(case, &model(nodes, inits));
        assert_close(case, &got, &want);
    }
}

fn assert_close(case: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{case}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // Plaintext f64 evaluation of f32 weights: only rounding differs.
        assert!((g - w).abs() < 1e-6, "{case}[{i}]: {g} vs {w}");
    }
}

fn elementwise(f: impl Fn(f64, f64) -> f64, w: &[f32]) -> Vec<f64> {
    x().iter().zip(w).map(|(&x, &w)| f(x, w as f64)).collect()
}

/// A graph's name, nodes, initializers and expected output.
type Case = (&'static str, Vec<NodeProto>, Vec<TensorProto>, Vec<f64>);

#[test]
fn constants_computed_from_initializers_stay_the_owners() {
    let cases: Vec<Case> = vec![
        (
            "Mul by a reshaped initializer",
            vec![
                node("Reshape", &["w", "shape"], "w2"),
                node("Mul", &["x", "w2"], "y"),
            ],
            vec![init("w", &[4], &W), ints("shape", &[1, 4])],
            elementwise(|x, w| x * w, &W),
        ),
        (
            "Add an unsqueezed initializer",
            vec![
                node("Unsqueeze", &["w", "axes"], "w2"),
                node("Add", &["x", "w2"], "y"),
            ],
            vec![init("w", &[4], &W), ints("axes", &[0])],
            elementwise(|x, w| x + w, &W),
        ),
        (
            "Mul by a transposed initializer",
            vec![
                with_ints(node("Transpose", &["w"], "w2"), "perm", &[1, 0]),
                node("Mul", &["w2", "x"], "y"),
            ],
            vec![init("w", &[4, 1], &W)],
            elementwise(|x, w| x * w, &W),
        ),
        (
            "Add an initializer scaled by a constant",
            vec![
                constant("two", &[], &[2.0]),
                node("Mul", &["w", "two"], "w2"),
                node("Add", &["x", "w2"], "y"),
            ],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| x + 2.0 * w, &W),
        ),
        (
            "Sub the sum of two initializers",
            vec![
                node("Add", &["w", "v"], "w2"),
                node("Sub", &["x", "w2"], "y"),
            ],
            vec![init("w", &[1, 4], &W), init("v", &[1, 4], &W2)],
            x().iter()
                .zip(W.iter().zip(&W2))
                .map(|(&x, (&w, &v))| x - (w as f64 + v as f64))
                .collect(),
        ),
        (
            "Div by a cast initializer",
            vec![node("Cast", &["w"], "w2"), node("Div", &["x", "w2"], "y")],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| x / w, &W),
        ),
        (
            "Mul by a row gathered from an initializer",
            vec![
                node("Gather", &["w", "row"], "w2"),
                node("Mul", &["x", "w2"], "y"),
            ],
            vec![
                init("w", &[2, 1, 4], &[W, W2].concat()),
                TensorProto {
                    dims: vec![],
                    ..ints("row", &[1])
                },
            ],
            elementwise(|x, w| x * w, &W2),
        ),
        (
            "Add two initializers joined",
            vec![
                with_int(node("Concat", &["a", "b"], "w2"), "axis", 1),
                node("Add", &["x", "w2"], "y"),
            ],
            vec![init("a", &[1, 2], &W[..2]), init("b", &[1, 2], &W[2..])],
            elementwise(|x, w| x + w, &W),
        ),
        (
            "Mul by a slice of an initializer",
            vec![
                node("Slice", &["w", "starts", "ends", "axes"], "w2"),
                node("Mul", &["x", "w2"], "y"),
            ],
            vec![
                init("w", &[2, 4], &[W, W2].concat()),
                ints("starts", &[0]),
                ints("ends", &[1]),
                ints("axes", &[0]),
            ],
            elementwise(|x, w| x * w, &W),
        ),
        (
            "An initializer minus the input",
            vec![node("Sub", &["w", "x"], "y")],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| w - x, &W),
        ),
        (
            "An initializer divided by the input",
            vec![node("Div", &["w", "x"], "y")],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| w / x, &W),
        ),
        (
            "Add the sine of an initializer",
            vec![node("Sin", &["w"], "w2"), node("Add", &["x", "w2"], "y")],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| x + w.sin(), &W),
        ),
        (
            "Mul by the exponential of a negated initializer",
            vec![
                node("Neg", &["w"], "w2"),
                node("Exp", &["w2"], "w3"),
                node("Mul", &["x", "w3"], "y"),
            ],
            vec![init("w", &[1, 4], &W)],
            elementwise(|x, w| x * (-w).exp(), &W),
        ),
        (
            "An initializer of ones divided by the input",
            vec![node("Div", &["w", "x"], "y")],
            vec![init("w", &[1], &[1.0])],
            elementwise(|x, _| 1.0 / x, &W),
        ),
    ];
    all_private(cases);
}

#[test]
fn constants_of_the_graph_itself_stay_public() {
    let c = [0.5f32, 0.25, 2.0, -1.0];
    let bytes = model(
        vec![
            constant("c", &[1, 4], &c),
            constant("one", &[], &[1.0]),
            node("Add", &["c", "one"], "c2"),
            node("Mul", &["x", "c2"], "y"),
        ],
        vec![],
    );
    let m = import(&bytes, &ImportOptions::default()).unwrap();
    let ops: Vec<&str> = m.plan.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Mul(const)"], "a public constant is not a weight");
    let got = outputs(&m);
    assert_close("public", &got, &elementwise(|x, c| x * (c + 1.0), &c));
}

/// An operator and its definition.
type Function = (&'static str, fn(f64) -> f64);

#[test]
fn elementwise_functions_of_graph_constants_fold_to_public_constants() {
    // Floor, Ceil, Round (half to even), Sign, Cos, Sqrt of a Constant.
    let c = [2.5f32, -1.5, 0.0, 9.0];
    let cases: [Function; 6] = [
        ("Floor", f64::floor),
        ("Ceil", f64::ceil),
        ("Round", f64::round_ties_even),
        ("Sign", |v| if v == 0.0 { 0.0 } else { v.signum() }),
        ("Cos", f64::cos),
        ("Abs", f64::abs),
    ];
    for (op, f) in cases {
        let bytes = model(
            vec![
                constant("c", &[1, 4], &c),
                node(op, &["c"], "c2"),
                node("Add", &["x", "c2"], "y"),
            ],
            vec![],
        );
        let m = import(&bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{op}: {e}"));
        let ops: Vec<&str> = m.plan.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(ops, ["Add(const)"], "{op}");
        assert_close(op, &outputs(&m), &elementwise(|x, c| x + f(c), &c));
    }
    // On a computed value, the constant-only ones are refused.
    let e = import(
        &model(vec![node("Floor", &["x"], "y")], vec![]),
        &ImportOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&e, hush_onnx::ImportError::Unsupported { detail, .. } if detail.contains("only on constants")),
        "{e}"
    );
}

#[test]
fn squeeze_and_expand_of_constants_keep_their_values() {
    // Expand a [4] initializer to [1, 4]; Squeeze a [1, 1, 4] one to [1, 4].
    let cases: Vec<Case> = vec![
        (
            "Mul by an expanded initializer",
            vec![
                node("Expand", &["w", "shape"], "w2"),
                node("Mul", &["x", "w2"], "y"),
            ],
            vec![init("w", &[4], &W), ints("shape", &[1, 4])],
            elementwise(|x, w| x * w, &W),
        ),
        (
            "Add a squeezed initializer",
            vec![
                node("Squeeze", &["w", "axes"], "w2"),
                node("Add", &["x", "w2"], "y"),
            ],
            vec![init("w", &[1, 1, 4], &W), ints("axes", &[0])],
            elementwise(|x, w| x + w, &W),
        ),
    ];
    all_private(cases);
    // The same on a public constant stays public, with its values.
    let c = [0.5f32, 0.25, 2.0, -1.0];
    let bytes = model(
        vec![
            constant("c", &[4], &c),
            constant("shape", &[2], &[1.0, 4.0]),
            node("Expand", &["c", "shape"], "c2"),
            node("Mul", &["x", "c2"], "y"),
        ],
        vec![],
    );
    let m = import(&bytes, &ImportOptions::default()).unwrap();
    let got = outputs(&m);
    assert_close("public Expand", &got, &elementwise(|x, c| x * c, &c));
}
