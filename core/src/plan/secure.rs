//! The secure evaluator: one plan, run by every party under MPC.
//!
//! The owner's matrix and convolution weights are fixed once per session
//! (their masks opened once, see [`Party::fix_operand`]), so each inference
//! opens only activations. Biases and scales are shared by the owner without
//! communication. Inputs come from the client; outputs are revealed to the
//! client alone.

use super::{Op, Plan, Weights, layout};
use crate::backend::Backend;
use crate::bilinear::BilinearOp;
use crate::channel::Channel;
use crate::error::{Error, PartyId, Result};
use crate::preprocessing::{FixedSide, Preprocessing};
use crate::protocol::{FixedOperand, Party};
use crate::ring::{FixedPoint, RingTensor};
use crate::share::{Arith, ArithShare};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::{ArrayD, IxDyn};

/// The owner's weights as this party holds them for a session.
pub struct SessionWeights {
    fixed: Vec<Option<FixedOperand>>,
    shared: Vec<Option<ArithShare>>,
}

impl core::fmt::Debug for SessionWeights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SessionWeights {{ {} tensors }}", self.fixed.len())
    }
}

/// Roles of the parties in an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Holds the weights.
    pub owner: PartyId,
    /// Holds the inputs and receives the outputs.
    pub client: PartyId,
}

/// The owner's weights encoded in the ring once, for all the sessions of a
/// served model: each session's products share these tensors instead of
/// encoding and holding a copy of their own. `Debug` shows no values.
#[derive(Clone)]
pub struct EncodedWeights {
    fp: FixedPoint,
    tensors: Vec<Arc<RingTensor>>,
}

impl core::fmt::Debug for EncodedWeights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "EncodedWeights {{ tensors: {} (values hidden), fixed point: {:?} }}",
            self.tensors.len(),
            self.fp
        )
    }
}

impl EncodedWeights {
    /// Encodes every weight tensor with `fp` (the sessions' fixed point).
    pub fn new(weights: &Weights, fp: FixedPoint) -> Result<EncodedWeights> {
        let tensors = weights
            .tensors
            .iter()
            .map(|t| fp.encode_tensor(t).map(Arc::new))
            .collect::<Result<_>>()?;
        Ok(EncodedWeights { fp, tensors })
    }

    /// The encoded tensors, in the plan's order.
    pub fn tensors(&self) -> &[Arc<RingTensor>] {
        &self.tensors
    }
}

/// Sets up the owner's weights for a session: one round that opens the
/// masks of every matrix and convolution weight; biases are shared locally.
/// The owner passes `Some(weights)`, the others `None`. A server that runs
/// many sessions of one model encodes its weights once and calls
/// [`setup_encoded`].
pub async fn setup<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    plan: &Plan,
    roles: Roles,
    weights: Option<&Weights>,
) -> Result<SessionWeights> {
    // The plan first: an invalid plan is reported as such, before any
    // weight is encoded for it.
    plan.validate()?;
    let fp = party.config().fixed_point;
    let encoded = weights.map(|w| EncodedWeights::new(w, fp)).transpose()?;
    setup_validated(party, plan, roles, encoded.as_ref()).await
}

/// [`setup`] with the weights encoded ahead ([`EncodedWeights`]), shared
/// with the session instead of copied into it.
pub async fn setup_encoded<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    plan: &Plan,
    roles: Roles,
    weights: Option<&EncodedWeights>,
) -> Result<SessionWeights> {
    plan.validate()?;
    setup_validated(party, plan, roles, weights).await
}

