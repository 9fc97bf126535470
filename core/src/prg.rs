//! Seeds and the ChaCha pseudo-random generator every party expands them with.
//!
//! The generator is ChaCha with 12 rounds (the same choice as `rand`'s
//! `StdRng`; the best known attacks reach 7 rounds). Words are read in
//! little-endian order so the dealer and the parties expand a seed to the same
//! ring elements on every platform.

use crate::error::{Error, Result};
use crate::ring::{Ring, RingTensor};
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

    /// Fills `out` with the next ring elements of the stream. With `std`, a
    /// long fill is cut into pieces generated in parallel, each by a copy of
    /// the generator moved to the piece's place in the stream (ChaCha's
    /// block counter makes it seekable): the same words as one sequential
    /// pass, on as many cores as rayon has.
    pub fn fill(&mut self, out: &mut [Ring]) {
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
                    fill_from(&mut rng, piece);
                });
            self.rng.set_word_pos(start + 2 * out.len() as u128);
            return;
        }
        fill_from(&mut self.rng, out);
    }

    /// A tensor of the given shape filled from the stream (row-major order).
    pub fn tensor(&mut self, shape: &[usize]) -> RingTensor {
        let mut t = RingTensor::zeros(IxDyn(shape));
        if let Some(s) = t.as_slice_mut() {
            self.fill(s);
        }
        t
    }
}

/// Elements per piece of a parallel [`Prg::fill`] (512 KiB).
#[cfg(feature = "std")]
const PARALLEL_WORDS: usize = 1 << 16;

/// `out` from `rng`'s stream, in order, 8 little-endian bytes per element.
fn fill_from(rng: &mut ChaCha12Rng, out: &mut [Ring]) {
    const CHUNK: usize = 512;
    let mut buf = [0u8; CHUNK * 8];
    for block in out.chunks_mut(CHUNK) {
        let bytes = &mut buf[..block.len() * 8];
        rng.fill_bytes(bytes);
        for (o, b) in block.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            *o = u64::from_le_bytes(w);
        }
    }
}

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
