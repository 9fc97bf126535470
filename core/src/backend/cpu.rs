//! The CPU backend: tiled GEMM, im2col convolution, elementwise products.
//! With the `std` feature the work is split over rayon's thread pool; without
//! it (wasm) everything runs on the calling thread.

use super::gemm::{Gemm, gemm_serial};
use super::{Backend, Conv2dParams};
use crate::error::Result;
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
    /// `"amx"` (large products on AMX, the rest on AVX-512), `"avx512"`,
    /// `"avx2"` (x86-64, detected at run time) or `"portable"`.
    pub fn gemm_kernel() -> &'static str {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Some(name) = super::gemm_x86::kernel_name() {
            return name;
        }
        "portable"
    }

    /// The vector unit the protocols' elementwise passes are built for
    /// here, for logs and reports: `"avx512"`, `"avx2"` (x86-64, detected at
    /// run time, capped by `HUSH_CPU_VECTOR`) or `"baseline"` (what the
    /// target is compiled for).
    pub fn vector_level() -> &'static str {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return crate::cpu_cap::Capped::name(crate::elementwise::vector::level());
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        "baseline"
    }

    /// A warning for each of `HUSH_CPU_GEMM` and `HUSH_CPU_VECTOR` (which
    /// cap the matrix-product kernel and the elementwise passes' vector
    /// unit) that is set to a name none of its choices has, and so ignored;
    /// none on a build without the x86 code paths.
    pub fn ignored_caps() -> alloc::vec::Vec<alloc::string::String> {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        return [
            crate::cpu_cap::ignored::<super::gemm_x86::Kernel>(),
            crate::cpu_cap::ignored::<crate::elementwise::vector::Level>(),
        ]
        .into_iter()
        .flatten()
        .collect();
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        alloc::vec::Vec::new()
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        let g = Gemm::dense(m, k, n, a, b);
        #[cfg(feature = "std")]
        if m.saturating_mul(k).saturating_mul(n) >= PARALLEL_THRESHOLD {
            return gemm_parallel(g, &mut c[..m * n]);
        }
        gemm_serial(g, c, n);
    }

    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor {
        crate::elementwise::zip_map(a, b, u64::wrapping_mul)
    }

    fn conv2d(
        &self,
        input: &RingTensor,
        kernel: &RingTensor,
        params: &Conv2dParams,
    ) -> Result<RingTensor> {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Some(out) = conv2d_amx(input, kernel, params)? {
            return Ok(out);
        }
        super::conv::conv2d_im2col(self, input, kernel, params)
    }
}

/// The convolution on AMX with the im2col matrix read from the image as it
/// is packed (`gemm_amx::conv`), never made: on a `64 × 3×3` convolution of
/// `32 × 32` pixels making it and reading it back cost as much as the
/// product. `None` where the products would not go to AMX.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn conv2d_amx(
    input: &RingTensor,
    kernel: &RingTensor,
    p: &Conv2dParams,
) -> Result<Option<RingTensor>> {
    use super::gemm::MatRef;
    use super::gemm_amx::Im2col;
    use crate::error::Error;
    use rayon::prelude::*;
    let [n, o, oh, ow] = super::conv::conv2d_output_shape(input.shape(), kernel.shape(), p)?;
    let (c, h, w) = (input.shape()[1], input.shape()[2], input.shape()[3]);
    let (kh, kw) = (kernel.shape()[2], kernel.shape()[3]);
    let (cg, og) = (c / p.groups, o / p.groups);
    let (rows, cols) = (cg * kh * kw, oh * ow);
    if !super::gemm_x86::amx_for(og, rows, cols) {
        return Ok(None);
    }
    let input = input.as_standard_layout();
    let kernel = kernel.as_standard_layout();
    let (Some(x), Some(kdata)) = (input.as_slice(), kernel.as_slice()) else {
        return Err(Error::Usage("conv2d operands must be contiguous".into()));
    };
    let mut out = alloc::vec![0u64; n * o * cols];
    let parallel = og.saturating_mul(rows).saturating_mul(cols) >= PARALLEL_THRESHOLD;
    for img in 0..n {
        for grp in 0..p.groups {
            let view = Im2col {
                x: &x[(img * c + grp * cg) * h * w..][..cg * h * w],
                channels: cg,
                hw: [h, w],
                khw: [kh, kw],
                ow,
                stride: p.stride,
                dilation: p.dilation,
                pad: [p.padding[0], p.padding[1]],
                col0: 0,
            };
            let a = MatRef {
                data: &kdata[grp * og * rows..][..og * rows],
                ld: rows,
            };
            let dst = &mut out[(img * o + grp * og) * cols..][..og * cols];
            let threads = if parallel {
                rayon::current_num_threads()
            } else {
                1
            };
            let (width, mut tasks) = column_tasks(dst, og, cols, threads);
            tasks.par_iter_mut().enumerate().for_each(|(t, pieces)| {
                let view = Im2col {
                    col0: t * width,
                    ..view
                };
                let w = pieces.first().map_or(0, |p| p.len());
                super::gemm_amx::conv(a, og, &view, w, pieces);
            });
        }
    }
    let out = RingTensor::from_shape_vec(ndarray::IxDyn(&[n, o, oh, ow]), out)
        .map_err(|e| Error::Shape(alloc::format!("conv2d output: {e}")))?;
    Ok(Some(out))
}