/// [`setup_encoded`] for a plan its caller has validated (once).
async fn setup_validated<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    plan: &Plan,
    roles: Roles,
    weights: Option<&EncodedWeights>,
) -> Result<SessionWeights> {
    let mine = party.id() == roles.owner;
    if mine != weights.is_some() {
        return Err(Error::Usage(
            "exactly the owner provides the weights".into(),
        ));
    }
    let n = plan.weights.len();
    if let Some(w) = weights {
        if w.fp != party.config().fixed_point {
            return Err(Error::Usage(
                "the weights were encoded with another fixed point than the session's".into(),
            ));
        }
        if w.tensors.len() != n {
            return Err(Error::Shape(format!(
                "{} weight tensors for a plan of {n}",
                w.tensors.len()
            )));
        }
    }
    let mut out = SessionWeights {
        fixed: vec![None; n],
        shared: vec![None; n],
    };
    // Matrix and convolution weights: masks opened together in one round.
    let mut fixed_ids: Vec<usize> = Vec::new();
    for node in &plan.nodes {
        let (id, fixed) = match node.op {
            Op::MatMulWeight { weight } | Op::Conv { weight, .. } => (weight, true),
            Op::AddWeight { weight } | Op::MulWeight { weight } => (weight, false),
            _ => continue,
        };
        if fixed_ids.contains(&id) || out.shared[id].is_some() {
            continue;
        }
        if fixed {
            fixed_ids.push(id);
        } else {
            let shape = plan.weights[id].shape.clone();
            let value = weights.map(|w| &*w.tensors[id]);
            out.shared[id] = Some(party.input::<Arith>(roles.owner, value, &shape).await?);
        }
    }
    let operands: Vec<(Option<&Arc<RingTensor>>, &[usize])> = fixed_ids
        .iter()
        .map(|&id| {
            (
                weights.map(|w| &w.tensors[id]),
                plan.weights[id].shape.as_slice(),
            )
        })
        .collect();
    let fixed = party.fix_shared_operands(roles.owner, &operands).await?;
    for (id, f) in fixed_ids.into_iter().zip(fixed) {
        out.fixed[id] = Some(f);
    }
    Ok(out)
}

/// `clip(αx + β, 0, 1)`.
async fn hard_sigmoid<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    x: &ArithShare,
    alpha: f64,
    beta: f64,
) -> Result<ArithShare> {
    let fp = party.config().fixed_point;
    let a = ArrayD::from_elem(IxDyn(&[]), alpha);
    let y = party.mul_public(x, &a).await?;
    let b = RingTensor::from_elem(IxDyn(&[]), fp.encode(beta)?);
    let y = party.add_public(&y, &b)?;
    party.clip(&y, 0.0, 1.0).await
}

fn broadcast_share(x: &ArithShare, shape: &[usize]) -> Result<ArithShare> {
    Ok(ArithShare::from_raw(
        x.as_raw()
            .broadcast(IxDyn(shape))
            .ok_or_else(|| {
                Error::Shape(format!("{:?} does not broadcast to {shape:?}", x.shape()))
            })?
            .to_owned(),
    ))
}

/// How far an inference has come: after node `done` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Nodes evaluated.
    pub done: usize,
    /// Nodes in the plan.
    pub total: usize,
    /// The operator just evaluated.
    pub op: &'static str,
}

/// Runs one inference. The client passes its inputs (one per
/// [`Plan::inputs`]), the others `None`; the client gets the outputs,
/// the others `None`.
pub async fn evaluate<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    plan: &Plan,
    roles: Roles,
    session: &SessionWeights,
    inputs: Option<&[ArrayD<f64>]>,
) -> Result<Option<Vec<ArrayD<f64>>>> {
    evaluate_with_progress(party, plan, roles, session, inputs, &mut |_| {}).await
}

