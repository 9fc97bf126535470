//! The client's side of a session (party P0), shared by the native `hush
//! infer` and the browser package.

use super::frame::Limits;
use super::{Control, DealerTicket, FrameTransport, FramedChannel, ModelInfo, SessionId};
use crate::backend::Backend;
use crate::channel::CommStats;
use crate::error::{Error, ErrorCode, PeerError, Result, SessionError};
use crate::plan::Plan;
use crate::plan::secure::{self, Progress, Roles, SessionWeights};
use crate::preprocessing::seeded::{NoCorrections, SeededPreprocessing};
use crate::prg::Seed;
use crate::protocol::Party;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ndarray::ArrayD;

/// The roles of every session: the client is P0, the server (model owner
/// and receiver of the dealer's corrections) is P1.
pub const ROLES: Roles = Roles {
    owner: 1,
    client: 0,
};

/// Fetches the client's seed from the dealer.
#[allow(async_fn_in_trait)]
pub trait SeedSource {
    /// Claims the seed of `session` from the dealer at `url`, proving
    /// knowledge of `key` (whose hash the server relayed).
    async fn claim(&mut self, url: &str, session: &SessionId, key: &Seed) -> Result<Seed>;
}

/// The seed claim itself, over a transport connected to the dealer's seed
/// endpoint ([`super::seed_url`]): one [`Control::SeedClaim`], one
/// [`Control::SeedGrant`].
pub async fn claim_seed<T: FrameTransport>(
    transport: T,
    session: &SessionId,
    key: &Seed,
    limits: Limits,
) -> Result<Seed> {
    let mut ch = FramedChannel::new(transport, 0, limits)?;
    ch.send_control(&Control::SeedClaim {
        session: *session,
        key: key.clone(),
    })
    .await?;
    match ch.recv_control().await? {
        Control::SeedGrant { seed } => Ok(seed),
        _ => Err(PeerError::Unexpected("the dealer did not grant a seed").into()),
    }
}

/// Options of [`ClientSession::connect`].
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Refuse a model whose weight commitment differs.
    pub expect_model: Option<[u8; 32]>,
    /// Access token for servers that ask for one.
    pub token: Option<String>,
    /// Client software name, for the server's logs.
    pub software: String,
    /// Frame and message limits.
    pub limits: Limits,
}

impl core::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("expect_model", &self.expect_model.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("software", &self.software)
            .finish()
    }
}

type ClientParty<T, B> = Party<FramedChannel<T>, SeededPreprocessing<NoCorrections>, B>;

/// A connected client: the model is known, the weights are set up, and
/// [`ClientSession::run`] evaluates it on private inputs, any number of times.
pub struct ClientSession<T, B> {
    party: ClientParty<T, B>,
    plan: Plan,
    info: ModelInfo,
    insecure_dealer: bool,
    weights: SessionWeights,
    setup: CommStats,
}

impl<T, B> core::fmt::Debug for ClientSession<T, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("model", &self.info.name)
            .field("insecure_dealer", &self.insecure_dealer)
            .finish_non_exhaustive()
    }
}

