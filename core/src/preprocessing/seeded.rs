//! The seeded dealer of the design.
//!
//! Each party shares a 256-bit seed with the dealer. For every correlation,
//! every party expands the *random* parts (masks `A`, `B`, `R`) from its own
//! ChaCha stream, in program order. Parties `0..n-1` also expand their shares
//! of the *derived* parts (`C = op(A, B)`, `A²`, `⌊R/d⌋`, `msb(R)`); the last
//! party (the server) instead receives a correction that makes the shares sum
//! to the right value. So the client downloads 32 bytes of preprocessing, and
//! the server one ring element per derived element.
//!
//! [`draw_shapes`] is the single description of which tensors a request
//! draws, used by both [`SeededPreprocessing`] and [`SeededDealer`], so their
//! streams cannot drift apart.

use super::wire::{decode_correction, decode_request, encode_correction, encode_request};
use super::{
    AndTriple, BeaverTriple, BitPair, Correlation, CorrelationRequest, DivPair, FixedMaskShare,
    FixedProductShare, FixedSide, FixedTripleShare, OneSidedAnd, PowerMaskShare, Preprocessing,
    SelectTriple, SquarePair, power_mask_words,
};
use crate::backend::Backend;
use crate::bilinear::BilinearOp;
use crate::channel::Channel;
use crate::error::{ChannelError, Error, PartyId, PeerError, Result};
use crate::prg::{Prg, Seed};
use crate::ring::{Ring, RingTensor, put_wide, wide};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use ndarray::{IxDyn, Zip};

/// How the parties' pieces of a drawn tensor combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawKind {
    /// Additive over Z_2^64.
    Arith,
    /// Additive over Z_2^128: consecutive pairs of words (low first) are
    /// one element.
    Arith128,
    /// XOR.
    Binary,
}

/// One tensor a request draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// Its shape.
    pub shape: Vec<usize>,
    /// How pieces combine.
    pub kind: DrawKind,
}

/// What a request draws: every party draws the `random` tensors; parties but
/// the last draw the `derived` ones, which the last party gets as
/// corrections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draws {
    /// Tensors every party expands from its seed (or only `owner`).
    pub random: Vec<Draw>,
    /// When set, only this party draws the `random` tensors (so it knows
    /// them in the clear); the others' pieces are zero and their streams
    /// do not move.
    pub owner: Option<PartyId>,
    /// Tensors whose value depends on the random ones.
    pub derived: Vec<Draw>,
}

impl Draws {
    /// Ring elements the last party receives as corrections.
    pub fn correction_elements(&self) -> usize {
        self.derived
            .iter()
            .map(|d| d.shape.iter().product::<usize>())
            .sum()
    }

    /// Ring elements the request draws in all (random and derived), or
    /// `None` when that overflows (a request no validation has seen).
    pub fn elements(&self) -> Option<usize> {
        self.random
            .iter()
            .chain(&self.derived)
            .try_fold(0usize, |acc, t| {
                acc.checked_add(crate::plan::elements(&t.shape)?)
            })
    }
}

fn arith(shape: &[usize]) -> Draw {
    Draw {
        shape: shape.to_vec(),
        kind: DrawKind::Arith,
    }
}

fn arith128(shape: &[usize]) -> Draw {
    Draw {
        shape: shape.to_vec(),
        kind: DrawKind::Arith128,
    }
}

fn binary(shape: &[usize]) -> Draw {
    Draw {
        shape: shape.to_vec(),
        kind: DrawKind::Binary,
    }
}

/// Words that hold `len` packed bits.
pub fn bit_words(len: usize) -> usize {
    len.div_ceil(64)
}

