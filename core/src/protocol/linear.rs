//! Local (communication-free) linear operations, and the reductions built on
//! them: sum, mean, average pooling.

use super::Party;
use crate::backend::{Backend, Conv2dParams, conv2d_output_hw};
use crate::channel::Channel;
use crate::error::{Error, Result, checked_elements};
use crate::preprocessing::{Divisor, Preprocessing};
use crate::ring::RingTensor;
use crate::share::ArithShare;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// Parameters of 2-D average pooling (ONNX `AveragePool`, floor mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2dParams {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride along H and W.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub padding: [usize; 4],
    /// Divide by the full window (true) or by the in-bounds pixels only (false,
    /// the ONNX default).
    pub count_include_pad: bool,
}

fn zip_shares(
    x: &ArithShare,
    y: &ArithShare,
    f: impl Fn(u64, u64) -> u64 + Sync + Send,
) -> Result<ArithShare> {
    if x.shape() != y.shape() {
        return Err(Error::Shape(format!(
            "operands {:?} and {:?} differ",
            x.shape(),
            y.shape()
        )));
    }
    Ok(ArithShare::from_raw(crate::elementwise::zip_map(
        x.as_raw(),
        y.as_raw(),
        f,
    )))
}

fn broadcast_to<'a>(c: &'a RingTensor, shape: &[usize]) -> Result<ndarray::ArrayViewD<'a, u64>> {
    c.broadcast(IxDyn(shape)).ok_or_else(|| {
        Error::Shape(format!(
            "public operand {:?} does not broadcast to {shape:?}",
            c.shape()
        ))
    })
}

