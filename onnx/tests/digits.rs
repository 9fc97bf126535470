//! The embedded digits model: imported, evaluated in plaintext against
//! onnxruntime, and securely on all 1,797 digits (two parties and the dealer
//! in one process) against the plaintext evaluator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hush_core::FixedPoint;
use hush_core::backend::CpuBackend;
use hush_core::channel::memory::run_parties;
use hush_core::plan::{plain, secure};
use hush_core::preprocessing::seeded::{SeededDealer, in_process};
use hush_core::protocol::{Config, Party};
use hush_onnx::{ImportOptions, import};
use ndarray::{ArrayD, Axis, IxDyn};
use std::collections::HashMap;

const MODEL: &[u8] = include_bytes!("../../models/digits/digits.onnx");
const IMAGES: &[u8] = include_bytes!("../../models/digits/digits_images.u8");
const LABELS: &[u8] = include_bytes!("../../models/digits/digits_labels.u8");
const ORT: &[u8] = include_bytes!("../../models/digits/digits_ort_logits.f32");
const N: usize = 1797;

fn images() -> ArrayD<f64> {
    ArrayD::from_shape_vec(
        IxDyn(&[N, 1, 8, 8]),
        IMAGES.iter().map(|&v| v as f64 / 16.0).collect(),
    )
    .unwrap()
}

fn argmax_rows(x: &ArrayD<f64>) -> Vec<usize> {
    x.axis_iter(Axis(0))
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f64::MIN),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0
        })
        .collect()
}

fn batch_options() -> ImportOptions {
    ImportOptions {
        input_shapes: HashMap::from([("pixels".to_string(), vec![N, 1, 8, 8])]),
        ..ImportOptions::default()
    }
}

#[test]
fn the_plan_describes_the_cnn_and_round_trips() {
    let m = import(MODEL, &ImportOptions::default()).unwrap();
    let ops: Vec<&str> = m.plan.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        [
            // ReLU after max pooling: the importer's rewrite (same function,
            // a quarter of the comparisons).
            "Conv",
            "Add(weight)",
            "MaxPool",
            "Relu",
            "Conv",
            "Add(weight)",
            "MaxPool",
            "Relu",
            "Reshape",
            "MatMul(weight)",
            "Add(weight)"
        ]
    );
    assert_eq!(m.plan.values[m.plan.inputs[0]].shape, vec![1, 1, 8, 8]);
    assert_eq!(m.plan.values[m.plan.outputs[0]].shape, vec![1, 10]);
    let bytes = m.plan.to_bytes().unwrap();
    assert_eq!(hush_core::plan::Plan::from_bytes(&bytes).unwrap(), m.plan);
    // The commitment binds the weights.
    let mut w2 = m.weights.clone();
    w2.tensors[0][[0, 0, 0, 0]] += 1e-3;
    use sha2::Digest;
    let other: [u8; 32] = sha2::Sha256::digest(w2.canonical_bytes()).into();
    assert_ne!(other, m.plan.commitment);
    // Truncated plans are typed errors.
    for cut in [0, 3, 6, bytes.len() / 2, bytes.len() - 1] {
        assert!(hush_core::plan::Plan::from_bytes(&bytes[..cut]).is_err());
    }
}

#[test]
fn plaintext_evaluation_matches_onnxruntime() {
    let m = import(MODEL, &batch_options()).unwrap();
    let y = plain::evaluate(&m.plan, &m.weights, &[images()])
        .unwrap()
        .remove(0);
    let ort: Vec<f64> = ORT
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    let ort = ArrayD::from_shape_vec(IxDyn(&[N, 10]), ort).unwrap();
    let err = (&y - &ort).iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    assert!(err < 1e-4, "max |plain − onnxruntime| = {err}");
}

#[test]
fn secure_predictions_equal_plaintext_on_all_digits() {
    let m = import(MODEL, &batch_options()).unwrap();
    let x = images();
    let plain_logits = plain::evaluate(&m.plan, &m.weights, std::slice::from_ref(&x))
        .unwrap()
        .remove(0);
    let config = Config {
        fixed_point: FixedPoint::new(m.plan.frac_bits).unwrap(),
        ..Config::default()
    };
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2).unwrap();
    let mut preps = in_process(&seeds, CpuBackend).into_iter();
    let (plan, weights) = (&m.plan, &m.weights);
    let out = run_parties(2, |ch| {
        let prep = preps.next().unwrap();
        let x = x.clone();
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let me = p.id();
            let session =
                secure::setup(&mut p, plan, roles, (me == roles.owner).then_some(weights)).await?;
            let inputs = [x];
            secure::evaluate(
                &mut p,
                plan,
                roles,
                &session,
                (me == roles.client).then_some(&inputs[..]),
            )
            .await
        }
    });
    let secure_logits = out.into_iter().next().unwrap().unwrap().unwrap().remove(0);
    let err = (&secure_logits - &plain_logits)
        .iter()
        .fold(0.0f64, |a, &v| a.max(v.abs()));
    assert!(err < 0.01, "max |secure − plain| logit = {err}");
    let (ps, pp) = (argmax_rows(&secure_logits), argmax_rows(&plain_logits));
    assert_eq!(ps, pp, "secure and plaintext predictions differ");
    let correct = ps
        .iter()
        .zip(LABELS)
        .filter(|&(&p, &l)| p == l as usize)
        .count();
    let acc = correct as f64 / N as f64;
    eprintln!("secure accuracy on all {N} digits: {acc:.4}, max logit error {err:.2e}");
    assert!(acc > 0.99, "accuracy {acc}");
}

