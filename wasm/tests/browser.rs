//! The core protocols and the browser transport, inside headless Chromium
//! (`cargo test -p hush-wasm --target wasm32-unknown-unknown`, with
//! wasm-bindgen-test-runner and chromedriver; see `webdriver.json`).
//!
//! Tolerance: 16 fractional bits with exact truncation; one product and one
//! comparison stay within 2^-14 of the f64 result.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hush_core::backend::CpuBackend;
use hush_core::channel::memory::run_parties;
use hush_core::preprocessing::seeded::{SeededDealer, in_process};
use hush_core::prg::Seed;
use hush_core::protocol::{Config, Party};
use hush_core::session::Control;
use hush_core::session::frame::{Frame, Limits, decode, encode_control};
use hush_core::share::Arith;
use hush_wasm::BrowserSocket;
use ndarray::{ArrayD, IxDyn};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn randomness_comes_from_the_browser() {
    let a = Seed::random().unwrap();
    let b = Seed::random().unwrap();
    assert_ne!(a.expose_bytes(), b.expose_bytes());
    assert!(a.expose_bytes().iter().any(|&x| x != 0));
}

#[wasm_bindgen_test]
fn frames_round_trip() {
    let msg = Control::Infer;
    let f = encode_control(&msg).unwrap();
    assert_eq!(decode(&f, &Limits::default()).unwrap(), Frame::Control(msg));
}

#[wasm_bindgen_test]
fn two_parties_multiply_and_compare_in_the_browser() {
    let n = 1000;
    let xs: Vec<f64> = (0..n)
        .map(|i| ((i * 37) % 200) as f64 / 10.0 - 10.0)
        .collect();
    let ys: Vec<f64> = (0..n)
        .map(|i| ((i * 91) % 160) as f64 / 16.0 - 5.0)
        .collect();
    let x = ArrayD::from_shape_vec(IxDyn(&[n]), xs.clone()).unwrap();
    let y = ArrayD::from_shape_vec(IxDyn(&[n]), ys.clone()).unwrap();
    let config = Config::default();
    let fp = config.fixed_point;
    let seeds = SeededDealer::<CpuBackend>::random_seeds(2).unwrap();
    let mut preps = in_process(&seeds, CpuBackend).into_iter();
    let (x, y) = (&x, &y);
    let results = run_parties(2, |ch| {
        let prep = preps.next().unwrap();
        async move {
            let mut p = Party::new(ch, prep, CpuBackend, config).await?;
            let me = p.id();
            let ex = (me == 0).then(|| fp.encode_tensor(x).unwrap());
            let ey = (me == 1).then(|| fp.encode_tensor(y).unwrap());
            let sx = p.input::<Arith>(0, ex.as_ref(), &[n]).await?;
            let sy = p.input::<Arith>(1, ey.as_ref(), &[n]).await?;
            let prod = p.mul(&sx, &sy).await?;
            let r = p.relu(&prod).await?;
            let opened = p.open(&r).await?;
            Ok(fp.decode_tensor(&opened))
        }
    });
    for r in results {
        let out = r.unwrap();
        for ((o, a), b) in out.iter().zip(&xs).zip(&ys) {
            let want = (a * b).max(0.0);
            assert!((o - want).abs() < 1.0 / 16384.0, "{o} vs {want}");
        }
    }
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_a_clear_error() {
    let err = BrowserSocket::open("ws://127.0.0.1:9/v1/session")
        .await
        .expect_err("nothing listens on port 9");
    assert_eq!(err.code().as_str(), "CLOSED");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[wasm_bindgen_test]
async fn a_socket_that_is_not_a_url_is_refused() {
    let err = BrowserSocket::open("not a url")
        .await
        .expect_err("not a URL");
    assert!(err.to_string().contains("not a url"), "{err}");
}
