//! `--backend cpu|gpu|auto`: where a party's heavy local work runs.

use hush_gpu::{BackendChoice, Compute, GpuOptions};

/// The `--backend` option shared by `serve`, `infer`, `run` and `bench`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BackendArgs {
    /// Where this process's party computes its products: `cpu`; `gpu`
    /// (wgpu: Vulkan, Metal or DX12; an error without an adapter); or `auto`:
    /// the GPU for products at least as large as the size where it measured
    /// faster than the CPU at start-up, the CPU for the rest, and the CPU
    /// alone (with the reason logged) without a hardware GPU.
    #[arg(long, default_value_t = BackendChoice::Cpu, env = "HUSH_BACKEND")]
    pub backend: BackendChoice,
}

impl BackendArgs {
    /// Opens the chosen backend, logging what was chosen; `auto` also says
    /// why on stderr (whatever the log level), since it may fall back, and
    /// so does an `HUSH_CPU_GEMM` or `HUSH_CPU_VECTOR` that names nothing
    /// it knows.
    pub fn open(&self) -> Result<Compute, hush_core::Error> {
        let (compute, why) =
            Compute::open_explained_blocking(self.backend, &GpuOptions::default())?;
        if self.backend == BackendChoice::Auto {
            eprintln!("backend auto: {why}");
        }
        // A misspelt kernel cap is said on stderr whatever the log level
        // (`run` and `bench` install no logger).
        for warning in hush_core::backend::CpuBackend::ignored_caps() {
            eprintln!("warning: {warning}");
        }
        tracing::info!(
            backend = %compute.describe(),
            cpu_gemm_kernel = hush_core::backend::CpuBackend::gemm_kernel(),
            cpu_vector = hush_core::backend::CpuBackend::vector_level(),
            "compute backend: {why}"
        );
        Ok(compute)
    }
}
