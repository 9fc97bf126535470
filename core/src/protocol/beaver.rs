//! Products by Beaver triples: elementwise, matrix and convolution products
//! through one bilinear protocol, and squares by square pairs. Products with
//! an operand fixed for the session (a layer's weights) are in `fixed.rs`.

use super::Party;
use crate::backend::{Backend, Conv2dParams};
use crate::bilinear::BilinearOp;
use crate::channel::Channel;
use crate::elementwise::{add, add_assign, as_slice, for_each_chunk, from_vec};
use crate::error::{Error, Result};
use crate::preprocessing::{BeaverTriple, CorrelationRequest, Divisor, Preprocessing};
use crate::protocol::TruncationMode;
use crate::protocol::open::{Exchanged, LANES};
use crate::ring::RingTensor;
use crate::share::{Arith, ArithShare};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use ndarray::IxDyn;

pub(super) fn check_shape(what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::Shape(format!(
            "{what} has shape {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// Writes this party's shares of elements `off..off + out.len()` of `x ⊙ y`:
/// with `e = x − a + peers` and `f = y − b + peers` (the opened masks),
/// `c + e·b + a·f`, plus `e·f` at party 0. Triple shares are contiguous
/// (checked by `beaver_exchange`).
fn hadamard_share<'a>(
    me0: bool,
    xs: &'a [u64],
    ys: &'a [u64],
    t: &'a BeaverTriple,
    ex: &'a Exchanged,
) -> impl Fn(usize, &mut [u64]) + Sync + Send + 'a {
    let (a, b, c) = (
        t.a.as_slice().unwrap_or_default(),
        t.b.as_slice().unwrap_or_default(),
        t.c.as_slice().unwrap_or_default(),
    );
    let lx = xs.len();
    #[inline(always)]
    move |off, out| {
        let (mut pe, mut pf) = ([0u64; LANES], [0u64; LANES]);
        for (k, sub) in out.chunks_mut(LANES).enumerate() {
            let o = off + k * LANES;
            let m = sub.len();
            ex.peers.read(o, &mut pe[..m]);
            ex.peers.read(lx + o, &mut pf[..m]);
            let rows = sub
                .iter_mut()
                .zip(&xs[o..o + m])
                .zip(&ys[o..o + m])
                .zip(&a[o..o + m])
                .zip(&b[o..o + m])
                .zip(&c[o..o + m])
                .zip(pe[..m].iter().zip(&pf[..m]));
            for ((((((z, &x), &y), &a), &b), &c), (&pe, &pf)) in rows {
                let e = x.wrapping_sub(a).wrapping_add(pe);
                let f = y.wrapping_sub(b).wrapping_add(pf);
                let bj = if me0 { b.wrapping_add(f) } else { b };
                *z = c
                    .wrapping_add(e.wrapping_mul(bj))
                    .wrapping_add(a.wrapping_mul(f));
            }
        }
    }
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Fetches a triple for `op` and exchanges the pieces of `E = x − A` and
    /// `F = y − B` in one round, without combining them yet (`E‖F` element
    /// `j` is this party's piece plus `ex.peers.at(j)`).
    async fn beaver_exchange(
        &mut self,
        op: &BilinearOp,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<(BeaverTriple, Exchanged)> {
        check_shape("left operand", x.shape(), op.lhs_shape())?;
        check_shape("right operand", y.shape(), op.rhs_shape())?;
        let t = self
            .prep
            .next(&CorrelationRequest::Triple(op.clone()))
            .await?
            .into_triple()?;
        if [&t.a, &t.b, &t.c].iter().any(|v| !v.is_standard_layout()) {
            return Err(Error::Usage("triple shares must be contiguous".into()));
        }
        let (xs, ys, a, b) = (
            as_slice(x.as_raw()),
            as_slice(y.as_raw()),
            as_slice(&t.a),
            as_slice(&t.b),
        );
        let lx = xs.len();
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [u64]| {
                // E‖F: the run starting at `off` may cross from E into F.
                let split = lx.saturating_sub(off).min(out.len());
                let (oe, of) = out.split_at_mut(split);
                let eo = off.min(lx);
                for ((o, &x), &a) in oe.iter_mut().zip(&xs[eo..]).zip(&a[eo..]) {
                    *o = x.wrapping_sub(a);
                }
                let fo = (off + split).saturating_sub(lx);
                for ((o, &y), &b) in of.iter_mut().zip(&ys[fo..]).zip(&b[fo..]) {
                    *o = y.wrapping_sub(b);
                }
            }
        };
        let ex = self.exchange::<Arith>(lx + ys.len(), fill, None).await?;
        drop((xs, ys, a, b));
        Ok((t, ex))
    }

    /// `op(x, y)` on shares, at the sum of the operands' scales (no truncation).
    pub async fn bilinear_ring(
        &mut self,
        op: &BilinearOp,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<ArithShare> {
        let (t, ex) = self.beaver_exchange(op, x, y).await?;
        let me0 = self.id() == 0;
        let (xs, ys) = (as_slice(x.as_raw()), as_slice(y.as_raw()));
        if let BilinearOp::Hadamard { shape } = op {
            let mut out = alloc::vec![0u64; xs.len()];
            for_each_chunk(&mut out, hadamard_share(me0, &xs, &ys, &t, &ex));
            self.recycle(ex);
            return Ok(ArithShare::from_raw(from_vec(shape, out)));
        }
        let (a, b, lx) = (as_slice(&t.a), as_slice(&t.b), xs.len());
        let opened = |xs: &[u64], a: &[u64], base: usize| {
            let mut v = alloc::vec![0u64; xs.len()];
            for_each_chunk(
                &mut v,
                #[inline(always)]
                |off, out| {
                    ex.peers.read(base + off, out);
                    for ((o, &x), &a) in out.iter_mut().zip(&xs[off..]).zip(&a[off..]) {
                        *o = o.wrapping_add(x.wrapping_sub(a));
                    }
                },
            );
            v
        };
        let e = opened(&xs, &a, 0);
        let f = opened(&ys, &b, lx);
        drop((a, b));
        self.recycle(ex);
        let e = from_vec(op.lhs_shape(), e);
        let f = from_vec(op.rhs_shape(), f);
        // z = c + op(e, b) + op(a, f), and party 0 adds op(e, f): op(e, b + f).
        let b_term = if me0 { add(&t.b, &f) } else { t.b };
        let mut z = t.c;
        let products = self
            .backend
            .bilinear_sum(op, &[(&e, &b_term), (&t.a, &f)])
            .await?;
        add_assign(&mut z, &products);
        Ok(ArithShare::from_raw(z))
    }

    /// `op(x, y)` on fixed-point shares, truncated back to scale.
    pub async fn bilinear(
        &mut self,
        op: &BilinearOp,
        x: &ArithShare,
        y: &ArithShare,
    ) -> Result<ArithShare> {
        if let (BilinearOp::Hadamard { shape }, TruncationMode::Dealer) =
            (op, self.config.truncation)
        {
            // Fused: E and F are combined and the product's share computed
            // inside the truncation's first pass, never stored. Same
            // correlations, same order, same result as the general path.
            let (t, ex) = self.beaver_exchange(op, x, y).await?;
            let (xs, ys) = (as_slice(x.as_raw()), as_slice(y.as_raw()));
            let d = Divisor::Uniform(self.config.fixed_point.scale());
            let me0 = self.id() == 0;
            let out = self
                .div_public_with(shape, &d, hadamard_share(me0, &xs, &ys, &t, &ex))
                .await;
            self.recycle(ex);
            return out;
        }
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
        let empty = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[0])));
        let (_, z) = self.products_and_squares(&empty, &empty, x).await?;
        Ok(z)
    }

    /// `x ⊙ y` and `s ⊙ s` at double scale (no truncation), in one round: a
    /// Beaver triple for the products, a square pair (one opened value, not
    /// two) for the squares. The products come back flat; the squares in
    /// the shape of `s`.
    pub(crate) async fn products_and_squares(
        &mut self,
        x: &ArithShare,
        y: &ArithShare,
        s: &ArithShare,
    ) -> Result<(ArithShare, ArithShare)> {
        let n = x.len();
        if y.len() != n {
            return Err(Error::Shape(format!(
                "product operands of {n} and {} elements",
                y.len()
            )));
        }
        let triple = if n > 0 {
            let op = BilinearOp::Hadamard { shape: vec![n] };
            let t = self
                .prep
                .next(&CorrelationRequest::Triple(op))
                .await?
                .into_triple()?;
            if [&t.a, &t.b, &t.c].iter().any(|v| v.len() != n) {
                return Err(Error::Shape("triple shares of the wrong length".into()));
            }
            Some(t)
        } else {
            None
        };
        let pair = if !s.is_empty() {
            let req = CorrelationRequest::Square {
                shape: s.shape().to_vec(),
            };
            let pair = self.prep.next(&req).await?.into_square()?;
            if pair.a.shape() != s.shape() || pair.aa.shape() != s.shape() {
                return Err(Error::Shape("square pair of the wrong shape".into()));
            }
            Some(pair)
        } else {
            None
        };
        // Open x − a and y − b (products) and s − a (squares) together.
        let masked = |v: &ArithShare, mask: &RingTensor| -> RingTensor {
            let (vs, ms) = (as_slice(v.as_raw()), as_slice(mask));
            let mut out = vec![0u64; vs.len()];
            for_each_chunk(
                &mut out,
                #[inline(always)]
                |off, o| {
                    for ((o, &v), &m) in o.iter_mut().zip(&vs[off..]).zip(&ms[off..]) {
                        *o = v.wrapping_sub(m);
                    }
                },
            );
            from_vec(&[vs.len()], out)
        };
        let mut pieces: Vec<RingTensor> = Vec::new();
        if let Some(t) = &triple {
            pieces.push(masked(x, &t.a));
            pieces.push(masked(y, &t.b));
        }
        if let Some(pair) = &pair {
            pieces.push(masked(s, &pair.a));
        }
        let opened = self
            .open_raw_many::<Arith>(&pieces.iter().collect::<Vec<_>>())
            .await?;
        drop(pieces);
        let me0 = self.id() == 0;
        let mut opened = opened.iter();
        let products = match &triple {
            Some(t) => {
                let (Some(e), Some(f)) = (opened.next(), opened.next()) else {
                    return Err(Error::Usage("missing opened product masks".into()));
                };
                let (e, f) = (as_slice(e), as_slice(f));
                let (a, b, c) = (as_slice(&t.a), as_slice(&t.b), as_slice(&t.c));
                // z = c + e·b + a·f, and party 0 adds e·f: c + e·(b + f) + a·f.
                let mut z = vec![0u64; n];
                for_each_chunk(
                    &mut z,
                    #[inline(always)]
                    |off, out| {
                        for (i, z) in (off..).zip(out.iter_mut()) {
                            let bj = if me0 { b[i].wrapping_add(f[i]) } else { b[i] };
                            *z = c[i]
                                .wrapping_add(e[i].wrapping_mul(bj))
                                .wrapping_add(a[i].wrapping_mul(f[i]));
                        }
                    },
                );
                from_vec(&[n], z)
            }
            None => RingTensor::zeros(IxDyn(&[0])),
        };
        let squares = match pair {
            Some(pair) => {
                let e = opened
                    .next()
                    .ok_or_else(|| Error::Usage("missing opened square mask".into()))?;
                let (es, a) = (as_slice(e), as_slice(&pair.a));
                // s² = e² + 2·e·a + a²: party 0 adds e².
                let mut z = as_slice(&pair.aa).into_owned();
                for_each_chunk(
                    &mut z,
                    #[inline(always)]
                    |off, out| {
                        for (i, z) in (off..).zip(out.iter_mut()) {
                            let (e, a) = (es[i], a[i]);
                            *z = z.wrapping_add(e.wrapping_mul(a).wrapping_mul(2));
                            if me0 {
                                *z = z.wrapping_add(e.wrapping_mul(e));
                            }
                        }
                    },
                );
                from_vec(s.shape(), z)
            }
            None => RingTensor::zeros(IxDyn(s.shape())),
        };
        Ok((
            ArithShare::from_raw(products),
            ArithShare::from_raw(squares),
        ))
    }

    /// `x ⊙ x` on fixed-point shares, truncated.
    pub async fn square(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let z = self.square_ring(x).await?;
        self.truncate(&z).await
    }
}