/// The single description of what each request draws, shared by the parties
/// and the dealer so their streams cannot drift apart.
pub fn draws(req: &CorrelationRequest) -> Result<Draws> {
    let (random, derived) = match req {
        CorrelationRequest::Triple(op) => (
            vec![arith(op.lhs_shape()), arith(op.rhs_shape())],
            vec![arith(&op.out_shape()?)],
        ),
        CorrelationRequest::Square { shape } => (vec![arith(shape)], vec![arith(shape)]),
        CorrelationRequest::DivPair { shape, .. } => {
            (vec![arith(shape)], vec![arith(shape), arith(shape)])
        }
        CorrelationRequest::PowerMask {
            shape,
            wide,
            degree,
            wide_powers,
            ..
        } => {
            let len: usize = shape.iter().product();
            let r = if *wide {
                arith128(&[len, 2])
            } else {
                arith(&[len])
            };
            let shape = [len, power_mask_words(*degree as usize, *wide_powers)];
            let powers = if *wide_powers {
                arith128(&shape)
            } else {
                arith(&shape)
            };
            (vec![r], vec![powers])
        }
        CorrelationRequest::FixedMask { shape, owner } => {
            return Ok(Draws {
                random: vec![arith(shape)],
                derived: vec![],
                owner: Some(*owner),
            });
        }
        CorrelationRequest::FixedTriple { op, side, .. } => (
            vec![arith(CorrelationRequest::fixed_fresh_shape(op, *side))],
            vec![arith(&op.out_shape()?)],
        ),
        CorrelationRequest::FixedProduct { op, .. } => (vec![], vec![arith(&op.out_shape()?)]),
        CorrelationRequest::AndTriple { words } => (
            vec![binary(&[*words]), binary(&[*words])],
            vec![binary(&[*words])],
        ),
        CorrelationRequest::BitPair { len } => {
            (vec![binary(&[bit_words(*len)])], vec![arith(&[*len])])
        }
        CorrelationRequest::SelectTriple { len } => (
            vec![binary(&[bit_words(*len)]), arith(&[*len])],
            vec![arith(&[*len]), arith(&[*len])],
        ),
        CorrelationRequest::OneSidedAnd { words } => {
            (vec![binary(&[*words])], vec![binary(&[*words])])
        }
    };
    Ok(Draws {
        random,
        derived,
        owner: None,
    })
}

fn draw_all(prg: &mut Prg, draws: &[Draw]) -> Vec<RingTensor> {
    draws.iter().map(|d| prg.tensor(&d.shape)).collect()
}

/// Where the last party's corrections come from.
#[allow(async_fn_in_trait)]
pub trait CorrectionSource {
    /// The correction tensors for `req`, of the element counts `lens`.
    async fn corrections(
        &mut self,
        req: &CorrelationRequest,
        lens: &[usize],
    ) -> Result<Vec<Vec<Ring>>>;
}

/// The correction source of parties that never receive corrections.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCorrections;

impl CorrectionSource for NoCorrections {
    async fn corrections(&mut self, _: &CorrelationRequest, _: &[usize]) -> Result<Vec<Vec<Ring>>> {
        Err(Error::Usage(
            "only the last party receives dealer corrections".into(),
        ))
    }
}

/// `None` stands for "no dealer here" (every party but the last), so all
/// parties of an in-process run can share one type.
impl<S: CorrectionSource> CorrectionSource for Option<S> {
    async fn corrections(
        &mut self,
        req: &CorrelationRequest,
        lens: &[usize],
    ) -> Result<Vec<Vec<Ring>>> {
        match self {
            Some(s) => s.corrections(req, lens).await,
            None => NoCorrections.corrections(req, lens).await,
        }
    }
}

/// Preprocessing for the parties holding `seeds` and their dealer, all in
/// this process: the last party's entry owns the dealer. For tests,
/// benchmarks and the insecure development mode (see [`SeededDealer`]'s
/// [`CorrectionSource`] impl). Use [`SeededDealer::random_seeds`] for seeds
/// unless a test needs to reproduce a run.
pub fn in_process<B: Backend>(
    seeds: &[Seed],
    backend: B,
) -> Vec<SeededPreprocessing<Option<SeededDealer<B>>>> {
    let n = seeds.len();
    let mut dealer = Some(SeededDealer::new(seeds, backend));
    seeds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let source = if i + 1 == n { dealer.take() } else { None };
            SeededPreprocessing::new(i, n, s, source)
        })
        .collect()
}