#[test]
fn sessions_share_the_encoded_weights_and_compute_the_same() {
    // A server encodes its weights once (EncodedWeights); each session's
    // fixed operands hold the same tensors, and the results are those of a
    // session that encodes its own copy, bit for bit.
    let m = import(MODEL, &batch_options()).unwrap();
    let x = images();
    let fp = FixedPoint::new(m.plan.frac_bits).unwrap();
    let config = Config {
        fixed_point: fp,
        ..Config::default()
    };
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let encoded = secure::EncodedWeights::new(&m.weights, fp).unwrap();
    let counts = |e: &secure::EncodedWeights| -> Vec<usize> {
        e.tensors()
            .iter()
            .map(std::sync::Arc::strong_count)
            .collect()
    };
    let before = counts(&encoded);
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2).unwrap();
    let run = |shared: bool| {
        let mut preps = in_process(&seeds, CpuBackend).into_iter();
        let (plan, weights, encoded, x) = (&m.plan, &m.weights, &encoded, &x);
        run_parties(2, |ch| {
            let prep = preps.next().unwrap();
            async move {
                let mut p = Party::new(ch, prep, CpuBackend, config).await?;
                let owner = p.id() == roles.owner;
                let session = if shared {
                    let e = owner.then_some(encoded);
                    secure::setup_encoded(&mut p, plan, roles, e).await?
                } else {
                    secure::setup(&mut p, plan, roles, owner.then_some(weights)).await?
                };
                let during = owner.then(|| counts(encoded));
                let inputs = [x.clone()];
                let out = secure::evaluate(
                    &mut p,
                    plan,
                    roles,
                    &session,
                    (!owner).then_some(&inputs[..]),
                )
                .await?;
                Ok((out, during))
            }
        })
    };
    let (shared, own) = (run(true), run(false));
    let client_logits = |r: &[hush_core::Result<_>]| -> Vec<ArrayD<f64>> {
        let (out, _): &(Option<Vec<ArrayD<f64>>>, Option<Vec<usize>>) = r[0].as_ref().unwrap();
        out.clone().unwrap()
    };
    assert_eq!(client_logits(&shared), client_logits(&own));
    // While the shared session ran, its fixed weights were the encoded
    // tensors themselves (one more reference each), not copies.
    let during = shared[1].as_ref().unwrap().1.clone().unwrap();
    assert!(during.iter().zip(&before).any(|(d, b)| d > b), "{during:?}");
    assert!(during.iter().zip(&before).all(|(d, b)| d >= b));
    assert_eq!(counts(&encoded), before, "sessions drop their references");
    // Weights encoded with another fixed point are refused.
    let other =
        secure::EncodedWeights::new(&m.weights, FixedPoint::new(fp.frac_bits() - 1).unwrap())
            .unwrap();
    let mut preps = in_process(&seeds, CpuBackend).into_iter();
    let out = run_parties(2, |ch| {
        let prep = preps.next().unwrap();
        let (plan, other) = (&m.plan, &other);
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let owner = p.id() == roles.owner;
            secure::setup_encoded(&mut p, plan, roles, owner.then_some(other))
                .await
                .map(|_| ())
        }
    });
    assert!(
        matches!(out[1], Err(hush_core::Error::Usage(_))),
        "{:?}",
        out[1]
    );
}

#[test]
fn the_dealer_derives_the_correlations_from_the_plan_alone() {
    use hush_core::preprocessing::{Pregenerated, Recorder};
    let m = import(MODEL, &ImportOptions::default()).unwrap();
    let config = Config::default();
    let (setup_reqs, inference_reqs) = secure::requests(&m.plan, config, 2).unwrap();
    assert_eq!(
        setup_reqs.len(),
        3,
        "one mask per matrix or convolution weight"
    );
    assert!(!inference_reqs.is_empty());
    // Pregenerate everything from the list, then run a real inference on it.
    let all: Vec<_> = setup_reqs.iter().chain(&inference_reqs).cloned().collect();
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2).unwrap();
    let pregen: Vec<Pregenerated> = in_process(&seeds, CpuBackend)
        .into_iter()
        .map(|mut p| {
            let fut = Pregenerated::generate(&mut p, &all);
            let mut fut = std::pin::pin!(fut);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r.unwrap(),
                std::task::Poll::Pending => unreachable!(),
            }
        })
        .collect();
    let x = ArrayD::from_shape_vec(
        IxDyn(&[1, 1, 8, 8]),
        IMAGES[..64].iter().map(|&v| v as f64 / 16.0).collect(),
    )
    .unwrap();
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let (plan, weights) = (&m.plan, &m.weights);
    let mut pregen = pregen.into_iter();
    let out = run_parties(2, |ch| {
        let prep = Recorder::new(pregen.next().unwrap());
        let x = x.clone();
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let me = p.id();
            let s = secure::setup(&mut p, plan, roles, (me == 1).then_some(weights)).await?;
            let inputs = [x];
            let y =
                secure::evaluate(&mut p, plan, roles, &s, (me == 0).then_some(&inputs[..])).await?;
            let (_, rec, _) = p.into_parts();
            let (inner, _) = rec.into_parts();
            Ok((y, inner.remaining()))
        }
    });
    let (y, left) = out.into_iter().next().unwrap().unwrap();
    assert_eq!(left, 0, "every pregenerated correlation was used");
    let plain_y = plain::evaluate(plan, weights, &[x]).unwrap().remove(0);
    assert_eq!(argmax_rows(&y.unwrap()[0]), argmax_rows(&plain_y));
}
