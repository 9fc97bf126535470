//! Products by Beaver triples: elementwise, matrix and convolution products
//! through one bilinear protocol, squares by square pairs, and products with a
//! session-fixed operand whose mask is opened once (weight-mask reuse).

use super::Party;
use crate::backend::{Backend, Conv2dParams};
use crate::bilinear::BilinearOp;
use crate::channel::Channel;
use crate::elementwise::{add, add_assign, as_slice, for_each_chunk, map, sub};
use crate::error::{Error, PartyId, Result};
use crate::preprocessing::{CorrelationRequest, FixedSide, Preprocessing};
use crate::ring::RingTensor;
use crate::share::{Arith, ArithShare};
use alloc::format;
use alloc::vec::Vec;
use core::fmt;

fn check_shape(what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::Shape(format!(
            "{what} has shape {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// A party's handle on an operand that stays fixed for a session (a layer's
/// weights): its mask `A` was opened once as `E = W − A`, and every later
/// product with it opens only the other operand. `Debug` shows the shape only.
#[derive(Clone)]
pub struct FixedOperand {
    id: u64,
    shape: Vec<usize>,
    /// This party's share of `A`, plus `E` at party 0: the shares of `W`.
    a_plus_e: RingTensor,
    /// The public `E = W − A`.
    e: RingTensor,
}

impl fmt::Debug for FixedOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FixedOperand {{ id: {}, shape: {:?} }}",
            self.id, self.shape
        )
    }
}

