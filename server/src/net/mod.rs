//! The networked roles of Hush over WebSockets: the model server
//! ([`serve`], party P1), the dealer service ([`dealer`]) and the native
//! client ([`infer`], party P0). The session protocol itself (frames,
//! control messages, the client's steps) is in `hush_core::session`; this
//! module plugs it into tokio, axum and tokio-tungstenite.
//!
//! Each MPC session runs on a blocking thread of its own (the protocols are
//! CPU-bound and their futures are not `Send`); the sockets are driven by
//! async tasks ([`ws`]).

pub mod connect;
pub mod dealer;
pub mod feed;
pub mod generator;
pub mod infer;
pub mod listen;
pub mod serve;
pub mod web;
pub mod ws;

use std::time::Duration;

/// Default idle timeout: how long a party waits for its peer's next frame.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(120);

/// `name/version` of this build, for logs.
pub fn software(name: &str) -> String {
    format!("{name}/{}", env!("CARGO_PKG_VERSION"))
}

/// Installs the `tracing` subscriber: human-readable lines on stderr, the
/// level from `RUST_LOG` (default `default`, e.g. `info`). Log lines carry
/// session numbers, sizes, times and errors; never shares, seeds, keys,
/// tokens, inputs or outputs.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A multi-threaded tokio runtime for one command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hush-io")
        .build()
}

/// Constant-time equality of two byte strings of the same length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ends a session after `e` (see [`ws::WsHandle::report`]).
pub(crate) fn reply_error(
    ch: &mut hush_core::session::FramedChannel<ws::WsTransport>,
    e: &hush_core::Error,
) {
    ch.transport_mut().handle().report(e);
}
