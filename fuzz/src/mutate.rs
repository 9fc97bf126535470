//! Deterministic mutations of the seeds, for the stable-Rust test: not a
//! coverage-guided fuzzer, but it runs in every test run and replays the
//! same cases each time. The generator is a plain SplitMix64, chosen for
//! being reproducible from a number; nothing here is secret.

/// SplitMix64: a reproducible sequence of words from a seed.
pub struct Rng(u64);

impl Rng {
    /// The sequence numbered `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Values that sit on the edges decoders check: lengths, counts, versions.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    1 << 28,
    (1 << 31) - 1,
    u32::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// `seed` with one to four random edits: bit flips, edge values written
/// as 1, 2, 4 or 8 bytes, cuts, deletions, duplications, insertions.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let x = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let w = [1, 2, 4, 8][rng.below(4)].min(len);
                let i = rng.below(len - w + 1);
                v[i..i + w].copy_from_slice(&x[..w]);
            }
            2 => v.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let piece = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, piece);
            }
            5 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(at..at, bytes);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next_u64() as u8;
            }
            _ => v.push(rng.next_u64() as u8),
        }
    }
    v
}
