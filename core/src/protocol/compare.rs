//! Comparisons and selection.
//!
//! Everything rests on [`Party::msb`], the sign bit of an additively shared
//! value, computed without a full binary conversion: each party's share is
//! (locally) a binary-shared operand; for more than two parties, carry-save
//! adders reduce them to two (one round per layer); then only the carry into
//! the top bit is computed, by a log-depth tree of (generate, propagate)
//! combinations on bit planes (see [`crate::bits`]). For two parties: one
//! round for the generate bits, six for the tree — 7 rounds. The 63
//! generate bits `x0_k ∧ x1_k` have one input at each party, so they are
//! one-sided ANDs (one opened bit each); the tree's 118 ANDs are Beaver ANDs
//! (two bits each): 299 bits sent per element and party.
//!
//! A shared bit becomes arithmetic ([`Party::b2a_bits`]) or multiplies an
//! arithmetic share ([`Party::select`]) in one round, by dealer bit pairs and
//! select triples.

use super::Party;
use crate::backend::Backend;
use crate::bits::{BitShare, from_planes, to_planes, words_for};
use crate::channel::Channel;
use crate::elementwise::{as_slice, for_each_chunk, for_each_chunk_of, from_vec, prefetch};
use crate::error::{Error, Result};
use crate::preprocessing::{BitPair, CorrelationRequest, Preprocessing};
use crate::ring::{Ring, RingTensor};
use crate::share::{ArithShare, BinaryShare};
use alloc::vec::Vec;

/// Elements whose weighted sums [`Party::b2a_weighted`] keeps in L1 while
/// the planes stream past (a 4 KiB page of each plane's dealer shares).
const RUN: usize = 512;

/// 64 bit planes of a binary-shared vector.
type Planes = Vec<BitShare>;

/// A party's additive share of the bit `b = c ⊕ r` from the opened `c` and
/// its share `ra` of the dealer's `r`: `c + r − 2cr`, the public `c` added by
/// party 0 only.
#[inline(always)]
fn bit_from_mask(c: u64, ra: Ring, me0: bool) -> Ring {
    // (1 − 2c)·r as a conditional negation: `neg` is all ones when c = 1.
    let neg = 0u64.wrapping_sub(c);
    let v = (ra ^ neg).wrapping_sub(neg);
    if me0 { v.wrapping_add(c) } else { v }
}

/// The 64 bits of `words` from bit `at` on (zeros past the end).
#[inline(always)]
fn bits_at(words: &[u64], at: usize) -> u64 {
    let (q, r) = (at / 64, at % 64);
    let lo = words.get(q).copied().unwrap_or(0) >> r;
    match (r, words.get(q + 1)) {
        (0, _) | (_, None) => lo,
        (_, Some(&hi)) => lo | hi << (64 - r),
    }
}

