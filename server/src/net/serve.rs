//! `hush serve`: the model server, party P1.
//!
//! - `GET /v1/session` (WebSocket): one MPC session per connection (the
//!   handshake of `hush_core::session`, the weight setup, then one inference
//!   per `Infer`).
//! - `GET /health`, `GET /model` (the plan's public summary and the weight
//!   commitment), `GET /` (the browser app, [`super::web`]).

use super::connect::Connect;
use super::feed::{DealerFeed, OpenedSession};
use super::generator::{AHEAD_BYTES, Generator};
use super::listen::{self, TlsFiles};
use super::ws::{WsTransport, accept};
use super::{DEFAULT_IDLE, ct_eq, reply_error};
use crate::compute::BackendArgs;
use crate::model::{BoxError, load};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use hush_core::error::{Error, ErrorCode, PeerError};
use hush_core::plan::secure::{self, EncodedWeights, requests};
use hush_core::plan::{Plan, Weights};
use hush_core::preprocessing::CorrelationRequest;
use hush_core::preprocessing::seeded::SeededPreprocessing;
use hush_core::preprocessing::wire::encode_request;
use hush_core::prg::Seed;
use hush_core::protocol::Party;
use hush_core::session::client::ROLES;
use hush_core::session::{
    Control, DealerTicket, FramedChannel, Limits, ModelInfo, PROTOCOL_VERSION, config_for,
};
use hush_gpu::Compute;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Options of `hush serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// ONNX model to serve (default: the embedded digits CNN), or a
    /// built-in benchmark model: builtin:resnet18-32, builtin:resnet18-224.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// The dealer service (`hush dealer`), e.g. ws://127.0.0.1:9090.
    #[arg(long, conflicts_with = "insecure_local_dealer")]
    pub dealer: Option<String>,
    /// The dealer's address as clients reach it, if it differs from --dealer.
    #[arg(long, requires = "dealer")]
    pub dealer_public_url: Option<String>,
    /// INSECURE development mode: run the dealer inside this server. The
    /// server can then learn every client's input. Never for real data.
    #[arg(long)]
    pub insecure_local_dealer: bool,
    /// TLS certificate chain (PEM); with --tls-key the server speaks https/wss.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) to trust for a wss:// dealer with a private CA.
    #[arg(long)]
    pub dealer_ca: Option<PathBuf>,
    /// File of client tokens, one per line (`#` starts a comment). Without
    /// it, any client may connect.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Most concurrent sessions per token.
    #[arg(long, default_value_t = 4)]
    pub sessions_per_token: usize,
    /// Most concurrent sessions in all.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Seconds a client may stay silent before its session is closed.
    #[arg(long, default_value_t = DEFAULT_IDLE.as_secs_f64())]
    pub idle_timeout: f64,
    /// Where the server's products run (one device shared by all sessions).
    #[command(flatten)]
    pub compute: BackendArgs,
}

enum DealerMode {
    Remote { url: String, public_url: String },
    InsecureLocal,
}

struct Model {
    plan: Plan,
    /// Encoded once; every session shares them.
    weights: EncodedWeights,
    plan_bytes: Vec<u8>,
    /// The session's correlation requests (for the in-process dealer)...
    setup: Vec<CorrelationRequest>,
    inference: Vec<CorrelationRequest>,
    /// ...and their wire encoding (for a dealer service), made once.
    setup_wire: Vec<Vec<u8>>,
    inference_wire: Vec<Vec<u8>>,
}

struct ServeState {
    model: Model,
    compute: Compute,
    dealer: DealerMode,
    connect: Connect,
    tokens: Option<Vec<String>>,
    per_token: Mutex<HashMap<usize, usize>>,
    active: AtomicUsize,
    opened: AtomicU64,
    inferences: AtomicU64,
    limits: Limits,
    args: ServeArgs,
}

impl ServeState {
    fn idle(&self) -> Duration {
        Duration::from_secs_f64(self.args.idle_timeout.max(0.001))
    }
}

const NO_DEALER: &str = "hush serve needs a dealer, so that no party holds all the randomness: \
start `hush dealer` and pass --dealer ws://HOST:PORT, or pass --insecure-local-dealer for \
development only (the server can then learn every client's input)";

/// The warning printed, logged and sent to clients in the insecure mode.
pub const INSECURE_WARNING: &str = "INSECURE: this server runs its own dealer \
(--insecure-local-dealer), so it can learn every client's input. Development only.";

