//! Backends for the heavy local work of a party: ring matrix products,
//! convolutions and elementwise products, all with wrapping `u64` arithmetic.
//!
//! Protocols never loop over elements of a product themselves; they call a
//! [`Backend`], so the same protocol runs on the CPU ([`CpuBackend`]) or a GPU.
//! Shape checking and batching live in [`crate::bilinear`]; a backend sees
//! plain row-major slices.

pub(crate) mod conv;
mod cpu;
mod gemm;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod gemm_amx;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod gemm_x86;

pub use conv::{Conv2dParams, conv2d_output_hw, conv2d_output_shape, im2col};
pub use cpu::CpuBackend;

use crate::bilinear::{BilinearOp, bilinear_sum_sync};
use crate::error::Result;
use crate::ring::{Ring, RingTensor};

/// Heavy local arithmetic over Z_2^64.
pub trait Backend {
    /// A short name for reports (`"cpu"`, `"gpu:..."`).
    fn name(&self) -> &str;

    /// `c = a · b` (wrapping) for row-major `a` (m×k) and `b` (k×n); `c` is m×n
    /// and is overwritten.
    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]);

    /// `a ⊙ b` elementwise (wrapping), shapes already checked equal.
    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor;

    /// 2-D convolution of `input` `[N, C, H, W]` with `kernel`
    /// `[O, C/groups, kh, kw]` (cross-correlation, as ONNX `Conv`). Shapes are
    /// already checked. The default lowers to [`Backend::gemm`] by im2col.
    fn conv2d(
        &self,
        input: &RingTensor,
        kernel: &RingTensor,
        params: &Conv2dParams,
    ) -> Result<RingTensor> {
        conv::conv2d_im2col(self, input, kernel, params)
    }

    /// `Σᵢ op(xᵢ, yᵢ)`: the entry point the protocols use (a Beaver product
    /// needs `op(e, b) + op(a, f)`). Asynchronous, so that a GPU whose results
    /// arrive through a callback (WebGPU) can serve it, and batched, so that a
    /// GPU runs all terms in one submission with one read-back. The default
    /// evaluates term by term with the synchronous methods.
    fn bilinear_sum(
        &self,
        op: &BilinearOp,
        terms: &[(&RingTensor, &RingTensor)],
    ) -> impl Future<Output = Result<RingTensor>> {
        core::future::ready(bilinear_sum_sync(self, op, terms))
    }
}

impl<B: Backend + ?Sized> Backend for &B {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
        (**self).gemm(m, k, n, a, b, c)
    }
    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor {
        (**self).hadamard(a, b)
    }
    fn conv2d(
        &self,
        input: &RingTensor,
        kernel: &RingTensor,
        params: &Conv2dParams,
    ) -> Result<RingTensor> {
        (**self).conv2d(input, kernel, params)
    }
    fn bilinear_sum(
        &self,
        op: &BilinearOp,
        terms: &[(&RingTensor, &RingTensor)],
    ) -> impl Future<Output = Result<RingTensor>> {
        (**self).bilinear_sum(op, terms)
    }
}
