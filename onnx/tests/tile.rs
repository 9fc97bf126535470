//! Tile of a computed value (a local selection under MPC) and of a weight
//! (folded, still the owner's), against a hand-computed reference; sizes
//! over the plan's limits are refused before anything is built.

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_model, init, ints, model, node, x};
use hush_onnx::{ImportError, ImportOptions, import};

#[test]
fn tiles_values_and_weights() {
    let xs: Vec<f64> = x().iter().copied().collect();
    // x [1, 4] tiled [2, 2] is [2, 8]: the row twice, each row twice over.
    let row: Vec<f64> = xs.iter().chain(&xs).copied().collect();
    let want: Vec<f64> = row.iter().chain(&row).copied().collect();
    let ops = check_model(
        "Tile(x)",
        vec![node("Tile", &["x", "reps"], "y")],
        vec![ints("reps", &[2, 2])],
        &want,
        1e-4,
    );
    assert_eq!(ops, ["Select"]);
    // x · Tile(w): w [1, 2] tiled [1, 2] is [1, 4].
    let w = [0.25f32, -1.5];
    let want: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| x * w[i % 2] as f64)
        .collect();
    let ops = check_model(
        "x · Tile(w)",
        vec![
            node("Tile", &["w", "reps"], "wt"),
            node("Mul", &["x", "wt"], "y"),
        ],
        vec![init("w", &[1, 2], &w), ints("reps", &[1, 2])],
        &want,
        1e-4,
    );
    assert_eq!(ops, ["Mul(weight)"], "the tiled weight is a weight");
}

#[test]
fn repeats_over_the_limits_are_refused() {
    for reps in [vec![1, 1 << 40], vec![1 << 62, 4], vec![1], vec![-1, 1]] {
        let m = model(
            vec![node("Tile", &["x", "reps"], "y")],
            vec![ints("reps", &reps)],
        );
        assert!(
            matches!(
                import(&m, &ImportOptions::default()),
                Err(ImportError::Invalid { .. })
            ),
            "{reps:?}"
        );
    }
}
