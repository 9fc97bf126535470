//! `Einsum` of one or two operands, as the operations it stands for: sums
//! over the indices only one operand has, transpositions and reshapes
//! (local), and one matrix product — of two computed values (batched over
//! the indices both operands and the output share), or of a computed value
//! with a constant, the owner's weight (`x · W` over the contracted
//! indices). Explicit equations (`->`) without an ellipsis and without an
//! index repeated in one operand (a diagonal); anything else is
//! `Unsupported`.

use super::{Builder, Entry, ImportError, attr_s, invalid, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::{Axis, IxDyn};
use std::sync::Arc;

/// An operand: its indices and what it is.
struct Operand {
    indices: Vec<char>,
    entry: Entry,
}

/// A parsed equation: each operand's indices and the output's.
fn parse(
    n: &NodeProto,
    equation: &str,
    operands: usize,
) -> Result<(Vec<Vec<char>>, Vec<char>), ImportError> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    if equation.contains("...") {
        return Err(unsupported(n, "an ellipsis (...)"));
    }
    let Some((lhs, out)) = equation.split_once("->") else {
        return Err(unsupported(n, "an implicit output (no '->')"));
    };
    let inputs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    if inputs.len() != operands {
        return Err(invalid(
            n.name(),
            format!("{} operands for {} inputs", inputs.len(), operands),
        ));
    }
    for indices in inputs.iter().chain([&out]) {
        if let Some(c) = indices.iter().find(|c| !c.is_ascii_alphabetic()) {
            return Err(invalid(n.name(), format!("'{c}' in the equation")));
        }
        if (1..indices.len()).any(|i| indices[..i].contains(&indices[i])) {
            return Err(unsupported(n, "an index repeated in one term (a diagonal)"));
        }
    }
    if let Some(c) = out.iter().find(|c| !inputs.iter().any(|i| i.contains(c))) {
        return Err(invalid(
            n.name(),
            format!("output index '{c}' in no operand"),
        ));
    }
    Ok((inputs, out))
}

/// The permutation that puts `from`'s indices in the order of `to` (the
/// same set).
fn permutation(from: &[char], to: &[char]) -> Vec<usize> {
    to.iter()
        .map(|c| from.iter().position(|f| f == c).unwrap_or(0))
        .collect()
}

