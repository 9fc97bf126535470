//! `Resize`. Every output position reads its input through ONNX's
//! coordinate transformation (in f32, as onnxruntime computes it, so that
//! positions on a rounding boundary agree):
//!
//! - `nearest`: one input index per position, a selection (local under
//!   MPC);
//! - `linear` and `cubic`: per resized axis, a sum of 2 or 4 selections
//!   ("taps"), each times a public weight per position. The weights depend
//!   only on the shapes, so the interpolation is linear in the input: local
//!   additions, and a product with a public constant per tap (one
//!   truncation each, none where every weight is an integer).

use super::{Builder, Entry, ImportError, Last, Src, attr, attr_f, attr_i, attr_s, constant};
use super::{invalid, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::{ArrayD, IxDyn};

/// How `Resize` interpolates.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// One tap of an interpolation along an axis: for each output position,
/// the input index read and its weight.
struct Tap {
    picks: Vec<usize>,
    weights: Vec<f64>,
}

impl Builder {
    pub(super) fn resize(
        &mut self,
        n: &NodeProto,
        x: &Src,
        s: &[usize],
    ) -> Result<(), ImportError> {
        let mode = match attr_s(n, "mode").as_deref() {
            None | Some("nearest") => Mode::Nearest,
            Some("linear") => Mode::Linear,
            Some("cubic") => Mode::Cubic,
            Some(other) => return Err(unsupported(n, format!("mode {other}"))),
        };
        let sizes = self.resize_sizes(n, s)?;
        let transform =
            attr_s(n, "coordinate_transformation_mode").unwrap_or_else(|| "half_pixel".into());
        let allowed: &[&str] = if mode == Mode::Nearest {
            &[
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
                "tf_half_pixel_for_nearest",
            ]
        } else {
            &[
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
            ]
        };
        if !allowed.contains(&transform.as_str()) {
            return Err(unsupported(
                n,
                format!("coordinate_transformation_mode {transform}"),
            ));
        }
        // Where output position i of an axis of input length d, output
        // length o and scale `scale` falls in the input's coordinates.
        let position = |d: usize, o: usize, scale: f32, i: f32| match transform.as_str() {
            "pytorch_half_pixel" | "align_corners" if o <= 1 => 0.0,
            "half_pixel" | "pytorch_half_pixel" => (i + 0.5) / scale - 0.5,
            "align_corners" => i * (d as f32 - 1.0) / (o as f32 - 1.0),
            "asymmetric" => i / scale,
            _ => (i + 0.5) / scale, // tf_half_pixel_for_nearest
        };
        if mode == Mode::Nearest {
            let round = nearest_rounding(n)?;
            let picks: Vec<Vec<usize>> = s
                .iter()
                .zip(&sizes)
                .map(|(&d, &(o, scale))| {
                    let last = d.saturating_sub(1) as f32;
                    (0..o)
                        .map(|i| round(position(d, o, scale, i as f32)).clamp(0.0, last) as usize)
                        .collect()
                })
                .collect();
            let out = picks.iter().map(Vec::len).collect();
            return self.finish_move(n, x, Op::Select { picks }, out);
        }
        let Src::Value(x) = *x else {
            return Err(unsupported(n, "interpolating a constant"));
        };
        let cubic_a = attr_f(n, "cubic_coeff_a", -0.75) as f64;
        let exclude_outside = attr_i(n, "exclude_outside", 0) != 0;
        let mut axes: Vec<(usize, Vec<Tap>)> = Vec::new();
        for (axis, (&d, &(o, scale))) in s.iter().zip(&sizes).enumerate() {
            let positions = (0..o).map(|i| position(d, o, scale, i as f32));
            let taps = match mode {
                Mode::Linear => linear_taps(d, positions),
                _ => cubic_taps(d, positions, cubic_a, exclude_outside),
            };
            let taps: Vec<Tap> = taps
                .into_iter()
                .filter(|t| t.weights.iter().any(|&w| w != 0.0))
                .collect();
            let identity = o == d
                && matches!(&taps[..], [t] if t.weights.iter().all(|&w| w == 1.0)
                    && t.picks.iter().enumerate().all(|(k, &p)| k == p));
            if !identity {
                axes.push((axis, taps));
            }
        }
        self.interpolate(n, x, s, &sizes, axes)
    }

    /// Output sizes and scales per axis, from `sizes` (input 3) or `scales`
    /// (input 2), in f32 as onnxruntime computes them.
    fn resize_sizes(&self, n: &NodeProto, s: &[usize]) -> Result<Vec<(usize, f32)>, ImportError> {
        if attr(n, "axes").is_some()
            || attr_i(n, "antialias", 0) != 0
            || attr_s(n, "keep_aspect_ratio_policy").is_some_and(|p| p != "stretch")
        {
            return Err(unsupported(n, "axes, antialias or an aspect-ratio policy"));
        }
        let floats = |i| -> Result<Option<Vec<f64>>, ImportError> {
            match self.opt(n, i)? {
                Some(Entry::Public(a) | Entry::Init(a)) if !a.is_empty() => {
                    Ok(Some(a.iter().copied().collect()))
                }
                Some(Entry::Secret(_)) => Err(unsupported(n, "computed scales or sizes")),
                _ => Ok(None),
            }
        };
        let rank = s.len();
        let sizes: Vec<(usize, f32)> = match (floats(3)?, floats(2)?) {
            (Some(sizes), _) if sizes.len() == rank && sizes.iter().all(|&o| o >= 0.0) => s
                .iter()
                .zip(sizes)
                .map(|(&d, o)| (o as usize, o as f32 / d as f32))
                .collect(),
            (None, Some(scales))
                if scales.len() == rank && scales.iter().all(|&c| c.is_finite() && c > 0.0) =>
            {
                s.iter()
                    .zip(scales)
                    .map(|(&d, c)| ((c as f32 * d as f32) as usize, c as f32))
                    .collect()
            }
            _ => return Err(invalid(n.name(), "Resize needs one scale or size per axis")),
        };
        let out: Vec<usize> = sizes.iter().map(|&(o, _)| o).collect();
        if !hush_core::plan::shape_within_limits(&out)
            || out.iter().zip(s).any(|(&o, &d)| o > 0 && d == 0)
        {
            return Err(invalid(n.name(), "resized shape over the size limit"));
        }
        Ok(sizes)
    }

    /// `x` interpolated along each of `axes` in turn: per axis, the sum of
    /// its taps (a selection times public weights).
    fn interpolate(
        &mut self,
        n: &NodeProto,
        x: usize,
        s: &[usize],
        sizes: &[(usize, f32)],
        axes: Vec<(usize, Vec<Tap>)>,
    ) -> Result<(), ImportError> {
        if axes.is_empty() {
            self.alias(n, Entry::Secret(x));
            return Ok(());
        }
        let axis_count = axes.len();
        let mut shape = s.to_vec();
        let mut v = x;
        for (k, (axis, taps)) in axes.into_iter().enumerate() {
            let o = sizes[axis].0;
            shape[axis] = o;
            let final_axis = k + 1 == axis_count;
            let mut terms = Vec::with_capacity(taps.len());
            for (t, tap) in taps.iter().enumerate() {
                let picks: Vec<Vec<usize>> = (0..shape.len())
                    .map(|j| {
                        if j == axis {
                            tap.picks.clone()
                        } else {
                            (0..shape[j]).collect()
                        }
                    })
                    .collect();
                // A tap whose weights are all 1 is its selection alone.
                let unit = tap.weights.iter().all(|&w| w == 1.0);
                let alone = final_axis && taps.len() == 1;
                let last = Last::when(alone && unit);
                let name = format!("axis{axis}.tap{t}");
                let sel = self.step_or_output(
                    n,
                    last,
                    &name,
                    Op::Select { picks },
                    vec![v],
                    shape.clone(),
                );
                if unit {
                    terms.push(sel);
                    continue;
                }
                let mut wshape = vec![1; shape.len()];
                wshape[axis] = o;
                let w = ArrayD::from_shape_vec(IxDyn(&wshape), tap.weights.clone())
                    .map_err(|e| invalid(n.name(), e.to_string()))?;
                let weighted = self.step_or_output(
                    n,
                    Last::when(alone),
                    &format!("{name}.weighted"),
                    Op::MulConst(constant(w)),
                    vec![sel],
                    shape.clone(),
                );
                terms.push(weighted);
            }
            let Some((&first, rest)) = terms.split_first() else {
                return Err(invalid(n.name(), "no interpolation taps"));
            };
            v = first;
            for (t, &term) in rest.iter().enumerate() {
                let last = Last::when(final_axis && t + 2 == terms.len());
                let name = format!("axis{axis}.sum{t}");
                v = self.step_or_output(n, last, &name, Op::Add, vec![v, term], shape.clone());
            }
        }
        Ok(())
    }
}

/// `nearest_mode`'s rounding.
fn nearest_rounding(n: &NodeProto) -> Result<fn(f32) -> f32, ImportError> {
    let rounding = attr_s(n, "nearest_mode").unwrap_or_else(|| "round_prefer_floor".into());
    Ok(match rounding.as_str() {
        "round_prefer_floor" => |v| {
            if v.fract() == 0.5 {
                v.floor()
            } else {
                v.round()
            }
        },
        "round_prefer_ceil" => |v| {
            if v.fract() == 0.5 {
                v.ceil()
            } else {
                v.round()
            }
        },
        "floor" => f32::floor,
        "ceil" => f32::ceil,
        other => return Err(unsupported(n, format!("nearest_mode {other}"))),
    })
}

/// Linear interpolation over an axis of length `d`: the position clamped to
/// `[0, d − 1]`, its floor and the next index (the last one again at the
/// edge), weighted `1 − r` and `r` for the fraction `r`.
fn linear_taps(d: usize, positions: impl Iterator<Item = f32>) -> Vec<Tap> {
    let last = d.saturating_sub(1);
    let mut taps: Vec<Tap> = (0..2)
        .map(|_| Tap {
            picks: Vec::new(),
            weights: Vec::new(),
        })
        .collect();
    for p in positions {
        let p = p.clamp(0.0, last as f32);
        let lo = (p.floor() as usize).min(last);
        let r = (p - lo as f32) as f64;
        taps[0].picks.push(lo);
        taps[0].weights.push(1.0 - r);
        taps[1].picks.push((lo + 1).min(last));
        taps[1].weights.push(r);
    }
    taps
}

/// Cubic convolution (Keys) with coefficient `a` over an axis of length
/// `d`: the four inputs around each position, indices outside the axis
/// clamped to its edge, or — with `exclude_outside` — given no weight and
/// the others renormalized.
fn cubic_taps(
    d: usize,
    positions: impl Iterator<Item = f32>,
    a: f64,
    exclude_outside: bool,
) -> Vec<Tap> {
    let last = d.saturating_sub(1) as i64;
    let mut taps: Vec<Tap> = (0..4)
        .map(|_| Tap {
            picks: Vec::new(),
            weights: Vec::new(),
        })
        .collect();
    let kernel = |t: f64| {
        let t = t.abs();
        if t <= 1.0 {
            ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
        } else if t < 2.0 {
            ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
        } else {
            0.0
        }
    };
    for p in positions {
        let base = p.floor();
        let r = (p - base) as f64;
        let base = base as i64;
        let mut w: [f64; 4] = core::array::from_fn(|k| kernel(r - (k as f64 - 1.0)));
        let idx: [i64; 4] = core::array::from_fn(|k| base.saturating_add(k as i64 - 1));
        if exclude_outside {
            for (wk, &i) in w.iter_mut().zip(&idx) {
                if i < 0 || i > last {
                    *wk = 0.0;
                }
            }
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|wk| *wk /= total);
            }
        }
        for (tap, (&wk, &i)) in taps.iter_mut().zip(w.iter().zip(&idx)) {
            tap.picks.push(i.clamp(0, last) as usize);
            tap.weights.push(wk);
        }
    }
    taps
}
