//! Bilinear operations: the products that Beaver triples are made for.
//!
//! Elementwise product, matrix product (with numpy-style broadcast batch
//! dimensions) and 2-D convolution are all bilinear maps `op(x, y)`, so one
//! Beaver protocol, one kind of dealer triple and one weight-mask-reuse
//! protocol serve all three. A [`BilinearOp`] carries the public shapes of
//! both operands; both parties and the dealer build the same value.

use crate::backend::{Backend, Conv2dParams};
use crate::error::{Error, Result};
use crate::ring::RingTensor;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::IxDyn;

/// A bilinear map with the public shapes of its two operands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BilinearOp {
    /// `x ⊙ y`, both of `shape`.
    Hadamard {
        /// Shape of both operands and of the result.
        shape: Vec<usize>,
    },
    /// `x · y` over the last two axes, batch axes broadcast numpy-style.
    MatMul {
        /// Shape of `x`: `[..., m, k]`.
        lhs: Vec<usize>,
        /// Shape of `y`: `[..., k, n]`.
        rhs: Vec<usize>,
    },
    /// Convolution of an input `[N, C, H, W]` with a kernel `[O, C/g, kh, kw]`.
    Conv2d {
        /// Input shape.
        input: [usize; 4],
        /// Kernel shape.
        kernel: [usize; 4],
        /// Stride, padding, dilation and groups.
        params: Conv2dParams,
    },
}

impl BilinearOp {
    /// Shape of the left operand.
    pub fn lhs_shape(&self) -> &[usize] {
        match self {
            BilinearOp::Hadamard { shape } => shape,
            BilinearOp::MatMul { lhs, .. } => lhs,
            BilinearOp::Conv2d { input, .. } => input,
        }
    }

    /// Shape of the right operand.
    pub fn rhs_shape(&self) -> &[usize] {
        match self {
            BilinearOp::Hadamard { shape } => shape,
            BilinearOp::MatMul { rhs, .. } => rhs,
            BilinearOp::Conv2d { kernel, .. } => kernel,
        }
    }

    /// Shape of the result; an error if the operand shapes do not fit.
    pub fn out_shape(&self) -> Result<Vec<usize>> {
        match self {
            BilinearOp::Hadamard { shape } => Ok(shape.clone()),
            BilinearOp::MatMul { lhs, rhs } => Ok(matmul_plan(lhs, rhs)?.out_shape),
            BilinearOp::Conv2d {
                input,
                kernel,
                params,
            } => Ok(crate::backend::conv::conv2d_output_shape(input, kernel, params)?.to_vec()),
        }
    }

    /// Multiply-adds the map costs (for reports).
    pub fn multiply_adds(&self) -> Result<u64> {
        let out: u64 = self.out_shape()?.iter().product::<usize>() as u64;
        Ok(match self {
            BilinearOp::Hadamard { .. } => out,
            BilinearOp::MatMul { lhs, .. } => out * lhs[lhs.len() - 1] as u64,
            BilinearOp::Conv2d { kernel, .. } => out * (kernel[1] * kernel[2] * kernel[3]) as u64,
        })
    }

    /// An error unless `x` and `y` have the operand shapes of the map.
    pub fn check_operands(&self, x: &RingTensor, y: &RingTensor) -> Result<()> {
        if x.shape() != self.lhs_shape() || y.shape() != self.rhs_shape() {
            return Err(Error::Shape(format!(
                "operands {:?} and {:?} do not match {:?}",
                x.shape(),
                y.shape(),
                self
            )));
        }
        Ok(())
    }

    /// Evaluates `op(x, y)` on ring tensors with `backend`.
    pub fn apply<B: Backend + ?Sized>(
        &self,
        backend: &B,
        x: &RingTensor,
        y: &RingTensor,
    ) -> Result<RingTensor> {
        self.check_operands(x, y)?;
        match self {
            BilinearOp::Hadamard { .. } => Ok(backend.hadamard(x, y)),
            BilinearOp::MatMul { .. } => batched_matmul(backend, self, x, y),
            BilinearOp::Conv2d { params, .. } => backend.conv2d(x, y, params),
        }
    }
}

