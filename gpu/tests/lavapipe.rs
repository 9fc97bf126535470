//! The GPU backend against the CPU backend, bit for bit, on whatever adapter
//! wgpu finds: in CI that is lavapipe (Mesa's Vulkan on the CPU), which
//! offers `SHADER_INT64`, so both arithmetic variants run.
//!
//! Without any adapter the tests print why and pass, unless
//! `HUSH_GPU_TESTS=require` (set by `cargo xtask test`), where they fail.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use hush_core::backend::{Backend, Conv2dParams, CpuBackend};
use hush_core::bilinear::{BilinearOp, bilinear_sum_sync};
use hush_core::prg::{Prg, Seed};
use hush_core::ring::RingTensor;
use hush_gpu::{Arithmetic, GpuBackend, GpuOptions};
use ndarray::IxDyn;
use std::sync::OnceLock;

/// A cap that forces tensors of more than ~1024 elements through the
/// split-binding paths.
const SMALL_BINDING: u64 = 8 * 1024 + 256;

fn open(arithmetic: Arithmetic, max_binding_bytes: Option<u64>) -> Option<GpuBackend> {
    let options = GpuOptions {
        arithmetic: Some(arithmetic),
        max_binding_bytes,
        hardware_only: false,
    };
    match GpuBackend::new_blocking(&options) {
        Ok(g) => {
            eprintln!("adapter: {}", g.adapter());
            Some(g)
        }
        Err(e) => {
            assert!(
                std::env::var("HUSH_GPU_TESTS").as_deref() != Ok("require"),
                "HUSH_GPU_TESTS=require but no {arithmetic} GPU opened: {e} \
                 (install lavapipe: apt-get install mesa-vulkan-drivers)"
            );
            eprintln!("skipped: no {arithmetic} GPU ({e})");
            None
        }
    }
}

/// Every backend under test: both variants, each with the adapter's own
/// binding limit and with a small one.
fn backends() -> &'static [(String, GpuBackend)] {
    static ALL: OnceLock<Vec<(String, GpuBackend)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Vec::new();
        for a in Arithmetic::ALL {
            for cap in [None, Some(SMALL_BINDING)] {
                if let Some(g) = open(a, cap) {
                    let label = format!("{a}, binding cap {cap:?}");
                    all.push((label, g));
                }
            }
        }
        all
    })
}

fn random(shape: &[usize], seed: u8) -> RingTensor {
    let mut v = vec![0u64; shape.iter().product()];
    Prg::new(&Seed::from_bytes([seed; 32])).fill(&mut v);
    RingTensor::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// `Σ op(xᵢ, yᵢ)` on every GPU backend equals the CPU's, bit for bit.
fn check(op: &BilinearOp, terms: usize) {
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
    for (label, gpu) in backends() {
        let got = pollster::block_on(gpu.bilinear_sum(op, &refs))
            .unwrap_or_else(|e| panic!("{op:?} on {label}: {e}"));
        assert_eq!(got.shape(), want.shape(), "{op:?} on {label}");
        assert!(got == want, "{op:?} on {label}: results differ");
    }
}

fn matmul(lhs: &[usize], rhs: &[usize]) -> BilinearOp {
    BilinearOp::MatMul {
        lhs: lhs.to_vec(),
        rhs: rhs.to_vec(),
    }
}

#[test]
fn matrix_products_match_the_cpu_including_ragged_tiles() {
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 7),
        (64, 16, 64),
        (65, 17, 130),
        (200, 300, 70),
        (1, 1024, 1000),
        (257, 3, 1),
    ] {
        check(&matmul(&[m, k], &[k, n]), 1);
    }
}

#[test]
fn batched_and_broadcast_products_and_sums_match_the_cpu() {
    check(&matmul(&[2, 3, 5, 7], &[3, 7, 4]), 2);
    check(&matmul(&[4, 33, 20], &[20, 9]), 2);
    check(&matmul(&[1, 6, 8], &[3, 8, 6]), 1);
}

#[test]
fn elementwise_products_match_the_cpu() {
    for len in [1, 255, 256, 257, 10_000, 100_003] {
        check(&BilinearOp::Hadamard { shape: vec![len] }, 2);
    }
    check(
        &BilinearOp::Hadamard {
            shape: vec![3, 4, 5],
        },
        1,
    );
}

fn conv(input: [usize; 4], kernel: [usize; 4], params: Conv2dParams) -> BilinearOp {
    BilinearOp::Conv2d {
        input,
        kernel,
        params,
    }
}

