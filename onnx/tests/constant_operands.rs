//! A public constant on the left of Sub or Div: `c − x` is the negation of
//! `x` plus `c`, `c / x` its reciprocal times `c` (`1 / x` alone).

#![allow(clippy::unwrap_used)]

mod common;

use common::{constant, model, node, outputs, secure_evaluate, x};
use hush_onnx::{ImportOptions, Imported, import};

/// The plan's operator names and its plaintext output on [`x`] for
/// `c <op> x`. The secure evaluation, on `|x|` (the reciprocal needs a
/// positive divisor), is checked against the plaintext one within 1e-3
/// (fixed point with 16 fractional bits and the reciprocal's approximation,
/// docs/ACCURACY.md).
fn left_constant(op: &str, dims: &[i64], c: &[f32]) -> (Vec<String>, Vec<f64>) {
    let m = imported(op, dims, c);
    let input = x().mapv(|v: f64| v.abs());
    let plain = hush_core::plan::plain::evaluate(&m.plan, &m.weights, std::slice::from_ref(&input))
        .unwrap()
        .remove(0);
    let secure = secure_evaluate(op, &m, &input);
    assert_eq!(secure.shape(), plain.shape());
    for (s, p) in secure.iter().zip(&plain) {
        assert!(
            (s - p).abs() < 1e-3,
            "{op}: secure {secure} vs plaintext {plain}"
        );
    }
    let ops = m
        .plan
        .nodes
        .iter()
        .map(|n| n.op.name().to_string())
        .collect();
    (ops, outputs(&m))
}

fn imported(op: &str, dims: &[i64], c: &[f32]) -> Imported {
    import(
        &model(
            vec![constant("c", dims, c), node(op, &["c", "x"], "y")],
            vec![],
        ),
        &ImportOptions::default(),
    )
    .unwrap()
}

fn assert_close(case: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{case}");
    for (g, w) in got.iter().zip(want) {
        // Plaintext f64 evaluation: only rounding differs.
        assert!((g - w).abs() < 1e-9, "{case}: {got:?} vs {want:?}");
    }
}

#[test]
fn a_constant_minus_a_value() {
    let (ops, got) = left_constant("Sub", &[], &[1.0]);
    assert_eq!(ops, ["Mul(const)", "Add(const)"]);
    let want: Vec<f64> = x().iter().map(|x| 1.0 - x).collect();
    assert_close("1 - x", &got, &want);
    // Broadcast: a [2, 1, 4] constant over the [1, 4] input.
    let c: Vec<f32> = (0..8).map(|i| i as f32 * 0.5).collect();
    let (_, got) = left_constant("Sub", &[2, 1, 4], &c);
    let xs: Vec<f64> = x().iter().copied().collect();
    let want: Vec<f64> = c
        .iter()
        .enumerate()
        .map(|(i, &c)| c as f64 - xs[i % 4])
        .collect();
    assert_close("c[2,1,4] - x", &got, &want);
}

#[test]
fn a_constant_divided_by_a_value() {
    let (ops, got) = left_constant("Div", &[], &[1.0]);
    assert_eq!(ops, ["Reciprocal"], "1 / x needs no product");
    let want: Vec<f64> = x().iter().map(|x| 1.0 / x).collect();
    assert_close("1 / x", &got, &want);
    let c = [3.0f32, -0.5, 2.0, 8.0];
    let (ops, got) = left_constant("Div", &[1, 4], &c);
    assert_eq!(ops, ["Reciprocal", "Mul(const)"]);
    let want: Vec<f64> = x().iter().zip(c).map(|(x, c)| c as f64 / x).collect();
    assert_close("c / x", &got, &want);
}