struct MatMulPlan {
    m: usize,
    k: usize,
    n: usize,
    batch: Vec<usize>,
    out_shape: Vec<usize>,
}

fn matmul_plan(lhs: &[usize], rhs: &[usize]) -> Result<MatMulPlan> {
    if lhs.len() < 2 || rhs.len() < 2 {
        return Err(Error::Shape(format!(
            "matmul needs operands of rank >= 2, got {lhs:?} and {rhs:?}"
        )));
    }
    let (m, k) = (lhs[lhs.len() - 2], lhs[lhs.len() - 1]);
    let (k2, n) = (rhs[rhs.len() - 2], rhs[rhs.len() - 1]);
    if k != k2 {
        return Err(Error::Shape(format!(
            "matmul inner dimensions differ: {lhs:?} · {rhs:?}"
        )));
    }
    let (lb, rb) = (&lhs[..lhs.len() - 2], &rhs[..rhs.len() - 2]);
    let rank = lb.len().max(rb.len());
    let mut batch = vec![0; rank];
    for (i, b) in batch.iter_mut().enumerate() {
        let l = dim_from_end(lb, rank - 1 - i);
        let r = dim_from_end(rb, rank - 1 - i);
        *b = match (l, r) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(Error::Shape(format!(
                    "matmul batch dimensions do not broadcast: {lhs:?} · {rhs:?}"
                )));
            }
        };
    }
    let mut out_shape = batch.clone();
    out_shape.extend_from_slice(&[m, n]);
    Ok(MatMulPlan {
        m,
        k,
        n,
        batch,
        out_shape,
    })
}

/// Dimension `i` counted from the end (0 = last), 1 where the shape is shorter.
fn dim_from_end(shape: &[usize], i: usize) -> usize {
    if i < shape.len() {
        shape[shape.len() - 1 - i]
    } else {
        1
    }
}

/// Offset (in matrices) of broadcast batch index `idx` into an operand with batch dims `dims`.
fn batch_offset(idx: &[usize], dims: &[usize]) -> usize {
    let skip = idx.len() - dims.len();
    let mut off = 0;
    for (d, &size) in dims.iter().enumerate() {
        let i = if size == 1 { 0 } else { idx[skip + d] };
        off = off * size + i;
    }
    off
}

/// A matrix product as plain GEMMs: every item of [`GemmPlan::tasks`] is
/// `out[c..c+m·n] = x[a..a+m·k] · y[b..b+k·n]` on row-major matrices.
/// Backends that batch work (a GPU) use it to run a whole [`BilinearOp::MatMul`]
/// in one submission; [`BilinearOp::apply`] runs the same plan on the CPU.
/// The tasks are computed as they are read, so a plan takes the same small
/// memory whatever its batch (a peer may ask for 2^28 tiny products).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmPlan {
    /// Rows of each left matrix (and of each output).
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of each right matrix (and of each output).
    pub n: usize,
    /// Shape of the result.
    pub out_shape: Vec<usize>,
    /// Number of products: 0 when each is empty or zero (`m`, `k` or `n`
    /// is 0: the result, zero-filled, is already right).
    count: usize,
    /// The broadcast batch shape and the operands' own batch shapes; empty
    /// when the batch is folded into the rows of one product.
    batch: Vec<usize>,
    lhs_batch: Vec<usize>,
    rhs_batch: Vec<usize>,
}

impl GemmPlan {
    /// Number of products ([`GemmPlan::tasks`]).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no product to compute (the result is all zeros).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Offsets in elements `[x, y, out]` of each product.
    pub fn tasks(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut idx = vec![0; self.batch.len()];
        (0..self.count).map(move |b| {
            let mut rem = b;
            for d in (0..idx.len()).rev() {
                idx[d] = rem % self.batch[d];
                rem /= self.batch[d];
            }
            [
                batch_offset(&idx, &self.lhs_batch) * m * k,
                batch_offset(&idx, &self.rhs_batch) * k * n,
                b * m * n,
            ]
        })
    }
}

