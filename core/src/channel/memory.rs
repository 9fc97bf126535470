//! In-memory channels for N parties in one thread, and the harness that runs
//! the parties' futures concurrently.
//!
//! [`run_parties`] polls every party's future in turn until all are done. A
//! party that waits for a message that has not arrived yields; when a whole
//! sweep makes no progress every waiting party gets
//! [`ChannelError::Deadlock`], and a party that waits on a peer whose future
//! has already ended gets [`ChannelError::Closed`], so a protocol bug fails a
//! test instead of hanging it.

use super::{Channel, CommStats, Meter};
use crate::error::{ChannelError, Error, PartyId, Result};
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

struct Hub {
    n: usize,
    /// Queue of (round stamp, payload) per (from, to) pair, index `from * n + to`.
    queues: Vec<VecDeque<(u64, Vec<u8>)>>,
    finished: Vec<bool>,
    /// Bumped on every send and receive: a sweep without change is a deadlock.
    activity: u64,
}

/// One party's end of an in-memory hub.
pub struct MemoryChannel {
    id: PartyId,
    hub: Rc<RefCell<Hub>>,
    meter: Meter,
}

impl core::fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryChannel")
            .field("party", &self.id)
            .field("stats", &self.meter.stats())
            .finish()
    }
}

/// Creates `n` connected in-memory channels, one per party.
pub fn memory_channels(n: usize) -> Vec<MemoryChannel> {
    let hub = Rc::new(RefCell::new(Hub {
        n,
        queues: (0..n * n).map(|_| VecDeque::new()).collect(),
        finished: vec![false; n],
        activity: 0,
    }));
    (0..n)
        .map(|id| MemoryChannel {
            id,
            hub: hub.clone(),
            meter: Meter::default(),
        })
        .collect()
}

impl MemoryChannel {
    fn check_peer(&self, peer: PartyId) -> Result<()> {
        if peer >= self.hub.borrow().n || peer == self.id {
            return Err(ChannelError::NoSuchPeer(peer).into());
        }
        Ok(())
    }

    fn mark_finished(&self) {
        let mut hub = self.hub.borrow_mut();
        hub.finished[self.id] = true;
        hub.activity += 1;
    }

    fn activity(&self) -> u64 {
        self.hub.borrow().activity
    }
}

impl Channel for MemoryChannel {
    fn party(&self) -> PartyId {
        self.id
    }

    fn num_parties(&self) -> usize {
        self.hub.borrow().n
    }

    async fn send(&mut self, to: PartyId, msg: Vec<u8>) -> Result<()> {
        self.check_peer(to)?;
        let stamp = self.meter.on_send(msg.len());
        let mut hub = self.hub.borrow_mut();
        let n = hub.n;
        hub.queues[self.id * n + to].push_back((stamp, msg));
        hub.activity += 1;
        Ok(())
    }

    async fn recv(&mut self, from: PartyId) -> Result<Vec<u8>> {
        self.check_peer(from)?;
        let (stamp, msg) = poll_fn(|_cx| {
            let mut hub = self.hub.borrow_mut();
            let n = hub.n;
            if let Some(m) = hub.queues[from * n + self.id].pop_front() {
                hub.activity += 1;
                Poll::Ready(Ok(m))
            } else if hub.finished[from] {
                Poll::Ready(Err(Error::from(ChannelError::Closed { peer: from })))
            } else {
                Poll::Pending
            }
        })
        .await?;
        self.meter.on_receive(stamp, msg.len());
        Ok(msg)
    }

    fn stats(&self) -> CommStats {
        self.meter.stats()
    }

    fn fence_rounds(&mut self) {
        self.meter.fence();
    }
}

/// What [`run_parties`] returns: each party's result, in party order.
pub type PartyResults<T> = Vec<Result<T>>;

/// Runs `n` parties concurrently on the current thread, each with its end of
/// a fresh in-memory hub, and returns their results in party order.
///
/// `party(channel)` builds party `channel.party()`'s future. The futures must
/// only wait on their channels (the harness polls with a no-op waker).
pub fn run_parties<T, F, Fut>(n: usize, mut party: F) -> PartyResults<T>
where
    F: FnMut(MemoryChannel) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let channels = memory_channels(n);
    let watchers: Vec<MemoryChannel> = channels
        .iter()
        .map(|c| MemoryChannel {
            id: c.id,
            hub: c.hub.clone(),
            meter: Meter::default(),
        })
        .collect();
    let mut futures: Vec<Option<Pin<alloc::boxed::Box<Fut>>>> = channels
        .into_iter()
        .map(|c| Some(alloc::boxed::Box::pin(party(c))))
        .collect();
    let mut results: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let before = watchers.first().map_or(0, MemoryChannel::activity);
        let mut pending = 0;
        for (i, slot) in futures.iter_mut().enumerate() {
            let Some(fut) = slot.as_mut() else { continue };
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    results[i] = Some(r);
                    *slot = None;
                    watchers[i].mark_finished();
                }
                Poll::Pending => pending += 1,
            }
        }
        if pending == 0 {
            break;
        }
        let after = watchers.first().map_or(0, MemoryChannel::activity);
        if before == after {
            for (i, slot) in futures.iter_mut().enumerate() {
                if slot.take().is_some() {
                    results[i] = Some(Err(ChannelError::Deadlock.into()));
                }
            }
            break;
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(ChannelError::Deadlock.into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PeerError;

    #[test]
    fn messages_flow_and_are_counted() {
        let out = run_parties(3, |mut ch| async move {
            let me = ch.party();
            for p in 0..3 {
                if p != me {
                    ch.send_ring(p, &[me as u64; 4]).await?;
                }
            }
            let mut sum = 0;
            for p in 0..3 {
                if p != me {
                    sum += ch.recv_ring(p, 4).await?.iter().sum::<u64>();
                }
            }
            Ok((sum, ch.stats()))
        });
        for (i, r) in out.into_iter().enumerate() {
            let (sum, stats) = r.unwrap();
            assert_eq!(sum, 4 * (3 - i as u64));
            assert_eq!(stats.bytes_sent, 64);
            assert_eq!(stats.bytes_received, 64);
            assert_eq!(stats.rounds, 1);
        }
    }

    #[test]
    fn waiting_for_a_silent_peer_is_a_deadlock_error() {
        let out = run_parties(2, |mut ch| async move { ch.recv(1 - ch.party()).await });
        for r in out {
            assert_eq!(r, Err(Error::Channel(ChannelError::Deadlock)));
        }
    }

    #[test]
    fn a_finished_peer_closes_the_channel() {
        let out = run_parties(2, |mut ch| async move {
            if ch.party() == 0 {
                return Ok(());
            }
            ch.recv(0).await.map(|_| ())
        });
        assert!(out[0].is_ok());
        assert_eq!(
            out[1],
            Err(Error::Channel(ChannelError::Closed { peer: 0 }))
        );
    }

    #[test]
    fn wrong_lengths_and_bad_peers_are_typed_errors() {
        let out = run_parties(2, |mut ch| async move {
            if ch.party() == 0 {
                ch.send(1, alloc::vec![1, 2, 3]).await?;
                assert!(ch.send(0, alloc::vec![]).await.is_err());
                assert!(ch.send(7, alloc::vec![]).await.is_err());
                Ok(())
            } else {
                ch.recv_ring(0, 1).await.map(|_| ())
            }
        });
        assert!(out[0].is_ok());
        assert_eq!(
            out[1],
            Err(Error::Peer(PeerError::WrongLength {
                expected: 8,
                got: 3
            }))
        );
    }
}
