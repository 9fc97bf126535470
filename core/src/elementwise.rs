//! Fast elementwise passes over ring tensors.
//!
//! `ndarray`'s iterators over dynamic-rank arrays step a multi-index per
//! element; the protocols' hot loops instead run over contiguous slices, split
//! into chunks over rayon's pool when `std` is on. Every tensor the core
//! creates is in standard (row-major, contiguous) layout; other layouts are
//! copied to it first.

use crate::ring::{Ring, RingTensor};
use alloc::borrow::Cow;

/// Elements per parallel chunk.
#[cfg(feature = "std")]
const CHUNK: usize = 1 << 15;

/// The tensor's elements in row-major order, borrowed when already contiguous.
pub(crate) fn as_slice(t: &RingTensor) -> Cow<'_, [Ring]> {
    match t.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.iter().copied().collect()),
    }
}

/// A tensor of `shape` built from row-major elements.
pub(crate) fn from_vec(shape: &[usize], v: alloc::vec::Vec<Ring>) -> RingTensor {
    RingTensor::from_shape_vec(ndarray::IxDyn(shape), v)
        .unwrap_or_else(|_| unreachable!("callers pass exactly shape.product() elements"))
}

/// A tensor's elements in row-major order, without a copy when it is
/// contiguous.
pub(crate) fn into_vec(t: RingTensor) -> alloc::vec::Vec<Ring> {
    if t.is_standard_layout() {
        t.into_raw_vec_and_offset().0
    } else {
        t.iter().copied().collect()
    }
}

/// Runs `f` compiled for the widest vector unit this CPU has: the
/// `x86_64` baseline the crate is built for has only SSE2, where a 64-bit
/// multiply is three 32-bit ones on two lanes, while AVX-512DQ multiplies
/// eight 64-bit lanes in one instruction. `f` is inlined into a copy of
/// this function built with AVX-512, or with AVX2 where that is the best
/// (`HUSH_CPU_VECTOR` caps it); other targets and CPUs run it as built.
/// Every chunked pass below goes through here, so the protocols'
/// elementwise loops need no vector code of their own — but only code
/// inlined into the copy is built for it: the closures the passes run, and
/// the `fill`/`finish` closures those call, are marked `#[inline(always)]`
/// (without it a large closure with several callers stays a baseline
/// function). The choice changes no value (the same wrapping integer
/// arithmetic) and depends on the CPU only; the protocol tests run built
/// with `std` (the CPU's level) and without (the baseline).
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    match vector::level() {
        // SAFETY: `level` found the features each copy is built with on
        // the CPU this runs on.
        #[allow(unsafe_code)]
        vector::Level::Avx512 => return unsafe { vector::avx512(f) },
        #[allow(unsafe_code)]
        vector::Level::Avx2 => return unsafe { vector::avx2(f) },
        vector::Level::Baseline => {}
    }
    f()
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) mod vector {
    //! The copies of [`super::vectorized`] and the CPU check that picks one.

    /// The widest vector unit [`super::vectorized`] uses here.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) enum Level {
        /// AVX-512 F, DQ, BW and VL (64-bit multiplies on eight lanes).
        Avx512,
        /// AVX2 (four lanes; 64-bit multiplies from 32-bit ones).
        Avx2,
        /// The `x86_64` baseline (SSE2).
        Baseline,
    }

    impl crate::cpu_cap::Capped for Level {
        /// Caps the level (`avx512`, `avx2` or `baseline`).
        const VAR: &'static str = "HUSH_CPU_VECTOR";
        const ALL: &'static [Level] = &[Level::Avx512, Level::Avx2, Level::Baseline];
        fn name(self) -> &'static str {
            match self {
                Level::Avx512 => "avx512",
                Level::Avx2 => "avx2",
                Level::Baseline => "baseline",
            }
        }
    }

    /// The CPU's best level, capped by `HUSH_CPU_VECTOR`. Detected once
    /// per process.
    pub(crate) fn level() -> Level {
        static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            use std::arch::is_x86_feature_detected as has;
            let cap = crate::cpu_cap::from_env::<Level>();
            let best =
                if has!("avx512f") && has!("avx512dq") && has!("avx512bw") && has!("avx512vl") {
                    Level::Avx512
                } else if has!("avx2") {
                    Level::Avx2
                } else {
                    Level::Baseline
                };
            best.max(cap)
        })
    }

    /// `f()` built with AVX-512. Call only where [`level`] says `Avx512`.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
    pub(crate) unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// `f()` built with AVX2. Call only where [`level`] says `Avx2` or better.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// Runs `f(offset, chunk)` over consecutive chunks of `out`, in parallel with `std`.
