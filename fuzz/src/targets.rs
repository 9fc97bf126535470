//! The fuzz targets: each takes arbitrary bytes and returns; a panic, a
//! hang or an allocation beyond the decoders' limits is a finding.

use crate::exec::{Replay, block_on};
use hush_core::backend::CpuBackend;
use hush_core::bilinear::BilinearOp;
use hush_core::plan::secure::{self, Roles};
use hush_core::plan::{Plan, Weights, plain};
use hush_core::preprocessing::seeded::{SeededDealer, draws, in_process};
use hush_core::preprocessing::{CorrelationRequest, Divisor, wire};
use hush_core::prg::Seed;
use hush_core::protocol::Party;
use hush_core::session::{Control, Frame, FramedChannel, Limits, config_for, frame};
use hush_onnx::{ImportOptions, Imported, import};
use ndarray::{ArrayD, IxDyn};
use std::sync::OnceLock;

/// Largest request (ring elements drawn) the `wire_request` target
/// generates; larger ones are only decoded and validated, as the dealer
/// checks a session's total against its own limit before generating.
const GENERATE_ELEMENTS: usize = 1 << 12;

/// Largest plan (elements of its values and weights) the `plan` target
/// rehearses and evaluates: its products may allocate the product of two
/// such sizes (an im2col matrix), which must stay well inside a fuzzer's
/// memory limit.
const REHEARSAL_ELEMENTS: usize = 1 << 12;

/// The embedded digits CNN, imported once.
pub fn digits() -> &'static Imported {
    static DIGITS: OnceLock<Imported> = OnceLock::new();
    DIGITS.get_or_init(|| {
        import(
            include_bytes!("../../models/digits/digits.onnx"),
            &ImportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("the embedded digits model imports: {e}"))
    })
}

/// A session frame, as either party or the dealer receives it.
pub fn frame(data: &[u8]) {
    let limits = Limits::default();
    let Ok(f) = frame::decode(data, &limits) else {
        return;
    };
    let Frame::Control(c) = f else {
        return;
    };
    // What the receiver parses next: a server's plan, a server's requests.
    match &c {
        Control::ServerHello { plan, .. } => {
            let _ = Plan::from_bytes(plan);
        }
        Control::DealerOpen {
            setup, inference, ..
        } => {
            for r in setup.iter().chain(inference) {
                let _ = wire::decode_request(r).map(|r| r.validate());
            }
        }
        _ => {}
    }
    let again = frame::encode_control(&c)
        .unwrap_or_else(|e| panic!("a decoded control message encodes again: {e}"));
    match frame::decode(&again, &limits) {
        Ok(Frame::Control(d)) => assert_eq!(d, c, "control messages round-trip"),
        other => panic!("a re-encoded control message decodes: {other:?}"),
    }
}

/// Ring elements `req` draws in all, or `None` past `usize`.
fn drawn_elements(req: &CorrelationRequest) -> Option<usize> {
    draws(req).ok()?.elements()
}

/// A correlation request as the dealer receives it from a server: decoded,
/// validated, and generated when small.
pub fn wire_request(data: &[u8]) {
    let Ok(req) = wire::decode_request(data) else {
        return;
    };
    let again = wire::decode_request(&wire::encode_request(&req))
        .unwrap_or_else(|e| panic!("a decoded request encodes again: {e}"));
    assert_eq!(again, req, "requests round-trip");
    if req.validate().is_err() {
        return;
    }
    if drawn_elements(&req).is_none_or(|n| n > GENERATE_ELEMENTS) {
        return;
    }
    let seeds = [Seed::from_bytes([1; 32]), Seed::from_bytes([2; 32])];
    let mut dealer = SeededDealer::new(&seeds, CpuBackend);
    // A request naming masks never drawn must be an error, not a panic;
    // and one that follows its masks must work.
    let _ = dealer.generate(&req);
}

/// The requests a party may be waiting for when a correction arrives (the
/// `wire_correction` target's first byte picks one).
pub fn expected_requests() -> Vec<CorrelationRequest> {
    vec![
        CorrelationRequest::Triple(BilinearOp::Hadamard { shape: vec![3] }),
        CorrelationRequest::Triple(BilinearOp::MatMul {
            lhs: vec![2, 3],
            rhs: vec![3, 2],
        }),
        CorrelationRequest::Square { shape: vec![2, 2] },
        CorrelationRequest::DivPair {
            shape: vec![4],
            divisor: Divisor::Uniform(1 << 16),
        },
        CorrelationRequest::PowerMask {
            shape: vec![2],
            wide: true,
            shift: 70,
            degree: 3,
            wide_powers: true,
        },
        CorrelationRequest::SelectTriple { len: 5 },
        CorrelationRequest::AndTriple { words: 2 },
    ]
}

