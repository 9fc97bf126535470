//! `hush dealer`: the dealer service.
//!
//! - `GET /v1/session` (WebSocket, from a model server): [`Control::DealerOpen`]
//!   with the client key's hash and the session's requests; the dealer draws
//!   both parties' seeds and a session id, answers [`Control::DealerOpened`]
//!   (the server's seed), then streams the server's corrections: the weight
//!   setup's, then one inference's per [`Control::DealerCredit`].
//! - `GET /v1/seed` (WebSocket, from a client): [`Control::SeedClaim`] with
//!   the session id and the client key; the seed is released once, to the
//!   holder of the key whose hash the server passed on, within
//!   [`CLAIM_TTL`] of the session's opening.
//! - `GET /health`.
//!
//! The dealer never sees inputs, weights or outputs: only the public shapes
//! of the session and random masks.

use super::generator::{Generator, ahead_bytes};
use super::listen::{self, TlsFiles};
use super::ws::{WsTransport, accept};
use super::{DEFAULT_IDLE, ct_eq, reply_error};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use hush_core::channel::Channel;
use hush_core::error::{Error, ErrorCode, PeerError};
use hush_core::preprocessing::CorrelationRequest;
use hush_core::preprocessing::seeded::draws;
use hush_core::preprocessing::wire::decode_request;
use hush_core::prg::Seed;
use hush_core::session::{Control, FrameTransport, FramedChannel, Limits, SessionId, key_hash};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How long a client has to claim its seed after the server opened the session.
pub const CLAIM_TTL: Duration = Duration::from_secs(60);
/// Most requests a session may list (setup and inference together).
pub const MAX_REQUESTS: usize = 1 << 20;
/// Default idle timeout of a server's session: five times a server's own
/// default for its clients, so that an idle client is closed by its server
/// first.
pub const DEALER_IDLE: Duration = Duration::from_secs(5 * DEFAULT_IDLE.as_secs());
/// Largest credit one message may grant.
pub const MAX_CREDIT: u32 = 16;

/// Options of `hush dealer`.
#[derive(Args, Debug, Clone)]
pub struct DealerArgs {
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub addr: String,
    /// TLS certificate chain (PEM); with --tls-key, the dealer speaks wss://.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a server may stay silent before its session is closed. A
    /// server is silent while its client is; keep this above the servers'
    /// own --idle-timeout.
    #[arg(long, default_value_t = DEALER_IDLE.as_secs_f64())]
    pub idle_timeout: f64,
    /// Most sessions at once.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Most correction elements (ring elements generated) per inference.
    #[arg(long, default_value_t = 1 << 32)]
    pub max_elements: u64,
    /// Memory all sessions may hold together, in MiB. Each session is
    /// charged, when it opens, an estimate of its peak: its largest
    /// request's tensors while they are generated and its queue ahead of
    /// the server. A session that does not fit beside the others is refused
    /// as busy; one that would not fit alone, as a bad request.
    #[arg(long, default_value_t = 8192.0)]
    pub max_memory_mib: f64,
}

/// Bytes a request of `elements` ring elements (drawn and derived) holds
/// while it is generated, estimated: the parties' draws and their sums,
/// the derived tensors and the encoded message, each 8 bytes per element.
const GENERATION_BYTES_PER_ELEMENT: u64 = 32;

/// A session's charge against `--max-memory-mib`, given back when it ends.
struct MemoryGuard<'a> {
    state: &'a DealerState,
    bytes: u64,
}

impl Drop for MemoryGuard<'_> {
    fn drop(&mut self) {
        let mut used = self.state.memory.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(self.bytes);
    }
}

struct Pending {
    key_hash: [u8; 32],
    seed: Seed,
    expires: Instant,
}

struct DealerState {
    pending: Mutex<HashMap<SessionId, Pending>>,
    active: AtomicUsize,
    /// Bytes charged by the open sessions ([`MemoryGuard`]).
    memory: Mutex<u64>,
    opened: AtomicU64,
    limits: Limits,
    args: DealerArgs,
}

impl DealerState {
    fn idle(&self) -> Duration {
        Duration::from_secs_f64(self.args.idle_timeout.max(0.001))
    }

    /// Charges `bytes` to the memory budget: `Ok(None)` when they do not
    /// fit beside the open sessions, an error when they exceed the budget.
    fn charge(&self, bytes: u64) -> Result<Option<MemoryGuard<'_>>, String> {
        // A float to integer cast saturates (and NaN gives 0).
        let budget = (self.args.max_memory_mib.max(0.0) * (1u64 << 20) as f64) as u64;
        if bytes > budget {
            return Err(format!(
                "the session needs about {:.1} MiB of dealer memory, over this dealer's --max-memory-mib ({})",
                bytes as f64 / (1u64 << 20) as f64,
                self.args.max_memory_mib
            ));
        }
        let mut used = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if used.saturating_add(bytes) > budget {
            return Ok(None);
        }
        *used += bytes;
        Ok(Some(MemoryGuard { state: self, bytes }))
    }
}