pub(crate) fn for_each_chunk(out: &mut [Ring], f: impl Fn(usize, &mut [Ring]) + Sync + Send) {
    #[cfg(feature = "std")]
    if out.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| {
            vectorized(
                #[inline(always)]
                || f(i * CHUNK, c),
            )
        });
        return;
    }
    vectorized(
        #[inline(always)]
        || f(0, out),
    )
}

/// [`for_each_chunk`] over `K` outputs of one length at once:
/// `f(offset, [the chunk of each])`.
pub(crate) fn for_each_chunk_of<const K: usize>(
    outs: [&mut [Ring]; K],
    f: impl Fn(usize, [&mut [Ring]; K]) + Sync + Send,
) {
    let len = outs.first().map_or(0, |o| o.len());
    debug_assert!(outs.iter().all(|o| o.len() == len));
    #[cfg(feature = "std")]
    if len >= 2 * CHUNK {
        use rayon::prelude::*;
        let mut iters = outs.map(|o| o.chunks_mut(CHUNK));
        let parts: alloc::vec::Vec<[&mut [Ring]; K]> = (0..len.div_ceil(CHUNK))
            .map(|_| core::array::from_fn(|k| iters[k].next().unwrap_or_default()))
            .collect();
        parts.into_par_iter().enumerate().for_each(|(i, c)| {
            vectorized(
                #[inline(always)]
                || f(i * CHUNK, c),
            )
        });
        return;
    }
    vectorized(
        #[inline(always)]
        || f(0, outs),
    )
}

/// [`for_each_chunk`] over a message of `width` bytes per element, in
/// chunks of whole elements; the offset passed to `f` counts elements.
pub(crate) fn for_each_chunk_bytes(
    out: &mut [u8],
    width: usize,
    f: impl Fn(usize, &mut [u8]) + Sync + Send,
) {
    debug_assert_eq!(out.len() % width, 0);
    #[cfg(feature = "std")]
    if out.len() >= 2 * width * CHUNK {
        use rayon::prelude::*;
        out.par_chunks_mut(width * CHUNK)
            .enumerate()
            .for_each(|(i, c)| {
                vectorized(
                    #[inline(always)]
                    || f(i * CHUNK, c),
                )
            });
        return;
    }
    vectorized(
        #[inline(always)]
        || f(0, out),
    )
}

/// [`for_each_chunk`] over `words` and the matching `width`-byte slots of
/// `bytes`.
pub(crate) fn for_each_chunk_with_bytes(
    words: &mut [Ring],
    bytes: &mut [u8],
    width: usize,
    f: impl Fn(usize, &mut [Ring], &mut [u8]) + Sync + Send,
) {
    debug_assert_eq!(words.len() * width, bytes.len());
    #[cfg(feature = "std")]
    if words.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        words
            .par_chunks_mut(CHUNK)
            .zip(bytes.par_chunks_mut(width * CHUNK))
            .enumerate()
            .for_each(|(i, (w, b))| {
                vectorized(
                    #[inline(always)]
                    || f(i * CHUNK, w, b),
                )
            });
        return;
    }
    vectorized(
        #[inline(always)]
        || f(0, words, bytes),
    )
}

/// [`for_each_chunk`] over `words` and the matching bytes of a bit vector
/// `bits`, one bit per word and eight to a byte (`bits` may be longer, as a
/// message padded to whole words is; the rest is not visited).
pub(crate) fn for_each_chunk_with_bits(
    words: &mut [Ring],
    bits: &mut [u8],
    f: impl Fn(usize, &mut [Ring], &mut [u8]) + Sync + Send,
) {
    let bits = &mut bits[..words.len().div_ceil(8)];
    #[cfg(feature = "std")]
    if words.len() >= 2 * CHUNK {
        use rayon::prelude::*;
        words
            .par_chunks_mut(CHUNK)
            .zip(bits.par_chunks_mut(CHUNK / 8))
            .enumerate()
            .for_each(|(i, (w, b))| {
                vectorized(
                    #[inline(always)]
                    || f(i * CHUNK, w, b),
                )
            });
        return;
    }
    vectorized(
        #[inline(always)]
        || f(0, words, bits),
    )
}