/// A dealer's correction as a party receives it: the first byte picks the
/// request the party waits for, the rest is the message.
pub fn wire_correction(data: &[u8]) {
    let Some((&pick, msg)) = data.split_first() else {
        return;
    };
    let expected = expected_requests();
    let req = &expected[usize::from(pick) % expected.len()];
    let Ok(d) = draws(req) else {
        return;
    };
    let lens: Vec<usize> = d.derived.iter().map(|t| t.shape.iter().product()).collect();
    if let Ok(tensors) = wire::decode_correction(msg, req, &lens) {
        assert_eq!(tensors.len(), lens.len());
        for (t, &len) in tensors.iter().zip(&lens) {
            assert_eq!(t.len(), len, "a decoded correction has the expected length");
        }
    }
}

/// Zeros in the shapes of the plan's weights and inputs.
fn zeros(plan: &Plan) -> (Weights, Vec<ArrayD<f64>>) {
    let weights = Weights {
        tensors: plan
            .weights
            .iter()
            .map(|w| ArrayD::zeros(IxDyn(&w.shape)))
            .collect(),
    };
    let inputs = plan
        .inputs
        .iter()
        .map(|&i| ArrayD::zeros(IxDyn(&plan.values[i].shape)))
        .collect();
    (weights, inputs)
}

/// Elements of the plan's values and weights, or `None` past `usize`.
fn plan_elements(plan: &Plan) -> Option<usize> {
    let shapes = plan
        .values
        .iter()
        .map(|v| &v.shape)
        .chain(plan.weights.iter().map(|w| &w.shape));
    shapes.into_iter().try_fold(0usize, |acc, s| {
        acc.checked_add(hush_core::plan::elements(s)?)
    })
}

/// A plan as a client receives it from a server: parsed and validated;
/// when small, its correlations derived the way the client derives them (a
/// rehearsal of the whole protocol on zeros) and evaluated in plaintext.
pub fn plan(data: &[u8]) {
    let Ok(plan) = Plan::from_bytes(data) else {
        return;
    };
    let bytes = plan
        .to_bytes()
        .unwrap_or_else(|e| panic!("a parsed plan serializes: {e}"));
    let again =
        Plan::from_bytes(&bytes).unwrap_or_else(|e| panic!("a serialized plan parses: {e}"));
    assert_eq!(again, plan, "plans round-trip");
    if plan_elements(&plan).is_none_or(|n| n > REHEARSAL_ELEMENTS) {
        return;
    }
    let Ok(config) = config_for(&plan) else {
        return;
    };
    let _ = secure::requests(&plan, config, 2);
    let (weights, inputs) = zeros(&plan);
    let _ = plain::evaluate(&plan, &weights, &inputs);
}

/// The seeds of the session target's parties (fixed: the target's
/// behaviour depends on the input alone, up to the fresh pairwise seed
/// [`Party::new`] draws).
pub fn session_seeds() -> [Seed; 2] {
    [Seed::from_bytes([7; 32]), Seed::from_bytes([9; 32])]
}

/// The digits model's roles: the server (party 1) owns the weights.
pub const ROLES: Roles = Roles {
    owner: 1,
    client: 0,
};

/// The client's side of a whole session (weight setup, then one secure
/// inference of the digits CNN on a zero image) against a malicious server
/// whose frames are `data` ([`Replay`]).
pub fn session(data: &[u8]) {
    let _ = block_on(client(Replay::new(data)));
}

/// The client party of the session target, over `transport`.
pub async fn client<T: hush_core::session::FrameTransport>(
    transport: T,
) -> hush_core::Result<Option<Vec<ArrayD<f64>>>> {
    party(ROLES.client, transport).await
}

/// Party `me` of the session targets (weight setup, then one inference of
/// the digits CNN on a zero image), over `transport`.
async fn party<T: hush_core::session::FrameTransport>(
    me: usize,
    transport: T,
) -> hush_core::Result<Option<Vec<ArrayD<f64>>>> {
    let imported = digits();
    let plan = &imported.plan;
    let prep = in_process(&session_seeds(), CpuBackend)
        .into_iter()
        .nth(me)
        .ok_or_else(|| hush_core::Error::Usage("no preprocessing".into()))?;
    let ch = FramedChannel::new(transport, me, Limits::default())?;
    let mut party = Party::new(ch, prep, CpuBackend, config_for(plan)?).await?;
    let weights = (me == ROLES.owner).then_some(&imported.weights);
    let session = secure::setup(&mut party, plan, ROLES, weights).await?;
    let (_, inputs) = zeros(plan);
    let inputs = (me == ROLES.client).then_some(&inputs[..]);
    secure::evaluate(&mut party, plan, ROLES, &session, inputs).await
}

/// The server's side of a whole session (weight setup, then one secure
/// inference of the digits CNN with its weights) against a malicious
/// client whose frames are `data`.
pub fn server_session(data: &[u8]) {
    let _ = block_on(server(Replay::new(data)));
}

/// The server party of the session targets, over `transport`.
pub async fn server<T: hush_core::session::FrameTransport>(
    transport: T,
) -> hush_core::Result<Option<Vec<ArrayD<f64>>>> {
    party(ROLES.owner, transport).await
}

/// An ONNX model, imported as `hush serve` imports its owner's model.
pub fn onnx(data: &[u8]) {
    if let Ok(imported) = import(data, &ImportOptions::default()) {
        let _ = imported.plan.validate();
    }
}
