//! The plaintext evaluator: the same plan in `f64`, the reference of every
//! model test.

use super::{Op, Plan, Weights, layout};
use crate::error::{Error, Result, checked_elements};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::{ArrayD, Axis, IxDyn};

fn shape_err(e: impl core::fmt::Display) -> Error {
    Error::Shape(format!("{e}"))
}

/// Broadcasts two arrays to their common shape and combines them.
fn broadcast2(
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    f: impl Fn(f64, f64) -> f64,
) -> Result<ArrayD<f64>> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let a = a
        .broadcast(IxDyn(&shape))
        .ok_or_else(|| shape_err("broadcast"))?;
    let b = b
        .broadcast(IxDyn(&shape))
        .ok_or_else(|| shape_err("broadcast"))?;
    Ok(ndarray::Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y)))
}

/// Numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= r {
            s[i + s.len() - r]
        } else {
            1
        }
    };
    (0..r)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::Shape(format!("{a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

/// `x · w` over the last axis of `x` and the first of 2-D `w`.
fn matmul_last(x: &ArrayD<f64>, w: &ArrayD<f64>) -> Result<ArrayD<f64>> {
    let (k, n) = match w.shape() {
        &[k, n] => (k, n),
        s => {
            return Err(Error::Shape(format!(
                "weight of a matrix product must be 2-D, got {s:?}"
            )));
        }
    };
    let xs = x.shape();
    if xs.last() != Some(&k) {
        return Err(Error::Shape(format!("{xs:?} · {:?}", w.shape())));
    }
    let rows = x.len() / k.max(1);
    let x2 = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, k))
        .map_err(shape_err)?;
    let w2 = w
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((k, n))
        .map_err(shape_err)?;
    let y = x2.dot(&w2);
    let mut out_shape = xs.to_vec();
    if let Some(last) = out_shape.last_mut() {
        *last = n;
    }
    y.into_shape_with_order(IxDyn(&out_shape))
        .map_err(shape_err)
}

/// Matrix product over the last two axes, batch axes broadcast.
fn batched_matmul(a: &ArrayD<f64>, b: &ArrayD<f64>) -> Result<ArrayD<f64>> {
    let op = crate::bilinear::BilinearOp::MatMul {
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    };
    let out = op.out_shape()?;
    let nb = out.len() - 2;
    let (m, n) = (out[nb], out[nb + 1]);
    let k = a.shape()[a.ndim() - 1];
    let ab = a
        .broadcast(IxDyn(&[&out[..nb], &[m, k]].concat()))
        .ok_or_else(|| shape_err("broadcast"))?
        .to_owned();
    let bb = b
        .broadcast(IxDyn(&[&out[..nb], &[k, n]].concat()))
        .ok_or_else(|| shape_err("broadcast"))?
        .to_owned();
    let count: usize = out[..nb].iter().product();
    let a3 = ab.into_shape_with_order((count, m, k)).map_err(shape_err)?;
    let b3 = bb.into_shape_with_order((count, k, n)).map_err(shape_err)?;
    let mut y = ndarray::Array3::<f64>::zeros((count, m, n));
    for i in 0..count {
        y.index_axis_mut(Axis(0), i)
            .assign(&a3.index_axis(Axis(0), i).dot(&b3.index_axis(Axis(0), i)));
    }
    y.into_shape_with_order(IxDyn(&out)).map_err(shape_err)
}

