//! Fuzz targets for the bytes Hush takes from outside.
//!
//! Every target takes arbitrary bytes and must return — with an error where
//! the bytes are wrong — without panicking, looping or allocating beyond the
//! limits the decoders set. What comes from a peer:
//!
//! - [`targets::frame`]: a WebSocket frame of a session (data or control,
//!   with the plan in a server's hello and the requests in a server's
//!   `DealerOpen`);
//! - [`targets::wire_request`]: a correlation request as the dealer receives
//!   it, decoded, validated and, when small, generated;
//! - [`targets::wire_correction`]: a dealer's correction as a party receives
//!   it;
//! - [`targets::plan`]: a plan as a client receives it from a server, parsed
//!   and, when small, rehearsed (the client derives its correlations by
//!   running the whole protocol on zeros) and evaluated in plaintext;
//! - [`targets::session`]: everything the client's party receives during a
//!   whole secure inference of the embedded digits model — the bytes are a
//!   sequence of frames from a malicious server; [`targets::server_session`]:
//!   the same from the server's side, against a malicious client.
//!
//! And from the model owner: [`targets::onnx`], the ONNX importer.
//!
//! The targets run under libFuzzer (`fuzz/libfuzzer`, nightly) and, on
//! stable Rust in every test run, over [`seeds`] and deterministic
//! mutations of them ([`mutate`], `tests/mutations.rs`). See
//! `fuzz/README.md`.

pub mod exec;
pub mod mutate;
pub mod seeds;
pub mod targets;