/// Where each slice starts in their concatenation.
pub(crate) fn run_starts(slices: &[&[u64]]) -> alloc::vec::Vec<usize> {
    slices
        .iter()
        .scan(0, |acc, s| {
            let start = *acc;
            *acc += s.len();
            Some(start)
        })
        .collect()
}

/// Copies elements `off..off + out.len()` of the concatenation of `slices`
/// (starting at `starts`, from [`run_starts`]) into `out`.
pub(crate) fn gather(slices: &[&[u64]], starts: &[usize], off: usize, out: &mut [u64]) {
    let mut done = 0;
    while done < out.len() {
        let j = off + done;
        let t = starts.partition_point(|&s| s <= j) - 1;
        let src = &slices[t][j - starts[t]..];
        let n = src.len().min(out.len() - done);
        out[done..done + n].copy_from_slice(&src[..n]);
        done += n;
    }
}

/// Buffers kept for reuse: a received message becomes the next outgoing
/// one, and a protocol's intermediate vectors the next one's, so large
/// openings neither zero-fill nor page-fault fresh memory.
#[derive(Default)]
pub(crate) struct Scratch {
    bytes: Spare<u8>,
    words: Spare<Ring>,
}

impl Scratch {
    /// A buffer of exactly `len` bytes with unspecified contents.
    pub(crate) fn take(&mut self, len: usize) -> alloc::vec::Vec<u8> {
        self.bytes.take(len)
    }

    /// Returns a byte buffer for reuse.
    pub(crate) fn give(&mut self, buf: alloc::vec::Vec<u8>) {
        self.bytes.give(buf)
    }

    /// A vector of exactly `len` ring elements with unspecified contents.
    pub(crate) fn take_words(&mut self, len: usize) -> alloc::vec::Vec<Ring> {
        self.words.take(len)
    }

    /// Returns a vector of ring elements for reuse.
    pub(crate) fn give_words(&mut self, buf: alloc::vec::Vec<Ring>) {
        self.words.give(buf)
    }
}

/// Up to [`Spare::KEEP`] vectors, the largest offered.
struct Spare<T> {
    spare: alloc::vec::Vec<alloc::vec::Vec<T>>,
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Spare {
            spare: alloc::vec::Vec::new(),
        }
    }
}

impl<T: Copy + Default> Spare<T> {
    const KEEP: usize = 4;

    /// A vector of exactly `len` elements with unspecified contents.
    fn take(&mut self, len: usize) -> alloc::vec::Vec<T> {
        let best = self
            .spare
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let mut b = self.spare.swap_remove(i);
                if b.len() >= len {
                    b.truncate(len);
                } else {
                    b.resize(len, T::default());
                }
                b
            }
            None => alloc::vec![T::default(); len],
        }
    }

    /// Keeps `buf` for reuse (in place of a smaller one when full).
    fn give(&mut self, buf: alloc::vec::Vec<T>) {
        if buf.capacity() == 0 {
            return;
        }
        if self.spare.len() >= Self::KEEP {
            if let Some((i, _)) = self
                .spare
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity())
                && self.spare[i].capacity() < buf.capacity()
            {
                self.spare[i] = buf;
            }
            return;
        }
        self.spare.push(buf);
    }
}

/// `f(a[i], b[i])` for tensors of equal shape (checked by the caller).
pub(crate) fn zip_map(
    a: &RingTensor,
    b: &RingTensor,
    f: impl Fn(Ring, Ring) -> Ring + Sync + Send,
) -> RingTensor {
    debug_assert_eq!(a.shape(), b.shape());
    let (sa, sb) = (as_slice(a), as_slice(b));
    let mut out = alloc::vec![0u64; sa.len()];
    for_each_chunk(
        &mut out,
        #[inline(always)]
        |off, o| {
            let len = o.len();
            let (x, y) = (&sa[off..off + len], &sb[off..off + len]);
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        },
    );
    from_vec(a.shape(), out)
}

