//! Choosing where the heavy work runs: `--backend cpu|gpu|auto`.

use crate::context::GpuOptions;
use crate::gpu::GpuBackend;
use hush_core::backend::{Backend, Conv2dParams, CpuBackend};
use hush_core::bilinear::{BilinearOp, bilinear_sum_sync};
use hush_core::error::{Error, Result};
use hush_core::ring::{Ring, RingTensor};
use ndarray::IxDyn;
use std::fmt;
use std::str::FromStr;

/// The `--backend` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The CPU backend.
    #[default]
    Cpu,
    /// The GPU; an error if no adapter opens.
    Gpu,
    /// The GPU for operations above the size where it measured faster than
    /// the CPU on this machine; the CPU for the rest, and for everything when
    /// there is no hardware adapter (a logged reason says why).
    Auto,
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => Err(format!("unknown backend {s:?}: expected cpu, gpu or auto")),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Auto => "auto",
        })
    }
}

/// The backend a binary runs on, chosen at start-up.
#[derive(Clone, Debug)]
pub enum Compute {
    /// Everything on the CPU.
    Cpu(CpuBackend),
    /// Everything on the GPU.
    Gpu(GpuBackend),
    /// Operations of at least `threshold` multiply-adds on the GPU.
    Auto {
        /// The device.
        gpu: GpuBackend,
        /// Multiply-adds from which the GPU was measured faster.
        threshold: u64,
    },
}

/// Sizes the calibration compares (square matrix products).
const CALIBRATION_SIZES: [usize; 4] = [64, 128, 256, 512];

impl Compute {
    /// Opens the chosen backend. `now` is a clock in milliseconds (the
    /// browser passes `Date.now`), used by `auto` to measure. The choice and
    /// its reason are logged at `info`.
    pub async fn open(
        choice: BackendChoice,
        options: &GpuOptions,
        now: fn() -> f64,
    ) -> Result<Compute> {
        let (compute, why) = Self::open_explained(choice, options, now).await?;
        tracing::info!("backend {choice}: {why}");
        Ok(compute)
    }

    /// [`Compute::open`], also returning why it chose what it chose (for a
    /// command line to print).
    pub async fn open_explained(
        choice: BackendChoice,
        options: &GpuOptions,
        now: fn() -> f64,
    ) -> Result<(Compute, String)> {
        match choice {
            BackendChoice::Cpu => Ok((Compute::Cpu(CpuBackend), "the CPU, as asked".into())),
            BackendChoice::Gpu => {
                let gpu = GpuBackend::new(options).await?;
                let why = format!("the GPU {}, as asked", gpu.adapter());
                Ok((Compute::Gpu(gpu), why))
            }
            BackendChoice::Auto => {
                let options = GpuOptions {
                    hardware_only: true,
                    ..options.clone()
                };
                let gpu = match GpuBackend::new(&options).await {
                    Ok(gpu) => gpu,
                    Err(e) => return Ok((Compute::Cpu(CpuBackend), format!("the CPU ({e})"))),
                };
                Ok(match calibrate(&gpu, now).await? {
                    Some(threshold) => {
                        let why = format!(
                            "the GPU {} for products of at least {threshold} multiply-adds, the CPU below (measured)",
                            gpu.adapter()
                        );
                        (Compute::Auto { gpu, threshold }, why)
                    }
                    None => {
                        let why = format!(
                            "the CPU (the GPU {} was slower at every size up to {}³)",
                            gpu.adapter(),
                            CALIBRATION_SIZES[CALIBRATION_SIZES.len() - 1]
                        );
                        (Compute::Cpu(CpuBackend), why)
                    }
                })
            }
        }
    }

