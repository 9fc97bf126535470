//! Moving shares: input, open to all, reveal to one.

use super::Party;
use crate::backend::Backend;
use crate::channel::{Channel, encode_ring};
use crate::elementwise::{as_slice, for_each_chunk, from_vec};
use crate::error::{Error, PartyId, PeerError, Result};
use crate::preprocessing::Preprocessing;
use crate::ring::{Ring, RingTensor};
use crate::share::{Share, ShareKind};
use alloc::format;
use alloc::vec::Vec;
use ndarray::Zip;

/// Writes `values` as little-endian bytes into `out` (of 8 bytes per value).
fn encode_into(values: &[Ring], out: &mut [u8]) {
    crate::elementwise::for_each_chunk_bytes(out, |off, chunk| {
        let src = &values[off / 8..(off + chunk.len()) / 8];
        for (c, v) in chunk.chunks_exact_mut(8).zip(src) {
            c.copy_from_slice(&v.to_le_bytes());
        }
    });
}

/// `mine[i] ⊕ le_u64(bytes[8i..8i+8])` into a new vector.
fn combine_new<K: ShareKind>(mine: &[Ring], bytes: &[u8]) -> Vec<Ring> {
    let mut out = alloc::vec![0u64; mine.len()];
    for_each_chunk(&mut out, |off, chunk| {
        let len = chunk.len();
        let src = &bytes[off * 8..(off + len) * 8];
        for ((o, c), &m) in chunk
            .iter_mut()
            .zip(src.chunks_exact(8))
            .zip(&mine[off..off + len])
        {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            *o = K::combine(m, u64::from_le_bytes(w));
        }
    });
    out
}

/// `acc[i] ⊕= le_u64(bytes[8i..8i+8])`; the caller has checked the length.
fn combine_bytes<K: ShareKind>(acc: &mut [Ring], bytes: &[u8]) {
    for_each_chunk(acc, |off, out| {
        let src = &bytes[off * 8..(off + out.len()) * 8];
        for (a, c) in out.iter_mut().zip(src.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            *a = K::combine(*a, u64::from_le_bytes(w));
        }
    });
}

impl<C: Channel, P: Preprocessing, B: Backend> Party<C, P, B> {
    /// Shares a tensor held by `owner` (who passes `Some(value)`; the others
    /// pass `None`) without sending it: each other party's share is drawn from
    /// the PRG it shares with the owner, and the owner keeps the difference.
    pub async fn input<K: ShareKind>(
        &mut self,
        owner: PartyId,
        value: Option<&RingTensor>,
        shape: &[usize],
    ) -> Result<Share<K>> {
        let me = self.id();
        if owner >= self.num_parties() {
            return Err(Error::Usage(format!("party {owner} does not exist")));
        }
        if me != owner {
            if value.is_some() {
                return Err(Error::Usage(format!("only party {owner} holds this input")));
            }
            let prg = self.pair_prgs[owner]
                .as_mut()
                .ok_or_else(|| Error::Usage(format!("no pairwise PRG with {owner}")))?;
            return Ok(Share::from_raw(prg.tensor(shape)));
        }
        let value =
            value.ok_or_else(|| Error::Usage(format!("party {owner} must provide the input")))?;
        if value.shape() != shape {
            return Err(Error::Shape(format!(
                "input has shape {:?}, declared {shape:?}",
                value.shape()
            )));
        }
        let mut mine = value.to_owned();
        for prg in self.pair_prgs.iter_mut().flatten() {
            let r = prg.tensor(shape);
            Zip::from(&mut mine)
                .and(&r)
                .for_each(|m, &x| *m = K::remove(*m, x));
        }
        Ok(Share::from_raw(mine))
    }

    /// Opens several shared tensors to every party in one round.
    pub async fn open_many<K: ShareKind>(
        &mut self,
        shares: &[&Share<K>],
    ) -> Result<Vec<RingTensor>> {
        let raw: Vec<&RingTensor> = shares.iter().map(|s| s.as_raw()).collect();
        self.open_raw_many::<K>(&raw).await
    }

    /// Opens one shared tensor to every party.
    pub async fn open<K: ShareKind>(&mut self, share: &Share<K>) -> Result<RingTensor> {
        let mut v = self.open_many(&[share]).await?;
        v.pop()
            .ok_or_else(|| Error::Usage("open returned nothing".into()))
    }

    /// Opens raw per-party pieces (masked values inside protocols).
    pub(crate) async fn open_raw_many<K: ShareKind>(
        &mut self,
        pieces: &[&RingTensor],
    ) -> Result<Vec<RingTensor>> {
        let (me, n) = (self.id(), self.num_parties());
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let slices: Vec<_> = pieces.iter().map(|p| as_slice(p)).collect();
        let mut bytes = alloc::vec![0u8; total * 8];
        let mut off = 0;
        for s in &slices {
            encode_into(s, &mut bytes[off..off + s.len() * 8]);
            off += s.len() * 8;
        }
        let peers: Vec<PartyId> = (0..n).filter(|&p| p != me).collect();
        for (i, &peer) in peers.iter().enumerate() {
            let msg = if i + 1 == peers.len() {
                core::mem::take(&mut bytes)
            } else {
                bytes.clone()
            };
            self.channel.send(peer, msg).await?;
        }
        let mut acc: Vec<Vec<Ring>> = Vec::new();
        for (k, &peer) in peers.iter().enumerate() {
            let theirs = self.channel.recv(peer).await?;
            if theirs.len() != total * 8 {
                return Err(PeerError::WrongLength {
                    expected: total * 8,
                    got: theirs.len(),
                }
                .into());
            }
            let mut off = 0;
            for (i, s) in slices.iter().enumerate() {
                let src = &theirs[off..off + s.len() * 8];
                if k == 0 {
                    acc.push(combine_new::<K>(s, src));
                } else {
                    combine_bytes::<K>(&mut acc[i], src);
                }
                off += s.len() * 8;
            }
        }
        if peers.is_empty() {
            acc = slices.iter().map(|s| s.to_vec()).collect();
        }
        Ok(acc
            .into_iter()
            .zip(pieces)
            .map(|(v, p)| from_vec(p.shape(), v))
            .collect())
    }

    /// Reveals a shared tensor to `target` only: `Some(value)` there, `None`
    /// at every other party.
    pub async fn reveal_to<K: ShareKind>(
        &mut self,
        share: &Share<K>,
        target: PartyId,
    ) -> Result<Option<RingTensor>> {
        let (me, n) = (self.id(), self.num_parties());
        if target >= n {
            return Err(Error::Usage(format!("party {target} does not exist")));
        }
        if me != target {
            self.channel
                .send(target, encode_ring(&as_slice(share.as_raw())))
                .await?;
            return Ok(None);
        }
        let mut acc = as_slice(share.as_raw()).into_owned();
        for peer in (0..n).filter(|&p| p != me) {
            let theirs = self.channel.recv(peer).await?;
            if theirs.len() != acc.len() * 8 {
                return Err(PeerError::WrongLength {
                    expected: acc.len() * 8,
                    got: theirs.len(),
                }
                .into());
            }
            combine_bytes::<K>(&mut acc, &theirs);
        }
        Ok(Some(from_vec(share.shape(), acc)))
    }
}
