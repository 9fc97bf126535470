//! Products with an operand fixed for the session and held in the clear by
//! one party, its owner (a layer's weights at the server).
//!
//! **Setup, once per session** ([`Party::fix_operands`]): the dealer's mask
//! `A` is drawn from the owner's seed alone (so the owner knows it), and
//! the owner sends `E = W − A` to the other parties, one way.
//!
//! **Per query**, for `z = op(x, W)` (or `op(W, x)`): the dealer's fresh
//! `B` (shared) and `C = op(B, A)` give
//! `op(x, W) = op(F, W) + op(B, E) + C` with `F = x − B`. Every party folds
//! `op(B_i, E)` into its `C_i` before the query ([`Party::prepare_fixed`],
//! offline); online, the other parties send their pieces of `F` to the owner
//! only, and the owner alone computes `op(F, W)`. So the per-query traffic is
//! the activation, one way, and the party that is not the owner (the
//! browser) computes no product online at all.
//!
//! **Fused truncation** ([`Party::bilinear_fixed_prepared`]): a non-owner's
//! share of `z` is its prepared `C_i` — known before the query — so it sends
//! its piece of the division's `c = z + K + R` (see `truncation.rs`) in the
//! same message as its piece of `F`. The owner then knows `c` and returns
//! only `msb(c)`, one bit per output element, which is all a party that does
//! not lead the division needs for its share of `⌊z/2^f⌋`. Two rounds, as an
//! opening and a symmetric truncation would take, with
//! `(|x| + |z|)·8` bytes to the owner and `|z|/8` back instead of
//! `(|x| + |z|)·8` in each direction.
//!
//! What each party learns is a subset of what the symmetric protocol showed
//! it: the owner sees `F` (uniform, masked by `B`) and `c` (uniform, masked by
//! `R`); the others see `msb(c)`, a uniform bit.

use super::Party;
use super::beaver::check_shape;
use super::truncation::{DivConsts, quotient_share_pow2};
use crate::backend::Backend;
use crate::bilinear::BilinearOp;
use crate::bits::words_for;
use crate::channel::{Channel, encode_ring};
use crate::elementwise::{
    add_assign, as_slice, for_each_chunk, for_each_chunk_with_bits, from_vec, into_vec, sub,
};
use crate::error::{Error, PartyId, Result};
use crate::preprocessing::{CorrelationRequest, DivPair, Divisor, FixedSide, Preprocessing};
use crate::protocol::TruncationMode;
use crate::protocol::open::PeerSum;
use crate::ring::RingTensor;
use crate::share::{Arith, ArithShare};
use alloc::borrow::Cow;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// The offline half of one product with a fixed operand, made by
/// [`Party::prepare_fixed`]. `Debug` shows no values.
pub struct PreparedFixed {
    mask: u64,
    op: BilinearOp,
    side: FixedSide,
    b: RingTensor,
    /// `C` plus `op(B, E)` (or `op(E, B)`).
    c: RingTensor,
}

impl PreparedFixed {
    /// Shape of the other operand (the activation).
    fn x_shape(&self) -> &[usize] {
        match self.side {
            FixedSide::Lhs => self.op.rhs_shape(),
            FixedSide::Rhs => self.op.lhs_shape(),
        }
    }
}

impl fmt::Debug for PreparedFixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PreparedFixed {{ mask: {}, op: {:?}, side: {:?} }}",
            self.mask, self.op, self.side
        )
    }
}

/// A party's handle on an operand that stays fixed for a session (a layer's
/// weights): its mask `A` was opened once as `E = W − A`, and every later
/// product with it sends only the other operand, to the owner. `Debug`
/// shows the shape only.
#[derive(Clone)]
pub struct FixedOperand {
    id: u64,
    owner: PartyId,
    shape: Vec<usize>,
    /// The operand itself, at its owner only; shared with the owner's other
    /// sessions where it was fixed from an `Arc` ([`Party::fix_shared_operands`]).
    w: Option<Arc<RingTensor>>,
    /// The public `E = W − A`.
    e: RingTensor,
}

