//! Binary frames: one per WebSocket message.
//!
//! ```text
//! frame = version:u8 kind:u8 body
//! kind 0x01  control        body = postcard(Control)
//! kind 0x02  data, last     body = stamp:u64le payload
//! kind 0x03  data, more     body = stamp:u64le payload   (the message continues)
//! ```
//!
//! Control frames (hello, plan, errors) are separate from the MPC payloads.
//! An MPC message larger than [`Limits::chunk_bytes`] is cut into several
//! data frames; the receiver reassembles it up to [`Limits::max_message_bytes`]
//! and allocates only as bytes arrive, so a peer's claims cost nothing. The
//! stamp is the round clock of [`crate::channel::RoundClock`]. Every parse
//! treats its input as untrusted and fails with a typed error, never a panic.

use super::Control;
use crate::error::{PeerError, Result};
use alloc::vec::Vec;

/// Version of the frame format and of the session protocol it carries.
/// 2: products with the server's weights send the client's pieces to the
/// server only, with the truncation fused (`protocol/fixed.rs`).
/// 3: the exponent of `1/x`, `√x`, `ln x` (softmax, layer norm) comes from
/// one carry-prefix adder and a suffix OR instead of a comparison per power
/// of two (`protocol/approx.rs`): a different message pattern.
/// 4: exp's squarings come from the openings of the divisions before them
/// (`truncation.rs::div_and_square`), one opening per squaring, not two.
/// 5: the weights' masks are drawn from the server's seed alone and the
/// server sends `E = W − A` one way; the client sends nothing at setup.
/// 6: exp is a chain of masked openings with local 128-bit polynomials
/// (`protocol/exp.rs`): 5 openings instead of 12.
/// 7: the last opening of exp's chain and of the masked polynomials (√x,
/// 1/x, ln x, sigmoid) takes its mask's powers mod 2^64 — half that
/// stage's dealer material — and the dealer request says which width
/// (`CorrelationRequest::PowerMask::wide_powers`).
/// 8: an opening that divides (`protocol/powers.rs`) sends only the top
/// bytes of each piece, those above the quotient's last bit (5 or 6 of 8 in
/// exp's chain), and exp squares in 64 bits: 8 openings, 44 bytes per
/// element each way, where version 7 took 5 openings and 40 bytes.
/// 9: a product with a public integer (the −1 of an imported `c − x`, an
/// integer `Mul` constant) multiplies the shares directly: no truncation
/// opening (`Party::mul_public`).
/// 10: softmax and log softmax subtract each row's maximum (a tree of
/// comparisons) and floor the rest before exp (`protocol/approx.rs`).
pub const PROTOCOL_VERSION: u8 = 10;

const KIND_CONTROL: u8 = 0x01;
const KIND_DATA_LAST: u8 = 0x02;
const KIND_DATA_MORE: u8 = 0x03;
const DATA_HEADER: usize = 10;

/// Size limits of a transport. Both ends should use the defaults; a receiver
/// rejects anything larger with [`PeerError::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted (header included). Control frames must fit in
    /// one frame; the plan inside is itself capped at
    /// [`crate::plan::MAX_PLAN_BYTES`].
    pub max_frame_bytes: usize,
    /// Payload bytes per data frame when sending.
    pub chunk_bytes: usize,
    /// Largest reassembled MPC message accepted.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: crate::plan::MAX_PLAN_BYTES + (1 << 20),
            chunk_bytes: 4 << 20,
            max_message_bytes: 1 << 30,
        }
    }
}

/// A parsed frame.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A control message.
    Control(Control),
    /// A piece of an MPC message.
    Data {
        /// Round stamp of the message.
        stamp: u64,
        /// Whether this is the message's last piece.
        last: bool,
        /// The piece.
        payload: &'a [u8],
    },
}