/// Splits the `m × n` row-major `c` into one block of columns per thread
/// (aligned to [`super::gemm::SPLIT_ALIGN`]): the blocks' width and, for
/// each, its piece of every row.
#[cfg(feature = "std")]
fn column_tasks(
    c: &mut [Ring],
    m: usize,
    n: usize,
    threads: usize,
) -> (usize, alloc::vec::Vec<alloc::vec::Vec<&mut [Ring]>>) {
    use alloc::vec::Vec;
    let cols = n
        .div_ceil(threads.max(1))
        .next_multiple_of(super::gemm::SPLIT_ALIGN);
    let mut per_task: Vec<Vec<&mut [Ring]>> = Vec::new();
    for row in c[..m * n].chunks_mut(n) {
        for (t, piece) in row.chunks_mut(cols).enumerate() {
            if per_task.len() <= t {
                per_task.push(Vec::with_capacity(m));
            }
            per_task[t].push(piece);
        }
    }
    (cols, per_task)
}

/// Splits `C` between rayon's threads, one block per thread. Each task
/// packs the whole operand it does not split (all of `B` for a block of rows,
/// all of `A` for a block of columns), so the blocks are as few as there are
/// threads, and the rows are split when `A` has at least as many rows as `B`
/// has columns, the columns otherwise: a convolution's
/// `out_channels × pixels` output (64 × 1024 and wider) would otherwise pack
/// its large `im2col` matrix once per block of rows. (Four blocks a thread
/// made a `512³` product pack `B` eight times: 12% of its time on two cores.)
#[cfg(feature = "std")]
fn gemm_parallel(g: Gemm<'_>, c: &mut [Ring]) {
    use super::gemm::gemm_rows;
    use rayon::prelude::*;
    let threads = rayon::current_num_threads().max(1);
    let Gemm { m, n, .. } = g;
    let align = super::gemm::SPLIT_ALIGN;
    if m >= n && m >= align * threads {
        let rows = m.div_ceil(threads).next_multiple_of(align);
        c[..m * n]
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(t, cchunk)| {
                let r0 = t * rows;
                let h = cchunk.len() / n;
                gemm_serial(g.rows(r0, h), cchunk, n);
            });
    } else {
        // Each task gets its columns of every row as a list of row pieces.
        let (cols, mut per_task) = column_tasks(c, m, n, threads);
        per_task.par_iter_mut().enumerate().for_each(|(t, pieces)| {
            let j0 = t * cols;
            let w = pieces.first().map_or(0, |p| p.len());
            gemm_rows(g.cols(j0, w), pieces);
        });
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
