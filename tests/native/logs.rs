//! No secret reaches a log: a full session with every process at the
//! `trace` level, then a scan of all logs for the client's seed and key, its
//! input and its output, in the renderings a log line could use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use hush_core::error::Result as CoreResult;
use hush_core::prg::Seed;
use hush_core::session::SessionId;
use hush_core::session::client::{ClientOptions, ClientSession, SeedSource};
use hush_server::net::connect::Connect;
use hush_server::net::infer::{DealerSeeds, session_url};
use ndarray::ArrayD;
use std::time::Duration;

/// Fetches the seed like the real client and remembers it and the key.
struct Recording {
    inner: DealerSeeds,
    seen: Vec<[u8; 32]>,
}

impl SeedSource for Recording {
    async fn claim(&mut self, url: &str, session: &SessionId, key: &Seed) -> CoreResult<Seed> {
        let seed = self.inner.claim(url, session, key).await?;
        self.seen.push(*key.expose_bytes());
        self.seen.push(*seed.expose_bytes());
        Ok(seed)
    }
}

/// The ways a log line could show `bytes`.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let dec: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
    vec![
        hex[..16].to_string(),
        hex[..16].to_uppercase(),
        format!("[{}", dec[..6].join(", ")),
        dec[..6].join(","),
    ]
}

/// The ways a log line could show a real value: decimal at several
/// precisions, its fixed-point encoding, its f32/f64 bytes.
fn value_renderings(v: f64) -> Vec<String> {
    let fixed = (v * 65536.0).round() as i64;
    let mut out = vec![
        format!("{v:.6}"),
        format!("{}", v as f32),
        format!("{fixed}"),
        format!("{:016x}", fixed as u64),
    ];
    let f32_hex: String = (v as f32)
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    out.push(f32_hex);
    out
}

/// Whether `needle` occurs in `log`: anywhere when it is long (a seed's
/// hex inside a longer hex string still counts), and as a whole number or
/// word when it is short — a value's short renderings (4096, 0.5) otherwise
/// match unrelated numbers by chance (port 34096, 10.53 ms).
fn contains_token(log: &str, needle: &str) -> bool {
    if needle.len() >= 8 {
        return log.contains(needle);
    }
    let part = |c: char| c.is_ascii_alphanumeric() || c == '.';
    log.match_indices(needle).any(|(i, _)| {
        let before = log[..i].chars().next_back().is_none_or(|c| !part(c));
        let after = log[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        before && after
    })
}

#[test]
fn a_token_is_found_whole_only() {
    assert!(contains_token("x=4096 y", "4096"));
    assert!(contains_token("[12, 34", "[12, 34"));
    assert!(!contains_token("port 34096", "4096"));
    assert!(!contains_token("took 10.53 ms", "0.5"));
    assert!(!contains_token("40960 bytes", "4096"));
    // Long renderings count anywhere.
    assert!(contains_token(
        "seed=00ab0123456789abcdef",
        "0123456789abcdef"
    ));
}

#[test]
fn logs_of_a_full_session_hold_no_secrets() {
    let dir = tempdir("logs");
    let env = [("RUST_LOG", "trace")];
    let d = dealer(&dir, &[], &env);
    let s = server(&dir, &d.url, &[], &env);
    // An input with distinctive values (no short decimals that logs hold anyway).
    let x: ArrayD<f64> = digit(5).mapv(|v| v * 0.9137 + 0.01234567);
    let rt = hush_server::net::runtime().unwrap();
    let connect = Connect::new(None, Some(Duration::from_secs(30))).unwrap();
    let mut seeds = Recording {
        inner: DealerSeeds {
            connect: connect.clone(),
        },
        seen: Vec::new(),
    };
    let y = rt
        .block_on(async {
            let t = connect.open(&session_url(&s.url)).await?;
            let mut session = ClientSession::connect(
                t,
                hush_core::backend::CpuBackend,
                &ClientOptions {
                    token: None,
                    ..ClientOptions::default()
                },
                &mut seeds,
            )
            .await?;
            let y = session.run(std::slice::from_ref(&x), &mut |_| {}).await?;
            session.close().await?;
            Ok::<_, hush_core::Error>(y)
        })
        .unwrap();
    let y: Vec<f64> = y[0].iter().copied().collect();
    assert!(max_diff(&y, &plain_digits(&x)) < 5e-3);
    assert_eq!(seeds.seen.len(), 2, "key and seed recorded");
    assert!(s.wait_for_log("session ended by the client", Duration::from_secs(5)));
    assert!(d.wait_for_log("session closed by the server", Duration::from_secs(5)));

    // The native client at trace level, on the same input, logs too.
    let input = dir.join("x.npy");
    write_npy(&input, &x);
    let out = hush()
        .args(["infer", "--server", &s.url, "--input"])
        .arg(&input)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success());
    let client_log = String::from_utf8_lossy(&out.stderr).to_string();

    let logs = [
        ("server", s.log_text()),
        ("dealer", d.log_text()),
        ("client", client_log),
    ];
    // The logs are real: trace output of every process, with the session.
    assert!(logs[0].1.contains("inference done") && logs[0].1.len() > 1000);
    assert!(logs[1].1.contains("session opened"));
    let mut needles: Vec<String> = Vec::new();
    for secret in &seeds.seen {
        needles.extend(renderings(secret));
    }
    for &v in x.iter().filter(|v| v.abs() > 0.05).take(16) {
        needles.extend(value_renderings(v));
    }
    for &v in y.iter().filter(|v| v.abs() > 0.05) {
        needles.push(format!("{v:.4}"));
        needles.push(format!("{}", (v * 65536.0).round() as i64));
    }
    for (who, log) in &logs {
        for n in &needles {
            assert!(!contains_token(log, n), "the {who} log contains {n:?}");
        }
    }
}