/// A party's preprocessing from its dealer seed.
pub struct SeededPreprocessing<S> {
    party: PartyId,
    num_parties: usize,
    prg: Prg,
    masks: u64,
    source: S,
}

impl<S> fmt::Debug for SeededPreprocessing<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededPreprocessing")
            .field("party", &self.party)
            .field("num_parties", &self.num_parties)
            .finish_non_exhaustive()
    }
}

impl<S: CorrectionSource> SeededPreprocessing<S> {
    /// Party `party` of `num_parties`, expanding `seed`; `source` supplies the
    /// corrections if this is the last party.
    pub fn new(party: PartyId, num_parties: usize, seed: &Seed, source: S) -> Self {
        SeededPreprocessing {
            party,
            num_parties,
            prg: Prg::new(seed),
            masks: 0,
            source,
        }
    }

    fn is_last(&self) -> bool {
        self.party + 1 == self.num_parties
    }

    /// The correction source (to tell a dealer link what comes next).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }
}

impl<S: CorrectionSource> Preprocessing for SeededPreprocessing<S> {
    async fn next(&mut self, req: &CorrelationRequest) -> Result<Correlation> {
        req.validate()?;
        let Draws {
            random,
            derived: derived_draws,
            owner,
        } = draws(req)?;
        if owner.is_some_and(|o| o >= self.num_parties) {
            return Err(Error::Usage(format!("party {owner:?} does not exist")));
        }
        let mut random = if owner.is_none_or(|o| o == self.party) {
            draw_all(&mut self.prg, &random)
        } else {
            random
                .iter()
                .map(|d| RingTensor::zeros(IxDyn(&d.shape)))
                .collect()
        }
        .into_iter();
        let derived: Vec<RingTensor> = if self.is_last() {
            let lens: Vec<usize> = derived_draws
                .iter()
                .map(|d| d.shape.iter().product())
                .collect();
            let raw = self.source.corrections(req, &lens).await?;
            raw.into_iter()
                .zip(&derived_draws)
                .map(|(v, d)| {
                    RingTensor::from_shape_vec(IxDyn(&d.shape), v)
                        .map_err(|_| Error::from(PeerError::Malformed("correction shape")))
                })
                .collect::<Result<_>>()?
        } else {
            draw_all(&mut self.prg, &derived_draws)
        };
        let mut derived = derived.into_iter();
        let take = |it: &mut alloc::vec::IntoIter<RingTensor>| {
            it.next()
                .ok_or_else(|| Error::Usage("draw_shapes and assembly disagree".into()))
        };
        Ok(match req {
            CorrelationRequest::Triple(_) => Correlation::Triple(BeaverTriple {
                a: take(&mut random)?,
                b: take(&mut random)?,
                c: take(&mut derived)?,
            }),
            CorrelationRequest::Square { .. } => Correlation::Square(SquarePair {
                a: take(&mut random)?,
                aa: take(&mut derived)?,
            }),
            CorrelationRequest::DivPair { .. } => Correlation::DivPair(DivPair {
                r: take(&mut random)?,
                r_div: take(&mut derived)?,
                r_msb: take(&mut derived)?,
            }),
            CorrelationRequest::PowerMask { .. } => Correlation::PowerMask(PowerMaskShare {
                r: take(&mut random)?,
                powers: take(&mut derived)?,
            }),
            CorrelationRequest::FixedMask { .. } => {
                let id = self.masks;
                self.masks += 1;
                Correlation::FixedMask(FixedMaskShare {
                    id,
                    a: take(&mut random)?,
                })
            }
            CorrelationRequest::AndTriple { .. } => Correlation::And(AndTriple {
                a: take(&mut random)?,
                b: take(&mut random)?,
                c: take(&mut derived)?,
            }),
            CorrelationRequest::OneSidedAnd { .. } => Correlation::OneSided(OneSidedAnd {
                mask: take(&mut random)?,
                z: take(&mut derived)?,
            }),
            CorrelationRequest::BitPair { .. } => Correlation::Bit(BitPair {
                r: take(&mut random)?,
                r_arith: take(&mut derived)?,
            }),
            CorrelationRequest::SelectTriple { .. } => {
                let r = take(&mut random)?;
                let a = take(&mut random)?;
                Correlation::Select(SelectTriple {
                    bits: BitPair {
                        r,
                        r_arith: take(&mut derived)?,
                    },
                    a,
                    ar: take(&mut derived)?,
                })
            }
            CorrelationRequest::FixedTriple { mask, .. } => {
                if *mask >= self.masks {
                    return Err(Error::Usage(format!(
                        "fixed mask {mask} was never requested"
                    )));
                }
                Correlation::FixedTriple(FixedTripleShare {
                    b: take(&mut random)?,
                    c: take(&mut derived)?,
                })
            }
            CorrelationRequest::FixedProduct { lhs, rhs, .. } => {
                if let Some(m) = [lhs, rhs].into_iter().find(|&&m| m >= self.masks) {
                    return Err(Error::Usage(format!("fixed mask {m} was never requested")));
                }
                Correlation::FixedProduct(FixedProductShare {
                    c: take(&mut derived)?,
                })
            }
        })
    }
}

