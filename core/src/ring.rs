//! The ring Z_2^64 and two's-complement fixed point on it.
//!
//! Ring elements are plain `u64` with wrapping arithmetic. A real number `x` is
//! encoded with `f` fractional bits as `round(x * 2^f)`, taken as an `i64` and
//! reinterpreted as `u64` (two's complement), so negative numbers sit at the
//! top of the ring.
//!
//! * **Rounding:** encoding rounds to the nearest multiple of `2^-f`, ties away
//!   from zero (`f64::round`), so the encoding error is at most `2^-(f+1)`.
//! * **Range:** encodable values satisfy `|x| < 2^(62-f)`: one bit of headroom
//!   below the sign bit so that a sum of two encoded values cannot wrap.
//!   With the default `f = 16` that is `|x| < 2^46 ≈ 7.0e13`. Products are held
//!   at scale `2^(2f)` until truncated, so the operands of a product must
//!   satisfy `|x·y| < 2^(61-2f)` (`≈ 3.4e8` at `f = 16`) for the dealer-assisted
//!   truncation to be exact up to one unit in the last place.
//! * **Decoding** reads the element as `i64` and divides by `2^f`; it is exact
//!   for `f64` when `|value| < 2^53`.

use crate::error::{Error, Result};
use alloc::format;
use ndarray::ArrayD;

/// A ring element of Z_2^64.
pub type Ring = u64;

/// A tensor of ring elements: the storage of every share and correlation.
pub type RingTensor = ArrayD<Ring>;

/// Fractional bits used when a model does not say otherwise.
pub const DEFAULT_FRAC_BITS: u32 = 16;

/// Two's-complement fixed-point encoding with `frac_bits` fractional bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl Default for FixedPoint {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FixedPoint {
    /// `f = 16` fractional bits.
    pub const DEFAULT: FixedPoint = FixedPoint {
        frac_bits: DEFAULT_FRAC_BITS,
    };

    /// A fixed-point encoding with `frac_bits` fractional bits (at most 30, so
    /// that products at scale `2^(2f)` leave room for integer bits).
    pub fn new(frac_bits: u32) -> Result<Self> {
        if frac_bits > 30 {
            return Err(Error::Usage(format!(
                "{frac_bits} fractional bits leave no room for products; use at most 30"
            )));
        }
        Ok(FixedPoint { frac_bits })
    }

    /// Number of fractional bits `f`.
    pub fn frac_bits(self) -> u32 {
        self.frac_bits
    }

    /// The scale `2^f` as a ring element (the encoding of 1.0).
    pub fn scale(self) -> Ring {
        1u64 << self.frac_bits
    }

    /// Largest magnitude that [`FixedPoint::encode`] accepts (exclusive).
    pub fn max_abs(self) -> f64 {
        pow2(62 - self.frac_bits as i32)
    }

    /// Encodes one value, rejecting NaN, infinities and values out of range.
    pub fn encode(self, x: f64) -> Result<Ring> {
        if !x.is_finite() {
            return Err(Error::Encoding(format!("{x} is not a finite number")));
        }
        if x.abs() >= self.max_abs() {
            return Err(Error::Encoding(format!(
                "{x} is outside the representable range ±{:e} for {} fractional bits",
                self.max_abs(),
                self.frac_bits
            )));
        }
        Ok(round_half_away(x * pow2(self.frac_bits as i32)) as i64 as u64)
    }

    /// Decodes one ring element as a signed fixed-point number.
    pub fn decode(self, r: Ring) -> f64 {
        (r as i64) as f64 * pow2(-(self.frac_bits as i32))
    }

    /// Encodes every element of a tensor; fails on the first value out of range.
    pub fn encode_tensor(self, x: &ArrayD<f64>) -> Result<RingTensor> {
        let mut out = RingTensor::zeros(x.raw_dim());
        for (o, &v) in out.iter_mut().zip(x.iter()) {
            *o = self.encode(v)?;
        }
        Ok(out)
    }

    /// Encodes an `f32` tensor.
    pub fn encode_tensor_f32(self, x: &ArrayD<f32>) -> Result<RingTensor> {
        self.encode_tensor(&x.mapv(f64::from))
    }

    /// Decodes every element of a tensor.
    pub fn decode_tensor(self, r: &RingTensor) -> ArrayD<f64> {
        r.mapv(|v| self.decode(v))
    }

    /// Decodes every element of a tensor to `f32`.
    pub fn decode_tensor_f32(self, r: &RingTensor) -> ArrayD<f32> {
        r.mapv(|v| self.decode(v) as f32)
    }
}

/// `2^e` as an `f64`, exact for `|e| < 1022` (no `std` needed).
pub(crate) fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// `round` without `std`: half away from zero. Exact for every finite `f64`
/// whose magnitude is below `2^63`.
fn round_half_away(x: f64) -> f64 {
    // Values of magnitude >= 2^52 are already integers.
    if x.abs() >= pow2(52) {
        return x;
    }
    let t = x.trunc_no_std();
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

trait TruncNoStd {
    fn trunc_no_std(self) -> f64;
}

impl TruncNoStd for f64 {
    fn trunc_no_std(self) -> f64 {
        // Exact: callers guarantee |self| < 2^52, so the i64 round trip is exact.
        (self as i64) as f64
    }
}

/// A 128-bit element from two words, low first.
pub(crate) fn wide(lo: u64, hi: u64) -> u128 {
    (hi as u128) << 64 | lo as u128
}

/// Writes a 128-bit element into two words, low first.
#[inline(always)]
pub(crate) fn put_wide(slot: &mut [u64], v: u128) {
    slot[0] = v as u64;
    slot[1] = (v >> 64) as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let fp = FixedPoint::default();
        for &x in &[0.0, 1.0, -1.0, 0.5, -0.5, 3.25, -1234.5678, 1e9, -1e9] {
            let err = (fp.decode(fp.encode(x).unwrap()) - x).abs();
            assert!(err <= pow2(-17), "{x}: error {err}");
        }
        assert_eq!(fp.encode(1.0).unwrap(), 1 << 16);
        assert_eq!(fp.encode(-1.0).unwrap(), (-(1i64 << 16)) as u64);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        let fp = FixedPoint::new(0).unwrap();
        assert_eq!(fp.encode(2.5).unwrap() as i64, 3);
        assert_eq!(fp.encode(-2.5).unwrap() as i64, -3);
        assert_eq!(fp.encode(2.49).unwrap() as i64, 2);
        assert_eq!(fp.encode(-0.4).unwrap() as i64, 0);
    }

    #[test]
    fn out_of_range_and_non_finite_are_errors() {
        let fp = FixedPoint::default();
        assert!(matches!(fp.encode(f64::NAN), Err(Error::Encoding(_))));
        assert!(matches!(fp.encode(f64::INFINITY), Err(Error::Encoding(_))));
        assert!(matches!(fp.encode(pow2(46)), Err(Error::Encoding(_))));
        assert!(fp.encode(pow2(46) * 0.99).is_ok());
        assert!(matches!(FixedPoint::new(31), Err(Error::Usage(_))));
    }

    #[test]
    fn pow2_matches_std() {
        for e in -60..60 {
            assert_eq!(pow2(e), 2f64.powi(e));
        }
    }
}
