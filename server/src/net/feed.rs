//! Where the server's dealer corrections come from: a `hush dealer` over a
//! WebSocket, or — in the insecure development mode only — a generator in
//! this process.

use super::connect::Connect;
use super::generator::Generator;
use super::ws::WsTransport;
use hush_core::Ring;
use hush_core::channel::Channel;
use hush_core::error::{Error, ErrorCode, PeerError, Result, SessionError};
use hush_core::preprocessing::CorrelationRequest;
use hush_core::preprocessing::seeded::CorrectionSource;
use hush_core::preprocessing::wire::decode_correction;
use hush_core::prg::Seed;
use hush_core::session::{Control, DealerTicket, FramedChannel};

/// The dealer's party index on the server–dealer channel.
const DEALER: usize = 1;

/// The server's source of corrections for one session.
#[derive(Debug)]
pub enum DealerFeed {
    /// A dealer service.
    Remote {
        /// The link.
        channel: Box<FramedChannel<WsTransport>>,
    },
    /// INSECURE: the dealer runs inside the server.
    InsecureLocal(Generator),
}

/// A dealer session as the server sees it.
#[derive(Debug)]
pub struct OpenedSession {
    /// The feed of corrections.
    pub feed: DealerFeed,
    /// What the client is told about its seed.
    pub ticket: DealerTicket,
    /// The server's seed.
    pub server_seed: Seed,
}

/// A failure of the dealer link as a session error. The dealer's refusals
/// keep their code (the server tells a busy dealer from an unreachable one)
/// and their words; the rest is `DEALER`. The dealer's address is not in the
/// words: they may reach the client, and the address may be internal (the
/// server logs it).
fn dealer_error(e: &Error) -> Error {
    match e {
        Error::Session(s)
            if matches!(
                s.code,
                ErrorCode::Dealer | ErrorCode::Busy | ErrorCode::BadRequest
            ) =>
        {
            e.clone()
        }
        _ => SessionError::new(ErrorCode::Dealer, format!("dealer: {}", e.message())).into(),
    }
}

impl DealerFeed {
    /// Opens a session at the dealer `url` for a client whose key hashes to
    /// `key_hash`, with the session's encoded requests; the client will reach
    /// the dealer at `public_url`.
    pub async fn open_remote(
        connect: &Connect,
        url: &str,
        public_url: &str,
        key_hash: [u8; 32],
        setup: Vec<Vec<u8>>,
        inference: Vec<Vec<u8>>,
    ) -> Result<OpenedSession> {
        let base = url.trim_end_matches('/');
        let run = async {
            let transport = connect.open(&format!("{base}/v1/session")).await?;
            let mut channel = FramedChannel::new(transport, 0, connect.limits())?;
            channel
                .send_control(&Control::DealerOpen {
                    software: super::software("hush-serve"),
                    key_hash,
                    setup,
                    inference,
                })
                .await?;
            match channel.recv_control().await? {
                Control::DealerOpened {
                    session,
                    server_seed,
                } => Ok((channel, session, server_seed)),
                _ => Err(Error::from(PeerError::Unexpected(
                    "the dealer did not open the session",
                ))),
            }
        };
        let (channel, session, server_seed) = run.await.map_err(|e| dealer_error(&e))?;
        Ok(OpenedSession {
            feed: DealerFeed::Remote {
                channel: Box::new(channel),
            },
            ticket: DealerTicket::Dealer {
                url: public_url.to_string(),
                session,
            },
            server_seed,
        })
    }

    /// Asks the dealer to prepare `n` more inferences.
    pub async fn credit(&mut self, n: u32) -> Result<()> {
        match self {
            DealerFeed::Remote { channel } => channel
                .send_control(&Control::DealerCredit { inferences: n })
                .await
                .map_err(|e| dealer_error(&e)),
            DealerFeed::InsecureLocal(g) => g.credit(n),
        }
    }
}

impl CorrectionSource for DealerFeed {
    async fn corrections(
        &mut self,
        req: &CorrelationRequest,
        lens: &[usize],
    ) -> Result<Vec<Vec<Ring>>> {
        let bytes = match self {
            DealerFeed::Remote { channel } => channel.recv(DEALER).await,
            DealerFeed::InsecureLocal(g) => g.next().await,
        };
        bytes
            .and_then(|b| decode_correction(&b, req, lens))
            .map_err(|e| dealer_error(&e))
    }
}
