//! `hush bench --suite gpu`: the GPU backend's raw matrix-product throughput
//! in both arithmetic variants, beside the CPU backend, on one product of
//! `--gemm-size`³ (4096 by default, the figure issue 7 asks for).
//!
//! Each repetition is one `bilinear_sum` call, upload and read-back
//! included, as the protocols see it. Throughput is ring multiply-adds
//! (`n³`) per second of the median. No network, so no bytes or rounds: the
//! bytes moved to and from the device are reported instead.

use hush_core::backend::{Backend, CpuBackend};
use hush_core::bilinear::BilinearOp;
use hush_core::prg::{Prg, Seed};
use hush_core::ring::RingTensor;
use hush_gpu::{Arithmetic, GpuBackend, GpuOptions};
use hush_server::model::BoxError;
use ndarray::IxDyn;
use serde_json::json;
use std::time::Instant;

/// One measured variant.
struct Row {
    variant: String,
    device: String,
    median_s: f64,
    min_s: f64,
    max_s: f64,
    bytes_up: u64,
    bytes_down: u64,
}

fn time<F: FnMut() -> Result<(), BoxError>>(reps: usize, mut f: F) -> Result<Vec<f64>, BoxError> {
    f()?; // warm-up: pipelines, buffer pool
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Runs the suite: prints a table, JSON lines or Markdown.
pub(crate) fn run(
    n: usize,
    reps: usize,
    json_out: bool,
    markdown: bool,
    cpu: bool,
) -> Result<(), BoxError> {
    let op = BilinearOp::MatMul {
        lhs: vec![n, n],
        rhs: vec![n, n],
    };
    let mut data = vec![0u64; n * n];
    Prg::new(&Seed::from_bytes([3; 32])).fill(&mut data);
    let a = RingTensor::from_shape_vec(IxDyn(&[n, n]), data).map_err(|e| format!("{e}"))?;
    let mut rows = Vec::new();
    let mut reference = None;
    for arithmetic in Arithmetic::ALL {
        let options = GpuOptions {
            arithmetic: Some(arithmetic),
            ..GpuOptions::default()
        };
        let gpu = match GpuBackend::new_blocking(&options) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{arithmetic}: skipped ({e})");
                continue;
            }
        };
        eprintln!("running gemm {n}³ on {} ...", gpu.adapter());
        let before = gpu.stats();
        let mut last = None;
        let times = time(reps, || {
            last = Some(pollster::block_on(gpu.bilinear_sum(&op, &[(&a, &a)]))?);
            Ok(())
        })?;
        let moved = gpu.stats();
        let calls = (reps + 1) as u64;
        // Both variants must give the same bits (and the CPU's, if run).
        match (&reference, last) {
            (None, Some(r)) => reference = Some(r),
            (Some(r), Some(l)) if *r != l => {
                return Err(format!("{arithmetic} result differs from the other variant").into());
            }
            _ => {}
        }
        rows.push(Row {
            variant: format!("gpu {arithmetic}"),
            device: gpu.adapter().to_string(),
            median_s: times[times.len() / 2],
            min_s: times[0],
            max_s: times[times.len() - 1],
            bytes_up: (moved.bytes_up - before.bytes_up) / calls,
            bytes_down: (moved.bytes_down - before.bytes_down) / calls,
        });
    }
    if cpu {
        eprintln!("running gemm {n}³ on the CPU ...");
        let mut last = None;
        let times = time(reps, || {
            last = Some(pollster::block_on(
                CpuBackend.bilinear_sum(&op, &[(&a, &a)]),
            )?);
            Ok(())
        })?;
        if let (Some(r), Some(l)) = (&reference, last)
            && *r != l
        {
            return Err("the CPU result differs from the GPU's".into());
        }
        rows.push(Row {
            variant: "cpu".into(),
            device: format!("{} rayon threads", rayon::current_num_threads()),
            median_s: times[times.len() / 2],
            min_s: times[0],
            max_s: times[times.len() - 1],
            bytes_up: 0,
            bytes_down: 0,
        });
    }
    if rows.is_empty() {
        return Err("no GPU adapter opened and --gemm-cpu was not given".into());
    }
    let madds = (n as f64).powi(3);
    if markdown {
        println!(
            "| gemm {n}³ | device | median | range | ring multiply-adds/s | to GPU | from GPU |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- |");
    } else if !json_out {
        println!(
            "suite gpu — one {n}×{n}·{n}×{n} product over Z_2^64 per call (upload and read-back included), median of {reps} after a warm-up"
        );
    }
    for r in &rows {
        let rate = madds / r.median_s;
        if json_out {
            println!(
                "{}",
                json!({
                    "suite": "gpu", "name": format!("gemm {n}^3 {}", r.variant), "device": r.device,
                    "median_s": r.median_s, "min_s": r.min_s, "max_s": r.max_s,
                    "multiply_adds": madds, "multiply_adds_per_s": rate,
                    "bytes_to_device": r.bytes_up, "bytes_from_device": r.bytes_down,
                })
            );
        } else if markdown {
            println!(
                "| {} | {} | {:.3} s | {:.3}–{:.3} s | {:.3e} | {:.1} MB | {:.1} MB |",
                r.variant,
                r.device,
                r.median_s,
                r.min_s,
                r.max_s,
                rate,
                r.bytes_up as f64 / 1e6,
                r.bytes_down as f64 / 1e6
            );
        } else {
            println!(
                "{:<10} {:>9.3} s ({:.3}–{:.3})  {:>10.3e} madd/s  {}",
                r.variant, r.median_s, r.min_s, r.max_s, rate, r.device
            );
        }
    }
    Ok(())
}