impl Builder {
    pub(super) fn einsum(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let equation = attr_s(n, "equation").ok_or_else(|| invalid(n.name(), "no equation"))?;
        let count = n.input.len();
        if !(1..=2).contains(&count) {
            return Err(unsupported(n, format!("{count} operands (one or two are)")));
        }
        let (inputs, out) = parse(n, &equation, count)?;
        let mut operands = Vec::with_capacity(count);
        for (i, indices) in inputs.into_iter().enumerate() {
            let entry = self.get(n, i)?;
            let rank = self.shape_of(&entry).len();
            if rank != indices.len() {
                return Err(invalid(
                    n.name(),
                    format!(
                        "operand {i} has rank {rank}, the equation {}",
                        indices.len()
                    ),
                ));
            }
            operands.push(Operand { indices, entry });
        }
        if operands
            .iter()
            .all(|o| !matches!(o.entry, Entry::Secret(_)))
        {
            return Err(unsupported(n, "only constant operands"));
        }
        // Sum each operand over the indices nothing else has.
        for k in 0..operands.len() {
            let others: Vec<char> = operands
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k)
                .flat_map(|(_, o)| o.indices.clone())
                .chain(out.iter().copied())
                .collect();
            let alone: Vec<usize> = (0..operands[k].indices.len())
                .filter(|&a| !others.contains(&operands[k].indices[a]))
                .collect();
            if !alone.is_empty() {
                operands[k] = self.sum_out(n, k, &operands[k], &alone)?;
            }
        }
        match operands.len() {
            1 => {
                let Entry::Secret(x) = operands[0].entry else {
                    unreachable!("checked above")
                };
                let perm = permutation(&operands[0].indices, &out);
                let shape: Vec<usize> = perm.iter().map(|&p| self.shape(x)[p]).collect();
                self.emit(n, Op::Transpose { perm }, vec![x], shape);
            }
            _ => {
                let b = operands
                    .pop()
                    .unwrap_or_else(|| unreachable!("two operands"));
                let a = operands
                    .pop()
                    .unwrap_or_else(|| unreachable!("two operands"));
                self.contract(n, a, b, &out)?;
            }
        }
        Ok(())
    }

    /// Operand `k` summed over its axes `axes` (dropped).
    fn sum_out(
        &mut self,
        n: &NodeProto,
        k: usize,
        o: &Operand,
        axes: &[usize],
    ) -> Result<Operand, ImportError> {
        let indices: Vec<char> = (0..o.indices.len())
            .filter(|a| !axes.contains(a))
            .map(|a| o.indices[a])
            .collect();
        let entry = match &o.entry {
            Entry::Secret(x) => {
                let shape: Vec<usize> = (0..o.indices.len())
                    .filter(|a| !axes.contains(a))
                    .map(|a| self.shape(*x)[a])
                    .collect();
                Entry::Secret(self.step(
                    n,
                    &format!("operand{k}.summed"),
                    Op::ReduceSum {
                        axes: axes.to_vec(),
                        keepdims: false,
                    },
                    vec![*x],
                    shape,
                ))
            }
            Entry::Public(c) | Entry::Init(c) => {
                let mut c = (**c).clone();
                for &a in axes.iter().rev() {
                    c = c.sum_axis(Axis(a));
                }
                match o.entry {
                    Entry::Init(_) => Entry::Init(Arc::new(c)),
                    _ => Entry::Public(Arc::new(c)),
                }
            }
        };
        Ok(Operand { indices, entry })
    }

    /// The product of two operands, summed over the indices they share
    /// that the output lacks.
    fn contract(
        &mut self,
        n: &NodeProto,
        a: Operand,
        b: Operand,
        out: &[char],
    ) -> Result<(), ImportError> {
        let shared: Vec<char> = a
            .indices
            .iter()
            .copied()
            .filter(|c| b.indices.contains(c))
            .collect();
        let batch: Vec<char> = shared.iter().copied().filter(|c| out.contains(c)).collect();
        let contracted: Vec<char> = shared
            .iter()
            .copied()
            .filter(|c| !out.contains(c))
            .collect();
        let free = |o: &Operand| -> Vec<char> {
            o.indices
                .iter()
                .copied()
                .filter(|c| !shared.contains(c))
                .collect()
        };
        let (free_a, free_b) = (free(&a), free(&b));
        let (da, db) = (self.shape_of(&a.entry), self.shape_of(&b.entry));
        let size = |o: &Operand, d: &[usize], cs: &[char]| -> usize {
            cs.iter()
                .map(|c| d[o.indices.iter().position(|x| x == c).unwrap_or(0)])
                .product()
        };
        for c in &shared {
            let (i, j) = (
                a.indices.iter().position(|x| x == c).unwrap_or(0),
                b.indices.iter().position(|x| x == c).unwrap_or(0),
            );
            if da[i] != db[j] {
                return Err(invalid(
                    n.name(),
                    format!(
                        "index '{c}' is {} in one operand and {} in the other",
                        da[i], db[j]
                    ),
                ));
            }
        }
        let k = size(&a, &da, &contracted);
        // The product's axes, in order, and their sizes.
        let product_indices: Vec<char>;
        let product = match (&a.entry, &b.entry) {
            (Entry::Secret(x), Entry::Secret(y)) => {
                let nb = size(&a, &da, &batch);
                let (m, nn) = (size(&a, &da, &free_a), size(&b, &db, &free_b));
                let left = self.arrange(
                    n,
                    "left",
                    *x,
                    &a.indices,
                    &[&batch[..], &free_a, &contracted],
                    vec![nb, m, k],
                );
                let right = self.arrange(
                    n,
                    "right",
                    *y,
                    &b.indices,
                    &[&batch[..], &contracted, &free_b],
                    vec![nb, k, nn],
                );
                let p = self.step(n, "product", Op::MatMul, vec![left, right], vec![nb, m, nn]);
                product_indices = [&batch[..], &free_a, &free_b].concat();
                p
            }
            (Entry::Secret(_), _) | (_, Entry::Secret(_)) => {
                if !batch.is_empty() {
                    return Err(unsupported(
                        n,
                        "an index shared by the output and a constant operand (a batched \
                         product with a weight)",
                    ));
                }
                // (computed, constant, their shapes, the constant's input)
                let (s, c, ds, dc, c_input) = if matches!(a.entry, Entry::Secret(_)) {
                    (&a, &b, &da, &db, 1)
                } else {
                    (&b, &a, &db, &da, 0)
                };
                let (Entry::Secret(x), Some((w, _))) = (&s.entry, c.entry.clone().constant())
                else {
                    unreachable!("one operand computed, the other constant")
                };
                let (free_s, free_c) = (free(s), free(c));
                let (m, nn) = (size(s, ds, &free_s), size(c, dc, &free_c));
                let left = self.arrange(
                    n,
                    "left",
                    *x,
                    &s.indices,
                    &[&free_s[..], &contracted],
                    vec![m, k],
                );
                // The weight as [contracted, free], flattened to [k, n].
                let order: Vec<char> = [&contracted[..], &free_c].concat();
                let w = w
                    .view()
                    .permuted_axes(IxDyn(&permutation(&c.indices, &order)))
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(&[k, nn]))
                    .map_err(|e| invalid(n.name(), e.to_string()))?;
                let w = self.weight(&n.input[c_input], w);
                let p = self.step(
                    n,
                    "product",
                    Op::MatMulWeight { weight: w },
                    vec![left],
                    vec![m, nn],
                );
                product_indices = [&free_s[..], &free_c].concat();
                p
            }
            _ => unreachable!("checked by the caller"),
        };
        // Each index's size, from whichever operand has it.
        let product_shape: Vec<usize> = product_indices
            .iter()
            .map(|c| match a.indices.iter().position(|x| x == c) {
                Some(i) => da[i],
                None => db[b.indices.iter().position(|x| x == c).unwrap_or(0)],
            })
            .collect();
        let unflat = self.step(
            n,
            "unflattened",
            Op::Reshape {
                shape: product_shape.clone(),
            },
            vec![product],
            product_shape.clone(),
        );
        let perm = permutation(&product_indices, out);
        let shape: Vec<usize> = perm.iter().map(|&p| product_shape[p]).collect();
        self.emit(n, Op::Transpose { perm }, vec![unflat], shape);
        Ok(())
    }

    /// Value `x` with axes `indices` transposed into the order of `groups`
    /// (concatenated) and reshaped to `shape`.
    fn arrange(
        &mut self,
        n: &NodeProto,
        side: &str,
        x: usize,
        indices: &[char],
        groups: &[&[char]],
        shape: Vec<usize>,
    ) -> usize {
        let order: Vec<char> = groups.concat();
        let perm = permutation(indices, &order);
        let xs = self.shape(x);
        let moved: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
        let t = self.step(
            n,
            &format!("{side}.transposed"),
            Op::Transpose { perm },
            vec![x],
            moved,
        );
        self.step(
            n,
            &format!("{side}.flat"),
            Op::Reshape {
                shape: shape.clone(),
            },
            vec![t],
            shape,
        )
    }
}