impl<T: FrameTransport, B: Backend> ClientSession<T, B> {
    /// Runs the handshake over `transport` (connected to a server), fetches
    /// the seed from the dealer through `seeds`, and sets up the weights.
    pub async fn connect<S: SeedSource>(
        transport: T,
        backend: B,
        options: &ClientOptions,
        seeds: &mut S,
    ) -> Result<Self> {
        let mut ch = FramedChannel::new(transport, ROLES.client, options.limits)?;
        let key = Seed::random()?;
        ch.send_control(&Control::ClientHello {
            software: options.software.clone(),
            key_hash: super::key_hash(&key),
            token: options.token.clone(),
        })
        .await?;
        let (plan, ticket) = match ch.recv_control().await? {
            Control::ServerHello { plan, dealer, .. } => (plan, dealer),
            _ => return Err(PeerError::Unexpected("the server did not say hello").into()),
        };
        let plan = match Plan::from_bytes(&plan) {
            Ok(p) => p,
            Err(e) => {
                ch.send_error(ErrorCode::Protocol, "the plan does not parse")
                    .await;
                return Err(e);
            }
        };
        let info = ModelInfo::of(&plan);
        if let Some(expected) = options.expect_model
            && expected != plan.commitment
        {
            let msg = format!(
                "the server's model is {}, not the expected {}",
                info.commitment_string(),
                super::commitment_string(&expected)
            );
            ch.send_error(ErrorCode::ModelMismatch, "the client expects another model")
                .await;
            return Err(SessionError::new(ErrorCode::ModelMismatch, msg).into());
        }
        let (seed, insecure_dealer) = match ticket {
            DealerTicket::Dealer { url, session } => {
                match seeds.claim(&url, &session, &key).await {
                    Ok(s) => (s, false),
                    Err(e) => {
                        ch.send_error(ErrorCode::Dealer, "the client could not reach the dealer")
                            .await;
                        return Err(SessionError::new(
                            ErrorCode::Dealer,
                            format!("the dealer at {url} did not give the seed: {e}"),
                        )
                        .into());
                    }
                }
            }
            DealerTicket::InsecureLocal { seed } => (seed, true),
        };
        let config = super::config_for(&plan)?;
        let prep = SeededPreprocessing::new(ROLES.client, 2, &seed, NoCorrections);
        let mut party = Party::new(ch, prep, backend, config).await?;
        let before = party.stats();
        let weights = secure::setup(&mut party, &plan, ROLES, None).await?;
        let setup = party.stats().since(&before);
        Ok(ClientSession {
            party,
            plan,
            info,
            insecure_dealer,
            weights,
            setup,
        })
    }

    /// The model as the server described it.
    pub fn model(&self) -> &ModelInfo {
        &self.info
    }

    /// The public plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether the server runs the insecure local dealer (it could learn
    /// this client's inputs).
    pub fn insecure_dealer(&self) -> bool {
        self.insecure_dealer
    }

    /// Traffic of the once-per-session weight setup.
    pub fn setup_stats(&self) -> CommStats {
        self.setup
    }

    /// Traffic of the session so far.
    pub fn stats(&self) -> CommStats {
        self.party.stats()
    }

    /// Evaluates the model on `inputs` (one per model input, of the model's
    /// shapes), calling `progress` after every node. Returns the outputs.
    pub async fn run(
        &mut self,
        inputs: &[ArrayD<f64>],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<ArrayD<f64>>> {
        if inputs.len() != self.info.inputs.len() {
            return Err(Error::Shape(format!(
                "the model takes {} inputs, got {}",
                self.info.inputs.len(),
                inputs.len()
            )));
        }
        for (x, want) in inputs.iter().zip(&self.info.inputs) {
            if x.shape() != want.shape.as_slice() {
                return Err(Error::Shape(format!(
                    "input {} has shape {:?}, the model takes {:?}",
                    want.name,
                    x.shape(),
                    want.shape
                )));
            }
            if x.iter().any(|v| !v.is_finite()) {
                return Err(Error::Encoding(format!(
                    "input {} holds a value that is not finite",
                    want.name
                )));
            }
        }
        self.party
            .channel_mut()
            .send_control(&Control::Infer)
            .await?;
        let out = secure::evaluate_with_progress(
            &mut self.party,
            &self.plan,
            ROLES,
            &self.weights,
            Some(inputs),
            progress,
        )
        .await?;
        out.ok_or_else(|| Error::Usage("the client received no output".into()))
    }

    /// Ends the session politely: says goodbye and closes the connection
    /// once everything queued has been sent.
    pub async fn close(mut self) -> Result<()> {
        let ch = self.party.channel_mut();
        ch.send_control(&Control::Bye).await?;
        ch.transport_mut().close().await
    }
}