fn conv(x: &ArrayD<f64>, w: &ArrayD<f64>, a: &super::ConvAttrs) -> Result<ArrayD<f64>> {
    let p: crate::backend::Conv2dParams = (*a).into();
    // The backend's check of shapes and groups, so the reference accepts
    // exactly the convolutions the secure evaluation does.
    let [n, o, oh, ow] = crate::backend::conv::conv2d_output_shape(x.shape(), w.shape(), &p)?;
    let (c, h, wd) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let (cg, kh, kw) = (w.shape()[1], w.shape()[2], w.shape()[3]);
    let og = o / p.groups;
    let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
    let (Some(xs), Some(ws)) = (x.as_slice(), w.as_slice()) else {
        return Err(Error::Shape("conv operands are not contiguous".into()));
    };
    // Direct convolution on slices, one output plane at a time: for each
    // kernel tap, a scaled row of input pixels is added to a row of the plane.
    let mut out = vec![0.0; n * o * oh * ow];
    for (plane_ix, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
        let (b, oc) = (plane_ix / o, plane_ix % o);
        let g = oc / og;
        for ci in 0..cg {
            let xin = &xs[(b * c + g * cg + ci) * h * wd..][..h * wd];
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = ws[((oc * cg + ci) * kh + ky) * kw + kx];
                    for (oy, orow) in plane.chunks_exact_mut(ow).enumerate() {
                        let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                            - p.padding[0] as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let xrow = &xin[iy as usize * wd..][..wd];
                        for (ox, acc) in orow.iter_mut().enumerate() {
                            let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                - p.padding[1] as isize;
                            if ix >= 0 && (ix as usize) < wd {
                                *acc += xrow[ix as usize] * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[n, o, oh, ow]), out).map_err(shape_err)
}

fn pool(x: &ArrayD<f64>, a: &super::PoolAttrs, max: bool) -> Result<ArrayD<f64>> {
    let &[n, c, h, w] = x.shape() else {
        return Err(Error::Shape("pooling needs [N,C,H,W]".into()));
    };
    let out_hw = a
        .output_hw([h, w], max)
        .ok_or_else(|| Error::Shape("pooling window does not fit".into()))?;
    let window = checked_elements("pooling window", &a.kernel)?;
    checked_elements("pooling windows", &[n, c, out_hw[0], out_hw[1], window])?;
    Ok(ArrayD::from_shape_fn(
        IxDyn(&[n, c, out_hw[0], out_hw[1]]),
        |ix| {
            let (mut m, mut s, mut cnt) = (f64::MIN, 0.0, 0usize);
            for ky in 0..a.kernel[0] {
                for kx in 0..a.kernel[1] {
                    let dy = if max { a.dilation[0] } else { 1 };
                    let dx = if max { a.dilation[1] } else { 1 };
                    let iy = (ix[2] * a.stride[0] + ky * dy) as isize - a.padding[0] as isize;
                    let ixx = (ix[3] * a.stride[1] + kx * dx) as isize - a.padding[1] as isize;
                    if iy >= 0 && ixx >= 0 && (iy as usize) < h && (ixx as usize) < w {
                        let v = x[[ix[0], ix[1], iy as usize, ixx as usize]];
                        m = m.max(v);
                        s += v;
                        cnt += 1;
                    }
                }
            }
            if max {
                m
            } else if a.count_include_pad {
                s / (a.kernel[0] * a.kernel[1]) as f64
            } else {
                s / cnt.max(1) as f64
            }
        },
    ))
}

/// Evaluates `plan` on `inputs` (one per [`Plan::inputs`]) in `f64`.
pub fn evaluate(
    plan: &Plan,
    weights: &Weights,
    inputs: &[ArrayD<f64>],
) -> Result<Vec<ArrayD<f64>>> {
    plan.validate()?;
    if inputs.len() != plan.inputs.len() || weights.tensors.len() != plan.weights.len() {
        return Err(Error::Usage("wrong number of inputs or weights".into()));
    }
    let mut vals: Vec<Option<ArrayD<f64>>> = vec![None; plan.values.len()];
    for (&id, x) in plan.inputs.iter().zip(inputs) {
        if x.shape() != plan.values[id].shape.as_slice() {
            return Err(Error::Shape(format!(
                "input {} has shape {:?}, the plan says {:?}",
                plan.values[id].name,
                x.shape(),
                plan.values[id].shape
            )));
        }
        vals[id] = Some(x.clone());
    }
    for node in &plan.nodes {
        let arg = |i: usize| -> Result<&ArrayD<f64>> {
            node.inputs
                .get(i)
                .and_then(|&v| vals[v].as_ref())
                .ok_or_else(|| Error::Usage(format!("node {} is missing input {i}", node.name)))
        };
        let w = |id: usize| &weights.tensors[id];
        let y = match &node.op {
            Op::MatMulWeight { weight } => matmul_last(arg(0)?, w(*weight))?,
            Op::Conv { weight, attrs } => conv(arg(0)?, w(*weight), attrs)?,
            Op::AddWeight { weight } => broadcast2(arg(0)?, w(*weight), |a, b| a + b)?,
            Op::MulWeight { weight } => broadcast2(arg(0)?, w(*weight), |a, b| a * b)?,
            Op::AddConst(c) => broadcast2(arg(0)?, &c.to_array()?, |a, b| a + b)?,
            Op::MulConst(c) => broadcast2(arg(0)?, &c.to_array()?, |a, b| a * b)?,
            Op::Add => broadcast2(arg(0)?, arg(1)?, |a, b| a + b)?,
            Op::Sub => broadcast2(arg(0)?, arg(1)?, |a, b| a - b)?,
            Op::Mul => broadcast2(arg(0)?, arg(1)?, |a, b| a * b)?,
            Op::MatMul => batched_matmul(arg(0)?, arg(1)?)?,
            Op::Relu => arg(0)?.mapv(|v| v.max(0.0)),
            Op::Clip { lo, hi } => arg(0)?.mapv(|v| v.clamp(*lo, *hi)),
            Op::LeakyRelu { alpha } => arg(0)?.mapv(|v| if v >= 0.0 { v } else { alpha * v }),
            Op::Sigmoid => arg(0)?.mapv(|v| 1.0 / (1.0 + libm::exp(-v))),
            Op::Tanh => arg(0)?.mapv(libm::tanh),
            Op::Softmax { axis } => {
                let x = arg(0)?;
                let mut y = x.clone();
                for mut lane in y.lanes_mut(Axis(*axis)) {
                    let m = lane.iter().copied().fold(f64::MIN, f64::max);
                    lane.mapv_inplace(|v| libm::exp(v - m));
                    let s: f64 = lane.iter().sum();
                    lane.mapv_inplace(|v| v / s);
                }
                y
            }
            Op::MaxPool(a) => pool(arg(0)?, a, true)?,
            Op::AveragePool(a) => pool(arg(0)?, a, false)?,
            Op::GlobalAveragePool => {
                let x = arg(0)?;
                x.mean_axis(Axis(3))
                    .and_then(|m| m.mean_axis(Axis(2)))
                    .ok_or_else(|| shape_err("empty pooling"))?
                    .insert_axis(Axis(2))
                    .insert_axis(Axis(3))
            }
            Op::Reshape { shape } => layout::reshape(arg(0)?, shape)?,
            Op::Exp => arg(0)?.mapv(libm::exp),
            Op::Sqrt => arg(0)?.mapv(libm::sqrt),
            Op::Log => arg(0)?.mapv(libm::log),
            Op::IsNegative => arg(0)?.mapv(|v| if v < 0.0 { 1.0 } else { 0.0 }),
            Op::OneHot { depth } => {
                let x = arg(0)?;
                let declared = &plan.values[node.output].shape;
                super::one_hot_shape(x.shape(), *depth, declared)?;
                let mut y = ArrayD::zeros(IxDyn(declared));
                for (row, &v) in y
                    .as_slice_mut()
                    .unwrap_or_default()
                    .chunks_exact_mut((*depth).max(1))
                    .zip(x.iter())
                {
                    let i = libm::floor(v);
                    if i >= 0.0 && i < *depth as f64 {
                        row[i as usize] = 1.0;
                    }
                }
                y
            }
            Op::Reciprocal => arg(0)?.mapv(|v| 1.0 / v),
            Op::Div => broadcast2(arg(0)?, arg(1)?, |a, b| a / b)?,
            Op::Square => arg(0)?.mapv(|v| v * v),
            Op::Erf => arg(0)?.mapv(libm::erf),
            Op::Gelu { tanh } => {
                let k = libm::sqrt(2.0 / core::f64::consts::PI);
                if *tanh {
                    arg(0)?.mapv(|v| 0.5 * v * (1.0 + libm::tanh(k * (v + 0.044715 * v * v * v))))
                } else {
                    arg(0)?
                        .mapv(|v| 0.5 * v * (1.0 + libm::erf(v * core::f64::consts::FRAC_1_SQRT_2)))
                }
            }
            Op::LogSoftmax { axis } => {
                let mut y = arg(0)?.clone();
                for mut lane in y.lanes_mut(Axis(*axis)) {
                    let m = lane.iter().copied().fold(f64::MIN, f64::max);
                    let s: f64 = lane.iter().map(|v| libm::exp(v - m)).sum();
                    let l = m + libm::log(s);
                    lane.mapv_inplace(|v| v - l);
                }
                y
            }
            Op::HardSigmoid { alpha, beta } => arg(0)?.mapv(|v| (alpha * v + beta).clamp(0.0, 1.0)),
            Op::HardSwish => arg(0)?.mapv(|v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
            Op::ReduceMean { axes, keepdims } | Op::ReduceSum { axes, keepdims } => {
                let mean = matches!(node.op, Op::ReduceMean { .. });
                let mut y = arg(0)?.clone();
                let mut sorted = axes.clone();
                sorted.sort_unstable();
                for &a in sorted.iter().rev() {
                    let n = y.shape()[a] as f64;
                    y = y.sum_axis(Axis(a));
                    if mean {
                        y.mapv_inplace(|v| v / n);
                    }
                    if *keepdims {
                        y.insert_axis_inplace(Axis(a));
                    }
                }
                y
            }
            Op::Transpose { perm } => layout::transpose(arg(0)?, perm)?,
            Op::Select { picks } => layout::select(arg(0)?, picks)?,
            Op::Concat { axis } => {
                let parts: Vec<&ArrayD<f64>> =
                    (0..node.inputs.len()).map(&arg).collect::<Result<_>>()?;
                layout::concat(&parts, *axis)?
            }
            Op::Expand { shape } => layout::expand(arg(0)?, shape)?,
            Op::Pad { pads } => layout::pad(arg(0)?, pads, 0.0)?,
            Op::LayerNorm { epsilon } => {
                let mut y = arg(0)?.clone();
                let last = y.ndim() - 1;
                for mut lane in y.lanes_mut(Axis(last)) {
                    let n = lane.len() as f64;
                    let mu = lane.iter().sum::<f64>() / n;
                    let var = lane.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
                    let inv = 1.0 / libm::sqrt(var + epsilon);
                    lane.mapv_inplace(|v| (v - mu) * inv);
                }
                y
            }
            Op::GlobalMaxPool => {
                let x = arg(0)?;
                x.fold_axis(Axis(3), f64::MIN, |a, &b| a.max(b))
                    .fold_axis(Axis(2), f64::MIN, |a, &b| a.max(b))
                    .insert_axis(Axis(2))
                    .insert_axis(Axis(3))
            }
            Op::ArgMax { axis, keepdims } => {
                let x = arg(0)?;
                let mut y = x.map_axis(Axis(*axis), |lane| {
                    let m = lane.iter().copied().fold(f64::MIN, f64::max);
                    lane.iter().position(|&v| v == m).unwrap_or(0) as f64
                });
                if *keepdims {
                    y.insert_axis_inplace(Axis(*axis));
                }
                y
            }
        };
        if y.shape() != plan.values[node.output].shape.as_slice() {
            return Err(Error::Shape(format!(
                "node {} ({}) produced {:?}, the plan says {:?}",
                node.name,
                node.op.name(),
                y.shape(),
                plan.values[node.output].shape
            )));
        }
        vals[node.output] = Some(y);
    }
    plan.outputs
        .iter()
        .map(|&o| {
            vals[o]
                .clone()
                .ok_or_else(|| Error::Usage("output not computed".into()))
        })
        .collect()
}
