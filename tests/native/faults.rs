//! Each party survives the others' failures: disconnects, deaths, silence
//! and malformed bytes end one session with a clear error, never the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use hush_core::error::{ErrorCode, Result as CoreResult};
use hush_core::session::client::{ClientOptions, ClientSession};
use hush_core::session::frame::{Frame, Limits, decode, encode_control, encode_data};
use hush_core::session::{Control, FrameTransport, PROTOCOL_VERSION};
use hush_server::net::connect::Connect;
use hush_server::net::infer::{DealerSeeds, session_url};
use hush_server::net::ws::WsTransport;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A transport that drops the connection after `left` frames sent.
struct CutAfter {
    inner: Option<WsTransport>,
    left: usize,
}

impl FrameTransport for CutAfter {
    async fn send_frame(&mut self, frame: Vec<u8>) -> CoreResult<()> {
        if self.left == 0 {
            if let Some(t) = self.inner.take() {
                t.close("test: client vanishes");
            }
            return Err(hush_core::error::ChannelError::Io("cut".into()).into());
        }
        self.left -= 1;
        match &mut self.inner {
            Some(t) => t.send_frame(frame).await,
            None => Err(hush_core::error::ChannelError::Io("cut".into()).into()),
        }
    }

    async fn recv_frame(&mut self) -> CoreResult<Vec<u8>> {
        match &mut self.inner {
            Some(t) => t.recv_frame().await,
            None => Err(hush_core::error::ChannelError::Io("cut".into()).into()),
        }
    }
}

