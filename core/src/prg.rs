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

    /// Fills `out` with the next ring elements of the stream.
    pub fn fill(&mut self, out: &mut [Ring]) {
        const CHUNK: usize = 512;
        let mut buf = [0u8; CHUNK * 8];
        for block in out.chunks_mut(CHUNK) {
            let bytes = &mut buf[..block.len() * 8];
            self.rng.fill_bytes(bytes);
            for (o, b) in block.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                *o = u64::from_le_bytes(w);
            }
        }
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