fn read_tokens(path: &PathBuf) -> Result<Vec<String>, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err(format!("{}: no tokens", path.display()).into());
    }
    Ok(tokens)
}

/// Runs `hush serve` until the process ends.
pub fn run(args: ServeArgs) -> Result<(), BoxError> {
    super::init_logging("info");
    let imported = load(&args.model, &[])?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let addr = args.addr.clone();
    let app = app(args, imported.plan, imported.weights)?;
    super::runtime()?.block_on(listen::serve("hush serve", app, &addr, tls))?;
    Ok(())
}

impl ServeArgs {
    /// Defaults (as on the command line) with the dealer at `dealer`.
    pub fn with_dealer(dealer: &str) -> Self {
        ServeArgs {
            model: None,
            addr: "127.0.0.1:0".into(),
            dealer: Some(dealer.into()),
            dealer_public_url: None,
            insecure_local_dealer: false,
            tls_cert: None,
            tls_key: None,
            dealer_ca: None,
            token_file: None,
            sessions_per_token: 4,
            max_sessions: 64,
            idle_timeout: DEFAULT_IDLE.as_secs_f64(),
            compute: BackendArgs::default(),
        }
    }
}

/// The server's routes for `plan` and `weights`, to serve on any listener.
/// Derives the session's correlation requests from the plan first.
pub fn app(args: ServeArgs, plan: Plan, weights: Weights) -> Result<Router, BoxError> {
    let dealer = match (&args.dealer, args.insecure_local_dealer) {
        (Some(url), false) => DealerMode::Remote {
            url: url.clone(),
            public_url: args
                .dealer_public_url
                .clone()
                .unwrap_or_else(|| url.clone()),
        },
        (None, true) => {
            eprintln!("WARNING: {INSECURE_WARNING}");
            tracing::warn!("{INSECURE_WARNING}");
            DealerMode::InsecureLocal
        }
        _ => return Err(NO_DEALER.into()),
    };
    let tokens = args.token_file.as_ref().map(read_tokens).transpose()?;
    let t = Instant::now();
    let config = config_for(&plan)?;
    let (setup, inference) = requests(&plan, config, 2)?;
    let info = ModelInfo::of(&plan);
    tracing::info!(
        model = %info.name,
        commitment = %info.commitment_string(),
        parameters = info.parameters,
        setup_requests = setup.len(),
        inference_requests = inference.len(),
        secs = t.elapsed().as_secs_f64(),
        "model loaded"
    );
    let connect = Connect::new(
        args.dealer_ca.as_deref(),
        Some(Duration::from_secs_f64(args.idle_timeout.max(0.001))),
    )?;
    let compute = args.compute.open()?;
    let state = Arc::new(ServeState {
        compute,
        model: Model {
            plan_bytes: plan.to_bytes()?,
            weights: EncodedWeights::new(&weights, config.fixed_point)?,
            plan,
            setup_wire: setup.iter().map(encode_request).collect(),
            inference_wire: inference.iter().map(encode_request).collect(),
            setup,
            inference,
        },
        dealer,
        connect,
        tokens,
        per_token: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        opened: AtomicU64::new(0),
        inferences: AtomicU64::new(0),
        limits: Limits::default(),
        args,
    });
    Ok(super::web::routes()
        .route("/health", get(health))
        .route("/model", get(model))
        .route("/v1/session", get(session_upgrade))
        .with_state(state))
}

fn model_json(state: &ServeState) -> serde_json::Value {
    let info = ModelInfo::of(&state.model.plan);
    let tensors = |ts: &[hush_core::session::TensorInfo]| {
        ts.iter()
            .map(|t| json!({ "name": t.name, "shape": t.shape }))
            .collect::<Vec<_>>()
    };
    json!({
        "name": info.name,
        "inputs": tensors(&info.inputs),
        "outputs": tensors(&info.outputs),
        "commitment": info.commitment_string(),
        "parameters": info.parameters,
        "nodes": info.nodes,
        "frac_bits": state.model.plan.frac_bits,
        "insecure_dealer": matches!(state.dealer, DealerMode::InsecureLocal),
        "protocol_version": PROTOCOL_VERSION,
    })
}

async fn model(State(state): State<Arc<ServeState>>) -> impl IntoResponse {
    axum::Json(model_json(&state))
}

