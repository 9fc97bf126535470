//! [`GpuBackend`]: plans a bilinear sum as dispatches over bound buffer
//! ranges and runs it with one submission.

use crate::context::{AdapterSummary, Context, Dispatch, GpuOptions, GpuStats};
use crate::shaders::Kernel;
use hush_core::backend::{Backend, Conv2dParams, CpuBackend, conv2d_output_hw, im2col};
use hush_core::bilinear::BilinearOp;
use hush_core::error::{Error, Result};
use hush_core::ring::{Ring, RingTensor};
use ndarray::IxDyn;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Workgroup tile of the GEMM and convolution kernels (`tiled.wgsl`).
const TILE: usize = 64;
/// Invocations per workgroup of the elementwise kernel.
const LANES: usize = 256;

/// The heavy local work of a party on a GPU.
///
/// Cloning shares the device. Results are bit-exact with [`CpuBackend`].
/// [`Backend::bilinear_sum`], which the protocols call, runs on the GPU
/// asynchronously. The synchronous methods block on the GPU natively; in a
/// browser, where nothing may block, they compute on the CPU (only the
/// dealer calls them, and the dealer does not run in a browser).
#[derive(Clone)]
pub struct GpuBackend {
    ctx: Arc<Context>,
    name: String,
}

impl fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.ctx.summary)
            .finish()
    }
}

/// A bound range of a buffer: the aligned byte offset and size, and the
/// element offset of the wanted data inside it.
struct Range {
    offset: u64,
    size: u64,
    shift: u32,
}

impl GpuBackend {
    /// Opens the first high-performance adapter.
    pub async fn new(options: &GpuOptions) -> Result<GpuBackend> {
        let ctx = Context::new(options).await?;
        let name = format!("gpu:{}", ctx.summary.arithmetic);
        #[allow(clippy::arc_with_non_send_sync)] // wgpu's web types are !Send
        let ctx = Arc::new(ctx);
        Ok(GpuBackend { ctx, name })
    }

