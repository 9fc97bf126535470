//! The test models (models/test, built by make_models.py): plaintext and
//! secure evaluation against onnxruntime's output.
//!
//! Tolerances (max absolute error against onnxruntime): plaintext 1e-4
//! (f32 versus f64 arithmetic); secure 1e-3 — fixed point with 16 fractional
//! bits, one truncation per product, and the approximations of
//! docs/ACCURACY.md, accumulated through the network — or 2e-3 for the
//! zoos whose outputs come through an instance, group or layer normalization
//! or a log-softmax, the bound docs/ACCURACY.md gives for those (measured:
//! up to 6e-4 over a dozen runs; the masks are fresh each run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hush_core::plan::plain;
use hush_onnx::{ImportOptions, import};
use ndarray::{ArrayD, IxDyn};

/// Minimal reader for the little-endian f4 `.npy` files numpy writes.
fn npy(bytes: &[u8]) -> ArrayD<f64> {
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hl]).unwrap();
    assert!(header.contains("'<f4'"));
    let s = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = s[..s.find(')').unwrap()]
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data: Vec<f64> = bytes[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn max_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `name` against onnxruntime's `expect`, one per output (in order).
fn check(name: &str, model: &[u8], inputs: &[&[u8]], expect: &[&[u8]], tolerance: f64) {
    let expect: Vec<_> = expect.iter().map(|&b| (b, tolerance)).collect();
    check_outputs(name, model, inputs, &expect);
}

/// [`check`] with a tolerance for each output.
fn check_outputs(name: &str, model: &[u8], inputs: &[&[u8]], expect: &[(&[u8], f64)]) {
    let m = import(model, &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let xs: Vec<ArrayD<f64>> = inputs.iter().map(|b| npy(b)).collect();
    let ys = plain::evaluate(&m.plan, &m.weights, &xs).unwrap();
    assert_eq!(ys.len(), expect.len(), "{name}: outputs");
    let secure = common::secure_evaluate_many(name, &m, &xs);
    for (i, ((y, s), &(ort, tolerance))) in ys.iter().zip(&secure).zip(expect).enumerate() {
        let ort = npy(ort);
        let plain_err = max_err(y, &ort);
        assert!(
            plain_err < 1e-4,
            "{name}: output {i} in plaintext differs from onnxruntime by {plain_err}"
        );
        let secure_err = max_err(s, &ort);
        eprintln!(
            "{name} output {i}: plaintext {plain_err:.1e}, secure {secure_err:.1e} (max |y| {:.2})",
            ort.iter().fold(0.0f64, |a, v| a.max(v.abs()))
        );
        assert!(
            secure_err < tolerance,
            "{name}: output {i} secure differs from onnxruntime by {secure_err}"
        );
    }
}

macro_rules! model_test {
    ($test:ident, $name:literal) => {
        model_test!($test, $name, 1e-3);
    };
    ($test:ident, $name:literal, $tolerance:expr) => {
        #[test]
        fn $test() {
            check(
                $name,
                include_bytes!(concat!("../../models/test/", $name, ".onnx")),
                &[include_bytes!(concat!(
                    "../../models/test/",
                    $name,
                    ".input.npy"
                ))],
                &[include_bytes!(concat!(
                    "../../models/test/",
                    $name,
                    ".ort.npy"
                ))],
                $tolerance,
            );
        }
    };
}

model_test!(mlp_with_sigmoid_and_tanh, "mlp");
model_test!(lenet5, "lenet5");
model_test!(resnet_style_with_batchnorm_and_residuals, "resnet_small");
model_test!(mobilenet_block_with_depthwise_and_relu6, "mobilenet_block");
model_test!(two_layer_transformer_encoder, "transformer");
model_test!(operator_zoo_layout_reductions_and_math, "ops_zoo");
model_test!(mlp_with_batchnorm_after_gemm, "mlp_bn");
model_test!(upsampling_max_min_abs_and_tile, "ops_zoo2");
model_test!(
    transposed_convolutions_norms_and_the_elu_family,
    "ops_zoo3",
    2e-3
);
model_test!(pixel_shuffle_prelu_and_channel_softmax, "ops_zoo4", 2e-3);
model_test!(gates_masks_comparisons_and_logic, "ops_zoo5");
model_test!(
    embedding_of_token_ids_with_a_padding_mask,
    "text_classifier"
);

/// Two inputs, as Hugging Face's models take them: token ids and the
/// attention mask.
#[test]
fn encoder_with_hugging_face_and_causal_attention_masks() {
    check(
        "text_encoder",
        include_bytes!("../../models/test/text_encoder.onnx"),
        &[
            include_bytes!("../../models/test/text_encoder.input.npy"),
            include_bytes!("../../models/test/text_encoder.input1.npy"),
        ],
        &[include_bytes!("../../models/test/text_encoder.ort.npy")],
        1e-3,
    );
}

/// Two outputs, the logits and their softmax, with logits of tens: the
/// softmax subtracts each row's maximum. The logits come through weights of
/// about 10 (a gain of tens on the inputs' and the hidden layer's rounding
/// at 2^-17), so they are held to 5e-3 (1e-4 relative); the
/// probabilities to 1e-3.
#[test]
fn classifier_with_logits_and_probabilities_far_outside_the_exp_range() {
    let model = include_bytes!("../../models/test/two_heads.onnx");
    let input = include_bytes!("../../models/test/two_heads.input.npy");
    let logits = include_bytes!("../../models/test/two_heads.ort.npy");
    let probs = include_bytes!("../../models/test/two_heads.ort1.npy");
    check_outputs(
        "two_heads",
        model,
        &[input],
        &[(logits, 5e-3), (probs, 1e-3)],
    );
}

#[test]
fn batch_norm_after_conv_and_gemm_is_folded_into_the_weights() {
    for (name, bytes) in [
        (
            "resnet_small",
            &include_bytes!("../../models/test/resnet_small.onnx")[..],
        ),
        (
            "mobilenet_block",
            &include_bytes!("../../models/test/mobilenet_block.onnx")[..],
        ),
        (
            "mlp_bn",
            &include_bytes!("../../models/test/mlp_bn.onnx")[..],
        ),
    ] {
        let m = import(bytes, &ImportOptions::default()).unwrap();
        let ops: Vec<&str> = m.plan.nodes.iter().map(|n| n.op.name()).collect();
        assert!(
            !ops.contains(&"Mul(weight)"),
            "{name}: BatchNormalization left unfolded: {ops:?}"
        );
    }
}
