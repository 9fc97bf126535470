//! The dealer's work for one session, on a thread of its own: it expands
//! every party's seed and computes the server's corrections, the weight
//! setup's first, then one inference's worth per credit. Output goes through
//! a bounded queue, so generation runs ahead of the online phase (the next
//! inference is prepared while the current one runs) without running away.

use hush_core::backend::CpuBackend;
use hush_core::error::{ChannelError, Result};
use hush_core::preprocessing::CorrelationRequest;
use hush_core::preprocessing::seeded::SeededDealer;
use hush_core::preprocessing::wire::encode_correction;
use hush_core::prg::Seed;
use tokio::sync::mpsc;

/// Encoded corrections queued ahead of the server.
const AHEAD_MESSAGES: usize = 256;

/// A running generator.
#[derive(Debug)]
pub struct Generator {
    credits: std::sync::mpsc::Sender<u32>,
    out: mpsc::Receiver<Result<Vec<u8>>>,
}

impl Generator {
    /// Starts generating for parties holding `seeds` (client first, server
    /// last): the `setup` requests at once, `inference` per credit.
    pub fn spawn(
        seeds: Vec<Seed>,
        setup: Vec<CorrelationRequest>,
        inference: Vec<CorrelationRequest>,
    ) -> std::io::Result<Generator> {
        let (credit_tx, credit_rx) = std::sync::mpsc::channel::<u32>();
        let (out_tx, out_rx) = mpsc::channel(AHEAD_MESSAGES);
        std::thread::Builder::new()
            .name("hush-dealer-gen".into())
            .spawn(move || {
                let mut dealer = SeededDealer::new(&seeds, CpuBackend);
                drop(seeds);
                let mut serve = |req: &CorrelationRequest| -> bool {
                    let msg = dealer.generate(req).map(|c| encode_correction(req, &c));
                    let failed = msg.is_err();
                    out_tx.blocking_send(msg).is_ok() && !failed
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
        self.out.recv().await.unwrap_or_else(|| {
            Err(ChannelError::Io("the dealer's generator stopped".into()).into())
        })
    }
}
