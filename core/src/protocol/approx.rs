//! Non-linear functions by range reduction and Chebyshev polynomials.
//!
//! CrypTen evaluates `exp` by the limit `(1 + x/2^n)^(2^n)`, the reciprocal
//! and inverse square root by Newton iterations from a fixed initial guess,
//! and `log` by Householder iterations; each trades accuracy for rounds over
//! a narrow input range. Here every function is reduced to a fixed interval
//! where a Chebyshev interpolant of modest degree is accurate to ~1e-6, and
//! evaluated in the Chebyshev basis (all `T_k` in `[-1, 1]`, so fixed-point
//! rounding is not amplified) with the log-depth recurrence of
//! [`crate::chebyshev::schedule`]:
//!
//! - `exp(x)` = `p(x/2^a)^(2^a)` with `|x/2^a| ≤ 1/4`, evaluated not in the
//!   Chebyshev basis but as a chain of masked openings with a local 128-bit
//!   polynomial and 64-bit squares in between ([`super::exp`]): 8 rounds.
//! - `1/x`, `1/√x`, `√x`, `ln x` for positive `x`: the exponent `j` with
//!   `x ∈ [2^j, 2^(j+1))` is found by comparing `x` with every power of two
//!   of the configured range in one batch; `x' = x·2^(-j) ∈ [1, 2)` goes
//!   through a polynomial and a public per-exponent factor (`2^(-j)`,
//!   `2^(-j/2)`, `2^(j/2)`, `j·ln 2`) selected by the one-hot exponent.
//! - sigmoid from `1/(1 + e^(-|x|))` (no normalization needed; the
//!   polynomial for `1/(1 + e)` rides on exp's chain), tanh from
//!   sigmoid, erf by a polynomial on the clipped input, softmax as
//!   `e^d·(1/Σe^d)` with `d` each row less its maximum and the sum
//!   normalized.
//!
//! Intermediate values carry 24 fractional bits ([`WORK`]) whatever the
//! model's fixed-point setting; results come back at the model's scale.

use super::Party;
use super::compare::concat;
use super::exp::ExpPlan;
use super::powers::{Masked, centred_poly};
use crate::backend::Backend;
use crate::bilinear::BilinearOp;
use crate::bits::BitShare;
use crate::channel::Channel;
use crate::chebyshev;
use crate::elementwise::{as_slice, from_vec};
use crate::error::{Error, Result};
use crate::preprocessing::{Divisor, Preprocessing, power_mask_shift_fits};
use crate::ring::RingTensor;
use crate::share::ArithShare;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::IxDyn;

/// Fractional bits of intermediate values inside the approximations.
pub const WORK: u32 = 24;
/// Degree of the polynomials applied to a value in masked form
/// ([`Party::poly_masked`]).
const MASKED_DEGREE: usize = 6;
/// Fractional bits of public polynomial coefficients.
const COEF: u32 = 24;

/// Settings of the approximations; every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproxConfig {
    /// `exp` is accurate for inputs in `[-exp_max_abs, exp_max_abs]`
    /// (default 16, at most 40); outside it the result is wrong, and so are
    /// results of `2^(57 − f)` and more (`e^28.4` at `f = 16`). Above 16,
    /// `x` enters with `22 − ⌈log2 4r⌉` fractional bits (14 at 40). Softmax
    /// floors its inputs, less their row's maximum, at `−r`; sigmoid and
    /// tanh clip to it.
    pub exp_max_abs: f64,
    /// Degree of the Chebyshev polynomial for softmax's normalized
    /// reciprocal, `1/S'` for `S' ∈ [1, 2)` (default 7). The mantissa
    /// polynomials of `1/x`, `1/√x`, `√x`, `ln x` are applied in masked form
    /// at a fixed degree (6).
    pub degree: usize,
    /// Inputs of `1/x`, `1/√x`, `√x` and `ln x` must lie in
    /// `[2^norm_lo, 2^(norm_hi+1))` (default `[2^-8, 2^25)`).
    pub norm_lo: i32,
    /// See [`ApproxConfig::norm_lo`].
    pub norm_hi: i32,
    /// `erf` is evaluated on `[-erf_clip, erf_clip]` and saturates to ±1
    /// outside (default 4: `1 − erf(4) < 2e-8`).
    pub erf_clip: f64,
    /// Degree of the odd polynomial for `erf` on the clipped range (default 21).
    pub erf_degree: usize,
}

impl Default for ApproxConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl ApproxConfig {
    /// The documented defaults.
    pub const DEFAULT: ApproxConfig = ApproxConfig {
        exp_max_abs: 16.0,
        degree: 7,
        norm_lo: -8,
        norm_hi: 24,
        erf_clip: 4.0,
        erf_degree: 21,
    };
}

/// A share with its own number of fractional bits.
#[derive(Clone)]
struct Fx {
    v: ArithShare,
    f: u32,
}

/// A function of the exponent `j` and the fixed-point scale to encode it at,
/// for [`Party::exponent_factors`].
type ExponentFn<'a> = (&'a dyn Fn(i32) -> f64, u32);

