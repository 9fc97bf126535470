//! Binary format of dealer messages: requests (last party → dealer) and
//! corrections (dealer → last party).
//!
//! Every message starts with [`WIRE_VERSION`] and a message type byte. All
//! integers are little-endian `u64` unless noted. The parser treats its input
//! as untrusted: it checks every length against what is left, caps ranks at
//! [`MAX_RANK`] and tensor sizes at [`MAX_TENSOR_ELEMENTS`] before allocating,
//! and returns a [`PeerError`] for anything off — never a panic.
//!
//! ```text
//! request    = version:u8 0xB1 req
//! correction = version:u8 0xC1 req count:u8 (len:u64 elem:u64*len)*count
//! req        = 1 op | 2 shape | 3 shape divisor | 4 shape | 5 mask:u64 op side:u8
//!            | 6 words | 7 bits | 8 len | 9 words
//!            | 11 op lhs:u64 rhs:u64 | 12 shape wide:u8 shift:u8 degree:u8
//! op         = 1 shape | 2 shape shape | 3 dims4 dims4 stride2 pad4 dil2 groups
//! shape      = rank:u8 dim*rank        divisor = 0 d | 1 count d*count
//! ```

use super::{CorrelationRequest, Divisor, FixedSide};
use crate::backend::Conv2dParams;
use crate::bilinear::BilinearOp;
use crate::error::{PeerError, Result};
use crate::ring::{Ring, RingTensor};
use alloc::vec::Vec;

/// Version of the dealer message format. 2: squaring division pairs
/// (request type 10). 3: products of two fixed masks (request type 11);
/// fixed masks name their owner, who alone draws them. 4: power masks
/// (request type 12) replace squaring division pairs (type 10, retired).
pub const WIRE_VERSION: u8 = 4;
/// Highest tensor rank a message may carry.
pub const MAX_RANK: usize = 8;
/// Most elements one tensor in a message may have (2^28: 2 GiB of ring elements).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

const MSG_REQUEST: u8 = 0xB1;
const MSG_CORRECTION: u8 = 0xC1;

/// Encodes a request for the dealer.
pub fn encode_request(req: &CorrelationRequest) -> Vec<u8> {
    let mut w = Vec::new();
    w.push(WIRE_VERSION);
    w.push(MSG_REQUEST);
    put_request(&mut w, req);
    w
}

/// Parses a request sent to the dealer.
pub fn decode_request(bytes: &[u8]) -> Result<CorrelationRequest> {
    let mut r = Reader::new(bytes);
    r.header(MSG_REQUEST)?;
    let req = r.request()?;
    r.finish()?;
    Ok(req)
}

/// Encodes the dealer's correction tensors for `req`.
pub fn encode_correction(req: &CorrelationRequest, tensors: &[RingTensor]) -> Vec<u8> {
    let total: usize = tensors.iter().map(|t| t.len() * 8 + 8).sum();
    let mut w = Vec::with_capacity(total + 64);
    w.push(WIRE_VERSION);
    w.push(MSG_CORRECTION);
    put_request(&mut w, req);
    w.push(tensors.len() as u8);
    for t in tensors {
        put_u64(&mut w, t.len() as u64);
        for v in t.iter() {
            w.extend_from_slice(&v.to_le_bytes());
        }
    }
    w
}