/// `a[i] = f(a[i], b[i])` in place, for tensors of equal shape.
pub(crate) fn zip_assign(
    a: &mut RingTensor,
    b: &RingTensor,
    f: impl Fn(Ring, Ring) -> Ring + Sync + Send,
) {
    debug_assert_eq!(a.shape(), b.shape());
    let sb = as_slice(b);
    match a.as_slice_mut() {
        Some(sa) => for_each_chunk(
            sa,
            #[inline(always)]
            |off, o| {
                let len = o.len();
                for (o, &y) in o.iter_mut().zip(&sb[off..off + len]) {
                    *o = f(*o, y);
                }
            },
        ),
        None => ndarray::Zip::from(a).and(b).for_each(|x, &y| *x = f(*x, y)),
    }
}

/// `f(a[i])`.
pub(crate) fn map(a: &RingTensor, f: impl Fn(Ring) -> Ring + Sync + Send) -> RingTensor {
    let sa = as_slice(a);
    let mut out = alloc::vec![0u64; sa.len()];
    for_each_chunk(
        &mut out,
        #[inline(always)]
        |off, o| {
            let len = o.len();
            for (o, &x) in o.iter_mut().zip(&sa[off..off + len]) {
                *o = f(x);
            }
        },
    );
    from_vec(a.shape(), out)
}

/// `a - b`.
pub(crate) fn sub(a: &RingTensor, b: &RingTensor) -> RingTensor {
    zip_map(a, b, u64::wrapping_sub)
}

/// `a + b`.
pub(crate) fn add(a: &RingTensor, b: &RingTensor) -> RingTensor {
    zip_map(a, b, u64::wrapping_add)
}

/// `a += b`.
pub(crate) fn add_assign(a: &mut RingTensor, b: &RingTensor) {
    zip_assign(a, b, u64::wrapping_add)
}

/// Asks the CPU to bring `words[at..at + n]` into the cache (one hint per
/// 64-byte line; positions past the end are skipped). For passes that read
/// dealer material at places the hardware prefetcher does not foresee: it
/// keeps several elements' cache misses in flight instead of stalling on
/// each in turn. A hint only: it changes no value and no control flow.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch(words: &[Ring], at: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    for k in (0..n).step_by(8) {
        if let Some(w) = words.get(at + k) {
            // SAFETY: `w` is a valid reference; `prefetcht0` only reads the
            // line into the cache (it never faults, and SSE is part of the
            // x86_64 baseline).
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    (w as *const Ring).cast(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (words, at, n);
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod tests {
    use super::vector;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A pass like the protocols' loops: 64-bit multiplies, shifts, a
    /// conditional negation.
    fn pass(data: &[u64], out: &mut [u64]) {
        for (o, &x) in out.iter_mut().zip(data) {
            let neg = 0u64.wrapping_sub(x >> 63);
            *o = (x ^ neg)
                .wrapping_sub(neg)
                .wrapping_mul(x | 1)
                .wrapping_add(x >> 13);
        }
    }

    #[test]
    fn every_vector_level_computes_the_same() {
        let data: Vec<u64> = (0..10_007u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
            .collect();
        let mut want = vec![0; data.len()];
        pass(&data, &mut want);
        let mut got = vec![0; data.len()];
        super::vectorized(|| pass(&data, &mut got));
        assert_eq!(got, want, "the detected level ({:?})", vector::level());
        assert_eq!(crate::cpu_cap::parse(" avx2\n"), Some(vector::Level::Avx2));
        assert_eq!(crate::cpu_cap::parse::<vector::Level>("sse2"), None);
        if std::arch::is_x86_feature_detected!("avx2") {
            got.fill(0);
            // SAFETY: the CPU has AVX2 (checked above).
            #[allow(unsafe_code)]
            unsafe {
                vector::avx2(|| pass(&data, &mut got))
            };
            assert_eq!(got, want, "avx2");
        }
        if vector::level() == vector::Level::Avx512 {
            got.fill(0);
            // SAFETY: `level` found AVX-512 on this CPU.
            #[allow(unsafe_code)]
            unsafe {
                vector::avx512(|| pass(&data, &mut got))
            };
            assert_eq!(got, want, "avx512");
        }
    }
}
