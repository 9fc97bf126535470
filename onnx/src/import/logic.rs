//! Comparisons (`Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`,
//! `Equal`), logic
//! (`Not`, `And`, `Or`, `Xor`), `Where` and `Cast` on computed values.
//!
//! ONNX's booleans are the numbers 0 and 1 in a plan. A comparison is one
//! sign test of a difference ([`Op::IsNegative`]), exact on the fixed-point
//! grid: operands closer than one fixed-point unit (2^−16 by default) may
//! compare as equal. `Equal` is two sign tests in one batch. `And` is a product (`Or`, `Xor` a product and sums), so
//! its result may be off by one fixed-point unit (the product's truncation);
//! `Not` is `1 − x`, local. `Where(c, a, b)` is `b + c·(a − b)` for a
//! computed condition (one product), and a choice of elements, local, for a
//! constant one.
//!
//! The importer knows which computed values are booleans (the results of
//! comparisons and logic, boolean inputs, and elements moved from them) and
//! which are integers (`ArgMax`'s indices, integer inputs), and refuses logic,
//! a computed condition or a cast to an integer type of any other computed
//! value: rounding a fixed-point value to an integer is not implemented.

use super::{
    Binary, Builder, Combine, Entry, ImportError, Last, Numbers, attr_i, broadcast_shape,
    broadcast_to, constant, invalid, numbers_of, scalar, unsupported,
};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// A truth value as a number.
fn number(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// An operand of `Where` with a constant condition, kept where the
/// condition chooses it: a computed value, or a constant (zero elsewhere)
/// and whether it is the owner's.
enum Kept {
    Computed(usize),
    Constant(ArrayD<f64>, bool),
}

impl Builder {
    /// `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`: one sign test of
    /// the operands' difference (`a < b ⇔ a − b < 0`), and for the
    /// non-strict ones its negation.
    pub(super) fn compare(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type();
        if self.all_public(n) {
            let f: fn(f64, f64) -> f64 = match op {
                "Less" => |a, b| number(a < b),
                "Greater" => |a, b| number(a > b),
                "LessOrEqual" => |a, b| number(a <= b),
                _ => |a, b| number(a >= b),
            };
            return self.fold_binary(n, f);
        }
        // (minuend, subtrahend) of the strict comparison, and whether the
        // result is its negation: a ≥ b ⇔ ¬(a < b), a ≤ b ⇔ ¬(b < a).
        let (operands, negated) = match op {
            "Less" => ((0, 1), false),
            "Greater" => ((1, 0), false),
            "GreaterOrEqual" => ((0, 1), true),
            _ => ((1, 0), true),
        };
        let d = self.binary(n, Binary::Sub, operands, Last::Step, "difference")?;
        let s = self.shape(d);
        let out = if negated {
            let strict = self.step(n, "strict", Op::IsNegative, vec![d], s);
            self.not(n, strict, Last::Output)
        } else {
            self.emit(n, Op::IsNegative, vec![d], s)
        };
        self.booleans.insert(out);
        Ok(())
    }

    /// `Equal` with a computed operand: `1 − [d < 0] − [−d < 0]` for the
    /// difference `d`, both sign tests in one batch (exact on the
    /// fixed-point grid, like the other comparisons).
    pub(super) fn equal(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let d = self.binary(n, Binary::Sub, (0, 1), Last::Step, "difference")?;
        let tests = [(1.0, 0.0, 1.0), (-1.0, 0.0, 1.0)];
        let unequal = self.sign_test_pair(n, d, tests, Last::Step)?;
        let out = self.not(n, unequal, Last::Output);
        self.booleans.insert(out);
        Ok(())
    }

    /// `Σ_r w_r·[a_r·d + b_r < 0]` elementwise over the two rows
    /// `(a_r, b_r, w_r)` of `tests`, for a value `d`: both sign tests in one
    /// batch (one `IsNegative` of a `[2, count]` view of `d`), the rest
    /// local. The result has `d`'s shape; it is `n`'s output or a step, as
    /// `last` says.
    pub(super) fn sign_test_pair(
        &mut self,
        n: &NodeProto,
        d: usize,
        tests: [(f64, f64, f64); 2],
        last: Last,
    ) -> Result<usize, ImportError> {
        let shape = self.shape(d);
        let count: usize = shape.iter().product();
        let pair = vec![2, count];
        let column = |v: [f64; 2]| {
            ArrayD::from_shape_vec(IxDyn(&[2, 1]), v.to_vec())
                .map_err(|e| invalid(n.name(), e.to_string()))
        };
        let flat = Op::Reshape {
            shape: vec![1, count],
        };
        let mut v = self.step(n, "flat", flat, vec![d], vec![1, count]);
        // The first of these makes the two rows (a broadcast).
        let (scales, offsets) = (tests.map(|t| t.0), tests.map(|t| t.1));
        if scales != [1.0; 2] || offsets == [0.0; 2] {
            let c = constant(column(scales)?);
            v = self.step(n, "scaled", Op::MulConst(c), vec![v], pair.clone());
        }
        if offsets != [0.0; 2] {
            let c = constant(column(offsets)?);
            v = self.step(n, "shifted", Op::AddConst(c), vec![v], pair.clone());
        }
        v = self.step(n, "below", Op::IsNegative, vec![v], pair.clone());
        let weights = tests.map(|t| t.2);
        if weights != [1.0; 2] {
            let c = constant(column(weights)?);
            v = self.step(n, "weighted", Op::MulConst(c), vec![v], pair);
        }
        let sum = Op::ReduceSum {
            axes: vec![0],
            keepdims: false,
        };
        v = self.step(n, "summed", sum, vec![v], vec![count]);
        let back = Op::Reshape {
            shape: shape.clone(),
        };
        Ok(self.step_or_output(n, last, "tested", back, vec![v], shape))
    }

    /// `1 − x` of a boolean: a negation and an addition, local.
    fn not(&mut self, n: &NodeProto, x: usize, last: Last) -> usize {
        let s = self.shape(x);
        let neg = self.step(n, "negated", Op::MulConst(scalar(-1.0)), vec![x], s.clone());
        self.step_or_output(n, last, "not", Op::AddConst(scalar(1.0)), vec![neg], s)
    }

    /// `Not`, `And` (`a·b`), `Or` (`a + b − a·b`), `Xor` (`a + b − 2·a·b`)
    /// of booleans, computed or constant.
    pub(super) fn logic(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type();
        if self.all_public(n) {
            if op == "Not" {
                let a = self.public_of(n, 0)?;
                self.charge_fold(n, a.shape())?;
                let v = a.mapv(|v| number(v == 0.0));
                self.set_folded(n, v);
                return Ok(());
            }
            let f: fn(f64, f64) -> f64 = match op {
                "And" => |a, b| number(a != 0.0 && b != 0.0),
                "Or" => |a, b| number(a != 0.0 || b != 0.0),
                _ => |a, b| number((a != 0.0) != (b != 0.0)),
            };
            return self.fold_binary(n, f);
        }
        let arity = if op == "Not" { 1 } else { 2 };
        for i in 0..arity {
            self.boolean_input(n, i)?;
        }
        let out = match op {
            "Not" => {
                let x = self.secret(n, 0)?;
                self.not(n, x, Last::Output)
            }
            "And" => self.binary(n, Binary::Mul, (0, 1), Last::Output, "")?,
            _ => {
                let both = self.binary(n, Binary::Mul, (0, 1), Last::Step, "both")?;
                let sum = self.binary(n, Binary::Add, (0, 1), Last::Step, "sum")?;
                let s = self.shape(sum);
                let both = if op == "Xor" {
                    self.step(
                        n,
                        "both_twice",
                        Op::MulConst(scalar(2.0)),
                        vec![both],
                        s.clone(),
                    )
                } else {
                    both
                };
                self.emit(n, Op::Sub, vec![sum, both], s)
            }
        };
        self.booleans.insert(out);
        Ok(())
    }

    /// Checks that input `i` of `n` holds booleans: a computed value the
    /// importer knows to be 0 or 1, or a constant of zeros and ones.
    fn boolean_input(&self, n: &NodeProto, i: usize) -> Result<(), ImportError> {
        match self.get(n, i)? {
            Entry::Secret(v) if self.booleans.contains(&v) => Ok(()),
            Entry::Secret(_) => Err(unsupported(
                n,
                format!(
                    "input {i} is a computed value not known to be boolean (booleans come from \
                     comparisons and logic)"
                ),
            )),
            Entry::Public(c) | Entry::Init(c) => {
                if c.iter().all(|&v| v == 0.0 || v == 1.0) {
                    Ok(())
                } else {
                    Err(invalid(n.name(), format!("input {i} is not boolean")))
                }
            }
        }
    }

    /// `Where(c, a, b)` with a computed condition or computed operands.
    pub(super) fn where_op(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        if self.all_public(n) {
            return self.fold_more(n);
        }
        match self.get(n, 0)? {
            Entry::Secret(c) => self.where_computed(n, c),
            Entry::Public(c) => self.where_constant(n, &c, false),
            Entry::Init(c) => self.where_constant(n, &c, true),
        }
    }

    /// `b + c·(a − b)`: one product (with a weight or constant when both
    /// operands are constants, else of two computed values).
    fn where_computed(&mut self, n: &NodeProto, c: usize) -> Result<(), ImportError> {
        self.boolean_input(n, 0)?;
        let cs = self.shape(c);
        let b = self.get(n, 2)?;
        let chosen = match (self.get(n, 1)?.constant(), b.clone().constant()) {
            (Some((a, a_weight)), Some((b, b_weight))) => {
                let shape = broadcast_shape(n, a.shape(), b.shape())?;
                self.charge_fold(n, &shape)?;
                let d = &broadcast_to(n, &a, &shape)? - &broadcast_to(n, &b, &shape)?;
                finite(n, &d)?;
                let out = broadcast_shape(n, &cs, &shape)?;
                let o = self.constant_op(Combine::Mul, &n.input[1], d, a_weight || b_weight);
                self.step(n, "chosen", o, vec![c], out)
            }
            _ => {
                let d = self.binary(n, Binary::Sub, (1, 2), Last::Step, "difference")?;
                let out = broadcast_shape(n, &cs, &self.shape(d))?;
                self.step(n, "chosen", Op::Mul, vec![c, d], out)
            }
        };
        match b {
            Entry::Secret(b) => {
                let out = broadcast_shape(n, &self.shape(chosen), &self.shape(b))?;
                self.emit(n, Op::Add, vec![chosen, b], out);
            }
            constant => {
                let Some((b, is_weight)) = constant.constant() else {
                    unreachable!("matched above")
                };
                finite(n, &b)?;
                let out = broadcast_shape(n, &self.shape(chosen), b.shape())?;
                let b = Arc::unwrap_or_clone(b);
                let o = self.constant_op(Combine::Add, &n.input[2], b, is_weight);
                self.emit(n, o, vec![chosen], out);
            }
        }
        Ok(())
    }

    /// A constant condition chooses elements: `a·c + b·(1 − c)`, each
    /// product local (with the owner's weight when the condition is one).
    fn where_constant(
        &mut self,
        n: &NodeProto,
        c: &ArrayD<f64>,
        c_weight: bool,
    ) -> Result<(), ImportError> {
        let shape = broadcast_shape(
            n,
            &broadcast_shape(n, c.shape(), &self.shape_of(&self.get(n, 1)?))?,
            &self.shape_of(&self.get(n, 2)?),
        )?;
        // Each operand, kept where the condition says.
        let mut kept = Vec::with_capacity(2);
        for (i, keep) in [(1, true), (2, false)] {
            let mask = c.mapv(|v| number((v != 0.0) == keep));
            kept.push(match self.get(n, i)?.constant() {
                None => {
                    let x = self.secret(n, i)?;
                    let out = broadcast_shape(n, &self.shape(x), mask.shape())?;
                    let o = self.constant_op(Combine::Mul, &n.input[0], mask, c_weight);
                    let step = if keep { "kept_then" } else { "kept_else" };
                    Kept::Computed(self.step(n, step, o, vec![x], out))
                }
                Some((k, k_weight)) => {
                    self.charge_fold(n, &shape)?;
                    let (k, mask) = (
                        broadcast_to(n, &k, &shape)?,
                        broadcast_to(n, &mask, &shape)?,
                    );
                    let v = ndarray::Zip::from(&k)
                        .and(&mask)
                        .map_collect(|&k, &m| if m != 0.0 { k } else { 0.0 });
                    finite(n, &v)?;
                    Kept::Constant(v, k_weight || c_weight)
                }
            });
        }
        match (kept.remove(0), kept.remove(0)) {
            (Kept::Computed(x), Kept::Computed(y)) => {
                self.emit(n, Op::Add, vec![x, y], shape);
            }
            (Kept::Computed(x), Kept::Constant(k, w))
            | (Kept::Constant(k, w), Kept::Computed(x)) => {
                let o = self.constant_op(Combine::Add, &n.input[0], k, w);
                self.emit(n, o, vec![x], shape);
            }
            (Kept::Constant(..), Kept::Constant(..)) => unreachable!("all_public is checked first"),
        }
        Ok(())
    }

    /// `Cast`: to a float type a no-op; to an integer or boolean type a
    /// conversion of constants (truncation, or `≠ 0`), and a no-op on
    /// computed values known to hold such numbers already (booleans, and
    /// integers for integer types). Rounding other computed values
    /// is not implemented.
    pub(super) fn cast(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let to = attr_i(n, "to", 1);
        let Some(to) = numbers_of(to) else {
            return Err(unsupported(n, format!("to type {to}")));
        };
        let e = self.get(n, 0)?;
        match (&e, to) {
            (_, Numbers::Real) => self.alias(n, e),
            (Entry::Secret(v), Numbers::Boolean) if self.booleans.contains(v) => self.alias(n, e),
            (Entry::Secret(v), Numbers::Integer) if self.is_integer(*v) => self.alias(n, e),
            (Entry::Secret(_), _) => {
                return Err(unsupported(
                    n,
                    "a computed value to an integer or boolean type: rounding a fixed-point \
                     value is not implemented (only comparisons' and logic's results, \
                     ArgMax's indices and integer inputs convert)",
                ));
            }
            (Entry::Public(a) | Entry::Init(a), to) => {
                self.charge_fold(n, a.shape())?;
                let v = match to {
                    Numbers::Boolean => a.mapv(|v| number(v != 0.0)),
                    _ => a.mapv(f64::trunc),
                };
                self.set_folded(n, v);
            }
        }
        Ok(())
    }
}

/// Fixed point has no infinities: a constant that `Where` adds must be
/// finite. A mask of `−∞` before a softmax has been given a finite stand-in
/// already ([`super::masks`]); `+∞` and NaN remain.
fn finite(n: &NodeProto, v: &ArrayD<f64>) -> Result<(), ImportError> {
    if v.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(unsupported(
            n,
            "a constant operand with infinite or NaN elements (fixed point has none; only a \
             mask of -inf before a Softmax stands for a finite number)",
        ))
    }
}