impl FixedOperand {
    /// Shape of the fixed operand.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// This party's additive share of the operand itself.
    pub fn share(&self) -> ArithShare {
        ArithShare::from_raw(self.a_plus_e.clone())
    }
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// `op(x, y)` on shares, at the sum of the operands' scales (no truncation).
    pub async fn bilinear_ring(
        &mut self,
        op: &BilinearOp,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<ArithShare> {
        check_shape("left operand", x.shape(), op.lhs_shape())?;
        check_shape("right operand", y.shape(), op.rhs_shape())?;
        let t = self
            .prep
            .next(&CorrelationRequest::Triple(op.clone()))
            .await?
            .into_triple()?;
        let opened = self
            .open_raw_many::<Arith>(&[&sub(x.as_raw(), &t.a), &sub(y.as_raw(), &t.b)])
            .await?;
        let (e, f) = (&opened[0], &opened[1]);
        let me0 = self.id() == 0;
        if let BilinearOp::Hadamard { .. } = op {
            // One fused pass: z = c + e·b + a·f (+ e·f at party 0).
            let (es, fs, a, b) = (as_slice(e), as_slice(f), as_slice(&t.a), as_slice(&t.b));
            let mut z = t.c;
            let zs = z
                .as_slice_mut()
                .ok_or_else(|| Error::Usage("triple share not contiguous".into()))?;
            for_each_chunk(zs, |off, out| {
                for (i, z) in out.iter_mut().enumerate() {
                    let j = off + i;
                    let bj = if me0 { b[j].wrapping_add(fs[j]) } else { b[j] };
                    *z = z
                        .wrapping_add(es[j].wrapping_mul(bj))
                        .wrapping_add(a[j].wrapping_mul(fs[j]));
                }
            });
            return Ok(ArithShare::from_raw(z));
        }
        // z = c + op(e, b) + op(a, f), and party 0 adds op(e, f): op(e, b + f).
        let b_term = if me0 { add(&t.b, f) } else { t.b };
        let mut z = t.c;
        add_assign(&mut z, &op.apply(&self.backend, e, &b_term)?);
        add_assign(&mut z, &op.apply(&self.backend, &t.a, f)?);
        Ok(ArithShare::from_raw(z))
    }

    /// `op(x, y)` on fixed-point shares, truncated back to scale.
    pub async fn bilinear(
        &mut self,
        op: &BilinearOp,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<ArithShare> {
        let z = self.bilinear_ring(op, x, y).await?;
        self.truncate(&z).await
    }

    /// Elementwise product of fixed-point shares.
    pub async fn mul(&mut self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        let op = BilinearOp::Hadamard {
            shape: x.shape().to_vec(),
        };
        self.bilinear(&op, x, y).await
    }

    /// Matrix product (batch axes broadcast) of fixed-point shares.
    pub async fn matmul(&mut self, x: &ArithShare, y: &ArithShare) -> Result<ArithShare> {
        let op = BilinearOp::MatMul {
            lhs: x.shape().to_vec(),
            rhs: y.shape().to_vec(),
        };
        self.bilinear(&op, x, y).await
    }

    /// 2-D convolution of fixed-point shares (input `[N,C,H,W]`, kernel `[O,C/g,kh,kw]`).
    pub async fn conv2d(
        &mut self,
        x: &ArithShare,
        kernel: &ArithShare,
        params: &Conv2dParams,
    ) -> Result<ArithShare> {
        let (Ok(input), Ok(k)) = (
            <[usize; 4]>::try_from(x.shape()),
            <[usize; 4]>::try_from(kernel.shape()),
        ) else {
            return Err(Error::Shape(format!(
                "conv2d needs 4-D input and kernel, got {:?} and {:?}",
                x.shape(),
                kernel.shape()
            )));
        };
        let op = BilinearOp::Conv2d {
            input,
            kernel: k,
            params: *params,
        };
        self.bilinear(&op, x, kernel).await
    }

    /// `x ⊙ x` at double scale (no truncation), by a square pair: one round,
    /// half the traffic of a general product.
    pub async fn square_ring(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let req = CorrelationRequest::Square {
            shape: x.shape().to_vec(),
        };
        let pair = self.prep.next(&req).await?.into_square()?;
        let e = self
            .open_raw_many::<Arith>(&[&sub(x.as_raw(), &pair.a)])
            .await?
            .remove(0);
        // x² = e² + 2·e·a + a²: party 0 adds e².
        let me0 = self.id() == 0;
        let (es, a) = (as_slice(&e), as_slice(&pair.a));
        let mut z = pair.aa;
        let zs = z
            .as_slice_mut()
            .ok_or_else(|| Error::Usage("square pair share not contiguous".into()))?;
        for_each_chunk(zs, |off, out| {
            for (i, z) in out.iter_mut().enumerate() {
                let (e, a) = (es[off + i], a[off + i]);
                let mut v = z.wrapping_add(e.wrapping_mul(a).wrapping_mul(2));
                if me0 {
                    v = v.wrapping_add(e.wrapping_mul(e));
                }
                *z = v;
            }
        });
        Ok(ArithShare::from_raw(z))
    }

    /// `x ⊙ x` on fixed-point shares, truncated.
    pub async fn square(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let z = self.square_ring(x).await?;
        self.truncate(&z).await
    }

    /// Fixes an operand held in the clear by `owner` (its weights) for the
    /// session: one round that opens `E = W − A` for a dealer mask `A`.
    /// `owner` passes `Some(w)`, the others `None`.
    pub async fn fix_operand(
        &mut self,
        owner: PartyId,
        value: Option<&RingTensor>,
        shape: &[usize],
    ) -> Result<FixedOperand> {
        let me = self.id();
        if owner >= self.num_parties() || (me == owner) != value.is_some() {
            return Err(Error::Usage(format!(
                "exactly party {owner} must provide the fixed operand"
            )));
        }
        let req = CorrelationRequest::FixedMask {
            shape: shape.to_vec(),
        };
        let mask = self.prep.next(&req).await?.into_fixed_mask()?;
        let piece = match value {
            Some(w) => {
                check_shape("fixed operand", w.shape(), shape)?;
                sub(w, &mask.a)
            }
            None => map(&mask.a, u64::wrapping_neg),
        };
        let e = self.open_raw_many::<Arith>(&[&piece]).await?.remove(0);
        let a_plus_e = if me == 0 { add(&mask.a, &e) } else { mask.a };
        Ok(FixedOperand {
            id: mask.id,
            shape: shape.to_vec(),
            a_plus_e,
            e,
        })
    }

    /// `op(w, x)` (`side = Lhs`) or `op(x, w)` (`side = Rhs`) for a fixed
    /// operand `w`, at double scale: one round that opens only `x − B`.
    pub async fn bilinear_fixed_ring(
        &mut self,
        op: &BilinearOp,
        side: FixedSide,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        let (w_shape, x_shape) = match side {
            FixedSide::Lhs => (op.lhs_shape(), op.rhs_shape()),
            FixedSide::Rhs => (op.rhs_shape(), op.lhs_shape()),
        };
        check_shape("fixed operand", w.shape(), w_shape)?;
        check_shape("operand", x.shape(), x_shape)?;
        let req = CorrelationRequest::FixedTriple {
            mask: w.id,
            op: op.clone(),
            side,
        };
        let t = self.prep.next(&req).await?.into_fixed_triple()?;
        let f = self
            .open_raw_many::<Arith>(&[&sub(x.as_raw(), &t.b)])
            .await?
            .remove(0);
        let mut z = t.c;
        // x = F + B, w = E + A: op(x, w) = C + op(F, A + E) + op(B, E) (and mirrored).
        let (t1, t2) = match side {
            FixedSide::Rhs => (
                op.apply(&self.backend, &f, &w.a_plus_e)?,
                op.apply(&self.backend, &t.b, &w.e)?,
            ),
            FixedSide::Lhs => (
                op.apply(&self.backend, &w.a_plus_e, &f)?,
                op.apply(&self.backend, &w.e, &t.b)?,
            ),
        };
        add_assign(&mut z, &t1);
        add_assign(&mut z, &t2);
        Ok(ArithShare::from_raw(z))
    }

    /// [`Party::bilinear_fixed_ring`] on fixed-point values, truncated.
    pub async fn bilinear_fixed(
        &mut self,
        op: &BilinearOp,
        side: FixedSide,
        w: &FixedOperand,
        x: &ArithShare,
    ) -> Result<ArithShare> {
        let z = self.bilinear_fixed_ring(op, side, w, x).await?;
        self.truncate(&z).await
    }
}
