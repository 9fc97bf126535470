//! Seeds and the ChaCha pseudo-random generator every party expands them with.
//!
//! The generator is ChaCha with 12 rounds (the same choice as `rand`'s
//! `StdRng`; the best known attacks reach 7 rounds). Words are read in
//! little-endian order so the dealer and the parties expand a seed to the same
//! ring elements on every platform.

use crate::error::{Error, Result};
use crate::ring::{Ring, RingTensor, put_wide, wide};
use alloc::vec::Vec;
use core::fmt;
use ndarray::IxDyn;
use rand_chacha::ChaCha12Rng;
use rand_core::{Rng, SeedableRng};

/// A 256-bit secret seed. `Debug` never prints its bytes. It serializes (for
/// the one message that hands it to its holder) as its 32 bytes.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seed([u8; 32]);

impl Seed {
    /// Draws a fresh seed from the operating system (the browser's
    /// `crypto.getRandomValues` on wasm).
    pub fn random() -> Result<Seed> {
        let mut s = [0u8; 32];
        getrandom::fill(&mut s).map_err(|_| Error::Randomness)?;
        Ok(Seed(s))
    }

    /// Wraps bytes received from a trusted source (the dealer) or a test vector.
    pub fn from_bytes(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }

    /// The seed's bytes, for sending to the one peer entitled to it.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives an independent sub-seed for a named purpose (domain separation).
    pub fn derive(&self, purpose: u64) -> Seed {
        let mut rng = ChaCha12Rng::from_seed(self.0);
        rng.set_stream(purpose);
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        Seed(s)
    }
}

/// Seeds are wiped from memory when dropped.
impl Drop for Seed {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// A ChaCha12 stream of ring elements. `Debug` prints nothing of its state.
#[derive(Clone)]
pub struct Prg {
    rng: ChaCha12Rng,
}

impl fmt::Debug for Prg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prg(<redacted>)")
    }
}

impl Prg {
    /// A generator keyed by `seed`.
    pub fn new(seed: &Seed) -> Prg {
        Prg {
            rng: ChaCha12Rng::from_seed(seed.0),
        }
    }

    /// A generator keyed by a fresh OS seed.
    pub fn from_entropy() -> Result<Prg> {
        Ok(Prg::new(&Seed::random()?))
    }

    /// The next ring element.
    pub fn next_ring(&mut self) -> Ring {
        self.rng.next_u64()
    }

    /// Fills `out` with the next ring elements of the stream.
    pub fn fill(&mut self, out: &mut [Ring]) {
        self.pieces(out, |rng, piece| {
            for o in piece {
                *o = rng.next_u64();
            }
        });
    }

    /// `out[i] = f(out[i], w_i)` for the next words `w_i` of the stream: how
    /// the dealer adds (or XORs) a party's stream into a running total
    /// without holding that party's tensor.
    pub fn fold_into(&mut self, out: &mut [Ring], f: impl Fn(Ring, Ring) -> Ring + Sync) {
        self.pieces(out, |rng, piece| {
            for o in piece {
                *o = f(*o, rng.next_u64());
            }
        });
    }

    /// As [`Prg::fold_into`] for 128-bit elements held as word pairs (low
    /// word first): `out` has an even length.
    pub fn fold_wide_into(&mut self, out: &mut [Ring], f: impl Fn(u128, u128) -> u128 + Sync) {
        debug_assert!(
            out.len().is_multiple_of(2),
            "128-bit elements are word pairs"
        );
        self.pieces(out, |rng, piece| {
            for o in piece.chunks_exact_mut(2) {
                let x = wide(rng.next_u64(), rng.next_u64());
                put_wide(o, f(wide(o[0], o[1]), x));
            }
        });
    }

    /// The next `len` ring elements as a vector (written once: no zeroing
    /// pass before the stream is copied in).
    pub fn vec(&mut self, len: usize) -> Vec<Ring> {
        #[cfg(feature = "std")]
        if len >= 2 * PARALLEL_WORDS {
            use rayon::prelude::*;
            let start = self.rng.get_word_pos();
            let base = &self.rng;
            let mut out = Vec::with_capacity(len);
            // Each of rayon's splits is a run of consecutive indices: its
            // generator is moved to the run's first element once, then read
            // in order.
            (0..len)
                .into_par_iter()
                .with_min_len(PARALLEL_WORDS)
                .map_init(
                    || (base.clone(), usize::MAX),
                    |(rng, next), i| {
                        if *next != i {
                            rng.set_word_pos(start + 2 * i as u128);
                        }
                        *next = i + 1;
                        rng.next_u64()
                    },
                )
                .collect_into_vec(&mut out);
            self.rng.set_word_pos(start + 2 * len as u128);
            return out;
        }
        let rng = &mut self.rng;
        (0..len).map(|_| rng.next_u64()).collect()
    }

    /// A tensor of the given shape filled from the stream (row-major order).
    pub fn tensor(&mut self, shape: &[usize]) -> RingTensor {
        let len = shape.iter().product();
        RingTensor::from_shape_vec(IxDyn(shape), self.vec(len))
            .unwrap_or_else(|_| unreachable!("the vector has shape.product() elements"))
    }

