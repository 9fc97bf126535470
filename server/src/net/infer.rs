//! `hush infer`: the native client, party P0.

use super::connect::Connect;
use super::ws::WsTransport;
use crate::compute::BackendArgs;
use crate::inputs::{InputArg, arrange, fit, parse_input, save, save_and_print};
use crate::model::{BoxError, argmax_class, peak_memory};
use clap::Args;
use hush_core::backend::{Backend, CpuBackend};
use hush_core::error::{ErrorCode, Result as CoreResult};
use hush_core::plan::secure::Progress;
use hush_core::prg::Seed;
use hush_core::session::client::{ClientOptions, ClientSession, SeedSource, claim_seed};
pub use hush_core::session::session_url;
use hush_core::session::{SessionId, parse_commitment, seed_url};
use hush_gpu::Compute;
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `hush infer`. `Debug` hides the token.
#[derive(Args, Clone)]
pub struct InferArgs {
    /// The model server, e.g. ws://127.0.0.1:8080 (the session path is added).
    #[arg(long)]
    pub server: String,
    /// Input tensor (.npy), once per model input: `PATH` in the model's
    /// input order or `NAME=PATH`. Reshaped to the model's input shape when
    /// the number of elements agrees. Without any, zeros.
    #[arg(long, value_parser = parse_input)]
    pub input: Vec<InputArg>,
    /// Where to write an output (.npy, float32), once per output to keep,
    /// in the model's output order.
    #[arg(long)]
    pub output: Vec<PathBuf>,
    /// Refuse the server's model unless its weight commitment is this
    /// (`sha256:<hex>` or bare hex).
    #[arg(long)]
    pub expect_model: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Access token, for servers started with --token-file (or HUSH_TOKEN).
    #[arg(long, env = "HUSH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for wss:// servers and dealers with a private CA.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Run the inference this many times on one session (timings: median).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Seconds to wait for a silent server before giving up.
    #[arg(long, default_value_t = super::DEFAULT_IDLE.as_secs_f64())]
    pub timeout: f64,
    /// Where the client's products run.
    #[command(flatten)]
    pub compute: BackendArgs,
}

impl std::fmt::Debug for InferArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferArgs")
            .field("server", &self.server)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("expect_model", &self.expect_model)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("repeat", &self.repeat)
            .field("backend", &self.compute.backend)
            .finish_non_exhaustive()
    }
}

/// Claims the client's seed from a `hush dealer` over a WebSocket.
#[derive(Debug)]
pub struct DealerSeeds {
    /// How to connect.
    pub connect: Connect,
}

impl SeedSource for DealerSeeds {
    async fn claim(&mut self, url: &str, session: &SessionId, key: &Seed) -> CoreResult<Seed> {
        let transport = self.connect.open(&seed_url(url)).await?;
        claim_seed(transport, session, key, self.connect.limits()).await
    }
}

/// Connects to `server` (adding `/v1/session`), runs the handshake and the
/// weight setup, computing on the CPU.
pub async fn open_session(
    server: &str,
    connect: &Connect,
    options: &ClientOptions,
) -> CoreResult<ClientSession<WsTransport, CpuBackend>> {
    open_session_on(server, connect, options, CpuBackend).await
}

/// [`open_session`] computing on `backend`.
pub async fn open_session_on<B: Backend>(
    server: &str,
    connect: &Connect,
    options: &ClientOptions,
    backend: B,
) -> CoreResult<ClientSession<WsTransport, B>> {
    let url = session_url(server);
    let transport = connect.open(&url).await?;
    let mut seeds = DealerSeeds {
        connect: connect.clone(),
    };
    ClientSession::connect(transport, backend, options, &mut seeds).await
}

/// Prints progress on stderr once an inference has run for a second.
struct ProgressLine {
    start: Instant,
    last: Instant,
    shown: bool,
    tty: bool,
}

