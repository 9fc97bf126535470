//! `e^x` by a chain of masked openings ([`super::powers`]): one opening per
//! stage, everything between openings local.
//!
//! With `x ∈ [lo, hi]` at `f` fractional bits and `u = x / 2^a ∈ [-1/4, 1/4]`:
//!
//! 1. open `x` (64-bit; divided by `2^b` first where `f + a > 22`, so `x`
//!    enters with `22 − a` fractional bits: 16 for the default range) and
//!    evaluate a degree-5 polynomial for `e^u` on the exact integer
//!    `t = x·2^(f−b)`, mod 2^128, at scale 2^125;
//! 2. open that (the top bytes of each piece's high word) at the largest
//!    scale `g₁` whose square fits 61 bits and square it mod 2^64; open
//!    the square at `g₂` and square again, and so on: `e^(2u)`, `e^(4u)`,
//!    … — `a` squarings, each opening dividing by `2^20` or more;
//! 3. the last opening divides straight to the output scale.
//!
//! For the default range (`±16`, `a = 6`) that is 8 openings and 44 bytes
//! per element each way — every opening after the first sends only the 5
//! or 6 bytes of each piece above the quotient ([`super::powers`]) — and
//! about 430 bytes of the dealer's material per element. Ranges too wide
//! for 64-bit squares (an upper end above about 20) square twice per
//! opening instead, as 128-bit fourth powers: fewer openings (6 at ±40),
//! twice the material per squaring, which bounds the online time (the
//! schedule protocol 7 used for every range: 5 openings, 40 bytes, 630 bytes
//! of material). Every scale is chosen from `lo`, `hi`, `f` and the output
//! scale by [`ExpPlan::new`] (a test checks that every accepted setting has
//! a schedule).

use super::Party;
use super::powers::{Masked, centred_poly, low_share, ring_coeffs};
use crate::backend::Backend;
use crate::channel::Channel;
use crate::chebyshev;
use crate::elementwise::{as_slice, from_vec};
use crate::error::Result;
use crate::preprocessing::{Preprocessing, power_mask_shift_fits};
use crate::share::ArithShare;
use alloc::vec;
use alloc::vec::Vec;

/// Degree of the polynomial for `e^u`, `|u| ≤ 1/4` (error below 2e-8).
const DEGREE: usize = 5;
/// Scale of the polynomial's 128-bit value (`e^(1/4)·2^125 < 2^126`).
const POLY_SCALE: i32 = 125;
/// Bits the 128-bit values may use (`|V| < 2^125.x`, below the `2^126`
/// the opening requires).
const WIDE_BITS: f64 = 125.0;
/// `t`'s scale plus `a` is kept at most this, so the top coefficient keeps
/// at least 15 bits (`C_5 = c_5·2^(125 − 5·22)`).
const MAX_T_BITS: u32 = 22;
/// Fewest fractional bits an intermediate power may carry (only the largest
/// ranges come near it, where the power's small values round to zero at
/// the output scale anyway).
const MIN_SCALE: i32 = 16;

/// Degree of a function of `e^x ∈ (0, 1]` applied after it ([`ExpPlan::then`]).
const THEN_DEGREE: usize = 6;
/// Scale of `e^x` fed to that function: the top term's coefficient rounds to
/// `2^(6·(18 − 1) − 125)` relative, 2^-23 (the variable is centred).
const THEN_SCALE: i32 = 18;

/// One stage after the first opening: open at `shift`, then apply the
/// polynomial `coeffs` (lowest first) in `y − center`, mod 2^128 when
/// `wide_out`, mod 2^64 otherwise (the next stage opens a 128-bit or a
/// 64-bit value accordingly; the first stage opens the first polynomial's
/// 128-bit value).
#[derive(Debug, Clone, PartialEq)]
struct Stage {
    shift: u32,
    coeffs: Vec<u128>,
    center: u128,
    wide_out: bool,
}

