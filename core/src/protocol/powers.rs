//! Polynomials of an opened, masked value: one opening, then local work.
//!
//! The dealer division of `truncation.rs` opens `c = v + K + R` and writes
//! the quotient as `y = P + S`: `P = ⌊c/2^s⌋ − K/2^s` is public, and `S` is
//! one of two values the dealer knows (`−⌊R/2^s⌋`, plus `msb(R)·2^(bits−s)`
//! when the top bit of `c` is clear), picked by that public bit. So `y` is
//! held in *masked form*, and any polynomial in it expands around the
//! public `P`:
//!
//! `g(P + S) = Σ_j E_j(P)·S^j`, with `E_j(P) = g^(j)(P)/j!` public,
//!
//! which is local given shares of `S^1..=S^n` for both candidates
//! ([`CorrelationRequest::PowerMask`]). `div_and_square` is the case
//! `g(y) = y²`; here the degree is up to [`MAX_POWER_DEGREE`] and the
//! arithmetic is mod 2^128, so `y⁴` of a 30-bit fixed-point value, or a
//! degree-5 polynomial of a 20-bit one, is computed exactly, and the next
//! opening divides the 128-bit result straight back to a 64-bit scale.
//!
//! **Sending only the bits above the quotient.** The division needs the
//! opened `c = w + R` (`w = v + K`, below half the ring) only for `⌊c/2^s⌋`
//! and `c`'s top bit, and it is exact for *any* `w` in `[0, 2^(bits−1))`:
//! the dealer's candidates depend on `R` alone. So each party may clear
//! the low `d` bits of its piece and send the rest: the pieces then sum to
//! `c' = c − δ = (w − δ) + R` with `δ` the sum of the cleared parts,
//! `0 ≤ δ < n·2^d`, and the division of `c'` is exact for `w − δ`.
//! With `n·2^d ≤ 2^s` that loses at most one unit of the quotient, and
//! with `v ≥ n·2^d − K` (which `|v| < K − 2^s` gives) `w − δ` is still in
//! range: no failure probability, only that unit. [`unsent_bytes`] picks
//! `d` in whole bytes, so an opening that divides by `2^31` sends 5 bytes
//! of each piece and one that divides by `2^20`, 6 ([`Party::exchange_top`]).
//!
//! **Opening a 128-bit value with 64 bits** is the same argument: to divide
//! a 128-bit `V` (`|V| < 2^126 − 2^s`) by `2^s` with `s ≥ 64`, each party
//! sends (the top bytes of) the high word of its piece of
//! `c = V + 2^126 + R`: `d ≥ 64`, and the quotient is off by at most
//! `⌈n·2^d / 2^s⌉` units (one unit once `s ≥ 64 + log2 n`).

use super::Party;
use crate::backend::Backend;
use crate::channel::Channel;
use crate::chebyshev;
use crate::elementwise::{as_slice, for_each_chunk, from_vec, prefetch};
use crate::error::{Error, Result};
use crate::preprocessing::{CorrelationRequest, MAX_POWER_DEGREE, Preprocessing, power_mask_words};
use crate::protocol::open::{LANES, PeerSum};
use crate::ring::{put_wide, wide};
use crate::share::ArithShare;
use alloc::vec;
use alloc::vec::Vec;

/// A shared value about to be opened in masked form.
#[derive(Clone, Copy)]
pub(crate) enum Masked<'a> {
    /// 64-bit shares, `|v| < 2^62 − 2^shift`.
    Narrow(&'a [u64]),
    /// 128-bit shares as word pairs (low first), `|v| < 2^126 − 2^shift`.
    Wide(&'a [u64]),
}

impl Masked<'_> {
    fn len(&self) -> usize {
        match self {
            Masked::Narrow(x) => x.len(),
            Masked::Wide(w) => w.len() / 2,
        }
    }
}