/// The dealer: mirrors every party's stream and computes the last party's
/// corrections. It sees only random masks, never inputs, weights or outputs.
pub struct SeededDealer<B> {
    prgs: Vec<Prg>,
    masks: Vec<RingTensor>,
    backend: B,
}

impl<B> fmt::Debug for SeededDealer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededDealer")
            .field("parties", &self.prgs.len())
            .field("fixed_masks", &self.masks.len())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SeededDealer<B> {
    /// A dealer for the parties holding `seeds` (in party order).
    pub fn new(seeds: &[Seed], backend: B) -> Self {
        SeededDealer {
            prgs: seeds.iter().map(Prg::new).collect(),
            masks: Vec::new(),
            backend,
        }
    }

    /// Fresh random seeds for `n` parties, from the OS.
    pub fn random_seeds(n: usize) -> Result<Vec<Seed>> {
        (0..n).map(|_| Seed::random()).collect()
    }

    /// Computes the last party's correction tensors for the next request.
    pub fn generate(&mut self, req: &CorrelationRequest) -> Result<Vec<RingTensor>> {
        req.validate()?;
        let n = self.prgs.len();
        let d = draws(req)?;
        let one_sided = matches!(req, CorrelationRequest::OneSidedAnd { .. });
        if one_sided && n != 2 {
            return Err(Error::Unsupported(
                "one-sided AND is a two-party correlation",
            ));
        }
        if d.owner.is_some_and(|o| o >= n) {
            return Err(PeerError::Malformed("mask owner is not a party").into());
        }
        // Running totals of the parties' pieces: the first party's stream
        // is the total's storage, the others' are folded into it as they are
        // expanded (no tensor per party).
        let mut totals: Vec<Option<RingTensor>> = vec![None; d.random.len()];
        let mut others: Vec<Option<RingTensor>> = vec![None; d.derived.len()];
        let mut own: Vec<RingTensor> = Vec::new();
        for (i, prg) in self.prgs.iter_mut().enumerate() {
            if d.owner.is_none_or(|o| o == i) {
                for (t, dr) in totals.iter_mut().zip(&d.random) {
                    if one_sided {
                        // The correction is the AND of the two parties'
                        // own masks, so each is kept.
                        let r = prg.tensor(&dr.shape);
                        own.push(r.clone());
                        accumulate_tensor(t, r, dr.kind);
                    } else {
                        accumulate(t, prg, dr);
                    }
                }
            }
            if i + 1 < n {
                for (t, dr) in others.iter_mut().zip(&d.derived) {
                    accumulate(t, prg, dr);
                }
            }
        }
        let mut totals: Vec<RingTensor> = totals
            .into_iter()
            .zip(&d.random)
            .map(|(t, dr)| t.unwrap_or_else(|| RingTensor::zeros(IxDyn(&dr.shape))))
            .collect();
        let truth: Vec<RingTensor> = match req {
            CorrelationRequest::Triple(op) => {
                vec![op.apply(&self.backend, &totals[0], &totals[1])?]
            }
            CorrelationRequest::Square { .. } => {
                vec![self.backend.hadamard(&totals[0], &totals[0])]
            }
            CorrelationRequest::DivPair { divisor, .. } => {
                let r = &totals[0];
                let mut r_div = RingTensor::zeros(r.raw_dim());
                for (i, (o, &v)) in r_div.iter_mut().zip(r.iter()).enumerate() {
                    *o = v / divisor.at(i);
                }
                vec![r_div, r.mapv(|v| v >> 63)]
            }
            CorrelationRequest::PowerMask {
                wide,
                shift,
                degree,
                wide_powers,
                ..
            } => vec![power_mask_powers(
                &totals[0],
                *wide,
                *shift,
                *degree as usize,
                *wide_powers,
            )],
            CorrelationRequest::FixedMask { .. } => {
                self.masks.push(totals.swap_remove(0));
                vec![]
            }
            CorrelationRequest::AndTriple { .. } => {
                vec![
                    Zip::from(&totals[0])
                        .and(&totals[1])
                        .map_collect(|&a, &b| a & b),
                ]
            }
            CorrelationRequest::BitPair { len } => vec![unpack_bits(&totals[0], *len)],
            CorrelationRequest::OneSidedAnd { .. } => {
                vec![Zip::from(&own[0]).and(&own[1]).map_collect(|&a, &b| a & b)]
            }
            CorrelationRequest::SelectTriple { len } => {
                let r = unpack_bits(&totals[0], *len);
                let ar = Zip::from(&r)
                    .and(&totals[1])
                    .map_collect(|&r, &a| r.wrapping_mul(a));
                vec![r, ar]
            }
            CorrelationRequest::FixedTriple { mask, op, side } => {
                let a = self
                    .masks
                    .get(*mask as usize)
                    .ok_or(PeerError::Malformed("unknown fixed mask"))?;
                if a.shape() != fixed_shape(op, *side) {
                    return Err(PeerError::Malformed("fixed mask has another shape").into());
                }
                let c = match side {
                    FixedSide::Lhs => op.apply(&self.backend, a, &totals[0])?,
                    FixedSide::Rhs => op.apply(&self.backend, &totals[0], a)?,
                };
                vec![c]
            }
            CorrelationRequest::FixedProduct { op, lhs, rhs } => {
                let mask = |id: u64, shape: &[usize]| -> Result<&RingTensor> {
                    let a = self
                        .masks
                        .get(id as usize)
                        .ok_or(PeerError::Malformed("unknown fixed mask"))?;
                    if a.shape() != shape {
                        return Err(PeerError::Malformed("fixed mask has another shape").into());
                    }
                    Ok(a)
                };
                let (a, b) = (mask(*lhs, op.lhs_shape())?, mask(*rhs, op.rhs_shape())?);
                vec![op.apply(&self.backend, a, b)?]
            }
        };
        Ok(truth
            .into_iter()
            .zip(others)
            .zip(&d.derived)
            .map(|((mut t, o), dr)| {
                if let Some(o) = o {
                    combine_assign(&mut t, &o, dr.kind, Combine::Sub);
                }
                t
            })
            .collect())
    }
}

