//! `Gather` of a constant table at computed indices: an embedding lookup of
//! the client's token ids, or of indices the model computed (`ArgMax`).
//!
//! Under MPC nobody may learn which rows are read, so every row is: each
//! index becomes its one-hot code over the table's `V` rows (the plan's
//! `OneHot`: a bit decomposition, then a demultiplexer of about `2·V` AND
//! gates and `V` converted bits, exact), and the lookup is its product with
//! the table, the owner's weight, which opens the `[count, V]` code once
//! (8 bytes an element, from the client). Measured with `hush run` on a
//! BERT-size table (`V` = 30,522, 16 ids): 26 rounds, 6.0 MB per party in
//! all, about 65 KB an index for the code and 244 KB for the product; `V`
//! comparisons alone would be 2.3 MB an index.
//!
//! An index outside `[0, V)` reads a row of zeros: ONNX calls such an index
//! an error (a negative one counts from the end), but raising it would tell
//! the owner something about the client's data.

use super::{Builder, Entry, ImportError, attr_i, invalid, unsupported};
use crate::proto::NodeProto;
use hush_core::plan::Op;
use ndarray::IxDyn;
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

        let flat = self.step(
            n,
            "ids",
            Op::Reshape { shape: vec![count] },
            vec![ids],
            vec![count],
        );
        let code = self.step(
            n,
            "one_hot",
            Op::OneHot { depth: rows },
            vec![flat],
            vec![count, rows],
        );
        // The lookup: a product with the table as the owner's weight.
        let table = Arc::unwrap_or_clone(table)
            .into_shape_with_order(IxDyn(&[rows, width]))
            .map_err(|e| invalid(n.name(), e.to_string()))?;
        let w = self.weight(&n.input[0], table);
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
