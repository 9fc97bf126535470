//! Harness of the end-to-end suites: the real `hush` binary started on
//! loopback ports, inputs as `.npy`, plaintext references, raw HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hush_core::plan::plain;
use ndarray::{ArrayD, IxDyn};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `hush` binary cargo built for this test run.
pub fn hush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hush"))
}

/// A fresh directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hush-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `hush serve` or `hush dealer`, killed when dropped.
pub struct Proc {
    child: Child,
    /// `ws://127.0.0.1:PORT` (or `wss://`).
    pub url: String,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
}

impl Proc {
    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.split("://").nth(1).unwrap().to_string()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `hush <args>` and waits for its `listening on` line.
pub fn start(args: &[&str], env: &[(&str, &str)], log: &Path) -> Proc {
    let mut cmd = hush();
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.find("listening on ") {
                let _ = tx.send(line[i + 13..].trim().to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Proc {
            child,
            url,
            log: log.to_path_buf(),
        },
        Err(_) => {
            let _ = child.kill();
            panic!(
                "hush {args:?} did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A dealer on a free port.
pub fn dealer(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut args = vec!["dealer", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start(&args, env, &dir.join("dealer.log"))
}

/// A model server on a free port using `dealer`.
pub fn server(dir: &Path, dealer: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--dealer", dealer];
    args.extend_from_slice(extra);
    start(&args, env, &dir.join("serve.log"))
}

/// Runs `hush infer` to completion.
pub fn infer(args: &[&str]) -> Output {
    let mut cmd = hush();
    cmd.arg("infer").args(args);
    cmd.output().unwrap()
}

/// The bytes of scikit-learn's digit `index`, scaled to [0, 1], shape [1, 1, 8, 8].
pub fn digit(index: usize) -> ArrayD<f64> {
    let images = include_bytes!("../../../models/digits/digits_images.u8");
    let px = &images[index * 64..(index + 1) * 64];
    ArrayD::from_shape_vec(
        IxDyn(&[1, 1, 8, 8]),
        px.iter().map(|&v| v as f64 / 16.0).collect(),
    )
    .unwrap()
}

/// `x` as a float32 `.npy` file.
pub fn write_npy(path: &Path, x: &ArrayD<f64>) {
    std::fs::write(path, hush_server::npy::write_f32(x)).unwrap();
}

/// The values of a `.npy` file, flattened.
pub fn read_npy(path: &Path) -> Vec<f64> {
    hush_server::npy::read(&std::fs::read(path).unwrap())
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// The digits model's plaintext output (the reference of every test).
pub fn plain_digits(x: &ArrayD<f64>) -> Vec<f64> {
    let m = hush_server::model::load(&None, &[]).unwrap();
    let y = plain::evaluate(&m.plan, &m.weights, std::slice::from_ref(x)).unwrap();
    y[0].iter().copied().collect()
}

/// Index of the largest value.
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::MIN), |m, (i, &x)| if x > m.1 { (i, x) } else { m })
        .0
}

/// Largest absolute difference.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `GET path` on `addr` (plain HTTP); returns the status line and the body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// `/health` as JSON.
pub fn health(proc: &Proc) -> serde_json::Value {
    let (_, body) = http_get(&proc.addr(), "/health");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// Parses `hush infer --json` output.
pub fn json_output(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hush failed: {}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// The `output` array of a JSON report.
pub fn output_values(report: &serde_json::Value) -> Vec<f64> {
    report["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Polls `f` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}