/// Adds (as `kind` combines) the next draw of `prg`, of `draw`'s shape, into
/// the running total `t`, or makes it the total when there is none yet.
fn accumulate(t: &mut Option<RingTensor>, prg: &mut Prg, draw: &Draw) {
    match t {
        None => *t = Some(prg.tensor(&draw.shape)),
        Some(t) => match t.as_slice_mut() {
            Some(s) => match draw.kind {
                DrawKind::Arith => prg.fold_into(s, Ring::wrapping_add),
                DrawKind::Binary => prg.fold_into(s, |t, x| t ^ x),
                DrawKind::Arith128 => prg.fold_wide_into(s, u128::wrapping_add),
            },
            None => combine_assign(t, &prg.tensor(&draw.shape), draw.kind, Combine::Add),
        },
    }
}

/// [`accumulate`] with a tensor already drawn.
fn accumulate_tensor(t: &mut Option<RingTensor>, x: RingTensor, kind: DrawKind) {
    match t {
        None => *t = Some(x),
        Some(t) => combine_assign(t, &x, kind, Combine::Add),
    }
}

/// `t[i] = f(t[i], x[i])` for the 128-bit elements of two tensors of word pairs.
fn pairs_assign(t: &mut RingTensor, x: &RingTensor, f: impl Fn(u128, u128) -> u128) {
    if let (Some(t), Some(x)) = (t.as_slice_mut(), x.as_slice()) {
        for (t, x) in t.chunks_exact_mut(2).zip(x.chunks_exact(2)) {
            put_wide(t, f(wide(t[0], t[1]), wide(x[0], x[1])));
        }
    }
}