/// The offset `K` that makes the opened value non-negative, for 64-bit
/// (`2^62`) and 128-bit (`2^126`) values.
const NARROW_K: u64 = 1 << 62;
const WIDE_K: u128 = 1 << 126;

/// `round(m_k · 2^(top − k·bits))` for every `k`, mod 2^128: a polynomial
/// with real coefficients `m` in a variable at `bits` fractional bits, its
/// value at `top` bits. `None` if a coefficient does not fit.
pub(crate) fn ring_coeffs(m: &[f64], top: i32, bits: i32) -> Option<Vec<u128>> {
    m.iter()
        .enumerate()
        .map(|(k, &mk)| {
            let v = libm::round(mk * libm::pow(2.0, (top - k as i32 * bits) as f64));
            (libm::fabs(v) < 1.7e38).then_some(v as i128 as u128)
        })
        .collect()
}

/// A polynomial for `g` on `[lo, hi]` in `y − mid`, for `y` at `bits`
/// fractional bits and `mid` the interval's middle (so every power of the
/// centred variable is at most `((hi − lo)/2)^k`).
pub(crate) struct CentredPoly {
    /// Ring coefficients, lowest first; the value is at `top` bits.
    pub(crate) coeffs: Vec<u128>,
    /// `round(mid · 2^bits)` as a ring integer.
    pub(crate) center: u128,
    /// The scale of the polynomial's value.
    pub(crate) top: i32,
}

/// The degree-`degree` Chebyshev interpolant of `g` on `[lo, hi]` as a
/// [`CentredPoly`]; `top(bound)` picks the value's scale from a bound on
/// `|g|` there (the sum of the absolute Chebyshev coefficients). `None` if a
/// coefficient does not fit.
pub(crate) fn centred_poly(
    g: impl Fn(f64) -> f64,
    lo: f64,
    hi: f64,
    degree: usize,
    bits: i32,
    top: impl FnOnce(f64) -> i32,
) -> Option<CentredPoly> {
    let (mid, half) = ((lo + hi) / 2.0, (hi - lo) / 2.0);
    let fit = chebyshev::fit(|w| g(mid + w), -half, half, degree);
    let top = top(fit.iter().map(|c| libm::fabs(*c)).sum());
    Some(CentredPoly {
        coeffs: ring_coeffs(&chebyshev::monomial(&fit, -half, half), top, bits)?,
        center: libm::round(mid * libm::pow(2.0, bits as f64)) as i128 as u128,
        top,
    })
}

/// 64-bit shares from the low words of 128-bit shares (word pairs): the
/// result of a chain whose last value fits 64 bits.
pub(crate) fn low_share(v: &[u64], shape: &[usize]) -> ArithShare {
    ArithShare::from_raw(from_vec(shape, v.iter().step_by(2).copied().collect()))
}

/// `g(P + S)`'s coefficients in `S` for public `P`: the Taylor shift of `g`
/// (coefficients in `a`, lowest first) by `P`, in place, mod 2^128.
#[inline]
fn taylor_shift(a: &mut [u128], p: u128) {
    let n = a.len() - 1;
    for i in 0..n {
        for j in (i..n).rev() {
            a[j] = a[j].wrapping_add(p.wrapping_mul(a[j + 1]));
        }
    }
}

/// Element `j` of a word-pair slice.
#[inline(always)]
fn pair(w: &[u64], j: usize) -> u128 {
    wide(w[2 * j], w[2 * j + 1])
}

/// Element `j` of a slice of `W`-word values (`W` = 2: word pairs, mod
/// 2^128; `W` = 1: single words, mod 2^64, whose high word is left zero —
/// the sums below are then right mod 2^64, all that is kept of them).
#[inline(always)]
fn value<const W: usize>(w: &[u64], j: usize) -> u128 {
    if W == 2 { pair(w, j) } else { w[j] as u128 }
}