/// `Σ` over `axes` with wrapping arithmetic (ndarray's `sum` would trap on
/// overflow in debug builds).
pub(crate) fn sum_axes(x: &RingTensor, axes: &[usize], keepdims: bool) -> Result<RingTensor> {
    let mut sorted: Vec<usize> = axes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.last().is_some_and(|&a| a >= x.ndim()) {
        return Err(Error::Shape(format!(
            "axes {axes:?} out of range for rank {}",
            x.ndim()
        )));
    }
    let mut out = x.clone();
    for &a in sorted.iter().rev() {
        out = out.fold_axis(Axis(a), 0u64, |acc, &v| acc.wrapping_add(v));
        if keepdims {
            out.insert_axis_inplace(Axis(a));
        }
    }
    Ok(out)
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// `x + y`.
    pub fn add(&self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        zip_shares(x, y, u64::wrapping_add)
    }

    /// `x - y`.
    pub fn sub(&self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        zip_shares(x, y, u64::wrapping_sub)
    }

    /// `-x`.
    pub fn neg(&self, x: &ArithShare) -> ArithShare {
        ArithShare::from_raw(crate::elementwise::map(x.as_raw(), u64::wrapping_neg))
    }

    /// `x + c` for a public ring tensor `c` (broadcast to `x`'s shape); only
    /// party 0 adds it.
    pub fn add_public(&self, x: &ArithShare, c: &RingTensor) -> Result<ArithShare> {
        let c = broadcast_to(c, x.shape())?;
        if self.id() != 0 {
            return Ok(x.clone());
        }
        Ok(ArithShare::from_raw(
            Zip::from(x.as_raw())
                .and(&c)
                .map_collect(|&a, &b| a.wrapping_add(b)),
        ))
    }

    /// `x · c` for a public integer ring tensor `c` (broadcast): no scale change.
    pub fn mul_public_int(&self, x: &ArithShare, c: &RingTensor) -> Result<ArithShare> {
        let c = broadcast_to(c, x.shape())?;
        Ok(ArithShare::from_raw(
            Zip::from(x.as_raw())
                .and(&c)
                .map_collect(|&a, &b| a.wrapping_mul(b)),
        ))
    }

    /// `x · c` for public real values `c` (broadcast), truncated back to
    /// scale. When every `c` is an integer (the −1 of a negation, a doubling)
    /// the shares are multiplied by it directly: exact, local, no truncation.
    pub async fn mul_public(&mut self, x: &ArithShare, c: &ArrayD<f64>) -> Result<ArithShare> {
        if let Some(ints) = small_integers(c) {
            return self.mul_public_int(x, &ints);
        }
        let c = self.config.fixed_point.encode_tensor(c)?;
        let y = self.mul_public_int(x, &c)?;
        self.truncate(&y).await
    }

    /// Sum over `axes` (local).
    pub fn sum(&self, x: &ArithShare, axes: &[usize], keepdims: bool) -> Result<ArithShare> {
        Ok(ArithShare::from_raw(sum_axes(x.as_raw(), axes, keepdims)?))
    }

    /// Mean over `axes`: a local sum and one exact public division (1 round).
    pub async fn mean(
        &mut self,
        x: &ArithShare,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<ArithShare> {
        let mut axes: Vec<usize> = axes.to_vec();
        axes.sort_unstable();
        axes.dedup();
        let s = self.sum(x, &axes, keepdims)?;
        let count = axes.iter().map(|&a| x.shape()[a]).product::<usize>().max(1);
        self.div_public(&s, &Divisor::Uniform(count as u64)).await
    }

    /// 2-D average pooling of `x` `[N, C, H, W]`: a local window sum and one
    /// exact public division by the window size (1 round).
    pub async fn avg_pool2d(&mut self, x: &ArithShare, p: &AvgPool2dParams) -> Result<ArithShare> {
        let &[n, c, h, w] = x.shape() else {
            return Err(Error::Shape(format!(
                "avg_pool2d needs [N,C,H,W], got {:?}",
                x.shape()
            )));
        };
        let conv = Conv2dParams {
            stride: p.stride,
            padding: p.padding,
            ..Conv2dParams::default()
        };
        let [oh, ow] = conv2d_output_hw([h, w], p.kernel, &conv)?;
        let window = checked_elements("avg_pool2d window", &p.kernel)?;
        checked_elements("avg_pool2d output", &[n, c, oh, ow])?;
        let xs = x.as_raw().as_standard_layout();
        let mut out = vec![0u64; n * c * oh * ow];
        let mut counts = vec![0u64; oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let y0 = (oy * p.stride[0]) as isize - p.padding[0] as isize;
                let x0 = (ox * p.stride[1]) as isize - p.padding[1] as isize;
                let ys = y0.max(0) as usize
                    ..((y0 + p.kernel[0] as isize).min(h as isize)).max(0) as usize;
                let xr = x0.max(0) as usize
                    ..((x0 + p.kernel[1] as isize).min(w as isize)).max(0) as usize;
                counts[oy * ow + ox] = (ys.len() * xr.len()) as u64;
                for plane in 0..n * c {
                    let mut acc = 0u64;
                    for iy in ys.clone() {
                        for ix in xr.clone() {
                            acc = acc.wrapping_add(xs[[plane / c, plane % c, iy, ix]]);
                        }
                    }
                    out[(plane * oh + oy) * ow + ox] = acc;
                }
            }
        }
        let sums = ArithShare::from_raw(
            RingTensor::from_shape_vec(IxDyn(&[n, c, oh, ow]), out)
                .map_err(|e| Error::Shape(format!("{e}")))?,
        );
        let divisor = if p.count_include_pad || counts.iter().all(|&k| k == counts[0]) {
            Divisor::Uniform(if p.count_include_pad {
                window as u64
            } else {
                counts.first().copied().unwrap_or(1).max(1)
            })
        } else {
            if counts.contains(&0) {
                return Err(Error::Shape(
                    "a pooling window lies entirely in the padding".into(),
                ));
            }
            Divisor::PerElement((0..n * c).flat_map(|_| counts.iter().copied()).collect())
        };
        self.div_public(&sums, &divisor).await
    }
}

/// `c` as ring elements when every value is an integer of at most 2^31 in
/// magnitude (a larger one keeps the fixed-point path, which bounds it).
fn small_integers(c: &ArrayD<f64>) -> Option<RingTensor> {
    const BOUND: f64 = (1u64 << 31) as f64;
    c.iter()
        .all(|&v| (-BOUND..=BOUND).contains(&v) && (v as i64) as f64 == v)
        .then(|| c.mapv(|v| v as i64 as u64))
}
