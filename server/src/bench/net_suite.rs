//! The `net` suite: models served over real WebSockets on loopback. The
//! dealer service, the model server and the client run in this process as
//! separate tokio services with their own sockets (the same code as `hush
//! dealer`, `hush serve` and `hush infer`), and the client's per-inference
//! time is compared with the same model under `hush run` (both parties and
//! the dealer in this process over in-memory channels): the difference is
//! what the network layer costs.

use super::models_suite::{ModelCase, load, run_once};
use super::parties::Parties;
use super::{Report, median, reset_peak_memory};
use hush_core::backend::CpuBackend;
use hush_core::channel::CommStats;
use hush_core::preprocessing::seeded::{SeededDealer, in_process};
use hush_core::session::client::ClientOptions;
use hush_server::model::BoxError;
use hush_server::net::connect::Connect;
use hush_server::net::dealer::{self, DealerArgs};
use hush_server::net::infer::open_session;
use hush_server::net::listen::{bind, serve_on};
use hush_server::net::serve::{self, ServeArgs};
use std::time::{Duration, Instant};

/// The models of this suite (a subset of the `models` suite).
pub(crate) fn cases() -> Vec<ModelCase> {
    super::models_suite::builtin_cases()
        .into_iter()
        .filter(|c| {
            c.name.starts_with("digits")
                || c.name.starts_with("LeNet")
                || c.name == "ResNet-18 1x3x32x32"
        })
        .collect()
}

/// Measures one model over WebSockets.
pub(crate) fn measure(case: &ModelCase, reps: usize) -> Result<Report, BoxError> {
    let (plan, weights, x, _, _) = load(case)?;
    // In-process reference, as `hush run` does it: the dealer computes the
    // server's corrections on demand inside the online phase.
    let mut local = Vec::new();
    for _ in 0..reps + 1 {
        let seeds = SeededDealer::<CpuBackend>::random_seeds(2)?;
        let (once, _) = run_once(
            &mut Parties::Local,
            &plan,
            &weights,
            &x,
            in_process(&seeds, CpuBackend),
        )?;
        local.push(once.online);
    }
    local.remove(0);
    reset_peak_memory();
    let rt = hush_server::net::runtime()?;
    let (dealer_listener, dealer_url) = bind("127.0.0.1:0", false)?;
    let (server_listener, server_url) = bind("127.0.0.1:0", false)?;
    let dealer_app = dealer::app(DealerArgs::default());
    let server_app = serve::app(ServeArgs::with_dealer(&dealer_url), plan, weights)?;
    let (online, setup_time, setup, comm) = rt.block_on(async {
        let d = tokio::spawn(serve_on(dealer_listener, dealer_app, None));
        let s = tokio::spawn(serve_on(server_listener, server_app, None));
        let connect = Connect::new(None, Some(Duration::from_secs(600)))?;
        let t = Instant::now();
        let mut session = open_session(&server_url, &connect, &ClientOptions::default()).await?;
        let setup_time = t.elapsed();
        let setup = session.setup_stats();
        let mut online = Vec::new();
        let mut comm = CommStats::default();
        let inputs = [x];
        for _ in 0..reps + 1 {
            let before = session.stats();
            let t = Instant::now();
            session.run(&inputs, &mut |_| {}).await?;
            online.push(t.elapsed());
            comm = session.stats().since(&before);
        }
        online.remove(0);
        session.close().await?;
        d.abort();
        s.abort();
        Ok::<_, BoxError>((online, setup_time, setup, comm))
    })?;
    let mirror = |c: CommStats| CommStats {
        bytes_sent: c.bytes_received,
        bytes_received: c.bytes_sent,
        messages_sent: c.messages_received,
        messages_received: c.messages_sent,
        rounds: c.rounds,
    };
    let (net, mem) = (median(&online), median(&local));
    let mut report = Report::new(&format!("{} over WebSockets", case.name), 0);
    report.online = online;
    report.comm = vec![comm, mirror(comm)];
    report.setup = Some((setup_time, vec![setup, mirror(setup)]));
    report.peak_memory = hush_server::model::peak_memory().into_iter().collect();
    report.note = format!(
        "in one process (`hush run`): {:.2} ms; the network adds {:+.2} ms ({:+.0}%, {:.0} µs per round)",
        mem.as_secs_f64() * 1e3,
        (net.as_secs_f64() - mem.as_secs_f64()) * 1e3,
        (net.as_secs_f64() / mem.as_secs_f64() - 1.0) * 100.0,
        (net.as_secs_f64() - mem.as_secs_f64()) * 1e6 / comm.rounds.max(1) as f64
    );
    Ok(report)
}
