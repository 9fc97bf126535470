//! `hush bench` between two processes (`--listen` / `--peer`) on loopback:
//! the reports combine both parties' traffic, and results still agree with
//! their references (float64 for the ops, onnxruntime for the models).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{hush, start, tempdir};
use std::path::Path;
use std::process::Output;

/// Runs party 0 against a party 1 started with the same `args`.
fn two_processes(dir: &Path, args: &[&str]) -> (Output, String) {
    let mut p1_args = vec!["bench", "--listen", "127.0.0.1:0"];
    p1_args.extend_from_slice(args);
    let mut p1 = start(&p1_args, &[], &dir.join("party1.log"));
    let out = hush()
        .args(["bench", "--peer", &p1.url, "--link", "loopback"])
        .args(args)
        .output()
        .unwrap();
    let ok = common::eventually(std::time::Duration::from_secs(30), || !p1.running());
    assert!(ok, "party 1 did not finish");
    (out, p1.log_text())
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "party 0 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ops_between_processes_report_both_parties_and_agree_with_float64() {
    let dir = tempdir("bench-ops");
    let (out, p1_log) = two_processes(
        &dir,
        &[
            "--suite", "ops", "--filter", "lt 1e6", "--reps", "1", "--json",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["name"], "lt 1e6");
    assert_eq!(r["link"], "loopback");
    // Both parties' traffic: what one sends the other receives.
    let sent = r["bytes_sent_per_party"].as_array().unwrap();
    let recv = r["bytes_received_per_party"].as_array().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], recv[1]);
    assert_eq!(sent[1], recv[0]);
    assert!(sent[0].as_u64().unwrap() > 1_000_000);
    assert_eq!(r["peak_memory_per_process"].as_array().unwrap().len(), 2);
    // Comparison bits, exactly.
    assert_eq!(r["max_abs_error"].as_f64(), Some(0.0), "{r}");
    assert!(r["rounds"].as_u64().unwrap() >= 1);
    assert!(!p1_log.contains("error"), "{p1_log}");
}

#[test]
fn models_between_processes_agree_with_onnxruntime() {
    let dir = tempdir("bench-models");
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/test");
    for ext in ["onnx", "input.npy", "ort.npy"] {
        std::fs::copy(
            repo.join(format!("lenet5.{ext}")),
            models.join(format!("lenet5.{ext}")),
        )
        .unwrap();
    }
    let m = models.to_str().unwrap();
    let (out, _) = two_processes(
        &dir,
        &[
            "--suite",
            "models",
            "--models-dir",
            m,
            "--filter",
            "LeNet",
            "--reps",
            "1",
            "--json",
        ],
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["error_against"], "onnxruntime");
    let e = r["max_abs_error"].as_f64().unwrap();
    assert!(
        e < 1e-3,
        "LeNet-5 between processes: error {e} against onnxruntime"
    );
    assert!(r["setup"]["bytes_sent_per_party"].as_array().unwrap().len() == 2);
}

#[test]
fn processes_that_disagree_on_the_workloads_stop_with_a_clear_error() {
    let dir = tempdir("bench-disagree");
    let mut p1 = start(
        &[
            "bench",
            "--listen",
            "127.0.0.1:0",
            "--filter",
            "relu",
            "--reps",
            "1",
        ],
        &[],
        &dir.join("party1.log"),
    );
    let out = hush()
        .args([
            "bench", "--peer", &p1.url, "--filter", "lt 1e6", "--reps", "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disagree on the workloads"), "{err}");
    assert!(common::eventually(
        std::time::Duration::from_secs(10),
        || !p1.running()
    ));
}

#[test]
fn a_missing_models_dir_is_named() {
    let out = hush()
        .args([
            "bench",
            "--suite",
            "models",
            "--models-dir",
            "/nonexistent/hush",
            "--list",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/hush") && err.contains("models.py"),
        "{err}"
    );
}

#[test]
fn an_exact_filter_selects_one_workload() {
    let list = |extra: &[&str]| {
        let out = hush()
            .args(["bench", "--suite", "ops", "--filter", "mul 1e6", "--list"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // A substring also names the longer names that contain it.
    assert!(list(&[]).lines().count() > 1);
    assert_eq!(list(&["--exact"]).lines().collect::<Vec<_>>(), ["mul 1e6"]);
}
