//! Sessions between the client (P0), the model server (P1) and the dealer:
//! the messages they exchange, the binary frames that carry them, a
//! [`Channel`](crate::channel::Channel) over any frame transport, and the
//! client's side of a session.
//!
//! Everything here is runtime-free like the rest of the core: the native
//! binary plugs in tokio WebSockets, the browser its own WebSocket, through
//! [`FrameTransport`]. The handshake is documented with a sequence diagram in
//! `docs/PROTOCOL.md`; in short:
//!
//! 1. client → server [`Control::ClientHello`] with `SHA-256(key)` of a fresh
//!    client key (and a token if the server asks for one);
//! 2. server → dealer [`Control::DealerOpen`] with that hash and the session's
//!    correlation requests (derived from the public plan); the dealer answers
//!    [`Control::DealerOpened`] with a session id and the server's seed, then
//!    streams the server's corrections, one inference ahead;
//! 3. server → client [`Control::ServerHello`]: the plan, its commitment, and
//!    where to fetch the client's seed;
//! 4. client → dealer [`Control::SeedClaim`] with the session id and the key
//!    itself: the dealer hands the 32-byte seed to whoever proves knowledge of
//!    the key, once. The server only ever saw the key's hash.
//! 5. client and server run the MPC: the weight setup once, then one
//!    inference per [`Control::Infer`].

mod channel;
pub mod client;
pub mod frame;

pub use channel::{FrameTransport, FramedChannel};
pub use frame::{Frame, Limits, PROTOCOL_VERSION};

use crate::error::{ErrorCode, Result};
use crate::plan::Plan;
use crate::prg::Seed;
use crate::protocol::Config;
use crate::ring::FixedPoint;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A session id chosen by the dealer. Public: it names a session, it grants
/// nothing (seeds are released only against a party's own secret).
pub type SessionId = [u8; 16];

/// Control messages. They travel in control frames, separate from the MPC
/// payload frames. `Debug` prints only the message's name: tokens, keys and
/// seeds never reach a log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// Client → server, the first frame of a session.
    ClientHello {
        /// Client software, for logs (`hush-infer/0.1.0`).
        software: String,
        /// `SHA-256` of the client's fresh key ([`key_hash`]).
        key_hash: [u8; 32],
        /// Access token, where the server asks for one.
        token: Option<String>,
    },
    /// Server → client: the model and where the client's seed comes from.
    ServerHello {
        /// Server software, for logs.
        software: String,
        /// The serialized public plan ([`Plan::to_bytes`]).
        plan: Vec<u8>,
        /// Where the client's preprocessing seed comes from.
        dealer: DealerTicket,
    },
    /// Client → server: evaluate the model once; the MPC messages follow.
    Infer,
    /// Client → server: the session is over.
    Bye,
    /// Either way: the sender ends the session for this reason.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Words for people; never secret values.
        message: String,
    },
    /// Server → dealer: open a session.
    DealerOpen {
        /// Server software, for logs.
        software: String,
        /// The client key's hash, from [`Control::ClientHello`].
        key_hash: [u8; 32],
        /// Correlations of the once-per-session weight setup, encoded by
        /// [`crate::preprocessing::wire::encode_request`].
        setup: Vec<Vec<u8>>,
        /// Correlations of one inference, in the same encoding.
        inference: Vec<Vec<u8>>,
    },
    /// Dealer → server: the session exists; the corrections follow as data
    /// frames, the setup's first.
    DealerOpened {
        /// The session's public name.
        session: SessionId,
        /// The server's seed.
        server_seed: Seed,
    },
    /// Server → dealer: prepare `inferences` more inferences.
    DealerCredit {
        /// How many.
        inferences: u32,
    },
    /// Client → dealer: release my seed.
    SeedClaim {
        /// From the [`DealerTicket::Dealer`].
        session: SessionId,
        /// The key whose hash the server passed on.
        key: Seed,
    },
    /// Dealer → client: the client's seed.
    SeedGrant {
        /// The seed.
        seed: Seed,
    },
}