    /// [`Compute::open`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_blocking(choice: BackendChoice, options: &GpuOptions) -> Result<Compute> {
        pollster::block_on(Self::open(choice, options, native_now))
    }

    /// [`Compute::open_explained`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_explained_blocking(
        choice: BackendChoice,
        options: &GpuOptions,
    ) -> Result<(Compute, String)> {
        pollster::block_on(Self::open_explained(choice, options, native_now))
    }

    /// What runs where, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Compute::Cpu(_) => "cpu".into(),
            Compute::Gpu(g) => format!("gpu: {}", g.adapter()),
            Compute::Auto { gpu, threshold } => {
                format!("auto: gpu {} from {threshold} multiply-adds", gpu.adapter())
            }
        }
    }

    /// The GPU an operation of `madds` multiply-adds goes to, if any.
    fn route(&self, madds: u64) -> Option<&GpuBackend> {
        match self {
            Compute::Cpu(_) => None,
            Compute::Gpu(g) => Some(g),
            Compute::Auto { gpu, threshold } => (madds >= *threshold).then_some(gpu),
        }
    }
}

/// Milliseconds since the first call (native clock for [`Compute::open`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn native_now() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

/// The smallest calibration size (in multiply-adds) at which the GPU's
/// matrix product, upload and read-back included, beat the CPU's; `None` if
/// it never did.
async fn calibrate(gpu: &GpuBackend, now: fn() -> f64) -> Result<Option<u64>> {
    for s in CALIBRATION_SIZES {
        let op = BilinearOp::MatMul {
            lhs: vec![s, s],
            rhs: vec![s, s],
        };
        let data: Vec<Ring> = (0..(s * s) as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let x = RingTensor::from_shape_vec(IxDyn(&[s, s]), data)
            .map_err(|e| Error::Shape(format!("{e}")))?;
        let best = |times: &mut Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[0]
        };
        let mut gpu_ms = Vec::new();
        let mut cpu_ms = Vec::new();
        gpu.bilinear_sum_gpu(&op, &[(&x, &x)]).await?; // warm-up
        for _ in 0..3 {
            let t = now();
            gpu.bilinear_sum_gpu(&op, &[(&x, &x)]).await?;
            gpu_ms.push(now() - t);
            let t = now();
            bilinear_sum_sync(&CpuBackend, &op, &[(&x, &x)])?;
            cpu_ms.push(now() - t);
        }
        let (g, c) = (best(&mut gpu_ms), best(&mut cpu_ms));
        tracing::debug!("backend auto: {s}³ product: GPU {g:.2} ms, CPU {c:.2} ms");
        if g < c {
            return Ok(Some((s * s * s) as u64));
        }
    }
    Ok(None)
}

fn madds_gemm(m: usize, k: usize, n: usize) -> u64 {
    (m as u64).saturating_mul(k as u64).saturating_mul(n as u64)
}

impl Backend for Compute {
    fn name(&self) -> &str {
        match self {
            Compute::Cpu(c) => c.name(),
            Compute::Gpu(g) => g.name(),
            Compute::Auto { .. } => "auto",
        }
    }

    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
        match self.route(madds_gemm(m, k, n)) {
            Some(g) => g.gemm(m, k, n, a, b, c),
            None => CpuBackend.gemm(m, k, n, a, b, c),
        }
    }

    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor {
        match self.route(a.len() as u64) {
            Some(g) => g.hadamard(a, b),
            None => CpuBackend.hadamard(a, b),
        }
    }

    fn conv2d(
        &self,
        input: &RingTensor,
        kernel: &RingTensor,
        params: &Conv2dParams,
    ) -> Result<RingTensor> {
        // Output pixels × kernel size, as BilinearOp::multiply_adds counts.
        let (i, k) = (input.shape(), kernel.shape());
        let madds = match (i, k) {
            (&[n, _, h, w], &[o, cg, kh, kw]) => {
                let [oh, ow] = hush_core::backend::conv2d_output_hw([h, w], [kh, kw], params)?;
                madds_gemm(n * o, cg * kh * kw, oh * ow)
            }
            _ => 0,
        };
        match self.route(madds) {
            Some(g) => g.conv2d(input, kernel, params),
            None => CpuBackend.conv2d(input, kernel, params),
        }
    }

    async fn bilinear_sum(
        &self,
        op: &BilinearOp,
        terms: &[(&RingTensor, &RingTensor)],
    ) -> Result<RingTensor> {
        let madds = op.multiply_adds()?.saturating_mul(terms.len() as u64);
        match self.route(madds) {
            Some(g) => g.bilinear_sum_gpu(op, terms).await,
            None => bilinear_sum_sync(&CpuBackend, op, terms),
        }
    }
}
