//! Attention masks: large negative numbers added to a softmax's input so
//! that some positions get no weight, as exported transformers build them:
//! `scores + (1 − mask)·finfo.min` (Hugging Face), `masked_fill(…, −inf)`
//! (causal masks), or `−10000` in older exports.
//!
//! Under MPC the softmax's `e^x` is computed on a bounded range (`±16` by
//! default, docs/ACCURACY.md); far below it the result is not small but
//! wrong. So the importer follows such values from where they are made to
//! the softmax that takes them, and floors that softmax's input at
//! [`EXP_FLOOR`] (one comparison per element): `e^−15 ≈ 3.1e−7` is below
//! the fixed-point unit, the weight the mask meant to remove.
//!
//! - A value is **masked** when it is the result of `Add`, `Mul` or `Where`
//!   with a constant operand below `EXP_FLOOR` (or infinite), or of data
//!   movement, `Add`, `Sub` (as the minuend), a product or quotient by a
//!   positive constant, or `Where` (as a branch) of a masked value. Only
//!   softmaxes of masked values are floored; elsewhere masked values are
//!   ordinary numbers.
//! - Fixed point has no infinity, and `finfo.min` is far outside its range:
//!   constant elements of such an operand below [`SATURATED`] (or `−∞`)
//!   stand for `SATURATED` (−2^20), which the floor makes the same as
//!   `−∞`. The values made from them are **saturated**: they may only reach
//!   a `Softmax` through the operations above, since anywhere else the
//!   stand-in would change the result; the import refuses any other use.
//!   A `LogSoftmax` of a saturated value is refused too: its result holds
//!   the `−∞`.

use super::composite::{EXP_FLOOR, ExpFloor};
use super::{Builder, Entry, ImportError, Last, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::ArrayD;
use std::sync::Arc;

/// What constant mask elements below it (and `−∞`) stand for: far below
/// any softmax input, and small enough that a product with a 0/1 mask
/// (`2^20·2^16` at the default 16 fractional bits, times the other factor's
/// scale) stays far inside the 64-bit ring.
const SATURATED: f64 = -1_048_576.0;

/// Whether a masked value at input `i` of `n` passes through it (the
/// output stays masked, or saturated): data movement, a sum, a difference
/// as the minuend, a branch of `Where`, a product or quotient by a positive
/// constant. A `Cast` is to a float type: to an integer, a computed real is
/// refused anyway.
fn passes(n: &NodeProto, i: usize, b: &Builder) -> bool {
    let positive_constant = |j: usize| {
        b.opt(n, j)
            .ok()
            .flatten()
            .and_then(Entry::constant)
            .is_some_and(|(c, _)| c.iter().all(|&v| v > 0.0 && v.is_finite()))
    };
    match n.op_type() {
        "Identity" | "Dropout" | "Reshape" | "Flatten" | "Transpose" | "Squeeze" | "Unsqueeze"
        | "Expand" | "Concat" | "Slice" | "Tile" | "Pad" | "Cast" | "Add" => true,
        "Gather" | "Sub" => i == 0,
        "Where" => i > 0,
        "Mul" => positive_constant(1 - i.min(1)),
        "Div" => i == 0 && positive_constant(1),
        _ => false,
    }
}

/// Whether `c` holds mask elements: below the floor, or `−∞`.
fn mask_like(c: &ArrayD<f64>) -> bool {
    c.iter().any(|&v| v < EXP_FLOOR)
}

impl Builder {
    /// Imports node `n`, following masks through it (see the module notes).
    pub(super) fn node_with_masks(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let named = |set: &std::collections::HashSet<String>| {
            n.input
                .iter()
                .enumerate()
                .filter(|(_, s)| set.contains(*s))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let (masked, saturated) = (named(&self.masked), named(&self.saturated));
        let softmax = matches!(n.op_type(), "Softmax" | "LogSoftmax");
        let all_pass = |b: &Builder, ins: &[usize]| ins.iter().all(|&i| passes(n, i, b));
        if !saturated.is_empty() && !softmax && !all_pass(self, &saturated) {
            return Err(unsupported(
                n,
                format!(
                    "input {} holds a mask made of -inf or of constants below {SATURATED} \
                     (fixed point has neither): it may reach a Softmax through data movement, \
                     Add, Where or a positive scale, nothing else",
                    saturated[0]
                ),
            ));
        }
        let source = !self.all_public(n) && matches!(n.op_type(), "Add" | "Mul" | "Where");
        let mut node = std::borrow::Cow::Borrowed(n);
        let (mut made_masked, mut made_saturated) = (false, false);
        if source {
            for i in 0..n.input.len() {
                if n.op_type() == "Where" && i == 0 {
                    continue;
                }
                let Ok(Some(e)) = self.opt(n, i) else {
                    continue;
                };
                let Some((c, weight)) = e.constant() else {
                    continue;
                };
                if c.iter().any(|v| v.is_nan()) {
                    return Err(unsupported(n, format!("input {i} holds NaN")));
                }
                if !mask_like(&c) {
                    continue;
                }
                made_masked = true;
                if c.iter().any(|&v| v < SATURATED) {
                    made_saturated = true;
                    let stand_in = c.mapv(|v| v.max(SATURATED));
                    let name = format!("{}.saturated", n.input[i]);
                    let stand_in = Arc::new(stand_in);
                    let entry = if weight {
                        Entry::Init(stand_in)
                    } else {
                        Entry::Public(stand_in)
                    };
                    self.names.insert(name.clone(), entry);
                    node.to_mut().input[i] = name;
                }
            }
        }
        self.node(&node)?;
        let carried = !masked.is_empty() && all_pass(self, &masked) && !softmax;
        if made_masked || carried {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                self.masked.insert(o.clone());
                if made_saturated || (carried && !saturated.is_empty()) {
                    self.saturated.insert(o.clone());
                }
            }
        }
        Ok(())
    }

    /// `Softmax` or `LogSoftmax` of masked value `x`: of `y = max(x,
    /// EXP_FLOOR)` (`relu(x − F) + F`, one comparison). `LogSoftmax` is
    /// `x − ln Σe^y`, the mask's own value where it is: `LogSoftmax(y) +
    /// (x − y)`.
    pub(super) fn softmax_floored(&mut self, n: &NodeProto, x: usize) -> Result<(), ImportError> {
        if n.op_type() == "LogSoftmax" && self.saturated.contains(&n.input[0]) {
            return Err(unsupported(
                n,
                "LogSoftmax of a mask made of -inf or of constants below -2^20: the result \
                 holds them, and fixed point has no such numbers",
            ));
        }
        let s = self.shape(x);
        let ExpFloor {
            shifted: z,
            relu: r,
            floored: y,
        } = self.exp_floor(n, x);
        if n.op_type() == "Softmax" {
            self.softmax_of(n, y, Last::Output)?;
            return Ok(());
        }
        let below = self.step(n, "mask_below", Op::Sub, vec![z, r], s.clone());
        let l = self.softmax_of(n, y, Last::Step)?;
        self.emit(n, Op::Add, vec![l, below], s);
        Ok(())
    }
}