impl Control {
    /// The message's name.
    pub fn name(&self) -> &'static str {
        match self {
            Control::ClientHello { .. } => "ClientHello",
            Control::ServerHello { .. } => "ServerHello",
            Control::Infer => "Infer",
            Control::Bye => "Bye",
            Control::Error { .. } => "Error",
            Control::DealerOpen { .. } => "DealerOpen",
            Control::DealerOpened { .. } => "DealerOpened",
            Control::DealerCredit { .. } => "DealerCredit",
            Control::SeedClaim { .. } => "SeedClaim",
            Control::SeedGrant { .. } => "SeedGrant",
        }
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the client's seed comes from.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum DealerTicket {
    /// Fetch it from the dealer at `url` with the session id and the key.
    Dealer {
        /// The dealer's WebSocket address for seed claims.
        url: String,
        /// The session.
        session: SessionId,
    },
    /// INSECURE development mode: the server runs the dealer itself and hands
    /// the client its seed, so the server can recompute every mask of the
    /// client and learn its input. Never for real data.
    InsecureLocal {
        /// The client's seed, made by the server.
        seed: Seed,
    },
}

impl fmt::Debug for DealerTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DealerTicket::Dealer { url, .. } => write!(f, "Dealer({url})"),
            DealerTicket::InsecureLocal { .. } => f.write_str("InsecureLocal"),
        }
    }
}

/// The client key's hash that the server relays to the dealer: the server
/// can name the client's seed but never claim it.
pub fn key_hash(key: &Seed) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hush client key v1");
    h.update(key.expose_bytes());
    h.finalize().into()
}

/// The public protocol settings both parties derive from a plan.
pub fn config_for(plan: &Plan) -> Result<Config> {
    Ok(Config {
        fixed_point: FixedPoint::new(plan.frac_bits)?,
        ..Config::default()
    })
}

/// A tensor's name and shape, as a client sees the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name in the source model.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
}

/// What a client learns of the model: public by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model name.
    pub name: String,
    /// The client's inputs.
    pub inputs: Vec<TensorInfo>,
    /// The outputs.
    pub outputs: Vec<TensorInfo>,
    /// SHA-256 of the weights.
    pub commitment: [u8; 32],
    /// Number of weights (scalars).
    pub parameters: usize,
    /// Operators in the plan.
    pub nodes: usize,
}

impl ModelInfo {
    /// The summary of `plan`.
    pub fn of(plan: &Plan) -> ModelInfo {
        let info = |ids: &[usize]| {
            ids.iter()
                .map(|&i| TensorInfo {
                    name: plan.values[i].name.clone(),
                    shape: plan.values[i].shape.clone(),
                })
                .collect()
        };
        ModelInfo {
            name: plan.name.clone(),
            inputs: info(&plan.inputs),
            outputs: info(&plan.outputs),
            commitment: plan.commitment,
            parameters: plan.parameter_count(),
            nodes: plan.nodes.len(),
        }
    }

    /// The commitment as `sha256:<hex>`.
    pub fn commitment_string(&self) -> String {
        commitment_string(&self.commitment)
    }
}

/// `sha256:<hex>` of a commitment.
pub fn commitment_string(c: &[u8; 32]) -> String {
    use core::fmt::Write;
    let mut s = String::from("sha256:");
    for b in c {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses `sha256:<hex>` or bare hex into a commitment.
pub fn parse_commitment(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s).trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A server address as users write it (`ws://host:port`) → the session
/// endpoint (`ws://host:port/v1/session`); an address with a path is kept.
pub fn session_url(server: &str) -> String {
    let s = server.trim_end_matches('/');
    let after_scheme = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    if after_scheme.contains('/') {
        String::from(s)
    } else {
        alloc::format!("{s}/v1/session")
    }
}

/// The dealer's seed endpoint under its base address.
pub fn seed_url(dealer: &str) -> String {
    alloc::format!("{}/v1/seed", dealer.trim_end_matches('/'))
}