impl BilinearOp {
    /// The GEMMs of a matrix product; an error for other operations.
    pub fn gemm_plan(&self) -> Result<GemmPlan> {
        let BilinearOp::MatMul { lhs, rhs } = self else {
            return Err(Error::Usage(format!("{self:?} is not a matrix product")));
        };
        let plan = matmul_plan(lhs, rhs)?;
        let (m, k, n) = (plan.m, plan.k, plan.n);
        let count: usize = plan.batch.iter().product();
        let (lb, rb) = (&lhs[..lhs.len() - 2], &rhs[..rhs.len() - 2]);
        // `count` products at offset 0 and no batch to walk: none, or one.
        let unbatched = |m, count| GemmPlan {
            m,
            k,
            n,
            out_shape: plan.out_shape.clone(),
            count,
            batch: Vec::new(),
            lhs_batch: Vec::new(),
            rhs_batch: Vec::new(),
        };
        if m == 0 || k == 0 || n == 0 || count == 0 {
            return Ok(unbatched(m, 0));
        }
        if rb.iter().all(|&d| d == 1) && lb.iter().product::<usize>() == count {
            // Shared right operand: fold the batch into the rows of one product.
            return Ok(unbatched(count * m, 1));
        }
        Ok(GemmPlan {
            m,
            k,
            n,
            out_shape: plan.out_shape,
            count,
            batch: plan.batch,
            lhs_batch: lb.to_vec(),
            rhs_batch: rb.to_vec(),
        })
    }
}

fn batched_matmul<B: Backend + ?Sized>(
    backend: &B,
    op: &BilinearOp,
    x: &RingTensor,
    y: &RingTensor,
) -> Result<RingTensor> {
    let plan = op.gemm_plan()?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let x = x.as_standard_layout();
    let y = y.as_standard_layout();
    let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) else {
        return Err(Error::Usage("matmul operands must be contiguous".into()));
    };
    let mut out = vec![0u64; plan.out_shape.iter().product()];
    for [xo, yo, co] in plan.tasks() {
        backend.gemm(
            m,
            k,
            n,
            &xs[xo..xo + m * k],
            &ys[yo..yo + k * n],
            &mut out[co..co + m * n],
        );
    }
    RingTensor::from_shape_vec(IxDyn(&plan.out_shape), out)
        .map_err(|e| Error::Shape(format!("matmul output: {e}")))
}