#[test]
fn convolutions_match_the_cpu() {
    let base = Conv2dParams::default();
    check(&conv([1, 3, 8, 8], [4, 3, 3, 3], base), 1);
    check(
        &conv(
            [3, 4, 11, 9],
            [6, 2, 3, 2],
            Conv2dParams {
                stride: [2, 1],
                padding: [1, 0, 2, 1],
                dilation: [1, 2],
                groups: 2,
            },
        ),
        2,
    );
    // Depthwise, as in MobileNet; a 1×1 projection; a 7×7 stride-2 stem.
    check(
        &conv(
            [2, 8, 10, 10],
            [8, 1, 3, 3],
            Conv2dParams {
                padding: [1; 4],
                groups: 8,
                ..base
            },
        ),
        1,
    );
    check(&conv([1, 70, 5, 5], [6, 70, 1, 1], base), 2);
    check(
        &conv(
            [1, 3, 32, 32],
            [8, 3, 7, 7],
            Conv2dParams {
                stride: [2, 2],
                padding: [3; 4],
                ..base
            },
        ),
        1,
    );
    // Twelve small images: several dispatches under the small binding cap.
    check(&conv([12, 2, 10, 10], [3, 2, 3, 3], base), 1);
}

#[test]
fn empty_tensors_give_empty_or_zero_results() {
    check(&matmul(&[0, 5], &[5, 4]), 2);
    check(&matmul(&[3, 0], &[0, 4]), 2);
    check(&BilinearOp::Hadamard { shape: vec![0] }, 1);
    check(
        &conv([0, 2, 4, 4], [3, 2, 3, 3], Conv2dParams::default()),
        1,
    );
    for (label, gpu) in backends() {
        let z = pollster::block_on(gpu.bilinear_sum(&matmul(&[3, 4], &[4, 5]), &[])).unwrap();
        assert!(z.iter().all(|&v| v == 0), "{label}");
    }
}

#[test]
fn convolutions_larger_than_a_binding_go_through_im2col() {
    // One image (6400 elements) or the kernel (4550) exceeds the small cap.
    check(
        &conv([2, 4, 40, 40], [2, 4, 3, 3], Conv2dParams::default()),
        2,
    );
    check(
        &conv([1, 70, 5, 5], [65, 70, 1, 1], Conv2dParams::default()),
        1,
    );
}

#[test]
fn products_whose_rows_exceed_a_binding_are_split_by_columns() {
    check(&matmul(&[1, 2], &[2, 2000]), 1);
    check(&matmul(&[3, 5], &[5, 3000]), 2);
}

#[test]
fn a_sum_of_products_is_one_submission() {
    let op = matmul(&[2, 40, 30], &[30, 20]);
    let (x, y) = (random(op.lhs_shape(), 1), random(op.rhs_shape(), 2));
    for a in Arithmetic::ALL {
        // A device of its own: the other tests share theirs in parallel.
        let Some(gpu) = open(a, None) else { continue };
        let label = a;
        let before = gpu.stats();
        pollster::block_on(gpu.bilinear_sum(&op, &[(&x, &y), (&x, &y)])).unwrap();
        let after = gpu.stats();
        assert_eq!(after.submissions - before.submissions, 1, "{label}");
        assert_eq!(
            after.bytes_down - before.bytes_down,
            8 * 2 * 40 * 20,
            "{label}"
        );
    }
}

#[test]
fn the_synchronous_methods_match_the_cpu_too() {
    let (a, b) = (random(&[37, 29], 3), random(&[29, 41], 4));
    let mut want = vec![0u64; 37 * 41];
    CpuBackend.gemm(
        37,
        29,
        41,
        a.as_slice().unwrap(),
        b.as_slice().unwrap(),
        &mut want,
    );
    let (x, w) = (random(&[2, 3, 9, 9], 5), random(&[4, 3, 3, 3], 6));
    let p = Conv2dParams::default();
    for (label, gpu) in backends() {
        let mut got = vec![1u64; 37 * 41];
        gpu.gemm(
            37,
            29,
            41,
            a.as_slice().unwrap(),
            b.as_slice().unwrap(),
            &mut got,
        );
        assert_eq!(got, want, "{label}");
        assert_eq!(gpu.hadamard(&x, &x), CpuBackend.hadamard(&x, &x), "{label}");
        assert_eq!(
            gpu.conv2d(&x, &w, &p).unwrap(),
            CpuBackend.conv2d(&x, &w, &p).unwrap(),
            "{label}"
        );
    }
}
