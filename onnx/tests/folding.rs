//! Constant folding is bounded: a small model file cannot make the importer
//! allocate a constant over the plan's size limit, nor compute more constant
//! elements in all than `ImportOptions::max_folded_elements`. Each refusal
//! is an `Invalid` error naming the node, returned before the allocation.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_onnx::{ImportError, ImportOptions, import};

fn refused_at(bytes: &[u8], opts: &ImportOptions, node: &str, words: &str) {
    match import(bytes, opts) {
        Err(ImportError::Invalid { node: at, reason }) => {
            assert_eq!(at, node, "{reason}");
            assert!(reason.contains(words), "{reason}");
        }
        other => panic!("expected a refusal at {node}: {other:?}"),
    }
}

#[test]
fn a_broadcast_of_constants_over_the_size_limit_is_refused_before_it_is_made() {
    // [2^17, 1] + [1, 2^17] would be 2^34 elements (128 GiB of f64).
    let bytes = model(
        vec![
            node("ConstantOfShape", &["tall_shape"], "tall"),
            node("ConstantOfShape", &["wide_shape"], "wide"),
            node("Add", &["tall", "wide"], "big"),
            node("Mul", &["x", "big"], "y"),
        ],
        vec![
            ints("tall_shape", &[1 << 17, 1]),
            ints("wide_shape", &[1, 1 << 17]),
        ],
    );
    refused_at(
        &bytes,
        &ImportOptions::default(),
        "Add_big",
        "over the size limit",
    );
    // Gathering row 0 of a constant 2^20 times each of 2^9 columns wide: the
    // same check before `select` builds it.
    let bytes = model(
        vec![
            node("ConstantOfShape", &["shape"], "c"),
            node("Gather", &["c", "rows"], "g"),
            node("Mul", &["x", "g"], "y"),
        ],
        vec![ints("shape", &[1, 1 << 9]), ints("rows", &vec![0; 1 << 20])],
    );
    refused_at(
        &bytes,
        &ImportOptions::default(),
        "Gather_g",
        "over the size limit",
    );
}

#[test]
fn constants_computed_in_all_are_bounded_by_the_option() {
    // Two 600-element constants, joined (1200), reshaped (1200), and one
    // element gathered from the shape: 3601 elements folded in all.
    let bytes = model(
        vec![
            node("ConstantOfShape", &["shape"], "a"),
            node("ConstantOfShape", &["shape"], "b"),
            with_int(node("Concat", &["a", "b"], "ab"), "axis", 0),
            node("Reshape", &["ab", "square"], "sq"),
            node("Shape", &["sq"], "s"),
            node("Gather", &["s", "zero"], "rows"),
            node("Cast", &["rows"], "rows_f"),
            node("Mul", &["x", "rows_f"], "y"),
        ],
        vec![
            ints("shape", &[600]),
            ints("square", &[30, 40]),
            ints("zero", &[0]),
        ],
    );
    let within = ImportOptions {
        max_folded_elements: 3601,
        ..ImportOptions::default()
    };
    let m = import(&bytes, &within).unwrap();
    let want: Vec<f64> = x().iter().map(|v| v * 30.0).collect();
    assert_eq!(outputs(&m), want);

    let tight = ImportOptions {
        max_folded_elements: 3599,
        ..ImportOptions::default()
    };
    refused_at(&bytes, &tight, "Reshape_sq", "max_folded_elements");
    let tighter = ImportOptions {
        max_folded_elements: 1000,
        ..ImportOptions::default()
    };
    refused_at(&bytes, &tighter, "ConstantOfShape_b", "max_folded_elements");
}

#[test]
fn an_empty_constant_with_huge_axes_is_refused() {
    // Zero elements, but ndarray cannot make an array whose other axes
    // multiply past isize::MAX: the limit counts zero axes as one.
    let bytes = model(
        vec![
            node("ConstantOfShape", &["shape"], "c"),
            node("Mul", &["x", "c"], "y"),
        ],
        vec![ints("shape", &[0, 1 << 31, 1 << 31, 1 << 31])],
    );
    refused_at(
        &bytes,
        &ImportOptions::default(),
        "ConstantOfShape_c",
        "over the size limit",
    );
}
