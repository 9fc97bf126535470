//! Where the two parties of a benchmark run: both in this process (a thread
//! each, over in-memory channels), or one here and the other in another
//! `hush bench` process, over a WebSocket (`--listen` / `--peer`), so that
//! the same workloads can be measured between processes, over loopback or
//! an emulated WAN (bench/net.sh).
//!
//! Between processes, the dealer's seeds are drawn by party 1 and party 0's
//! is sent to it over the benchmark's own connection: an **insecure
//! benchmark dealer** (party 1 could compute every correlation), fine for
//! timing and never used outside `hush bench`.

use hush_core::Result as CoreResult;
use hush_core::backend::CpuBackend;
use hush_core::channel::threaded::run_parties_threaded;
use hush_core::channel::{Channel, CommStats};
use hush_core::error::{ChannelError, Error};
use hush_core::preprocessing::seeded::{SeededDealer, SeededPreprocessing, in_process};
use hush_core::prg::Seed;
use hush_core::session::{FrameTransport, FramedChannel, Limits};
use hush_server::model::BoxError;
use hush_server::net;
use hush_server::net::connect::Connect;
use hush_server::net::ws::{WsTransport, tungstenite_config};
use std::time::{Duration, Instant};

/// A party's seeded preprocessing (the last party's owns the dealer).
pub(crate) type Prep = SeededPreprocessing<Option<SeededDealer<CpuBackend>>>;

/// One party's part of a measured run, generic over the channel so that the
/// same code runs on threads and between processes.
#[allow(async_fn_in_trait)]
pub(crate) trait Job<P> {
    type Output: Send;
    async fn run<C: Channel>(&self, ch: C, prep: P) -> CoreResult<(Self::Output, C, P)>;
}

/// The other process of a two-process benchmark.
pub(crate) struct Remote {
    pub id: usize,
    rt: tokio::runtime::Runtime,
    channel: Option<FramedChannel<WsTransport>>,
}

/// Where the parties run.
pub(crate) enum Parties {
    /// Both in this process, a thread each.
    Local,
    /// This process is party `id`; the other is at the end of a WebSocket.
    Remote(Box<Remote>),
}

/// How long to keep trying to reach a peer that is still starting.
const PEER_WAIT: Duration = Duration::from_secs(60);
/// How long a silent peer is waited for (large models take minutes).
const PEER_IDLE: Duration = Duration::from_secs(1800);

