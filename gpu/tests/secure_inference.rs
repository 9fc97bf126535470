//! Whole secure inferences with both parties on the GPU backend agree with
//! the CPU backend bit for bit, given the same dealer seeds, and with the
//! plaintext evaluator within the fixed-point tolerance. On lavapipe in CI
//! (both arithmetic variants); see `lavapipe.rs` for when tests skip.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hush_core::FixedPoint;
use hush_core::backend::{Backend, CpuBackend};
use hush_core::channel::memory::run_parties;
use hush_core::plan::{Plan, Weights, plain, secure};
use hush_core::preprocessing::seeded::in_process;
use hush_core::prg::Seed;
use hush_core::protocol::{Config, Party};
use hush_gpu::{Arithmetic, Compute, GpuBackend, GpuOptions};
use hush_onnx::{ImportOptions, import};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;

fn npy_f32(bytes: &[u8]) -> ArrayD<f64> {
    // A little-endian float32 .npy as written by numpy (header, then data).
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hl]).unwrap();
    assert!(header.contains("'<f4'"), "{header}");
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data: Vec<f64> = bytes[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

/// Runs setup and one inference with fixed dealer seeds on `backend`
/// (both parties) and returns the client's output.
fn secure_run<B: Backend + Clone>(
    plan: &Plan,
    weights: &Weights,
    x: &ArrayD<f64>,
    backend: B,
) -> ArrayD<f64> {
    let config = Config {
        fixed_point: FixedPoint::new(plan.frac_bits).unwrap(),
        ..Config::default()
    };
    let roles = secure::Roles {
        owner: 1,
        client: 0,
    };
    let seeds = vec![Seed::from_bytes([7; 32]), Seed::from_bytes([9; 32])];
    let mut preps = in_process(&seeds, CpuBackend).into_iter();
    let out = run_parties(2, |ch| {
        let prep = preps.next().unwrap();
        let x = x.clone();
        let backend = backend.clone();
        async move {
            let mut p = Party::new(ch, prep, backend, config).await?;
            let me = p.id();
            let session =
                secure::setup(&mut p, plan, roles, (me == roles.owner).then_some(weights)).await?;
            let inputs = [x];
            secure::evaluate(
                &mut p,
                plan,
                roles,
                &session,
                (me == roles.client).then_some(&inputs[..]),
            )
            .await
        }
    });
    out.into_iter().next().unwrap().unwrap().unwrap().remove(0)
}

fn gpus() -> Vec<GpuBackend> {
    Arithmetic::ALL
        .iter()
        .filter_map(|&a| {
            let options = GpuOptions {
                arithmetic: Some(a),
                ..GpuOptions::default()
            };
            match GpuBackend::new_blocking(&options) {
                Ok(g) => Some(g),
                Err(e) => {
                    assert!(
                        std::env::var("HUSH_GPU_TESTS").as_deref() != Ok("require"),
                        "HUSH_GPU_TESTS=require but no {a} GPU opened: {e}"
                    );
                    eprintln!("skipped {a}: {e}");
                    None
                }
            }
        })
        .collect()
}

/// `name` from models/test: CPU twice (the run is deterministic given the
/// seeds), then every GPU variant, bit for bit; and the plaintext evaluator
/// within `tol`.
fn check_model(name: &str, onnx: &[u8], input: &[u8], tol: f64) {
    let x = npy_f32(input);
    let options = ImportOptions {
        input_shapes: HashMap::new(),
        ..ImportOptions::default()
    };
    let m = import(onnx, &options).unwrap();
    let want = secure_run(&m.plan, &m.weights, &x, CpuBackend);
    assert_eq!(
        want,
        secure_run(&m.plan, &m.weights, &x, CpuBackend),
        "{name}: CPU runs differ"
    );
    let plain = plain::evaluate(&m.plan, &m.weights, std::slice::from_ref(&x))
        .unwrap()
        .remove(0);
    let err = (&want - &plain).iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    assert!(err < tol, "{name}: max |secure − plain| = {err}");
    for gpu in gpus() {
        let before = gpu.stats();
        let got = secure_run(&m.plan, &m.weights, &x, Compute::Gpu(gpu.clone()));
        let used = gpu.stats().dispatches - before.dispatches;
        assert!(used > 0, "{name}: nothing ran on {}", gpu.adapter());
        assert!(
            got == want,
            "{name} on {}: GPU and CPU outputs differ",
            gpu.adapter()
        );
        eprintln!(
            "{name}: {} agrees bit for bit ({used} dispatches)",
            gpu.adapter()
        );
    }
}

#[test]
fn lenet5_on_the_gpu_equals_the_cpu_bit_for_bit() {
    check_model(
        "lenet5",
        include_bytes!("../../models/test/lenet5.onnx"),
        include_bytes!("../../models/test/lenet5.input.npy"),
        1e-2,
    );
}

#[test]
fn a_depthwise_block_on_the_gpu_equals_the_cpu_bit_for_bit() {
    check_model(
        "mobilenet_block",
        include_bytes!("../../models/test/mobilenet_block.onnx"),
        include_bytes!("../../models/test/mobilenet_block.input.npy"),
        1e-2,
    );
}

#[test]
fn the_transformer_encoder_on_the_gpu_equals_the_cpu_bit_for_bit() {
    check_model(
        "transformer",
        include_bytes!("../../models/test/transformer.onnx"),
        include_bytes!("../../models/test/transformer.input.npy"),
        2e-2,
    );
}
