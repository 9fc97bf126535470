//! `Einsum` in plaintext and under MPC, against a direct evaluation of the
//! equation computed here (a sum over every assignment of the indices).
//! Inputs are on the fixed-point grid; under MPC each product truncates
//! once per output (tolerance 1e-4: a few units of 2^−16).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, init, model_with, node, with_ints};
use hush_onnx::proto::{AttributeProto, NodeProto};
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;

const TOLERANCE: (f64, f64) = (1e-9, 1e-4);

fn einsum(inputs: &[&str], equation: &str) -> NodeProto {
    let mut n = node("Einsum", inputs, "y");
    n.attribute.push(AttributeProto {
        name: Some("equation".into()),
        r#type: Some(3), // STRING
        s: Some(equation.as_bytes().to_vec()),
        ..Default::default()
    });
    n
}

/// `x`: [2, 3, 4], multiples of 1/8 in [−1.5, 1.5].
fn x() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |ix| {
        (((ix[0] * 12 + ix[1] * 4 + ix[2]) * 7 % 25) as f64 - 12.0) / 8.0
    })
}

fn w(shape: &[usize]) -> ArrayD<f64> {
    let mut k = 0;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        k += 1;
        ((k * 5 % 11) as f64 - 5.0) / 4.0
    })
}

fn init_of(name: &str, a: &ArrayD<f64>) -> hush_onnx::proto::TensorProto {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let v: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    init(name, &dims, &v)
}

/// The equation evaluated directly: every assignment of the indices, the
/// product of the operands' elements added into the output's.
fn reference(equation: &str, operands: &[&ArrayD<f64>]) -> Vec<f64> {
    let (lhs, out) = equation.split_once("->").unwrap();
    let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut sizes: HashMap<char, usize> = HashMap::new();
    for (t, a) in terms.iter().zip(operands) {
        for (c, &d) in t.iter().zip(a.shape()) {
            sizes.insert(*c, d);
        }
    }
    let all: Vec<char> = sizes.keys().copied().collect();
    let out_shape: Vec<usize> = out.iter().map(|c| sizes[c]).collect();
    let mut y = ArrayD::<f64>::zeros(IxDyn(&out_shape));
    let total: usize = all.iter().map(|c| sizes[c]).product();
    for mut k in 0..total {
        let mut at: HashMap<char, usize> = HashMap::new();
        for c in &all {
            at.insert(*c, k % sizes[c]);
            k /= sizes[c];
        }
        let p: f64 = terms
            .iter()
            .zip(operands)
            .map(|(t, a)| a[IxDyn(&t.iter().map(|c| at[c]).collect::<Vec<_>>())])
            .product();
        y[IxDyn(&out.iter().map(|c| at[c]).collect::<Vec<_>>())] += p;
    }
    y.iter().copied().collect()
}

fn check(
    case: &str,
    nodes: Vec<NodeProto>,
    inits: Vec<hush_onnx::proto::TensorProto>,
    want: &[f64],
) -> Vec<String> {
    check_model_on(
        case,
        &model_with(17, &[2, 3, 4], nodes, inits),
        &x(),
        want,
        TOLERANCE,
    )
}

fn transposed(a: &ArrayD<f64>, perm: &[usize]) -> ArrayD<f64> {
    a.view().permuted_axes(IxDyn(perm)).to_owned()
}

#[test]
fn products_of_two_computed_values() {
    let x = x();
    let xt = transposed(&x, &[0, 2, 1]);
    // A batched product, a contraction over the middle axis, attention's
    // scores of a [1, 2, 3, 4] view, and an outer product after sums.
    let xt_node = || with_ints(node("Transpose", &["x"], "xt"), "perm", &[0, 2, 1]);
    let ops = check(
        "bij,bjk->bik",
        vec![xt_node(), einsum(&["x", "xt"], "bij,bjk->bik")],
        vec![],
        &reference("bij,bjk->bik", &[&x, &xt]),
    );
    assert_eq!(ops.iter().filter(|o| *o == "MatMul").count(), 1, "{ops:?}");
    check(
        "bij,bik->bjk",
        vec![einsum(&["x", "x"], "bij,bik->bjk")],
        vec![],
        &reference("bij,bik->bjk", &[&x, &x]),
    );
    check(
        "bij,bkj->bik",
        vec![einsum(&["x", "x"], "bij,bkj->bik")],
        vec![],
        &reference("bij,bkj->bik", &[&x, &x]),
    );
    check(
        "bij,bkl->bk (sums first)",
        vec![einsum(&["x", "x"], "bij,bkl->bk")],
        vec![],
        &reference("bij,bkl->bk", &[&x, &x]),
    );
}

#[test]
fn products_with_a_weight() {
    let x = x();
    let w45 = w(&[4, 5]);
    let ops = check(
        "bij,jk->bik",
        vec![einsum(&["x", "w"], "bij,jk->bik")],
        vec![init_of("w", &w45)],
        &reference("bij,jk->bik", &[&x, &w45]),
    );
    assert!(ops.contains(&"MatMul(weight)".to_string()), "{ops:?}");
    assert!(!ops.contains(&"MatMul".to_string()), "{ops:?}");
    // The weight on the left, contracted over x's middle axis.
    let w53 = w(&[5, 3]);
    check(
        "ij,bjk->bik",
        vec![einsum(&["w", "x"], "ij,bjk->bik")],
        vec![init_of("w", &w53)],
        &reference("ij,bjk->bik", &[&w53, &x]),
    );
    // Two contracted indices, the output's order mixed.
    let w342 = w(&[3, 4, 2]);
    check(
        "bij,ijk->kb",
        vec![einsum(&["x", "w"], "bij,ijk->kb")],
        vec![init_of("w", &w342)],
        &reference("bij,ijk->kb", &[&x, &w342]),
    );
}

#[test]
fn one_operand_transposes_and_sums() {
    let x = x();
    for eq in ["bij->bji", "bij->b", "bij->jb", "bij->jib"] {
        check(eq, vec![einsum(&["x"], eq)], vec![], &reference(eq, &[&x]));
    }
}

#[test]
fn refused_forms() {
    let unsupported = |nodes: Vec<NodeProto>, what: &str| match import(
        &model_with(17, &[2, 3, 4], nodes, vec![init_of("w", &w(&[2, 4, 5]))]),
        &Default::default(),
    ) {
        Err(ImportError::Unsupported { detail, .. }) if detail.contains(what) => {}
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: imported"),
    };
    unsupported(vec![einsum(&["x"], "...ij->...ji")], "ellipsis");
    unsupported(vec![einsum(&["x"], "bij")], "implicit");
    unsupported(vec![einsum(&["x"], "bii->bi")], "diagonal");
    unsupported(
        vec![einsum(&["x", "w"], "bij,bjk->bik")],
        "batched product with a weight",
    );
    // A rank that disagrees with the equation is malformed.
    let e = import(
        &model_with(17, &[2, 3, 4], vec![einsum(&["x"], "ij->ji")], vec![]),
        &Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, ImportError::Invalid { .. }), "{e}");
}
