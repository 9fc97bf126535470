//! Attention masks before a softmax, as transformers export them: a padding
//! mask `(1 − keep)·finfo.min`, a causal mask of `−∞`, `masked_fill` by
//! `Where`, and the finite `−10000` of older exports. Each is checked in
//! plaintext and under MPC against the softmax computed here in f64, where
//! the masked positions weigh nothing (tolerance: 1e-5 in plaintext, where
//! only the stand-in for `−∞`, `−2^20`, differs; 1e-3 under MPC, the
//! softmax's approximation). Uses the importer may not allow are refused.

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, constant, ints, model_with, node, with_int};
use hush_onnx::proto::NodeProto;
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};

const TOLERANCE: (f64, f64) = (1e-5, 1e-3);

/// Two rows of four scores.
fn scores() -> Vec<f64> {
    vec![0.5, -1.25, 2.0, 0.25, -0.5, 1.5, -2.0, 3.0]
}

fn x() -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[2, 4]), scores()).unwrap()
}

fn model(nodes: Vec<NodeProto>) -> Vec<u8> {
    model_with(17, &[2, 4], nodes, vec![ints("axes", &[0])])
}

/// Softmax of each row of `v` (rows of four), `−∞` weighing nothing.
fn softmax_rows(v: &[f64]) -> Vec<f64> {
    v.chunks(4)
        .flat_map(|r| {
            let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = r.iter().map(|&x| (x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |x| x / s)
        })
        .collect()
}

/// The scores with the positions `keep` says no to at `−∞`.
fn masked(keep: impl Fn(usize, f64) -> bool) -> Vec<f64> {
    scores()
        .into_iter()
        .enumerate()
        .map(|(i, v)| if keep(i, v) { v } else { f64::NEG_INFINITY })
        .collect()
}

fn softmax(input: &str, output: &str) -> NodeProto {
    with_int(node("Softmax", &[input], output), "axis", -1)
}

/// Hugging Face's padding mask: `keep` computed (here `x > −0.75`), then
/// `(1 − keep)·finfo.min` added to the scores.
fn padding_mask(fill: f32) -> Vec<NodeProto> {
    vec![
        constant("t", &[], &[-0.75]),
        node("Greater", &["x", "t"], "keep_b"),
        with_int(node("Cast", &["keep_b"], "keep"), "to", 1),
        constant("one", &[], &[1.0]),
        node("Sub", &["one", "keep"], "drop"),
        constant("fill", &[], &[fill]),
        node("Mul", &["drop", "fill"], "ext"),
        node("Unsqueeze", &["ext", "axes"], "ext4"),
        node("Squeeze", &["ext4", "axes"], "ext2"),
        node("Add", &["x", "ext2"], "s"),
    ]
}

#[test]
fn padding_masks_of_finfo_min_weigh_nothing() {
    let want = softmax_rows(&masked(|_, v| v > -0.75));
    for fill in [f32::MIN, -1e9, -10000.0, f32::NEG_INFINITY] {
        let mut nodes = padding_mask(fill);
        nodes.push(softmax("s", "y"));
        let ops = check_model_on(
            &format!("padding mask {fill}"),
            &model(nodes),
            &x(),
            &want,
            TOLERANCE,
        );
        // the plan's softmax takes the mask as it is: no floor around it
        assert_eq!(ops.iter().filter(|o| *o == "Relu").count(), 0, "{ops:?}");
    }
}

#[test]
fn a_constant_causal_mask_of_minus_infinity() {
    let inf = f32::NEG_INFINITY;
    let causal = [0.0, inf, inf, inf, 0.0, 0.0, inf, inf];
    let want = softmax_rows(&masked(|i, _| causal[i] == 0.0));
    let nodes = vec![
        constant("c", &[2, 4], &causal),
        node("Add", &["x", "c"], "s"),
        softmax("s", "y"),
    ];
    check_model_on("causal", &model(nodes), &x(), &want, TOLERANCE);
}

#[test]
fn masked_fill_by_where_and_a_scaled_mask() {
    // where(x < 1, x, -inf) / 2: a mask passes through a positive scale
    let want = softmax_rows(
        &masked(|_, v| v < 1.0)
            .iter()
            .map(|v| v / 2.0)
            .collect::<Vec<_>>(),
    );
    let nodes = vec![
        constant("t", &[], &[1.0]),
        node("Less", &["x", "t"], "c"),
        constant("fill", &[], &[f32::NEG_INFINITY]),
        node("Where", &["c", "x", "fill"], "w"),
        constant("two", &[], &[2.0]),
        node("Div", &["w", "two"], "s"),
        softmax("s", "y"),
    ];
    check_model_on("where", &model(nodes), &x(), &want, TOLERANCE);
}

#[test]
fn log_softmax_of_a_finite_mask_keeps_its_values() {
    // LogSoftmax of scores − 10000 where masked: x − ln Σe^x over the rest,
    // and the masked positions their own (finite) value minus the same.
    let m = [0.0, -10000.0, 0.0, 0.0, 0.0, 0.0, -10000.0, 0.0];
    let s: Vec<f64> = scores().iter().zip(m).map(|(a, b)| a + b as f64).collect();
    let want: Vec<f64> = s
        .chunks(4)
        .flat_map(|r| {
            let lse = r.iter().map(|v| v.exp()).sum::<f64>().ln();
            r.iter().map(move |v| v - lse)
        })
        .collect();
    let nodes = vec![
        constant("c", &[2, 4], &m),
        node("Add", &["x", "c"], "s"),
        with_int(node("LogSoftmax", &["s"], "y"), "axis", 1),
    ];
    check_model_on("log softmax", &model(nodes), &x(), &want, TOLERANCE);
}

#[test]
fn softmax_of_logits_far_outside_the_exp_range() {
    // 40·x + 200: values from 120 to 320, rows spread over 200; the plan's
    // softmax subtracts each row's maximum, and is one operation
    let wide: Vec<f64> = scores().iter().map(|v| 40.0 * v + 200.0).collect();
    let nodes = vec![
        constant("k", &[], &[40.0]),
        node("Mul", &["x", "k"], "a"),
        constant("b", &[], &[200.0]),
        node("Add", &["a", "b"], "s"),
        softmax("s", "y"),
    ];
    let ops = check_model_on(
        "wide logits",
        &model(nodes),
        &x(),
        &softmax_rows(&wide),
        TOLERANCE,
    );
    assert_eq!(ops, ["Mul(const)", "Add(const)", "Softmax"]);
}

fn refused(nodes: Vec<NodeProto>) -> String {
    match import(&model(nodes), &Default::default()) {
        Err(e @ (ImportError::Unsupported { .. } | ImportError::Invalid { .. })) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("imported"),
    }
}

#[test]
fn stand_ins_for_infinity_reach_only_a_softmax() {
    let inf = f32::NEG_INFINITY;
    let add = || vec![constant("c", &[], &[inf]), node("Add", &["x", "c"], "s")];
    // as the output
    let mut out = add();
    out.push(node("Identity", &["s"], "y"));
    assert!(refused(out).contains("-inf"));
    // into another operator
    let mut exp = add();
    exp.push(node("Exp", &["s"], "y"));
    assert!(refused(exp).contains("Softmax"));
    // a LogSoftmax, whose result would hold it
    let mut log = add();
    log.push(node("LogSoftmax", &["s"], "y"));
    assert!(refused(log).contains("LogSoftmax"));
    // subtracted (its sign flips)
    let mut sub = add();
    sub.push(node("Sub", &["x", "s"], "d"));
    sub.push(softmax("d", "y"));
    assert!(refused(sub).contains("Softmax"));
    // NaN is no mask
    let nan = vec![
        constant("c", &[], &[f32::NAN]),
        node("Add", &["x", "c"], "s"),
        softmax("s", "y"),
    ];
    assert!(refused(nan).contains("NaN"));
}