    /// Runs `f` over `out` in order, with the stream at `out[0]`'s place.
    /// With `std`, a long `out` is cut into pieces done in parallel, each by a
    /// copy of the generator moved to the piece's place in the stream
    /// (ChaCha's block counter makes it seekable): the same words as one
    /// sequential pass, on as many cores as rayon has. Pieces have an even
    /// length, so a 128-bit element never straddles two.
    fn pieces(&mut self, out: &mut [Ring], f: impl Fn(&mut ChaCha12Rng, &mut [Ring]) + Sync) {
        #[cfg(feature = "std")]
        if out.len() >= 2 * PARALLEL_WORDS {
            use rayon::prelude::*;
            // Positions count the stream's 32-bit words, two per element.
            let start = self.rng.get_word_pos();
            let rng = &self.rng;
            out.par_chunks_mut(PARALLEL_WORDS)
                .enumerate()
                .for_each(|(i, piece)| {
                    let mut rng = rng.clone();
                    rng.set_word_pos(start + 2 * (i * PARALLEL_WORDS) as u128);
                    f(&mut rng, piece);
                });
            self.rng.set_word_pos(start + 2 * out.len() as u128);
            return;
        }
        f(&mut self.rng, out);
    }
}

/// Elements per piece of a parallel [`Prg::fill`] (512 KiB; even).
#[cfg(feature = "std")]
const PARALLEL_WORDS: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_across_fill_and_next() {
        let seed = Seed::from_bytes([7; 32]);
        let mut a = Prg::new(&seed);
        let mut b = Prg::new(&seed);
        let mut buf = [0u64; 1000];
        a.fill(&mut buf);
        for &x in buf.iter() {
            assert_eq!(x, b.next_ring());
        }
    }

    /// The stream is pinned to ChaCha12 (RFC 8439's block function with 12
    /// rounds, 64-bit block counter from 0, stream 0, words little-endian):
    /// the dealer and the parties expand seeds on different builds (native
    /// with `std`, where `rand_chacha` picks an AVX2 or SSE2 implementation
    /// at run time; `no_std`; wasm32), so every one must give these words.
    /// Expected values from an independent implementation of that function.
    #[test]
    fn stream_matches_chacha12_known_answers() {
        let mut prg = Prg::new(&Seed::from_bytes([7; 32]));
        let mut words = [0u64; 1000];
        prg.fill(&mut words);
        let expected = [
            (0, 0x20cb_c085_7889_92f6),
            (1, 0xbc15_0b6a_10cd_e4a3),
            (159, 0x8c37_f56a_56ba_990b),
            (513, 0xf38c_f7af_42c3_2828),
            (999, 0xd765_c242_d665_ff18),
        ];
        for (i, want) in expected {
            assert_eq!(words[i], want, "word {i}");
        }
    }

    /// A fill long enough to be generated in parallel pieces gives the
    /// words one element at a time would, and leaves the stream where they
    /// would (checked from an odd starting place, over a length that is
    /// not a whole number of pieces).
    #[test]
    fn long_fills_are_the_sequential_stream() {
        let seed = Seed::from_bytes([3; 32]);
        let (mut a, mut b) = (Prg::new(&seed), Prg::new(&seed));
        a.next_ring();
        b.next_ring();
        let mut long = alloc::vec![0u64; 5 * (1 << 16) + 12_345];
        a.fill(&mut long);
        for (i, &x) in long.iter().enumerate() {
            assert_eq!(x, b.next_ring(), "element {i}");
        }
        assert_eq!(a.next_ring(), b.next_ring());
    }

    /// Every way of reading the stream (`vec`, `tensor`, `fold_into`,
    /// `fold_wide_into`), short (one sequential pass) and long (parallel
    /// pieces, or rayon's splits for `vec`), reads the same words in the
    /// same order as one element at a time, and leaves the stream where
    /// that would.
    #[test]
    fn every_reader_is_the_sequential_stream() {
        let seed = Seed::from_bytes([5; 32]);
        for len in [0, 1, 6, 1000, 5 * (1 << 16) + 12_346] {
            let (mut a, mut b) = (Prg::new(&seed), Prg::new(&seed));
            a.next_ring();
            b.next_ring();
            let got = a.vec(len);
            let want: alloc::vec::Vec<u64> = (0..len).map(|_| b.next_ring()).collect();
            assert_eq!(got, want, "vec of {len}");

            let t = a.tensor(&[2, len / 2]);
            let want: alloc::vec::Vec<u64> = (0..len / 2 * 2).map(|_| b.next_ring()).collect();
            assert_eq!(t.as_slice(), Some(&want[..]), "tensor of {len}");

            let base: alloc::vec::Vec<u64> = (0..len as u64).map(|i| i * 0x9e37).collect();
            let mut sum = base.clone();
            a.fold_into(&mut sum, u64::wrapping_sub);
            for (i, (&s, &x)) in sum.iter().zip(&base).enumerate() {
                assert_eq!(
                    s,
                    x.wrapping_sub(b.next_ring()),
                    "fold of {len}, element {i}"
                );
            }

            let mut sum = base.clone();
            a.fold_wide_into(&mut sum[..len / 2 * 2], u128::wrapping_add);
            for (i, (s, x)) in sum.chunks_exact(2).zip(base.chunks_exact(2)).enumerate() {
                let r = wide(b.next_ring(), b.next_ring());
                let want = wide(x[0], x[1]).wrapping_add(r);
                assert_eq!(wide(s[0], s[1]), want, "wide fold of {len}, element {i}");
            }
            assert_eq!(a.next_ring(), b.next_ring(), "stream position after {len}");
        }
    }

    #[test]
    fn derived_seeds_differ_and_debug_is_redacted() {
        let seed = Seed::from_bytes([1; 32]);
        assert_ne!(seed.derive(1), seed.derive(2));
        assert_ne!(&seed.derive(1), &seed);
        assert_eq!(alloc::format!("{seed:?}"), "Seed(<redacted>)");
        assert!(!alloc::format!("{:?}", Prg::new(&seed)).contains('1'));
    }

    #[test]
    fn random_seeds_differ() {
        assert_ne!(Seed::random().unwrap(), Seed::random().unwrap());
    }
}