/// [`evaluate`], calling `progress` after every node.
pub async fn evaluate_with_progress<C: Channel, P: Preprocessing, B: Backend>(
    party: &mut Party<C, P, B>,
    plan: &Plan,
    roles: Roles,
    session: &SessionWeights,
    inputs: Option<&[ArrayD<f64>]>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<Vec<ArrayD<f64>>>> {
    let fp = party.config().fixed_point;
    let me = party.id();
    if (me == roles.client) != inputs.is_some() {
        return Err(Error::Usage(
            "exactly the client provides the inputs".into(),
        ));
    }
    let mut vals: Vec<Option<ArithShare>> = vec![None; plan.values.len()];
    for (k, &id) in plan.inputs.iter().enumerate() {
        let shape = plan.values[id].shape.clone();
        let encoded: Option<RingTensor> = match inputs {
            Some(xs) => {
                let x = xs
                    .get(k)
                    .ok_or_else(|| Error::Usage("too few inputs".into()))?;
                if x.shape() != shape.as_slice() {
                    return Err(Error::Shape(format!(
                        "input {} has shape {:?}, the plan says {shape:?}",
                        plan.values[id].name,
                        x.shape()
                    )));
                }
                Some(fp.encode_tensor(x)?)
            }
            None => None,
        };
        vals[id] = Some(
            party
                .input::<Arith>(roles.client, encoded.as_ref(), &shape)
                .await?,
        );
    }
    for (done, node) in plan.nodes.iter().enumerate() {
        let arg = |i: usize| -> Result<ArithShare> {
            node.inputs
                .get(i)
                .and_then(|&v| vals[v].clone())
                .ok_or_else(|| Error::Usage(format!("node {} is missing input {i}", node.name)))
        };
        let out_shape = plan.values[node.output].shape.clone();
        let fixed = |id: usize| {
            session.fixed[id]
                .as_ref()
                .ok_or_else(|| Error::Usage("weight was not set up".into()))
        };
        let shared = |id: usize| {
            session.shared[id]
                .as_ref()
                .ok_or_else(|| Error::Usage("weight was not set up".into()))
        };
        let y = match &node.op {
            Op::MatMulWeight { weight } => {
                let x = arg(0)?;
                let w = fixed(*weight)?;
                let op = BilinearOp::MatMul {
                    lhs: x.shape().to_vec(),
                    rhs: w.shape().to_vec(),
                };
                party.bilinear_fixed(&op, FixedSide::Rhs, w, &x).await?
            }
            Op::Conv { weight, attrs } => {
                let x = arg(0)?;
                let w = fixed(*weight)?;
                let (Ok(input), Ok(kernel)) = (
                    <[usize; 4]>::try_from(x.shape()),
                    <[usize; 4]>::try_from(w.shape()),
                ) else {
                    return Err(Error::Shape("conv needs 4-D input and kernel".into()));
                };
                let op = BilinearOp::Conv2d {
                    input,
                    kernel,
                    params: (*attrs).into(),
                };
                party.bilinear_fixed(&op, FixedSide::Rhs, w, &x).await?
            }
            Op::AddWeight { weight } => {
                let b = broadcast_share(shared(*weight)?, &out_shape)?;
                let x = broadcast_share(&arg(0)?, &out_shape)?;
                party.add(&x, &b)?
            }
            Op::MulWeight { weight } => {
                let b = broadcast_share(shared(*weight)?, &out_shape)?;
                let x = broadcast_share(&arg(0)?, &out_shape)?;
                party.mul(&x, &b).await?
            }
            Op::AddConst(c) => {
                let x = broadcast_share(&arg(0)?, &out_shape)?;
                party.add_public(&x, &fp.encode_tensor(&c.to_array()?)?)?
            }
            Op::MulConst(c) => {
                let x = broadcast_share(&arg(0)?, &out_shape)?;
                let c = c.to_array()?;
                party.mul_public(&x, &c).await?
            }
            Op::Add | Op::Sub => {
                let a = broadcast_share(&arg(0)?, &out_shape)?;
                let b = broadcast_share(&arg(1)?, &out_shape)?;
                if node.op == Op::Add {
                    party.add(&a, &b)?
                } else {
                    party.sub(&a, &b)?
                }
            }
            Op::Mul => {
                let a = broadcast_share(&arg(0)?, &out_shape)?;
                let b = broadcast_share(&arg(1)?, &out_shape)?;
                party.mul(&a, &b).await?
            }
            Op::MatMul => party.matmul(&arg(0)?, &arg(1)?).await?,
            Op::Relu => party.relu(&arg(0)?).await?,
            Op::Clip { lo, hi } => party.clip(&arg(0)?, *lo, *hi).await?,
            Op::LeakyRelu { alpha } => party.leaky_relu(&arg(0)?, *alpha).await?,
            Op::Sigmoid => party.sigmoid(&arg(0)?).await?,
            Op::Tanh => party.tanh(&arg(0)?).await?,
            Op::Softmax { axis } => {
                let x = arg(0)?;
                if *axis + 1 != x.shape().len() {
                    return Err(Error::Unsupported(
                        "softmax over an axis other than the last",
                    ));
                }
                party.softmax(&x).await?
            }
            Op::MaxPool(a) => party.max_pool2d(&arg(0)?, &a.max()).await?,
            Op::AveragePool(a) => {
                if a.ceil_mode {
                    return Err(Error::Unsupported("average pooling with ceil_mode"));
                }
                party.avg_pool2d(&arg(0)?, &a.avg()).await?
            }
            Op::GlobalAveragePool => party.mean(&arg(0)?, &[2, 3], true).await?,
            Op::Reshape { shape } => {
                ArithShare::from_raw(layout::reshape(arg(0)?.as_raw(), shape)?)
            }
            Op::Exp => party.exp(&arg(0)?).await?,
            Op::Sqrt => party.sqrt(&arg(0)?).await?,
            Op::Log => party.log(&arg(0)?).await?,
            Op::IsNegative => party.is_negative(&arg(0)?).await?,
            Op::OneHot { depth } => {
                let x = arg(0)?;
                super::one_hot_shape(x.shape(), *depth, &out_shape)?;
                party.one_hot(&x, *depth).await?
            }
            Op::Reciprocal => party.reciprocal(&arg(0)?).await?,
            Op::Div => {
                let a = broadcast_share(&arg(0)?, &out_shape)?;
                let b = broadcast_share(&arg(1)?, &out_shape)?;
                party.div(&a, &b).await?
            }
            Op::Square => party.square(&arg(0)?).await?,
            Op::Erf => party.erf(&arg(0)?).await?,
            Op::Gelu { tanh } => {
                if *tanh {
                    party.gelu_tanh(&arg(0)?).await?
                } else {
                    party.gelu(&arg(0)?).await?
                }
            }
            Op::LogSoftmax { axis } => {
                let x = arg(0)?;
                if *axis + 1 != x.shape().len() {
                    return Err(Error::Unsupported(
                        "log softmax over an axis other than the last",
                    ));
                }
                party.log_softmax(&x).await?
            }
            Op::HardSigmoid { alpha, beta } => hard_sigmoid(party, &arg(0)?, *alpha, *beta).await?,
            Op::HardSwish => {
                let x = arg(0)?;
                let h = hard_sigmoid(party, &x, 1.0 / 6.0, 0.5).await?;
                party.mul(&x, &h).await?
            }
            Op::ReduceMean { axes, keepdims } => party.mean(&arg(0)?, axes, *keepdims).await?,
            Op::ReduceSum { axes, keepdims } => party.sum(&arg(0)?, axes, *keepdims)?,
            Op::Transpose { perm } => {
                ArithShare::from_raw(layout::transpose(arg(0)?.as_raw(), perm)?)
            }
            Op::Select { picks } => ArithShare::from_raw(layout::select(arg(0)?.as_raw(), picks)?),
            Op::Concat { axis } => {
                let parts: Vec<ArithShare> =
                    (0..node.inputs.len()).map(&arg).collect::<Result<_>>()?;
                let raws: Vec<&RingTensor> = parts.iter().map(|p| p.as_raw()).collect();
                ArithShare::from_raw(layout::concat(&raws, *axis)?)
            }
            Op::Expand { shape } => ArithShare::from_raw(layout::expand(arg(0)?.as_raw(), shape)?),
            Op::Pad { pads } => ArithShare::from_raw(layout::pad(arg(0)?.as_raw(), pads, 0)?),
            Op::LayerNorm { epsilon } => party.layer_norm(&arg(0)?, *epsilon).await?,
            Op::GlobalMaxPool => {
                let x = arg(0)?;
                let s = x.shape().to_vec();
                if s.len() != 4 {
                    return Err(Error::Shape("GlobalMaxPool needs [N,C,H,W]".into()));
                }
                let flat =
                    ArithShare::from_raw(layout::reshape(x.as_raw(), &[s[0], s[1], s[2] * s[3]])?);
                let m = party.max_axis(&flat, 2).await?;
                ArithShare::from_raw(layout::reshape(m.as_raw(), &[s[0], s[1], 1, 1])?)
            }
            Op::ArgMax { axis, .. } => {
                let a = party.argmax_axis(&arg(0)?, *axis).await?;
                ArithShare::from_raw(layout::reshape(a.as_raw(), &out_shape)?)
            }
        };
        if y.shape() != out_shape.as_slice() {
            return Err(Error::Shape(format!(
                "node {} ({}) produced {:?}, the plan says {out_shape:?}",
                node.name,
                node.op.name(),
                y.shape()
            )));
        }
        vals[node.output] = Some(y);
        progress(Progress {
            done: done + 1,
            total: plan.nodes.len(),
            op: node.op.name(),
        });
    }
    let mut outs = Vec::new();
    for &o in &plan.outputs {
        let y = vals[o]
            .as_ref()
            .ok_or_else(|| Error::Usage("output not computed".into()))?;
        if let Some(v) = party.reveal_to(y, roles.client).await? {
            outs.push(fp.decode_tensor(&v));
        }
    }
    Ok((me == roles.client).then_some(outs))
}

/// The correlations a session needs, derived from the plan alone: the
/// requests of the weight setup and of one inference, in order. Protocols
/// are data-oblivious, so a rehearsal on zeros (all parties in this process)
/// asks for exactly what a real run asks for; a dealer can generate the
/// material from this list before the input exists.
pub fn requests(
    plan: &Plan,
    config: crate::protocol::Config,
    parties: usize,
) -> Result<(
    Vec<crate::preprocessing::CorrelationRequest>,
    Vec<crate::preprocessing::CorrelationRequest>,
)> {
    use crate::backend::CpuBackend;
    use crate::channel::memory::run_parties;
    use crate::preprocessing::Recorder;
    use crate::preprocessing::seeded::in_process;
    use crate::prg::Seed;
    plan.validate()?;
    let roles = Roles {
        owner: parties - 1,
        client: 0,
    };
    let zeros = Weights {
        tensors: plan
            .weights
            .iter()
            .map(|w| ArrayD::zeros(IxDyn(&w.shape)))
            .collect(),
    };
    let inputs: Vec<ArrayD<f64>> = plan
        .inputs
        .iter()
        .map(|&i| ArrayD::zeros(IxDyn(&plan.values[i].shape)))
        .collect();
    let seeds: Vec<Seed> = (0..parties as u8)
        .map(|i| Seed::from_bytes([i; 32]))
        .collect();
    let mut preps = in_process(&seeds, CpuBackend)
        .into_iter()
        .map(Recorder::new);
    let (zeros, inputs) = (&zeros, &inputs);
    let results = run_parties(parties, |ch| {
        let prep = preps.next();
        async move {
            let prep = prep.ok_or(Error::Usage("missing preprocessing".into()))?;
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let me = p.id();
            let session = setup(&mut p, plan, roles, (me == roles.owner).then_some(zeros)).await?;
            let after_setup = p.preprocessing().requests().len();
            evaluate(
                &mut p,
                plan,
                roles,
                &session,
                (me == roles.client).then_some(&inputs[..]),
            )
            .await?;
            let (_, rec, _) = p.into_parts();
            let (_, all) = rec.into_parts();
            Ok((all, after_setup))
        }
    });
    let (mut all, split) = results
        .into_iter()
        .next()
        .ok_or(Error::Usage("no parties".into()))??;
    let inference = all.split_off(split);
    Ok((all, inference))
}
