//! The protocols, run by one party at a time.
//!
//! A [`Party`] bundles what one party needs: its [`Channel`] to the others,
//! its [`Preprocessing`], a [`Backend`] for local products, and the public
//! [`Config`]. Every party calls the same methods in the same order with
//! shares of the same public shapes; the methods talk to the other parties as
//! needed. Methods on fixed-point values truncate after every product.
//!
//! | method | rounds |
//! | --- | --- |
//! | [`Party::add`], [`Party::sub`], [`Party::neg`], [`Party::add_public`], [`Party::mul_public_int`], [`Party::sum`] | 0 |
//! | [`Party::input`] | 0 (after the one setup round of [`Party::new`]) |
//! | [`Party::open`], [`Party::open_many`], [`Party::reveal_to`] | 1 |
//! | [`Party::bilinear_ring`] (mul, matmul, conv2d before truncation), [`Party::square_ring`] | 1 |
//! | [`Party::truncate`]: local (SecureML) / dealer-assisted | 0 / 1 |
//! | [`Party::div_public`], [`Party::mean`], [`Party::avg_pool2d`] | 1 |
//! | [`Party::mul`], [`Party::matmul`], [`Party::conv2d`], [`Party::square`] | 1 + truncation |
//! | [`Party::fix_operand`], [`Party::fix_operands_of`] (several owners at once; once per session) | 1 |
//! | [`Party::prepare_fixed`] (per query, before the input: offline) | 0 |
//! | [`Party::bilinear_fixed_ring`] (per query; only the activation is sent, to the owner) | 1 |
//! | [`Party::bilinear_fixed`], [`Party::bilinear_fixed_prepared`] (the same with the truncation fused in) | 2 |

mod approx;
mod beaver;
mod binary;
mod compare;
mod exp;
mod fixed;
mod linear;
mod one_hot;
pub(crate) mod open;
mod pool;
mod powers;
#[cfg(all(test, feature = "std"))]
pub(crate) mod testing;
mod truncation;

pub use approx::ApproxConfig;
pub use fixed::{FixedOperand, PreparedFixed};
pub use linear::AvgPool2dParams;
pub use pool::MaxPool2dParams;

use crate::backend::Backend;
use crate::channel::{Channel, CommStats};
use crate::error::{PartyId, Result};
use crate::preprocessing::Preprocessing;
use crate::prg::{Prg, Seed};
use crate::ring::FixedPoint;
use alloc::vec::Vec;
use core::fmt;

/// How products are brought back to scale `2^f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TruncationMode {
    /// Dealer-assisted, one round, exact up to one unit in the last place for
    /// every `|x| < 2^61`: no catastrophic failure at any depth. The default.
    #[default]
    Dealer,
    /// SecureML local truncation: no communication, two parties only, but
    /// each element fails catastrophically with probability about
    /// `|x| / 2^63` (an error of about `2^(64-f)`).
    Local,
}

/// Public settings every party must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Config {
    /// Fixed-point encoding of real values.
    pub fixed_point: FixedPoint,
    /// Truncation after products.
    pub truncation: TruncationMode,
    /// Ranges and degrees of the non-linear approximations.
    pub approx: ApproxConfig,
}

/// One party's view of a running computation.
pub struct Party<C, P, B> {
    channel: C,
    prep: P,
    backend: B,
    config: Config,
    /// PRGs shared pairwise with each other party, for sharing inputs without
    /// sending them (index = peer; `None` for this party).
    pair_prgs: Vec<Option<Prg>>,
    /// Reusable message buffers.
    scratch: crate::elementwise::Scratch,
}

impl<C, P, B> fmt::Debug for Party<C, P, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Party")
            .field("config", &self.config)
            .field("peers", &self.pair_prgs.len())
            .finish_non_exhaustive()
    }
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Sets up a party: agrees on a pairwise seed with every other party (one
    /// round; the lower-numbered party of each pair draws it).
    pub async fn new(mut channel: C, prep: P, backend: B, config: Config) -> Result<Self> {
        let (me, n) = (channel.party(), channel.num_parties());
        let mut seeds: Vec<Option<Seed>> = (0..n).map(|_| None).collect();
        for (peer, slot) in seeds.iter_mut().enumerate().skip(me + 1) {
            let s = Seed::random()?;
            channel.send(peer, s.expose_bytes().to_vec()).await?;
            *slot = Some(s);
        }
        for (peer, slot) in seeds.iter_mut().enumerate().take(me) {
            let bytes = channel.recv(peer).await?;
            let arr: [u8; 32] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| crate::error::PeerError::WrongLength {
                        expected: 32,
                        got: bytes.len(),
                    })?;
            *slot = Some(Seed::from_bytes(arr));
        }
        Ok(Party {
            channel,
            prep,
            backend,
            config,
            pair_prgs: seeds.iter().map(|s| s.as_ref().map(Prg::new)).collect(),
            scratch: Default::default(),
        })
    }

    /// This party's index.
    pub fn id(&self) -> PartyId {
        self.channel.party()
    }

    /// Number of parties.
    pub fn num_parties(&self) -> usize {
        self.channel.num_parties()
    }

    /// The public configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Communication counters so far.
    pub fn stats(&self) -> CommStats {
        self.channel.stats()
    }

    /// The backend used for local products.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The channel (to send a session's control messages between protocols).
    pub fn channel_mut(&mut self) -> &mut C {
        &mut self.channel
    }

    /// The preprocessing source.
    pub fn preprocessing(&mut self) -> &mut P {
        &mut self.prep
    }

    /// Takes the party apart (to reuse its channel or inspect its preprocessing).
    pub fn into_parts(self) -> (C, P, B) {
        (self.channel, self.prep, self.backend)
    }
}
