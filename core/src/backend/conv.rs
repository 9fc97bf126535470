//! 2-D convolution lowered to GEMM by im2col.

use super::Backend;
use crate::error::{Error, Result, checked_elements};
use crate::ring::RingTensor;
use alloc::format;
use alloc::vec;
use ndarray::IxDyn;

/// Parameters of a 2-D convolution (ONNX `Conv` semantics, no bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride along H and W.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub padding: [usize; 4],
    /// Dilation along H and W.
    pub dilation: [usize; 2],
    /// Number of groups; input and output channels must divide by it.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// How many positions a window of `k` taps, `dil` apart, takes along an axis
/// of `size` padded by `pad = [before, after]` at `stride`; with `ceil`,
/// counting a last partial step, as long as it starts inside the input or
/// its leading padding. `None` when the window does not fit, the stride is
/// zero, or a size overflows (sizes come from peers' plans). Shared by
/// convolution and both evaluators' pooling.
pub(crate) fn window_positions(
    size: usize,
    [before, after]: [usize; 2],
    k: usize,
    stride: usize,
    dil: usize,
    ceil: bool,
) -> Option<usize> {
    let padded = size.checked_add(before)?.checked_add(after)?;
    let span = dil.checked_mul(k.max(1) - 1)?.checked_add(1)?;
    if stride == 0 || padded < span {
        return None;
    }
    let mut o = if ceil {
        (padded - span).div_ceil(stride) + 1
    } else {
        (padded - span) / stride + 1
    };
    // (`size + before ≤ padded` cannot overflow.)
    if ceil && (o - 1).saturating_mul(stride) >= size + before {
        o -= 1;
    }
    Some(o)
}

/// Output height and width for an input of `hw` and a kernel of `khw`.
pub fn conv2d_output_hw(hw: [usize; 2], khw: [usize; 2], p: &Conv2dParams) -> Result<[usize; 2]> {
    let mut out = [0; 2];
    for d in 0..2 {
        if p.stride[d] == 0 || p.dilation[d] == 0 {
            return Err(Error::Shape("stride and dilation must be positive".into()));
        }
        let pad = [p.padding[d], p.padding[d + 2]];
        out[d] = window_positions(hw[d], pad, khw[d], p.stride[d], p.dilation[d], false)
            .filter(|_| khw[d] != 0)
            .ok_or_else(|| {
                Error::Shape(format!(
                    "kernel {khw:?} with dilation {:?} does not fit input {hw:?} padded by {:?}",
                    p.dilation, p.padding
                ))
            })?;
    }
    Ok(out)
}

/// Checks `input [N,C,H,W]` and `kernel [O,C/g,kh,kw]` and returns the output shape.
pub fn conv2d_output_shape(
    input: &[usize],
    kernel: &[usize],
    p: &Conv2dParams,
) -> Result<[usize; 4]> {
    let (&[n, c, h, w], &[o, cg, kh, kw]) = (input, kernel) else {
        return Err(Error::Shape(format!(
            "conv2d needs a 4-D input and kernel, got {input:?} and {kernel:?}"
        )));
    };
    let g = p.groups;
    if g == 0 || c % g != 0 || o % g != 0 || cg != c / g {
        return Err(Error::Shape(format!(
            "conv2d: input channels {c}, kernel {kernel:?} and groups {g} do not agree"
        )));
    }
    let [oh, ow] = conv2d_output_hw([h, w], [kh, kw], p)?;
    checked_elements("conv2d output", &[n, o, oh, ow])?;
    checked_elements("conv2d column buffer", &[cg, kh, kw, oh, ow])?;
    Ok([n, o, oh, ow])
}

