//! The CPU backend: tiled GEMM, im2col convolution, elementwise products.
//! With the `std` feature the work is split over rayon's thread pool; without
//! it (wasm) everything runs on the calling thread.

use super::Backend;
use super::gemm::{Gemm, gemm_serial};
use crate::ring::{Ring, RingTensor};

/// Products below this many multiply-adds stay on one thread.
#[cfg(feature = "std")]
const PARALLEL_THRESHOLD: usize = 1 << 16;

/// The CPU backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// A CPU backend using rayon's global pool when `std` is on.
    pub fn new() -> Self {
        CpuBackend
    }

    /// The matrix-product kernel this CPU gets, for logs and reports:
    /// `"avx512"`, `"avx2"` (x86-64, detected at run time) or `"portable"`.
    pub fn gemm_kernel() -> &'static str {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Some(name) = super::gemm_x86::kernel_name() {
            return name;
        }
        "portable"
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        #[cfg(feature = "std")]
        if m.saturating_mul(k).saturating_mul(n) >= PARALLEL_THRESHOLD {
            return gemm_parallel(m, k, n, a, b, c);
        }
        gemm_serial(Gemm::dense(m, k, n, a, b), c, n);
    }

    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor {
        crate::elementwise::zip_map(a, b, u64::wrapping_mul)
    }
}

/// Splits `C` between rayon's threads, a few blocks per thread. Each task
/// packs the whole operand it does not split (all of `B` for a block of rows,
/// all of `A` for a block of columns), so the rows are split when `A` has at
/// least as many rows as `B` has columns, the columns otherwise: a
/// convolution's `out_channels × pixels` output (64 × 1024 and wider) would
/// otherwise pack its large `im2col` matrix once per block of 8 rows.
#[cfg(feature = "std")]
fn gemm_parallel(m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
    use alloc::vec;
    use rayon::prelude::*;
    let threads = rayon::current_num_threads().max(1);
    let g = Gemm::dense(m, k, n, a, b);
    if m >= n && m >= 4 * threads {
        let rows = m
            .div_ceil(threads * 4)
            .next_multiple_of(super::gemm::SPLIT_ALIGN);
        c[..m * n]
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(t, cchunk)| {
                let r0 = t * rows;
                let h = cchunk.len() / n;
                gemm_serial(g.rows(r0, h), cchunk, n);
            });
    } else {
        let cols = n
            .div_ceil(threads * 2)
            .next_multiple_of(super::gemm::SPLIT_ALIGN);
        let parts: alloc::vec::Vec<(usize, alloc::vec::Vec<Ring>)> = (0..n)
            .step_by(cols)
            .collect::<alloc::vec::Vec<_>>()
            .into_par_iter()
            .map(|j0| {
                let w = cols.min(n - j0);
                let mut part = vec![0u64; m * w];
                gemm_serial(g.cols(j0, w), &mut part, w);
                (j0, part)
            })
            .collect();
        for (j0, part) in parts {
            let w = part.len() / m.max(1);
            for i in 0..m {
                c[i * n + j0..i * n + j0 + w].copy_from_slice(&part[i * w..(i + 1) * w]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gemm::for_each_case;
    use alloc::vec;

    #[test]
    fn parallel_gemm_matches_naive_tall_and_wide() {
        let shapes = [
            (1, 1024, 300),
            (2, 64, 1027),
            (130, 70, 129),
            (513, 33, 5),
            (64, 300, 1030),
        ];
        for_each_case(5, &shapes, |m, k, n, a, b, want| {
            let mut c = vec![1; m * n];
            CpuBackend.gemm(m, k, n, a, b, &mut c);
            assert_eq!(c, want, "{m}x{k}x{n}");
        });
    }
}
