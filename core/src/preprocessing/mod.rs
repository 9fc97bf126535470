//! Correlated randomness: what the protocols consume, and where it comes from.
//!
//! A protocol asks its [`Preprocessing`] for one [`Correlation`] at a time by
//! a [`CorrelationRequest`] that holds only public shapes, so the whole
//! sequence of requests for a computation is known from its public plan and
//! can be produced ahead of the input ([`Pregenerated`], [`Recorder`]).
//!
//! The implementation in this crate is the seeded dealer of the design
//! ([`seeded`]); a dealer-free generator (OT or HE based) can implement the
//! same trait later.

pub mod seeded;
pub mod wire;

use crate::bilinear::BilinearOp;
use crate::error::{Error, Result};
use crate::ring::RingTensor;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;
use core::fmt;

/// Which operand of a bilinear map is the session-fixed (masked-once) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedSide {
    /// `op(W, x)`: the fixed operand is on the left.
    Lhs,
    /// `op(x, W)`: the fixed operand is on the right.
    Rhs,
}

/// Public divisor(s) of a division pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Divisor {
    /// One divisor for every element.
    Uniform(u64),
    /// One divisor per element, in row-major order.
    PerElement(Vec<u64>),
}

impl Divisor {
    /// Divisor of element `i`.
    pub fn at(&self, i: usize) -> u64 {
        match self {
            Divisor::Uniform(d) => *d,
            Divisor::PerElement(v) => v[i],
        }
    }

    pub(crate) fn validate(&self, len: usize) -> Result<()> {
        let ok = match self {
            Divisor::Uniform(d) => (1..=MAX_DIVISOR).contains(d),
            Divisor::PerElement(v) => {
                v.len() == len && v.iter().all(|d| (1..=MAX_DIVISOR).contains(d))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(
                "divisors must lie in 1..=2^60 and match the tensor's length".into(),
            ))
        }
    }
}

/// Largest public divisor the division protocol accepts.
pub const MAX_DIVISOR: u64 = 1 << 60;

/// Highest power a [`CorrelationRequest::PowerMask`] may ask for.
pub const MAX_POWER_DEGREE: u32 = 8;

/// Whether a [`CorrelationRequest::PowerMask`] may divide the opened value
/// by `2^shift`: `0..=60` for a 64-bit value, `64..=125` for a 128-bit
/// (`wide`) one.
pub(crate) fn power_mask_shift_fits(wide: bool, shift: i64) -> bool {
    if wide {
        (64..=125).contains(&shift)
    } else {
        (0..=60).contains(&shift)
    }
}

/// Words per element of a [`PowerMaskShare`]'s powers: both candidates'
/// `degree` powers, two words each when `wide_powers`, one otherwise.
pub(crate) fn power_mask_words(degree: usize, wide_powers: bool) -> usize {
    2 * degree * if wide_powers { 2 } else { 1 }
}

