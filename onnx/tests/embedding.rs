//! `Gather` of a constant table at computed indices (an embedding of the
//! client's token ids, a lookup at `ArgMax`'s index), in plaintext and under
//! MPC, against the rows read directly. The one-hot rows are exact; the
//! product with the table truncates once (tolerance 1e-4 under MPC).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model_on, init, ints, model_with, node, with_int};
use hush_core::plan::Op;
use hush_onnx::proto::{ModelProto, NodeProto, TensorProto, type_proto};
use hush_onnx::{ImportError, import};
use ndarray::{ArrayD, IxDyn};
use prost::Message;

const TOLERANCE: (f64, f64) = (1e-9, 1e-4);

/// A model whose input `x` of `shape` is declared int64 (token ids).
fn ids_model(shape: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    let mut m = ModelProto::decode(&model_with(17, shape, nodes, inits)[..]).unwrap();
    let input = &mut m.graph.as_mut().unwrap().input[0];
    if let Some(type_proto::Value::TensorType(t)) =
        input.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(7); // INT64
    }
    m.encode_to_vec()
}

/// A `[6, 3]` table: row r is (r, −r/2, 10 + r/4).
fn table() -> Vec<f32> {
    (0..6)
        .flat_map(|r| {
            let r = r as f32;
            [r, -r / 2.0, 10.0 + r / 4.0]
        })
        .collect()
}

fn row(id: f64) -> [f64; 3] {
    if (0.0..6.0).contains(&id) {
        [id, -id / 2.0, 10.0 + id / 4.0]
    } else {
        [0.0; 3]
    }
}

#[test]
fn an_embedding_of_token_ids_reads_every_row_obliviously() {
    // In range, repeated, the last row; just past the end, out of range and
    // negative read zeros.
    let ids = vec![0.0, 5.0, 2.0, 2.0, 6.0, 7.0, -1.0];
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 7]), ids.clone()).unwrap();
    let want: Vec<f64> = ids.iter().flat_map(|&i| row(i)).collect();
    let model = ids_model(
        &[1, 7],
        vec![node("Gather", &["table", "x"], "y")],
        vec![init("table", &[6, 3], &table())],
    );
    let ops = check_model_on("embedding", &model, &x, &want, TOLERANCE);
    // One one-hot code of the 7 ids over the 6 rows, no comparisons.
    assert!(!ops.contains(&"IsNegative".to_string()), "{ops:?}");
    assert!(ops.contains(&"MatMul(weight)".to_string()), "{ops:?}");
    let plan = import(&model, &Default::default()).unwrap().plan;
    let codes: Vec<&Vec<usize>> = plan
        .nodes
        .iter()
        .filter(|n| n.op == Op::OneHot { depth: 6 })
        .map(|n| &plan.values[n.output].shape)
        .collect();
    assert_eq!(codes, [&vec![7, 6]]);
    // A 1-D table: one number per index; ids cast to int32 first.
    let column: Vec<f32> = (0..6).map(|r| 1.5 * r as f32 - 2.0).collect();
    let want: Vec<f64> = ids
        .iter()
        .map(|&i| {
            if (0.0..6.0).contains(&i) {
                1.5 * i - 2.0
            } else {
                0.0
            }
        })
        .collect();
    check_model_on(
        "1-D table",
        &ids_model(
            &[1, 7],
            vec![
                with_int(node("Cast", &["x"], "i"), "to", 6),
                node("Gather", &["table", "i"], "y"),
            ],
            vec![init("table", &[6], &column)],
        ),
        &x,
        &want,
        TOLERANCE,
    );
}

#[test]
fn token_ids_moved_before_the_lookup_are_still_integers() {
    // The ids reshaped to [6] (as a model flattens its batch) and cast to
    // int32: moving integers keeps them integers.
    let ids = vec![3.0, 1.0, 0.0, 4.0, 4.0, 5.0];
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 6]), ids.clone()).unwrap();
    let want: Vec<f64> = ids.iter().flat_map(|&i| row(i)).collect();
    check_model_on(
        "table[reshape ids]",
        &ids_model(
            &[1, 6],
            vec![
                node("Reshape", &["x", "shape"], "flat"),
                with_int(node("Cast", &["flat"], "i"), "to", 6),
                node("Gather", &["table", "i"], "y"),
            ],
            vec![init("table", &[6, 3], &table()), ints("shape", &[6])],
        ),
        &x,
        &want,
        TOLERANCE,
    );
}

#[test]
fn a_lookup_at_argmax() {
    // The row of the largest of four scores.
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 4]), vec![0.5, -2.0, 3.25, 3.0]).unwrap();
    let want = row(2.0).to_vec();
    check_model_on(
        "table[argmax x]",
        &model_with(
            17,
            &[1, 4],
            vec![
                with_int(node("ArgMax", &["x"], "i"), "axis", 1),
                node("Gather", &["table", "i"], "y"),
            ],
            vec![init("table", &[6, 3], &table())],
        ),
        &x,
        &want,
        TOLERANCE,
    );
}

#[test]
fn refused_without_integer_indices_or_a_constant_table() {
    let refused = |model: Vec<u8>, what: &str| match import(&model, &Default::default()) {
        Err(ImportError::Unsupported { detail, .. }) if detail.contains(what) => {}
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: imported"),
    };
    // Float indices: not known to be integers.
    refused(
        model_with(
            17,
            &[1, 4],
            vec![node("Gather", &["table", "x"], "y")],
            vec![init("table", &[6, 3], &table())],
        ),
        "not known to be integers",
    );
    // A computed table.
    refused(
        ids_model(&[1, 4], vec![node("Gather", &["x", "x"], "y")], vec![]),
        "a computed tensor at computed indices",
    );
    // Along axis 1.
    refused(
        ids_model(
            &[1, 4],
            vec![with_int(node("Gather", &["table", "x"], "y"), "axis", 1)],
            vec![init("table", &[6, 3], &table())],
        ),
        "axis other than 0",
    );
}
