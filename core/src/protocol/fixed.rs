//! Products with an operand fixed for the session and held in the clear by
//! one party, its owner (a layer's weights at the server).
//!
//! **Setup, once per session** ([`Party::fix_operands`]): the dealer's mask
//! `A` (additively shared) is opened as `E = W − A` to every party.
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
use crate::channel::{Channel, decode_ring, encode_ring};
use crate::elementwise::{add_assign, as_slice, for_each_chunk, from_vec, map, sub};
use crate::error::{Error, PartyId, PeerError, Result};
use crate::preprocessing::{CorrelationRequest, Divisor, FixedSide, Preprocessing};
use crate::protocol::TruncationMode;
use crate::ring::RingTensor;
use crate::share::{Arith, ArithShare};
use alloc::format;
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
    /// The operand itself, at its owner only.
    w: Option<RingTensor>,
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
}

/// This party's piece `x_i − B_i` of `F`, as a flat vector.
fn f_piece(x: &ArithShare, b: &RingTensor) -> Vec<u64> {
    sub(x.as_raw(), b).into_raw_vec_and_offset().0
}

/// The opened sign bits of `c`, one per element, packed into words.
fn pack_msbs(c: &[u64]) -> Vec<u64> {
    let mut words = alloc::vec![0u64; words_for(c.len())];
    for (w, chunk) in words.iter_mut().zip(c.chunks(64)) {
        *w = chunk
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &v)| acc | ((v >> 63) << i));
    }
    words
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Fixes an operand held in the clear by `owner` (its weights) for the
    /// session: one round that opens `E = W − A` for a dealer mask `A`.
    /// `owner` passes `Some(w)`, the others `None`.
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

    /// Fixes several operands of `owner` at once: all their masks opened in
    /// one round. Each entry is `(Some(w)` at the owner, `None` elsewhere`,
    /// shape)`.
    pub async fn fix_operands(
        &mut self,
        owner: PartyId,
        operands: &[(Option<&RingTensor>, &[usize])],
    ) -> Result<Vec<FixedOperand>> {
        let me = self.id();
        let mut masks = Vec::with_capacity(operands.len());
        let mut pieces = Vec::with_capacity(operands.len());
        for &(value, shape) in operands {
            if owner >= self.num_parties() || (me == owner) != value.is_some() {
                return Err(Error::Usage(format!(
                    "exactly party {owner} must provide the fixed operand"
                )));
            }
            let req = CorrelationRequest::FixedMask {
                shape: shape.to_vec(),
            };
            let mask = self.prep.next(&req).await?.into_fixed_mask()?;
            pieces.push(match value {
                Some(w) => {
                    check_shape("fixed operand", w.shape(), shape)?;
                    sub(w, &mask.a)
                }
                None => map(&mask.a, u64::wrapping_neg),
            });
            masks.push(mask.id);
        }
        if operands.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<&RingTensor> = pieces.iter().collect();
        let opened = self.open_raw_many::<Arith>(&refs).await?;
        Ok(masks
            .into_iter()
            .zip(opened)
            .zip(operands)
            .map(|((id, e), &(value, shape))| FixedOperand {
                id,
                owner,
                shape: shape.to_vec(),
                w: value.cloned(),
                e,
            })
            .collect())
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
        let weights =
            w.w.as_ref()
                .ok_or_else(|| Error::Usage("the owner's fixed operand has no value".into()))?;
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
        let s = d.trailing_zeros();
        let (r_div, r_msb) = (as_slice(&pair.r_div), as_slice(&pair.r_msb));
        let mut out = match opened {
            Some(mut f) => {
                let mut c = f.split_off(nx);
                let t = self.owner_product(&prepared, w, f).await?;
                let (zc, tz, rs) = (as_slice(&prepared.c), as_slice(&t), as_slice(&pair.r));
                for_each_chunk(&mut c, |off, out| {
                    for (i, v) in out.iter_mut().enumerate() {
                        let j = off + i;
                        *v = v
                            .wrapping_add(zc[j])
                            .wrapping_add(tz[j])
                            .wrapping_add(rs[j])
                            .wrapping_add(k.k);
                    }
                });
                let msbs = encode_ring(&pack_msbs(&c));
                for peer in (0..self.num_parties()).filter(|&p| p != owner) {
                    self.channel.send(peer, msbs.clone()).await?;
                }
                c
            }
            None => {
                let bytes = self.channel.recv(owner).await?;
                let words = words_for(nz);
                if bytes.len() != words * 8 {
                    return Err(PeerError::WrongLength {
                        expected: words * 8,
                        got: bytes.len(),
                    }
                    .into());
                }
                let msbs = decode_ring(&bytes, words)?;
                // Only msb(c) matters to a party that does not lead.
                (0..nz)
                    .map(|j| ((msbs[j / 64] >> (j % 64)) & 1) << 63)
                    .collect()
            }
        };
        for_each_chunk(&mut out, |off, vals| {
            for (i, v) in vals.iter_mut().enumerate() {
                let j = off + i;
                *v = quotient_share_pow2(*v, r_div[j], r_msb[j], s, &k, lead);
            }
        });
        Ok(ArithShare::from_raw(from_vec(&out_shape, out)))
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