async fn health(State(state): State<Arc<ServeState>>) -> impl IntoResponse {
    axum::Json(json!({
        "status": "ok",
        "role": "server",
        "model": state.model.plan.name,
        "sessions": state.active.load(Ordering::Relaxed),
        "opened": state.opened.load(Ordering::Relaxed),
        "inferences": state.inferences.load(Ordering::Relaxed),
    }))
}

async fn session_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<Arc<ServeState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    let (max, idle) = (state.limits.max_frame_bytes, Some(state.idle()));
    accept(ws, max, idle, move |transport| async move {
        let n = state.opened.fetch_add(1, Ordering::Relaxed) + 1;
        client_session(state, transport, peer)
            .instrument(tracing::info_span!("session", n))
            .await;
    })
}

/// Releases a session's slots when it ends, however it ends.
struct Slots {
    state: Arc<ServeState>,
    token: Option<usize>,
}

impl Drop for Slots {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(t) = self.token {
            let mut m = self
                .state
                .per_token
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = m.get_mut(&t) {
                *c = c.saturating_sub(1);
            }
        }
    }
}

async fn client_session(state: Arc<ServeState>, transport: WsTransport, peer: SocketAddr) {
    let Ok(mut ch) = FramedChannel::new(transport, ROLES.owner, state.limits) else {
        return;
    };
    state.active.fetch_add(1, Ordering::Relaxed);
    let mut slots = Slots {
        state: state.clone(),
        token: None,
    };
    if state.active.load(Ordering::Relaxed) > state.args.max_sessions {
        tracing::warn!(%peer, "refused: at the session limit");
        ch.send_error(
            ErrorCode::Busy,
            "the server is at its session limit; try again later",
        )
        .await;
        return;
    }
    let (software, hash, token) = match ch.recv_control().await {
        Ok(Control::ClientHello {
            software,
            key_hash,
            token,
        }) => (software, key_hash, token),
        Ok(other) => {
            tracing::warn!(%peer, got = other.name(), "refused: no hello");
            ch.send_error(ErrorCode::Protocol, "expected ClientHello")
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refused: no valid hello");
            reply_error(&mut ch, &e);
            return;
        }
    };
    if let Some(tokens) = &state.tokens {
        let found = token.as_deref().and_then(|t| {
            tokens
                .iter()
                .position(|known| ct_eq(known.as_bytes(), t.as_bytes()))
        });
        let Some(index) = found else {
            tracing::warn!(%peer, "refused: missing or unknown token");
            ch.send_error(ErrorCode::Unauthorized, "missing or unknown client token")
                .await;
            return;
        };
        let admitted = {
            let mut m = state.per_token.lock().unwrap_or_else(|p| p.into_inner());
            let count = m.entry(index).or_insert(0);
            let ok = *count < state.args.sessions_per_token;
            if ok {
                *count += 1;
            }
            ok
        };
        if !admitted {
            tracing::warn!(%peer, token = index + 1, "refused: token at its session limit");
            ch.send_error(
                ErrorCode::Busy,
                "this token is at its limit of concurrent sessions",
            )
            .await;
            return;
        }
        slots.token = Some(index);
    }
    let opened = match open_dealer(&state, hash).await {
        Ok(o) => o,
        Err(e) => {
            let dealer = match &state.dealer {
                DealerMode::Remote { url, .. } => url.as_str(),
                DealerMode::InsecureLocal => "in-process (insecure)",
            };
            tracing::error!(%peer, %dealer, error = %e, "dealer unavailable");
            // The client gets the dealer's own reason for a refusal, and
            // nothing of the server's network for a failure to reach it.
            let (code, words) = match e.code() {
                ErrorCode::Busy => (
                    ErrorCode::Busy,
                    format!(
                        "the server's dealer is busy, try again later: {}",
                        e.message()
                    ),
                ),
                ErrorCode::BadRequest => (
                    ErrorCode::Dealer,
                    format!("the server's dealer refused the session: {}", e.message()),
                ),
                _ => (
                    ErrorCode::Dealer,
                    "the server cannot reach its dealer".to_string(),
                ),
            };
            ch.send_error(code, words).await;
            return;
        }
    };
    let OpenedSession {
        mut feed,
        ticket,
        server_seed,
    } = opened;
    // The dealer prepares the first inference while the weights are set up.
    if let Err(e) = feed.credit(1).await {
        ch.send_error(ErrorCode::Dealer, e.message()).await;
        return;
    }
    let hello = Control::ServerHello {
        software: super::software("hush-serve"),
        plan: state.model.plan_bytes.clone(),
        dealer: ticket,
    };
    if let Err(e) = ch.send_control(&hello).await {
        tracing::info!(%peer, error = %e, "client left during the handshake");
        return;
    }
    tracing::info!(%peer, %software, "session started");
    let handle = tokio::runtime::Handle::current();
    let st = state.clone();
    let span = tracing::Span::current();
    let joined = tokio::task::spawn_blocking(move || {
        handle.block_on(run_mpc(&st, ch, feed, server_seed).instrument(span))
    })
    .await;
    match joined {
        Ok(Ok(k)) => tracing::info!(inferences = k, "session ended by the client"),
        Ok(Err((k, e))) if matches!(e.code(), ErrorCode::Closed | ErrorCode::Timeout) => {
            tracing::info!(inferences = k, reason = %e, "client gone; session freed")
        }
        Ok(Err((k, e))) => tracing::warn!(inferences = k, error = %e, "session failed"),
        Err(e) => tracing::error!(error = %e, "session thread failed"),
    }
    drop(slots);
}

