//! The dealer's work for one session, on a thread of its own: it expands
//! every party's seed and computes the server's corrections, the weight
//! setup's first, then one inference's worth per credit. Output goes through
//! a queue bounded in messages and in bytes, so generation runs ahead of the
//! online phase (the next inference is prepared while the current one runs)
//! without running away: at most [`ahead_bytes`] wait for the server — two
//! inferences' worth, at most [`AHEAD_BYTES`] — or one message, however
//! large, when the queue is empty.

use hush_core::backend::CpuBackend;
use hush_core::error::{ChannelError, Result};
use hush_core::preprocessing::CorrelationRequest;
use hush_core::preprocessing::seeded::SeededDealer;
use hush_core::preprocessing::wire::encode_correction;
use hush_core::prg::Seed;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::mpsc;

/// Encoded corrections queued ahead of the server, at most.
const AHEAD_MESSAGES: usize = 256;
/// Bytes of encoded corrections queued ahead of the server, at most (one
/// larger message is still queued when it is alone).
pub const AHEAD_BYTES: usize = 256 << 20;

/// The queue's bound for a session whose inference draws at most
/// `inference_elements` ring elements: room for two inferences'
/// corrections (each at most 8 bytes per element), at most [`AHEAD_BYTES`].
pub fn ahead_bytes(inference_elements: u64) -> usize {
    inference_elements
        .saturating_mul(16)
        .min(AHEAD_BYTES as u64) as usize
}

/// Bytes waiting in a session's queue, shared by its generator thread and
/// its connection, and whether the connection is gone.
#[derive(Debug)]
struct Queued {
    limit: usize,
    state: Mutex<(usize, bool)>,
    drained: Condvar,
}

impl Queued {
    fn new(limit: usize) -> Self {
        Queued {
            limit,
            state: Mutex::new((0, false)),
            drained: Condvar::new(),
        }
    }

    /// Waits until `len` more bytes fit (or the queue is empty), then
    /// counts them; false once the connection is gone.
    fn reserve(&self, len: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.1 && s.0 > 0 && s.0.saturating_add(len) > self.limit {
            s = self.drained.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.0 = s.0.saturating_add(len);
        !s.1
    }

    /// Uncounts `len` bytes taken from the queue.
    fn release(&self, len: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = s.0.saturating_sub(len);
        self.drained.notify_all();
    }

    /// Wakes the generator for good: the connection is gone.
    fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.drained.notify_all();
    }
}

/// A running generator.
#[derive(Debug)]
pub struct Generator {
    credits: std::sync::mpsc::Sender<u32>,
    out: mpsc::Receiver<Result<Vec<u8>>>,
    queued: Arc<Queued>,
}

impl Generator {
    /// Starts generating for parties holding `seeds` (client first, server
    /// last): the `setup` requests at once, `inference` per credit, with at
    /// most `ahead` bytes queued ([`ahead_bytes`]).
    pub fn spawn(
        seeds: Vec<Seed>,
        setup: Vec<CorrelationRequest>,
        inference: Vec<CorrelationRequest>,
        ahead: usize,
    ) -> std::io::Result<Generator> {
        let (credit_tx, credit_rx) = std::sync::mpsc::channel::<u32>();
        let (out_tx, out_rx) = mpsc::channel(AHEAD_MESSAGES);
        let queued = Arc::new(Queued::new(ahead));
        let gen_queued = Arc::clone(&queued);
        std::thread::Builder::new()
            .name("hush-dealer-gen".into())
            .spawn(move || {
                let mut dealer = SeededDealer::new(&seeds, CpuBackend);
                drop(seeds);
                let mut serve = |req: &CorrelationRequest| -> bool {
                    let msg = dealer.generate(req).map(|c| encode_correction(req, &c));
                    let failed = msg.is_err();
                    gen_queued.reserve(msg.as_ref().map_or(0, Vec::len))
                        && out_tx.blocking_send(msg).is_ok()
                        && !failed
                };
                if !setup.iter().all(&mut serve) {
                    return;
                }
                while let Ok(n) = credit_rx.recv() {
                    for _ in 0..n {
                        if !inference.iter().all(&mut serve) {
                            return;
                        }
                    }
                }
            })?;
        Ok(Generator {
            credits: credit_tx,
            out: out_rx,
            queued,
        })
    }

    /// Asks for `n` more inferences.
    pub fn credit(&self, n: u32) -> Result<()> {
        self.credits
            .send(n)
            .map_err(|_| ChannelError::Io("the dealer's generator stopped".into()).into())
    }

    /// The next encoded correction, in request order.
    pub async fn next(&mut self) -> Result<Vec<u8>> {
        let msg = self.out.recv().await.unwrap_or_else(|| {
            Err(ChannelError::Io("the dealer's generator stopped".into()).into())
        })?;
        self.queued.release(msg.len());
        Ok(msg)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.queued.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_queue_holds_at_most_its_byte_budget_or_one_message() {
        let q = Arc::new(Queued::new(AHEAD_BYTES));
        // One message larger than the budget is queued when alone.
        assert!(q.reserve(AHEAD_BYTES + 1));
        // The next waits until the first is taken.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || tx.send(q.reserve(10)).unwrap())
        };
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        q.release(AHEAD_BYTES + 1);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        waiter.join().unwrap();
        // Small messages fill the budget; a closed queue wakes its waiter.
        assert!(q.reserve(AHEAD_BYTES - 10));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || tx.send(q.reserve(1)).unwrap())
        };
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        q.close();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(false));
        waiter.join().unwrap();
        assert_eq!(ahead_bytes(1000), 16_000);
        assert_eq!(ahead_bytes(u64::MAX), AHEAD_BYTES);
    }
}