impl Stage {
    /// `y^k` (`y` itself for `k = 1`: the last stage).
    fn power(shift: u32, k: u32, wide_out: bool) -> Stage {
        let mut coeffs = vec![0u128; k as usize + 1];
        coeffs[k as usize] = 1;
        Stage {
            shift,
            coeffs,
            center: 0,
            wide_out,
        }
    }
}

/// Bits a 64-bit square may use (`|y²| < 2^61`, below the `2^62` a
/// 64-bit opening requires, with room for `y`'s rounding).
const NARROW_BITS: f64 = 61.0;

/// The `a` squarings of `e^u`, then the division to `out_f`. With `wide`
/// false, 64-bit squares, one opening each: `y_k = e^(u·2^k)` is opened at
/// the largest scale whose square fits [`NARROW_BITS`]; each squaring reads
/// 40 bytes of the dealer's material per element, and its opening divides
/// by 2^20 or more, so it sends 5 or 6 bytes of each piece
/// ([`super::powers::unsent_bytes`]). With `wide`, 128-bit fourth powers
/// (and one square for an odd `a`), each value at the largest scale whose
/// power fits [`WIDE_BITS`]: fewer openings, 72 bytes of material per
/// squaring, for ranges too wide for 64-bit squares. `None` where some
/// value is too large for [`MIN_SCALE`] bits or a division does not fit.
fn squarings(hi: f64, a: u32, scale: f64, out_f: u32, wide: bool) -> Option<Vec<Stage>> {
    let (powers, bits) = if wide {
        let mut p = vec![4u32; (a / 2) as usize];
        if a % 2 == 1 {
            p.push(2);
        }
        (p, WIDE_BITS)
    } else {
        (vec![2u32; a as usize], NARROW_BITS)
    };
    let mut stages = Vec::new();
    let mut prev = POLY_SCALE; // scale of the value being opened
    let mut wide_in = true; // the first polynomial's value is 128-bit
    let mut done = 0u32;
    for &k in &powers {
        let max_log2 =
            libm::fmax(hi * libm::pow(2.0, done as f64) / scale, 0.0) * core::f64::consts::LOG2_E;
        let mut g = (libm::floor(bits / k as f64 - max_log2 - 0.01) as i32).min(60);
        if wide_in {
            // a 128-bit value's opening divides by at least 2^64
            g = g.min(prev - 64);
        }
        if g < MIN_SCALE || !power_mask_shift_fits(wide_in, (prev - g) as i64) {
            return None;
        }
        stages.push(Stage::power((prev - g) as u32, k, wide));
        prev = k as i32 * g;
        wide_in = wide;
        done += k.trailing_zeros();
    }
    let last = prev - out_f as i32;
    if !power_mask_shift_fits(wide_in, last as i64) {
        return None;
    }
    // The result fits 64 bits: its division needs its mask mod 2^64 only.
    stages.push(Stage::power(last as u32, 1, false));
    Some(stages)
}

/// The public schedule of one `e^x` evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExpPlan {
    /// `x` is divided by `2^b` when opened.
    b: u32,
    /// Coefficients of `e^u` as a polynomial in the opened integer, mod 2^128.
    coeffs: Vec<u128>,
    stages: Vec<Stage>,
    /// The top of the input range, and the result's scale.
    hi: f64,
    out_f: u32,
    /// Whether a function of `e^x` follows ([`ExpPlan::then`]).
    then: bool,
}

