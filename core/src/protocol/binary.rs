//! The binary layer: XOR, AND (by dealer AND triples), NOT, shifts and bit
//! extraction on XOR-shared 64-bit words ([`BinaryShare`]) and on packed
//! shared bits ([`BitShare`]).

use super::Party;
use crate::backend::Backend;
use crate::bits::{BitShare, words_for};
use crate::channel::Channel;
use crate::elementwise::{as_slice, from_vec, gather, map, run_starts, zip_map};
use crate::error::{Error, Result};
use crate::preprocessing::{CorrelationRequest, Preprocessing};
use crate::protocol::open::LANES;
use crate::share::{Binary, BinaryShare};
use alloc::vec::Vec;

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// ANDs of pairs of XOR-shared word vectors, all in one round (none if
    /// every pair is empty). Pairs must have equal lengths.
    pub(crate) async fn and_words(&mut self, pairs: &[(&[u64], &[u64])]) -> Result<Vec<Vec<u64>>> {
        if pairs.iter().any(|(x, y)| x.len() != y.len()) {
            return Err(Error::Shape("AND operands differ in length".into()));
        }
        let total: usize = pairs.iter().map(|(x, _)| x.len()).sum();
        if total == 0 {
            return Ok(pairs.iter().map(|_| Vec::new()).collect());
        }
        let t = self
            .prep
            .next(&CorrelationRequest::AndTriple { words: total })
            .await?
            .into_and()?;
        let (a, b, c) = (as_slice(&t.a), as_slice(&t.b), as_slice(&t.c));
        let xs: Vec<&[u64]> = pairs.iter().map(|p| p.0).collect();
        let ys: Vec<&[u64]> = pairs.iter().map(|p| p.1).collect();
        let starts = run_starts(&xs);
        // Open d = x ⊕ a and e = y ⊕ b together, the operands read where
        // they lie.
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                // elements off.. of d = x ⊕ a, then of e = y ⊕ b past `total`
                let split = total.saturating_sub(off).min(out.len());
                let (dx, ey) = out.split_at_mut(split);
                if !dx.is_empty() {
                    gather(&xs, &starts, off, dx);
                    for (o, &m) in dx.iter_mut().zip(&a[off..]) {
                        *o ^= m;
                    }
                }
                if !ey.is_empty() {
                    let oy = off + split - total;
                    gather(&ys, &starts, oy, ey);
                    for (o, &m) in ey.iter_mut().zip(&b[oy..]) {
                        *o ^= m;
                    }
                }
            }
        };
        let ex = self.exchange::<Binary>(2 * total, fill, None).await?;
        let me0 = self.id() == 0;
        // z = c ⊕ (d ∧ b) ⊕ (e ∧ a), and party 0 adds d ∧ e.
        let mut out = Vec::with_capacity(pairs.len());
        let (mut pd, mut pe) = ([0u64; LANES], [0u64; LANES]);
        for ((xp, yp), &at) in pairs.iter().zip(&starts) {
            let mut z = Vec::with_capacity(xp.len());
            for (k, (xc, yc)) in xp.chunks(LANES).zip(yp.chunks(LANES)).enumerate() {
                let j0 = at + k * LANES;
                let m = xc.len();
                ex.peers.read(j0, &mut pd[..m]);
                ex.peers.read(total + j0, &mut pe[..m]);
                for i in 0..m {
                    let j = j0 + i;
                    let d = xc[i] ^ a[j] ^ pd[i];
                    let e = yc[i] ^ b[j] ^ pe[i];
                    let mut v = c[j] ^ (d & b[j]) ^ (e & a[j]);
                    if me0 {
                        v ^= d & e;
                    }
                    z.push(v);
                }
            }
            out.push(z);
        }
        self.recycle(ex);
        Ok(out)
    }

    /// `x_0 ∧ x_1` for word vectors where party 0 holds all of `x_0` and
    /// party 1 all of `x_1` (this party passes its own, as several vectors
    /// `mine`, ANDed elementwise with the peer's of the same lengths): XOR
    /// shares of the results in one round, one opened bit per gate instead
    /// of two. Two parties only.
    pub(crate) async fn and_one_sided(&mut self, mine: &[&[u64]]) -> Result<Vec<Vec<u64>>> {
        if self.num_parties() != 2 {
            return Err(Error::Unsupported("one-sided AND is a two-party protocol"));
        }
        let total: usize = mine.iter().map(|m| m.len()).sum();
        if total == 0 {
            return Ok(mine.iter().map(|_| Vec::new()).collect());
        }
        let c = self
            .prep
            .next(&CorrelationRequest::OneSidedAnd { words: total })
            .await?
            .into_one_sided()?;
        let (mask, z) = (as_slice(&c.mask), as_slice(&c.z));
        let starts = run_starts(mine);
        // Party 0 sends d = x0 ⊕ A, party 1 sends e = x1 ⊕ B.
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                gather(mine, &starts, off, out);
                for (o, &m) in out.iter_mut().zip(&mask[off..]) {
                    *o ^= m;
                }
            }
        };
        let ex = self.exchange::<Binary>(total, fill, None).await?;
        // Party 0: (x0 ∧ e) ⊕ z0; party 1: (d ∧ B) ⊕ z1.
        let me0 = self.id() == 0;
        let mut theirs = [0u64; LANES];
        let mut out = Vec::with_capacity(mine.len());
        for (m, &at) in mine.iter().zip(&starts) {
            let mut v = Vec::with_capacity(m.len());
            for (k, mc) in m.chunks(LANES).enumerate() {
                let j0 = at + k * LANES;
                let t = &mut theirs[..mc.len()];
                ex.peers.read(j0, t);
                for (i, (&x, &e)) in mc.iter().zip(t.iter()).enumerate() {
                    let j = j0 + i;
                    v.push(if me0 { x & e } else { e & mask[j] } ^ z[j]);
                }
            }
            out.push(v);
        }
        self.recycle(ex);
        Ok(out)
    }

    /// ANDs of pairs of shared bit vectors, all in one round.
    pub async fn and_bits(&mut self, pairs: &[(&BitShare, &BitShare)]) -> Result<Vec<BitShare>> {
        if pairs.iter().any(|(x, y)| x.len() != y.len()) {
            return Err(Error::Shape("AND operands differ in length".into()));
        }
        let words: Vec<(&[u64], &[u64])> =
            pairs.iter().map(|(x, y)| (x.words(), y.words())).collect();
        let z = self.and_words(&words).await?;
        Ok(z.into_iter()
            .zip(pairs)
            .map(|(w, (x, _))| BitShare::from_words(x.len(), w))
            .collect())
    }

    /// `out[i] = bits[i] ∨ bits[i + 1] ∨ … ∨ bits[last]` (suffix OR) by a
    /// Sklansky network: `⌈log2 len⌉` rounds, about `len/2` AND gates each.
    pub(crate) async fn suffix_or(&mut self, mut bits: Vec<BitShare>) -> Result<Vec<BitShare>> {
        // A prefix OR over the reversed order: index r is bits[len − 1 − r].
        let len = bits.len();
        bits.reverse();
        let mut size = 1;
        while size < len {
            let mut gates: Vec<(usize, usize)> = Vec::new();
            for s in (0..len).step_by(2 * size) {
                let mid = s + size - 1;
                for k in mid + 1..(s + 2 * size).min(len) {
                    gates.push((k, mid));
                }
            }
            let pairs: Vec<(&BitShare, &BitShare)> = gates
                .iter()
                .map(|&(k, mid)| (&bits[k], &bits[mid]))
                .collect();
            let ands = self.and_bits(&pairs).await?;
            // a ∨ b = a ⊕ b ⊕ (a ∧ b)
            for (&(k, mid), ab) in gates.iter().zip(&ands) {
                bits[k] = bits[k].xor(&bits[mid]).xor(ab);
            }
            size *= 2;
        }
        bits.reverse();
        Ok(bits)
    }

    /// `x ⊕ y` on binary shares (local).
    pub fn xor_binary(&self, x: &BinaryShare, y: &BinaryShare) -> Result<BinaryShare> {
        if x.shape() != y.shape() {
            return Err(Error::Shape("XOR operands differ in shape".into()));
        }
        Ok(BinaryShare::from_raw(zip_map(
            x.as_raw(),
            y.as_raw(),
            |a, b| a ^ b,
        )))
    }

    /// `x ∧ y` on binary shares (one round).
    pub async fn and_binary(&mut self, x: &BinaryShare, y: &BinaryShare) -> Result<BinaryShare> {
        if x.shape() != y.shape() {
            return Err(Error::Shape("AND operands differ in shape".into()));
        }
        let (xs, ys) = (as_slice(x.as_raw()), as_slice(y.as_raw()));
        let z = self.and_words(&[(&xs, &ys)]).await?.remove(0);
        Ok(BinaryShare::from_raw(from_vec(x.shape(), z)))
    }

    /// `¬x` on binary shares (local: party 0 flips its words).
    pub fn not_binary(&self, x: &BinaryShare) -> BinaryShare {
        if self.id() == 0 {
            BinaryShare::from_raw(map(x.as_raw(), |v| !v))
        } else {
            x.clone()
        }
    }

    /// `x << k` (logical) on binary shares (local).
    pub fn shl_binary(&self, x: &BinaryShare, k: u32) -> BinaryShare {
        BinaryShare::from_raw(map(x.as_raw(), |v| v.checked_shl(k).unwrap_or(0)))
    }

    /// `x >> k` (logical) on binary shares (local).
    pub fn shr_binary(&self, x: &BinaryShare, k: u32) -> BinaryShare {
        BinaryShare::from_raw(map(x.as_raw(), |v| v.checked_shr(k).unwrap_or(0)))
    }

    /// Bit `k` of every element of a binary share, packed (local).
    pub fn bit_binary(&self, x: &BinaryShare, k: u32) -> Result<BitShare> {
        if k >= 64 {
            return Err(Error::Usage("bit index must be below 64".into()));
        }
        let xs = as_slice(x.as_raw());
        let mut words = alloc::vec![0u64; words_for(xs.len())];
        for (j, &v) in xs.iter().enumerate() {
            words[j / 64] |= ((v >> k) & 1) << (j % 64);
        }
        Ok(BitShare::from_words(xs.len(), words))
    }
}
