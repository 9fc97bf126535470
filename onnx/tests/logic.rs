//! Comparisons (Equal included), Sign, logic, `Where` and `Cast` on
//! computed values, in plaintext and under MPC, against their ONNX
//! definitions computed here. Comparisons
//! are exact on the fixed-point grid (the inputs here are on it); the
//! tolerance under MPC, 1e-4, covers the products' truncation (one unit,
//! 1.5e-5).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, constant, init, model_with, node, with_int};
use hush_onnx::proto::NodeProto;
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};

const TOLERANCE: (f64, f64) = (1e-9, 1e-4);

/// Negative, zero, the thresholds used below exactly, and between them.
fn xs() -> Vec<f64> {
    vec![-3.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.5, -1.0]
}

fn x() -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[1, 8]), xs()).unwrap()
}

fn model(nodes: Vec<NodeProto>, inits: Vec<hush_onnx::proto::TensorProto>) -> Vec<u8> {
    model_with(17, &[1, 8], nodes, inits)
}

/// An operator and its definition on reals, or on truth values.
type Comparison = (&'static str, fn(f64, f64) -> bool);
type Logic = (&'static str, fn(bool, bool) -> bool);

fn number(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// `y = op(x, t)` for a threshold `t` given as a public constant.
fn against_constant(op: &str, t: f32) -> Vec<NodeProto> {
    vec![constant("t", &[], &[t]), node(op, &["x", "t"], "y")]
}

#[test]
fn comparisons_with_a_constant_are_one_batch_of_sign_tests() {
    let cases: [Comparison; 5] = [
        ("Equal", |a, b| a == b),
        ("Less", |a, b| a < b),
        ("Greater", |a, b| a > b),
        ("LessOrEqual", |a, b| a <= b),
        ("GreaterOrEqual", |a, b| a >= b),
    ];
    for (op, f) in cases {
        for t in [0.5f32, 0.0, -1.0] {
            let want: Vec<f64> = xs().iter().map(|&v| number(f(v, t as f64))).collect();
            let ops = check_model_on(
                &format!("{op} {t}"),
                &model(against_constant(op, t), vec![]),
                &x(),
                &want,
                TOLERANCE,
            );
            assert_eq!(
                ops.iter().filter(|o| *o == "IsNegative").count(),
                1,
                "{op}: {ops:?}"
            );
        }
    }
}

#[test]
fn comparisons_of_two_computed_values_and_with_a_weight() {
    // x ≥ −x ⇔ x ≥ 0, x = −x ⇔ x = 0; x < w with w the owner's initializer.
    let w = [0.0f32, 0.0, 0.5, 0.5, 0.5, 2.0, 2.0, -2.0];
    let want: Vec<f64> = xs().iter().map(|&v| number(v == 0.0)).collect();
    check_model_on(
        "x == -x",
        &model(
            vec![node("Neg", &["x"], "n"), node("Equal", &["x", "n"], "y")],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    let want: Vec<f64> = xs().iter().map(|&v| number(v >= -v)).collect();
    check_model_on(
        "x >= -x",
        &model(
            vec![
                node("Neg", &["x"], "n"),
                node("GreaterOrEqual", &["x", "n"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    let want: Vec<f64> = xs()
        .iter()
        .zip(w)
        .map(|(&v, w)| number(v < w as f64))
        .collect();
    let ops = check_model_on(
        "x < w",
        &model(
            vec![node("Less", &["x", "w"], "y")],
            vec![init("w", &[1, 8], &w)],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    // The threshold stays the owner's: a weight, not a plan constant.
    assert_eq!(ops, ["Add(weight)", "IsNegative"]);
    // w > x: the weight is the minuend.
    let want: Vec<f64> = xs()
        .iter()
        .zip(w)
        .map(|(&v, w)| number(w as f64 > v))
        .collect();
    let ops = check_model_on(
        "w > x",
        &model(
            vec![node("Greater", &["w", "x"], "y")],
            vec![init("w", &[1, 8], &w)],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    assert_eq!(ops, ["Add(weight)", "IsNegative"]);
}

#[test]
fn sign_is_zero_at_zero() {
    let want: Vec<f64> = xs()
        .iter()
        .map(|&v| if v == 0.0 { 0.0 } else { v.signum() })
        .collect();
    let sign = model(vec![node("Sign", &["x"], "y")], vec![]);
    let ops = check_model_on("Sign", &sign, &x(), &want, TOLERANCE);
    assert_eq!(ops.iter().filter(|o| *o == "IsNegative").count(), 1);
    // Its last node bears the ONNX output's name, as every operator's does.
    let plan = import(&sign, &Default::default()).unwrap().plan;
    assert_eq!(plan.values[plan.outputs[0]].name, "y");
}

#[test]
fn logic_of_comparisons() {
    let nodes = |op: &str| {
        let mut v = vec![
            constant("zero", &[], &[0.0]),
            constant("two", &[], &[2.0]),
            node("Greater", &["x", "zero"], "p"),
            node("Less", &["x", "two"], "q"),
        ];
        if op == "Not" {
            v.push(node("Not", &["p"], "y"));
        } else {
            v.push(node(op, &["p", "q"], "y"));
        }
        v
    };
    let cases: [Logic; 4] = [
        ("And", |p, q| p && q),
        ("Or", |p, q| p || q),
        ("Xor", |p, q| p != q),
        ("Not", |p, _| !p),
    ];
    for (op, f) in cases {
        let want: Vec<f64> = xs().iter().map(|&v| number(f(v > 0.0, v < 2.0))).collect();
        check_model_on(op, &model(nodes(op), vec![]), &x(), &want, TOLERANCE);
    }
    // With a constant operand: p ∧ [1,0,1,0,…], p ∨ [1,0,1,0,…].
    let mask = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    for (op, f) in [
        ("And", (|p, m| p && m) as fn(bool, bool) -> bool),
        ("Or", |p, m| p || m),
    ] {
        let want: Vec<f64> = xs()
            .iter()
            .zip(mask)
            .map(|(&v, m)| number(f(v > 0.0, m != 0.0)))
            .collect();
        let mut n = nodes("Not");
        n.truncate(3);
        n.push(constant("m", &[1, 8], &mask));
        n.push(node(op, &["p", "m"], "y"));
        check_model_on(
            &format!("{op} constant"),
            &model(n, vec![]),
            &x(),
            &want,
            TOLERANCE,
        );
    }
}

#[test]
fn where_with_a_computed_condition() {
    // A leaky ReLU written with Where: both branches computed.
    let want: Vec<f64> = xs()
        .iter()
        .map(|&v| if v > 0.0 { v } else { 0.125 * v })
        .collect();
    check_model_on(
        "where(x > 0, x, x/8)",
        &model(
            vec![
                constant("zero", &[], &[0.0]),
                constant("eighth", &[], &[0.125]),
                node("Greater", &["x", "zero"], "c"),
                node("Mul", &["x", "eighth"], "s"),
                node("Where", &["c", "x", "s"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    // Both branches constants (one the owner's): a product with a weight.
    let w = [4.0f32, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0];
    let want: Vec<f64> = xs()
        .iter()
        .zip(w)
        .map(|(&v, w)| if v < 0.0 { -1.0 } else { w as f64 })
        .collect();
    let ops = check_model_on(
        "where(x < 0, -1, w)",
        &model(
            vec![
                constant("zero", &[], &[0.0]),
                constant("minus_one", &[], &[-1.0]),
                node("Less", &["x", "zero"], "c"),
                node("Where", &["c", "minus_one", "w"], "y"),
            ],
            vec![init("w", &[1, 8], &w)],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    assert_eq!(
        ops,
        ["Add(const)", "IsNegative", "Mul(weight)", "Add(weight)"]
    );
    // One branch computed, the other a constant; the condition moved
    // (concatenated with itself) and broadcast against x.
    let want: Vec<f64> = [xs(), xs()]
        .concat()
        .iter()
        .map(|&v| if v >= 0.5 { v } else { -30.0 })
        .collect();
    check_model_on(
        "where(concat(x >= 0.5), x, -30)",
        &model(
            vec![
                constant("half", &[], &[0.5]),
                constant("low", &[], &[-30.0]),
                node("GreaterOrEqual", &["x", "half"], "c"),
                with_int(node("Concat", &["c", "c"], "cc"), "axis", 0),
                node("Where", &["cc", "x", "low"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
}

#[test]
fn where_with_a_constant_condition_chooses_elements_locally() {
    let mask = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    // Computed and constant branches, then two computed ones.
    let want: Vec<f64> = xs()
        .iter()
        .zip(mask)
        .map(|(&v, m)| if m != 0.0 { v } else { -30.0 })
        .collect();
    let ops = check_model_on(
        "where(mask, x, -30)",
        &model(
            vec![
                constant("m", &[1, 8], &mask),
                constant("low", &[], &[-30.0]),
                node("Where", &["m", "x", "low"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    assert_eq!(ops, ["Mul(const)", "Add(const)"]);
    let want: Vec<f64> = xs()
        .iter()
        .zip(mask)
        .map(|(&v, m)| if m != 0.0 { -v } else { 2.0 * v })
        .collect();
    check_model_on(
        "where(mask, -x, 2x)",
        &model(
            vec![
                constant("m", &[1, 8], &mask),
                constant("two", &[], &[2.0]),
                node("Neg", &["x"], "a"),
                node("Mul", &["x", "two"], "b"),
                node("Where", &["m", "a", "b"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    // The owner's mask stays the owner's.
    let ops = check_model_on(
        "where(w, x, -30)",
        &model(
            vec![
                constant("low", &[], &[-30.0]),
                node("Where", &["w", "x", "low"], "y"),
            ],
            vec![init("w", &[1, 8], &mask)],
        ),
        &x(),
        &want_masked(&mask),
        TOLERANCE,
    );
    assert_eq!(ops, ["Mul(weight)", "Add(weight)"]);
}

fn want_masked(mask: &[f32]) -> Vec<f64> {
    xs().iter()
        .zip(mask)
        .map(|(&v, &m)| if m != 0.0 { v } else { -30.0 })
        .collect()
}

#[test]
fn cast() {
    // A comparison cast to float, times x: a ReLU.
    let want: Vec<f64> = xs().iter().map(|&v| v.max(0.0)).collect();
    check_model_on(
        "cast(x > 0) * x",
        &model(
            vec![
                constant("zero", &[], &[0.0]),
                node("Greater", &["x", "zero"], "c"),
                with_int(node("Cast", &["c"], "f"), "to", 1),
                with_int(node("Cast", &["f"], "b"), "to", 9),
                with_int(node("Cast", &["b"], "i"), "to", 7),
                with_int(node("Cast", &["i"], "g"), "to", 1),
                node("Mul", &["g", "x"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
    // Constants convert: 2.7 → 2 (int64), −2.7 → −2, 0.3 → true.
    let want: Vec<f64> = xs().iter().map(|&v| v + 2.0 - 2.0 + 1.0).collect();
    check_model_on(
        "x + int(2.7) + int(-2.7) + bool(0.3)",
        &model(
            vec![
                constant("a", &[], &[2.7]),
                constant("b", &[], &[-2.7]),
                constant("c", &[], &[0.3]),
                with_int(node("Cast", &["a"], "ai"), "to", 7),
                with_int(node("Cast", &["b"], "bi"), "to", 6),
                with_int(node("Cast", &["c"], "cb"), "to", 9),
                node("Add", &["x", "ai"], "s1"),
                node("Add", &["s1", "bi"], "s2"),
                node("Add", &["s2", "cb"], "y"),
            ],
            vec![],
        ),
        &x(),
        &want,
        TOLERANCE,
    );
}

fn refused(nodes: Vec<NodeProto>) -> ImportError {
    match import(&model(nodes, vec![]), &Default::default()) {
        Ok(_) => panic!("imported"),
        Err(e) => e,
    }
}

#[test]
fn refused_where_values_are_not_known_booleans_or_not_finite() {
    let unsupported = |e: ImportError, what: &str| {
        assert!(
            matches!(&e, ImportError::Unsupported { detail, .. } if detail.contains(what)),
            "{e}"
        );
    };
    // A computed condition that is not a comparison's result.
    unsupported(
        refused(vec![node("Where", &["x", "x", "x"], "y")]),
        "not known to be boolean",
    );
    unsupported(
        refused(vec![node("And", &["x", "x"], "y")]),
        "not known to be boolean",
    );
    // Rounding a computed value to an integer.
    unsupported(
        refused(vec![with_int(node("Cast", &["x"], "y"), "to", 7)]),
        "rounding",
    );
    // A −∞ mask is one only before a softmax (tests/masks.rs); as an
    // output, fixed point has no number for it. +∞ is no mask at all.
    let e = refused(vec![
        constant("m", &[1, 8], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
        constant("low", &[], &[f32::NEG_INFINITY]),
        node("Where", &["m", "x", "low"], "y"),
    ]);
    assert!(
        matches!(&e, ImportError::Invalid { reason, .. } if reason.contains("-inf")),
        "{e}"
    );
    unsupported(
        refused(vec![
            constant("m", &[1, 8], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
            constant("high", &[], &[f32::INFINITY]),
            node("Where", &["m", "x", "high"], "y"),
        ]),
        "infinite",
    );
    // A constant operand of logic that is not boolean.
    let e = refused(vec![
        constant("zero", &[], &[0.0]),
        constant("half", &[], &[0.5]),
        node("Greater", &["x", "zero"], "p"),
        node("Or", &["p", "half"], "y"),
    ]);
    assert!(matches!(e, ImportError::Invalid { .. }), "{e}");
}
