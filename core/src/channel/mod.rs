//! The transport abstraction every protocol talks to.
//!
//! A [`Channel`] sends and receives whole messages (byte vectors) to and from
//! numbered peers. It is async but names no runtime, and asks for no `Send`
//! bound, so the same protocol code runs over the in-memory [`memory`] hub in
//! tests, over tokio WebSockets natively, and over a browser WebSocket.
//!
//! Every channel keeps [`CommStats`]: bytes and messages in each direction and
//! rounds. Rounds are counted as a Lamport clock of message latencies: each
//! message carries the depth of the longest chain of messages that led to it,
//! so a party's round count is the number of sequential network latencies on
//! its critical path — the figure that decides time over a WAN. Messages sent
//! in the same step to several peers share one round.

pub mod memory;
#[cfg(feature = "std")]
pub mod threaded;

use crate::error::{PartyId, PeerError, Result};
use crate::ring::Ring;
use alloc::vec::Vec;

/// Communication counters of one party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommStats {
    /// Payload bytes this party sent.
    pub bytes_sent: u64,
    /// Payload bytes this party received.
    pub bytes_received: u64,
    /// Messages this party sent.
    pub messages_sent: u64,
    /// Messages this party received.
    pub messages_received: u64,
    /// Sequential message latencies on this party's critical path.
    pub rounds: u64,
}

impl CommStats {
    /// Counters accumulated since `earlier` (for measuring one step).
    pub fn since(&self, earlier: &CommStats) -> CommStats {
        CommStats {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            messages_sent: self.messages_sent - earlier.messages_sent,
            messages_received: self.messages_received - earlier.messages_received,
            rounds: self.rounds - earlier.rounds,
        }
    }
}

/// Lamport clock that turns message stamps into a round count. Transports
/// carry [`RoundClock::stamp_for_send`]'s value with each message and hand it
/// to [`RoundClock::on_receive`] at the other end.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundClock {
    depth: u64,
    sent_depth: u64,
}

impl RoundClock {
    /// The stamp for a message sent now: one latency after what we have seen.
    /// Stamps come from peers, so a hostile one can claim any depth: the
    /// count saturates instead of overflowing (it is a statistic only).
    pub fn stamp_for_send(&mut self) -> u64 {
        let stamp = self.depth.saturating_add(1);
        self.sent_depth = self.sent_depth.max(stamp);
        stamp
    }

    /// Records the stamp of a received message.
    pub fn on_receive(&mut self, stamp: u64) {
        self.depth = self.depth.max(stamp);
    }

    /// Rounds so far: the deepest message sent or received.
    pub fn rounds(&self) -> u64 {
        self.depth.max(self.sent_depth)
    }

    /// Declares that this party has waited for everything it has sent or
    /// seen (as at the end of a barrier): its next message goes one round
    /// after [`RoundClock::rounds`]. Without it, after an exchange of
    /// messages stamped at different depths, the party behind would stamp
    /// its next message at the depth of the one it already sent, and a count
    /// taken from a snapshot there would come out a round short.
    pub fn fence(&mut self) {
        self.depth = self.rounds();
    }
}

/// The counters a transport keeps: [`CommStats`] and the [`RoundClock`]
/// that turns message stamps into rounds. Transports call [`Meter::on_send`]
/// and carry its stamp with the message, then [`Meter::on_receive`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Meter {
    stats: CommStats,
    clock: RoundClock,
}

impl Meter {
    /// Counts a message of `len` bytes going out; returns its round stamp.
    pub fn on_send(&mut self, len: usize) -> u64 {
        let stamp = self.clock.stamp_for_send();
        self.stats.bytes_sent += len as u64;
        self.stats.messages_sent += 1;
        self.stats.rounds = self.clock.rounds();
        stamp
    }

    /// Counts a received message of `len` bytes stamped `stamp`.
    pub fn on_receive(&mut self, stamp: u64, len: usize) {
        self.clock.on_receive(stamp);
        self.stats.bytes_received += len as u64;
        self.stats.messages_received += 1;
        self.stats.rounds = self.clock.rounds();
    }

    /// The counters so far.
    pub fn stats(&self) -> CommStats {
        self.stats
    }

    /// See [`RoundClock::fence`].
    pub fn fence(&mut self) {
        self.clock.fence();
        self.stats.rounds = self.clock.rounds();
    }
}

/// A message transport between numbered parties.
///
/// `recv` waits for the next message from one given peer; messages from one
/// peer arrive in the order they were sent. Implementations must never panic
/// on what a peer sends and must bound the size of what they accept.
#[allow(async_fn_in_trait)] // no `Send` bound on purpose: browser handles are not `Send`
pub trait Channel {
    /// This party's index.
    fn party(&self) -> PartyId;