impl fmt::Debug for FixedOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FixedOperand {{ id: {}, owner: {}, shape: {:?} }}",
            self.id, self.owner, self.shape
        )
    }
}

impl FixedOperand {
    /// Shape of the fixed operand.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The party that holds the operand in the clear.
    pub fn owner(&self) -> PartyId {
        self.owner
    }

    /// The operand in the clear, which only its owner has.
    fn clear(&self) -> Result<&RingTensor> {
        self.w
            .as_deref()
            .ok_or_else(|| Error::Usage("the owner's fixed operand has no value".into()))
    }
}

/// An operand to fix: its owner, the value (at the owner only) and its shape.
type HeldOperand<'a> = (PartyId, Option<Arc<RingTensor>>, &'a [usize]);

/// Hands the pieces of `flat` (the `E`s of `owner`'s operands, in order) to
/// their entries of `es`; without a copy when `owner` has one operand.
/// `sizes` holds each entry's owner and element count.
fn split_into(
    es: &mut [Option<Vec<u64>>],
    mut flat: Vec<u64>,
    sizes: &[(PartyId, usize)],
    owner: PartyId,
) {
    let mut mine: Vec<(usize, usize)> = (0..)
        .zip(sizes)
        .filter(|&(_, &(o, _))| o == owner)
        .map(|(i, &(_, len))| (i, len))
        .collect();
    // From the back, so that each split moves only the tail.
    while let Some((i, len)) = mine.pop() {
        let piece = if mine.is_empty() {
            core::mem::take(&mut flat)
        } else {
            flat.split_off(flat.len() - len)
        };
        es[i] = Some(piece);
    }
}

/// This party's piece `x_i − B_i` of `F`, as a flat vector.
fn f_piece(x: &ArithShare, b: &RingTensor) -> Vec<u64> {
    sub(x.as_raw(), b).into_raw_vec_and_offset().0
}

/// The sign bits of `c` into `bits`, one per element: element `i` at bit
/// `i % 8` of byte `i / 8` (the little-endian bytes of words packed from
/// their lowest bit).
fn pack_msbs_into(c: &[u64], bits: &mut [u8]) {
    for (b, chunk) in bits.iter_mut().zip(c.chunks(8)) {
        *b = chunk
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &v)| acc | (((v >> 63) as u8) << i));
    }
}

/// What a party has of a division's `c = z + K + R` when it finishes a
/// division led by one party ([`Party::finish_led_division`]).
enum LedInput {
    /// At the lead: its own pieces of `c` and the other parties'.
    Pieces(Vec<u64>, PeerSum),
    /// At the lead: `c` itself.
    Opened(Vec<u64>),
    /// Elsewhere: a buffer of one element per output, overwritten by the
    /// result.
    Elsewhere(Vec<u64>),
}

/// The local terms of a product of two masked operands
/// ([`Party::bilinear_fixed_pair_ring`]) at one party.
struct PairTerms<'a> {
    /// `X` and `Y` in the clear, at their owners.
    xv: Option<Cow<'a, [u64]>>,
    yv: Option<Cow<'a, [u64]>>,
    /// The public `E_x`, `E_y`.
    ex: Cow<'a, [u64]>,
    ey: Cow<'a, [u64]>,
    /// For products other than elementwise, this party's terms computed
    /// whole (`op(X, E_y)` and/or `op(E_x, Y − E_y)`).
    product: Option<Vec<u64>>,
}

