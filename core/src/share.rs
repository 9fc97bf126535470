//! Secret shares: additive over Z_2^64 ([`ArithShare`]) and XOR over 64-bit
//! words ([`BinaryShare`]), for any number of parties.
//!
//! A share is one party's piece of a secret tensor. Both kinds are the same
//! container, [`Share`], tagged with a [`ShareKind`] that says how pieces
//! combine; protocols that only move shares around (input, open, reveal) are
//! written once for both. `Debug` prints the shape, never the values.

use crate::error::{Error, Result};
use crate::prg::Prg;
use crate::ring::{Ring, RingTensor};
use alloc::format;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use ndarray::Zip;

/// How the pieces of a secret combine.
pub trait ShareKind: Copy + 'static {
    /// Name used in `Debug` output.
    const NAME: &'static str;
    /// Whether pieces combine by addition (else by XOR).
    const ADDITIVE: bool;
    /// Combines two pieces (`+` for arithmetic, `^` for binary).
    fn combine(a: Ring, b: Ring) -> Ring;
    /// Removes piece `b` from `a` (`-` for arithmetic, `^` for binary).
    fn remove(a: Ring, b: Ring) -> Ring;
}

/// Additive sharing over Z_2^64.
#[derive(Debug, Clone, Copy)]
pub struct Arith;

/// XOR sharing over 64-bit words.
#[derive(Debug, Clone, Copy)]
pub struct Binary;

impl ShareKind for Arith {
    const NAME: &'static str = "ArithShare";
    const ADDITIVE: bool = true;
    #[inline]
    fn combine(a: Ring, b: Ring) -> Ring {
        a.wrapping_add(b)
    }
    #[inline]
    fn remove(a: Ring, b: Ring) -> Ring {
        a.wrapping_sub(b)
    }
}

impl ShareKind for Binary {
    const NAME: &'static str = "BinaryShare";
    const ADDITIVE: bool = false;
    #[inline]
    fn combine(a: Ring, b: Ring) -> Ring {
        a ^ b
    }
    #[inline]
    fn remove(a: Ring, b: Ring) -> Ring {
        a ^ b
    }
}

/// One party's share of a secret tensor.
#[derive(Clone, PartialEq, Eq)]
pub struct Share<K: ShareKind> {
    value: RingTensor,
    kind: PhantomData<K>,
}

/// An additive share over Z_2^64.
pub type ArithShare = Share<Arith>;
/// An XOR share over 64-bit words.
pub type BinaryShare = Share<Binary>;

impl<K: ShareKind> fmt::Debug for Share<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {{ shape: {:?} }}", K::NAME, self.value.shape())
    }
}

impl<K: ShareKind> Share<K> {
    /// Wraps a tensor that is this party's share (the caller vouches for it).
    pub fn from_raw(value: RingTensor) -> Self {
        Share {
            value,
            kind: PhantomData,
        }
    }

    /// The share's ring elements. They reveal nothing alone; never log them.
    pub fn as_raw(&self) -> &RingTensor {
        &self.value
    }

    /// Consumes the share, giving its ring elements.
    pub fn into_raw(self) -> RingTensor {
        self.value
    }

    /// The shape of the shared tensor (public).
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// Number of elements (public).
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// Splits `secret` into `n` shares of kind `K`: `n - 1` uniformly random
/// pieces from `prg` and one that completes the secret.
pub fn share_locally<K: ShareKind>(secret: &RingTensor, n: usize, prg: &mut Prg) -> Vec<Share<K>> {
    assert!(n >= 1, "at least one party");
    let mut last = secret.clone();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n - 1 {
        let r = prg.tensor(secret.shape());
        Zip::from(&mut last)
            .and(&r)
            .for_each(|l, &x| *l = K::remove(*l, x));
        out.push(Share::from_raw(r));
    }
    out.push(Share::from_raw(last));
    out
}

/// Recombines every party's share into the secret.
pub fn reconstruct<K: ShareKind>(shares: &[Share<K>]) -> Result<RingTensor> {
    let first = shares
        .first()
        .ok_or_else(|| Error::Usage("no shares to reconstruct".into()))?;
    let mut acc = first.value.clone();
    for s in &shares[1..] {
        combine_into::<K>(&mut acc, &s.value)?;
    }
    Ok(acc)
}

/// `acc = acc ⊕ x` elementwise with the kind's combine, checking shapes.
pub(crate) fn combine_into<K: ShareKind>(acc: &mut RingTensor, x: &RingTensor) -> Result<()> {
    if acc.shape() != x.shape() {
        return Err(Error::Shape(format!(
            "cannot combine {:?} with {:?}",
            acc.shape(),
            x.shape()
        )));
    }
    Zip::from(acc)
        .and(x)
        .for_each(|a, &b| *a = K::combine(*a, b));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::Seed;
    use ndarray::IxDyn;

    fn sample(prg: &mut Prg, shape: &[usize]) -> RingTensor {
        prg.tensor(shape)
    }

    fn round_trip<K: ShareKind>(n: usize) {
        let mut prg = Prg::new(&Seed::from_bytes([n as u8; 32]));
        for shape in [&[0usize][..], &[1], &[3, 5], &[2, 3, 4]] {
            let x = sample(&mut prg, shape);
            let shares = share_locally::<K>(&x, n, &mut prg);
            assert_eq!(shares.len(), n);
            assert_eq!(reconstruct(&shares).unwrap(), x);
        }
    }

    #[test]
    fn reconstruct_of_share_is_identity_for_two_and_three_parties() {
        for n in [1, 2, 3] {
            round_trip::<Arith>(n);
            round_trip::<Binary>(n);
        }
    }

    #[test]
    fn arithmetic_sharing_is_linear() {
        let mut prg = Prg::new(&Seed::from_bytes([9; 32]));
        for n in [2, 3] {
            let x = sample(&mut prg, &[4, 4]);
            let y = sample(&mut prg, &[4, 4]);
            let sx = share_locally::<Arith>(&x, n, &mut prg);
            let sy = share_locally::<Arith>(&y, n, &mut prg);
            let sum: Vec<ArithShare> = sx
                .iter()
                .zip(&sy)
                .map(|(a, b)| {
                    let mut v = a.as_raw().clone();
                    combine_into::<Arith>(&mut v, b.as_raw()).unwrap();
                    Share::from_raw(v.mapv(|e| e.wrapping_mul(3)))
                })
                .collect();
            let expect_w = ndarray::Zip::from(&x)
                .and(&y)
                .map_collect(|&a, &b| a.wrapping_add(b).wrapping_mul(3));
            assert_eq!(reconstruct(&sum).unwrap(), expect_w);
        }
    }

    #[test]
    fn shapes_must_agree_and_debug_hides_values() {
        let a = ArithShare::from_raw(RingTensor::from_elem(IxDyn(&[2]), 0xdead_beef));
        let b = ArithShare::from_raw(RingTensor::zeros(IxDyn(&[3])));
        assert!(matches!(reconstruct(&[a.clone(), b]), Err(Error::Shape(_))));
        let dbg = alloc::format!("{a:?}");
        assert_eq!(dbg, "ArithShare { shape: [2] }");
        assert!(matches!(reconstruct::<Arith>(&[]), Err(Error::Usage(_))));
    }
}
