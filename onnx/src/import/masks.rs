//! Attention masks: large negative numbers added to a softmax's input so
//! that some positions get no weight, as exported transformers build them:
//! `scores + (1 − mask)·finfo.min` (Hugging Face), `masked_fill(…, −inf)`
//! (causal masks), or `−10000` in older exports.
//!
//! The plan's softmax subtracts each row's maximum and floors what is left
//! at `−exp_max_abs` before its `e^x` (docs/ACCURACY.md), so a finite mask
//! of any size (that fits fixed point) needs nothing here. But fixed point
//! has no infinity, and `finfo.min` is far outside its range:
//!
//! - Constant elements of an `Add`, `Mul` or `Where` operand below
//!   [`SATURATED`] (or `−∞`) stand for `SATURATED` (−2^20): after the
//!   softmax's floor, the same as `−∞`. NaN is refused.
//! - The values made from them are **saturated**: they may reach a
//!   `Softmax` only through data movement, `Add`, `Sub` (as the minuend), a
//!   product or quotient by a positive constant, or `Where` (as a branch),
//!   since anywhere else the stand-in would change the result; the import
//!   refuses any other use. A `LogSoftmax` of a saturated value is refused
//!   too: its result holds the `−∞`.

use super::{Builder, Entry, ImportError, unsupported};
use crate::proto::NodeProto;
use ndarray::ArrayD;
use std::sync::Arc;

/// What constant mask elements below it (and `−∞`) stand for: far below
/// any softmax input, and small enough that a product with a 0/1 mask
/// (`2^20·2^16` at the default 16 fractional bits, times the other factor's
/// scale) stays far inside the 64-bit ring.
const SATURATED: f64 = -1_048_576.0;

/// Whether a saturated value at input `i` of `n` passes through it (the
/// output stays saturated): data movement, a sum, a difference
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

/// Whether `c` holds elements that need a stand-in: below [`SATURATED`],
/// or `−∞`.
fn saturating(c: &ArrayD<f64>) -> bool {
    c.iter().any(|&v| v < SATURATED)
}

impl Builder {
    /// Imports node `n`, following saturated masks through it (see the
    /// module notes).
    pub(super) fn node_with_masks(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let saturated: Vec<usize> = n
            .input
            .iter()
            .enumerate()
            .filter(|(_, s)| self.saturated.contains(*s))
            .map(|(i, _)| i)
            .collect();
        if !saturated.is_empty() {
            let refused = match n.op_type() {
                "Softmax" => None,
                "LogSoftmax" => Some(
                    "LogSoftmax of a mask made of -inf or of constants below -2^20: the result \
                     holds them, and fixed point has no such numbers"
                        .to_string(),
                ),
                _ if saturated.iter().all(|&i| passes(n, i, self)) => None,
                _ => Some(format!(
                    "input {} holds a mask made of -inf or of constants below {SATURATED} \
                     (fixed point has neither): it may reach a Softmax through data movement, \
                     Add, Where or a positive scale, nothing else",
                    saturated[0]
                )),
            };
            if let Some(why) = refused {
                return Err(unsupported(n, why));
            }
        }
        let source = !self.all_public(n) && matches!(n.op_type(), "Add" | "Mul" | "Where");
        let mut node = std::borrow::Cow::Borrowed(n);
        let mut made_saturated = false;
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
                if !saturating(&c) {
                    continue;
                }
                made_saturated = true;
                let stand_in = Arc::new(c.mapv(|v| v.max(SATURATED)));
                let name = format!("{}.saturated", n.input[i]);
                let entry = if weight {
                    Entry::Init(stand_in)
                } else {
                    Entry::Public(stand_in)
                };
                self.names.insert(name.clone(), entry);
                node.to_mut().input[i] = name;
            }
        }
        self.node(&node)?;
        let carried = !saturated.is_empty() && n.op_type() != "Softmax";
        if made_saturated || carried {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                self.saturated.insert(o.clone());
            }
        }
        Ok(())
    }
}