async fn open_dealer(state: &ServeState, key_hash: [u8; 32]) -> Result<OpenedSession, Error> {
    let model = &state.model;
    match &state.dealer {
        DealerMode::Remote { url, public_url } => {
            DealerFeed::open_remote(
                &state.connect,
                url,
                public_url,
                key_hash,
                model.setup_wire.clone(),
                model.inference_wire.clone(),
            )
            .await
        }
        DealerMode::InsecureLocal => {
            let client = Seed::random()?;
            let server = Seed::random()?;
            let generator = Generator::spawn(
                vec![client.clone(), server.clone()],
                model.setup.clone(),
                model.inference.clone(),
                AHEAD_BYTES,
            )
            .map_err(|e| Error::Usage(format!("cannot start the local dealer: {e}")))?;
            Ok(OpenedSession {
                feed: DealerFeed::InsecureLocal(generator),
                ticket: DealerTicket::InsecureLocal { seed: client },
                server_seed: server,
            })
        }
    }
}

/// The MPC part of a session; returns the number of inferences served (with
/// the error that ended it, if any).
async fn run_mpc(
    state: &ServeState,
    ch: FramedChannel<WsTransport>,
    feed: DealerFeed,
    seed: Seed,
) -> Result<u64, (u64, Error)> {
    let model = &state.model;
    let mut ch = ch;
    let client = ch.transport_mut().handle();
    let fail = |e: Error| {
        match e.code() {
            ErrorCode::Closed => {}
            ErrorCode::Timeout => {
                client.send_error(ErrorCode::Timeout, "the server closed an idle session")
            }
            _ => client.report(&e),
        }
        e
    };
    let config = config_for(&model.plan).map_err(|e| (0, fail(e)))?;
    let prep = SeededPreprocessing::new(ROLES.owner, 2, &seed, feed);
    drop(seed);
    let mut party = Party::new(ch, prep, state.compute.clone(), config)
        .await
        .map_err(|e| (0, fail(e)))?;
    let mut served = 0u64;
    let result: Result<(), Error> = async {
        let t = Instant::now();
        let before = party.stats();
        let weights =
            secure::setup_encoded(&mut party, &model.plan, ROLES, Some(&model.weights)).await?;
        let s = party.stats().since(&before);
        tracing::info!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            sent = s.bytes_sent,
            received = s.bytes_received,
            rounds = s.rounds,
            "weights set up"
        );
        loop {
            match party.channel_mut().recv_control().await? {
                Control::Infer => {}
                Control::Bye => return Ok(()),
                other => {
                    tracing::warn!(got = other.name(), "unexpected message between inferences");
                    return Err(PeerError::Unexpected("expected Infer or Bye").into());
                }
            }
            // Prepare the next inference while this one runs.
            party.preprocessing().source_mut().credit(1).await?;
            let t = Instant::now();
            let before = party.stats();
            secure::evaluate(&mut party, &model.plan, ROLES, &weights, None).await?;
            served += 1;
            state.inferences.fetch_add(1, Ordering::Relaxed);
            let s = party.stats().since(&before);
            tracing::info!(
                inference = served,
                ms = t.elapsed().as_secs_f64() * 1e3,
                sent = s.bytes_sent,
                received = s.bytes_received,
                rounds = s.rounds,
                "inference done"
            );
        }
    }
    .await;
    result.map(|()| served).map_err(|e| (served, fail(e)))
}
