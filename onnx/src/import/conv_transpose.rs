//! `ConvTranspose` as a convolution: the input spread out by the stride
//! (zeros between its pixels: a reshape, a zero padding and a reshape, all
//! local under MPC), framed by the kernel's reach less the padding, then
//! convolved with stride 1 by the kernel flipped in space and with its
//! channel axes swapped within each group. The flipped kernel is the
//! owner's weight as the original is.
//!
//! The product is the plan's ordinary `Conv` with the owner's kernel, so it
//! runs on every backend; its cost grows with the spread input (stride²
//! times the input's pixels), which a direct transposed convolution would
//! not pay.

use super::{Builder, ImportError, attr, attr_i, invalid, pads, pair, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::{ConvAttrs, Op};
use ndarray::{ArrayD, IxDyn};

impl Builder {
    pub(super) fn conv_transpose(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let w = self.kernel(n)?;
        let xs = self.shape(x);
        if xs.len() != 4 {
            return Err(invalid(n.name(), "ConvTranspose input must be [N,C,H,W]"));
        }
        if attr(n, "output_shape").is_some() {
            return Err(unsupported(
                n,
                "output_shape (export with explicit pads and output_padding)",
            ));
        }
        let stride = pair(n, "strides", 1)?;
        let dilation = pair(n, "dilations", 1)?;
        let output_padding = pair(n, "output_padding", 0)?;
        let [top, left, bottom, right] = pads(n)?;
        let groups = usize::try_from(attr_i(n, "group", 1))
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| invalid(n.name(), "group must be positive"))?;
        if stride.contains(&0) || dilation.contains(&0) {
            return Err(invalid(n.name(), "strides and dilations must be positive"));
        }
        let &[c, per_group_out, kh, kw] = w.shape() else {
            return Err(invalid(n.name(), "kernel must be 4-D"));
        };
        if c != xs[1] || !c.is_multiple_of(groups) {
            return Err(invalid(
                n.name(),
                format!(
                    "kernel {:?} does not match {} input channels in {groups} groups",
                    w.shape(),
                    xs[1]
                ),
            ));
        }
        if kh == 0 || kw == 0 || per_group_out == 0 {
            return Err(invalid(n.name(), "empty kernel"));
        }
        let in_group = c / groups;
        let out_channels = per_group_out * groups;
        // Conv kernel [M, C/g, kh, kw]: output channel o of group g reads
        // input channel g·C/g + i through the transposed kernel's
        // [g·C/g + i, o mod M/g], flipped in space.
        let flipped = ArrayD::from_shape_fn(IxDyn(&[out_channels, in_group, kh, kw]), |ix| {
            let (o, i) = (ix[0], ix[1]);
            let group = o / per_group_out;
            w[[
                group * in_group + i,
                o % per_group_out,
                kh - 1 - ix[2],
                kw - 1 - ix[3],
            ]]
        });

        // Spread: x[.., i, j] moves to [.., i·s_h, j·s_w], zeros between
        // (and s − 1 zeros after the last pixel of each axis).
        let too_big = || invalid(n.name(), "spread input is over the size limit");
        let (h, wd) = (xs[2], xs[3]);
        let spread_h = h.checked_mul(stride[0]).ok_or_else(too_big)?;
        let spread_w = wd.checked_mul(stride[1]).ok_or_else(too_big)?;
        let mut v = x;
        if stride != [1, 1] {
            let split = vec![xs[0], c, h, 1, wd, 1];
            v = self.step(
                n,
                "split",
                Op::Reshape {
                    shape: split.clone(),
                },
                vec![v],
                split,
            );
            let pads = vec![
                (0, 0),
                (0, 0),
                (0, 0),
                (0, stride[0] - 1),
                (0, 0),
                (0, stride[1] - 1),
            ];
            let gaps = vec![xs[0], c, h, stride[0], wd, stride[1]];
            v = self.step(n, "gaps", Op::Pad { pads }, vec![v], gaps);
            let spread = vec![xs[0], c, spread_h, spread_w];
            v = self.step(
                n,
                "spread",
                Op::Reshape {
                    shape: spread.clone(),
                },
                vec![v],
                spread,
            );
        }

        // Frame: the kernel's reach d·(k − 1) on each side, less the
        // padding, plus output_padding after; the spread's trailing zeros
        // count towards it. Negative margins crop.
        let margins =
            |len: usize, s: usize, d: usize, k: usize, pb: usize, pe: usize, op: usize| {
                let reach = d as i128 * (k as i128 - 1);
                let before = reach - pb as i128;
                let after = reach - pe as i128 + op as i128 - (s as i128 - 1);
                let kept = len as i128 + before.min(0) + after.min(0);
                (before, after, kept)
            };
        let (hb, ha, hk) = margins(
            spread_h,
            stride[0],
            dilation[0],
            kh,
            top,
            bottom,
            output_padding[0],
        );
        let (wb, wa, wk) = margins(
            spread_w,
            stride[1],
            dilation[1],
            kw,
            left,
            right,
            output_padding[1],
        );
        if hk <= 0 || wk <= 0 {
            return Err(invalid(n.name(), "the padding leaves no output"));
        }
        if hb < 0 || ha < 0 || wb < 0 || wa < 0 {
            let range = |len: usize, before: i128, after: i128| -> Vec<usize> {
                let start = (-before).max(0) as usize;
                let end = (len as i128 + after.min(0)) as usize;
                (start..end).collect()
            };
            let picks = vec![
                (0..xs[0]).collect(),
                (0..c).collect(),
                range(spread_h, hb, ha),
                range(spread_w, wb, wa),
            ];
            let cropped = vec![xs[0], c, hk as usize, wk as usize];
            v = self.step(n, "cropped", Op::Select { picks }, vec![v], cropped);
        }
        let margin = |m: i128| usize::try_from(m.max(0)).map_err(|_| too_big());
        let attrs = ConvAttrs {
            stride: [1, 1],
            padding: [margin(hb)?, margin(wb)?, margin(ha)?, margin(wa)?],
            dilation,
            groups,
        };
        self.conv_with_bias(n, v, flipped, attrs)
    }
}