/// The dealer's powers of a power mask: per element, `S_0^j` then `S_1^j`
/// for `j = 1..=degree` (see [`PowerMaskShare`]), from the mask `R`
/// (one word per element, or two when `wide`); each power mod 2^128 (two
/// words) when `wide_powers`, mod 2^64 (its low word) otherwise.
fn power_mask_powers(
    r: &RingTensor,
    wide_r: bool,
    shift: u32,
    degree: usize,
    wide_powers: bool,
) -> RingTensor {
    let words = r.as_slice().unwrap_or_default();
    let (len, bits) = if wide_r {
        (words.len() / 2, 128)
    } else {
        (words.len(), 64)
    };
    let q = 1u128 << (bits - shift);
    let w = if wide_powers { 2 } else { 1 };
    let per = power_mask_words(degree, wide_powers);
    let mut out = vec![0u64; len * per];
    for (i, o) in out.chunks_exact_mut(per).enumerate() {
        let r = if wide_r {
            wide(words[2 * i], words[2 * i + 1])
        } else {
            words[i] as u128
        };
        let s0 = (r >> shift).wrapping_neg();
        let msb = r >> (bits - 1);
        let s1 = s0.wrapping_add(msb.wrapping_mul(q));
        for (c, s) in [s0, s1].into_iter().enumerate() {
            let mut p = 1u128;
            for j in 0..degree {
                p = p.wrapping_mul(s);
                let at = w * (c * degree + j);
                if wide_powers {
                    put_wide(&mut o[at..at + 2], p);
                } else {
                    o[at] = p as u64;
                }
            }
        }
    }
    from_words(&[len, per], out)
}

fn from_words(shape: &[usize], v: Vec<u64>) -> RingTensor {
    RingTensor::from_shape_vec(IxDyn(shape), v)
        .unwrap_or_else(|_| unreachable!("callers pass exactly shape.product() words"))
}

fn fixed_shape(op: &BilinearOp, side: FixedSide) -> &[usize] {
    match side {
        FixedSide::Lhs => op.lhs_shape(),
        FixedSide::Rhs => op.rhs_shape(),
    }
}

/// Whether [`combine_assign`] adds shares into a total or takes them out of
/// it (the same for XOR-shared bits).
#[derive(Clone, Copy)]
enum Combine {
    Add,
    Sub,
}