/// What a protocol step needs, in public terms only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorrelationRequest {
    /// A Beaver triple `(A, B, C = op(A, B))` for a bilinear map.
    Triple(BilinearOp),
    /// A square pair `(A, A ⊙ A)`.
    Square {
        /// Shape of `A`.
        shape: Vec<usize>,
    },
    /// A division pair `(R, ⌊R / d⌋, msb(R))` for exact division by public `d`.
    DivPair {
        /// Shape of `R`.
        shape: Vec<usize>,
        /// The public divisor(s).
        divisor: Divisor,
    },
    /// A session-fixed mask `A` for an operand owned by one party (its
    /// weights, or a private input), drawn from the owner's seed alone: the
    /// owner knows `A` (the other parties' shares are zero) and sends
    /// `E = W - A` to the others once.
    FixedMask {
        /// Shape of the fixed operand.
        shape: Vec<usize>,
        /// The party that holds the operand.
        owner: usize,
    },
    /// A mask for opening a value `v` — 64-bit, or 128-bit when `wide` — as
    /// `c = v + K + R`, and shares of the powers `S^1..=S^degree` of both
    /// candidates of the mask of `y = ⌊(v + K)/2^shift⌋ − K/2^shift`: after
    /// the opening `y = P + S` with `P` public and `S` one of two dealer
    /// values picked by the public top bit of `c`, so any polynomial of
    /// degree ≤ `degree` in `y` is local (`protocol/powers.rs`).
    PowerMask {
        /// Shape of the opened value.
        shape: Vec<usize>,
        /// Whether the opened value and `R` are 128-bit (64-bit otherwise).
        wide: bool,
        /// The opened value is divided by `2^shift` (`≤ 60` for 64-bit
        /// values, `64..=125` for 128-bit ones).
        shift: u32,
        /// Highest power of the mask (`1..=MAX_POWER_DEGREE`).
        degree: u32,
        /// Whether the powers are mod 2^128 (two words each) or mod 2^64
        /// (one word: half the material, for results that fit 64 bits).
        wide_powers: bool,
    },
    /// XOR shares of random words `A`, `B` and of `C = A & B`.
    AndTriple {
        /// Number of 64-bit words.
        words: usize,
    },
    /// Two parties only: party 0's random words `A`, party 1's random words
    /// `B` (each known to its holder alone), and XOR shares of `A & B` — an
    /// AND of two inputs each held by one party, one opened bit per gate.
    OneSidedAnd {
        /// Number of 64-bit words.
        words: usize,
    },
    /// `len` random bits `r`, packed 64 per word in XOR shares, and the same
    /// bits as additive shares of 0 or 1 (to turn a shared bit into an
    /// additive share in one round).
    BitPair {
        /// Number of bits.
        len: usize,
    },
    /// A [`CorrelationRequest::BitPair`] plus a random `A` and `A·r`, to
    /// multiply an additive share by a shared bit in one round.
    SelectTriple {
        /// Number of elements.
        len: usize,
    },
    /// A fresh `(B, C = op(A, B))` (or `op(B, A)`) for an earlier fixed mask `A`.
    FixedTriple {
        /// Index of the fixed mask, in the order masks were requested.
        mask: u64,
        /// The bilinear map, with both operands' shapes.
        op: BilinearOp,
        /// Which operand the fixed mask stands for.
        side: FixedSide,
    },
    /// Shares of `C = op(A, B)` for two earlier fixed masks: `A` of the left
    /// operand, `B` of the right. With both operands masked once, their
    /// product opens nothing but its truncation (`protocol/fixed.rs`).
    FixedProduct {
        /// The bilinear map, with both operands' shapes.
        op: BilinearOp,
        /// Index of the left operand's fixed mask.
        lhs: u64,
        /// Index of the right operand's fixed mask.
        rhs: u64,
    },
}

impl CorrelationRequest {
    /// Shape of the fresh operand mask of a fixed triple.
    pub(crate) fn fixed_fresh_shape(op: &BilinearOp, side: FixedSide) -> &[usize] {
        match side {
            FixedSide::Lhs => op.rhs_shape(),
            FixedSide::Rhs => op.lhs_shape(),
        }
    }

    /// Checks that the request describes well-formed shapes.
    pub fn validate(&self) -> Result<()> {
        match self {
            CorrelationRequest::Triple(op)
            | CorrelationRequest::FixedTriple { op, .. }
            | CorrelationRequest::FixedProduct { op, .. } => op.out_shape().map(|_| ()),
            CorrelationRequest::Square { .. }
            | CorrelationRequest::FixedMask { .. }
            | CorrelationRequest::AndTriple { .. }
            | CorrelationRequest::OneSidedAnd { .. }
            | CorrelationRequest::BitPair { .. }
            | CorrelationRequest::SelectTriple { .. } => Ok(()),
            CorrelationRequest::DivPair { shape, divisor } => {
                divisor.validate(shape.iter().product())
            }
            CorrelationRequest::PowerMask {
                wide,
                shift,
                degree,
                ..
            } => {
                if power_mask_shift_fits(*wide, *shift as i64)
                    && (1..=MAX_POWER_DEGREE).contains(degree)
                {
                    Ok(())
                } else {
                    Err(Error::Usage(format!(
                        "power mask: shift {shift} (wide: {wide}) or degree {degree} out of range"
                    )))
                }
            }
        }
    }
}

/// A party's share of a Beaver triple.
#[derive(Clone)]
pub struct BeaverTriple {
    /// Share of the left mask `A`.
    pub a: RingTensor,
    /// Share of the right mask `B`.
    pub b: RingTensor,
    /// Share of `C = op(A, B)`.
    pub c: RingTensor,
}

/// A party's share of a square pair.
#[derive(Clone)]
pub struct SquarePair {
    /// Share of `A`.
    pub a: RingTensor,
    /// Share of `A ⊙ A`.
    pub aa: RingTensor,
}

