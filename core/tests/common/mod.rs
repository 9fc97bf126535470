//! Shared harness for the protocol tests: N parties and an in-process dealer
//! in one thread, seeded so that every run of a test is the same run.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use core::future::Future;
use hush_core::backend::CpuBackend;
use hush_core::channel::CommStats;
use hush_core::channel::memory::{MemoryChannel, run_parties};
use hush_core::preprocessing::seeded::{SeededDealer, SeededPreprocessing, in_process};
use hush_core::prg::{Prg, Seed};
use hush_core::protocol::{Config, Party};
use hush_core::{FixedPoint, Result, RingTensor};
use ndarray::{ArrayD, IxDyn};

pub type TestPrep = SeededPreprocessing<Option<SeededDealer<CpuBackend>>>;
pub type TestParty = Party<MemoryChannel, TestPrep, CpuBackend>;

/// Dealer seeds derived from a test's own seed.
pub fn seeds(n: usize, test_seed: u8) -> Vec<Seed> {
    let root = Seed::from_bytes([test_seed; 32]);
    (0..n as u64).map(|i| root.derive(i)).collect()
}

/// Runs `f` at each of `n` parties; panics with the party's error if one fails.
pub fn run_mpc<T, F, Fut>(n: usize, config: Config, test_seed: u8, f: F) -> Vec<T>
where
    F: Fn(TestParty) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut preps = in_process(&seeds(n, test_seed), CpuBackend).into_iter();
    let f = &f;
    run_parties(n, |ch| {
        let prep = preps.next().expect("one preprocessing per party");
        async move {
            let party = Party::new(ch, prep, CpuBackend, config).await?;
            f(party).await
        }
    })
    .into_iter()
    .enumerate()
    .map(|(i, r)| r.unwrap_or_else(|e| panic!("party {i} failed: {e}")))
    .collect()
}

/// Seeded source of test data.
pub fn data_prg(seed: u8) -> Prg {
    Prg::new(&Seed::from_bytes([seed ^ 0x5a; 32]))
}

/// Uniform reals in `[-bound, bound)`.
pub fn uniform(prg: &mut Prg, shape: &[usize], bound: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        let u = (prg.next_ring() >> 11) as f64 / (1u64 << 53) as f64;
        (2.0 * u - 1.0) * bound
    })
}

/// `x` as the fixed-point grid sees it (encode then decode), so references
/// isolate protocol error from encoding error.
pub fn quantize(fp: FixedPoint, x: &ArrayD<f64>) -> ArrayD<f64> {
    fp.decode_tensor(&fp.encode_tensor(x).expect("in range"))
}

/// Largest absolute difference.
pub fn max_abs_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// One unit in the last place at `f` fractional bits.
pub fn ulp(fp: FixedPoint) -> f64 {
    1.0 / fp.scale() as f64
}

/// The owner's input tensor for party `me`: `Some` at the owner.
pub fn held(me: usize, owner: usize, value: &RingTensor) -> Option<&RingTensor> {
    (me == owner).then_some(value)
}

pub fn stats_of(p: &TestParty) -> CommStats {
    p.stats()
}

/// Drives a future that never waits (in-process preprocessing) to completion.
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = core::pin::pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(v) => v,
        core::task::Poll::Pending => panic!("future waited on something"),
    }
}
