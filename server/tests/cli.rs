//! The `hush` binary end to end: `inspect`, `run` under MPC and in plaintext.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn hush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hush"))
}

fn digit_npy(dir: &std::path::Path) -> std::path::PathBuf {
    // The first digit of the data set (a 0), scaled to [0, 1], as float32 .npy.
    let images = include_bytes!("../../models/digits/digits_images.u8");
    let mut header =
        String::from("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8), }");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for &v in &images[..64] {
        bytes.extend_from_slice(&(v as f32 / 16.0).to_le_bytes());
    }
    let path = dir.join("digit.npy");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hush-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn run_under_mpc_agrees_with_plaintext() {
    let dir = tempdir("run");
    let input = digit_npy(&dir);
    let (mpc_out, plain_out) = (dir.join("mpc.npy"), dir.join("plain.npy"));
    let mpc = hush()
        .args(["run", "--json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&mpc_out)
        .output()
        .unwrap();
    assert!(
        mpc.status.success(),
        "{}",
        String::from_utf8_lossy(&mpc.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&mpc.stdout).expect("JSON on stdout");
    assert!(
        report["commitment"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(report["online"]["rounds"].as_u64().unwrap() > 0);
    assert!(
        report["online"]["parties"][0]["bytes_sent"]
            .as_u64()
            .unwrap()
            > 0
    );
    let plain = hush()
        .args(["run", "--plaintext", "--json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&plain_out)
        .output()
        .unwrap();
    assert!(plain.status.success());
    let read = |p: &std::path::Path| -> Vec<f32> {
        let b = std::fs::read(p).unwrap();
        b[b.len() - 40..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let (a, b) = (read(&mpc_out), read(&plain_out));
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 0.01, "logits differ by {err}");
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (i, &x)| if x > m.1 { (i, x) } else { m })
            .0
    };
    assert_eq!(argmax(&a), 0, "the first digit is a 0");
}

#[test]
fn inspect_prints_the_plan_and_bad_inputs_fail_cleanly() {
    let out = hush().arg("inspect").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("commitment  sha256:"));
    assert!(text.contains("parameters  1898"));
    let dir = tempdir("bad");
    let bogus = dir.join("bogus.onnx");
    std::fs::write(&bogus, b"not a model").unwrap();
    let out = hush().arg("inspect").arg(&bogus).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ONNX model"));
    let out = hush()
        .args(["run", "--input"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".npy"));
}

/// The values of a little-endian float32 `.npy` file.
fn npy_floats(p: &std::path::Path) -> Vec<f32> {
    let b = std::fs::read(p).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The largest difference of two equally long lists.
fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn test_models_through_hush_run_match_onnxruntime() {
    // Tolerance: 1e-3 absolute against onnxruntime (measured: below 1e-4).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/test");
    let dir = tempdir("models");
    for name in [
        "mlp",
        "lenet5",
        "resnet_small",
        "mobilenet_block",
        "transformer",
    ] {
        let out_path = dir.join(format!("{name}.out.npy"));
        let out = hush()
            .arg("run")
            .arg("--model")
            .arg(root.join(format!("{name}.onnx")))
            .arg("--input")
            .arg(root.join(format!("{name}.input.npy")))
            .arg("--output")
            .arg(&out_path)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (got, want) = (
            npy_floats(&out_path),
            npy_floats(&root.join(format!("{name}.ort.npy"))),
        );
        let err = max_diff(&got, &want);
        assert!(
            err < 1e-3,
            "{name}: hush run differs from onnxruntime by {err}"
        );
    }
}

/// `cmd` with `--json`, which must succeed: its report.
fn json_report(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_model_with_two_outputs_writes_one_file_each() {
    // The logits (of tens) and their softmax. Tolerances as in
    // onnx/tests/models.rs: 5e-3 on logits through weights of about 10,
    // 1e-3 on the probabilities.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/test");
    let dir = tempdir("two-outputs");
    let file = |s: &str| root.join(format!("two_heads.{s}"));
    let (logits, probs) = (dir.join("logits.npy"), dir.join("probs.npy"));
    let report = json_report(
        hush()
            .args(["run", "--model"])
            .arg(file("onnx"))
            .arg("--input")
            .arg(file("input.npy"))
            .arg("--output")
            .arg(&logits)
            .arg("--output")
            .arg(&probs),
    );
    assert_eq!(report["outputs"][0]["name"], "logits");
    assert_eq!(report["outputs"][1]["name"], "probs");
    for (path, want, tolerance) in [
        (&logits, file("ort.npy"), 5e-3),
        (&probs, file("ort1.npy"), 1e-3),
    ] {
        let err = max_diff(&npy_floats(path), &npy_floats(&want));
        assert!(
            err < tolerance,
            "{}: differs from onnxruntime by {err}",
            path.display()
        );
    }
}

#[test]
fn a_model_with_two_inputs_takes_one_file_each_by_name_or_in_order() {
    // The BERT-style encoder takes input_ids and attention_mask, as Hugging
    // Face's models do. Tolerance 1e-3 against onnxruntime.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/test");
    let dir = tempdir("two-inputs");
    let file = |s: &str| root.join(format!("text_encoder.{s}"));
    let mask = format!("attention_mask={}", file("input1.npy").display());
    let out_path = dir.join("out.npy");
    let report = json_report(
        hush()
            .args(["run", "--model"])
            .arg(file("onnx"))
            .args(["--input", &mask, "--input"])
            .arg(file("input.npy"))
            .arg("--output")
            .arg(&out_path),
    );
    assert_eq!(report["outputs"][0]["name"], "y");
    let (got, want) = (npy_floats(&out_path), npy_floats(&file("ort.npy")));
    let err = max_diff(&got, &want);
    assert!(err < 1e-3, "differs from onnxruntime by {err}");
    // A missing input is named; an unknown name lists the model's inputs.
    let out = hush()
        .args(["run", "--model"])
        .arg(file("onnx"))
        .arg("--input")
        .arg(file("input.npy"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("attention_mask"), "{err}");
    let out = hush()
        .args(["run", "--model"])
        .arg(file("onnx"))
        .arg("--input")
        .arg(format!("ids={}", file("input.npy").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("input_ids, attention_mask"), "{err}");
}