impl ExpPlan {
    /// The schedule for `x ∈ [lo, hi]` at `f` fractional bits, with the
    /// result at `out_f` bits; `None` where no schedule fits.
    pub(crate) fn new(lo: f64, hi: f64, f: u32, out_f: u32) -> Option<ExpPlan> {
        let r = libm::fmax(libm::fabs(lo), libm::fabs(hi));
        if !(r > 0.0 && r <= 64.0 && lo < hi && f <= 40 && out_f <= 40) {
            return None;
        }
        // Scales are sized for results below 2^(57 − out_f) (e^28.4 at 16
        // fractional bits), which leaves the last opening a division by at
        // least 2^64; larger results come out wrong (above 2^(61 − out_f)
        // they would not fit 64 bits whatever the method).
        let hi = libm::fmin(hi, (57.0 - out_f as f64) * core::f64::consts::LN_2);
        // u = x / 2^a ∈ [-1/4, 1/4]
        let a = libm::ceil(libm::log2(4.0 * r)).max(0.0) as u32;
        let b = (f + a).saturating_sub(MAX_T_BITS).min(f);
        let ft = f - b;
        let scale = libm::pow(2.0, a as f64);
        let m = chebyshev::fit_monomial(libm::exp, lo / scale, hi / scale, DEGREE);
        // C_k = m_k · 2^(125 − k·(ft + a)): the polynomial in t = u·2^(ft+a).
        let coeffs = ring_coeffs(&m, POLY_SCALE, (ft + a) as i32)?;
        let stages = squarings(hi, a, scale, out_f, false)
            .or_else(|| squarings(hi, a, scale, out_f, true))?;
        Some(ExpPlan {
            b,
            coeffs,
            stages,
            hi,
            out_f,
            then: false,
        })
    }

    /// The plan for `h(e^x)` instead of `e^x`, for `hi ≤ 0` (so
    /// `e^x ∈ (0, 1]`) and `h` smooth on `[0, 1]`: the last opening yields
    /// `e^x` in masked form at [`THEN_SCALE`] bits, a degree-6 polynomial
    /// for `h` follows locally, and one more opening brings it to `out_f`
    /// (`|h| < 2` on `[0, 1]`). One opening in place of a separate
    /// polynomial evaluation.
    pub(crate) fn then(mut self, h: impl Fn(f64) -> f64, out_f: u32) -> Option<ExpPlan> {
        if self.hi > 0.0 || self.then {
            return None;
        }
        // The last stage divides the last power down to the output scale.
        let last = self.stages.pop()?;
        let power_scale = last.shift as i32 + self.out_f as i32;
        // The last power is a 128-bit value after the first polynomial or a
        // fourth power, a 64-bit one after a 64-bit square.
        let wide_in = self.stages.last().is_none_or(|s| s.wide_out);
        let g = THEN_SCALE.min(power_scale - if wide_in { 64 } else { 0 });
        if g < MIN_SCALE || !power_mask_shift_fits(wide_in, (power_scale - g) as i64) {
            return None;
        }
        let poly = centred_poly(h, 0.0, 1.0, THEN_DEGREE, g, |_| POLY_SCALE)?;
        self.stages.push(Stage {
            shift: (power_scale - g) as u32,
            coeffs: poly.coeffs,
            center: poly.center,
            wide_out: true,
        });
        self.stages
            .push(Stage::power((POLY_SCALE - out_f as i32) as u32, 1, false));
        self.out_f = out_f;
        self.then = true;
        Some(self)
    }

    /// Openings (rounds) the plan takes.
    #[cfg(test)]
    fn openings(&self) -> usize {
        1 + self.stages.len()
    }