/// Fills `col` (`cg·kh·kw` rows × `oh·ow` columns, row-major) with the
/// zero-padded input pixels that image `img`, group `grp` of a convolution
/// multiplies with each kernel entry: the right operand of the GEMM that
/// computes the group's output channels. `x` is the whole `[N, C, H, W]` input.
pub fn im2col(
    x: &[crate::ring::Ring],
    [c, h, w]: [usize; 3],
    [cg, kh, kw]: [usize; 3],
    p: &Conv2dParams,
    img: usize,
    grp: usize,
    col: &mut [crate::ring::Ring],
) {
    let Ok([oh, ow]) = conv2d_output_hw([h, w], [kh, kw], p) else {
        return;
    };
    let cols = oh * ow;
    for ci in 0..cg {
        let plane = &x[((img * c) + grp * cg + ci) * h * w..][..h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let r = (ci * kh + ky) * kw + kx;
                let dst = &mut col[r * cols..(r + 1) * cols];
                for oy in 0..oh {
                    let iy =
                        (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.padding[0] as isize;
                    let drow = &mut dst[oy * ow..(oy + 1) * ow];
                    if iy < 0 || iy >= h as isize {
                        drow.fill(0);
                        continue;
                    }
                    let src = &plane[iy as usize * w..][..w];
                    // Output columns whose input column `ox·s + kx·d − pad`
                    // lies inside the row: `lo..hi`; the rest is padding.
                    let (s, off) = (p.stride[1], kx * p.dilation[1]);
                    let lo = p.padding[1].saturating_sub(off).div_ceil(s).min(ow);
                    let hi = (w + p.padding[1])
                        .saturating_sub(off)
                        .div_ceil(s)
                        .clamp(lo, ow);
                    drow[..lo].fill(0);
                    drow[hi..].fill(0);
                    if lo < hi {
                        let first = lo * s + off - p.padding[1];
                        let src = src[first..].iter().step_by(s);
                        for (d, &v) in drow[lo..hi].iter_mut().zip(src) {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

/// im2col + GEMM per image and group.
pub(crate) fn conv2d_im2col<B: Backend + ?Sized>(
    backend: &B,
    input: &RingTensor,
    kernel: &RingTensor,
    p: &Conv2dParams,
) -> Result<RingTensor> {
    let [n, o, oh, ow] = conv2d_output_shape(input.shape(), kernel.shape(), p)?;
    let (c, h, w) = (input.shape()[1], input.shape()[2], input.shape()[3]);
    let (kh, kw) = (kernel.shape()[2], kernel.shape()[3]);
    let g = p.groups;
    let (cg, og) = (c / g, o / g);
    let input = input.as_standard_layout();
    let kernel = kernel.as_standard_layout();
    let (Some(x), Some(kdata)) = (input.as_slice(), kernel.as_slice()) else {
        return Err(Error::Usage("conv2d operands must be contiguous".into()));
    };
    let rows = cg * kh * kw;
    let cols = oh * ow;
    let mut out = vec![0u64; n * o * cols];
    let mut col = vec![0u64; rows * cols];
    for img in 0..n {
        for grp in 0..g {
            im2col(x, [c, h, w], [cg, kh, kw], p, img, grp, &mut col);
            let wk = &kdata[grp * og * rows..(grp + 1) * og * rows];
            let dst = &mut out[(img * o + grp * og) * cols..][..og * cols];
            backend.gemm(og, rows, cols, wk, &col, dst);
        }
    }
    RingTensor::from_shape_vec(IxDyn(&[n, o, oh, ow]), out)
        .map_err(|e| Error::Shape(format!("conv2d output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::prg::{Prg, Seed};

    #[test]
    fn sizes_from_a_plan_cannot_overflow_or_allocate_past_the_limits() {
        let huge_pad = Conv2dParams {
            padding: [usize::MAX, 0, 1, 0],
            ..Conv2dParams::default()
        };
        assert!(matches!(
            conv2d_output_hw([4, 4], [1, 1], &huge_pad),
            Err(Error::Shape(_))
        ));
        let huge_dilation = Conv2dParams {
            dilation: [usize::MAX, 1],
            ..Conv2dParams::default()
        };
        assert!(matches!(
            conv2d_output_hw([4, 4], [3, 1], &huge_dilation),
            Err(Error::Shape(_))
        ));
        // A 1×1 input padded to 2^15 on each side: the output alone would
        // be 2^30 elements.
        let wide = Conv2dParams {
            padding: [1 << 15; 4],
            ..Conv2dParams::default()
        };
        assert!(matches!(
            conv2d_output_shape(&[1, 1, 1, 1], &[1, 1, 1, 1], &wide),
            Err(Error::Shape(_))
        ));
        assert!(
            conv2d_output_shape(&[1, 1, 8, 8], &[2, 1, 3, 3], &Conv2dParams::default()).is_ok()
        );
    }

    /// Direct 7-loop convolution, the reference.
    fn conv_naive(x: &RingTensor, k: &RingTensor, p: &Conv2dParams) -> RingTensor {
        let [n, o, oh, ow] = conv2d_output_shape(x.shape(), k.shape(), p).unwrap();
        let (c, h, w) = (x.shape()[1], x.shape()[2], x.shape()[3]);
        let (cg, kh, kw) = (k.shape()[1], k.shape()[2], k.shape()[3]);
        let og = o / p.groups;
        let mut out = RingTensor::zeros(IxDyn(&[n, o, oh, ow]));
        for b in 0..n {
            for oc in 0..o {
                let grp = oc / og;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0u64;
                        for ci in 0..cg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                        - p.padding[0] as isize;
                                    let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                        - p.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xv = x[[b, grp * cg + ci, iy as usize, ix as usize]];
                                    acc = acc.wrapping_add(xv.wrapping_mul(k[[oc, ci, ky, kx]]));
                                }
                            }
                        }
                        out[[b, oc, oy, ox]] = acc;
                    }
                }
            }
        }
        let _ = c;
        out
    }

    #[test]
    fn im2col_matches_direct_convolution() {
        let mut prg = Prg::new(&Seed::from_bytes([4; 32]));
        let cases = [
            ([1, 1, 5, 5], [1, 1, 3, 3], Conv2dParams::default()),
            (
                [2, 4, 7, 6],
                [6, 2, 3, 2],
                Conv2dParams {
                    stride: [2, 1],
                    padding: [1, 0, 2, 1],
                    dilation: [1, 2],
                    groups: 2,
                },
            ),
            (
                // Big enough for AMX where the CPU has it (16 output
                // channels a group, 36 deep): the im2col matrix read from
                // the image, runs of 16 pixels borrowed, edges gathered.
                [2, 8, 20, 37],
                [32, 4, 3, 3],
                Conv2dParams {
                    stride: [1, 1],
                    padding: [1, 1, 1, 2],
                    dilation: [1, 1],
                    groups: 2,
                },
            ),
            (
                // The same with a stride and dilation: every pixel gathered.
                [1, 6, 19, 23],
                [24, 6, 3, 2],
                Conv2dParams {
                    stride: [2, 3],
                    padding: [2, 1, 0, 3],
                    dilation: [1, 2],
                    groups: 1,
                },
            ),
            (
                // Two images, a larger matrix, asymmetric padding.
                [2, 16, 41, 40],
                [8, 16, 3, 3],
                Conv2dParams {
                    stride: [1, 1],
                    padding: [1, 0, 0, 2],
                    dilation: [1, 1],
                    groups: 1,
                },
            ),
            (
                // Padding wider than the kernel reaches: whole rows and
                // runs of columns are padding; a stride of 3 skips columns.
                [1, 2, 5, 4],
                [2, 2, 2, 3],
                Conv2dParams {
                    stride: [1, 3],
                    padding: [2, 3, 1, 4],
                    dilation: [2, 1],
                    groups: 1,
                },
            ),
            (
                [1, 3, 8, 8],
                [3, 1, 3, 3],
                Conv2dParams {
                    padding: [1; 4],
                    groups: 3,
                    ..Conv2dParams::default()
                },
            ),
        ];
        for (xs, ks, p) in cases {
            let x = prg.tensor(&xs);
            let k = prg.tensor(&ks);
            let got = CpuBackend.conv2d(&x, &k, &p).unwrap();
            assert_eq!(got, conv_naive(&x, &k, &p), "{xs:?} {ks:?} {p:?}");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = RingTensor::zeros(IxDyn(&[1, 3, 4, 4]));
        let k = RingTensor::zeros(IxDyn(&[2, 2, 3, 3]));
        assert!(CpuBackend.conv2d(&x, &k, &Conv2dParams::default()).is_err());
        let k = RingTensor::zeros(IxDyn(&[2, 3, 5, 5]));
        assert!(CpuBackend.conv2d(&x, &k, &Conv2dParams::default()).is_err());
        let p = Conv2dParams {
            stride: [0, 1],
            ..Conv2dParams::default()
        };
        let k = RingTensor::zeros(IxDyn(&[2, 3, 3, 3]));
        assert!(CpuBackend.conv2d(&x, &k, &p).is_err());
    }
}