/// `t ± x` elementwise, in the arithmetic of shares of `kind`.
fn combine_assign(t: &mut RingTensor, x: &RingTensor, kind: DrawKind, how: Combine) {
    match (kind, how) {
        (DrawKind::Arith, Combine::Add) => {
            Zip::from(t).and(x).for_each(|t, &x| *t = t.wrapping_add(x))
        }
        (DrawKind::Arith, Combine::Sub) => {
            Zip::from(t).and(x).for_each(|t, &x| *t = t.wrapping_sub(x))
        }
        (DrawKind::Binary, _) => Zip::from(t).and(x).for_each(|t, &x| *t ^= x),
        (DrawKind::Arith128, Combine::Add) => pairs_assign(t, x, u128::wrapping_add),
        (DrawKind::Arith128, Combine::Sub) => pairs_assign(t, x, u128::wrapping_sub),
    }
}

/// Bit `j` of the packed words, for `j < len`, as ring elements 0 or 1.
fn unpack_bits(words: &RingTensor, len: usize) -> RingTensor {
    let w = words.as_slice().unwrap_or_default();
    RingTensor::from_shape_fn(IxDyn(&[len]), |ix| (w[ix[0] / 64] >> (ix[0] % 64)) & 1)
}

/// The dealer in the same process as the last party: corrections are
/// computed on demand. In a deployment this puts the dealer and the server in
/// one trust domain, which breaks the non-collusion assumption: use it for
/// tests, benchmarks and the explicitly insecure development mode only.
impl<B: Backend> CorrectionSource for SeededDealer<B> {
    async fn corrections(
        &mut self,
        req: &CorrelationRequest,
        lens: &[usize],
    ) -> Result<Vec<Vec<Ring>>> {
        let out = self.generate(req)?;
        debug_assert_eq!(out.len(), lens.len());
        Ok(out
            .into_iter()
            .map(|t| {
                if t.is_standard_layout() {
                    t.into_raw_vec_and_offset().0
                } else {
                    t.iter().copied().collect()
                }
            })
            .collect())
    }
}

/// Corrections fetched from a dealer over a [`Channel`], one request and one
/// answer per correlation.
#[derive(Debug)]
pub struct DealerLink<C> {
    channel: C,
    dealer: PartyId,
}

impl<C: Channel> DealerLink<C> {
    /// Talks to the dealer, party `dealer` of `channel`.
    pub fn new(channel: C, dealer: PartyId) -> Self {
        DealerLink { channel, dealer }
    }

    /// The underlying channel (for its counters).
    pub fn channel(&self) -> &C {
        &self.channel
    }
}

impl<C: Channel> CorrectionSource for DealerLink<C> {
    async fn corrections(
        &mut self,
        req: &CorrelationRequest,
        lens: &[usize],
    ) -> Result<Vec<Vec<Ring>>> {
        self.channel.send(self.dealer, encode_request(req)).await?;
        let bytes = self.channel.recv(self.dealer).await?;
        decode_correction(&bytes, req, lens)
    }
}

/// Serves `client`'s requests on `channel` until the client closes it;
/// returns how many correlations were served. A malformed request ends the
/// session with a [`PeerError`].
pub async fn serve_dealer<C: Channel, B: Backend>(
    channel: &mut C,
    client: PartyId,
    dealer: &mut SeededDealer<B>,
) -> Result<u64> {
    let mut served = 0;
    loop {
        let bytes = match channel.recv(client).await {
            Ok(b) => b,
            Err(Error::Channel(ChannelError::Closed { .. })) => return Ok(served),
            Err(e) => return Err(e),
        };
        let req = decode_request(&bytes)?;
        let corrections = dealer
            .generate(&req)
            .map_err(|_| PeerError::Malformed("request the dealer cannot serve"))?;
        channel
            .send(client, encode_correction(&req, &corrections))
            .await?;
        served += 1;
    }
}
