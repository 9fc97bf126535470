//! Every fuzz target over its seeds and deterministic mutations of them
//! (stable Rust; the coverage-guided runs are `fuzz/libfuzzer`). A case
//! that panics is written to `target/fuzz-failures/<target>-<case>` and
//! named in the failure, so that it can be replayed under libFuzzer.

use hush_fuzz::exec::{Replay, block_on};
use hush_fuzz::mutate::{Rng, mutate};
use hush_fuzz::{seeds, targets};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Mutated cases per seed: the session and plan targets run a whole
/// protocol per case, the others only a decoder.
fn cases(target: &str) -> usize {
    match target {
        "session" | "server_session" => 3_000,
        "plan" => 1_000,
        "onnx" => 2_000,
        _ => 5_000,
    }
}

fn run_case(name: &str, target: fn(&[u8]), case: usize, input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fuzz-failures");
        let path = format!("{dir}/{name}-{case}");
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, input))
            .map_or_else(
                |e| format!("(not saved: {e})"),
                |()| format!("saved to {path}"),
            );
        panic!("fuzz target {name} panicked on case {case}, {saved}");
    }
}

#[test]
fn targets_survive_their_seeds_and_mutations() {
    for (name, target, seeds) in seeds::all() {
        assert!(!seeds.is_empty(), "{name} has seeds");
        for (i, seed) in seeds.iter().enumerate() {
            run_case(name, target, i, seed);
            let mut rng = Rng::new(0x4855_5348 ^ (i as u64) << 32);
            for c in 0..cases(name) {
                run_case(
                    name,
                    target,
                    (i + 1) * 1_000_000 + c,
                    &mutate(seed, &mut rng),
                );
            }
        }
    }
}

#[test]
fn the_session_seed_drives_a_whole_inference() {
    // The replayed honest server takes the client through the weight setup
    // and the whole inference, so the mutations reach every protocol.
    let seed = seeds::session();
    let out = block_on(targets::client(Replay::new(&seed)))
        .unwrap_or_else(|e| panic!("the replayed session fails: {e}"));
    assert_eq!(out.map(|o| o.len()), Some(1));
    // And a transcript cut short ends in an error, not a hang or a panic.
    let err = block_on(targets::client(Replay::new(&seed[..seed.len() / 2])));
    assert!(err.is_err());
    // The same from the server's side.
    let seed = seeds::server_session();
    let out = block_on(targets::server(Replay::new(&seed)))
        .unwrap_or_else(|e| panic!("the replayed client fails: {e}"));
    assert!(out.is_none(), "the server gets no output");
    assert!(block_on(targets::server(Replay::new(&seed[..seed.len() / 2]))).is_err());
}

#[test]
fn mutations_are_reproducible() {
    let seed = b"hush fuzz seed".to_vec();
    let (mut a, mut b) = (Rng::new(5), Rng::new(5));
    for _ in 0..100 {
        assert_eq!(mutate(&seed, &mut a), mutate(&seed, &mut b));
    }
}

/// The frames of the session seed, each with its round stamp (bytes 2..10
/// of a data frame) replaced by `stamp`.
fn restamped(stamp: u64) -> Vec<u8> {
    let seed = seeds::session();
    let mut out = Vec::new();
    let mut rest = &seed[..];
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let mut frame = rest[4..4 + len].to_vec();
        if frame.len() >= 10 && frame[1] != 0x01 {
            frame[2..10].copy_from_slice(&stamp.to_le_bytes());
        }
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
        rest = &rest[4 + len..];
    }
    out
}

#[test]
fn a_server_claiming_the_last_round_does_not_overflow_the_client_s_clock() {
    // Found by reading the round clock after the fuzz targets were written:
    // a peer's stamp of u64::MAX made the next send's stamp overflow.
    for stamp in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let out = block_on(targets::client(Replay::new(&restamped(stamp))))
            .unwrap_or_else(|e| panic!("stamps are statistics only: {e}"));
        assert!(out.is_some());
    }
}

/// The inputs libFuzzer found crashes or memory blow-ups with
/// (`fuzz/regressions/<target>/`), each run again by its target: every one
/// of them must now end in an error or a result, not a panic or an
/// allocation past the limits.
#[test]
fn the_crashes_libfuzzer_found_stay_fixed() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/regressions"));
    let mut ran = 0;
    for (name, target, _) in seeds::all() {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
            continue;
        };
        for (i, e) in entries.enumerate() {
            let path = e.expect("a readable regressions folder").path();
            let input = std::fs::read(&path).expect("a readable regression");
            run_case(name, target, i, &input);
            ran += 1;
        }
    }
    // wire_request: a shape with a zero axis hiding a product past
    // isize::MAX, then a batch of 2^27.7 empty matrix products (a 6 GiB
    // task list); plan: a pooling window of 2^34 elements; onnx: an input
    // dimension of 2^46, then a Transpose whose perm names axis 63.
    assert!(ran >= 5, "the regression inputs are found ({ran})");
}