/// `Σ op(xᵢ, yᵢ)` evaluated term by term with `backend`'s synchronous
/// methods: the default of [`Backend::bilinear_sum`].
pub fn bilinear_sum_sync<B: Backend + ?Sized>(
    backend: &B,
    op: &BilinearOp,
    terms: &[(&RingTensor, &RingTensor)],
) -> Result<RingTensor> {
    let mut total: Option<RingTensor> = None;
    for (x, y) in terms {
        let t = op.apply(backend, x, y)?;
        match &mut total {
            None => total = Some(t),
            Some(acc) => crate::elementwise::add_assign(acc, &t),
        }
    }
    match total {
        Some(t) => Ok(t),
        None => Ok(RingTensor::zeros(IxDyn(&op.out_shape()?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::prg::{Prg, Seed};
    use ndarray::Axis;

    fn mat2(x: &RingTensor, y: &RingTensor) -> RingTensor {
        let (m, k, n) = (x.shape()[0], x.shape()[1], y.shape()[1]);
        let mut out = RingTensor::zeros(IxDyn(&[m, n]));
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0u64;
                for p in 0..k {
                    acc = acc.wrapping_add(x[[i, p]].wrapping_mul(y[[p, j]]));
                }
                out[[i, j]] = acc;
            }
        }
        out
    }

    #[test]
    fn broadcast_batches_match_per_matrix_products() {
        let mut prg = Prg::new(&Seed::from_bytes([8; 32]));
        for (ls, rs) in [
            (vec![3, 4], vec![4, 5]),
            (vec![2, 3, 4], vec![4, 5]),
            (vec![3, 4], vec![2, 4, 5]),
            (vec![2, 1, 3, 4], vec![3, 4, 2]),
            (vec![2, 3, 0, 4], vec![4, 2]),
        ] {
            let op = BilinearOp::MatMul {
                lhs: ls.clone(),
                rhs: rs.clone(),
            };
            let x = prg.tensor(&ls);
            let y = prg.tensor(&rs);
            let z = op.apply(&CpuBackend, &x, &y).unwrap();
            assert_eq!(z.shape(), op.out_shape().unwrap().as_slice());
            // Check every output matrix against the broadcast operands.
            let out = op.out_shape().unwrap();
            let nb = out.len() - 2;
            let xb = x
                .broadcast(IxDyn(&[&out[..nb], &ls[ls.len() - 2..]].concat()))
                .unwrap()
                .to_owned();
            let yb = y
                .broadcast(IxDyn(&[&out[..nb], &rs[rs.len() - 2..]].concat()))
                .unwrap()
                .to_owned();
            let flat = |t: &RingTensor, r: usize, c: usize| {
                t.clone()
                    .into_shape_with_order(IxDyn(&[t.len() / (r * c).max(1), r, c]))
                    .unwrap()
            };
            let (m, k, n) = (ls[ls.len() - 2], ls[ls.len() - 1], rs[rs.len() - 1]);
            if m * k * n == 0 {
                continue;
            }
            let (xf, yf, zf) = (flat(&xb, m, k), flat(&yb, k, n), flat(&z, m, n));
            for b in 0..zf.len_of(Axis(0)) {
                let expect = mat2(
                    &xf.index_axis(Axis(0), b).to_owned().into_dyn(),
                    &yf.index_axis(Axis(0), b).to_owned().into_dyn(),
                );
                assert_eq!(zf.index_axis(Axis(0), b).to_owned().into_dyn(), expect);
            }
        }
    }

    #[test]
    fn empty_and_zero_products_plan_no_gemm() {
        // A peer may ask for 2^27 batched products of empty matrices (what
        // libFuzzer sent the dealer): no task is made, the result is zeros.
        let op = BilinearOp::MatMul {
            lhs: vec![0, 0],
            rhs: vec![15908, 13875, 0, 0],
        };
        let plan = op.gemm_plan().unwrap();
        assert!(plan.is_empty());
        assert_eq!(plan.tasks().count(), 0);
        let z = op
            .apply(
                &CpuBackend,
                &RingTensor::zeros(IxDyn(&[0, 0])),
                &RingTensor::zeros(IxDyn(&[15908, 13875, 0, 0])),
            )
            .unwrap();
        assert_eq!(z.shape(), &[15908, 13875, 0, 0]);
        // An inner dimension of 0: every output element is an empty sum.
        let op = BilinearOp::MatMul {
            lhs: vec![3, 1, 2, 0],
            rhs: vec![4, 0, 5],
        };
        assert!(op.gemm_plan().unwrap().is_empty());
        let x = RingTensor::zeros(IxDyn(&[3, 1, 2, 0]));
        let y = RingTensor::zeros(IxDyn(&[4, 0, 5]));
        let z = op.apply(&CpuBackend, &x, &y).unwrap();
        assert_eq!(z.shape(), &[3, 4, 2, 5]);
        assert!(z.iter().all(|&v| v == 0));
        // A large batch of tiny products is planned in constant memory.
        let op = BilinearOp::MatMul {
            lhs: vec![1 << 20, 1, 1],
            rhs: vec![1 << 20, 1, 1],
        };
        let plan = op.gemm_plan().unwrap();
        assert_eq!(plan.len(), 1 << 20);
        assert_eq!(plan.tasks().nth(5), Some([5, 5, 5]));
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        for (l, r) in [
            (vec![3, 4], vec![5, 2]),
            (vec![4], vec![4, 2]),
            (vec![2, 3, 4], vec![3, 4, 5]),
        ] {
            assert!(matches!(
                BilinearOp::MatMul { lhs: l, rhs: r }.out_shape(),
                Err(Error::Shape(_))
            ));
        }
        let op = BilinearOp::Hadamard { shape: vec![2] };
        let a = RingTensor::zeros(IxDyn(&[3]));
        assert!(op.apply(&CpuBackend, &a, &a).is_err());
    }
}