/// Encodes a control frame.
pub fn encode_control(msg: &Control) -> Result<Vec<u8>> {
    let mut out = alloc::vec![PROTOCOL_VERSION, KIND_CONTROL];
    let body = postcard::to_allocvec(msg)
        .map_err(|_| crate::Error::Usage("control message does not serialize".into()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Encodes one data frame.
pub fn encode_data(stamp: u64, last: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_HEADER + payload.len());
    out.push(PROTOCOL_VERSION);
    out.push(if last { KIND_DATA_LAST } else { KIND_DATA_MORE });
    out.extend_from_slice(&stamp.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Cuts an MPC message into data frames of at most `limits.chunk_bytes`
/// payload bytes (an empty message is one empty frame).
pub fn encode_message(stamp: u64, msg: &[u8], limits: &Limits) -> Vec<Vec<u8>> {
    let chunk = limits.chunk_bytes.max(1);
    if msg.is_empty() {
        return alloc::vec![encode_data(stamp, true, msg)];
    }
    let n = msg.len().div_ceil(chunk);
    msg.chunks(chunk)
        .enumerate()
        .map(|(i, c)| encode_data(stamp, i + 1 == n, c))
        .collect()
}

/// Parses a frame received from a peer.
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Frame<'a>> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(PeerError::Malformed("frame over the size limit").into());
    }
    let (&version, rest) = bytes.split_first().ok_or(PeerError::Truncated)?;
    if version != PROTOCOL_VERSION {
        return Err(PeerError::Version {
            ours: PROTOCOL_VERSION,
            theirs: version,
        }
        .into());
    }
    let (&kind, body) = rest.split_first().ok_or(PeerError::Truncated)?;
    match kind {
        KIND_CONTROL => {
            let msg: Control = postcard::from_bytes(body)
                .map_err(|_| PeerError::Malformed("control message does not parse"))?;
            Ok(Frame::Control(msg))
        }
        KIND_DATA_LAST | KIND_DATA_MORE => {
            let (stamp, payload) = body.split_at_checked(8).ok_or(PeerError::Truncated)?;
            let mut s = [0u8; 8];
            s.copy_from_slice(stamp);
            Ok(Frame::Data {
                stamp: u64::from_le_bytes(s),
                last: kind == KIND_DATA_LAST,
                payload,
            })
        }
        _ => Err(PeerError::Malformed("unknown frame kind").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorCode};

    #[test]
    fn control_round_trip() {
        let msg = Control::Error {
            code: ErrorCode::Busy,
            message: "full".into(),
        };
        let bytes = encode_control(&msg).unwrap();
        assert_eq!(
            decode(&bytes, &Limits::default()).unwrap(),
            Frame::Control(msg)
        );
    }

    #[test]
    fn messages_are_chunked_and_bounded() {
        let limits = Limits {
            chunk_bytes: 3,
            ..Limits::default()
        };
        let frames = encode_message(7, &[1, 2, 3, 4, 5, 6, 7], &limits);
        assert_eq!(frames.len(), 3);
        let parsed: Vec<Frame<'_>> = frames.iter().map(|f| decode(f, &limits).unwrap()).collect();
        assert!(matches!(
            parsed[0],
            Frame::Data {
                stamp: 7,
                last: false,
                payload: [1, 2, 3]
            }
        ));
        assert!(matches!(
            parsed[2],
            Frame::Data {
                last: true,
                payload: [7],
                ..
            }
        ));
        assert_eq!(encode_message(1, &[], &limits).len(), 1);
    }

    #[test]
    fn every_truncation_and_corruption_is_a_typed_error() {
        let limits = Limits::default();
        let hello = encode_control(&Control::ClientHello {
            software: "t".into(),
            key_hash: [7; 32],
            token: Some("secret".into()),
        })
        .unwrap();
        for frame in [hello, encode_data(3, true, &[9; 20])] {
            for cut in 0..frame.len() {
                // Must not panic; short data frames and control prefixes fail.
                let _ = decode(&frame[..cut], &limits);
            }
            for i in 0..frame.len() {
                for bit in 0..8 {
                    let mut f = frame.clone();
                    f[i] ^= 1 << bit;
                    let _ = decode(&f, &limits);
                }
            }
        }
        assert!(matches!(
            decode(&[PROTOCOL_VERSION + 1, 1], &limits),
            Err(Error::Peer(PeerError::Version { .. }))
        ));
        assert!(matches!(
            decode(&[PROTOCOL_VERSION, 0x42], &limits),
            Err(Error::Peer(PeerError::Malformed(_)))
        ));
        assert!(matches!(
            decode(&[PROTOCOL_VERSION, KIND_DATA_LAST, 1, 2], &limits),
            Err(Error::Peer(PeerError::Truncated))
        ));
        let small = Limits {
            max_frame_bytes: 8,
            ..limits
        };
        assert!(decode(&encode_data(0, true, &[0; 16]), &small).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let msg = Control::SeedClaim {
            session: [1; 16],
            key: crate::prg::Seed::from_bytes([0xAB; 32]),
        };
        let s = alloc::format!("{msg:?}");
        assert_eq!(s, "SeedClaim");
    }
}
