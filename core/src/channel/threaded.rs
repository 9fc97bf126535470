//! Channels between parties on separate OS threads of one process (`std`
//! only), and a harness that runs each party on its own thread.
//!
//! This is how benchmarks model parties on separate machines: the parties
//! compute at the same time, each with its own core, instead of taking turns
//! on one thread as in [`super::memory`]. A `recv` blocks its thread until the
//! message arrives, so each party's future must have a thread to itself.

use super::{Channel, CommStats, Meter};
use crate::error::{ChannelError, PartyId, Result};
use alloc::vec::Vec;
use core::future::Future;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

/// How long a `recv` waits before it reports the peer as gone.
const RECV_TIMEOUT: Duration = Duration::from_secs(120);

/// A message in flight: its round stamp and payload.
type Envelope = (u64, Vec<u8>);
type Outbox = Option<Sender<Envelope>>;
type Inbox = Option<Receiver<Envelope>>;

/// One party's end of a set of thread channels.
pub struct ThreadChannel {
    id: PartyId,
    n: usize,
    senders: Vec<Outbox>,
    receivers: Vec<Inbox>,
    meter: Meter,
}

impl core::fmt::Debug for ThreadChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadChannel")
            .field("party", &self.id)
            .field("stats", &self.meter.stats())
            .finish()
    }
}

/// Creates `n` connected channels, one per party, to be moved to `n` threads.
pub fn thread_channels(n: usize) -> Vec<ThreadChannel> {
    let mut senders: Vec<Vec<Outbox>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut receivers: Vec<Vec<Inbox>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    for from in 0..n {
        for to in 0..n {
            if from != to {
                let (s, r) = channel();
                senders[from][to] = Some(s);
                receivers[to][from] = Some(r);
            }
        }
    }
    senders
        .into_iter()
        .zip(receivers)
        .enumerate()
        .map(|(id, (senders, receivers))| ThreadChannel {
            id,
            n,
            senders,
            receivers,
            meter: Meter::default(),
        })
        .collect()
}

impl Channel for ThreadChannel {
    fn party(&self) -> PartyId {
        self.id
    }

    fn num_parties(&self) -> usize {
        self.n
    }

    async fn send(&mut self, to: PartyId, msg: Vec<u8>) -> Result<()> {
        let sender = self
            .senders
            .get(to)
            .and_then(Option::as_ref)
            .ok_or(ChannelError::NoSuchPeer(to))?;
        let stamp = self.meter.on_send(msg.len());
        sender
            .send((stamp, msg))
            .map_err(|_| ChannelError::Closed { peer: to })?;
        Ok(())
    }

    async fn recv(&mut self, from: PartyId) -> Result<Vec<u8>> {
        let receiver = self
            .receivers
            .get(from)
            .and_then(Option::as_ref)
            .ok_or(ChannelError::NoSuchPeer(from))?;
        let (stamp, msg) = receiver.recv_timeout(RECV_TIMEOUT).map_err(|e| match e {
            RecvTimeoutError::Disconnected => ChannelError::Closed { peer: from },
            RecvTimeoutError::Timeout => ChannelError::Io(alloc::format!(
                "no message from party {from} in {RECV_TIMEOUT:?}"
            )),
        })?;
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

/// Drives a future whose waits all block the thread (as [`ThreadChannel`]'s do).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = core::pin::pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Runs one party per thread: party `i` gets its channel and `inputs[i]`.
/// Returns the results in party order.
pub fn run_parties_threaded<I, T, F, Fut>(inputs: Vec<I>, party: F) -> Vec<Result<T>>
where
    I: Send,
    T: Send,
    F: Fn(ThreadChannel, I) -> Fut + Sync,
    Fut: Future<Output = Result<T>>,
{
    let channels = thread_channels(inputs.len());
    let party = &party;
    std::thread::scope(|scope| {
        let handles: Vec<_> = channels
            .into_iter()
            .zip(inputs)
            .map(|(ch, input)| scope.spawn(move || block_on(party(ch, input))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ChannelError::Io("a party's thread panicked".into()).into())
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use alloc::vec;

    #[test]
    fn parties_on_threads_exchange_and_count() {
        let out = run_parties_threaded(vec![(); 3], |mut ch, ()| async move {
            let me = ch.party();
            for p in (0..3).filter(|&p| p != me) {
                ch.send_ring(p, &[me as u64; 2]).await?;
            }
            let mut sum = 0;
            for p in (0..3).filter(|&p| p != me) {
                sum += ch.recv_ring(p, 2).await?.iter().sum::<u64>();
            }
            Ok((sum, ch.stats()))
        });
        for (i, r) in out.into_iter().enumerate() {
            let (sum, stats) = r.unwrap();
            assert_eq!(sum, 2 * (3 - i as u64));
            assert_eq!((stats.bytes_sent, stats.rounds), (32, 1));
        }
    }

    #[test]
    fn a_finished_peer_closes_the_channel() {
        let out = run_parties_threaded(vec![(); 2], |mut ch, ()| async move {
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
}