/// A party's share of a division pair.
#[derive(Clone)]
pub struct DivPair {
    /// Share of the uniformly random `R`.
    pub r: RingTensor,
    /// Share of `⌊R / d⌋` (R read as an unsigned integer).
    pub r_div: RingTensor,
    /// Share of the top bit of `R`, as 0 or 1.
    pub r_msb: RingTensor,
}

/// A party's share of a power mask ([`CorrelationRequest::PowerMask`]).
/// 128-bit values are stored as two words, low first.
#[derive(Clone)]
pub struct PowerMaskShare {
    /// Share of `R`: one word per element, or two when wide.
    pub r: RingTensor,
    /// Per element, shares of `S_0^1..=S_0^degree` then of
    /// `S_1^1..=S_1^degree`, each mod 2^128 (two words) or, without
    /// `wide_powers`, mod 2^64 (one word): `S_0 = −⌊R/2^shift⌋` is the mask
    /// when the opened value's top bit is set, `S_1 = S_0 + msb(R)·2^(bits −
    /// shift)` when it is clear. Shape `[len, 4·degree]` (`[len, 2·degree]`).
    pub powers: RingTensor,
}

/// A party's share of a session-fixed mask.
#[derive(Clone)]
pub struct FixedMaskShare {
    /// Index of the mask, to name it in later [`CorrelationRequest::FixedTriple`]s.
    pub id: u64,
    /// Share of `A`.
    pub a: RingTensor,
}

/// A party's share of a fresh mask and product for a fixed mask.
#[derive(Clone)]
pub struct FixedTripleShare {
    /// Share of the fresh mask `B`.
    pub b: RingTensor,
    /// Share of `op(A, B)` or `op(B, A)`.
    pub c: RingTensor,
}

/// A party's share of the product of two fixed masks.
#[derive(Clone)]
pub struct FixedProductShare {
    /// Share of `op(A, B)`.
    pub c: RingTensor,
}

/// A party's XOR shares of an AND triple over 64-bit words.
#[derive(Clone)]
pub struct AndTriple {
    /// Share of `A`.
    pub a: RingTensor,
    /// Share of `B`.
    pub b: RingTensor,
    /// Share of `A & B`.
    pub c: RingTensor,
}

/// A party's part of a one-sided AND correlation.
#[derive(Clone)]
pub struct OneSidedAnd {
    /// This party's own random words (`A` at party 0, `B` at party 1).
    pub mask: RingTensor,
    /// XOR share of `A & B`.
    pub z: RingTensor,
}

/// A party's shares of random bits in both forms.
#[derive(Clone)]
pub struct BitPair {
    /// XOR share of the bits, packed 64 per word (bit `j % 64` of word `j / 64`).
    pub r: RingTensor,
    /// Additive share of each bit as 0 or 1.
    pub r_arith: RingTensor,
}

/// A party's shares for multiplying by a shared bit.
#[derive(Clone)]
pub struct SelectTriple {
    /// The random bits, in both forms.
    pub bits: BitPair,
    /// Additive share of a random `A`.
    pub a: RingTensor,
    /// Additive share of `A·r`.
    pub ar: RingTensor,
}

/// One party's share of one correlation.
#[derive(Clone)]
#[non_exhaustive]
pub enum Correlation {
    /// See [`CorrelationRequest::Triple`].
    Triple(BeaverTriple),
    /// See [`CorrelationRequest::Square`].
    Square(SquarePair),
    /// See [`CorrelationRequest::DivPair`].
    DivPair(DivPair),
    /// See [`CorrelationRequest::PowerMask`].
    PowerMask(PowerMaskShare),
    /// See [`CorrelationRequest::FixedMask`].
    FixedMask(FixedMaskShare),
    /// See [`CorrelationRequest::FixedTriple`].
    FixedTriple(FixedTripleShare),
    /// See [`CorrelationRequest::FixedProduct`].
    FixedProduct(FixedProductShare),
    /// See [`CorrelationRequest::AndTriple`].
    And(AndTriple),
    /// See [`CorrelationRequest::BitPair`].
    Bit(BitPair),
    /// See [`CorrelationRequest::OneSidedAnd`].
    OneSided(OneSidedAnd),
    /// See [`CorrelationRequest::SelectTriple`].
    Select(SelectTriple),
}