/// This party's share of `g(P + S)` for a polynomial `g` of degree `N`
/// (`coeffs`, lowest first), given its shares `pw` of `S^1..=S^N`.
#[inline(always)]
fn poly_share<const N: usize, const W: usize>(
    coeffs: &[u128],
    p: u128,
    pw: &[u64],
    lead: bool,
) -> u128 {
    let mut a = [0u128; MAX_POWER_DEGREE as usize + 1];
    a[..=N].copy_from_slice(&coeffs[..=N]);
    taylor_shift(&mut a[..=N], p);
    let mut share = if lead { a[0] } else { 0 };
    for j in 0..N {
        share = share.wrapping_add(a[j + 1].wrapping_mul(value::<W>(pw, j)));
    }
    share
}

/// [`poly_share`] for `g(y) = y^K`: `Σ_j C(K, j)·P^(K−j)·S^j`, with the
/// binomials folded to constants.
#[inline(always)]
fn power_share<const K: usize, const W: usize>(p: u128, pw: &[u64], lead: bool) -> u128 {
    let mut pp = [1u128; MAX_POWER_DEGREE as usize + 1];
    for j in 1..=K {
        pp[j] = pp[j - 1].wrapping_mul(p);
    }
    let mut share = if lead { pp[K] } else { 0 };
    let mut binom = 1u128;
    for j in 1..=K {
        binom = binom * (K - j + 1) as u128 / j as u128;
        share = share.wrapping_add(
            binom
                .wrapping_mul(pp[K - j])
                .wrapping_mul(value::<W>(pw, j - 1)),
        );
    }
    share
}

/// Bytes of every piece an opening that divides by `2^below` (counting
/// from the word sent) leaves unsent among `n` parties: the most whose
/// pieces' low parts sum below `2^below` (`n·2^(8·k) ≤ 2^below`), so the
/// opened value loses at most one unit of the quotient; at most 7.
pub(crate) fn unsent_bytes(below: u32, n: usize) -> usize {
    let log_n = usize::BITS - n.saturating_sub(1).leading_zeros();
    ((below.saturating_sub(log_n) / 8) as usize).min(7)
}

/// How many elements ahead [`finish_pass`] asks for the dealer's powers:
/// both candidates of every element are prefetched (which one is used is
/// known only after the opening), so that the misses of a couple of dozen
/// elements overlap. Measured on the exp chain at 1e5 (Sapphire Rapids):
/// 6 → 15 ms, 24 → 13 ms, 48 → 13.5 ms; none: 18.5 ms.
const AHEAD: usize = 24;