    /// The plan's arithmetic in the clear, every division rounding down:
    /// the result (at the output scale) for `x` at `f` fractional bits.
    #[cfg(test)]
    fn eval_clear(&self, x: i128) -> i128 {
        let poly = |coeffs: &[u128], z: i128| {
            coeffs
                .iter()
                .rev()
                .fold(0u128, |acc, &c| acc.wrapping_mul(z as u128).wrapping_add(c))
                as i128
        };
        let mut v = poly(&self.coeffs, x >> self.b);
        for s in &self.stages {
            v = poly(&s.coeffs, (v >> s.shift).wrapping_sub(s.center as i128));
            if !s.wide_out {
                v = v as u64 as i64 as i128;
            }
        }
        v
    }
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// `e^x` by `plan` (see the module notes), at the plan's output scale.
    pub(crate) async fn exp_by_powers(
        &mut self,
        x: &ArithShare,
        plan: &ExpPlan,
    ) -> Result<ArithShare> {
        let mut v = self
            .poly_of_opened(
                Masked::Narrow(&as_slice(x.as_raw())),
                plan.b,
                0,
                &plan.coeffs,
                true,
            )
            .await?;
        let mut wide = true;
        for stage in &plan.stages {
            let masked = if wide {
                Masked::Wide(&v)
            } else {
                Masked::Narrow(&v)
            };
            let next = self
                .poly_of_opened(
                    masked,
                    stage.shift,
                    stage.center,
                    &stage.coeffs,
                    stage.wide_out,
                )
                .await?;
            self.give_words(core::mem::replace(&mut v, next));
            wide = stage.wide_out;
        }
        if wide {
            let y = low_share(&v, x.shape());
            self.give_words(v);
            Ok(y)
        } else {
            Ok(ArithShare::from_raw(from_vec(x.shape(), v)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::powers::unsent_bytes;

    #[test]
    fn default_range_squares_in_64_bits() {
        let p = ExpPlan::new(-16.0, 16.0, 16, 16).unwrap();
        assert_eq!(p.openings(), 8);
        assert_eq!(p.b, 0);
        assert_eq!(
            p.stages
                .iter()
                .map(|s| s.coeffs.len() - 1)
                .collect::<Vec<_>>(),
            [2, 2, 2, 2, 2, 2, 1]
        );
        // the first stage opens the polynomial's 128-bit value, the rest
        // 64-bit squares; every result is kept mod 2^64
        assert!((64..=125).contains(&p.stages[0].shift));
        assert!(p.stages.iter().all(|s| !s.wide_out), "{p:?}");
        // every opening after the first divides by 2^20 or more: 5 or 6
        // bytes of each piece are sent (8 for the first)
        let sent: Vec<usize> = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| 8 - unsent_bytes(s.shift - if i == 0 { 64 } else { 0 }, 2))
            .collect();
        assert_eq!(sent, [5, 5, 5, 5, 5, 5, 6]);
        // one-sided ranges (sigmoid, softmax) and odd a
        assert_eq!(ExpPlan::new(-16.0, 0.0, 16, 24).unwrap().openings(), 8);
        assert_eq!(ExpPlan::new(-8.0, 8.0, 16, 16).unwrap().openings(), 7);
        assert_eq!(ExpPlan::new(-1.0, 1.0, 16, 16).unwrap().openings(), 4);
        // the widest ranges take 128-bit fourth powers
        let widest = ExpPlan::new(-40.0, 28.0, 16, 16).unwrap();
        assert_eq!(widest.openings(), 6);
        assert!(widest.stages[0].wide_out);
        assert_eq!(widest.stages[0].coeffs.len() - 1, 4);
        // a large f is divided down when opened
        assert!(ExpPlan::new(-16.0, 16.0, 24, 24).unwrap().b > 0);
        // every setting the configuration accepts has a plan
        for f in 0..=30 {
            for out_f in [f, 24] {
                for r in [0.01, 0.3, 1.0, 5.0, 16.0, 17.0, 33.0, 40.0] {
                    for (lo, hi) in [(-r, r), (-r, 0.0)] {
                        assert!(
                            ExpPlan::new(lo, hi, f, out_f).is_some(),
                            "[{lo}, {hi}] f={f} out_f={out_f}"
                        );
                    }
                }
            }
        }
    }

    /// Under MPC, for two and three parties, for the default range (5
    /// rounds) and the widest (`exp_max_abs = 40`: 6 rounds, `x` enters
    /// with 14 fractional bits): within 1e-5 (1e-4) relative + 4 units of
    /// `exp` of the encoded input.
    #[cfg(feature = "std")]
    #[test]
    fn exp_under_mpc() {
        use crate::elementwise::{as_slice, from_vec};
        use crate::protocol::Config;
        use crate::protocol::testing::run;
        use crate::share::Arith;
        for (r, lo, hi, rounds, rel) in [(16.0, -16.0, 16.0, 8, 1e-5), (40.0, -40.0, 28.0, 6, 1e-4)]
        {
            let mut config = Config::default();
            config.approx.exp_max_abs = r;
            let fp = config.fixed_point;
            let xs: Vec<f64> = (0..=300)
                .map(|i| lo + (hi - lo) * i as f64 / 300.0)
                .collect();
            let enc = from_vec(
                &[xs.len()],
                xs.iter().map(|&v| fp.encode(v).unwrap()).collect(),
            );
            for n in [2, 3] {
                let outs = run(n, 5, config, |mut p| {
                    let enc = &enc;
                    async move {
                        let me = p.id();
                        let x = p
                            .input::<Arith>(0, (me == 0).then_some(enc), enc.shape())
                            .await?;
                        let before = p.stats();
                        let e = p.exp(&x).await?;
                        let rounds = p.stats().since(&before).rounds;
                        Ok((p.open(&e).await?, rounds))
                    }
                });
                for (e, got_rounds) in outs {
                    assert_eq!(got_rounds, rounds);
                    for (&x, &v) in xs.iter().zip(as_slice(&e).iter()) {
                        let xq = fp.decode(fp.encode(x).unwrap());
                        let want = libm::exp(xq);
                        let got = fp.decode(v);
                        assert!(
                            (got - want).abs() <= want * rel + 4.0 / 65536.0,
                            "r={r} n={n}: e^{x} = {want}, got {got}"
                        );
                    }
                }
            }
        }
    }

    /// `1/(1 + e^x)` for `x ∈ [-16, 0]` by the plan with a function after
    /// it, in the clear (every division rounding down): within 2.5e-5
    /// (output unit 1.5e-5, fit error ~8e-6); and `then` is
    /// refused for ranges that reach above 0.
    #[test]
    fn plan_then_matches_the_function() {
        assert!(
            ExpPlan::new(-16.0, 1.0, 16, 24)
                .unwrap()
                .then(|e| e, 16)
                .is_none()
        );
        let plan = ExpPlan::new(-16.0, 0.0, 16, 24)
            .unwrap()
            .then(|e| 1.0 / (1.0 + e), 16)
            .unwrap();
        assert_eq!(plan.openings(), 9);
        let mut worst = 0f64;
        for i in 0..=2000 {
            let xi = -((i as i128 * 16 * 65536) / 2000);
            let v = plan.eval_clear(xi);
            let got = v as f64 / 65536.0;
            let want = 1.0 / (1.0 + libm::exp(xi as f64 / 65536.0));
            worst = worst.max((got - want).abs());
        }
        assert!(worst < 2.5e-5, "{worst}");
    }

    /// The plan's arithmetic in the clear (no masking): the polynomial on
    /// the exact integer, each stage's division and power, against `exp`.
    #[test]
    fn plan_arithmetic_matches_exp() {
        for (lo, hi, f, out_f) in [
            (-16.0, 16.0, 16, 16),
            (-16.0, 0.0, 16, 24),
            (-8.0, 8.0, 16, 16),
            (-16.0, 16.0, 20, 20),
        ] {
            let plan = ExpPlan::new(lo, hi, f, out_f).unwrap();
            for i in 0..=400 {
                let x = lo + (hi - lo) * i as f64 / 400.0;
                let xi = libm::round(x * libm::pow(2.0, f as f64)) as i128;
                let v = plan.eval_clear(xi);
                let got = v as f64 / libm::pow(2.0, out_f as f64);
                let want = libm::exp(xi as f64 / libm::pow(2.0, f as f64));
                // the opening's division by 2^b rounds x to f − b bits
                let quantum = libm::pow(2.0, plan.b as f64 - f as f64);
                let tol = want * (2e-6 + quantum) + 4.0 / libm::pow(2.0, out_f as f64);
                assert!(
                    (got - want).abs() <= tol,
                    "[{lo}, {hi}] f={f}: e^{x} = {want}, plan gives {got}"
                );
            }
        }
    }
}
