//! Max, Min, Sum, Mean, Neg and Abs of computed values, constants and
//! weights, in plaintext and under MPC, against a hand-computed reference.
//! Tolerance under MPC: 1e-4 (see `TOLERANCE`).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model, constant, init, node, x};
use hush_core::plan::Op;
use hush_onnx::proto::{NodeProto, TensorProto};

/// Additions and ReLUs are exact in fixed point: only the input's encoding
/// to 16 fractional bits rounds.
const TOLERANCE: f64 = 1e-4;

fn check(case: &str, nodes: Vec<NodeProto>, inits: Vec<TensorProto>, want: &[f64]) -> Vec<String> {
    check_model(case, nodes, inits, want, TOLERANCE)
}

fn relus(ops: &[String]) -> usize {
    ops.iter().filter(|o| *o == Op::Relu.name()).count()
}

#[test]
fn of_values() {
    // x = [0.5, −2, 1.25, 3].
    let xs: Vec<f64> = x().iter().copied().collect();
    let c = [1.0f32, -1.0, 2.0, 0.0];
    let half = constant("h", &[], &[0.5]);
    // Max(x, x·0.5, c) and Min(x, x·0.5, c): two computed operands and a
    // constant, two comparisons.
    for (op, pick) in [("Max", f64::max as fn(f64, f64) -> f64), ("Min", f64::min)] {
        let nodes = vec![
            half.clone(),
            constant("c", &[1, 4], &c),
            node("Mul", &["x", "h"], "xh"),
            node(op, &["x", "xh", "c"], "y"),
        ];
        let want: Vec<f64> = xs
            .iter()
            .zip(c)
            .map(|(&x, c)| pick(pick(x, 0.5 * x), c as f64))
            .collect();
        let ops = check(op, nodes, vec![], &want);
        assert_eq!(relus(&ops), 2, "{op}: {ops:?}");
    }
}

#[test]
fn of_a_value_and_a_weight_or_a_scalar() {
    let xs: Vec<f64> = x().iter().copied().collect();
    let w = [0.75f32, -3.0, 1.5, 2.5];
    for (op, pick) in [("Max", f64::max as fn(f64, f64) -> f64), ("Min", f64::min)] {
        let want: Vec<f64> = xs.iter().zip(w).map(|(&x, w)| pick(x, w as f64)).collect();
        let ops = check(
            op,
            vec![node(op, &["w", "x"], "y")],
            vec![init("w", &[1, 4], &w)],
            &want,
        );
        assert_eq!(relus(&ops), 1);
        // A weight stays a weight: no public constant in the plan.
        assert!(!ops.iter().any(|o| o.contains("const")), "{ops:?}");
        let want: Vec<f64> = xs.iter().map(|&x| pick(x, 1.0)).collect();
        check(
            op,
            vec![constant("one", &[], &[1.0]), node(op, &["x", "one"], "y")],
            vec![],
            &want,
        );
    }
    // One input: the value itself. Constants only: folded.
    let ops = check("Max(x)", vec![node("Max", &["x"], "y")], vec![], &xs);
    assert!(ops.is_empty(), "{ops:?}");
    let ops = check(
        "Min(c, d) + x",
        vec![
            constant("c", &[1, 4], &[1.0, 2.0, 3.0, 4.0]),
            constant("d", &[], &[2.5]),
            node("Min", &["c", "d"], "m"),
            node("Add", &["x", "m"], "y"),
        ],
        vec![],
        &xs.iter()
            .zip([1.0, 2.0, 2.5, 2.5])
            .map(|(x, m)| x + m)
            .collect::<Vec<_>>(),
    );
    assert_eq!(ops, ["Add(const)"]);
}

#[test]
fn sums_means_negations_and_absolute_values() {
    let xs: Vec<f64> = x().iter().copied().collect();
    let w = [0.75f32, -3.0, 1.5, 2.5];
    let half = || constant("h", &[], &[0.5]);
    // Sum(x, x·0.5, w, 1) and its Mean (4 inputs).
    for op in ["Sum", "Mean"] {
        let nodes = vec![
            half(),
            constant("one", &[], &[1.0]),
            node("Mul", &["x", "h"], "xh"),
            node(op, &["x", "xh", "w", "one"], "y"),
        ];
        let sum: Vec<f64> = xs
            .iter()
            .zip(w)
            .map(|(&x, w)| x + 0.5 * x + w as f64 + 1.0)
            .collect();
        let want: Vec<f64> = if op == "Mean" {
            sum.iter().map(|s| s / 4.0).collect()
        } else {
            sum
        };
        let ops = check(op, nodes, vec![init("w", &[1, 4], &w)], &want);
        // The weight and the public 1 are one weight: nothing public added.
        assert!(!ops.iter().any(|o| o == "Add(const)"), "{op}: {ops:?}");
    }
    let ops = check("Sum(x)", vec![node("Sum", &["x"], "y")], vec![], &xs);
    assert!(ops.is_empty());
    let neg: Vec<f64> = xs.iter().map(|x| -x).collect();
    let ops = check("Neg", vec![node("Neg", &["x"], "y")], vec![], &neg);
    assert_eq!(ops, ["Mul(const)"]);
    let abs: Vec<f64> = xs.iter().map(|x| x.abs()).collect();
    let ops = check("Abs", vec![node("Abs", &["x"], "y")], vec![], &abs);
    assert_eq!(relus(&ops), 1);
}
