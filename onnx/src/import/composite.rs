//! Operators the importer composes from several plan operations: `Abs`,
//! `PRelu`, `Softsign`, the ELU family (`Elu`, `Selu`, `Celu`), `Softplus`,
//! `Mish`, `ReduceMax`, `ReduceMin`, `ReduceL1`, `ReduceL2`,
//! `ReduceSumSquare`, `DepthToSpace`, `SpaceToDepth`,
//! `InstanceNormalization` and `GroupNormalization`. Each is exactly its
//! ONNX definition, up to the approximations of the plan operations it uses
//! (comparisons are exact; see docs/ACCURACY.md for `Exp`, `Log`, `Div` and
//! `LayerNorm`).

use super::{
    Builder, Combine, ImportError, Last, Reduction, attr_f, attr_i, broadcast_shape, invalid,
    scalar, unsupported,
};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::{ArrayD, IxDyn};

/// The exponentials of the ELU family and Softplus are taken of
/// `max(v, EXP_FLOOR)` rather than of `v ≤ 0`: `e^x` is only computed on a
/// bounded range (`±exp_max_abs`, 16 by default), and below −15 it is under
/// 3.1e−7, less than the fixed-point unit at the default 16 fractional bits.
const EXP_FLOOR: f64 = -15.0;

impl Builder {
    /// `|x| = 2·relu(x) − x`: one comparison.
    pub(super) fn abs(&mut self, n: &NodeProto, x: usize, last: Last) -> usize {
        let s = self.shape(x);
        let r = self.step(n, "relu", Op::Relu, vec![x], s.clone());
        let r2 = self.step(n, "doubled", Op::MulConst(scalar(2.0)), vec![r], s.clone());
        self.step_or_output(n, last, "abs", Op::Sub, vec![r2, x], s)
    }

    /// `PRelu`: `relu(x) + slope·min(x, 0)`, one comparison; the slope
    /// (broadcast to `x`) is the owner's weight when it is an initializer.
    pub(super) fn prelu(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let Some((slope, weight)) = self.get(n, 1)?.constant() else {
            return Err(unsupported(n, "the slope must be a constant"));
        };
        if broadcast_shape(n, &s, slope.shape())? != s {
            return Err(invalid(
                n.name(),
                format!("slope {:?} for input {s:?}", slope.shape()),
            ));
        }
        let r = self.step(n, "relu", Op::Relu, vec![x], s.clone());
        let m = self.step(n, "negative_part", Op::Sub, vec![x, r], s.clone());
        let scale = self.constant_op(
            Combine::Mul,
            &n.input[1],
            std::sync::Arc::unwrap_or_clone(slope),
            weight,
        );
        let m = self.step(n, "negative_branch", scale, vec![m], s.clone());
        self.emit(n, Op::Add, vec![r, m], s);
        Ok(())
    }

