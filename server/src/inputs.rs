//! The client's tensors on the command line: `--input` once per model input
//! (`PATH`, in the model's order as `hush inspect` lists them, or
//! `NAME=PATH`), `--output` once per model output to keep, in order.

use crate::model::{BoxError, print_output};
use crate::npy;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// One `--input`: a `.npy` file, for a named model input or the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct InputArg {
    /// The model input's name, when given as `NAME=PATH`.
    pub name: Option<String>,
    /// The `.npy` file.
    pub path: PathBuf,
}

/// Parses `PATH` or `NAME=PATH` (a name has no `/`; write `./a=b.npy` for a
/// file whose name holds `=`).
pub fn parse_input(s: &str) -> Result<InputArg, String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            if path.is_empty() {
                return Err(format!("{s}: no file after '{name}='"));
            }
            Ok(InputArg {
                name: Some(name.to_string()),
                path: PathBuf::from(path),
            })
        }
        _ => Ok(InputArg {
            name: None,
            path: PathBuf::from(s),
        }),
    }
}

/// The `--input` files read, in the order of the model's inputs `names`:
/// named ones where they are named, the others filling the remaining
/// inputs in order; an error names any input left without a file.
pub fn arrange(args: &[InputArg], names: &[String]) -> Result<Vec<ArrayD<f64>>, BoxError> {
    let mut slots: Vec<Option<&InputArg>> = vec![None; names.len()];
    for a in args.iter().filter(|a| a.name.is_some()) {
        let name = a.name.as_deref().unwrap_or_default();
        let i = names.iter().position(|n| n == name).ok_or_else(|| {
            format!(
                "--input {name}=…: the model has no input '{name}' (its inputs: {})",
                names.join(", ")
            )
        })?;
        if slots[i].is_some() {
            return Err(format!("--input: '{name}' is given twice").into());
        }
        slots[i] = Some(a);
    }
    let free: Vec<usize> = (0..names.len()).filter(|&i| slots[i].is_none()).collect();
    let unnamed: Vec<&InputArg> = args.iter().filter(|a| a.name.is_none()).collect();
    if unnamed.len() > free.len() {
        return Err(format!(
            "{} --input files for a model with {} input{} ({})",
            args.len(),
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
        .into());
    }
    for (i, a) in free.into_iter().zip(unnamed) {
        slots[i] = Some(a);
    }
    let missing: Vec<&str> = slots
        .iter()
        .zip(names)
        .filter(|(s, _)| s.is_none())
        .map(|(_, n)| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no --input for the model's input{} {} (give one .npy per input, in the order \
             `hush inspect` lists them, or as NAME=PATH)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )
        .into());
    }
    slots
        .into_iter()
        .flatten()
        .map(|a| read_npy(&a.path))
        .collect()
}

/// A `.npy` file as a tensor.
pub fn read_npy(path: &Path) -> Result<ArrayD<f64>, BoxError> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(npy::read(&bytes).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// `x` in `shape`: as it is, or reshaped when the number of values agrees.
pub fn fit(name: &str, x: ArrayD<f64>, shape: &[usize]) -> Result<ArrayD<f64>, BoxError> {
    if x.shape() == shape {
        return Ok(x);
    }
    let want: usize = shape.iter().product();
    if x.len() != want {
        return Err(format!(
            "input '{name}' has shape {:?} ({} values); the model takes {shape:?} ({want} values)",
            x.shape(),
            x.len()
        )
        .into());
    }
    let flat: Vec<f64> = x.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(shape), flat).map_err(|e| e.to_string().into())
}

/// [`save`]s the outputs, then prints each, with its name where the model
/// has several.
pub fn save_and_print(
    outputs: &[ArrayD<f64>],
    names: &[String],
    paths: &[PathBuf],
) -> Result<(), BoxError> {
    save(outputs, paths)?;
    for (i, y) in outputs.iter().enumerate() {
        if outputs.len() > 1 {
            println!("output #{i}  {}", names.get(i).map_or("", String::as_str));
        }
        print_output(y, paths.get(i).map(PathBuf::as_path));
    }
    Ok(())
}

/// Writes output `i` to the `i`-th `--output` path (as many as given).
pub fn save(outputs: &[ArrayD<f64>], paths: &[PathBuf]) -> Result<(), BoxError> {
    if paths.len() > outputs.len() {
        return Err(format!(
            "{} --output paths for a model with {} output{}",
            paths.len(),
            outputs.len(),
            if outputs.len() == 1 { "" } else { "s" }
        )
        .into());
    }
    for (y, path) in outputs.iter().zip(paths) {
        std::fs::write(path, npy::write_f32(y)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn npy_file(dir: &Path, name: &str, v: f32) -> PathBuf {
        let p = dir.join(name);
        let a = ArrayD::from_elem(IxDyn(&[2]), f64::from(v));
        std::fs::write(&p, npy::write_f32(&a)).unwrap();
        p
    }

    #[test]
    fn names_and_order() {
        assert_eq!(
            parse_input("ids=a.npy").unwrap(),
            InputArg {
                name: Some("ids".into()),
                path: "a.npy".into()
            }
        );
        assert_eq!(parse_input("./x=y.npy").unwrap().name, None);
        assert!(parse_input("ids=").is_err());
        let dir = std::env::temp_dir().join(format!("hush-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (npy_file(&dir, "a.npy", 1.0), npy_file(&dir, "b.npy", 2.0));
        let arg = |name: Option<&str>, p: &Path| InputArg {
            name: name.map(String::from),
            path: p.to_path_buf(),
        };
        let model = names(&["ids", "mask"]);
        // named first, the rest in order
        let got = arrange(&[arg(None, &a), arg(Some("ids"), &b)], &model).unwrap();
        assert_eq!((got[0][[0]], got[1][[0]]), (2.0, 1.0));
        // a missing input is named
        let e = arrange(&[arg(None, &a)], &model).unwrap_err().to_string();
        assert!(e.contains("mask") && !e.contains("ids"), "{e}");
        // unknown names, repeats and too many files are refused
        assert!(arrange(&[arg(Some("nope"), &a)], &model).is_err());
        assert!(arrange(&[arg(Some("ids"), &a), arg(Some("ids"), &b)], &model).is_err());
        assert!(arrange(&[arg(None, &a), arg(None, &a), arg(None, &b)], &model).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