/// Runs `hush dealer` until the process ends.
pub fn run(args: DealerArgs) -> Result<(), Box<dyn std::error::Error>> {
    super::init_logging("info");
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let addr = args.addr.clone();
    let app = app(args);
    super::runtime()?.block_on(listen::serve("hush dealer", app, &addr, tls))?;
    Ok(())
}

impl Default for DealerArgs {
    fn default() -> Self {
        DealerArgs {
            addr: "127.0.0.1:0".into(),
            tls_cert: None,
            tls_key: None,
            idle_timeout: DEALER_IDLE.as_secs_f64(),
            max_sessions: 64,
            max_elements: 1 << 32,
            max_memory_mib: 8192.0,
        }
    }
}

/// The dealer's routes, to serve on any listener.
pub fn app(args: DealerArgs) -> Router {
    let state = Arc::new(DealerState {
        pending: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        memory: Mutex::new(0),
        opened: AtomicU64::new(0),
        limits: Limits::default(),
        args,
    });
    router(state)
}

fn router(state: Arc<DealerState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/session", get(session_upgrade))
        .route("/v1/seed", get(seed_upgrade))
        .with_state(state)
}

async fn health(State(state): State<Arc<DealerState>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "role": "dealer",
        "sessions": state.active.load(Ordering::Relaxed),
        "opened": state.opened.load(Ordering::Relaxed),
    }))
}

async fn session_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<Arc<DealerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    let (max, idle) = (state.limits.max_frame_bytes, Some(state.idle()));
    accept(ws, max, idle, move |transport| async move {
        let n = state.opened.fetch_add(1, Ordering::Relaxed) + 1;
        serve_session(state, transport, peer)
            .instrument(tracing::info_span!("dealer_session", n))
            .await;
    })
}

async fn seed_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<Arc<DealerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    let idle = Some(Duration::from_secs(10));
    accept(ws, 4096, idle, move |transport| {
        serve_claim(state, transport, peer)
    })
}

/// A session's checked requests and what generating them takes.
struct Decoded {
    requests: Vec<CorrelationRequest>,
    /// Ring elements one pass over them generates.
    elements: u64,
    /// Ring elements of the largest request.
    largest: u64,
}

/// Decodes and checks a session's requests.
fn decode_all(encoded: &[Vec<u8>]) -> Result<Decoded, Error> {
    let mut out = Decoded {
        requests: Vec::with_capacity(encoded.len().min(MAX_REQUESTS)),
        elements: 0,
        largest: 0,
    };
    for bytes in encoded {
        let req = decode_request(bytes)?;
        req.validate()?;
        let elements = draws(&req)?.elements().map_or(u64::MAX, |e| e as u64);
        out.elements = out.elements.saturating_add(elements);
        out.largest = out.largest.max(elements);
        out.requests.push(req);
    }
    Ok(out)
}

struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_session(state: Arc<DealerState>, transport: WsTransport, peer: SocketAddr) {
    let mut ch = match FramedChannel::new(transport, 1, state.limits) {
        Ok(c) => c,
        Err(_) => return,
    };
    if state.active.fetch_add(1, Ordering::Relaxed) >= state.args.max_sessions {
        state.active.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(%peer, "refused: at the session limit");
        ch.send_error(ErrorCode::Busy, "the dealer is at its session limit")
            .await;
        return;
    }
    let _active = ActiveGuard(&state.active);
    let (software, hash, setup, inference) = match ch.recv_control().await {
        Ok(Control::DealerOpen {
            software,
            key_hash,
            setup,
            inference,
        }) => (software, key_hash, setup, inference),
        Ok(other) => {
            tracing::warn!(%peer, got = other.name(), "refused: not a session opening");
            ch.send_error(ErrorCode::Protocol, "expected DealerOpen")
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refused: no valid opening");
            reply_error(&mut ch, &e);
            return;
        }
    };
    if setup.len() + inference.len() > MAX_REQUESTS {
        ch.send_error(ErrorCode::Protocol, "too many requests")
            .await;
        return;
    }
    let parsed = decode_all(&setup).and_then(|s| decode_all(&inference).map(|i| (s, i)));
    let (setup, inference) = match parsed {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refused: invalid requests");
            reply_error(&mut ch, &e);
            return;
        }
    };
    let (setup_elems, infer_elems) = (setup.elements, inference.elements);
    if setup_elems.max(infer_elems) > state.args.max_elements {
        tracing::warn!(%peer, setup_elems, infer_elems, "refused: over --max-elements");
        ch.send_error(
            ErrorCode::BadRequest,
            "the session needs more preprocessing than this dealer allows (--max-elements)",
        )
        .await;
        return;
    }
    let ahead = ahead_bytes(infer_elems);
    let memory = setup
        .largest
        .max(inference.largest)
        .saturating_mul(GENERATION_BYTES_PER_ELEMENT)
        .saturating_add(ahead as u64);
    let _memory = match state.charge(memory) {
        Ok(Some(guard)) => guard,
        Ok(None) => {
            tracing::warn!(%peer, memory, "refused: at the memory budget");
            ch.send_error(
                ErrorCode::Busy,
                "the dealer's memory budget is taken by other sessions",
            )
            .await;
            return;
        }
        Err(why) => {
            tracing::warn!(%peer, memory, "refused: over --max-memory-mib");
            ch.send_error(ErrorCode::BadRequest, &why).await;
            return;
        }
    };
    let (client_seed, server_seed, session) = match fresh() {
        Ok(x) => x,
        Err(e) => {
            ch.send_error(ErrorCode::Internal, "no randomness").await;
            tracing::error!(error = %e, "the OS random number generator failed");
            return;
        }
    };
    {
        let mut pending = state.pending.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        pending.retain(|_, p| p.expires > now);
        pending.insert(
            session,
            Pending {
                key_hash: hash,
                seed: client_seed.clone(),
                expires: now + CLAIM_TTL,
            },
        );
    }
    tracing::info!(
        %peer,
        %software,
        session = %short(&session),
        setup = setup.requests.len(),
        inference = inference.requests.len(),
        inference_elements = infer_elems,
        memory_estimate = memory,
        "session opened"
    );
    let served = stream(
        &mut ch,
        client_seed,
        server_seed,
        session,
        (setup.requests, inference.requests),
        ahead,
    )
    .await;
    state
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&session);
    match served {
        Ok(k) => tracing::info!(corrections = k, "session closed by the server"),
        Err(e) => tracing::warn!(error = %e, "session ended"),
    }
}