impl ProgressLine {
    fn new() -> Self {
        let now = Instant::now();
        ProgressLine {
            start: now,
            last: now,
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, p: Progress) {
        let now = Instant::now();
        let every = if self.tty { 200 } else { 2000 };
        if now.duration_since(self.start) < Duration::from_secs(1)
            || (now.duration_since(self.last) < Duration::from_millis(every) && p.done < p.total)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let line = format!(
            "progress {:>3}% node {}/{} ({})",
            p.done * 100 / p.total.max(1),
            p.done,
            p.total,
            p.op
        );
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r{line:<60}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn finish(&self) {
        if self.shown && self.tty {
            eprintln!();
        }
    }
}

/// Runs `hush infer`.
pub fn run(args: InferArgs) -> Result<(), BoxError> {
    super::init_logging("warn");
    let expect_model = match &args.expect_model {
        Some(s) => Some(parse_commitment(s).ok_or_else(|| {
            format!("--expect-model {s:?} is not a SHA-256 (sha256:<64 hex digits>)")
        })?),
        None => None,
    };
    let idle = Duration::from_secs_f64(args.timeout.max(0.001));
    let connect = Connect::new(args.ca_cert.as_deref(), Some(idle))?;
    let options = ClientOptions {
        expect_model,
        token: args.token.clone(),
        software: super::software("hush-infer"),
        ..ClientOptions::default()
    };
    let compute = args.compute.open()?;
    let rt = super::runtime()?;
    rt.block_on(async move {
        let t = Instant::now();
        let mut session = connect_clearly(&args.server, &connect, &options, compute).await?;
        let connect_s = t.elapsed().as_secs_f64();
        let info = session.model().clone();
        eprintln!("model {} {}", info.name, info.commitment_string());
        if session.insecure_dealer() {
            eprintln!("WARNING: {}", super::serve::INSECURE_WARNING);
        }
        let names: Vec<String> = info.inputs.iter().map(|t| t.name.clone()).collect();
        let inputs = if args.input.is_empty() {
            eprintln!("no --input: evaluating on zeros");
            info.inputs
                .iter()
                .map(|t| ArrayD::zeros(IxDyn(&t.shape)))
                .collect()
        } else {
            arrange(&args.input, &names)?
                .into_iter()
                .zip(&info.inputs)
                .map(|(x, t)| fit(&t.name, x, &t.shape))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut times = Vec::new();
        let mut per_inference = None;
        let mut outputs = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let mut progress = ProgressLine::new();
            let before = session.stats();
            let t = Instant::now();
            outputs = session
                .run(&inputs, &mut |p| progress.update(p))
                .await
                .map_err(explain)?;
            times.push(t.elapsed().as_secs_f64());
            progress.finish();
            per_inference = Some(session.stats().since(&before));
        }
        let setup = session.setup_stats();
        let insecure = session.insecure_dealer();
        let _ = session.close().await;
        let stats = per_inference.unwrap_or_default();
        let y = outputs.first().ok_or("the model has no output")?;
        let output_names: Vec<String> = info.outputs.iter().map(|t| t.name.clone()).collect();
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let class = argmax_class(y);
        let report = json!({
            "model": info.name,
            "commitment": info.commitment_string(),
            "insecure_dealer": insecure,
            "connect_s": connect_s,
            "inference_s": median,
            "inferences": times.len(),
            "online": {
                "bytes_sent": stats.bytes_sent,
                "bytes_received": stats.bytes_received,
                "rounds": stats.rounds,
            },
            "weight_setup": {
                "bytes_sent": setup.bytes_sent,
                "bytes_received": setup.bytes_received,
                "rounds": setup.rounds,
            },
            "output_shape": y.shape(),
            "output": y.iter().copied().collect::<Vec<f64>>(),
            "outputs": outputs.iter().zip(&output_names).map(|(y, name)| json!({
                "name": name,
                "shape": y.shape(),
                "values": y.iter().copied().collect::<Vec<f64>>(),
            })).collect::<Vec<_>>(),
            "class": class,
            "peak_memory_bytes": peak_memory(),
        });
        if args.json {
            save(&outputs, &args.output)?;
            println!("{report}");
        } else {
            println!("model      {} ({})", info.name, info.commitment_string());
            println!(
                "connect    {:.3} s (handshake, seed, weight setup)",
                connect_s
            );
            println!(
                "inference  {:.2} ms{}, {} rounds, sent {} B, received {} B",
                median * 1e3,
                if times.len() > 1 {
                    format!(" (median of {})", times.len())
                } else {
                    String::new()
                },
                stats.rounds,
                stats.bytes_sent,
                stats.bytes_received
            );
            save_and_print(&outputs, &output_names, &args.output)?;
        }
        Ok::<(), BoxError>(())
    })
}

async fn connect_clearly(
    server: &str,
    connect: &Connect,
    options: &ClientOptions,
    compute: Compute,
) -> Result<ClientSession<WsTransport, Compute>, BoxError> {
    open_session_on(server, connect, options, compute)
        .await
        .map_err(explain)
}

/// An error with the words a user needs.
fn explain(e: hush_core::Error) -> BoxError {
    let code = e.code();
    let hint = match code {
        ErrorCode::Closed => " (is the server running? did it stop?)",
        ErrorCode::Dealer => " (the dealer is down, unreachable or refused the session)",
        ErrorCode::Timeout => " (the server was silent past --timeout)",
        ErrorCode::Version => " (update hush on one side)",
        _ => "",
    };
    format!("{}{hint} [{}]", e.message(), code.as_str()).into()
}