impl Parties {
    /// Party 1: waits on `addr` for party 0.
    pub fn listen(addr: &str) -> Result<Parties, BoxError> {
        let rt = net::runtime()?;
        let transport = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            // On stdout, as `hush serve` and `hush dealer` announce themselves
            // (party 1 prints nothing else there).
            println!("bench party 1 listening on ws://{}", listener.local_addr()?);
            let (stream, from) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let ws = tokio_tungstenite::accept_async_with_config(
                stream,
                Some(tungstenite_config(&Limits::default())),
            )
            .await?;
            eprintln!("bench party 0 connected from {from}");
            Ok::<_, BoxError>(WsTransport::from_tungstenite(ws, Some(PEER_IDLE)))
        })?;
        let channel = FramedChannel::new(transport, 1, Limits::default())?;
        Ok(Parties::Remote(Box::new(Remote {
            id: 1,
            rt,
            channel: Some(channel),
        })))
    }

    /// Party 0: connects to party 1 at `url` (retrying while it starts).
    pub fn connect(url: &str) -> Result<Parties, BoxError> {
        let rt = net::runtime()?;
        let transport = rt.block_on(async {
            let connect = Connect::new(None, Some(PEER_IDLE))?;
            let start = Instant::now();
            loop {
                match connect.open(url).await {
                    Ok(t) => return Ok::<_, BoxError>(t),
                    Err(e) if start.elapsed() > PEER_WAIT => return Err(e.into()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })?;
        let channel = FramedChannel::new(transport, 0, Limits::default())?;
        Ok(Parties::Remote(Box::new(Remote {
            id: 0,
            rt,
            channel: Some(channel),
        })))
    }

    /// This process's party, or `None` when both run here.
    pub fn me(&self) -> Option<usize> {
        match self {
            Parties::Local => None,
            Parties::Remote(r) => Some(r.id),
        }
    }

    /// Whether this process prints the reports (party 1 of a pair does not).
    pub fn reports(&self) -> bool {
        self.me() != Some(1)
    }

    /// Fresh preprocessing for the parties run here (with fresh seeds).
    pub fn preps(&mut self) -> Result<Vec<Prep>, BoxError> {
        match self {
            Parties::Local => Ok(in_process(
                &SeededDealer::<CpuBackend>::random_seeds(2)?,
                CpuBackend,
            )),
            Parties::Remote(r) => {
                let ch = r.channel.as_mut().ok_or("benchmark connection lost")?;
                if r.id == 1 {
                    let seeds = SeededDealer::<CpuBackend>::random_seeds(2)?;
                    r.rt.block_on(ch.send(0, seeds[0].expose_bytes().to_vec()))?;
                    Ok(in_process(&seeds, CpuBackend).into_iter().skip(1).collect())
                } else {
                    let bytes = r.rt.block_on(ch.recv(1))?;
                    let seed: [u8; 32] = bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| "party 1 sent a malformed seed")?;
                    Ok(vec![SeededPreprocessing::new(
                        0,
                        2,
                        &Seed::from_bytes(seed),
                        None,
                    )])
                }
            }
        }
    }

    /// Runs `job` for the parties run here, each with its preprocessing
    /// from `preps` (one per party here, in party order).
    pub fn run<P: Send, J: Job<P> + Sync>(
        &mut self,
        preps: Vec<P>,
        job: &J,
    ) -> Result<Vec<(J::Output, P)>, BoxError> {
        match self {
            Parties::Local => run_parties_threaded(preps, |ch, prep| async move {
                let (out, _, prep) = job.run(ch, prep).await?;
                Ok((out, prep))
            })
            .into_iter()
            .map(|r| r.map_err(BoxError::from))
            .collect(),
            Parties::Remote(r) => {
                let prep = preps.into_iter().next().ok_or("no preprocessing")?;
                let ch = r.channel.take().ok_or("benchmark connection lost")?;
                let (out, ch, prep) = r.rt.block_on(job.run(ch, prep))?;
                r.channel = Some(ch);
                Ok(vec![(out, prep)])
            }
        }
    }

    /// Party 0 learns party 1's numbers (`mine` from each side); locally,
    /// the numbers are returned as given.
    pub fn gather(&mut self, mine: Vec<Vec<u64>>) -> Result<Vec<Vec<u64>>, BoxError> {
        let Parties::Remote(r) = self else {
            return Ok(mine);
        };
        let ch = r.channel.as_mut().ok_or("benchmark connection lost")?;
        let own = mine.into_iter().next().unwrap_or_default();
        if r.id == 1 {
            r.rt.block_on(ch.send_ring(0, &own))?;
            Ok(vec![own])
        } else {
            let other = r.rt.block_on(ch.recv_ring(1, own.len()))?;
            Ok(vec![own, other])
        }
    }

    /// Ends a two-process run: party 1 waits until party 0 has everything
    /// (so it does not exit with a message still queued), then both close.
    pub fn finish(&mut self) -> Result<(), BoxError> {
        let Parties::Remote(r) = self else {
            return Ok(());
        };
        let Some(mut ch) = r.channel.take() else {
            return Ok(());
        };
        r.rt.block_on(async {
            if r.id == 0 {
                ch.send(1, b"done".to_vec()).await?;
            } else {
                ch.recv(0).await?;
            }
            FrameTransport::close(ch.transport_mut()).await
        })?;
        Ok(())
    }

    /// Checks that both processes run the same workloads (party 0 sends
    /// its list, party 1 compares).
    pub fn agree(&mut self, what: &str) -> Result<(), BoxError> {
        let Parties::Remote(r) = self else {
            return Ok(());
        };
        let ch = r.channel.as_mut().ok_or("benchmark connection lost")?;
        if r.id == 0 {
            r.rt.block_on(ch.send(1, what.as_bytes().to_vec()))?;
            let ok = r.rt.block_on(ch.recv(1))?;
            if ok != b"ok" {
                return Err(String::from_utf8_lossy(&ok).into_owned().into());
            }
        } else {
            let theirs = r.rt.block_on(ch.recv(0))?;
            let verdict = if theirs == what.as_bytes() {
                b"ok".to_vec()
            } else {
                format!(
                    "the two bench processes disagree on the workloads: party 0 runs [{}], party 1 runs [{what}]",
                    String::from_utf8_lossy(&theirs)
                )
                .into_bytes()
            };
            let ok = verdict == b"ok";
            r.rt.block_on(ch.send(0, verdict.clone()))?;
            if !ok {
                // Deliver the verdict before this process exits.
                r.rt.block_on(FrameTransport::close(ch.transport_mut()))?;
                return Err(String::from_utf8_lossy(&verdict).into_owned().into());
            }
        }
        Ok(())
    }
}

/// Communication counters as numbers to exchange.
pub(crate) fn stats_to_vec(c: &CommStats) -> [u64; 5] {
    [
        c.bytes_sent,
        c.bytes_received,
        c.messages_sent,
        c.messages_received,
        c.rounds,
    ]
}

/// The inverse of [`stats_to_vec`].
pub(crate) fn stats_from(v: &[u64]) -> CoreResult<CommStats> {
    match v {
        [a, b, c, d, e, ..] => Ok(CommStats {
            bytes_sent: *a,
            bytes_received: *b,
            messages_sent: *c,
            messages_received: *d,
            rounds: *e,
        }),
        _ => Err(Error::Channel(ChannelError::Io("short statistics".into()))),
    }
}
