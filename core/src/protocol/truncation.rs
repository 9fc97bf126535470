//! Truncation and exact division by public integers.
//!
//! **Dealer-assisted division** (the default truncation). To compute
//! `⌊x / d⌋` for a secret `x` with `|x| < 2^61` and a public `d`, the parties
//! shift `x` to `x' = x + K` with `K = d·⌊2^62 / d⌋`, so `0 ≤ x' < 2^63`, and
//! open `c = x' + R` for a dealer pair `(R, ⌊R/d⌋, msb(R))` with `R` uniform in
//! Z_2^64 (so `c` is uniform and hides `x`). Over the integers
//! `x' = c − R + w·2^64`, where the wrap bit `w` is `msb(R)·(1 − msb(c))`
//! because `x' < 2^63` — linear in the shared `msb(R)`, so no further round.
//! Then `⌊x'/d⌋ = ⌊c/d⌋ − ⌊R/d⌋ + w·⌊2^64/d⌋ + δ` with `δ ∈ {−1, 0, 1}` from
//! the low parts, which is dropped. For `d = 2^f`, `δ ∈ {−1, 0}` and dropping
//! it is exactly stochastic rounding of `x/d`: unbiased, error below one
//! unit. Nothing can wrap, so no element ever fails catastrophically.
//!
//! **Local truncation** (SecureML, two parties): party 0 shifts its share,
//! party 1 shifts the negation of its share. No communication, but it fails
//! with probability about `|x| / 2^63` per element.

use super::{Party, TruncationMode};
use crate::backend::Backend;
use crate::channel::Channel;
use crate::elementwise::{as_slice, from_vec, into_vec};
use crate::error::{Error, Result};
use crate::preprocessing::{CorrelationRequest, DivPair, Divisor, Preprocessing};
use crate::protocol::open::LANES;
use crate::share::{Arith, ArithShare};

/// The public constants of division by `d`.
#[derive(Clone, Copy)]
pub(crate) struct DivConsts {
    d: u64,
    /// `K`: `2^62` rounded down to a multiple of `d`.
    pub(crate) k: u64,
    /// `K / d`.
    k_over_d: u64,
    /// `⌊2^64 / d⌋` mod 2^64 (0 for `d = 1`, the right value in the ring).
    q64: u64,
}

impl DivConsts {
    pub(crate) fn new(d: u64) -> Self {
        let k_over_d = (1u64 << 62) / d;
        DivConsts {
            d,
            k: k_over_d * d,
            k_over_d,
            q64: ((1u128 << 64) / d as u128) as u64,
        }
    }
}

/// One party's share of `⌊x/d⌋` from the opened `c = x + K + R` and its
/// shares `rd` of `⌊R/d⌋` and `msb` of `msb(R)`:
/// `(1 − msb(c))·⌊2^64/d⌋·msb(R) − ⌊R/d⌋`, plus `⌊c/d⌋ − K/d` at the one
/// party that `lead`s. A party that does not lead needs only `msb(c)` (the
/// other bits of `c` may be zero).
#[inline]
pub(crate) fn quotient_share(c: u64, rd: u64, msb: u64, k: &DivConsts, lead: bool) -> u64 {
    let y = wrap_term(c, msb, k.q64).wrapping_sub(rd);
    if lead {
        y.wrapping_add((c / k.d).wrapping_sub(k.k_over_d))
    } else {
        y
    }
}

/// [`quotient_share`] for `d = 2^s` (a shift, so loops vectorize).
#[inline]
pub(crate) fn quotient_share_pow2(
    c: u64,
    rd: u64,
    msb: u64,
    s: u32,
    k: &DivConsts,
    lead: bool,
) -> u64 {
    let y = wrap_term(c, msb, k.q64).wrapping_sub(rd);
    if lead {
        y.wrapping_add((c >> s).wrapping_sub(k.k_over_d))
    } else {
        y
    }
}