/// Parses a correction and checks that it answers `expected` with tensors of
/// the lengths `lens`.
pub fn decode_correction(
    bytes: &[u8],
    expected: &CorrelationRequest,
    lens: &[usize],
) -> Result<Vec<Vec<Ring>>> {
    let mut r = Reader::new(bytes);
    r.header(MSG_CORRECTION)?;
    let req = r.request()?;
    if &req != expected {
        return Err(PeerError::Unexpected("correction answers a different request").into());
    }
    let count = r.u8()? as usize;
    if count != lens.len() {
        return Err(PeerError::Malformed("wrong number of correction tensors").into());
    }
    let mut out = Vec::with_capacity(count);
    for &len in lens {
        if r.len()? != len {
            return Err(PeerError::Malformed("correction tensor has the wrong length").into());
        }
        out.push(r.ring_vec(len)?);
    }
    r.finish()?;
    Ok(out)
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_shape(w: &mut Vec<u8>, shape: &[usize]) {
    w.push(shape.len() as u8);
    for &d in shape {
        put_u64(w, d as u64);
    }
}

fn put_op(w: &mut Vec<u8>, op: &BilinearOp) {
    match op {
        BilinearOp::Hadamard { shape } => {
            w.push(1);
            put_shape(w, shape);
        }
        BilinearOp::MatMul { lhs, rhs } => {
            w.push(2);
            put_shape(w, lhs);
            put_shape(w, rhs);
        }
        BilinearOp::Conv2d {
            input,
            kernel,
            params,
        } => {
            w.push(3);
            let p = params;
            for &v in input
                .iter()
                .chain(kernel)
                .chain(&p.stride)
                .chain(&p.padding)
                .chain(&p.dilation)
                .chain(core::iter::once(&p.groups))
            {
                put_u64(w, v as u64);
            }
        }
    }
}

fn put_request(w: &mut Vec<u8>, req: &CorrelationRequest) {
    match req {
        CorrelationRequest::Triple(op) => {
            w.push(1);
            put_op(w, op);
        }
        CorrelationRequest::Square { shape } => {
            w.push(2);
            put_shape(w, shape);
        }
        CorrelationRequest::DivPair { shape, divisor } => {
            w.push(3);
            put_shape(w, shape);
            match divisor {
                Divisor::Uniform(d) => {
                    w.push(0);
                    put_u64(w, *d);
                }
                Divisor::PerElement(v) => {
                    w.push(1);
                    put_u64(w, v.len() as u64);
                    for &d in v {
                        put_u64(w, d);
                    }
                }
            }
        }
        CorrelationRequest::PowerMask {
            shape,
            wide,
            shift,
            degree,
            wide_powers,
        } => {
            w.push(12);
            put_shape(w, shape);
            // bit 0: a 128-bit opened value; bit 1: powers mod 2^64
            w.push(u8::from(*wide) | (u8::from(!*wide_powers) << 1));
            w.push(*shift as u8);
            w.push(*degree as u8);
        }
        CorrelationRequest::FixedMask { shape, owner } => {
            w.push(4);
            put_shape(w, shape);
            put_u64(w, *owner as u64);
        }
        CorrelationRequest::AndTriple { words } => {
            w.push(6);
            put_u64(w, *words as u64);
        }
        CorrelationRequest::OneSidedAnd { words } => {
            w.push(9);
            put_u64(w, *words as u64);
        }
        CorrelationRequest::BitPair { len } => {
            w.push(7);
            put_u64(w, *len as u64);
        }
        CorrelationRequest::SelectTriple { len } => {
            w.push(8);
            put_u64(w, *len as u64);
        }
        CorrelationRequest::FixedTriple { mask, op, side } => {
            w.push(5);
            put_u64(w, *mask);
            put_op(w, op);
            w.push(match side {
                FixedSide::Lhs => 0,
                FixedSide::Rhs => 1,
            });
        }
        CorrelationRequest::FixedProduct { op, lhs, rhs } => {
            w.push(11);
            put_op(w, op);
            put_u64(w, *lhs);
            put_u64(w, *rhs);
        }
    }
}

/// Whether a shape's element count is at most [`MAX_TENSOR_ELEMENTS`],
/// zero axes counted as one ([`crate::error::element_bound`]).
fn within_limit(shape: &[usize]) -> bool {
    crate::error::element_bound(shape).is_some_and(|n| n <= MAX_TENSOR_ELEMENTS)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(PeerError::Truncated.into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A length or dimension, capped so it can be allocated.
    fn len(&mut self) -> Result<usize> {
        let v = self.u64()?;
        if v > MAX_TENSOR_ELEMENTS as u64 {
            return Err(PeerError::Malformed("size over the limit").into());
        }
        Ok(v as usize)
    }

    fn header(&mut self, msg: u8) -> Result<()> {
        let version = self.u8()?;
        if version != WIRE_VERSION {
            return Err(PeerError::Version {
                ours: WIRE_VERSION,
                theirs: version,
            }
            .into());
        }
        if self.u8()? != msg {
            return Err(PeerError::Unexpected("wrong message type").into());
        }
        Ok(())
    }

    fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(PeerError::Malformed("trailing bytes").into())
        }
    }

    fn shape(&mut self) -> Result<Vec<usize>> {
        let rank = self.u8()? as usize;
        if rank > MAX_RANK {
            return Err(PeerError::Malformed("rank over the limit").into());
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(self.len()?);
        }
        if !within_limit(&shape) {
            return Err(PeerError::Malformed("tensor over the size limit").into());
        }
        Ok(shape)
    }

    fn dims<const N: usize>(&mut self) -> Result<[usize; N]> {
        let mut out = [0; N];
        for o in &mut out {
            *o = self.len()?;
        }
        Ok(out)
    }

    fn op(&mut self) -> Result<BilinearOp> {
        let op = match self.u8()? {
            1 => BilinearOp::Hadamard {
                shape: self.shape()?,
            },
            2 => BilinearOp::MatMul {
                lhs: self.shape()?,
                rhs: self.shape()?,
            },
            3 => {
                let input = self.dims::<4>()?;
                let kernel = self.dims::<4>()?;
                let stride = self.dims::<2>()?;
                let padding = self.dims::<4>()?;
                let dilation = self.dims::<2>()?;
                let [groups] = self.dims::<1>()?;
                for shape in [&input[..], &kernel[..]] {
                    if !within_limit(shape) {
                        return Err(PeerError::Malformed("tensor over the size limit").into());
                    }
                }
                BilinearOp::Conv2d {
                    input,
                    kernel,
                    params: Conv2dParams {
                        stride,
                        padding,
                        dilation,
                        groups,
                    },
                }
            }
            _ => return Err(PeerError::Malformed("unknown bilinear op").into()),
        };
        // The result must be well-formed and bounded too.
        let out = op
            .out_shape()
            .map_err(|_| PeerError::Malformed("bilinear op shapes do not fit"))?;
        if !within_limit(&out) {
            return Err(PeerError::Malformed("result over the size limit").into());
        }
        Ok(op)
    }

    fn request(&mut self) -> Result<CorrelationRequest> {
        let req = match self.u8()? {
            1 => CorrelationRequest::Triple(self.op()?),
            2 => CorrelationRequest::Square {
                shape: self.shape()?,
            },
            3 => {
                let shape = self.shape()?;
                let divisor = match self.u8()? {
                    0 => Divisor::Uniform(self.u64()?),
                    1 => {
                        let n = self.len()?;
                        if n.saturating_mul(8) > self.buf.len() {
                            return Err(PeerError::Truncated.into());
                        }
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            v.push(self.u64()?);
                        }
                        Divisor::PerElement(v)
                    }
                    _ => return Err(PeerError::Malformed("unknown divisor kind").into()),
                };
                divisor
                    .validate(shape.iter().product())
                    .map_err(|_| PeerError::Malformed("invalid divisor"))?;
                CorrelationRequest::DivPair { shape, divisor }
            }
            4 => CorrelationRequest::FixedMask {
                shape: self.shape()?,
                owner: self.len()?,
            },
            5 => {
                let mask = self.u64()?;
                let op = self.op()?;
                let side = match self.u8()? {
                    0 => FixedSide::Lhs,
                    1 => FixedSide::Rhs,
                    _ => return Err(PeerError::Malformed("unknown fixed side").into()),
                };
                CorrelationRequest::FixedTriple { mask, op, side }
            }
            6 => CorrelationRequest::AndTriple { words: self.len()? },
            7 => CorrelationRequest::BitPair { len: self.len()? },
            8 => CorrelationRequest::SelectTriple { len: self.len()? },
            9 => CorrelationRequest::OneSidedAnd { words: self.len()? },
            11 => {
                let op = self.op()?;
                let lhs = self.u64()?;
                let rhs = self.u64()?;
                CorrelationRequest::FixedProduct { op, lhs, rhs }
            }
            12 => {
                let shape = self.shape()?;
                let flags = self.u8()?;
                if flags > 3 {
                    return Err(PeerError::Malformed("power mask width").into());
                }
                let (wide, wide_powers) = (flags & 1 == 1, flags & 2 == 0);
                let shift = self.u8()? as u32;
                let degree = self.u8()? as u32;
                let req = CorrelationRequest::PowerMask {
                    shape,
                    wide,
                    shift,
                    degree,
                    wide_powers,
                };
                req.validate()
                    .map_err(|_| PeerError::Malformed("invalid power mask"))?;
                if let CorrelationRequest::PowerMask { shape, .. } = &req {
                    let len: usize = shape.iter().product();
                    let words = super::power_mask_words(degree as usize, wide_powers);
                    if !within_limit(&[len, words]) {
                        return Err(PeerError::Malformed("power mask over the size limit").into());
                    }
                }
                req
            }
            _ => return Err(PeerError::Malformed("unknown request kind").into()),
        };
        Ok(req)
    }

    fn ring_vec(&mut self, len: usize) -> Result<Vec<Ring>> {
        let bytes = self.take(len.checked_mul(8).ok_or(PeerError::Truncated)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use alloc::vec;
    use ndarray::IxDyn;

    #[test]
    fn an_empty_shape_whose_other_axes_overflow_is_over_the_limit() {
        // Found by libFuzzer: `[a, b, 0, c]` has no elements, but ndarray
        // panics making it when `a·b·c` passes isize::MAX.
        assert!(!within_limit(&[16776963, 65536, 0, 15466497]));
        assert!(within_limit(&[0, 4, 4]));
        assert!(within_limit(&[1 << 14, 1 << 14]));
        assert!(!within_limit(&[1 << 14, 1 << 15]));
    }

    fn requests() -> Vec<CorrelationRequest> {
        vec![
            CorrelationRequest::Triple(BilinearOp::Hadamard { shape: vec![3, 2] }),
            CorrelationRequest::Triple(BilinearOp::MatMul {
                lhs: vec![2, 3, 4],
                rhs: vec![4, 5],
            }),
            CorrelationRequest::Triple(BilinearOp::Conv2d {
                input: [1, 2, 5, 5],
                kernel: [4, 1, 3, 3],
                params: Conv2dParams {
                    stride: [2, 2],
                    padding: [1, 1, 1, 1],
                    dilation: [1, 1],
                    groups: 2,
                },
            }),
            CorrelationRequest::Square { shape: vec![7] },
            CorrelationRequest::DivPair {
                shape: vec![2],
                divisor: Divisor::Uniform(1 << 16),
            },
            CorrelationRequest::DivPair {
                shape: vec![2],
                divisor: Divisor::PerElement(vec![4, 9]),
            },
            CorrelationRequest::FixedMask {
                shape: vec![4, 4],
                owner: 1,
            },
            CorrelationRequest::PowerMask {
                shape: vec![2, 3],
                wide: true,
                shift: 91,
                degree: 4,
                wide_powers: true,
            },
            CorrelationRequest::PowerMask {
                shape: vec![5],
                wide: false,
                shift: 0,
                degree: 5,
                wide_powers: true,
            },
            CorrelationRequest::PowerMask {
                shape: vec![3],
                wide: true,
                shift: 95,
                degree: 2,
                wide_powers: false,
            },
            CorrelationRequest::AndTriple { words: 9 },
            CorrelationRequest::OneSidedAnd { words: 4 },
            CorrelationRequest::BitPair { len: 65 },
            CorrelationRequest::SelectTriple { len: 3 },
            CorrelationRequest::FixedTriple {
                mask: 3,
                op: BilinearOp::MatMul {
                    lhs: vec![1, 4],
                    rhs: vec![4, 4],
                },
                side: FixedSide::Rhs,
            },
            CorrelationRequest::FixedProduct {
                op: BilinearOp::Hadamard { shape: vec![5] },
                lhs: 0,
                rhs: 2,
            },
        ]
    }

    #[test]
    fn requests_round_trip() {
        for req in requests() {
            assert_eq!(decode_request(&encode_request(&req)).unwrap(), req);
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_a_typed_error_or_a_valid_message() {
        let req = &requests()[2];
        let t = RingTensor::from_elem(IxDyn(&[3]), 0x1234);
        let msg = encode_correction(req, core::slice::from_ref(&t));
        assert_eq!(
            decode_correction(&msg, req, &[3]).unwrap(),
            vec![vec![0x1234; 3]]
        );
        for cut in 0..msg.len() {
            let e = decode_correction(&msg[..cut], req, &[3]).unwrap_err();
            assert!(matches!(e, Error::Peer(_)), "cut at {cut}: {e:?}");
        }
        for i in 0..msg.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = msg.clone();
                bad[i] ^= flip;
                match decode_correction(&bad, req, &[3]) {
                    Ok(_) => assert!(i >= msg.len() - 24, "byte {i} changed the header silently"),
                    Err(e) => assert!(matches!(e, Error::Peer(_)), "{e:?}"),
                }
            }
        }
        for req in requests() {
            let bytes = encode_request(&req);
            for cut in 0..bytes.len() {
                assert!(matches!(decode_request(&bytes[..cut]), Err(Error::Peer(_))));
            }
        }
    }

    #[test]
    fn oversized_and_foreign_messages_are_rejected_before_allocating() {
        let mut huge = vec![WIRE_VERSION, MSG_REQUEST, 2, 2];
        huge.extend_from_slice(&(1u64 << 20).to_le_bytes());
        huge.extend_from_slice(&(1u64 << 20).to_le_bytes());
        assert!(matches!(
            decode_request(&huge),
            Err(Error::Peer(PeerError::Malformed(_)))
        ));
        let mut deep = vec![WIRE_VERSION, MSG_REQUEST, 2, 200];
        deep.extend_from_slice(&[0; 64]);
        assert!(matches!(decode_request(&deep), Err(Error::Peer(_))));
        let v2 = [WIRE_VERSION + 1, MSG_REQUEST, 2, 0];
        assert_eq!(
            decode_request(&v2),
            Err(Error::Peer(PeerError::Version {
                ours: WIRE_VERSION,
                theirs: WIRE_VERSION + 1
            }))
        );
        let per_elem_lie = {
            let mut w = vec![WIRE_VERSION, MSG_REQUEST, 3, 1];
            w.extend_from_slice(&2u64.to_le_bytes());
            w.push(1);
            w.extend_from_slice(&(1u64 << 27).to_le_bytes());
            w
        };
        assert!(matches!(decode_request(&per_elem_lie), Err(Error::Peer(_))));
        let other = requests()[3].clone();
        let msg = encode_correction(&requests()[0], &[]);
        assert_eq!(
            decode_correction(&msg, &other, &[]),
            Err(Error::Peer(PeerError::Unexpected(
                "correction answers a different request"
            )))
        );
    }
}
