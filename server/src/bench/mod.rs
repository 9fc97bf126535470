//! `hush bench`: measured workloads, each split into an offline phase (the
//! dealer and every party expanding their correlated randomness) and an
//! online phase (the protocol itself), with bytes and rounds per party.
//!
//! All parties run in this process, each on its own thread, over in-memory
//! channels that carry serialized bytes (as parties on separate machines
//! would, sharing this machine's cores and memory bandwidth); local products
//! also use rayon's pool. Each workload is run once to learn its correlation
//! requests and warm up, then `--reps` times; the median and the range are
//! reported. Offline time is the dealer and every party expanding their
//! correlations one after another (in a deployment they run in parallel on
//! separate machines), plus any per-query input-independent local work.

mod core_suite;
mod models_suite;
mod net_suite;

use clap::Args;
use hush_core::channel::CommStats;
use serde_json::json;
use std::time::Duration;

/// Options of `hush bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Suite to run.
    #[arg(long, default_value = "core", value_parser = ["core", "models", "net"])]
    suite: String,
    /// Measured repetitions per workload (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Only workloads whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Print JSON lines instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print a Markdown table (the README's figures are made with this).
    #[arg(long)]
    markdown: bool,
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
        })
    }
}

fn print_markdown(r: &Report) {
    let max = |f: fn(&CommStats) -> u64, c: &[CommStats]| c.iter().map(f).max().unwrap_or(0);
    println!(
        "| {} | {:.2} ms | {:.2} ms | {} | {} | {} |",
        r.name,
        ms(median(&r.online)),
        ms(median(&r.offline)),
        human_bytes(max(|c| c.bytes_sent, &r.comm)),
        human_bytes(max(|c| c.bytes_received, &r.comm)),
        max(|c| c.rounds, &r.comm)
    );
    if let Some((t, c)) = &r.setup {
        println!(
            "| ↳ weight setup, once per session | {:.2} ms | | {} | {} | {} |",
            ms(*t),
            human_bytes(max(|c| c.bytes_sent, c)),
            human_bytes(max(|c| c.bytes_received, c)),
            max(|c| c.rounds, c)
        );
    }
    if !r.note.is_empty() {
        println!("| ↳ {} | | | | | |", r.note);
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
    let keep = |name: &str| {
        args.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    };
    type Runner = Box<dyn Fn(usize) -> Result<Report, Box<dyn std::error::Error>>>;
    let selected: Vec<(String, Runner)> = if args.suite == "net" {
        net_suite::cases()
            .into_iter()
            .filter(|c| keep(c.name))
            .map(|c| {
                let name = c.name.to_string();
                let run: Runner = Box::new(move |reps| net_suite::measure(&c, reps));
                (name, run)
            })
            .collect()
    } else if args.suite == "models" {
        models_suite::cases()
            .into_iter()
            .filter(|c| keep(c.name))
            .map(|c| {
                let name = c.name.to_string();
                let run: Runner = Box::new(move |reps| models_suite::measure(&c, reps));
                (name, run)
            })
            .collect()
    } else {
        core_suite::workloads()
            .into_iter()
            .filter(|w| keep(&w.name))
            .map(|w| {
                let run: Runner = Box::new(w.run);
                (w.name, run)
            })
            .collect()
    };
    if selected.is_empty() {
        return Err("no workload matches --filter".into());
    }
    if args.markdown {
        println!(
            "| workload | online (median of {}) | offline | sent per party | received per party | rounds |",
            args.reps
        );
        println!("| --- | --- | --- | --- | --- | --- |");
    } else if !args.json {
        println!(
            "suite {} — {} parties in one process (a thread each), rayon pool of {}, median of {} after a warm-up",
            args.suite,
            2,
            rayon::current_num_threads(),
            args.reps
        );
        println!(
            "{:<34} {:>11} {:>11} {:>12} {:>12} {:>7}",
            "workload", "online", "offline", "sent/party", "recv/party", "rounds"
        );
    }
    for (name, run) in selected {
        eprintln!("running {name} ...");
        let r = run(args.reps)?;
        if args.json {
            println!("{}", r.json());
        } else if args.markdown {
            print_markdown(&r);
        } else {
            let sent = r.comm.iter().map(|c| c.bytes_sent).max().unwrap_or(0);
            let recv = r.comm.iter().map(|c| c.bytes_received).max().unwrap_or(0);
            let rounds = r.comm.iter().map(|c| c.rounds).max().unwrap_or(0);
            println!(
                "{:<34} {:>8.2} ms {:>8.2} ms {:>12} {:>12} {:>7}",
                r.name,
                ms(median(&r.online)),
                ms(median(&r.offline)),
                human_bytes(sent),
                human_bytes(recv),
                rounds
            );
            if let Some((t, c)) = &r.setup {
                let sent = c.iter().map(|c| c.bytes_sent).max().unwrap_or(0);
                println!(
                    "{:<34} {:>8.2} ms {:>11} {:>12} {:>12} {:>7}",
                    "  └ weight setup (once per session)",
                    ms(*t),
                    "",
                    human_bytes(sent),
                    "",
                    c.iter().map(|c| c.rounds).max().unwrap_or(0)
                );
            }
            if !r.note.is_empty() {
                println!("  └ {}", r.note);
            }
        }
    }
    Ok(())
}
