//! Reductions by comparison: max and argmax along an axis (a log-depth tree
//! of pairwise comparisons) and 2-D max pooling.

use super::Party;
use super::compare::concat;
use crate::backend::Backend;
use crate::backend::conv::window_positions;
use crate::channel::Channel;
use crate::elementwise::{as_slice, from_vec};
use crate::error::{Error, Result, checked_elements};
use crate::preprocessing::Preprocessing;
use crate::ring::RingTensor;
use crate::share::ArithShare;
use alloc::format;
use alloc::vec::Vec;
use ndarray::IxDyn;

/// Parameters of 2-D max pooling (ONNX `MaxPool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2dParams {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride along H and W.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right (padded cells never win).
    pub padding: [usize; 4],
    /// Dilation along H and W.
    pub dilation: [usize; 2],
    /// Round the output size up (windows may then hang over the padding).
    pub ceil_mode: bool,
}

/// `x` with `axis` moved last, flattened to `(rows, k)`, and the shape of
/// the result without that axis.
fn rows_along(x: &ArithShare, axis: usize) -> Result<(Vec<u64>, usize, usize, Vec<usize>)> {
    let nd = x.shape().len();
    if axis >= nd {
        return Err(Error::Shape(format!(
            "axis {axis} out of range for rank {nd}"
        )));
    }
    let mut perm: Vec<usize> = (0..nd).filter(|&a| a != axis).collect();
    perm.push(axis);
    let moved = x.as_raw().view().permuted_axes(IxDyn(&perm));
    let flat: Vec<u64> = moved.as_standard_layout().iter().copied().collect();
    let k = x.shape()[axis];
    let rest: Vec<usize> = perm[..nd - 1].iter().map(|&a| x.shape()[a]).collect();
    let rows = rest.iter().product();
    Ok((flat, rows, k, rest))
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Tree of pairwise maxima over rows of `k` values; with `track`, also
    /// the index of the winner (first one on ties), as a plain integer share.
    /// Rounds: 8 per level, `⌈log2 k⌉` levels.
    pub(super) async fn max_rows(
        &mut self,
        mut vals: Vec<u64>,
        rows: usize,
        mut k: usize,
        track: bool,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        if k == 0 {
            return Err(Error::Shape("max over an empty axis".into()));
        }
        let me0 = self.id() == 0;
        // Indices start public: party 0 holds them.
        let mut idx: Vec<u64> = (0..rows * k)
            .map(|i| if me0 { (i % k) as u64 } else { 0 })
            .collect();
        while k > 1 {
            let h = k / 2;
            let mut a = Vec::with_capacity(rows * h);
            let mut b = Vec::with_capacity(rows * h);
            let (mut ia, mut ib) = (Vec::new(), Vec::new());
            for r in 0..rows {
                for i in 0..h {
                    a.push(vals[r * k + 2 * i]);
                    b.push(vals[r * k + 2 * i + 1]);
                    if track {
                        ia.push(idx[r * k + 2 * i]);
                        ib.push(idx[r * k + 2 * i + 1]);
                    }
                }
            }
            let n = a.len();
            let sh = |v: Vec<u64>| ArithShare::from_raw(from_vec(&[v.len()], v));
            let (a, b) = (sh(a), sh(b));
            let d = self.sub(&a, &b)?;
            let bits = self.msb(&d).await?; // a < b
            let b_minus_a = self.neg(&d);
            let (sel_bits, sel_vals) = if track {
                let di = self.sub(&sh(ib), &sh(ia.clone()))?;
                (
                    crate::bits::BitShare::concat(&[&bits, &bits]),
                    concat(&[&b_minus_a, &di]),
                )
            } else {
                (bits, b_minus_a)
            };
            let s = self.select(&sel_bits, &sel_vals).await?;
            let ss = as_slice(s.as_raw());
            let asl = as_slice(a.as_raw());
            let nk = k.div_ceil(2);
            let mut next = Vec::with_capacity(rows * nk);
            let mut next_idx = Vec::with_capacity(if track { rows * nk } else { 0 });
            for r in 0..rows {
                for i in 0..h {
                    let j = r * h + i;
                    next.push(asl[j].wrapping_add(ss[j]));
                    if track {
                        next_idx.push(ia[j].wrapping_add(ss[n + j]));
                    }
                }
                if k % 2 == 1 {
                    next.push(vals[r * k + k - 1]);
                    if track {
                        next_idx.push(idx[r * k + k - 1]);
                    }
                }
            }
            vals = next;
            if track {
                idx = next_idx;
            }
            k = nk;
        }
        Ok((vals, if track { idx } else { Vec::new() }))
    }

    /// Maximum along `axis` (the axis is removed).
    pub async fn max_axis(&mut self, x: &ArithShare, axis: usize) -> Result<ArithShare> {
        let (flat, rows, k, rest) = rows_along(x, axis)?;
        let (m, _) = self.max_rows(flat, rows, k, false).await?;
        Ok(ArithShare::from_raw(from_vec(&rest, m)))
    }

    /// Index of the maximum along `axis` (first on ties), as a fixed-point
    /// value (the axis is removed).
    pub async fn argmax_axis(&mut self, x: &ArithShare, axis: usize) -> Result<ArithShare> {
        let (flat, rows, k, rest) = rows_along(x, axis)?;
        let (_, idx) = self.max_rows(flat, rows, k, true).await?;
        let f = self.config.fixed_point.frac_bits();
        let idx: Vec<u64> = idx.into_iter().map(|i| i << f).collect();
        Ok(ArithShare::from_raw(from_vec(&rest, idx)))
    }

    /// 2-D max pooling of `x` `[N, C, H, W]`.
    pub async fn max_pool2d(&mut self, x: &ArithShare, p: &MaxPool2dParams) -> Result<ArithShare> {
        let &[n, c, h, w] = x.shape() else {
            return Err(Error::Shape(format!(
                "max_pool2d needs [N,C,H,W], got {:?}",
                x.shape()
            )));
        };
        let mut out_hw = [0usize; 2];
        for d in 0..2 {
            let (size, k, s, dil) = ([h, w][d], p.kernel[d], p.stride[d], p.dilation[d]);
            if k == 0 || s == 0 || dil == 0 {
                return Err(Error::Shape(
                    "kernel, stride and dilation must be positive".into(),
                ));
            }
            let pad = [p.padding[d], p.padding[d + 2]];
            out_hw[d] = window_positions(size, pad, k, s, dil, p.ceil_mode).ok_or_else(|| {
                Error::Shape("pooling window larger than the padded input".into())
            })?;
        }
        let [oh, ow] = out_hw;
        let kk = checked_elements("max_pool2d window", &p.kernel)?;
        checked_elements("max_pool2d windows", &[n, c, oh, ow, kk])?;
        let xs = x.as_raw().as_standard_layout();
        let xs = xs
            .as_slice()
            .ok_or_else(|| Error::Usage("input not contiguous".into()))?;
        // Padded cells hold a public −2^30 (party 0), so they never win.
        let pad = if self.id() == 0 {
            self.config.fixed_point.encode(-1073741824.0)?
        } else {
            0
        };
        let mut windows = Vec::with_capacity(n * c * oh * ow * kk);
        for plane in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ky in 0..p.kernel[0] {
                        for kx in 0..p.kernel[1] {
                            let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                - p.padding[0] as isize;
                            let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                - p.padding[1] as isize;
                            windows.push(
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    pad
                                } else {
                                    xs[(plane * h + iy as usize) * w + ix as usize]
                                },
                            );
                        }
                    }
                }
            }
        }
        let (m, _) = self.max_rows(windows, n * c * oh * ow, kk, false).await?;
        Ok(ArithShare::from_raw(from_vec(&[n, c, oh, ow], m)))
    }

    /// LeakyReLU: `x` where `x ≥ 0`, `alpha·x` below. Rounds: 7 + 1 + 1.
    pub async fn leaky_relu(&mut self, x: &ArithShare, alpha: f64) -> Result<ArithShare> {
        let fp = self.config.fixed_point;
        let neg = self.msb(x).await?;
        let pos = neg.not(self.id() == 0);
        // α·x + [x ≥ 0]·(1 − α)·x at double scale, one truncation.
        let a = self.mul_public_int(x, &RingTensor::from_elem(IxDyn(&[]), fp.encode(alpha)?))?;
        let b = self.mul_public_int(
            x,
            &RingTensor::from_elem(IxDyn(&[]), fp.encode(1.0 - alpha)?),
        )?;
        let s = self.select(&pos, &b).await?;
        let z = self.add(&a, &s)?;
        self.truncate(&z).await
    }
}
