//! Packed shared bits and the bit-plane layout the comparison circuits use.
//!
//! A [`BitShare`] holds one XOR share of `len` bits, 64 to a word (bit `j` is
//! bit `j % 64` of word `j / 64`); bits past `len` in the last word are kept
//! zero. Comparison circuits work on *bit planes*: plane `k` of a vector of
//! 64-bit words packs bit `k` of every element, so one AND of two planes is
//! one AND gate per element with no wasted bits on the wire, and a 64-way
//! parallel-prefix circuit is a sequence of plane operations.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// One party's XOR share of `len` packed bits. `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct BitShare {
    len: usize,
    words: Vec<u64>,
}

impl fmt::Debug for BitShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BitShare {{ len: {} }}", self.len)
    }
}

/// Words that hold `len` packed bits.
pub fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

/// Mask of the valid bits of the last word for `len` bits.
fn tail_mask(len: usize) -> u64 {
    match len % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

impl BitShare {
    /// A share from packed words (bits past `len` are cleared).
    pub fn from_words(len: usize, mut words: Vec<u64>) -> Self {
        words.resize(words_for(len), 0);
        if let Some(last) = words.last_mut() {
            *last &= tail_mask(len);
        }
        BitShare { len, words }
    }

    /// All-zero bits (the share of a public zero).
    pub fn zeros(len: usize) -> Self {
        BitShare {
            len,
            words: vec![0; words_for(len)],
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packed words of this share.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Bit `j` of this share.
    pub fn get(&self, j: usize) -> bool {
        (self.words[j / 64] >> (j % 64)) & 1 == 1
    }

    /// `self ⊕ other` (local).
    pub fn xor(&self, other: &BitShare) -> BitShare {
        debug_assert_eq!(self.len, other.len);
        BitShare {
            len: self.len,
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a ^ b)
                .collect(),
        }
    }

    /// `¬self` as a share: party 0 flips its bits, the others keep theirs.
    pub fn not(&self, party0: bool) -> BitShare {
        if !party0 {
            return self.clone();
        }
        BitShare::from_words(self.len, self.words.iter().map(|w| !w).collect())
    }

    /// The bits `self[i]` for `i` in `range`, as a new share.
    pub fn slice(&self, start: usize, len: usize) -> BitShare {
        let mut out = BitShare::zeros(len);
        for i in 0..len {
            let j = start + i;
            let bit = (self.words[j / 64] >> (j % 64)) & 1;
            out.words[i / 64] |= bit << (i % 64);
        }
        out
    }

    /// Concatenates shares bit by bit.
    pub fn concat(parts: &[&BitShare]) -> BitShare {
        let len = parts.iter().map(|p| p.len).sum();
        let mut out = BitShare::zeros(len);
        let mut at = 0;
        for p in parts {
            let (w, sh) = (at / 64, at % 64);
            if sh == 0 {
                out.words[w..w + p.words.len()].copy_from_slice(&p.words);
            } else {
                // Each word straddles two of the output's; bits past a
                // share's length are zero, so they add nothing.
                for (i, &v) in p.words.iter().enumerate() {
                    out.words[w + i] |= v << sh;
                    if let Some(next) = out.words.get_mut(w + i + 1) {
                        *next |= v >> (64 - sh);
                    }
                }
            }
            at += p.len;
        }
        out
    }
}

/// Transposes a 64×64 bit matrix in place: afterwards bit `i` of `a[k]` is
/// what bit `k` of `a[i]` was.
pub(crate) fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            // Swap the off-diagonal j×j blocks between rows k and k + j.
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k + j] ^= t;
            a[k] ^= t << j;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Bit planes of `x`: `planes[k]` packs bit `k` of every element.
pub(crate) fn to_planes(x: &[u64]) -> Vec<Vec<u64>> {
    let w = words_for(x.len());
    let mut planes = vec![vec![0u64; w]; 64];
    let mut block = [0u64; 64];
    for (b, chunk) in x.chunks(64).enumerate() {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (k, plane) in planes.iter_mut().enumerate() {
            plane[b] = block[k];
        }
    }
    planes
}

/// Inverse of [`to_planes`] for `len` elements.
pub(crate) fn from_planes(planes: &[Vec<u64>], len: usize) -> Vec<u64> {
    let mut out = vec![0u64; len];
    let mut block = [0u64; 64];
    for (b, chunk) in out.chunks_mut(64).enumerate() {
        for (k, row) in block.iter_mut().enumerate() {
            *row = planes.get(k).map_or(0, |p| p[b]);
        }
        transpose64(&mut block);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::{Prg, Seed};

    #[test]
    fn transpose_matches_definition_and_is_an_involution() {
        let mut prg = Prg::new(&Seed::from_bytes([2; 32]));
        let mut a = [0u64; 64];
        prg.fill(&mut a);
        let orig = a;
        transpose64(&mut a);
        for (i, row) in orig.iter().enumerate() {
            for (k, col) in a.iter().enumerate() {
                assert_eq!((col >> i) & 1, (row >> k) & 1, "i={i} k={k}");
            }
        }
        transpose64(&mut a);
        assert_eq!(a, orig);
    }

    #[test]
    fn planes_round_trip_for_ragged_lengths() {
        let mut prg = Prg::new(&Seed::from_bytes([3; 32]));
        for len in [0, 1, 63, 64, 65, 200] {
            let mut x = vec![0u64; len];
            prg.fill(&mut x);
            let planes = to_planes(&x);
            for (j, &v) in x.iter().enumerate() {
                for (k, plane) in planes.iter().enumerate() {
                    assert_eq!((plane[j / 64] >> (j % 64)) & 1, (v >> k) & 1);
                }
            }
            assert_eq!(from_planes(&planes, len), x);
        }
    }

    #[test]
    fn bit_share_helpers() {
        let a = BitShare::from_words(70, vec![u64::MAX, u64::MAX]);
        assert_eq!(a.words()[1], 0x3f);
        let b = a.not(true);
        assert!(b.words().iter().all(|&w| w == 0));
        let s = a.slice(60, 8);
        assert_eq!(s.words(), &[0xff]);
        let c = BitShare::concat(&[&s, &BitShare::zeros(3), &s]);
        assert_eq!(c.len(), 19);
        assert_eq!(c.words()[0], 0xff | (0xff << 11));
        assert_eq!(alloc::format!("{a:?}"), "BitShare { len: 70 }");
    }

    #[test]
    fn concat_keeps_every_bit_at_any_offset() {
        let mut prg = Prg::new(&Seed::from_bytes([8; 32]));
        let lens = [100_000, 1, 63, 64, 65, 0, 129, 1000];
        let parts: Vec<BitShare> = lens
            .iter()
            .map(|&len| {
                let mut w = vec![0u64; words_for(len)];
                prg.fill(&mut w);
                BitShare::from_words(len, w)
            })
            .collect();
        let refs: Vec<&BitShare> = parts.iter().collect();
        let c = BitShare::concat(&refs);
        assert_eq!(c.len(), lens.iter().sum::<usize>());
        let mut at = 0;
        for p in &parts {
            for i in 0..p.len() {
                assert_eq!(c.get(at + i), p.get(i), "bit {i} of a part at {at}");
            }
            at += p.len();
        }
        // Bits past the length stay zero.
        assert_eq!(c.words().last().map(|w| w & !tail_mask(c.len())), Some(0));
    }
}
