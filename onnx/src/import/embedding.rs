//! `Gather` of a constant table at computed indices: an embedding lookup of
//! the client's token ids, or of indices the model computed (`ArgMax`).
//!
//! Under MPC nobody may learn which rows are read, so every row is: each
//! index `i` becomes its thermometer code `t_r = [i < r]` for `r = 0..=V`
//! (`V + 1` sign tests, all in one batch and exact on integers), and the
//! lookup is its product with the table's differences `W'_r = W_(r−1) − W_r`
//! (`W_(−1) = W_V = 0`), the owner's weight: the sum telescopes to `W_i`.
//! It costs `V + 1` comparisons per index (half the `2·V` of one-hot rows
//! built from two sign tests each) and one product with a `[V + 1, rest]`
//! weight.
//!
//! An index outside `[0, V)` reads a row of zeros: ONNX calls such an index
//! an error (a negative one counts from the end), but raising it would tell
//! the owner something about the client's data.

use super::{Builder, Entry, ImportError, attr_i, constant, invalid, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

impl Builder {
    /// `Gather(table, indices)` along axis 0 with a constant table and
    /// computed integer indices.
    pub(super) fn gather_computed(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Some((table, _)) = self.get(n, 0)?.constant() else {
            return Err(unsupported(
                n,
                "a computed tensor at computed indices (only a constant table, such as an \
                 embedding, may be read at computed indices)",
            ));
        };
        let Entry::Secret(ids) = self.get(n, 1)? else {
            unreachable!("dispatched for computed indices")
        };
        if !self.is_integer(ids) {
            return Err(unsupported(
                n,
                "computed indices not known to be integers (an integer input, ArgMax, a \
                 comparison)",
            ));
        }
        if table.ndim() == 0 {
            return Err(invalid(n.name(), "Gather of a scalar"));
        }
        let axis = attr_i(n, "axis", 0);
        if axis != 0 && axis != -(table.ndim() as i64) {
            return Err(unsupported(
                n,
                "computed indices along an axis other than 0",
            ));
        }
        let rows = table.shape()[0];
        let rest: Vec<usize> = table.shape()[1..].to_vec();
        let width: usize = rest.iter().product();
        let id_shape = self.shape(ids);
        let count: usize = id_shape.iter().product();
        if count.checked_mul(rows).is_none() {
            return Err(invalid(
                n.name(),
                "the one-hot rows are over the size limit",
            ));
        }

        // t[k, r] = [ids[k] − r + ½ < 0] = [ids[k] < r] on integers.
        let column = self.step(
            n,
            "ids",
            Op::Reshape {
                shape: vec![count, 1],
            },
            vec![ids],
            vec![count, 1],
        );
        let thresholds = ArrayD::from_shape_fn(IxDyn(&[rows + 1]), |ix| 0.5 - ix[0] as f64);
        let d = self.step(
            n,
            "offsets",
            Op::AddConst(constant(thresholds)),
            vec![column],
            vec![count, rows + 1],
        );
        let code = self.step(
            n,
            "thermometer",
            Op::IsNegative,
            vec![d],
            vec![count, rows + 1],
        );
        // The lookup: a product with the rows' differences, the owner's weight.
        let table = Arc::unwrap_or_clone(table)
            .into_shape_with_order(IxDyn(&[rows, width]))
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let differences = ArrayD::from_shape_fn(IxDyn(&[rows + 1, width]), |ix| {
            let (r, c) = (ix[0], ix[1]);
            let above = if r > 0 { table[[r - 1, c]] } else { 0.0 };
            let here = if r < rows { table[[r, c]] } else { 0.0 };
            above - here
        });
        let w = self.weight(&n.input[0], differences);
        let looked_up = self.step(
            n,
            "rows",
            Op::MatMulWeight { weight: w },
            vec![code],
            vec![count, width],
        );
        let out: Vec<usize> = id_shape.into_iter().chain(rest).collect();
        self.emit(n, Op::Reshape { shape: out.clone() }, vec![looked_up], out);
        Ok(())
    }
}
