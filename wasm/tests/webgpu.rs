//! The GPU backend in headless Chromium's WebGPU (SwiftShader): the limb
//! arithmetic, bit for bit against the CPU backend, on ragged tile shapes,
//! batched and summed products, convolutions, empty tensors and tensors
//! larger than one storage binding (with a small binding cap).
//!
//! `webdriver.json` passes `--enable-unsafe-webgpu`; without an adapter these
//! tests fail (they are the browser half of the GPU backend's checks).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hush_core::backend::{Backend, Conv2dParams, CpuBackend};
use hush_core::bilinear::{BilinearOp, bilinear_sum_sync};
use hush_core::prg::{Prg, Seed};
use hush_core::ring::RingTensor;
use hush_gpu::{Arithmetic, GpuBackend, GpuOptions};
use ndarray::IxDyn;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn random(shape: &[usize], seed: u8) -> RingTensor {
    let mut v = vec![0u64; shape.iter().product()];
    Prg::new(&Seed::from_bytes([seed; 32])).fill(&mut v);
    RingTensor::from_shape_vec(IxDyn(shape), v).unwrap()
}

async fn open(max_binding_bytes: Option<u64>) -> GpuBackend {
    let gpu = GpuBackend::new(&GpuOptions {
        max_binding_bytes,
        ..GpuOptions::default()
    })
    .await
    .expect("WebGPU adapter (Chromium with --enable-unsafe-webgpu)");
    // Browsers' WGSL has no 64-bit integers: the limb variant is chosen.
    assert_eq!(gpu.adapter().arithmetic, Arithmetic::Limbs);
    gpu
}

async fn check(gpu: &GpuBackend, op: &BilinearOp, terms: usize) {
    let data: Vec<(RingTensor, RingTensor)> = (0..terms)
        .map(|t| {
            (
                random(op.lhs_shape(), 2 * t as u8 + 1),
                random(op.rhs_shape(), 2 * t as u8 + 2),
            )
        })
        .collect();
    let refs: Vec<(&RingTensor, &RingTensor)> = data.iter().map(|(x, y)| (x, y)).collect();
    let want = bilinear_sum_sync(&CpuBackend, op, &refs).unwrap();
    let got = gpu.bilinear_sum(op, &refs).await.unwrap();
    assert!(got == want, "{op:?}: GPU and CPU differ");
}

fn matmul(lhs: &[usize], rhs: &[usize]) -> BilinearOp {
    BilinearOp::MatMul {
        lhs: lhs.to_vec(),
        rhs: rhs.to_vec(),
    }
}

fn ops() -> Vec<(BilinearOp, usize)> {
    let base = Conv2dParams::default();
    vec![
        (matmul(&[1, 1], &[1, 1]), 1),
        (matmul(&[65, 17], &[17, 130]), 1),
        (matmul(&[130, 70], &[70, 129]), 2),
        (matmul(&[2, 3, 5, 7], &[3, 7, 4]), 2),
        (matmul(&[1, 2], &[2, 2000]), 1),
        (
            BilinearOp::Hadamard {
                shape: vec![100_003],
            },
            2,
        ),
        (
            BilinearOp::Conv2d {
                input: [3, 4, 11, 9],
                kernel: [6, 2, 3, 2],
                params: Conv2dParams {
                    stride: [2, 1],
                    padding: [1, 0, 2, 1],
                    dilation: [1, 2],
                    groups: 2,
                },
            },
            2,
        ),
        (
            BilinearOp::Conv2d {
                input: [2, 4, 40, 40],
                kernel: [2, 4, 3, 3],
                params: base,
            },
            1,
        ),
        (matmul(&[0, 5], &[5, 4]), 1),
        (matmul(&[3, 0], &[0, 4]), 2),
    ]
}

#[wasm_bindgen_test]
async fn webgpu_products_match_the_cpu_bit_for_bit() {
    let gpu = open(None).await;
    for (op, terms) in ops() {
        check(&gpu, &op, terms).await;
    }
    assert!(gpu.stats().dispatches > 0);
}

#[wasm_bindgen_test]
async fn webgpu_splits_tensors_larger_than_a_binding() {
    let gpu = open(Some(8 * 1024 + 256)).await;
    for (op, terms) in ops() {
        check(&gpu, &op, terms).await;
    }
}