    /// Number of parties on this channel, this one included.
    fn num_parties(&self) -> usize;

    /// Sends one message to `to`.
    async fn send(&mut self, to: PartyId, msg: Vec<u8>) -> Result<()>;

    /// Receives the next message from `from`.
    async fn recv(&mut self, from: PartyId) -> Result<Vec<u8>>;

    /// Counters so far.
    fn stats(&self) -> CommStats;

    /// Aligns the round count with what this party has waited for
    /// ([`RoundClock::fence`]); for measuring steps that start at a barrier.
    fn fence_rounds(&mut self);

    /// Sends ring elements, little-endian.
    async fn send_ring(&mut self, to: PartyId, values: &[Ring]) -> Result<()> {
        self.send(to, encode_ring(values)).await
    }

    /// Receives exactly `len` ring elements; any other length is a [`PeerError`].
    async fn recv_ring(&mut self, from: PartyId, len: usize) -> Result<Vec<Ring>> {
        let bytes = self.recv(from).await?;
        decode_ring(&bytes, len)
    }
}

/// Ring elements as little-endian bytes.
pub fn encode_ring(values: &[Ring]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses exactly `len` little-endian ring elements.
pub fn decode_ring(bytes: &[u8], len: usize) -> Result<Vec<Ring>> {
    let expected = len
        .checked_mul(8)
        .ok_or(PeerError::Malformed("length overflow"))?;
    if bytes.len() != expected {
        return Err(PeerError::WrongLength {
            expected,
            got: bytes.len(),
        }
        .into());
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn ring_codec_round_trips_and_rejects_wrong_lengths() {
        let v = [0u64, 1, u64::MAX, 0x0102_0304_0506_0708];
        let bytes = encode_ring(&v);
        assert_eq!(decode_ring(&bytes, 4).unwrap(), v);
        for cut in [0, 1, 7, 31] {
            assert!(matches!(
                decode_ring(&bytes[..cut], 4),
                Err(Error::Peer(PeerError::WrongLength { .. }))
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(decode_ring(&long, 4), Err(Error::Peer(_))));
        assert!(matches!(
            decode_ring(&bytes, usize::MAX),
            Err(Error::Peer(_))
        ));
    }

    #[test]
    fn round_clock_counts_sequential_latencies() {
        let mut a = RoundClock::default();
        let mut b = RoundClock::default();
        // Exchange: both send, both receive: one round.
        let sa = a.stamp_for_send();
        let sb = b.stamp_for_send();
        a.on_receive(sb);
        b.on_receive(sa);
        assert_eq!((a.rounds(), b.rounds()), (1, 1));
        // One-way message a -> b: second round for both.
        let s = a.stamp_for_send();
        b.on_receive(s);
        assert_eq!((a.rounds(), b.rounds()), (2, 2));
        // Two messages in the same step still count once.
        let s1 = a.stamp_for_send();
        let s2 = a.stamp_for_send();
        assert_eq!(s1, s2);
    }

    #[test]
    fn a_fence_keeps_a_count_from_a_barrier_exact() {
        // `a` is a round ahead of `b` when they meet at a barrier.
        let barrier = |a: &mut RoundClock, b: &mut RoundClock| {
            let (sa, sb) = (a.stamp_for_send(), b.stamp_for_send());
            a.on_receive(sb);
            b.on_receive(sa);
        };
        let one_way = |a: &mut RoundClock, b: &mut RoundClock| {
            let s = a.stamp_for_send();
            b.on_receive(s);
        };
        for fenced in [false, true] {
            let (mut a, mut b) = (RoundClock::default(), RoundClock::default());
            one_way(&mut b, &mut a);
            a.stamp_for_send();
            barrier(&mut a, &mut b);
            if fenced {
                a.fence();
                b.fence();
            }
            assert_eq!(a.rounds(), b.rounds());
            let before = a.rounds();
            // One message from `a`, after the barrier: one round.
            one_way(&mut a, &mut b);
            let counted = a.rounds().max(b.rounds()) - before;
            assert_eq!(counted, if fenced { 1 } else { 0 }, "fenced: {fenced}");
        }
    }

    #[test]
    fn a_peer_s_stamp_cannot_overflow_the_clock() {
        let mut a = RoundClock::default();
        a.on_receive(u64::MAX);
        assert_eq!(a.stamp_for_send(), u64::MAX);
        assert_eq!(a.rounds(), u64::MAX);
    }
}