/// A port nothing listens on.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `hush infer` running inference after inference on one session until
/// something breaks it; its stderr is captured.
fn endless_client(s: &Proc) -> std::process::Child {
    hush()
        .args(["infer", "--server", &s.url, "--repeat", "1000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The server holds no session any more and serves a new client.
fn assert_freed_and_serving(s: &Proc) {
    assert!(eventually(Duration::from_secs(5), || health(s)["sessions"] == 0));
    let out = infer(&["--server", &s.url, "--json"]);
    json_output(&out);
}

#[test]
fn client_disconnect_mid_inference_frees_the_session() {
    let dir = tempdir("disconnect");
    let d = dealer(&dir, &[], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    let rt = hush_server::net::runtime().unwrap();
    let connect = Connect::new(None, Some(Duration::from_secs(10))).unwrap();
    let result = rt.block_on(async {
        let inner = connect.open(&session_url(&s.url)).await?;
        // Hello, pairwise seed, weight setup, Infer, then a few MPC messages.
        let cut = CutAfter {
            inner: Some(inner),
            left: 12,
        };
        let mut seeds = DealerSeeds {
            connect: connect.clone(),
        };
        let mut session = ClientSession::connect(
            cut,
            hush_core::backend::CpuBackend,
            &ClientOptions::default(),
            &mut seeds,
        )
        .await?;
        session.run(&[digit(1)], &mut |_| {}).await
    });
    assert!(result.is_err());
    assert!(
        s.wait_for_log("client gone; session freed", Duration::from_secs(10)),
        "{}",
        s.log_text()
    );
    assert_freed_and_serving(&s);
}

#[test]
fn server_unreachable_or_dying_gives_a_clear_error() {
    // Nothing listens on the port.
    let port = free_port();
    let out = infer(&["--server", &format!("ws://127.0.0.1:{port}")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");

    // The server dies while the client is mid-session.
    let dir = tempdir("server-dies");
    let d = dealer(&dir, &[], &[]);
    let mut s = server(&dir, &d.url, &[], &[]);
    let client = endless_client(&s);
    assert!(s.wait_for_log("inference done", Duration::from_secs(20)));
    s.kill();
    let t = Instant::now();
    let out = client.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[CLOSED]") && err.contains("is the server running"),
        "{err}"
    );
}

#[test]
fn dealer_unreachable_fails_the_session_clearly() {
    let dir = tempdir("no-dealer");
    let port = free_port();
    let s = server(&dir, &format!("ws://127.0.0.1:{port}"), &[], &[]);
    let out = infer(&["--server", &s.url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[DEALER]") && err.contains("cannot reach its dealer"),
        "{err}"
    );
    assert!(s.wait_for_log("dealer unavailable", Duration::from_secs(5)));
    assert_eq!(health(&s)["status"], "ok");
}

#[test]
fn dealer_dying_mid_session_fails_both_parties_clearly() {
    let dir = tempdir("dealer-dies");
    let mut d = dealer(&dir, &[], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    let client = endless_client(&s);
    assert!(s.wait_for_log("inference done", Duration::from_secs(20)));
    d.kill();
    let out = client.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[DEALER]"), "{err}");
    assert!(s.wait_for_log("session failed", Duration::from_secs(5)));
    assert!(s.log_text().contains("dealer"));
    assert_eq!(health(&s)["status"], "ok");
}

#[test]
fn the_dealers_memory_budget_refuses_sessions_that_do_not_fit() {
    // Learn the digits session's estimate from a dealer with room to spare.
    let dir = tempdir("dealer-memory");
    let d = dealer(&dir, &[], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    json_output(&infer(&["--server", &s.url, "--json"]));
    let log = d.log_text();
    let estimate: u64 = log
        .split("memory_estimate=")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the dealer logs its estimate: {log}"));
    assert!(estimate > 0);
    let mib = |factor: f64| format!("{}", estimate as f64 * factor / (1u64 << 20) as f64);
    drop((s, d));

    // A budget below one session: refused as a bad request, named.
    let dir = tempdir("dealer-memory-small");
    let d = dealer(&dir, &["--max-memory-mib", &mib(0.5)], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    let out = infer(&["--server", &s.url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dealer refused the session") && err.contains("--max-memory-mib"),
        "{err}"
    );
    assert!(d.wait_for_log("refused: over --max-memory-mib", Duration::from_secs(5)));
    assert_eq!(health(&s)["status"], "ok");
    drop((s, d));

    // Room for one session: a second waits for the first to end (refused
    // as busy while it runs), and is served after.
    let dir = tempdir("dealer-memory-one");
    let d = dealer(&dir, &["--max-memory-mib", &mib(1.5)], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    let mut first = endless_client(&s);
    assert!(s.wait_for_log("inference done", Duration::from_secs(20)));
    let out = infer(&["--server", &s.url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[BUSY]") && err.contains("try again later"),
        "{err}"
    );
    assert!(d.wait_for_log("refused: at the memory budget", Duration::from_secs(5)));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        infer(&["--server", &s.url, "--json"]).status.success()
    }));
}

/// Sends raw WebSocket messages and returns what the server answered: the
/// first control message, or the close reason.
fn poke(url: &str, messages: Vec<Message>) -> String {
    let rt = hush_server::net::runtime().unwrap();
    rt.block_on(async {
        let config = hush_server::net::ws::tungstenite_config(&Limits {
            max_frame_bytes: 64 << 20,
            ..Limits::default()
        });
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(session_url(url), Some(config), true)
                .await
                .unwrap();
        for m in messages {
            if ws.send(m).await.is_err() {
                break;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return "no answer".to_string(),
                m = ws.next() => match m {
                    Some(Ok(Message::Binary(b))) => {
                        return match decode(&b, &Limits::default()) {
                            Ok(Frame::Control(Control::Error { code, message })) => {
                                format!("{}: {message}", code.as_str())
                            }
                            // The server's hello, after ours: read on.
                            Ok(Frame::Control(Control::ServerHello { .. })) => continue,
                            other => format!("unexpected {other:?}"),
                        };
                    }
                    Some(Ok(Message::Close(c))) => {
                        return format!("closed: {}", c.map(|c| c.reason.to_string()).unwrap_or_default());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return format!("error: {e}"),
                    None => return "closed".to_string(),
                }
            }
        }
    })
}

#[test]
fn malformed_truncated_and_oversized_frames_end_only_their_session() {
    let dir = tempdir("malformed");
    let d = dealer(&dir, &[], &[]);
    let s = server(&dir, &d.url, &[], &[]);
    let bin = |b: Vec<u8>| Message::Binary(b.into());
    const V: u8 = PROTOCOL_VERSION;
    let version_reason = format!("protocol version {V} required");
    let cases: Vec<(&str, Vec<Message>, &str)> = vec![
        (
            "other version",
            vec![bin(vec![V.wrapping_add(1), 1, 0, 0])],
            &version_reason,
        ),
        ("empty frame", vec![bin(vec![])], "PROTOCOL"),
        ("truncated header", vec![bin(vec![V])], "PROTOCOL"),
        (
            "unknown kind",
            vec![bin(vec![V, 0x77, 1, 2, 3])],
            "PROTOCOL",
        ),
        (
            "control garbage",
            vec![bin(vec![V, 1, 0xff, 0xff, 0xff, 0xff, 0x0f])],
            "PROTOCOL",
        ),
        (
            "data before hello",
            vec![bin(encode_data(1, true, &[0; 32]))],
            "PROTOCOL",
        ),
        ("truncated data", vec![bin(vec![V, 2, 0, 0])], "PROTOCOL"),
        (
            "wrong control",
            vec![bin(encode_control(&Control::Infer).unwrap())],
            "PROTOCOL",
        ),
        ("text", vec![Message::Text("hello".into())], "PROTOCOL"),
        ("oversized", vec![bin(vec![V; 40 << 20])], ""),
    ];
    for (name, msgs, expect) in cases {
        let answer = poke(&s.url, msgs);
        assert!(
            answer.contains(expect) && answer != "no answer",
            "{name}: {answer}"
        );
    }
    // A hello, then garbage where the MPC data belongs.
    let hello = encode_control(&Control::ClientHello {
        software: "test".into(),
        key_hash: [0; 32],
        token: None,
    })
    .unwrap();
    let answer = poke(&s.url, vec![bin(hello), bin(vec![V, 1, 0xff])]);
    assert!(answer.contains("PROTOCOL"), "{answer}");
    assert_freed_and_serving(&s);
}

#[test]
fn idle_clients_are_timed_out() {
    let dir = tempdir("idle");
    let d = dealer(&dir, &[], &[]);
    let s = server(&dir, &d.url, &["--idle-timeout", "0.5"], &[]);
    let t = Instant::now();
    let answer = poke(&s.url, vec![]);
    assert!(answer.contains(ErrorCode::Timeout.as_str()), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_freed_and_serving(&s);
}
