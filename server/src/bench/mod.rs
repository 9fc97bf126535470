//! `hush bench`: measured workloads, each split into an offline phase (the
//! dealer and every party expanding their correlated randomness) and an
//! online phase (the protocol itself), with bytes and rounds per party.
//!
//! By default both parties run in this process, each on its own thread,
//! over in-memory channels that carry serialized bytes (as parties on
//! separate machines would, sharing this machine's cores and memory
//! bandwidth); local products also use rayon's pool. With `--listen` and
//! `--peer`, two `hush bench` processes run one party each over a
//! WebSocket (see [`parties`]). Each workload is run once to learn its
//! correlation requests and warm up, then `--reps` times; the median and
//! the range are reported. Offline time is the dealer and the parties here
//! expanding their correlations one after another (in a deployment they run
//! in parallel on separate machines), plus any per-query input-independent
//! local work.

mod gpu_suite;
mod models_suite;
mod net_suite;
mod ops_suite;
mod parties;

use clap::Args;
use hush_core::channel::{Channel, CommStats};
use hush_core::preprocessing::Preprocessing;
use hush_core::protocol::Party;
use hush_core::{ArithShare, RingTensor};
use hush_gpu::Compute;
use hush_server::compute::BackendArgs;
use hush_server::model::BoxError;
use parties::{Parties, stats_from, stats_to_vec};
use serde_json::json;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Options of `hush bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Suite to run: `ops` (single protocols at the sizes of the CrypTen
    /// table; `core` is its old name), `models` (whole networks) or `net`
    /// (models served over WebSockets by the real server, dealer and client).
    /// `gpu` measures the GPU backend's matrix-product throughput in both
    /// arithmetic variants (see --gemm-size).
    #[arg(long, default_value = "ops", value_parser = ["ops", "core", "models", "net", "gpu"])]
    suite: String,
    /// `gpu` suite: the size n of the n×n·n×n product.
    #[arg(long, default_value_t = 4096)]
    gemm_size: usize,
    /// `gpu` suite: also time the CPU backend on the same product.
    #[arg(long)]
    gemm_cpu: bool,
    /// Measured repetitions per workload (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Only workloads whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// With --filter: only the workload named exactly that (so that
    /// "mul 1e6" does not also run "mul 1e6 (masked inputs)").
    #[arg(long, requires = "filter")]
    exact: bool,
    /// Print JSON lines instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print a Markdown table (the README's figures are made with this).
    #[arg(long)]
    markdown: bool,
    /// `models` suite: take the models from this folder (`<key>.onnx`,
    /// `<key>.input.npy`, `<key>.ort.npy`, as bench/crypten/models.py writes
    /// them) instead of the embedded and code-built ones, and compare each
    /// output with onnxruntime's.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Run party 1 here and wait for party 0 (another `hush bench` with
    /// `--peer`) on this address, e.g. 0.0.0.0:7700. Party 1 also acts as
    /// the dealer and sends party 0 its seed: an INSECURE benchmark dealer,
    /// for timing only.
    #[arg(long, conflicts_with = "peer")]
    listen: Option<String>,
    /// Run party 0 here, connecting to party 1 at this URL, e.g.
    /// ws://10.0.0.1:7700. Party 0 prints the reports.
    #[arg(long)]
    peer: Option<String>,
    /// Print the names of the suite's workloads (after --filter) and exit.
    #[arg(long)]
    list: bool,
    /// A label for the link the parties talk over, copied into the JSON
    /// (e.g. "loopback", "wan-40ms").
    #[arg(long, default_value = "in-process")]
    link: String,
    /// Where the parties' products run (the insecure benchmark dealer stays
    /// on the CPU; its time is the offline column).
    #[command(flatten)]
    compute: BackendArgs,
}

/// The backend of this process's parties, opened once by [`run`].
static COMPUTE: OnceLock<Compute> = OnceLock::new();

/// Meets the other parties (an exchange of empty messages) and aligns the
/// round clocks ([`Channel::fence_rounds`]), so that counts taken from here
/// start from the same round on every party.
pub(crate) async fn barrier<C: Channel, P: Preprocessing>(
    p: &mut Party<C, P, Compute>,
) -> hush_core::Result<()> {
    let mut x = ArithShare::from_raw(RingTensor::zeros(ndarray::IxDyn(&[0])));
    x = ArithShare::from_raw(p.open(&x).await?);
    drop(x);
    p.channel_mut().fence_rounds();
    Ok(())
}

/// The parties' backend (the CPU if [`run`] has not chosen one).
pub(crate) fn compute() -> Compute {
    COMPUTE
        .get()
        .cloned()
        .unwrap_or(Compute::Cpu(hush_core::backend::CpuBackend))
}

/// One workload's measurements.
pub(crate) struct Report {
    pub name: String,
    pub parties: usize,
    /// Online wall time of each measured repetition.
    pub online: Vec<Duration>,
    /// Offline (preprocessing) wall time of each repetition.
    pub offline: Vec<Duration>,
    /// Online traffic per party.
    pub comm: Vec<CommStats>,
    /// Bytes the dealer sends the last party (corrections) per repetition.
    pub dealer_bytes: u64,
    /// A one-time setup cost reported apart (e.g. opening weight masks).
    pub setup: Option<(Duration, Vec<CommStats>)>,
    /// Free-form extra facts (error counts, sizes).
    pub note: String,
    /// Peak resident memory of each process measured (one entry when both
    /// parties and the dealer share this process).
    pub peak_memory: Vec<u64>,
    /// Largest absolute error of the result against `error_against`.
    pub max_error: Option<f64>,
    pub error_against: &'static str,
}

impl Report {
    pub(crate) fn new(name: &str, dealer_bytes: u64) -> Report {
        Report {
            name: name.to_string(),
            parties: 2,
            online: Vec::new(),
            offline: Vec::new(),
            comm: Vec::new(),
            dealer_bytes,
            setup: None,
            note: String::new(),
            peak_memory: Vec::new(),
            max_error: None,
            error_against: "float64",
        }
    }
}

/// Starts a new peak-memory window (Linux: resets VmHWM; elsewhere the
/// peak is the process's).
pub(crate) fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn nanos(d: &Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// Between processes, completes party 0's report with party 1's traffic,
/// timings (the slower party's) and memory.
pub(crate) fn gather(parties: &mut Parties, r: &mut Report) -> Result<(), BoxError> {
    if parties.me().is_none() {
        return Ok(());
    }
    let mut v = Vec::new();
    v.extend(stats_to_vec(&r.comm.first().copied().unwrap_or_default()));
    v.push(r.peak_memory.first().copied().unwrap_or(0));
    v.extend(r.online.iter().map(nanos));
    v.extend(r.offline.iter().map(nanos));
    let (setup_t, setup_c) = r.setup.clone().unwrap_or_default();
    v.push(nanos(&setup_t));
    v.extend(stats_to_vec(&setup_c.first().copied().unwrap_or_default()));
    let all = parties.gather(vec![v])?;
    let Some(other) = all.get(1) else {
        return Ok(());
    };
    let (n_on, n_off) = (r.online.len(), r.offline.len());
    if other.len() != 5 + 1 + n_on + n_off + 1 + 5 {
        return Err("party 1 reported a different number of runs".into());
    }
    r.comm.push(stats_from(&other[0..5])?);
    r.peak_memory.push(other[5]);
    let take = |xs: &mut Vec<Duration>, from: &[u64]| {
        for (x, &ns) in xs.iter_mut().zip(from) {
            *x = (*x).max(Duration::from_nanos(ns));
        }
    };
    take(&mut r.online, &other[6..6 + n_on]);
    take(&mut r.offline, &other[6 + n_on..6 + n_on + n_off]);
    let rest = &other[6 + n_on + n_off..];
    if let Some((t, c)) = &mut r.setup {
        *t = (*t).max(Duration::from_nanos(rest[0]));
        c.push(stats_from(&rest[1..6])?);
    }
    Ok(())
}

/// Drives in-process preprocessing, which never waits, to completion; an
/// error if it would wait.
pub(crate) fn ready<T>(
    f: impl std::future::Future<Output = hush_core::Result<T>>,
) -> hush_core::Result<T> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(hush_core::Error::Usage(
            "in-process preprocessing waited".into(),
        )),
    }
}

pub(crate) fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Report {
    fn json(&self) -> serde_json::Value {
        let range = |v: &[Duration]| {
            let min = v.iter().min().copied().unwrap_or_default();
            let max = v.iter().max().copied().unwrap_or_default();
            json!([ms(min), ms(max)])
        };
        json!({
            "name": self.name,
            "parties": self.parties,
            "reps": self.online.len(),
            "online_ms_median": ms(median(&self.online)),
            "online_ms_range": range(&self.online),
            "offline_ms_median": ms(median(&self.offline)),
            "bytes_sent_per_party": self.comm.iter().map(|c| c.bytes_sent).collect::<Vec<_>>(),
            "bytes_received_per_party": self.comm.iter().map(|c| c.bytes_received).collect::<Vec<_>>(),
            "rounds": self.comm.iter().map(|c| c.rounds).max().unwrap_or(0),
            "dealer_to_server_bytes": self.dealer_bytes,
            "setup": self.setup.as_ref().map(|(t, c)| json!({
                "ms": ms(*t),
                "bytes_sent_per_party": c.iter().map(|c| c.bytes_sent).collect::<Vec<_>>(),
                "rounds": c.iter().map(|c| c.rounds).max().unwrap_or(0),
            })),
            "note": self.note,
            "framework": "hush",
            "bytes_per_party": self.comm.iter().map(|c| c.bytes_sent + c.bytes_received).collect::<Vec<_>>(),
            "offline_ms_range": range(&self.offline),
            "peak_memory_bytes": self.peak_memory.iter().max(),
            "peak_memory_per_process": self.peak_memory,
            "max_abs_error": self.max_error,
            "error_against": self.max_error.map(|_| self.error_against),
        })
    }
}

/// Bytes each way between the two parties: party 0 (the client, who holds
/// the input) to party 1 (the owner), and back. Protocols with an owner are
/// asymmetric, so the two directions are shown apart.
fn each_way(c: &[CommStats]) -> (u64, u64) {
    c.first()
        .map_or((0, 0), |c0| (c0.bytes_sent, c0.bytes_received))
}

fn print_markdown(r: &Report) {
    let max = |f: fn(&CommStats) -> u64, c: &[CommStats]| c.iter().map(f).max().unwrap_or(0);
    let (up, down) = each_way(&r.comm);
    let peak = r
        .peak_memory
        .iter()
        .max()
        .map_or(String::new(), |&b| human_bytes(b));
    let error = r.max_error.map_or(String::new(), |e| format!("{e:.1e}"));
    println!(
        "| {} | {:.2} ms | {:.2} ms | {} | {} | {} | {peak} | {error} |",
        r.name,
        ms(median(&r.online)),
        ms(median(&r.offline)),
        human_bytes(up),
        human_bytes(down),
        max(|c| c.rounds, &r.comm)
    );
    if let Some((t, c)) = &r.setup {
        let (up, down) = each_way(c);
        println!(
            "| ↳ setup (masking weights or inputs), once | {:.2} ms | | {} | {} | {} | | |",
            ms(*t),
            human_bytes(up),
            human_bytes(down),
            max(|c| c.rounds, c)
        );
    }
    if !r.note.is_empty() {
        println!("| ↳ {} | | | | | | | |", r.note);
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MB", b as f64 / 1e6)
    } else if b >= 1 << 10 {
        format!("{:.1} KB", b as f64 / 1e3)
    } else {
        format!("{b} B")
    }
}

/// Runs the benchmark command.
pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let suite = if args.suite == "core" {
        "ops"
    } else {
        args.suite.as_str()
    };
    if suite == "gpu" {
        return gpu_suite::run(
            args.gemm_size,
            args.reps,
            args.json,
            args.markdown,
            args.gemm_cpu,
        );
    }
    let keep = |name: &str| {
        args.filter.as_ref().is_none_or(|f| {
            if args.exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        })
    };
    type Runner = Box<dyn Fn(&mut Parties, usize) -> Result<Report, BoxError>>;
    let selected: Vec<(String, Runner)> = match suite {
        "net" => net_suite::cases()
            .into_iter()
            .filter(|c| keep(c.name))
            .map(|c| {
                let name = c.name.to_string();
                let run: Runner = Box::new(move |_, reps| net_suite::measure(&c, reps));
                (name, run)
            })
            .collect(),
        "models" => models_suite::cases(args.models_dir.as_deref())?
            .into_iter()
            .filter(|c| keep(c.name))
            .map(|c| {
                let name = c.name.to_string();
                let run: Runner =
                    Box::new(move |parties, reps| models_suite::measure(parties, &c, reps));
                (name, run)
            })
            .collect(),
        _ => ops_suite::workloads()
            .into_iter()
            .filter(|w| keep(&w.name))
            .map(|w| {
                let run: Runner = Box::new(w.run);
                (w.name, run)
            })
            .collect(),
    };
    if selected.is_empty() {
        return Err("no workload matches --filter".into());
    }
    let opened = args.compute.open()?;
    let backend = format!(
        "{} (CPU GEMM kernel: {}, elementwise: {})",
        opened.describe(),
        hush_core::backend::CpuBackend::gemm_kernel(),
        hush_core::backend::CpuBackend::vector_level()
    );
    let _ = COMPUTE.set(opened);
    if args.list {
        for (name, _) in &selected {
            println!("{name}");
        }
        return Ok(());
    }
    if (args.listen.is_some() || args.peer.is_some()) && suite == "net" {
        return Err("--listen/--peer run the ops and models suites between two processes; the net suite starts its own dealer, server and client".into());
    }
    let mut parties = match (&args.listen, &args.peer) {
        (Some(addr), _) => Parties::listen(addr)?,
        (None, Some(url)) => Parties::connect(url)?,
        (None, None) => Parties::Local,
    };
    if parties.me().is_some() {
        eprintln!(
            "INSECURE benchmark dealer: party 1 draws both parties' dealer seeds (timing only, never for private data)"
        );
    }
    let names: Vec<&str> = selected.iter().map(|(n, _)| n.as_str()).collect();
    parties.agree(&format!(
        "{suite} × {} reps: {}",
        args.reps,
        names.join(", ")
    ))?;
    let quiet = !parties.reports();
    if quiet {
        eprintln!("party 1: party 0 prints the results");
    } else if args.markdown {
        println!(
            "| workload | online (median of {}) | offline | sent P0 → P1 | sent P1 → P0 | rounds | peak memory | max error |",
            args.reps
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    } else if !args.json {
        let place = match parties.me() {
            None => "2 parties in one process (a thread each)".to_string(),
            Some(_) => format!("2 processes over a WebSocket ({})", args.link),
        };
        println!(
            "suite {suite} — {place}, rayon pool of {}, backend {backend}, median of {} after a warm-up",
            rayon::current_num_threads(),
            args.reps
        );
        println!(
            "{:<34} {:>11} {:>11} {:>12} {:>12} {:>7} {:>10} {:>9}",
            "workload", "online", "offline", "P0 → P1", "P1 → P0", "rounds", "peak mem", "max err"
        );
    }
    for (name, run) in selected {
        eprintln!("running {name} ...");
        let r = run(&mut parties, args.reps)?;
        if quiet {
            continue;
        }
        if args.json {
            let mut j = r.json();
            j["link"] = json!(args.link);
            j["backend"] = json!(backend);
            println!("{j}");
        } else if args.markdown {
            print_markdown(&r);
        } else {
            let (sent, recv) = each_way(&r.comm);
            let rounds = r.comm.iter().map(|c| c.rounds).max().unwrap_or(0);
            println!(
                "{:<34} {:>8.2} ms {:>8.2} ms {:>12} {:>12} {:>7} {:>10} {:>9}",
                r.name,
                ms(median(&r.online)),
                ms(median(&r.offline)),
                human_bytes(sent),
                human_bytes(recv),
                rounds,
                r.peak_memory
                    .iter()
                    .max()
                    .map_or(String::new(), |&b| human_bytes(b)),
                r.max_error.map_or(String::new(), |e| format!("{e:.1e}")),
            );
            if let Some((t, c)) = &r.setup {
                let (sent, recv) = each_way(c);
                println!(
                    "{:<34} {:>8.2} ms {:>11} {:>12} {:>12} {:>7}",
                    "  └ setup (masking, once)",
                    ms(*t),
                    "",
                    human_bytes(sent),
                    human_bytes(recv),
                    c.iter().map(|c| c.rounds).max().unwrap_or(0)
                );
            }
            if !r.note.is_empty() {
                println!("  └ {}", r.note);
            }
        }
    }
    parties.finish()
}