/// Streams corrections until the server goes away; returns how many were sent.
async fn stream(
    ch: &mut FramedChannel<WsTransport>,
    client_seed: Seed,
    server_seed: Seed,
    session: SessionId,
    (setup, inference): (Vec<CorrelationRequest>, Vec<CorrelationRequest>),
    ahead: usize,
) -> Result<u64, Error> {
    ch.send_control(&Control::DealerOpened {
        session,
        server_seed: server_seed.clone(),
    })
    .await?;
    let mut generator = Generator::spawn(vec![client_seed, server_seed], setup, inference, ahead)
        .map_err(|e| Error::Usage(format!("cannot start the generator: {e}")))?;
    let mut sent = 0u64;
    loop {
        tokio::select! {
            msg = generator.next() => {
                ch.send(0, msg?).await?;
                sent += 1;
            }
            ctl = ch.recv_control() => match ctl {
                Ok(Control::DealerCredit { inferences }) if inferences <= MAX_CREDIT => {
                    generator.credit(inferences)?;
                }
                Ok(Control::DealerCredit { .. }) => {
                    ch.send_error(ErrorCode::Protocol, "credit over the limit").await;
                    return Err(PeerError::Malformed("credit over the limit").into());
                }
                Ok(Control::Bye) => return Ok(sent),
                Ok(other) => {
                    ch.send_error(ErrorCode::Protocol, "unexpected message").await;
                    return Err(PeerError::Unexpected(other.name()).into());
                }
                Err(e) if e.code() == ErrorCode::Closed => return Ok(sent),
                Err(e) => {
                    reply_error(ch, &e);
                    return Err(e);
                }
            }
        }
    }
}

async fn serve_claim(state: Arc<DealerState>, transport: WsTransport, peer: SocketAddr) {
    let mut ch = match FramedChannel::new(transport, 1, state.limits) {
        Ok(c) => c,
        Err(_) => return,
    };
    let (session, key) = match ch.recv_control().await {
        Ok(Control::SeedClaim { session, key }) => (session, key),
        Ok(_) => {
            ch.send_error(ErrorCode::Protocol, "expected SeedClaim")
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "seed claim failed");
            reply_error(&mut ch, &e);
            return;
        }
    };
    let hash = key_hash(&key);
    drop(key);
    let granted = {
        let mut pending = state.pending.lock().unwrap_or_else(|p| p.into_inner());
        let ok = pending
            .get(&session)
            .is_some_and(|p| ct_eq(&p.key_hash, &hash) && p.expires > Instant::now());
        if ok {
            pending.remove(&session).map(|p| p.seed)
        } else {
            None
        }
    };
    match granted {
        Some(seed) => {
            tracing::info!(%peer, session = %short(&session), "client seed released");
            let _ = ch.send_control(&Control::SeedGrant { seed }).await;
        }
        None => {
            tracing::warn!(%peer, session = %short(&session), "seed claim refused");
            ch.send_error(
                ErrorCode::Unauthorized,
                "no seed for this session and key (unknown, expired, already claimed, or another key)",
            )
            .await;
        }
    }
    let _ = ch.transport_mut().close().await;
}

fn fresh() -> Result<(Seed, Seed, SessionId), Error> {
    let client = Seed::random()?;
    let server = Seed::random()?;
    let mut session = [0u8; 16];
    session.copy_from_slice(&Seed::random()?.expose_bytes()[..16]);
    Ok((client, server, session))
}

/// The first bytes of a session id, for logs (the id is public).
fn short(s: &SessionId) -> String {
    s[..4].iter().map(|b| format!("{b:02x}")).collect()
}