fn scalar(v: u64) -> RingTensor {
    RingTensor::from_elem(IxDyn(&[]), v)
}

/// `round(v · 2^bits)` as a ring element.
fn fixed(v: f64, bits: u32) -> Result<u64> {
    let x = v * libm::pow(2.0, bits as f64);
    if !x.is_finite() || libm::fabs(x) >= 9.2e18 {
        return Err(Error::Encoding(format!(
            "{v} does not fit at {bits} fractional bits"
        )));
    }
    Ok(libm::round(x) as i64 as u64)
}

fn log2(v: f64) -> f64 {
    libm::log2(v)
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    fn frac(&self) -> u32 {
        self.config.fixed_point.frac_bits()
    }

    /// Elementwise products of pairs, each brought from scale `fa + fb` to
    /// `out_f`: one Beaver round and one division round for the whole batch.
    async fn mul_fx(&mut self, pairs: &[(&Fx, &Fx)], out_f: u32) -> Result<Vec<Fx>> {
        let mut shifts = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            if a.v.len() != b.v.len() {
                return Err(Error::Shape("product operands differ in length".into()));
            }
            shifts.push(
                (a.f + b.f)
                    .checked_sub(out_f)
                    .ok_or_else(|| Error::Usage("product scale below the output scale".into()))?,
            );
        }
        // A pair of one value with itself is a square: half the opening.
        let square = |(a, b): &(&Fx, &Fx)| core::ptr::eq(*a, *b);
        let products: Vec<_> = pairs.iter().filter(|p| !square(p)).collect();
        let xs = concat(&products.iter().map(|(a, _)| &a.v).collect::<Vec<_>>());
        let ys = concat(&products.iter().map(|(_, b)| &b.v).collect::<Vec<_>>());
        let ss = concat(
            &pairs
                .iter()
                .filter(|p| square(p))
                .map(|(a, _)| &a.v)
                .collect::<Vec<_>>(),
        );
        let (zp, zs) = self.products_and_squares(&xs, &ys, &ss).await?;
        let (zp, zs) = (as_slice(zp.as_raw()), as_slice(zs.as_raw()));
        let mut z = Vec::with_capacity(zp.len() + zs.len());
        let (mut ip, mut is) = (0, 0);
        for p in pairs {
            let n = p.0.v.len();
            if square(p) {
                z.extend_from_slice(&zs[is..is + n]);
                is += n;
            } else {
                z.extend_from_slice(&zp[ip..ip + n]);
                ip += n;
            }
        }
        let len = z.len();
        let z = ArithShare::from_raw(from_vec(&[len], z));
        let divisor = if shifts.iter().all(|&s| s == shifts[0]) {
            Divisor::Uniform(1u64 << shifts.first().copied().unwrap_or(0))
        } else {
            Divisor::PerElement(
                pairs
                    .iter()
                    .zip(&shifts)
                    .flat_map(|((a, _), &s)| core::iter::repeat_n(1u64 << s, a.v.len()))
                    .collect(),
            )
        };
        let q = self.div_public(&z, &divisor).await?;
        let qs = as_slice(q.as_raw());
        let mut at = 0;
        Ok(pairs
            .iter()
            .map(|(a, _)| {
                let n = a.v.len();
                let v = from_vec(a.v.shape(), qs[at..at + n].to_vec());
                at += n;
                Fx {
                    v: ArithShare::from_raw(v),
                    f: out_f,
                }
            })
            .collect())
    }

    /// `x` at a higher scale `g` (exact, local).
    fn upscale(&self, x: &Fx, g: u32) -> Result<Fx> {
        let k = g
            .checked_sub(x.f)
            .ok_or_else(|| Error::Usage("upscale to a lower scale".into()))?;
        Ok(Fx {
            v: self.mul_public_int(&x.v, &scalar(1u64 << k))?,
            f: g,
        })
    }

    /// `x` at scale `g`: local if `g ≥ x.f`, else one division round.
    async fn rescale(&mut self, x: &Fx, g: u32) -> Result<Fx> {
        if g >= x.f {
            return self.upscale(x, g);
        }
        let v = self
            .div_public(&x.v, &Divisor::Uniform(1u64 << (x.f - g)))
            .await?;
        Ok(Fx { v, f: g })
    }

    /// `a·x + b` for public reals `a`, `b`, where `a` is a power of two times
    /// an integer small enough to stay exact: used for the affine maps onto
    /// `[-1, 1]`. Local.
    fn affine_int(&self, x: &Fx, a: i64, b: f64) -> Result<Fx> {
        let v = self.mul_public_int(&x.v, &scalar(a as u64))?;
        let v = self.add_public(&v, &scalar(fixed(b, x.f)?))?;
        Ok(Fx { v, f: x.f })
    }

    /// `Σ c_k T_k(t)` for `t` at scale [`WORK`] with `|t| ≤ 1`, at scale
    /// `out_f`. Rounds: `2·⌈log2 degree⌉ + 1`.
    async fn chebyshev(&mut self, t: &Fx, c: &[f64], out_f: u32) -> Result<Fx> {
        let sum = self.chebyshev_sum(t, c).await?;
        self.rescale(&sum, out_f).await
    }

    /// [`Party::chebyshev`] before its last division: the sum at scale
    /// `WORK + COEF`. Rounds: `2·⌈log2 degree⌉`.
    async fn chebyshev_sum(&mut self, t: &Fx, c: &[f64]) -> Result<Fx> {
        if t.f != WORK {
            return Err(Error::Usage(
                "Chebyshev input must be at the working scale".into(),
            ));
        }
        let degree = c.len().saturating_sub(1);
        let mut tk: Vec<Option<Fx>> = vec![None; degree + 1];
        if degree >= 1 {
            tk[1] = Some(t.clone());
        }
        for level in chebyshev::schedule(degree) {
            let pairs: Vec<(&Fx, &Fx)> = level
                .iter()
                .map(|&(_, a, b, _)| match (&tk[a], &tk[b]) {
                    (Some(x), Some(y)) => Ok((x, y)),
                    _ => Err(Error::Usage("Chebyshev schedule out of order".into())),
                })
                .collect::<Result<_>>()?;
            let prods = self.mul_fx(&pairs, WORK).await?;
            for (&(k, _, _, c_idx), p) in level.iter().zip(prods) {
                let two_p = self.mul_public_int(&p.v, &scalar(2))?;
                let v = if c_idx == 0 {
                    self.add_public(&two_p, &scalar((1u64 << WORK).wrapping_neg()))?
                } else {
                    let prev = tk[c_idx]
                        .as_ref()
                        .ok_or_else(|| Error::Usage("Chebyshev schedule out of order".into()))?;
                    self.sub(&two_p, &prev.v)?
                };
                tk[k] = Some(Fx { v, f: WORK });
            }
        }
        // Σ c_k T_k at scale WORK + COEF, then one division to out_f.
        let shape = t.v.shape().to_vec();
        let mut acc = ArithShare::from_raw(RingTensor::zeros(IxDyn(&shape)));
        for (k, &ck) in c.iter().enumerate().skip(1) {
            if ck == 0.0 {
                continue;
            }
            let term = tk[k]
                .as_ref()
                .ok_or_else(|| Error::Usage("missing Chebyshev term".into()))?;
            let scaled = self.mul_public_int(&term.v, &scalar(fixed(ck, COEF)?))?;
            acc = self.add(&acc, &scaled)?;
        }
        let c0 = c.first().copied().unwrap_or(0.0);
        acc = self.add_public(&acc, &scalar(fixed(c0, WORK + COEF)?))?;
        Ok(Fx {
            v: acc,
            f: WORK + COEF,
        })
    }

    /// `e^x` at scale `out_f`, for `x` at the model's scale in
    /// `[lo·r, hi·r]` with `r` = `exp_max_abs` (`lo`, `hi` ∈ {-1, 0, 1}), by
    /// a chain of masked openings ([`super::exp`]).
    async fn exp_fx(&mut self, x: &ArithShare, lo: f64, hi: f64, out_f: u32) -> Result<Fx> {
        let r = self.config.approx.exp_max_abs;
        if !(r > 0.0 && r <= 40.0) {
            return Err(Error::Usage("exp_max_abs must lie in (0, 40]".into()));
        }
        let plan = ExpPlan::new(lo * r, hi * r, self.frac(), out_f).ok_or(Error::Unsupported(
            "no exp schedule fits this range and fixed-point setting",
        ))?;
        let v = self.exp_by_powers(x, &plan).await?;
        Ok(Fx { v, f: out_f })
    }

    /// `e^x` for `x` in `[-exp_max_abs, exp_max_abs]` (default ±16).
    /// Rounds: 5 with the defaults.
    pub async fn exp(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let f = self.frac();
        Ok(self.exp_fx(x, -1.0, 1.0, f).await?.v)
    }

    /// The exponent of `x ∈ (0, 2^(hi+1))` over `[lo, hi]` as thermometer
    /// code (no exponent below `2^lo`; outside that range, that of
    /// `x mod 2^(hi+1)`, which is meaningless): binary-shared bits, plane
    /// `j − lo` holding `[x ≥ 2^j]` for every element. 13 rounds.
    ///
    /// `[x ≥ 2^j]` is "one of bits `j+f … hi+f` of `x` is set": the low
    /// `hi+f+1` bits of `x` by one carry-prefix adder (7 rounds), a suffix OR
    /// over the bits from `lo+f` up (6 rounds). About a sixth of the traffic
    /// of comparing `x` with every `2^j`, which needs a whole 64-bit adder
    /// per threshold.
    async fn exponent_bits(&mut self, x: &ArithShare, lo: i32, hi: i32) -> Result<BitShare> {
        let f = self.frac() as i32;
        if lo < -f || hi < lo || hi + f > 60 {
            return Err(Error::Usage(format!(
                "normalization range 2^{lo}..2^{hi} does not fit {f} fractional bits"
            )));
        }
        let bits = self
            .low_bits(x, (lo + f) as usize, (hi + f + 1) as usize)
            .await?;
        // b_j = [x ≥ 2^j] = OR of bits j+f..=hi+f
        let at_least = self.suffix_or(bits).await?;
        Ok(BitShare::concat(&at_least.iter().collect::<Vec<_>>()))
    }

    /// `round(g(j)·2^k)` for the exponent `j` of each element of `x` over
    /// `[lo, hi]`, for each `(g, k)` of `fns`: `Σ_j [x ≥ 2^j]·(w_j − w_(j−1))`
    /// with `w_j = round(g(j)·2^k)` and `w_(lo−1) = 0`, all summed in the
    /// thermometer code's conversion to arithmetic shares. 14 rounds.
    async fn exponent_factors<const K: usize>(
        &mut self,
        x: &ArithShare,
        lo: i32,
        hi: i32,
        fns: [ExponentFn<'_>; K],
    ) -> Result<[Fx; K]> {
        let bits = self.exponent_bits(x, lo, hi).await?;
        let mut steps: [Vec<u64>; K] = core::array::from_fn(|_| Vec::new());
        for (steps, &(g, k)) in steps.iter_mut().zip(&fns) {
            let mut prev = 0u64;
            for j in lo..=hi {
                let w = fixed(g(j), k)?;
                steps.push(w.wrapping_sub(prev));
                prev = w;
            }
        }
        let n = x.len();
        let weights: [&[u64]; K] = core::array::from_fn(|k| &steps[k][..]);
        let sums = self.b2a_weighted(&bits, n, weights).await?;
        let mut sums = sums.into_iter();
        Ok(core::array::from_fn(|k| Fx {
            v: ArithShare::from_raw(from_vec(x.shape(), sums.next().unwrap_or_default())),
            f: fns[k].1,
        }))
    }

    /// `x·2^(-j)` (the mantissa, in `[1, 2)`) as an unreduced product at
    /// scale `f + norm_hi + 2`, and `round(h(j)·2^k)` for the exponent `j`
    /// (`(h, k)` = `extra`), computed with the mantissa's factor.
    async fn mantissa(&mut self, x: &ArithShare, extra: ExponentFn<'_>) -> Result<(Fx, Fx)> {
        let cfg = self.config.approx;
        let k1 = (cfg.norm_hi + 2) as u32;
        let inv = |j: i32| libm::pow(2.0, -j as f64);
        let [m1, m2] = self
            .exponent_factors(x, cfg.norm_lo, cfg.norm_hi, [(&inv, k1), extra])
            .await?;
        let op = BilinearOp::Hadamard {
            shape: x.shape().to_vec(),
        };
        let v = self.bilinear_ring(&op, x, &m1.v).await?;
        Ok((
            Fx {
                v,
                f: self.frac() + k1,
            },
            m2,
        ))
    }

    /// `g(z)` at scale `out_f` for a shared `z` known to lie in `[lo, hi]`:
    /// `z` is opened in masked form (its division to a lower scale
    /// included), a centred polynomial of degree [`MASKED_DEGREE`] is
    /// applied mod 2^128 ([`super::powers`]), and one more opening brings
    /// the result to `out_f`. Two rounds, two words per element each way,
    /// where a Chebyshev-basis evaluation of degree 7 takes 7 and 16.
    async fn poly_masked(
        &mut self,
        z: &Fx,
        lo: f64,
        hi: f64,
        g: impl Fn(f64) -> f64,
        out_f: u32,
    ) -> Result<Fx> {
        let half = (hi - lo) / 2.0;
        // The centred variable's top power keeps the coefficients' rounding
        // near 2^-21: k·(G + log2 half) ≤ 104.
        let budget = 104.0 / MASKED_DEGREE as f64 - log2(half);
        let scale = (libm::floor(budget) as i64).clamp(0, z.f as i64) as u32;
        let shift = z.f - scale;
        // The result's 128-bit scale: as high as |g| ≤ Σ|c_k| allows.
        let poly = centred_poly(g, lo, hi, MASKED_DEGREE, scale as i32, |bound| {
            124 - libm::ceil(log2(bound.max(1.0))) as i32
        });
        let last = poly.as_ref().map_or(0, |p| p.top - out_f as i32);
        let fits =
            power_mask_shift_fits(false, shift as i64) && power_mask_shift_fits(true, last as i64);
        let (Some(poly), true) = (poly, fits) else {
            return Err(Error::Usage(format!(
                "no masked polynomial fits [{lo}, {hi}] at {} bits",
                z.f
            )));
        };
        let v = self
            .poly_of_opened(
                Masked::Narrow(&as_slice(z.v.as_raw())),
                shift,
                poly.center,
                &poly.coeffs,
                true,
            )
            .await?;
        // The result fits 64 bits: its division needs its mask mod 2^64 only.
        let r = self
            .poly_of_opened(Masked::Wide(&v), last as u32, 0, &[0, 1], false)
            .await?;
        self.give_words(v);
        let v = ArithShare::from_raw(from_vec(z.v.shape(), r));
        Ok(Fx { v, f: out_f })
    }

    /// `g(x')·h(j)` for the mantissa `x'` and exponent `j` of positive `x`,
    /// at the model's scale; `bound` bounds the result.
    async fn via_mantissa(
        &mut self,
        x: &ArithShare,
        g: impl Fn(f64) -> f64,
        h: impl Fn(i32) -> f64,
        bound: f64,
    ) -> Result<ArithShare> {
        // Scale of the factor: as high as the product allows.
        let k2 = libm::floor(59.0 - WORK as f64 - log2(bound.max(1.0)));
        if k2 < 8.0 {
            return Err(Error::Usage(
                "approximation range too wide for the ring".into(),
            ));
        }
        let (xm, m2) = self.mantissa(x, (&h, k2 as u32)).await?;
        let r = self.poly_masked(&xm, 1.0, 2.0, g, WORK).await?;
        let f = self.frac();
        Ok(self.mul_fx(&[(&r, &m2)], f).await?.remove(0).v)
    }

    /// `1/x` for `x ∈ [2^norm_lo, 2^(norm_hi+1))` (default `[2^-8, 2^25)`).
    /// Rounds: 19.
    pub async fn reciprocal(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let lo = self.config.approx.norm_lo;
        let bound = libm::pow(2.0, -lo as f64);
        self.via_mantissa(x, |v| 1.0 / v, |j| libm::pow(2.0, -j as f64), bound)
            .await
    }

    /// `x / y` for `y` in the reciprocal's range. Rounds: 21.
    pub async fn div(&mut self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        let r = self.reciprocal(y).await?;
        self.mul(x, &r).await
    }

    /// `1/√x` for `x` in the reciprocal's range. Rounds: 19.
    pub async fn inv_sqrt(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let lo = self.config.approx.norm_lo;
        let bound = libm::pow(2.0, -lo as f64 / 2.0);
        self.via_mantissa(
            x,
            |v| 1.0 / libm::sqrt(v),
            |j| libm::pow(2.0, -j as f64 / 2.0),
            bound,
        )
        .await
    }

    /// `√x` for `x` in the reciprocal's range. Rounds: 19.
    pub async fn sqrt(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let hi = self.config.approx.norm_hi;
        let bound = libm::pow(2.0, (hi + 1) as f64 / 2.0);
        self.via_mantissa(x, libm::sqrt, |j| libm::pow(2.0, j as f64 / 2.0), bound)
            .await
    }

    /// `ln x` for `x` in the reciprocal's range: `ln x' + j·ln 2`. Rounds: 18.
    pub async fn log(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let j_ln2 = |j: i32| j as f64 * core::f64::consts::LN_2;
        let (xm, jl) = self.mantissa(x, (&j_ln2, WORK)).await?;
        let r = self.poly_masked(&xm, 1.0, 2.0, libm::log, WORK).await?;
        let sum = self.add(&r.v, &jl.v)?;
        let f = self.frac();
        Ok(self.rescale(&Fx { v: sum, f: WORK }, f).await?.v)
    }

    /// The logistic function. Inputs are clipped to `±exp_max_abs` first
    /// (where it is within 1.2e-7 of 0 or 1). Rounds: 15.
    pub async fn sigmoid(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let (neg, pos_part) = self.sigmoid_parts(x).await?;
        // σ(x) = s⁺ where x ≥ 0, 1 − s⁺ where x < 0.
        let f = self.frac();
        let one = RingTensor::from_elem(IxDyn(x.shape()), 1u64 << f);
        let two_s = self.mul_public_int(&pos_part, &scalar(2))?;
        let flip = self.sub(&self.public(&one), &two_s)?;
        let sel = self.select(&neg, &flip).await?;
        self.add(&pos_part, &sel)
    }

    /// `([x < 0], 1/(1 + e^(-|x|)))` with `|x|` clipped to the exp range.
    async fn sigmoid_parts(
        &mut self,
        x: &ArithShare,
    ) -> Result<(crate::bits::BitShare, ArithShare)> {
        let f = self.frac();
        let r = self.config.approx.exp_max_abs;
        let n = x.len();
        let rr = self.public(&RingTensor::from_elem(
            IxDyn(x.shape()),
            self.config.fixed_point.encode(r)?,
        ));
        // Signs of x, R − x and x + R in one batch.
        let r_minus = self.sub(&rr, x)?;
        let r_plus = self.add(x, &rr)?;
        let bits = self.msb(&concat(&[x, &r_minus, &r_plus])).await?;
        let neg = bits.slice(0, n);
        // a = |x| clipped to R: x − 2x·[x<0] + (R − x)·[x>R] + (R + x)·[x<−R]
        let minus_2x = self.mul_public_int(x, &scalar(2u64.wrapping_neg()))?;
        let sel = self
            .select(&bits, &concat(&[&minus_2x, &r_minus, &r_plus]))
            .await?;
        let ss = as_slice(sel.as_raw());
        let xs = as_slice(x.as_raw());
        let a: Vec<u64> = (0..n)
            .map(|i| {
                xs[i]
                    .wrapping_add(ss[i])
                    .wrapping_add(ss[n + i])
                    .wrapping_add(ss[2 * n + i])
            })
            .collect();
        let a = ArithShare::from_raw(from_vec(x.shape(), a));
        // s⁺ = 1/(1 + e^(-a)), a polynomial of e applied in e's own chain.
        let r = self.config.approx.exp_max_abs;
        let plan = ExpPlan::new(-r, 0.0, self.frac(), WORK)
            .and_then(|p| p.then(|e| 1.0 / (1.0 + e), f))
            .ok_or(Error::Unsupported(
                "no sigmoid schedule fits this range and fixed-point setting",
            ))?;
        let s = self.exp_by_powers(&self.neg(&a), &plan).await?;
        Ok((neg, s))
    }

    /// `tanh x = 2σ(2x) − 1`. Rounds: 15.
    pub async fn tanh(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let x2 = self.mul_public_int(x, &scalar(2))?;
        let s = self.sigmoid(&x2).await?;
        let s2 = self.mul_public_int(&s, &scalar(2))?;
        let one = RingTensor::from_elem(IxDyn(x.shape()), 1u64 << self.frac());
        self.sub(&s2, &self.public(&one))
    }

    /// The error function: an odd Chebyshev polynomial on the input clipped to
    /// `±erf_clip`. Rounds: 9 + 2·⌈log2 erf_degree⌉ + 1 (20 by default).
    pub async fn erf(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let cfg = self.config.approx;
        let e = cfg.erf_clip;
        let n = x.len();
        let fp = self.config.fixed_point;
        let ee = self.public(&RingTensor::from_elem(IxDyn(x.shape()), fp.encode(e)?));
        let e_minus = self.sub(&ee, x)?; // < 0 ⇔ x > E
        let e_plus = self.add(x, &ee)?; // < 0 ⇔ x < −E
        let bits = self.msb(&concat(&[&e_minus, &e_plus])).await?;
        let neg_e_plus = self.neg(&e_plus);
        let sel = self
            .select(&bits, &concat(&[&e_minus, &neg_e_plus]))
            .await?;
        let ss = as_slice(sel.as_raw());
        let xs = as_slice(x.as_raw());
        let clipped: Vec<u64> = (0..n)
            .map(|i| xs[i].wrapping_add(ss[i]).wrapping_add(ss[n + i]))
            .collect();
        let clipped = ArithShare::from_raw(from_vec(x.shape(), clipped));
        // t = x / E: multiply by round(2^WORK / E) and divide by 2^f.
        let f = self.frac();
        let inv_e = self.mul_public_int(&clipped, &scalar(fixed(1.0 / e, WORK)?))?;
        let t = self
            .rescale(
                &Fx {
                    v: inv_e,
                    f: f + WORK,
                },
                WORK,
            )
            .await?;
        let mut c = chebyshev::fit(libm::erf, -e, e, cfg.erf_degree);
        for (k, ck) in c.iter_mut().enumerate() {
            if k % 2 == 0 {
                *ck = 0.0; // odd function
            }
        }
        Ok(self.chebyshev(&t, &c, f).await?.v)
    }

    /// GELU, erf form: `x·Φ(x) = x·(1 + erf(x/√2))/2`. Rounds: 23.
    pub async fn gelu(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let f = self.frac();
        let scaled =
            self.mul_public_int(x, &scalar(fixed(core::f64::consts::FRAC_1_SQRT_2, WORK)?))?;
        let xs2 = self
            .rescale(
                &Fx {
                    v: scaled,
                    f: f + WORK,
                },
                f,
            )
            .await?;
        let er = self.erf(&xs2.v).await?;
        let one = RingTensor::from_elem(IxDyn(x.shape()), 1u64 << f);
        let phi2 = self.add(&er, &self.public(&one))?; // 2Φ(x)
        let prod = self
            .bilinear_ring(
                &BilinearOp::Hadamard {
                    shape: x.shape().to_vec(),
                },
                x,
                &phi2,
            )
            .await?;
        // x·2Φ at scale 2f, halved and truncated in one division.
        self.div_public(&prod, &Divisor::Uniform(1u64 << (f + 1)))
            .await
    }

    /// GELU, tanh form: `x·(1 + tanh(√(2/π)(x + 0.044715x³)))/2`. Rounds: 22.
    pub async fn gelu_tanh(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let f = self.frac();
        let x2 = self.square(x).await?;
        let x3 = self.mul(&x2, x).await?;
        let k = libm::sqrt(2.0 / core::f64::consts::PI);
        let a = self.mul_public_int(x, &scalar(fixed(k, f)?))?;
        let b = self.mul_public_int(&x3, &scalar(fixed(k * 0.044715, f)?))?;
        let inner = self.add(&a, &b)?;
        let inner = self.truncate(&inner).await?;
        let th = self.tanh(&inner).await?;
        let one = RingTensor::from_elem(IxDyn(x.shape()), 1u64 << f);
        let onep = self.add(&th, &self.public(&one))?;
        let prod = self
            .bilinear_ring(
                &BilinearOp::Hadamard {
                    shape: x.shape().to_vec(),
                },
                x,
                &onep,
            )
            .await?;
        self.div_public(&prod, &Divisor::Uniform(1u64 << (f + 1)))
            .await
    }

    /// Softmax over the last axis, for inputs of any size: each row less its
    /// maximum (a tree of comparisons), floored at `−exp_max_abs` (one
    /// comparison; `e^−16` is below the fixed-point unit), then `e^d ·
    /// (1/Σe^d)` with the sum (in `[1, k]`) normalized, so the result keeps
    /// its precision whatever the row. Rounds: 8 per level of the maximum's
    /// tree (`⌈log2 k⌉` levels) and 37 more: 93 for rows of 100.
    pub async fn softmax(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let (_, e, rows, k) = self.softmax_exp(x).await?;
        let sums = self.row_sums(&e.v, rows, k)?;
        // The sum's exponent j ∈ [-1, ⌊log2 k⌋]: at scale e.f, that of
        // S·2^(e.f − f) at the model's scale.
        let off = (e.f - self.frac()) as i32;
        let inv = |j: i32| libm::pow(2.0, (off - j) as f64);
        // Products with 2^-j below 2 at scale e.f + 36 = 60: within the ring.
        let [m1] = self
            .exponent_factors(&sums, off - 1, off + floor_log2(k), [(&inv, 60 - e.f)])
            .await?;
        // S' = S·2^-j ∈ [1,2) and every e'_i = e_i·2^-j ≤ 2, in one batch.
        let m1_rows = Fx {
            v: repeat_rows(&m1.v, k),
            f: m1.f,
        };
        let sf = Fx { v: sums, f: e.f };
        let prods = self.mul_fx(&[(&sf, &m1), (&e, &m1_rows)], WORK).await?;
        let (s_norm, e_norm) = (&prods[0], &prods[1]);
        let t = self.affine_int(s_norm, 2, -3.0)?;
        let c = chebyshev::fit(|v| 1.0 / v, 1.0, 2.0, self.config.approx.degree);
        let r = self.chebyshev(&t, &c, WORK).await?;
        let r_rows = Fx {
            v: repeat_rows(&r.v, k),
            f: WORK,
        };
        let f = self.frac();
        let y = self.mul_fx(&[(e_norm, &r_rows)], f).await?.remove(0);
        reshaped(y.v, x.shape())
    }

    /// `log softmax` over the last axis, for inputs of any size: `d − ln Σe^d`
    /// with `d` each row less its maximum (the sum in `[1, k]`). Rounds: 8
    /// per level of the maximum's tree and 31 more: 87 for rows of 100.
    pub async fn log_softmax(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let (d, e, rows, k) = self.softmax_exp(x).await?;
        let sums = self.row_sums(&e.v, rows, k)?;
        let sums = self.rescale(&Fx { v: sums, f: e.f }, self.frac()).await?;
        let saved = self.config.approx;
        self.config.approx.norm_lo = -1;
        self.config.approx.norm_hi = floor_log2(k);
        let ln = self.log(&sums.v).await;
        self.config.approx = saved;
        let ln_rows = repeat_rows(&ln?, k);
        let y = self.sub(&d, &ln_rows)?;
        reshaped(y, x.shape())
    }

    /// Rows of the last axis, flattened: each less its maximum (`d ≤ 0`,
    /// exactly 0 at the maximum) and `e^max(d, −exp_max_abs)` at scale
    /// [`WORK`] (the floor keeps exp in its range, however far below the
    /// maximum a value lies: an attention mask's `−10⁹`, a confident
    /// classifier's logits).
    async fn softmax_exp(&mut self, x: &ArithShare) -> Result<(ArithShare, Fx, usize, usize)> {
        let k = *x
            .shape()
            .last()
            .ok_or_else(|| Error::Shape("softmax of a scalar".into()))?;
        if k == 0 {
            return Err(Error::Shape("softmax over an empty axis".into()));
        }
        let rows = x.len() / k;
        let flat = as_slice(x.as_raw()).into_owned();
        let (m, _) = self.max_rows(flat.clone(), rows, k, false).await?;
        let flat = ArithShare::from_raw(from_vec(&[rows * k], flat));
        let m = ArithShare::from_raw(from_vec(&[rows], m));
        let d = self.sub(&flat, &repeat_rows(&m, k))?;
        // max(d, −r) = relu(d + r) − r
        let r = self
            .config
            .fixed_point
            .encode(self.config.approx.exp_max_abs)?;
        let shifted = self.add_public(&d, &scalar(r))?;
        let above = self.relu(&shifted).await?;
        let y = self.add_public(&above, &scalar(r.wrapping_neg()))?;
        let e = self.exp_fx(&y, -1.0, 0.0, WORK).await?;
        Ok((d, e, rows, k))
    }

    fn row_sums(&self, e: &ArithShare, rows: usize, k: usize) -> Result<ArithShare> {
        let es = as_slice(e.as_raw());
        let v: Vec<u64> = (0..rows)
            .map(|r| {
                es[r * k..(r + 1) * k]
                    .iter()
                    .fold(0u64, |a, &b| a.wrapping_add(b))
            })
            .collect();
        Ok(ArithShare::from_raw(from_vec(&[rows], v)))
    }

    /// Layer normalization over the last axis (no affine part: multiply by
    /// the scale and add the bias after). Rounds: 1 + 3 + 19 + 2 = 25.
    pub async fn layer_norm(&mut self, x: &ArithShare, epsilon: f64) -> Result<ArithShare> {
        let ax = x
            .shape()
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::Shape("layer norm of a scalar".into()))?;
        let k = x.shape()[ax];
        let mu = self.mean(x, &[ax], true).await?;
        let mu_b = ArithShare::from_raw(
            mu.as_raw()
                .broadcast(IxDyn(x.shape()))
                .ok_or_else(|| Error::Shape("mean broadcast".into()))?
                .to_owned(),
        );
        let d = self.sub(x, &mu_b)?;
        let sq = self.square(&d).await?;
        let var = self.mean(&sq, &[ax], true).await?;
        let eps =
            RingTensor::from_elem(IxDyn(var.shape()), self.config.fixed_point.encode(epsilon)?);
        let var = self.add_public(&var, &eps)?;
        let isd = self.inv_sqrt(&var).await?;
        let isd_b = ArithShare::from_raw(
            isd.as_raw()
                .broadcast(IxDyn(x.shape()))
                .ok_or_else(|| Error::Shape("inverse deviation broadcast".into()))?
                .to_owned(),
        );
        let _ = k;
        self.mul(&d, &isd_b).await
    }
}