fn zero_planes(n: usize) -> Planes {
    (0..64).map(|_| BitShare::zeros(n)).collect()
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// The sign bit of each element: shares of 1 where `x < 0` (as a signed
    /// 64-bit integer), else 0. Rounds: 7 for two parties, one more per
    /// carry-save layer beyond.
    pub async fn msb(&mut self, x: &ArithShare) -> Result<BitShare> {
        let (a, b, two) = self.two_operands(x).await?;
        let own = two.then_some(if self.id() == 0 { &a } else { &b });
        let g = self.generate_bits(&a, &b, own, 63).await?;
        self.sign_of_sum(&a, &b, g).await
    }

    /// The parties' shares of `x` as two binary-shared operands in bit
    /// planes (each party's share is an operand held by that party alone;
    /// carry-save layers reduce more than two), and whether they are the two
    /// parties' own (so ANDs between them can be one-sided).
    async fn two_operands(&mut self, x: &ArithShare) -> Result<(Planes, Planes, bool)> {
        let xs = as_slice(x.as_raw());
        let n = xs.len();
        let (me, parties) = (self.id(), self.num_parties());
        let mut operands: Vec<Planes> = (0..parties)
            .map(|j| {
                if j == me {
                    to_planes(&xs)
                        .into_iter()
                        .map(|w| BitShare::from_words(n, w))
                        .collect()
                } else {
                    zero_planes(n)
                }
            })
            .collect();
        while operands.len() > 2 {
            operands = self.carry_save_layer(operands, n).await?;
        }
        let b = operands.pop().unwrap_or_else(|| zero_planes(n));
        let a = operands.pop().unwrap_or_else(|| zero_planes(n));
        Ok((a, b, parties == 2))
    }

    /// `a_k ∧ b_k` for planes `0..count`; `own` is this party's whole
    /// operand when each operand is held by one of two parties.
    async fn generate_bits(
        &mut self,
        a: &Planes,
        b: &Planes,
        own: Option<&Planes>,
        count: usize,
    ) -> Result<Vec<BitShare>> {
        let n = a.first().map_or(0, BitShare::len);
        if let Some(own) = own {
            let planes: Vec<&[u64]> = own[..count].iter().map(|p| p.words()).collect();
            let z = self.and_one_sided(&planes).await?;
            return Ok(z.into_iter().map(|w| BitShare::from_words(n, w)).collect());
        }
        let pairs: Vec<(&BitShare, &BitShare)> = (0..count).map(|k| (&a[k], &b[k])).collect();
        self.and_bits(&pairs).await
    }

    /// One layer of carry-save adders: every three operands become two
    /// (`a ⊕ b ⊕ c` and the majority shifted up one bit), in one round.
    async fn carry_save_layer(&mut self, mut ops: Vec<Planes>, n: usize) -> Result<Vec<Planes>> {
        let groups = ops.len() / 3;
        let rest = ops.split_off(groups * 3);
        let mut xors: Vec<(Planes, Planes)> = Vec::new(); // (a ⊕ b, a ⊕ b ⊕ c)
        let mut pairs: Vec<(BitShare, BitShare)> = Vec::new();
        for g in ops.chunks(3) {
            let (a, b, c) = (&g[0], &g[1], &g[2]);
            let ab: Planes = a.iter().zip(b).map(|(x, y)| x.xor(y)).collect();
            let sum: Planes = ab.iter().zip(c).map(|(x, y)| x.xor(y)).collect();
            for k in 0..63 {
                pairs.push((a[k].clone(), b[k].clone()));
                pairs.push((c[k].clone(), ab[k].clone()));
            }
            xors.push((ab, sum));
        }
        let refs: Vec<(&BitShare, &BitShare)> = pairs.iter().map(|(x, y)| (x, y)).collect();
        let ands = self.and_bits(&refs).await?;
        let mut out = Vec::new();
        for (gi, (_, sum)) in xors.into_iter().enumerate() {
            let base = gi * 126;
            let mut carry = Vec::with_capacity(64);
            carry.push(BitShare::zeros(n));
            for k in 0..63 {
                carry.push(ands[base + 2 * k].xor(&ands[base + 2 * k + 1]));
            }
            out.push(sum);
            out.push(carry);
        }
        out.extend(rest);
        Ok(out)
    }

    /// Converts an additive share to a binary (XOR) share of the same value:
    /// all 64 bits by [`Party::low_bits`]' carry-prefix adder (7 rounds for
    /// two parties).
    pub async fn a2b(&mut self, x: &ArithShare) -> Result<BinaryShare> {
        let planes = self.low_bits(x, 0, 64).await?;
        let words: Vec<Vec<u64>> = planes.iter().map(|p| p.words().to_vec()).collect();
        let words = from_planes(&words, x.len());
        Ok(BinaryShare::from_raw(from_vec(x.shape(), words)))
    }

    /// Bits `lo..width` of `x mod 2^width` as shared bit planes (entry
    /// `k - lo` holds bit `k` of every element): the low `width` bits of the
    /// parties' operands added by a Sklansky carry-prefix network (about
    /// half the AND gates of a Kogge–Stone adder, same depth). Rounds for two
    /// parties: `1 + ⌈log2(width − 1)⌉`.
    pub(crate) async fn low_bits(
        &mut self,
        x: &ArithShare,
        lo: usize,
        width: usize,
    ) -> Result<Vec<BitShare>> {
        if width == 0 || width > 64 || lo > width {
            return Err(Error::Usage(alloc::format!(
                "bits {lo}..{width} of a 64-bit ring element"
            )));
        }
        let (a, b, two) = self.two_operands(x).await?;
        let p: Planes = a[..width].iter().zip(&b).map(|(x, y)| x.xor(y)).collect();
        let own = two.then_some(if self.id() == 0 { &a } else { &b });
        // g[k], pp[k]: generate and propagate of bits s..=k for the block
        // start s of the current level; once a block starts at 0, g[k] is
        // the carry out of bit k. Bit width − 1 carries into nothing needed.
        let m = width - 1;
        let mut g = self.generate_bits(&a, &b, own, m).await?;
        let mut pp: Planes = p[..m].to_vec();
        let mut size = 1;
        while size < m {
            // (k, mid, whether pp[k] is needed later: its block starts above 0)
            let mut gates: Vec<(usize, usize, bool)> = Vec::new();
            for s in (0..m).step_by(2 * size) {
                let mid = s + size - 1;
                for k in mid + 1..(s + 2 * size).min(m) {
                    gates.push((k, mid, s > 0));
                }
            }
            let mut pairs: Vec<(&BitShare, &BitShare)> =
                gates.iter().map(|&(k, mid, _)| (&pp[k], &g[mid])).collect();
            pairs.extend(
                gates
                    .iter()
                    .filter(|&&(_, _, keep)| keep)
                    .map(|&(k, mid, _)| (&pp[k], &pp[mid])),
            );
            let ands = self.and_bits(&pairs).await?;
            let (ga, pa) = ands.split_at(gates.len());
            for (&(k, _, _), v) in gates.iter().zip(ga) {
                g[k] = g[k].xor(v);
            }
            for (&(k, _, _), v) in gates.iter().filter(|&&(_, _, keep)| keep).zip(pa) {
                pp[k] = v.clone();
            }
            size *= 2;
        }
        // sum bit k = p_k ⊕ carry into k = p_k ⊕ g[k − 1]
        Ok((lo..width)
            .map(|k| {
                if k == 0 {
                    p[0].clone()
                } else {
                    p[k].xor(&g[k - 1])
                }
            })
            .collect())
    }

    /// Converts a binary (XOR) share of whole words to an additive share:
    /// every bit through a dealer bit pair, all in one round.
    pub async fn b2a(&mut self, x: &BinaryShare) -> Result<ArithShare> {
        let xs = as_slice(x.as_raw());
        let n = xs.len();
        let planes: Vec<BitShare> = to_planes(&xs)
            .into_iter()
            .map(|w| BitShare::from_words(n, w))
            .collect();
        let refs: Vec<&BitShare> = planes.iter().collect();
        let all = BitShare::concat(&refs);
        let bits = self.b2a_bits(&all).await?;
        let bs = as_slice(bits.as_raw());
        let out: Vec<u64> = (0..n)
            .map(|j| (0..64).fold(0u64, |acc, k| acc.wrapping_add(bs[k * n + j] << k)))
            .collect();
        Ok(ArithShare::from_raw(from_vec(x.shape(), out)))
    }

    /// The top bit of `a + b` for binary-shared bit planes `a`, `b`, given
    /// the generate bits `g_k = a_k ∧ b_k` for `k < 63`.
    async fn sign_of_sum(&mut self, a: &Planes, b: &Planes, g: Vec<BitShare>) -> Result<BitShare> {
        let p: Planes = a.iter().zip(b).map(|(x, y)| x.xor(y)).collect();
        // (G, P) per group of bits, lowest first; the lowest group's P is
        // never needed (the carry into bit 0 is zero).
        let mut groups: Vec<(BitShare, Option<BitShare>)> = g
            .into_iter()
            .enumerate()
            .map(|(k, gk)| (gk, (k > 0).then(|| p[k].clone())))
            .collect();
        while groups.len() > 1 {
            let mut pairs: Vec<(&BitShare, &BitShare)> = Vec::new();
            for pair in groups.chunks(2) {
                if let [lo, hi] = pair {
                    let p_hi =
                        hi.1.as_ref()
                            .ok_or(Error::Usage("group without P".into()))?;
                    pairs.push((p_hi, &lo.0));
                    if let Some(p_lo) = &lo.1 {
                        pairs.push((p_hi, p_lo));
                    }
                }
            }
            let mut ands = self.and_bits(&pairs).await?.into_iter();
            let mut next = Vec::with_capacity(groups.len().div_ceil(2));
            for pair in groups.chunks(2) {
                match pair {
                    [lo, hi] => {
                        let pg = ands.next().ok_or(Error::Usage("tree".into()))?;
                        let g = hi.0.xor(&pg);
                        let p = match lo.1 {
                            Some(_) => Some(ands.next().ok_or(Error::Usage("tree".into()))?),
                            None => None,
                        };
                        next.push((g, p));
                    }
                    [single] => next.push(single.clone()),
                    _ => {}
                }
            }
            groups = next;
        }
        let carry = groups
            .pop()
            .map(|(g, _)| g)
            .unwrap_or_else(|| BitShare::zeros(p[0].len()));
        Ok(p[63].xor(&carry))
    }

    /// Shared bits as additive shares of 0 or 1 (integers, not fixed point):
    /// one round with a dealer bit pair.
    pub async fn b2a_bits(&mut self, bits: &BitShare) -> Result<ArithShare> {
        let n = bits.len();
        let (pair, c) = self.open_masked_bits(bits).await?;
        let ra = as_slice(&pair.r_arith);
        let me0 = self.id() == 0;
        let mut out = alloc::vec![0u64; n];
        for_each_chunk(
            &mut out,
            #[inline(always)]
            |off, chunk| {
                for ((o, &ra), j) in chunk.iter_mut().zip(&ra[off..]).zip(off..) {
                    *o = bit_from_mask((c[j / 64] >> (j % 64)) & 1, ra, me0);
                }
            },
        );
        Ok(ArithShare::from_raw(from_vec(&[n], out)))
    }

    /// `Σ_j b_(j,e)·w_k[j]` for every element `e < n` and weight vector
    /// `w_k`, as additive shares, where `bits` holds `w_k.len()` planes of
    /// `n` shared bits one after another (plane `j`, element `e` at bit
    /// `j·n + e`). The same round, correlation and message as
    /// [`Party::b2a_bits`] on `bits`, but the arithmetic bits are summed as
    /// they are made instead of stored: one pass over the dealer's shares,
    /// `K·n` words out instead of `planes·n`.
    pub(crate) async fn b2a_weighted<const K: usize>(
        &mut self,
        bits: &BitShare,
        n: usize,
        weights: [&[Ring]; K],
    ) -> Result<[Vec<Ring>; K]> {
        let planes = weights.first().map_or(0, |w| w.len());
        if weights.iter().any(|w| w.len() != planes) || planes * n != bits.len() {
            return Err(Error::Shape(alloc::format!(
                "{} bits as {planes} planes of {n}",
                bits.len()
            )));
        }
        let (pair, c) = self.open_masked_bits(bits).await?;
        let ra = as_slice(&pair.r_arith);
        let me0 = self.id() == 0;
        let mut out: [Vec<Ring>; K] = core::array::from_fn(|_| alloc::vec![0; n]);
        for_each_chunk_of(
            out.each_mut().map(|v| &mut v[..]),
            #[inline(always)]
            |e0, mut outs| {
                let len = outs.first().map_or(0, |o| o.len());
                let mut b = [0u64; 64];
                // Runs of elements short enough for their sums to stay in L1
                // while every plane's dealer shares stream past.
                for run in (0..len).step_by(RUN) {
                    let end = len.min(run + RUN);
                    for j in 0..planes {
                        // 64 elements at a time: their opened bits as one word, so
                        // the loops below index no bits.
                        for blk in (run..end).step_by(64) {
                            let at = j * n + e0 + blk;
                            let m = 64.min(end - blk);
                            // The same elements of the next plane (of the next
                            // run's first plane after the last).
                            let next = if j + 1 < planes {
                                at + n
                            } else {
                                e0 + blk + RUN
                            };
                            prefetch(&ra, next, m);
                            let cw = bits_at(&c, at);
                            for (i, (b, &ra)) in b.iter_mut().zip(&ra[at..at + m]).enumerate() {
                                *b = bit_from_mask((cw >> i) & 1, ra, me0);
                            }
                            for (out, w) in outs.iter_mut().zip(weights) {
                                let wj = w[j];
                                for (o, &b) in out[blk..blk + m].iter_mut().zip(&b) {
                                    *o = o.wrapping_add(b.wrapping_mul(wj));
                                }
                            }
                        }
                    }
                }
            },
        );
        Ok(out)
    }

    /// Opens `c = b ⊕ r` for a dealer bit pair `(r, [r])` (one round) and
    /// returns the pair and `c`'s words.
    async fn open_masked_bits(&mut self, bits: &BitShare) -> Result<(BitPair, Vec<u64>)> {
        let n = bits.len();
        let pair = self
            .prep
            .next(&CorrelationRequest::BitPair { len: n })
            .await?
            .into_bit()?;
        let r = as_slice(&pair.r);
        let w = bits.words();
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                for (o, j) in out.iter_mut().zip(off..) {
                    *o = w[j] ^ r[j];
                }
            }
        };
        let ex = self
            .exchange::<crate::share::Binary>(words_for(n), fill, None)
            .await?;
        let mut c = alloc::vec![0u64; words_for(n)];
        ex.peers.read(0, &mut c);
        self.recycle(ex);
        for ((c, &w), &r) in c.iter_mut().zip(w).zip(r.iter()) {
            *c ^= w ^ r;
        }
        Ok((pair, c))
    }

    /// `b · x` for shared bits `b` and an additive share `x` of the same
    /// length (any scale): one round with a dealer select triple.
    pub async fn select(&mut self, bits: &BitShare, x: &ArithShare) -> Result<ArithShare> {
        let n = x.len();
        if bits.len() != n {
            return Err(Error::Shape(alloc::format!(
                "{} bits select {} elements",
                bits.len(),
                n
            )));
        }
        let t = self
            .prep
            .next(&CorrelationRequest::SelectTriple { len: n })
            .await?
            .into_select()?;
        let xs = as_slice(x.as_raw());
        let (r, ra, a, ar) = (
            as_slice(&t.bits.r),
            as_slice(&t.bits.r_arith),
            as_slice(&t.a),
            as_slice(&t.ar),
        );
        let w = bits.words();
        // One message: e = x − a (additive), then c = b ⊕ r (XOR words).
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                for (o, j) in out.iter_mut().zip(off..) {
                    *o = if j < n {
                        xs[j].wrapping_sub(a[j])
                    } else {
                        w[j - n] ^ r[j - n]
                    };
                }
            }
        };
        let words = words_for(n);
        let ex = self.exchange_mixed(n + words, n, fill, None).await?;
        let mut peer = alloc::vec![0u64; n + words];
        ex.peers.read(0, &mut peer);
        self.recycle(ex);
        let me0 = self.id() == 0;
        let out: Vec<u64> = (0..n)
            .map(|j| {
                let e = xs[j].wrapping_sub(a[j]).wrapping_add(peer[j]);
                let c = ((w[j / 64] ^ r[j / 64] ^ peer[n + j / 64]) >> (j % 64)) & 1;
                // b·x = (1 − 2c)(e·r + a·r) + c·a + c·e
                let one_minus_2c = 1u64.wrapping_sub(2 * c);
                let mut z = one_minus_2c
                    .wrapping_mul(e.wrapping_mul(ra[j]).wrapping_add(ar[j]))
                    .wrapping_add(c.wrapping_mul(a[j]));
                if me0 {
                    z = z.wrapping_add(c.wrapping_mul(e));
                }
                z
            })
            .collect();
        Ok(ArithShare::from_raw(from_vec(x.shape(), out)))
    }

    /// `x < y` elementwise, as shared bits.
    pub async fn lt(&mut self, x: &ArithShare, y: &ArithShare) -> Result<BitShare> {
        let d = self.sub(x, y)?;
        self.msb(&d).await
    }

    /// `x > y`.
    pub async fn gt(&mut self, x: &ArithShare, y: &ArithShare) -> Result<BitShare> {
        self.lt(y, x).await
    }

    /// `x ≤ y`.
    pub async fn le(&mut self, x: &ArithShare, y: &ArithShare) -> Result<BitShare> {
        let b = self.lt(y, x).await?;
        Ok(b.not(self.id() == 0))
    }

    /// `x ≥ y`.
    pub async fn ge(&mut self, x: &ArithShare, y: &ArithShare) -> Result<BitShare> {
        let b = self.lt(x, y).await?;
        Ok(b.not(self.id() == 0))
    }

    /// `x == y`: both strict comparisons in one batch, equal when neither holds.
    pub async fn eq(&mut self, x: &ArithShare, y: &ArithShare) -> Result<BitShare> {
        let (d1, d2) = (self.sub(x, y)?, self.sub(y, x)?);
        let n = d1.len();
        let both = concat(&[&d1, &d2]);
        let b = self.msb(&both).await?;
        let lt = b.slice(0, n);
        let gt = b.slice(n, n);
        Ok(lt.xor(&gt).not(self.id() == 0))
    }

    /// `max(x, 0)`: one comparison and one select (8 rounds for two parties).
    pub async fn relu(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let neg = self.msb(x).await?;
        let pos = neg.not(self.id() == 0);
        self.select(&pos, x).await
    }

    /// `where(cond, x, y)`: `x` where the bit is 1, else `y`.
    pub async fn where_(
        &mut self,
        cond: &BitShare,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<ArithShare> {
        let d = self.sub(x, y)?;
        let s = self.select(cond, &d).await?;
        self.add(y, &s)
    }

    /// `|x|` = `x − 2·[x < 0]·x`.
    pub async fn abs(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let neg = self.msb(x).await?;
        let s = self.select(&neg, x).await?;
        let two = RingTensor::from_elem(ndarray::IxDyn(&[]), 2);
        let s2 = self.mul_public_int(&s, &two)?;
        self.sub(x, &s2)
    }

    /// The sign as a fixed-point value: `-1.0` where `x < 0`, else `1.0`.
    pub async fn sign(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let neg = self.msb(x).await?;
        let scale = self.config.fixed_point.scale();
        self.fixed_of_bits(&neg, x.shape(), scale, scale.wrapping_neg())
            .await
    }

    /// `[x < 0]` as a fixed-point value: `1.0` where `x < 0`, else `0.0`
    /// (ONNX's comparisons, as numbers).
    pub async fn is_negative(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let neg = self.msb(x).await?;
        let scale = self.config.fixed_point.scale();
        self.fixed_of_bits(&neg, x.shape(), 0, scale).await
    }

    /// Shared bits as ring values of `shape`: `zero` where a bit is 0 and
    /// `one` where it is 1 (one conversion, then local arithmetic).
    async fn fixed_of_bits(
        &mut self,
        bits: &BitShare,
        shape: &[usize],
        zero: u64,
        one: u64,
    ) -> Result<ArithShare> {
        let b = self.b2a_bits(bits).await?;
        let m = RingTensor::from_elem(ndarray::IxDyn(&[]), one.wrapping_sub(zero));
        let t = self.mul_public_int(&b, &m)?;
        let t = self.add_public(&t, &RingTensor::from_elem(ndarray::IxDyn(&[]), zero))?;
        Ok(ArithShare::from_raw(
            t.into_raw()
                .into_shape_with_order(ndarray::IxDyn(shape))
                .map_err(|e| Error::Shape(alloc::format!("{e}")))?,
        ))
    }

    /// `max(x, y)` elementwise.
    pub async fn max(&mut self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        let b = self.lt(x, y).await?;
        self.where_(&b, y, x).await
    }

    /// `min(x, y)` elementwise.
    pub async fn min(&mut self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        let b = self.lt(x, y).await?;
        self.where_(&b, x, y).await
    }

    /// `min(max(x, lo), hi)` for public real bounds `lo < hi` (ReLU6,
    /// hardtanh): both comparisons in one batch, both selects in one round.
    pub async fn clip(&mut self, x: &ArithShare, lo: f64, hi: f64) -> Result<ArithShare> {
        if lo.partial_cmp(&hi) != Some(core::cmp::Ordering::Less) {
            return Err(Error::Usage("clip needs lo < hi".into()));
        }
        let fp = self.config.fixed_point;
        let n = x.len();
        let lo_t = RingTensor::from_elem(ndarray::IxDyn(x.shape()), fp.encode(lo)?);
        let hi_t = RingTensor::from_elem(ndarray::IxDyn(x.shape()), fp.encode(hi)?);
        let lo_s = self.public(&lo_t);
        let hi_s = self.public(&hi_t);
        // x < lo  ⇔ msb(x − lo);  x > hi ⇔ msb(hi − x)
        let (d_lo, d_hi) = (self.sub(x, &lo_s)?, self.sub(&hi_s, x)?);
        let bits = self.msb(&concat(&[&d_lo, &d_hi])).await?;
        // x + [x<lo](lo − x) + [x>hi](hi − x)
        let (to_lo, to_hi) = (self.neg(&d_lo), d_hi.clone());
        let sel = self.select(&bits, &concat(&[&to_lo, &to_hi])).await?;
        let sel = as_slice(sel.as_raw()).into_owned();
        let (a, b) = sel.split_at(n);
        let xs = as_slice(x.as_raw());
        let out: Vec<u64> = (0..n)
            .map(|j| xs[j].wrapping_add(a[j]).wrapping_add(b[j]))
            .collect();
        Ok(ArithShare::from_raw(from_vec(x.shape(), out)))
    }

    /// A public tensor as a share (party 0 holds it, the others zero).
    pub fn public(&self, value: &RingTensor) -> ArithShare {
        if self.id() == 0 {
            ArithShare::from_raw(value.clone())
        } else {
            ArithShare::from_raw(RingTensor::zeros(value.raw_dim()))
        }
    }
}

/// Concatenates shares of any shapes into one flat share.
pub(crate) fn concat(parts: &[&ArithShare]) -> ArithShare {
    let mut v = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        v.extend_from_slice(&as_slice(p.as_raw()));
    }
    let n = v.len();
    ArithShare::from_raw(from_vec(&[n], v))
}
