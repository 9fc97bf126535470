//! Loading models: an ONNX file or the embedded default.

use hush_onnx::{ImportOptions, Imported, import};
use std::collections::HashMap;
use std::path::PathBuf;

/// Errors of the command-line layer.
pub type BoxError = Box<dyn std::error::Error>;

/// The embedded default model: a CNN for scikit-learn's 8×8 digits.
pub const DIGITS_ONNX: &[u8] = include_bytes!("../../models/digits/digits.onnx");

/// Models built in code, for benchmarks: `builtin:resnet18-32` and
/// `builtin:resnet18-224` (ResNet-18 with seeded random weights, BatchNorm
/// folded; its ONNX file is too large to keep in the repository).
pub const BUILTIN: &[&str] = &[
    "builtin:resnet18-32",
    "builtin:resnet18-224",
    "builtin:resnet50-224",
];

/// Imports `model` (the embedded digits CNN when `None`; a built-in model
/// for a `builtin:` name), with its inputs' shapes set to `input_shapes`, in
/// the model's input order (none: the model's own; a symbolic dimension is
/// then 1).
pub fn load(model: &Option<PathBuf>, input_shapes: &[Vec<usize>]) -> Result<Imported, BoxError> {
    let builtin = model
        .as_ref()
        .and_then(|p| p.to_str())
        .filter(|p| p.starts_with("builtin:"));
    if let Some(name) = builtin {
        let (plan, weights, _) = match name {
            "builtin:resnet18-32" => crate::resnet::resnet18(32),
            "builtin:resnet18-224" => crate::resnet::resnet18(224),
            "builtin:resnet50-224" => crate::resnet::resnet50(224),
            _ => {
                return Err(format!(
                    "unknown built-in model {name}; known: {}",
                    BUILTIN.join(", ")
                )
                .into());
            }
        };
        let fixed: Vec<Vec<usize>> = plan
            .inputs
            .iter()
            .map(|&i| plan.values[i].shape.clone())
            .collect();
        if !input_shapes.is_empty() && input_shapes != fixed {
            return Err(format!("{name} takes the input shapes {fixed:?}").into());
        }
        return Ok(Imported { plan, weights });
    }
    let bytes = match model {
        Some(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => DIGITS_ONNX.to_vec(),
    };
    let mut opts = ImportOptions::default();
    if model.is_none() {
        opts.name = Some("digits".into());
    }
    let m = import(&bytes, &opts)?;
    let inputs: Vec<(String, &Vec<usize>)> = m
        .plan
        .inputs
        .iter()
        .map(|&i| (m.plan.values[i].name.clone(), &m.plan.values[i].shape))
        .collect();
    if input_shapes.is_empty() || inputs.iter().map(|(_, s)| *s).eq(input_shapes) {
        return Ok(m);
    }
    if input_shapes.len() != inputs.len() {
        return Err(format!(
            "{} input shapes for a model with {} inputs",
            input_shapes.len(),
            inputs.len()
        )
        .into());
    }
    opts.input_shapes = inputs
        .into_iter()
        .map(|(n, _)| n)
        .zip(input_shapes.iter().cloned())
        .collect::<HashMap<_, _>>();
    Ok(import(&bytes, &opts)?)
}

/// The names of a plan's inputs and of its outputs.
pub fn io_names(plan: &hush_core::plan::Plan) -> (Vec<String>, Vec<String>) {
    let names = |ids: &[usize]| ids.iter().map(|&i| plan.values[i].name.clone()).collect();
    (names(&plan.inputs), names(&plan.outputs))
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Peak resident memory of this process, from `/proc` (Linux), in bytes.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The class of a `[1, k]` output (k > 1): the index of its largest value.
pub fn argmax_class(y: &ndarray::ArrayD<f64>) -> Option<usize> {
    match y.shape() {
        &[1, k] if k > 1 => Some(
            y.iter()
                .enumerate()
                .fold((0, f64::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m })
                .0,
        ),
        _ => None,
    }
}

/// Prints an output the way `hush run` and `hush infer` do: shape, where it
/// was written, the values when there are few, the class when it is one.
pub fn print_output(y: &ndarray::ArrayD<f64>, written_to: Option<&std::path::Path>) {
    println!(
        "output     {:?}{}",
        y.shape(),
        written_to
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default()
    );
    if y.len() <= 20 {
        println!(
            "values     {:?}",
            y.iter()
                .map(|v| (v * 1e4).round() / 1e4)
                .collect::<Vec<_>>()
        );
    }
    if let Some(c) = argmax_class(y) {
        println!("prediction class {c} (largest of {} outputs)", y.len());
    }
}