/// The pass after the exchange: from this party's pieces `mine` and the
/// peers' sum, `P` and the candidate of every element, and `share(P, S
/// powers)` into `out` — `W` words per element and per power (2: mod
/// 2^128, word pairs; 1: mod 2^64).
#[allow(clippy::too_many_arguments)]
fn finish_pass<const W: usize>(
    out: &mut [u64],
    mine: &[u64],
    peers: &PeerSum,
    powers: &[u64],
    degree: usize,
    down: u32,
    k_over: u128,
    share: impl Fn(u128, &[u64]) -> u128 + Sync + Send,
) {
    // Per element: both candidates' powers, `W·degree` words each.
    let per = W * degree;
    for_each_chunk(
        out,
        #[inline(always)]
        |off, chunk| {
            let first = off / W;
            let mut buf = [0u64; LANES];
            for (lane, sub) in chunk.chunks_mut(W * LANES).enumerate() {
                let o = first + lane * LANES;
                let m = sub.len() / W;
                peers.read(o, &mut buf[..m]);
                for (((slot, &peer), &mine), i) in sub
                    .chunks_exact_mut(W)
                    .zip(&buf[..m])
                    .zip(&mine[o..o + m])
                    .zip(o..)
                {
                    prefetch(powers, (i + AHEAD) * 2 * per, 2 * per);
                    let c = mine.wrapping_add(peer);
                    let p = ((c >> down) as u128).wrapping_sub(k_over);
                    let keep = (1 - (c >> 63)) as usize;
                    let at = i * 2 * per + keep * per;
                    let v = share(p, &powers[at..at + per]);
                    if W == 2 {
                        put_wide(slot, v);
                    } else {
                        slot[0] = v as u64;
                    }
                }
            }
        },
    );
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Opens `v` in masked form and returns this party's shares, mod 2^128
    /// (word pairs, low first) when `wide_out`, mod 2^64 (one word per
    /// element) otherwise, of `g(y)` for `y = ⌊v / 2^shift⌋` (within one
    /// unit either way; up to `n` units below for a wide value with
    /// `shift < 64 + log2 n`, see the module notes) and `g(y) = Σ
    /// coeffs[k]·(y − center)^k`. `v` must lie in `(2^shift − K, K)`, `K`
    /// being `2^62` for a narrow value and `2^126` for a wide one. One
    /// round, at most one word per element from each party to each other
    /// (the bytes below the quotient are not sent). A result mod 2^64 takes
    /// half the dealer's material: use it whenever the value fits 64 bits.
    /// The result may be handed back with [`Party::give_words`] once used.
    pub(crate) async fn poly_of_opened(
        &mut self,
        v: Masked<'_>,
        shift: u32,
        center: u128,
        coeffs: &[u128],
        wide_out: bool,
    ) -> Result<Vec<u64>> {
        let degree = coeffs.len().saturating_sub(1);
        if degree == 0 || degree > MAX_POWER_DEGREE as usize {
            return Err(Error::Usage("masked polynomial degree out of range".into()));
        }
        let len = v.len();
        let wide_v = matches!(v, Masked::Wide(_));
        let req = CorrelationRequest::PowerMask {
            shape: vec![len],
            wide: wide_v,
            shift,
            degree: degree as u32,
            wide_powers: wide_out,
        };
        req.validate()?;
        let mask = self.prep.next(&req).await?.into_power_mask()?;
        let r_words = if wide_v { 2 * len } else { len };
        let out_words = if wide_out { 2 } else { 1 };
        if mask.r.len() != r_words || mask.powers.len() != len * power_mask_words(degree, wide_out)
        {
            return Err(Error::Shape("power mask shape mismatch".into()));
        }
        let (r, powers) = (as_slice(&mask.r), as_slice(&mask.powers));
        let lead = self.id() == 0;
        // This party's pieces c_i = v_i + R_i (+ K at party 0): whole when
        // narrow, the high word when wide.
        // The low bytes of every piece below the quotient (less a bit per
        // doubling of the parties, whose low parts' sum is what is lost)
        // are not sent: see the module notes.
        let below = if wide_v { shift - 64 } else { shift };
        let dropped = unsent_bytes(below, self.num_parties());
        let keep = self.scratch.take_words(len);
        let mut ex = match v {
            Masked::Wide(w) => {
                let k = if lead { WIDE_K } else { 0 };
                let fill = {
                    #[inline(always)]
                    |off: usize, out: &mut [u64]| {
                        for (o, i) in out.iter_mut().zip(off..) {
                            let c = pair(w, i).wrapping_add(pair(&r, i)).wrapping_add(k);
                            *o = (c >> 64) as u64;
                        }
                    }
                };
                self.exchange_top(dropped, fill, keep).await?
            }
            Masked::Narrow(x) => {
                let k = if lead { NARROW_K } else { 0 };
                let fill = {
                    #[inline(always)]
                    |off: usize, out: &mut [u64]| {
                        for ((o, &x), &r) in out.iter_mut().zip(&x[off..]).zip(&r[off..]) {
                            *o = x.wrapping_add(r).wrapping_add(k);
                        }
                    }
                };
                self.exchange_top(dropped, fill, keep).await?
            }
        };
        let mine = ex.mine.take().unwrap_or_default();
        // P = ⌊c / 2^shift⌋ − K / 2^shift, from the (high word of) c.
        let (down, k_over) = if wide_v {
            (shift - 64, 1u128 << (126 - shift))
        } else {
            (shift, 1u128 << (62 - shift))
        };
        // (y − center) = (P − center) + S: the centre goes with the public part.
        let k_over = k_over.wrapping_add(center);
        // Every element of `out` is written below.
        let mut out = self.scratch.take_words(out_words * len);
        let power = coeffs[..degree].iter().all(|&c| c == 0) && coeffs[degree] == 1;
        // One monomorphized pass per degree and width, so the per-element
        // work unrolls.
        macro_rules! pass {
            ($w:literal, $share:expr) => {
                finish_pass::<$w>(
                    &mut out, &mine, &ex.peers, &powers, degree, down, k_over, $share,
                )
            };
        }
        macro_rules! by_degree {
            ($w:literal: $($n:literal)*) => {
                match (power, degree) {
                    (true, 2) => pass!($w, |p, pw| power_share::<2, $w>(p, pw, lead)),
                    (true, 4) => pass!($w, |p, pw| power_share::<4, $w>(p, pw, lead)),
                    $((_, $n) => pass!($w, |p, pw| poly_share::<$n, $w>(coeffs, p, pw, lead)),)*
                    _ => unreachable!("degree checked above"),
                }
            };
        }
        if wide_out {
            by_degree!(2: 1 2 3 4 5 6 7 8);
        } else {
            by_degree!(1: 1 2 3 4 5 6 7 8);
        }
        self.recycle(ex);
        self.scratch.give_words(mine);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `g(y)` mod 2^128 for coefficients lowest first.
    #[cfg(feature = "std")]
    fn eval(coeffs: &[u128], y: i128) -> u128 {
        coeffs
            .iter()
            .rev()
            .fold(0u128, |acc, &c| acc.wrapping_mul(y as u128).wrapping_add(c))
    }

    /// The 128-bit sum of the parties' word-pair shares of element `i`.
    #[cfg(feature = "std")]
    fn total(outs: &[Vec<u64>], i: usize) -> u128 {
        outs.iter().fold(0u128, |acc, w| {
            acc.wrapping_add(wide(w[2 * i], w[2 * i + 1]))
        })
    }

    /// 64-bit and 128-bit values opened in masked form give shares of the
    /// polynomial of their quotient — exact for a 64-bit value and no
    /// division, within the stated units otherwise — in one round of one
    /// word per element to each peer, less the whole bytes below the
    /// quotient, for two and three parties.
    #[cfg(feature = "std")]
    #[test]
    fn polynomials_of_opened_values_match_the_clear() {
        use crate::elementwise::from_vec;
        use crate::protocol::Config;
        use crate::protocol::testing::run;
        use crate::share::Arith;
        let narrow: Vec<i64> = [0, 1, -1, 31, -32, 1 << 40, -(1 << 40) + 3, (1 << 61) - 1]
            .into_iter()
            .chain((0..100).map(|i: i64| (i * 0x9E37_79B9_7F4A) % (1 << 44) - (1 << 43)))
            .collect();
        let wide_v: Vec<i128> = [0i128, 5, -5, 1 << 100, -(1 << 100), (1 << 125) + 12345]
            .into_iter()
            .chain((0..100).map(|i: i128| (i * 0x9E37_79B9_7F4A_7C15_F39C) % (1 << 110)))
            .collect();
        let g = [7u128, (-3i128) as u128, 0, 1];
        for n in [2, 3] {
            for shift in [0u32, 5, 40, 60] {
                let len = narrow.len();
                let x = from_vec(&[len], narrow.iter().map(|&v| v as u64).collect());
                let outs = run(n, 3, Config::default(), |mut p| {
                    let x = &x;
                    async move {
                        let me = p.id();
                        let xa = p.input::<Arith>(0, (me == 0).then_some(x), &[len]).await?;
                        let before = p.stats();
                        let xa = as_slice(xa.as_raw());
                        let v = p
                            .poly_of_opened(Masked::Narrow(&xa), shift, 0, &g, true)
                            .await?;
                        Ok((v, p.stats().since(&before)))
                    }
                });
                let (vals, stats): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
                // n = 2: 8 bytes per piece below a shift of 9, then one
                // fewer per 8 bits of shift; n = 3: one bit later
                let width = 8 - ((shift as usize).saturating_sub(n - 1) / 8).min(7);
                assert_eq!(width, 8 - unsent_bytes(shift, n));
                for st in &stats {
                    assert_eq!(st.rounds, 1);
                    assert_eq!(st.bytes_sent, (len * width * (n - 1)) as u64);
                }
                for (i, &v) in narrow.iter().enumerate() {
                    let y = (v >> shift) as i128;
                    let got = total(&vals, i);
                    // exact without a division; one unit up from the
                    // dealer's rounding, one down once bytes are left out
                    let lo = if width < 8 { -1 } else { 0 };
                    let hi = if shift > 0 { 1 } else { 0 };
                    let ok = (lo..=hi).any(|d| got == eval(&g, y + d));
                    assert!(ok, "n={n} shift={shift} x={v}");
                }
            }
            // 128-bit values: the parties' pieces are arbitrary splits.
            let len = wide_v.len();
            // (shift, g, bytes sent per piece: the high word less its
            // bytes below the quotient)
            for (shift, g, width) in [
                (70, &[0u128, 0, 0, 0, 1][..], 8),
                (70, &[0, 0, 1], 8),
                (100, &[9, 0, 1, 1], 4),
                (125, &[0, 1], 1),
            ] {
                let outs = run(n, 4, Config::default(), |mut p| {
                    let wide_v = &wide_v;
                    async move {
                        let me = p.id() as u128;
                        let mut w = Vec::with_capacity(2 * len);
                        for (i, &v) in wide_v.iter().enumerate() {
                            let noise =
                                (i as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_CD21);
                            let piece = match me {
                                0 => (v as u128).wrapping_sub(noise.wrapping_mul(n as u128 - 1)),
                                _ => noise,
                            };
                            w.push(piece as u64);
                            w.push((piece >> 64) as u64);
                        }
                        let before = p.stats();
                        let v = p
                            .poly_of_opened(Masked::Wide(&w), shift, 0, g, true)
                            .await?;
                        Ok((v, p.stats().since(&before)))
                    }
                });
                let (outs, stats): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
                assert_eq!(width, 8 - unsent_bytes(shift - 64, n));
                for st in &stats {
                    assert_eq!(st.bytes_sent, (len * width * (n - 1)) as u64);
                }
                for (i, &v) in wide_v.iter().enumerate() {
                    let y = v >> shift;
                    let got = total(&outs, i);
                    // the parts left out sum below 2^shift: one unit at most
                    let ok = (-1..=1).any(|d| got == eval(g, y + d));
                    assert!(ok, "n={n} shift={shift} V={v}");
                }
            }
        }
    }

    #[test]
    fn taylor_shift_expands_around_a_point() {
        // g(y) = 3 + 2y − y² + 5y³, shifted by P = −7 (mod 2^128).
        let g = [3i128, 2, -1, 5];
        let p = -7i128;
        let mut a: Vec<u128> = g.iter().map(|&c| c as u128).collect();
        taylor_shift(&mut a, p as u128);
        for s in [-3i128, 0, 1, 10, 1 << 40] {
            let direct = g
                .iter()
                .rev()
                .fold(0i128, |acc, &c| acc.wrapping_mul(p + s).wrapping_add(c));
            let shifted = a
                .iter()
                .rev()
                .fold(0u128, |acc, &c| acc.wrapping_mul(s as u128).wrapping_add(c));
            assert_eq!(shifted, direct as u128, "S = {s}");
        }
    }
}