    /// [`GpuBackend::new`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: &GpuOptions) -> Result<GpuBackend> {
        pollster::block_on(Self::new(options))
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.ctx.summary
    }

    /// Work done so far.
    pub fn stats(&self) -> GpuStats {
        self.ctx.stats()
    }

    /// The bytes range `[start, end)` (in elements) binds as.
    fn range(&self, start: usize, end: usize) -> Result<Range> {
        let first = 8 * start as u64;
        let offset = first - first % self.ctx.storage_align;
        let size = 8 * end as u64 - offset;
        if size > 8 * (self.ctx.max_bind_elems as u64 + self.ctx.storage_align / 8) {
            return Err(Error::Unsupported(
                "a GPU dispatch whose operand range exceeds one storage binding",
            ));
        }
        Ok(Range {
            offset,
            size,
            shift: ((first - offset) / 8) as u32,
        })
    }

    /// `Σ op(xᵢ, yᵢ)` on the GPU.
    pub async fn bilinear_sum_gpu(
        &self,
        op: &BilinearOp,
        terms: &[(&RingTensor, &RingTensor)],
    ) -> Result<RingTensor> {
        for (x, y) in terms {
            op.check_operands(x, y)?;
        }
        let out_shape = op.out_shape()?;
        let out_len: usize = out_shape.iter().product();
        // The kernels index with u32: refuse what they cannot address (such
        // tensors could not fit a GPU buffer anyway).
        let len = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let addressable = |s: &[usize]| len(s).is_some_and(|n| n <= u32::MAX as usize);
        if !addressable(op.lhs_shape()) || !addressable(op.rhs_shape()) || !addressable(&out_shape)
        {
            return Err(Error::Unsupported(
                "a GPU operand of more than 2^32 elements",
            ));
        }
        let zeros = || Ok(RingTensor::zeros(IxDyn(&out_shape)));
        if out_len == 0
            || terms.is_empty()
            || op.lhs_shape().contains(&0)
            || op.rhs_shape().contains(&0)
        {
            return zeros();
        }
        let mut data: Vec<Cow<'_, [Ring]>> = terms
            .iter()
            .flat_map(|(x, y)| [contiguous(x), contiguous(y)])
            .collect();
        // A convolution too large for the implicit GEMM's whole-image
        // bindings goes through im2col matrices and the split GEMM instead.
        let im2col = match op {
            BilinearOp::Conv2d {
                input,
                kernel,
                params,
            } if !self.conv_fits(input, kernel, params)? => {
                for t in 0..terms.len() {
                    data[2 * t] = Cow::Owned(im2col_all(&data[2 * t], input, kernel, params)?);
                }
                true
            }
            _ => false,
        };
        let mut dispatches = Vec::new();
        for t in 0..terms.len() {
            let (x, y, out) = (2 * t, 2 * t + 1, 2 * terms.len());
            match op {
                BilinearOp::Hadamard { .. } => {
                    self.plan_hadamard(&mut dispatches, out_len, [x, y, out], t > 0)?
                }
                BilinearOp::MatMul { .. } => {
                    let plan = op.gemm_plan()?;
                    for [xo, yo, co] in plan.tasks() {
                        self.plan_gemm(
                            &mut dispatches,
                            [plan.m, plan.k, plan.n],
                            [(x, xo), (y, yo), (out, co)],
                            t > 0,
                        )?;
                    }
                }
                BilinearOp::Conv2d {
                    input,
                    kernel,
                    params,
                } if im2col => {
                    let [n, _, h, wd] = *input;
                    let [o, cg, kh, kw] = *kernel;
                    let g = params.groups;
                    let [oh, ow] = conv2d_output_hw([h, wd], [kh, kw], params)?;
                    let (og, rows, cols) = (o / g, cg * kh * kw, oh * ow);
                    for img in 0..n {
                        for grp in 0..g {
                            self.plan_gemm(
                                &mut dispatches,
                                [og, rows, cols],
                                [
                                    (y, grp * og * rows),
                                    (x, (img * g + grp) * rows * cols),
                                    (out, (img * o + grp * og) * cols),
                                ],
                                t > 0,
                            )?;
                        }
                    }
                }
                BilinearOp::Conv2d {
                    input,
                    kernel,
                    params,
                } => self.plan_conv(&mut dispatches, input, kernel, params, [x, y, out], t > 0)?,
            }
        }
        let inputs: Vec<&[Ring]> = data.iter().map(|d| d.as_ref()).collect();
        let out = self.ctx.run(&inputs, out_len, &dispatches).await?;
        RingTensor::from_shape_vec(IxDyn(&out_shape), out)
            .map_err(|e| Error::Shape(format!("GPU output: {e}")))
    }

    fn plan_hadamard(
        &self,
        dispatches: &mut Vec<Dispatch>,
        len: usize,
        [x, y, out]: [usize; 3],
        accumulate: bool,
    ) -> Result<()> {
        let max_groups = self.ctx.max_groups as usize;
        // Chunks that fit one binding and one 2-D dispatch.
        let chunk = (self.ctx.max_bind_elems).min((max_groups * LANES).saturating_mul(max_groups));
        for start in (0..len).step_by(chunk) {
            let n = chunk.min(len - start);
            let groups = n.div_ceil(LANES);
            let (gx, gy) = if groups <= max_groups {
                (groups, 1)
            } else {
                (max_groups, groups.div_ceil(max_groups))
            };
            let r = self.range(start, start + n)?;
            dispatches.push(Dispatch {
                kernel: Kernel::Hadamard,
                params: vec![
                    n as u32,
                    accumulate as u32,
                    r.shift,
                    r.shift,
                    r.shift,
                    (gx * LANES) as u32,
                    0,
                    0,
                ],
                bindings: [
                    (x, r.offset, r.size),
                    (y, r.offset, r.size),
                    (out, r.offset, r.size),
                ],
                groups: [gx as u32, gy as u32, 1],
            });
        }
        Ok(())
    }

    /// `C[m×n] (+)= A[m×k] · B[k×n]` at element offsets, split so that every
    /// bound range fits one binding and every dispatch the workgroup limits:
    /// by rows of A and C, by columns of B and C, and along k (later chunks
    /// accumulate). Any size fits, at worst one row, column block and k-step
    /// per dispatch.
    fn plan_gemm(
        &self,
        dispatches: &mut Vec<Dispatch>,
        [m, k, n]: [usize; 3],
        [(a, ao), (b, bo), (c, co)]: [(usize, usize); 3],
        accumulate: bool,
    ) -> Result<()> {
        let e = self.ctx.max_bind_elems;
        let max_span = self.ctx.max_groups as usize * TILE;
        // Bound spans: B (kc-1)·n + nc, C (rc-1)·n + nc, A (rc-1)·k + kc.
        let nc = n.min(max_span).min(e);
        let kc = k.min(1 + (e - nc) / n);
        let rc = m.min(1 + (e - nc) / n).min(1 + (e - kc) / k).min(max_span);
        for r0 in (0..m).step_by(rc) {
            let rows = rc.min(m - r0);
            for k0 in (0..k).step_by(kc) {
                let depth = kc.min(k - k0);
                for j0 in (0..n).step_by(nc) {
                    let cols = nc.min(n - j0);
                    let ra = self.range(ao + r0 * k + k0, ao + (r0 + rows - 1) * k + k0 + depth)?;
                    let rb = self.range(bo + k0 * n + j0, bo + (k0 + depth - 1) * n + j0 + cols)?;
                    let rcr = self.range(co + r0 * n + j0, co + (r0 + rows - 1) * n + j0 + cols)?;
                    dispatches.push(Dispatch {
                        kernel: Kernel::Gemm,
                        params: vec![
                            rows as u32,
                            depth as u32,
                            cols as u32,
                            (accumulate || k0 > 0) as u32,
                            ra.shift,
                            rb.shift,
                            rcr.shift,
                            k as u32,
                            n as u32,
                            n as u32,
                            0,
                            0,
                        ],
                        bindings: [
                            (a, ra.offset, ra.size),
                            (b, rb.offset, rb.size),
                            (c, rcr.offset, rcr.size),
                        ],
                        groups: [cols.div_ceil(TILE) as u32, rows.div_ceil(TILE) as u32, 1],
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether [`GpuBackend::plan_conv`] can bind one image, the kernel and
    /// one image's output whole, and dispatch a group's product at once.
    fn conv_fits(&self, input: &[usize; 4], kernel: &[usize; 4], p: &Conv2dParams) -> Result<bool> {
        let [_, c, h, wd] = *input;
        let [o, cg, kh, kw] = *kernel;
        let [oh, ow] = conv2d_output_hw([h, wd], [kh, kw], p)?;
        let (e, groups) = (self.ctx.max_bind_elems, self.ctx.max_groups as usize);
        Ok((c * h * wd).max(o * oh * ow) <= e
            && o * cg * kh * kw <= e
            && p.groups <= groups
            && (o / p.groups).div_ceil(TILE) <= groups
            && (oh * ow).div_ceil(TILE) <= groups)
    }

    /// A convolution as implicit GEMMs, one dispatch for as many images as
    /// fit the bindings (at least one; [`GpuBackend::conv_fits`] first).
    fn plan_conv(
        &self,
        dispatches: &mut Vec<Dispatch>,
        input: &[usize; 4],
        kernel: &[usize; 4],
        p: &Conv2dParams,
        [x, w, out]: [usize; 3],
        accumulate: bool,
    ) -> Result<()> {
        let [n, c, h, wd] = *input;
        let [o, cg, kh, kw] = *kernel;
        let g = p.groups;
        let [oh, ow] = conv2d_output_hw([h, wd], [kh, kw], p)?;
        let (og, kdim, cols) = (o / g, cg * kh * kw, oh * ow);
        if !self.conv_fits(input, kernel, p)? {
            return Err(Error::Unsupported(
                "a GPU convolution whose single image or kernel exceeds one binding or dispatch",
            ));
        }
        let e = self.ctx.max_bind_elems;
        let per_image = (c * h * wd).max(o * cols);
        let max_groups = self.ctx.max_groups as usize;
        let images = (e / per_image).min(max_groups / g).max(1);
        let rk = self.range(0, o * kdim)?;
        for i0 in (0..n).step_by(images) {
            let count = images.min(n - i0);
            let rx = self.range(i0 * c * h * wd, (i0 + count) * c * h * wd)?;
            let ro = self.range(i0 * o * cols, (i0 + count) * o * cols)?;
            // Every value is below an addressable operand's element count,
            // but for stride, padding and dilation, which are checked.
            if p.stride
                .iter()
                .chain(&p.padding)
                .chain(&p.dilation)
                .any(|&v| v > u32::MAX as usize / 4)
            {
                return Err(Error::Unsupported(
                    "a GPU convolution with huge stride, padding or dilation",
                ));
            }
            let u = |v: usize| v as u32;
            dispatches.push(Dispatch {
                kernel: Kernel::Conv,
                params: vec![
                    u(og),
                    u(kdim),
                    u(cols),
                    accumulate as u32,
                    u(c),
                    u(h),
                    u(wd),
                    u(cg),
                    u(kh),
                    u(kw),
                    u(oh),
                    u(ow),
                    u(p.stride[0]),
                    u(p.stride[1]),
                    u(p.padding[0]),
                    u(p.padding[1]),
                    u(p.dilation[0]),
                    u(p.dilation[1]),
                    u(g),
                    u(o),
                    rx.shift,
                    rk.shift,
                    ro.shift,
                    0,
                ],
                bindings: [
                    (w, rk.offset, rk.size),
                    (x, rx.offset, rx.size),
                    (out, ro.offset, ro.size),
                ],
                groups: [
                    cols.div_ceil(TILE) as u32,
                    og.div_ceil(TILE) as u32,
                    (count * g) as u32,
                ],
            });
        }
        Ok(())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn blocking(&self, op: &BilinearOp, x: &RingTensor, y: &RingTensor) -> Result<RingTensor> {
        pollster::block_on(self.bilinear_sum_gpu(op, &[(x, y)]))
    }
}

/// The im2col matrices of every image and group, one after another.
fn im2col_all(
    x: &[Ring],
    input: &[usize; 4],
    kernel: &[usize; 4],
    p: &Conv2dParams,
) -> Result<Vec<Ring>> {
    let [n, c, h, w] = *input;
    let [_, cg, kh, kw] = *kernel;
    let [oh, ow] = conv2d_output_hw([h, w], [kh, kw], p)?;
    let each = cg * kh * kw * oh * ow;
    let mut cols = vec![0; n * p.groups * each];
    for img in 0..n {
        for grp in 0..p.groups {
            let at = (img * p.groups + grp) * each;
            im2col(
                x,
                [c, h, w],
                [cg, kh, kw],
                p,
                img,
                grp,
                &mut cols[at..at + each],
            );
        }
    }
    Ok(cols)
}

fn contiguous(t: &RingTensor) -> Cow<'_, [Ring]> {
    match t.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.iter().copied().collect()),
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn gemm(&self, m: usize, k: usize, n: usize, a: &[Ring], b: &[Ring], c: &mut [Ring]) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let op = BilinearOp::MatMul {
                lhs: vec![m, k],
                rhs: vec![k, n],
            };
            let x = RingTensor::from_shape_vec(IxDyn(&[m, k]), a[..m * k].to_vec());
            let y = RingTensor::from_shape_vec(IxDyn(&[k, n]), b[..k * n].to_vec());
            if let (Ok(x), Ok(y)) = (x, y) {
                match self.blocking(&op, &x, &y) {
                    Ok(z) => {
                        if let Some(s) = z.as_slice() {
                            c[..m * n].copy_from_slice(s);
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("GPU gemm failed, computing on the CPU: {e}"),
                }
            }
        }
        CpuBackend.gemm(m, k, n, a, b, c)
    }

    fn hadamard(&self, a: &RingTensor, b: &RingTensor) -> RingTensor {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let op = BilinearOp::Hadamard {
                shape: a.shape().to_vec(),
            };
            match self.blocking(&op, a, b) {
                Ok(z) => return z,
                Err(e) => tracing::warn!("GPU product failed, computing on the CPU: {e}"),
            }
        }
        CpuBackend.hadamard(a, b)
    }

    fn conv2d(
        &self,
        input: &RingTensor,
        kernel: &RingTensor,
        params: &Conv2dParams,
    ) -> Result<RingTensor> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let shape = |t: &RingTensor| -> Result<[usize; 4]> {
                t.shape()
                    .try_into()
                    .map_err(|_| Error::Shape("conv2d needs 4-D operands".into()))
            };
            let op = BilinearOp::Conv2d {
                input: shape(input)?,
                kernel: shape(kernel)?,
                params: *params,
            };
            self.blocking(&op, input, kernel)
        }
        #[cfg(target_arch = "wasm32")]
        CpuBackend.conv2d(input, kernel, params)
    }

    fn bilinear_sum(
        &self,
        op: &BilinearOp,
        terms: &[(&RingTensor, &RingTensor)],
    ) -> impl Future<Output = Result<RingTensor>> {
        self.bilinear_sum_gpu(op, terms)
    }
}