impl PairTerms<'_> {
    /// Adds this party's terms of elements `off..off + out.len()` to `out`,
    /// and `R_i + k` when `mask = Some((R_i, k))`. Inlined into the passes
    /// that call it, so that it is built for their vector unit
    /// ([`crate::elementwise::vectorized`]).
    #[inline(always)]
    fn add_to(&self, off: usize, out: &mut [u64], mask: Option<(&[u64], u64)>) {
        let k = mask.map_or(0, |(_, k)| k);
        for (i, v) in (off..).zip(out.iter_mut()) {
            let mut acc = v.wrapping_add(k);
            if let Some((r, _)) = mask {
                acc = acc.wrapping_add(r[i]);
            }
            if let Some(t) = &self.product {
                acc = acc.wrapping_add(t[i]);
            } else {
                // Elementwise: X ⊙ E_y at x's owner, E_x ⊙ (Y − E_y) at y's.
                if let Some(xv) = &self.xv {
                    acc = acc.wrapping_add(xv[i].wrapping_mul(self.ey[i]));
                }
                if let Some(yv) = &self.yv {
                    acc = acc.wrapping_add(self.ex[i].wrapping_mul(yv[i].wrapping_sub(self.ey[i])));
                }
            }
            *v = acc;
        }
    }
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Fixes an operand held in the clear by `owner` (its weights, or a
    /// private input) for the session: the dealer's mask `A` is drawn from
    /// the owner's seed alone, so the owner knows it and sends `E = W − A`
    /// to the others — one message, one way. `owner` passes `Some(w)`, the
    /// others `None`.
    pub async fn fix_operand(
        &mut self,
        owner: PartyId,
        value: Option<&RingTensor>,
        shape: &[usize],
    ) -> Result<FixedOperand> {
        let mut v = self.fix_operands(owner, &[(value, shape)]).await?;
        v.pop()
            .ok_or_else(|| Error::Usage("no operand fixed".into()))
    }

    /// Fixes several operands of `owner` at once: all their `E`s in one
    /// message from the owner. Each entry is `(Some(w)` at the owner, `None`
    /// elsewhere`, shape)`.
    pub async fn fix_operands(
        &mut self,
        owner: PartyId,
        operands: &[(Option<&RingTensor>, &[usize])],
    ) -> Result<Vec<FixedOperand>> {
        let entries: Vec<_> = operands
            .iter()
            .map(|&(value, shape)| (owner, value, shape))
            .collect();
        self.fix_operands_of(&entries).await
    }

    /// Fixes operands of several owners in one round: every party sends the
    /// `E`s of the operands it owns to the others in one message, at the
    /// same time as they send theirs (two private inputs, one per party, are
    /// entered in one round instead of two). Each entry is `(owner, Some(w)`
    /// at the owner, `None` elsewhere`, shape)`; every party passes the same
    /// owners and shapes in the same order.
    pub async fn fix_operands_of(
        &mut self,
        operands: &[(PartyId, Option<&RingTensor>, &[usize])],
    ) -> Result<Vec<FixedOperand>> {
        let owned: Vec<_> = operands
            .iter()
            .map(|&(owner, value, shape)| (owner, value.map(|w| Arc::new(w.clone())), shape))
            .collect();
        self.fix_arc_operands(&owned).await
    }

    /// [`Party::fix_operands`] for operands the owner keeps for all its
    /// sessions (a served model's encoded weights): each session's
    /// [`FixedOperand`] shares the owner's tensor instead of copying it.
    pub async fn fix_shared_operands(
        &mut self,
        owner: PartyId,
        operands: &[(Option<&Arc<RingTensor>>, &[usize])],
    ) -> Result<Vec<FixedOperand>> {
        let shared: Vec<_> = operands
            .iter()
            .map(|&(value, shape)| (owner, value.cloned(), shape))
            .collect();
        self.fix_arc_operands(&shared).await
    }

    async fn fix_arc_operands(
        &mut self,
        operands: &[HeldOperand<'_>],
    ) -> Result<Vec<FixedOperand>> {
        let (me, n) = (self.id(), self.num_parties());
        let mut masks = Vec::with_capacity(operands.len());
        // Each entry's owner and element count, and the elements each owner
        // sends (a message even for empty operands, so that every owner's
        // round is the same).
        let mut sizes: Vec<(PartyId, usize)> = Vec::with_capacity(operands.len());
        let mut totals = alloc::vec![0usize; n];
        for (owner, value, shape) in operands {
            let (owner, shape) = (*owner, *shape);
            if owner >= n || (me == owner) != value.is_some() {
                return Err(Error::Usage(format!(
                    "exactly party {owner} must provide the fixed operand"
                )));
            }
            if let Some(w) = value {
                check_shape("fixed operand", w.shape(), shape)?;
            }
            let req = CorrelationRequest::FixedMask {
                shape: shape.to_vec(),
                owner,
            };
            let mask = self.prep.next(&req).await?.into_fixed_mask()?;
            check_shape("fixed mask", mask.a.shape(), shape)?;
            totals[owner] = totals[owner]
                .checked_add(mask.a.len())
                .ok_or_else(|| Error::Shape("fixed operands too large".into()))?;
            sizes.push((owner, mask.a.len()));
            masks.push(mask);
        }
        let sends = |p: PartyId| sizes.iter().any(|&(o, _)| o == p);
        // At the owner, `mask.a` is the whole of `A`: this party's `E`s, all
        // computed into one buffer (the message), then split.
        let mut es: Vec<Option<Vec<u64>>> = alloc::vec![None; operands.len()];
        if sends(me) {
            let mut flat = Vec::with_capacity(totals[me]);
            for (mask, (owner, value, _)) in masks.iter().zip(operands) {
                if *owner == me {
                    let w = value
                        .as_deref()
                        .ok_or_else(|| Error::Usage("the owner's operand is missing".into()))?;
                    let (w, a) = (as_slice(w), as_slice(&mask.a));
                    flat.extend(w.iter().zip(a.iter()).map(|(w, a)| w.wrapping_sub(*a)));
                }
            }
            self.send_to_others(encode_ring(&flat)).await?;
            split_into(&mut es, flat, &sizes, me);
        }
        for peer in (0..n).filter(|&p| p != me && sends(p)) {
            let flat = self.recv_ring(peer, totals[peer]).await?;
            split_into(&mut es, flat, &sizes, peer);
        }
        masks
            .into_iter()
            .zip(es)
            .zip(operands)
            .map(|((mask, e), (owner, value, shape))| {
                let e = e.ok_or_else(|| Error::Usage("a fixed operand was not sent".into()))?;
                Ok(FixedOperand {
                    id: mask.id,
                    owner: *owner,
                    shape: shape.to_vec(),
                    w: value.clone(),
                    e: from_vec(shape, e),
                })
            })
            .collect()
    }

    /// The input-independent half of one product with a fixed operand: takes
    /// the next fresh mask `B` and `C` from the preprocessing and folds in
    /// `op(B, E)` (or `op(E, B)`), which needs only public `E`. Run it ahead
    /// of the query (offline); [`Party::bilinear_fixed_prepared`] finishes.
    pub async fn prepare_fixed(
        &mut self,
        op: &BilinearOp,
        side: FixedSide,
        w: &FixedOperand,
    ) -> Result<PreparedFixed> {
        let w_shape = match side {
            FixedSide::Lhs => op.lhs_shape(),
            FixedSide::Rhs => op.rhs_shape(),
        };
        check_shape("fixed operand", w.shape(), w_shape)?;
        let req = CorrelationRequest::FixedTriple {
            mask: w.id,
            op: op.clone(),
            side,
        };
        let t = self.prep.next(&req).await?.into_fixed_triple()?;
        let be = match side {
            FixedSide::Rhs => self.backend.bilinear_sum(op, &[(&t.b, &w.e)]).await?,
            FixedSide::Lhs => self.backend.bilinear_sum(op, &[(&w.e, &t.b)]).await?,
        };
        let mut c = t.c;
        add_assign(&mut c, &be);
        Ok(PreparedFixed {
            mask: w.id,
            op: op.clone(),
            side,
            b: t.b,
            c,
        })
    }

    /// Checks that `prepared` belongs to `w` and `x` is its other operand.
    fn check_prepared(prepared: &PreparedFixed, w: &FixedOperand, x: &ArithShare) -> Result<()> {
        if prepared.mask != w.id {
            return Err(Error::Usage(format!(
                "product prepared for fixed operand {}, used with {}",
                prepared.mask, w.id
            )));
        }
        check_shape("operand", x.shape(), prepared.x_shape())
    }

    /// At the owner: `op(F, W)` (or `op(W, F)`) for the opened `F`.
    async fn owner_product(
        &self,
        prepared: &PreparedFixed,
        w: &FixedOperand,
        f: Vec<u64>,
    ) -> Result<RingTensor> {
        let weights = w.clear()?;
        let op = &prepared.op;
        let f = from_vec(prepared.x_shape(), f);
        match prepared.side {
            FixedSide::Rhs => self.backend.bilinear_sum(op, &[(&f, weights)]).await,
            FixedSide::Lhs => self.backend.bilinear_sum(op, &[(weights, &f)]).await,
        }
    }

    /// The online half: the other parties send their pieces of `F = x − B`
    /// to the owner (one round, one way), who adds `op(F, W)` to its share.
    /// At double scale.
    pub async fn bilinear_fixed_prepared_ring(
        &mut self,
        prepared: PreparedFixed,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        Self::check_prepared(&prepared, w, x)?;
        let f = self
            .reveal_raw_to::<Arith>(f_piece(x, &prepared.b), w.owner)
            .await?;
        let t = match f {
            Some(f) => Some(self.owner_product(&prepared, w, f).await?),
            None => None,
        };
        let mut z = prepared.c;
        if let Some(t) = t {
            add_assign(&mut z, &t);
        }
        Ok(ArithShare::from_raw(z))
    }

    /// [`Party::bilinear_fixed_prepared_ring`] truncated back to scale. With
    /// dealer-assisted truncation the division is fused in (module docs):
    /// two rounds, `(|x| + |z|)·8` bytes to the owner and `|z|/8` back.
    pub async fn bilinear_fixed_prepared(
        &mut self,
        prepared: PreparedFixed,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        if self.config.truncation != TruncationMode::Dealer {
            let z = self.bilinear_fixed_prepared_ring(prepared, w, x).await?;
            return self.truncate(&z).await;
        }
        Self::check_prepared(&prepared, w, x)?;
        let out_shape = prepared.c.shape().to_vec();
        let (nx, nz) = (x.len(), prepared.c.len());
        let d = self.config.fixed_point.scale();
        let pair = self.next_div_pair(&out_shape, &Divisor::Uniform(d)).await?;
        let (owner, lead) = (w.owner, self.id() == w.owner);
        // This party's pieces: F_i = x_i − B_i, then c_i = z_i + R_i (the
        // owner's c piece waits for its product; it adds K too).
        let mut pieces = f_piece(x, &prepared.b);
        pieces.resize(nx + nz, 0);
        if !lead {
            let (zs, rs) = (as_slice(&prepared.c), as_slice(&pair.r));
            for ((p, &z), &r) in pieces[nx..].iter_mut().zip(zs.iter()).zip(rs.iter()) {
                *p = z.wrapping_add(r);
            }
        }
        let opened = self.reveal_raw_to::<Arith>(pieces, owner).await?;
        let k = DivConsts::new(d);
        let input = match opened {
            Some(mut f) => {
                let mut c = f.split_off(nx);
                let t = self.owner_product(&prepared, w, f).await?;
                let (zc, tz, rs) = (as_slice(&prepared.c), as_slice(&t), as_slice(&pair.r));
                for_each_chunk(
                    &mut c,
                    #[inline(always)]
                    |off, out| {
                        for (i, v) in out.iter_mut().enumerate() {
                            let j = off + i;
                            *v = v
                                .wrapping_add(zc[j])
                                .wrapping_add(tz[j])
                                .wrapping_add(rs[j])
                                .wrapping_add(k.k);
                        }
                    },
                );
                LedInput::Opened(c)
            }
            None => LedInput::Elsewhere(into_vec(prepared.c)),
        };
        self.finish_led_division(owner, input, &pair, &k, &out_shape)
            .await
    }

    /// The end of a dealer division by `2^f` whose `c = z + K + R` was opened
    /// to `lead` only (`c` is `Some` there): the lead sends `msb(c)`, one bit
    /// per element, to the others, which is all a party that does not lead
    /// needs for its share of the quotient.
    async fn finish_led_division(
        &mut self,
        lead: PartyId,
        input: LedInput,
        pair: &DivPair,
        k: &DivConsts,
        out_shape: &[usize],
    ) -> Result<ArithShare> {
        let nz = pair.r.len();
        let s = self.config.fixed_point.scale().trailing_zeros();
        let (r_div, r_msb) = (as_slice(&pair.r_div), as_slice(&pair.r_msb));
        let msg_len = words_for(nz) * 8;
        let (mut out, peers) = match input {
            LedInput::Elsewhere(mut out) => {
                if out.len() != nz {
                    return Err(Error::Shape("division pair shape mismatch".into()));
                }
                let bits = self.recv_exact(lead, msg_len).await?;
                for_each_chunk(
                    &mut out,
                    #[inline(always)]
                    |off, vals| {
                        let (rd, rm) =
                            (&r_div[off..off + vals.len()], &r_msb[off..off + vals.len()]);
                        for (((v, &d), &m), j) in vals.iter_mut().zip(rd).zip(rm).zip(off..) {
                            let c = u64::from((bits[j / 8] >> (j % 8)) & 1) << 63;
                            *v = quotient_share_pow2(c, d, m, s, k, false);
                        }
                    },
                );
                self.scratch.give(bits);
                return Ok(ArithShare::from_raw(from_vec(out_shape, out)));
            }
            LedInput::Pieces(c, peers) => (c, Some(peers)),
            LedInput::Opened(c) => (c, None),
        };
        if out.len() != nz {
            return Err(Error::Shape("division pair shape mismatch".into()));
        }
        // One pass: combine the pieces (if not yet) and pack `msb(c)`, which
        // goes out before the lead's own quotient pass.
        let mut msg = self.scratch.take(msg_len);
        msg[nz.div_ceil(8)..].fill(0);
        for_each_chunk_with_bits(
            &mut out,
            &mut msg,
            #[inline(always)]
            |off, vals, bits| {
                if let Some(peers) = &peers {
                    peers.combine_into::<Arith>(off, vals);
                }
                pack_msbs_into(vals, bits);
            },
        );
        if let Some(peers) = peers {
            self.recycle_peers(peers);
        }
        self.send_to_others(msg).await?;
        for_each_chunk(
            &mut out,
            #[inline(always)]
            |off, vals| {
                let (rd, rm) = (&r_div[off..off + vals.len()], &r_msb[off..off + vals.len()]);
                for ((v, &d), &m) in vals.iter_mut().zip(rd).zip(rm) {
                    *v = quotient_share_pow2(*v, d, m, s, k, true);
                }
            },
        );
        Ok(ArithShare::from_raw(from_vec(out_shape, out)))
    }

    /// `op(x, y)` for two operands masked once ([`Party::fix_operands`]),
    /// at double scale, with no communication at all: given the dealer's
    /// shares of `op(A, B)` for their masks, `op(X, Y) = op(X, E_y) +
    /// op(E_x, Y − E_y) + op(A, B)`, where the first term is local to `x`'s
    /// owner and the second to `y`'s (each knows its operand in the clear and
    /// both `E`s are public). So two private inputs that were masked when
    /// they were entered multiply without the Beaver round.
    pub async fn bilinear_fixed_pair_ring(
        &mut self,
        op: &BilinearOp,
        x: &FixedOperand,
        y: &FixedOperand,
    ) -> Result<ArithShare> {
        let c = self.fixed_product_share(op, x, y).await?;
        let terms = self.fixed_pair_terms(op, x, y).await?;
        let mut z = into_vec(c);
        for_each_chunk(
            &mut z,
            #[inline(always)]
            |off, out| terms.add_to(off, out, None),
        );
        Ok(ArithShare::from_raw(from_vec(&op.out_shape()?, z)))
    }

    /// The dealer's share of `op(A_x, A_y)`, checked.
    async fn fixed_product_share(
        &mut self,
        op: &BilinearOp,
        x: &FixedOperand,
        y: &FixedOperand,
    ) -> Result<RingTensor> {
        check_shape("left fixed operand", x.shape(), op.lhs_shape())?;
        check_shape("right fixed operand", y.shape(), op.rhs_shape())?;
        let req = CorrelationRequest::FixedProduct {
            op: op.clone(),
            lhs: x.id,
            rhs: y.id,
        };
        let c = self.prep.next(&req).await?.into_fixed_product()?.c;
        check_shape("fixed product", c.shape(), &op.out_shape()?)?;
        Ok(c)
    }

    /// This party's local terms of `op(x, y)` for two masked operands.
    async fn fixed_pair_terms<'a>(
        &self,
        op: &BilinearOp,
        x: &'a FixedOperand,
        y: &'a FixedOperand,
    ) -> Result<PairTerms<'a>> {
        let me = self.id();
        let xv = if me == x.owner {
            Some(as_slice(x.clear()?))
        } else {
            None
        };
        let yv = if me == y.owner {
            Some(as_slice(y.clear()?))
        } else {
            None
        };
        let product = match op {
            BilinearOp::Hadamard { .. } => None,
            _ => {
                let y_off = if me == y.owner {
                    Some(sub(y.clear()?, &y.e))
                } else {
                    None
                };
                let mut terms = Vec::with_capacity(2);
                if me == x.owner {
                    terms.push((x.clear()?, &y.e));
                }
                if let Some(y_off) = &y_off {
                    terms.push((&x.e, y_off));
                }
                if terms.is_empty() {
                    None
                } else {
                    Some(into_vec(self.backend.bilinear_sum(op, &terms).await?))
                }
            }
        };
        Ok(PairTerms {
            xv,
            yv,
            ex: as_slice(&x.e),
            ey: as_slice(&y.e),
            product,
        })
    }

    /// [`Party::bilinear_fixed_pair_ring`] truncated back to scale. With
    /// dealer-assisted truncation every party but `x`'s owner sends its piece
    /// of the division's `c = z + K + R` to that owner, which returns
    /// `msb(c)`: two rounds, `|z|·8` bytes to the owner and `|z|/8` back —
    /// the whole online cost of a product of two masked operands.
    pub async fn bilinear_fixed_pair(
        &mut self,
        op: &BilinearOp,
        x: &FixedOperand,
        y: &FixedOperand,
    ) -> Result<ArithShare> {
        if self.config.truncation != TruncationMode::Dealer {
            let z = self.bilinear_fixed_pair_ring(op, x, y).await?;
            return self.truncate(&z).await;
        }
        let c = self.fixed_product_share(op, x, y).await?;
        let shape = op.out_shape()?;
        let d = self.config.fixed_point.scale();
        let pair = self.next_div_pair(&shape, &Divisor::Uniform(d)).await?;
        let k = DivConsts::new(d);
        let lead = x.owner;
        let kk = if self.id() == lead { k.k } else { 0 };
        let terms = self.fixed_pair_terms(op, x, y).await?;
        let r = as_slice(&pair.r);
        // The pieces of `c` are built on the dealer's share of the product
        // and streamed into the message (at the lead, kept for one pass that
        // combines them and packs the sign bits).
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| terms.add_to(off, out, Some((&r, kk)))
        };
        let (z, peers) = self
            .reveal_pieces_to::<Arith>(into_vec(c), fill, lead)
            .await?;
        let input = match peers {
            Some(peers) => LedInput::Pieces(z, peers),
            None => LedInput::Elsewhere(z),
        };
        self.finish_led_division(lead, input, &pair, &k, &shape)
            .await
    }

    /// `op(w, x)` (`side = Lhs`) or `op(x, w)` (`side = Rhs`) for a fixed
    /// operand `w`, at double scale: [`Party::prepare_fixed`] then
    /// [`Party::bilinear_fixed_prepared_ring`]; one round.
    pub async fn bilinear_fixed_ring(
        &mut self,
        op: &BilinearOp,
        side: FixedSide,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        let prepared = self.prepare_fixed(op, side, w).await?;
        self.bilinear_fixed_prepared_ring(prepared, w, x).await
    }

    /// [`Party::bilinear_fixed_ring`] on fixed-point values, truncated (two
    /// rounds with the fused dealer-assisted division).
    pub async fn bilinear_fixed(
        &mut self,
        op: &BilinearOp,
        side: FixedSide,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        let prepared = self.prepare_fixed(op, side, w).await?;
        self.bilinear_fixed_prepared(prepared, w, x).await
    }
}
