//! In-crate test harness: `n` parties in one thread over memory channels,
//! with the in-process (insecure, test-only) seeded dealer, for tests of
//! the crate's private protocol steps.

use super::{Config, Party};
use crate::backend::CpuBackend;
use crate::channel::memory::{MemoryChannel, run_parties};
use crate::error::Result;
use crate::preprocessing::seeded::{SeededDealer, SeededPreprocessing, in_process};
use crate::prg::Seed;
use alloc::vec::Vec;
use core::future::Future;

pub(crate) type TestParty =
    Party<MemoryChannel, SeededPreprocessing<Option<SeededDealer<CpuBackend>>>, CpuBackend>;

/// Runs `f` at each of `n` parties (dealer seeds derived from `seed`) and
/// returns their outputs; panics with a party's error if one fails.
pub(crate) fn run<T, F, Fut>(n: usize, seed: u8, config: Config, f: F) -> Vec<T>
where
    F: Fn(TestParty) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let seeds: Vec<Seed> = (0..n as u64)
        .map(|i| Seed::from_bytes([seed; 32]).derive(i))
        .collect();
    let mut preps = in_process(&seeds, CpuBackend).into_iter();
    let f = &f;
    run_parties(n, |ch| {
        let prep = preps.next().expect("one preprocessing per party");
        async move { f(Party::new(ch, prep, CpuBackend, config).await?).await }
    })
    .into_iter()
    .enumerate()
    .map(|(i, r)| r.unwrap_or_else(|e| panic!("party {i} failed: {e}")))
    .collect()
}
