//! Valid inputs of every target, made by the encoders themselves: the
//! starting corpus of a fuzzing run and of the mutation test.

use crate::exec::{encode_frames, join, pipe};
use crate::targets::{self, digits};
use hush_core::bilinear::BilinearOp;
use hush_core::error::ErrorCode;
use hush_core::preprocessing::seeded::draws;
use hush_core::preprocessing::{CorrelationRequest, Divisor, FixedSide, wire};
use hush_core::prg::Seed;
use hush_core::session::{Control, DealerTicket, Limits, frame, key_hash};
use hush_core::{Ring, RingTensor};
use ndarray::IxDyn;

/// A fuzz target: its name, its function and its seeds.
pub type Target = (&'static str, fn(&[u8]), Vec<Vec<u8>>);

/// The targets, by name, with their seeds.
pub fn all() -> Vec<Target> {
    vec![
        ("frame", targets::frame as fn(&[u8]), frames()),
        ("wire_request", targets::wire_request, requests()),
        ("wire_correction", targets::wire_correction, corrections()),
        ("plan", targets::plan, plans()),
        ("session", targets::session, vec![session()]),
        (
            "server_session",
            targets::server_session,
            vec![server_session()],
        ),
        ("onnx", targets::onnx, onnx_models()),
    ]
}

fn requests_list() -> Vec<CorrelationRequest> {
    let had = BilinearOp::Hadamard { shape: vec![4] };
    let mm = BilinearOp::MatMul {
        lhs: vec![2, 3],
        rhs: vec![3, 2],
    };
    vec![
        CorrelationRequest::Triple(had.clone()),
        CorrelationRequest::Triple(mm.clone()),
        CorrelationRequest::Square { shape: vec![3] },
        CorrelationRequest::DivPair {
            shape: vec![3],
            divisor: Divisor::PerElement(vec![3, 1 << 16, 7]),
        },
        CorrelationRequest::FixedMask {
            shape: vec![3, 2],
            owner: 1,
        },
        CorrelationRequest::PowerMask {
            shape: vec![4],
            wide: false,
            shift: 16,
            degree: 4,
            wide_powers: false,
        },
        CorrelationRequest::AndTriple { words: 3 },
        CorrelationRequest::OneSidedAnd { words: 2 },
        CorrelationRequest::BitPair { len: 70 },
        CorrelationRequest::SelectTriple { len: 5 },
        CorrelationRequest::FixedTriple {
            mask: 0,
            op: mm.clone(),
            side: FixedSide::Rhs,
        },
        CorrelationRequest::FixedProduct {
            op: had,
            lhs: 0,
            rhs: 1,
        },
    ]
}

fn frames() -> Vec<Vec<u8>> {
    let seed = Seed::from_bytes([3; 32]);
    let plan = digits()
        .plan
        .to_bytes()
        .unwrap_or_else(|e| panic!("the digits plan serializes: {e}"));
    let controls = [
        Control::ClientHello {
            software: "hush-infer/0.1.0".into(),
            key_hash: key_hash(&seed),
            token: Some("token".into()),
        },
        Control::ServerHello {
            software: "hush/0.1.0".into(),
            plan,
            dealer: DealerTicket::Dealer {
                url: "ws://127.0.0.1:9090/seed".into(),
                session: [5; 16],
            },
        },
        Control::Infer,
        Control::Bye,
        Control::Error {
            code: ErrorCode::Protocol,
            message: "bad".into(),
        },
        Control::DealerOpen {
            software: "hush/0.1.0".into(),
            key_hash: key_hash(&seed),
            setup: requests_list().iter().map(wire::encode_request).collect(),
            inference: vec![wire::encode_request(&CorrelationRequest::Square {
                shape: vec![2],
            })],
        },
        Control::DealerCredit { inferences: 3 },
        Control::SeedClaim {
            session: [5; 16],
            key: seed.clone(),
        },
    ];
    let mut out: Vec<Vec<u8>> = controls
        .iter()
        .map(|c| {
            frame::encode_control(c).unwrap_or_else(|e| panic!("a control message encodes: {e}"))
        })
        .collect();
    let limits = Limits {
        chunk_bytes: 16,
        ..Limits::default()
    };
    out.extend(frame::encode_message(3, &[1; 40], &limits));
    out
}

fn requests() -> Vec<Vec<u8>> {
    requests_list().iter().map(wire::encode_request).collect()
}

fn corrections() -> Vec<Vec<u8>> {
    let expected = targets::expected_requests();
    expected
        .iter()
        .enumerate()
        .map(|(i, req)| {
            let d = draws(req).unwrap_or_else(|e| panic!("a seed request draws: {e}"));
            let tensors: Vec<RingTensor> = d
                .derived
                .iter()
                .map(|t| {
                    let n: usize = t.shape.iter().product();
                    RingTensor::from_shape_vec(IxDyn(&[n]), (0..n as Ring).collect())
                        .unwrap_or_else(|e| panic!("a flat tensor: {e}"))
                })
                .collect();
            let mut msg = vec![i as u8];
            msg.extend(wire::encode_correction(req, &tensors));
            msg
        })
        .collect()
}

fn plans() -> Vec<Vec<u8>> {
    let mut out = vec![
        digits()
            .plan
            .to_bytes()
            .unwrap_or_else(|e| panic!("the digits plan serializes: {e}")),
    ];
    for name in ["mlp", "lenet5"] {
        let path = format!("{}/../models/test/{name}.onnx", env!("CARGO_MANIFEST_DIR"));
        let plan = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                hush_onnx::import(&b, &hush_onnx::ImportOptions::default())
                    .map_err(|e| e.to_string())
            })
            .and_then(|m| m.plan.to_bytes().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("the test model {path} gives a plan: {e}"));
        out.push(plan);
    }
    out
}

fn onnx_models() -> Vec<Vec<u8>> {
    let mut out = vec![include_bytes!("../../models/digits/digits.onnx").to_vec()];
    // BatchNormalization (folded and not), depthwise convolutions, attention.
    for name in [
        "mlp",
        "ops_zoo",
        "ops_zoo2",
        "ops_zoo3",
        "ops_zoo4",
        "ops_zoo5",
        "text_classifier",
        "text_encoder",
        "two_heads",
        "mlp_bn",
        "mobilenet_block",
        "transformer",
    ] {
        let path = format!("{}/../models/test/{name}.onnx", env!("CARGO_MANIFEST_DIR"));
        out.push(
            std::fs::read(&path).unwrap_or_else(|e| panic!("the test model {path} reads: {e}")),
        );
    }
    out
}

/// The frames an honest server sends the client in the session target's
/// session: a real run of both parties over an in-memory pipe.
pub fn session() -> Vec<u8> {
    transcripts().0
}

/// The frames an honest client sends the server in the same session (the
/// seed of the server's session target).
pub fn server_session() -> Vec<u8> {
    transcripts().1
}

/// What the client and the server receive in an honest session, each as a
/// [`crate::exec::Replay`] input.
fn transcripts() -> (Vec<u8>, Vec<u8>) {
    let ((c, to_client), (s, to_server)) = pipe();
    let (c, s) = join(targets::client(c), targets::server(s));
    let out = c.unwrap_or_else(|e| panic!("the honest session's client: {e}"));
    s.unwrap_or_else(|e| panic!("the honest session's server: {e}"));
    assert!(out.is_some(), "the client gets the output");
    let (a, b) = (to_client.borrow(), to_server.borrow());
    (encode_frames(&a), encode_frames(&b))
}
