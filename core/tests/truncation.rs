//! Dealer-assisted truncation never fails catastrophically; local (SecureML)
//! truncation does, on the same data. 10^7 elements of magnitude up to 2^20
//! (real values at product scale 2^32, so ring values up to 2^52).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hush_core::RingTensor;
use hush_core::protocol::{Config, TruncationMode};
use hush_core::share::Arith;
use ndarray::IxDyn;

const N: usize = 10_000_000;
const F: u32 = 16;

/// Products at scale 2^(2f) of magnitude up to 2^20 (as reals), as ring elements.
fn products() -> RingTensor {
    let mut prg = data_prg(77);
    RingTensor::from_shape_fn(IxDyn(&[N]), |_| {
        let v = prg.next_ring();
        // Uniform in [-2^52, 2^52]: the top 12 bits mark the sign extension.
        ((v as i64) >> 11) as u64
    })
}

/// Counts elements whose truncation is off by more than one unit.
fn catastrophic(mode: TruncationMode, x: &RingTensor) -> (usize, i64) {
    let config = Config {
        truncation: mode,
        ..Config::default()
    };
    let outs = run_mpc(2, config, 77, |mut p| async move {
        let me = p.id();
        let s = p.input::<Arith>(0, held(me, 0, x), &[N]).await?;
        let t = p.truncate(&s).await?;
        p.reveal_to(&t, 0).await
    });
    let y = outs
        .into_iter()
        .flatten()
        .next()
        .expect("party 0 gets the output");
    let mut bad = 0;
    let mut worst = 0i64;
    for (&xi, &yi) in x.iter().zip(y.iter()) {
        let exact = (xi as i64) >> F;
        let err = (yi as i64).wrapping_sub(exact);
        if !(0..=1).contains(&err) {
            bad += 1;
            worst = worst.max(err.wrapping_abs());
        }
    }
    (bad, worst)
}

#[test]
fn ten_million_dealer_truncations_have_no_catastrophic_error() {
    let x = products();
    let (bad, worst) = catastrophic(TruncationMode::Dealer, &x);
    assert_eq!(
        bad, 0,
        "dealer truncation failed {bad} times (worst error {worst})"
    );
}

#[test]
fn local_truncation_fails_on_the_same_data() {
    // Expected failures: N · E|x| / 2^64 ≈ 10^7 · 2^51 / 2^64 ≈ 1200; the
    // chance of seeing none is below e^-1000. This shows why the dealer
    // variant is the default.
    let x = products();
    let (bad, worst) = catastrophic(TruncationMode::Local, &x);
    assert!(bad > 100, "local truncation failed only {bad} times");
    assert!(
        worst > 1 << 40,
        "a local failure is an error of about 2^48, got {worst}"
    );
}