    /// `ReduceSumSquare` (squares, then a sum), `ReduceL2` (its square
    /// root) and `ReduceL1` (absolute values, then a sum).
    pub(super) fn reduce_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Some(Reduction {
            x,
            shape: s,
            axes,
            keepdims,
            out,
        }) = self.reduction(n)?
        else {
            // ONNX gives no single meaning to a norm that reduces nothing.
            return Err(unsupported(n, "noop_with_empty_axes without axes"));
        };
        let terms = if n.op_type() == "ReduceL1" {
            self.abs(n, x, Last::Step)
        } else {
            self.step(n, "squared", Op::Square, vec![x], s)
        };
        let sum = Op::ReduceSum { axes, keepdims };
        if n.op_type() == "ReduceL2" {
            let t = self.step(n, "sum", sum, vec![terms], out.clone());
            self.emit(n, Op::Sqrt, vec![t], out);
        } else {
            self.emit(n, sum, vec![terms], out);
        }
        Ok(())
    }

    /// `DepthToSpace` (modes DCR and CRD) and `SpaceToDepth`: a reshape, a
    /// transposition and a reshape, all local under MPC.
    pub(super) fn depth_space(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let &[batch, c, h, w] = s.as_slice() else {
            return Err(invalid(
                n.name(),
                format!("{} needs [N,C,H,W]", n.op_type()),
            ));
        };
        let b = usize::try_from(attr_i(n, "blocksize", 0))
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| invalid(n.name(), "blocksize must be positive"))?;
        let too_big = || invalid(n.name(), "blocksize over the size limit");
        let bb = b.checked_mul(b).ok_or_else(too_big)?;
        let (view, perm, out) = if n.op_type() == "DepthToSpace" {
            if !c.is_multiple_of(bb) {
                return Err(invalid(n.name(), format!("{c} channels and blocksize {b}")));
            }
            let out = vec![
                batch,
                c / bb,
                h.checked_mul(b).ok_or_else(too_big)?,
                w.checked_mul(b).ok_or_else(too_big)?,
            ];
            match attr_s_or(n, "mode", "DCR").as_str() {
                "DCR" => (vec![batch, b, b, c / bb, h, w], vec![0, 3, 4, 1, 5, 2], out),
                "CRD" => (vec![batch, c / bb, b, b, h, w], vec![0, 1, 4, 2, 5, 3], out),
                other => return Err(unsupported(n, format!("mode {other}"))),
            }
        } else {
            if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
                return Err(invalid(n.name(), format!("{h}×{w} and blocksize {b}")));
            }
            let out = vec![batch, c.checked_mul(bb).ok_or_else(too_big)?, h / b, w / b];
            (
                vec![batch, c, h / b, b, w / b, b],
                vec![0, 3, 5, 1, 2, 4],
                out,
            )
        };
        let moved: Vec<usize> = perm.iter().map(|&p| view[p]).collect();
        let v = self.step(
            n,
            "blocks",
            Op::Reshape {
                shape: view.clone(),
            },
            vec![x],
            view,
        );
        let v = self.step(n, "moved", Op::Transpose { perm }, vec![v], moved);
        self.emit(n, Op::Reshape { shape: out.clone() }, vec![v], out);
        Ok(())
    }

    /// `Softsign`: `x / (1 + |x|)`, a comparison and a division (whose
    /// divisor is at least 1).
    pub(super) fn softsign(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let a = self.abs(n, x, Last::Step);
        let d = self.step(n, "divisor", Op::AddConst(scalar(1.0)), vec![a], s.clone());
        self.emit(n, Op::Div, vec![x, d], s);
        Ok(())
    }

    /// `Elu`, `Selu` and `Celu`, all `a·relu(x) + b·(e^(k·min(x, 0)) − 1)`:
    /// two comparisons (the ReLU, then the floor of the exponent at
    /// [`EXP_FLOOR`]) and one exponential.
    pub(super) fn elu(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let (a, b, k) = match n.op_type() {
            "Elu" => (1.0, attr_f(n, "alpha", 1.0) as f64, 1.0),
            "Selu" => {
                let alpha = attr_f(n, "alpha", 1.673_263_2) as f64;
                let gamma = attr_f(n, "gamma", 1.050_701) as f64;
                (gamma, gamma * alpha, 1.0)
            }
            _ => {
                let alpha = attr_f(n, "alpha", 1.0) as f64;
                if !(alpha > 0.0 && alpha.is_finite()) {
                    return Err(invalid(n.name(), format!("Celu alpha {alpha} must be > 0")));
                }
                (1.0, alpha, 1.0 / alpha)
            }
        };
        if ![a, b, k].iter().all(|v| v.is_finite()) {
            return Err(invalid(n.name(), "attributes must be finite"));
        }
        let r = self.step(n, "relu", Op::Relu, vec![x], s.clone());
        let mut m = self.step(n, "negative_part", Op::Sub, vec![x, r], s.clone());
        if k != 1.0 {
            m = self.step(n, "scaled", Op::MulConst(scalar(k)), vec![m], s.clone());
        }
        let e = self.floored_exp(n, m);
        let mut e = self.step(
            n,
            "exp_minus_one",
            Op::AddConst(scalar(-1.0)),
            vec![e],
            s.clone(),
        );
        if b != 1.0 {
            e = self.step(
                n,
                "negative_branch",
                Op::MulConst(scalar(b)),
                vec![e],
                s.clone(),
            );
        }
        let r = if a != 1.0 {
            self.step(
                n,
                "positive_branch",
                Op::MulConst(scalar(a)),
                vec![r],
                s.clone(),
            )
        } else {
            r
        };
        self.emit(n, Op::Add, vec![r, e], s);
        Ok(())
    }

    /// `e^max(v, EXP_FLOOR)` for `v ≤ 0`, the floor as `relu(v − F) + F`:
    /// one comparison and one exponential.
    fn floored_exp(&mut self, n: &NodeProto, v: usize) -> usize {
        let s = self.shape(v);
        let shifted = self.step(
            n,
            "shifted",
            Op::AddConst(scalar(-EXP_FLOOR)),
            vec![v],
            s.clone(),
        );
        let relu = self.step(n, "floored", Op::Relu, vec![shifted], s.clone());
        let floored = self.step(
            n,
            "exponent",
            Op::AddConst(scalar(EXP_FLOOR)),
            vec![relu],
            s.clone(),
        );
        self.step(n, "exp", Op::Exp, vec![floored], s)
    }

    /// `Softplus`, `ln(1 + e^x) = relu(x) + ln(1 + e^−|x|)` (the logarithm
    /// only of `(1, 2]`), and `Mish`, `x·tanh(softplus(x))`: two comparisons,
    /// an exponential and a logarithm (and for Mish a tanh and a product).
    pub(super) fn softplus(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        let r = self.step(n, "relu", Op::Relu, vec![x], s.clone());
        let r2 = self.step(n, "doubled", Op::MulConst(scalar(2.0)), vec![r], s.clone());
        // x − 2·relu(x) = −|x|.
        let m = self.step(n, "minus_abs", Op::Sub, vec![x, r2], s.clone());
        let e = self.floored_exp(n, m);
        let e1 = self.step(n, "one_plus", Op::AddConst(scalar(1.0)), vec![e], s.clone());
        let l = self.step(n, "log", Op::Log, vec![e1], s.clone());
        if n.op_type() == "Softplus" {
            self.emit(n, Op::Add, vec![r, l], s);
            return Ok(());
        }
        let sp = self.step(n, "softplus", Op::Add, vec![r, l], s.clone());
        let t = self.step(n, "tanh", Op::Tanh, vec![sp], s.clone());
        self.emit(n, Op::Mul, vec![x, t], s);
        Ok(())
    }

    /// `ReduceMax` and `ReduceMin`: the reduced axes moved last and
    /// flattened, then a tree of comparisons (the plan's `GlobalMaxPool`
    /// over a `[1, kept, 1, reduced]` view); `min(x) = −max(−x)`, the
    /// negations local.
    pub(super) fn reduce_max_min(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Some(Reduction {
            x,
            shape: s,
            axes,
            out,
            ..
        }) = self.reduction(n)?
        else {
            return Ok(());
        };
        let min = n.op_type() == "ReduceMin";
        let kept: Vec<usize> = (0..s.len()).filter(|i| !axes.contains(i)).collect();
        let kept_len: usize = kept.iter().map(|&i| s[i]).product();
        let reduced_len: usize = axes.iter().map(|&i| s[i]).product();
        if reduced_len == 0 {
            return Err(invalid(n.name(), "reduction over an empty axis"));
        }
        if reduced_len == 1 {
            self.emit(n, Op::Reshape { shape: out.clone() }, vec![x], out);
            return Ok(());
        }
        let mut v = x;
        if min {
            v = self.step(n, "negated", Op::MulConst(scalar(-1.0)), vec![v], s.clone());
        }
        let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
        if perm.iter().enumerate().any(|(i, &p)| i != p) {
            let moved: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
            v = self.step(n, "moved", Op::Transpose { perm }, vec![v], moved);
        }
        let grouped = vec![1, kept_len, 1, reduced_len];
        v = self.step(
            n,
            "grouped",
            Op::Reshape {
                shape: grouped.clone(),
            },
            vec![v],
            grouped,
        );
        v = self.step(
            n,
            "max",
            Op::GlobalMaxPool,
            vec![v],
            vec![1, kept_len, 1, 1],
        );
        let reshape = Op::Reshape { shape: out.clone() };
        if min {
            v = self.step(n, "reshaped", reshape, vec![v], out.clone());
            self.emit(n, Op::MulConst(scalar(-1.0)), vec![v], out);
        } else {
            self.emit(n, reshape, vec![v], out);
        }
        Ok(())
    }

    /// `InstanceNormalization` (each sample's channels normalized over
    /// their spatial axes) and `GroupNormalization` (each sample's groups of
    /// channels normalized together): a layer normalization of the
    /// `[N, groups, rest]` view, then the scale and bias per channel (the
    /// owner's weights when they are initializers).
    pub(super) fn group_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.secret(n, 0)?;
        let s = self.shape(x);
        if s.len() < 3 {
            return Err(invalid(
                n.name(),
                format!("{} needs [N, C, D1, …], not {s:?}", n.op_type()),
            ));
        }
        let channels = s[1];
        let instance = n.op_type() == "InstanceNormalization";
        let groups = if instance {
            channels
        } else {
            let g = attr_i(n, "num_groups", 0);
            usize::try_from(g)
                .ok()
                .filter(|&g| g > 0 && channels.is_multiple_of(g))
                .ok_or_else(|| {
                    invalid(
                        n.name(),
                        format!("num_groups {g} does not divide {channels} channels"),
                    )
                })?
        };
        if groups == 0 {
            return Err(invalid(n.name(), "no channels"));
        }
        // Opset 18's GroupNormalization has a scale and bias per group;
        // opset 21's (and InstanceNormalization's), per channel.
        let per_group = !instance && self.opset < 21;
        let params = if per_group { groups } else { channels };
        let mut affine = Vec::with_capacity(2);
        for i in [1, 2] {
            let Some((c, weight)) = self.get(n, i)?.constant() else {
                return Err(unsupported(n, "scale and bias must be constants"));
            };
            if c.len() != params {
                return Err(invalid(
                    n.name(),
                    format!(
                        "input {i} has {} values; {params} expected (one per {})",
                        c.len(),
                        if per_group { "group" } else { "channel" }
                    ),
                ));
            }
            let values: Vec<f64> = c.iter().copied().collect();
            let per_channel: Vec<f64> = (0..channels)
                .map(|ch| values.get(ch / (channels / params)).copied())
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(n.name(), "scale or bias"))?;
            let mut shape = vec![1; s.len()];
            shape[1] = channels;
            let c = ArrayD::from_shape_vec(IxDyn(&shape), per_channel)
                .map_err(|e| invalid(n.name(), e.to_string()))?;
            affine.push((c, weight));
        }
        let epsilon = attr_f(n, "epsilon", 1e-5) as f64;
        let rest = s[1..].iter().product::<usize>() / groups;
        let view = vec![s[0], groups, rest];
        let reshape = |shape: &Vec<usize>| Op::Reshape {
            shape: shape.clone(),
        };
        let v = self.step(n, "grouped", reshape(&view), vec![x], view.clone());
        let v = self.step(n, "normalized", Op::LayerNorm { epsilon }, vec![v], view);
        let v = self.step(n, "ungrouped", reshape(&s), vec![v], s.clone());
        let mut affine = affine.into_iter();
        let (Some((scale, sw)), Some((bias, bw))) = (affine.next(), affine.next()) else {
            return Err(invalid(n.name(), "scale and bias"));
        };
        let op = self.constant_op(Combine::Mul, &n.input[1], scale, sw);
        let v = self.step(n, "scaled", op, vec![v], s.clone());
        let op = self.constant_op(Combine::Add, &n.input[2], bias, bw);
        self.emit(n, op, vec![v], s);
        Ok(())
    }
}

/// Text attribute `name`, or `default`.
fn attr_s_or(n: &NodeProto, name: &str, default: &str) -> String {
    super::attr_s(n, name).unwrap_or_else(|| default.into())
}
