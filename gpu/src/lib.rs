//! # hush-gpu
//!
//! [`hush_core::backend::Backend`] on a GPU through wgpu: Vulkan, Metal or
//! DX12 natively, WebGPU in the browser, with one set of WGSL kernels
//! (`src/wgsl/`). Two arithmetic variants for Z_2^64 ([`Arithmetic`]): native
//! `u64` where the adapter offers `SHADER_INT64`, two `u32` limbs elsewhere
//! (browsers). Both are bit-exact with the CPU backend; the tests check it on
//! lavapipe (Mesa's Vulkan on the CPU) and in headless Chromium (SwiftShader).
//!
//! What runs on the GPU: matrix products (tiled, workgroup memory), 2-D
//! convolutions (implicit GEMM, no im2col matrix) and elementwise products,
//! each [`Backend::bilinear_sum`](hush_core::backend::Backend::bilinear_sum)
//! in one submission with one read-back. Tensors larger than one storage
//! binding are split into bound sub-ranges. Buffers are pooled and reused
//! across layers.
//!
//! [`Compute`] is what binaries hold: the CPU, the GPU, or `auto`, which sends
//! an operation to the GPU only above a size where the GPU was measured to win.

mod context;
mod gpu;
mod select;
pub mod shaders;

pub use context::{AdapterSummary, GpuOptions, GpuStats};
pub use gpu::GpuBackend;
pub use select::{BackendChoice, Compute};
pub use shaders::{Arithmetic, Kernel};