impl fmt::Debug for Correlation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Correlation::Triple(_) => "Triple",
            Correlation::Square(_) => "Square",
            Correlation::DivPair(_) => "DivPair",
            Correlation::PowerMask(_) => "PowerMask",
            Correlation::FixedMask(_) => "FixedMask",
            Correlation::FixedTriple(_) => "FixedTriple",
            Correlation::FixedProduct(_) => "FixedProduct",
            Correlation::And(_) => "And",
            Correlation::Bit(_) => "Bit",
            Correlation::OneSided(_) => "OneSided",
            Correlation::Select(_) => "Select",
        };
        write!(f, "Correlation::{name}(<redacted>)")
    }
}

macro_rules! correlation_accessor {
    ($fn:ident, $variant:ident, $ty:ty) => {
        /// The correlation as this variant, or a usage error naming what it was.
        pub fn $fn(self) -> Result<$ty> {
            match self {
                Correlation::$variant(x) => Ok(x),
                other => Err(Error::Usage(format!(
                    "preprocessing returned {other:?} where {} was requested",
                    stringify!($variant)
                ))),
            }
        }
    };
}

impl Correlation {
    correlation_accessor!(into_triple, Triple, BeaverTriple);
    correlation_accessor!(into_square, Square, SquarePair);
    correlation_accessor!(into_div_pair, DivPair, DivPair);
    correlation_accessor!(into_power_mask, PowerMask, PowerMaskShare);
    correlation_accessor!(into_fixed_mask, FixedMask, FixedMaskShare);
    correlation_accessor!(into_fixed_triple, FixedTriple, FixedTripleShare);
    correlation_accessor!(into_fixed_product, FixedProduct, FixedProductShare);
    correlation_accessor!(into_and, And, AndTriple);
    correlation_accessor!(into_bit, Bit, BitPair);
    correlation_accessor!(into_one_sided, OneSided, OneSidedAnd);
    correlation_accessor!(into_select, Select, SelectTriple);
}

/// A source of correlated randomness for one party.
#[allow(async_fn_in_trait)] // no `Send` bound on purpose: browser handles are not `Send`
pub trait Preprocessing {
    /// This party's share of the next correlation. Requests must come in the
    /// same order at every party and at the dealer.
    async fn next(&mut self, request: &CorrelationRequest) -> Result<Correlation>;
}

impl<P: Preprocessing + ?Sized> Preprocessing for &mut P {
    async fn next(&mut self, request: &CorrelationRequest) -> Result<Correlation> {
        (**self).next(request).await
    }
}

/// Wraps a [`Preprocessing`] and records every request, so a computation's
/// request sequence can be learned once and pregenerated later.
#[derive(Debug)]
pub struct Recorder<P> {
    inner: P,
    requests: Vec<CorrelationRequest>,
}

impl<P> Recorder<P> {
    /// Records what passes through to `inner`.
    pub fn new(inner: P) -> Self {
        Recorder {
            inner,
            requests: Vec::new(),
        }
    }

    /// The requests seen so far, in order.
    pub fn requests(&self) -> &[CorrelationRequest] {
        &self.requests
    }

    /// The recorded requests and the inner source.
    pub fn into_parts(self) -> (P, Vec<CorrelationRequest>) {
        (self.inner, self.requests)
    }
}

impl<P: Preprocessing> Preprocessing for Recorder<P> {
    async fn next(&mut self, request: &CorrelationRequest) -> Result<Correlation> {
        self.requests.push(request.clone());
        self.inner.next(request).await
    }
}

/// Correlations generated ahead of time (the offline phase), handed out in
/// order during the online phase. A request that differs from the one
/// generated at that position is an error.
#[derive(Debug, Default)]
pub struct Pregenerated {
    queue: VecDeque<(CorrelationRequest, Correlation)>,
}

impl Pregenerated {
    /// Generates the correlations for `requests` from `source` now.
    pub async fn generate<P: Preprocessing>(
        source: &mut P,
        requests: &[CorrelationRequest],
    ) -> Result<Pregenerated> {
        let mut queue = VecDeque::with_capacity(requests.len());
        for r in requests {
            queue.push_back((r.clone(), source.next(r).await?));
        }
        Ok(Pregenerated { queue })
    }

    /// Correlations left.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }
}

impl Preprocessing for Pregenerated {
    async fn next(&mut self, request: &CorrelationRequest) -> Result<Correlation> {
        match self.queue.pop_front() {
            Some((r, c)) if &r == request => Ok(c),
            Some((r, _)) => Err(Error::Usage(format!(
                "pregenerated correlations out of order: expected {r:?}, asked for {request:?}"
            ))),
            None => Err(Error::Usage(format!(
                "pregenerated correlations exhausted at {request:?}"
            ))),
        }
    }
}