/// `(1 − msb(c))·q64·msb`: the wrap correction.
#[inline]
fn wrap_term(c: u64, msb: u64, q64: u64) -> u64 {
    (1 - (c >> 63)).wrapping_mul(q64).wrapping_mul(msb)
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Divides a product at scale `2^(2f)` back to scale `2^f`, by the
    /// configured [`TruncationMode`].
    pub async fn truncate(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let f = self.config.fixed_point.frac_bits();
        match self.config.truncation {
            TruncationMode::Dealer => self.div_public(x, &Divisor::Uniform(1u64 << f)).await,
            TruncationMode::Local => self.truncate_local(x, f),
        }
    }

    /// SecureML local truncation by `2^bits` (two parties only, no rounds).
    pub fn truncate_local(&self, x: &ArithShare, bits: u32) -> Result<ArithShare> {
        if self.num_parties() != 2 {
            return Err(Error::Unsupported(
                "local truncation is defined for two parties; use TruncationMode::Dealer",
            ));
        }
        let out = if self.id() == 0 {
            x.as_raw().mapv(|v| ((v as i64) >> bits) as u64)
        } else {
            x.as_raw()
                .mapv(|v| (((v.wrapping_neg() as i64) >> bits) as u64).wrapping_neg())
        };
        Ok(ArithShare::from_raw(out))
    }

    /// `x / d` for public positive integers `d` (one per element, or one for
    /// all), rounded stochastically for powers of two and within 2 units
    /// otherwise. Exact in that sense for every `|x| < 2^61`; one round.
    pub async fn div_public(&mut self, x: &ArithShare, divisor: &Divisor) -> Result<ArithShare> {
        let xs = as_slice(x.as_raw());
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| out.copy_from_slice(&xs[off..off + out.len()])
        };
        self.div_public_with(x.shape(), divisor, fill).await
    }

    /// The next division pair for `shape` and `divisor`, checked.
    pub(crate) async fn next_div_pair(
        &mut self,
        shape: &[usize],
        divisor: &Divisor,
    ) -> Result<DivPair> {
        divisor.validate(shape.iter().product())?;
        let req = CorrelationRequest::DivPair {
            shape: shape.to_vec(),
            divisor: divisor.clone(),
        };
        let pair = self.prep.next(&req).await?.into_div_pair()?;
        if [&pair.r, &pair.r_div, &pair.r_msb]
            .iter()
            .any(|t| t.shape() != shape)
        {
            return Err(Error::Shape("division pair shape mismatch".into()));
        }
        Ok(pair)
    }

    /// [`Party::div_public`] of a value whose share this party writes by
    /// chunks with `x_fill(off, out)` (elements `off..off + out.len()`), so a
    /// protocol can fuse the step that produces `x` into the division.
    pub(crate) async fn div_public_with(
        &mut self,
        shape: &[usize],
        divisor: &Divisor,
        x_fill: impl Fn(usize, &mut [u64]) + Sync + Send,
    ) -> Result<ArithShare> {
        let pair = self.next_div_pair(shape, divisor).await?;
        let me0 = self.id() == 0;
        let (r_div, r_msb) = (as_slice(&pair.r_div), as_slice(&pair.r_msb));
        // The pieces c_i = x_i + K + R_i are built in R's own buffer.
        let r = into_vec(pair.r);
        // Open c = x + K + R (party 0 adds the public K), and in the same pass
        // y = [party 0](⌊c/d⌋ − K/d) − ⌊R/d⌋ + (1 − msb(c))·⌊2^64/d⌋·msb(R).
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                let mut xb = [0u64; LANES];
                for (i, sub) in out.chunks_mut(LANES).enumerate() {
                    let o = off + i * LANES;
                    let xb = &mut xb[..sub.len()];
                    x_fill(o, xb);
                    match divisor {
                        Divisor::Uniform(d) => {
                            let k = if me0 { DivConsts::new(*d).k } else { 0 };
                            for (c, &x) in sub.iter_mut().zip(xb.iter()) {
                                *c = c.wrapping_add(k).wrapping_add(x);
                            }
                        }
                        Divisor::PerElement(ds) => {
                            for ((c, &x), &d) in sub.iter_mut().zip(xb.iter()).zip(&ds[o..]) {
                                let k = if me0 { DivConsts::new(d).k } else { 0 };
                                *c = c.wrapping_add(k).wrapping_add(x);
                            }
                        }
                    }
                }
            }
        };
        let finish = {
            #[inline(always)]
            |off: usize, vals: &mut [u64]| {
                let n = vals.len();
                let (r_div, r_msb) = (&r_div[off..off + n], &r_msb[off..off + n]);
                match divisor {
                    Divisor::Uniform(d) => {
                        let k = DivConsts::new(*d);
                        if d.is_power_of_two() {
                            let s = d.trailing_zeros();
                            for ((v, &rd), &msb) in vals.iter_mut().zip(r_div).zip(r_msb) {
                                *v = quotient_share_pow2(*v, rd, msb, s, &k, me0);
                            }
                        } else {
                            for ((v, &rd), &msb) in vals.iter_mut().zip(r_div).zip(r_msb) {
                                *v = quotient_share(*v, rd, msb, &k, me0);
                            }
                        }
                    }
                    Divisor::PerElement(ds) => {
                        for (((v, &rd), &msb), &d) in
                            vals.iter_mut().zip(r_div).zip(r_msb).zip(&ds[off..])
                        {
                            *v = quotient_share(*v, rd, msb, &DivConsts::new(d), me0);
                        }
                    }
                }
            }
        };
        let out = self.open_with::<Arith>(r, fill, finish).await?;
        Ok(ArithShare::from_raw(from_vec(shape, out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_quotients() {
        let c = DivConsts::new(1 << 16);
        assert_eq!((c.k, c.k_over_d, c.q64), (1 << 62, 1 << 46, 1 << 48));
        let c = DivConsts::new(3);
        assert_eq!(c.k % 3, 0);
        assert_eq!(c.k / 3, c.k_over_d);
        assert!((1u64 << 62) - c.k < 3);
        assert_eq!(c.q64, u64::MAX / 3);
        assert_eq!(DivConsts::new(1).q64, 0);
    }
}