/// `⌊log2 k⌋` for `k ≥ 1`.
fn floor_log2(k: usize) -> i32 {
    (usize::BITS - 1 - k.max(1).leading_zeros()) as i32
}

/// A flat share in `shape`.
fn reshaped(v: ArithShare, shape: &[usize]) -> Result<ArithShare> {
    Ok(ArithShare::from_raw(
        v.into_raw()
            .into_shape_with_order(IxDyn(shape))
            .map_err(|e| Error::Shape(format!("{e}")))?,
    ))
}

/// Repeats each element `k` times (row-wise broadcast of per-row values).
fn repeat_rows(v: &ArithShare, k: usize) -> ArithShare {
    let vs = as_slice(v.as_raw());
    let out: Vec<u64> = vs
        .iter()
        .flat_map(|&x| core::iter::repeat_n(x, k))
        .collect();
    let n = out.len();
    ArithShare::from_raw(from_vec(&[n], out))
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::protocol::Config;
    use crate::protocol::testing::run;
    use crate::share::{Arith, BinaryShare};

    /// The thermometer code of the exponent is exact (tolerance 0) at every
    /// power of two of the default range and one unit either side of it, at
    /// the top of the range and below it, for two and three parties.
    #[test]
    fn exponent_is_exact_at_every_power_of_two() {
        let cfg = Config::default();
        let (lo, hi) = (cfg.approx.norm_lo, cfg.approx.norm_hi);
        let f = cfg.fixed_point.frac_bits() as i32;
        let mut xs: Vec<u64> = Vec::new();
        for j in lo..=hi {
            let v = 1u64 << (j + f);
            xs.extend([v - 1, v, v + 1]);
        }
        xs.extend([(1u64 << (hi + f + 1)) - 1, 1, 0x5555_5555]);
        let len = xs.len();
        let x = from_vec(&[len], xs.clone());
        for n in [2, 3] {
            let outs = run(n, 7, cfg, |mut p| {
                let x = &x;
                async move {
                    let me = p.id();
                    let xa = p.input::<Arith>(0, (me == 0).then_some(x), &[len]).await?;
                    let bits = p.exponent_bits(&xa, lo, hi).await?;
                    let words = bits.words().to_vec();
                    let codes = BinaryShare::from_raw(from_vec(&[words.len()], words));
                    let codes = p.open(&codes).await?;
                    // The exponent itself as a factor: w_j = j.
                    let j = |j: i32| f64::from(j);
                    let [e] = p.exponent_factors(&xa, lo, hi, [(&j, 0)]).await?;
                    Ok((codes, p.open(&e.v).await?))
                }
            });
            for (codes, exps) in outs {
                let codes = BitShare::from_words(
                    xs.len() * (hi - lo + 1) as usize,
                    as_slice(&codes).to_vec(),
                );
                for (k, j) in (lo..=hi).enumerate() {
                    for (i, &v) in xs.iter().enumerate() {
                        let want = v >= 1u64 << (j + f);
                        assert_eq!(
                            codes.get(k * len + i),
                            want,
                            "[{v} ≥ 2^{j}] with {n} parties"
                        );
                    }
                }
                for (i, &v) in xs.iter().enumerate() {
                    let want = (lo..=hi)
                        .filter(|&j| v >= 1u64 << (j + f))
                        .max()
                        .unwrap_or(0);
                    let got = as_slice(&exps)[i] as i64;
                    assert_eq!(got, i64::from(want), "exponent of {v} with {n} parties");
                }
            }
        }
    }
}
