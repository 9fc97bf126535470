//! Moving shares: input, open to all, reveal to one.

use super::Party;
use crate::backend::Backend;
use crate::channel::{Channel, encode_ring};
use crate::elementwise::{as_slice, collect_indexed, for_each_chunk, from_vec};
use crate::error::{Error, PartyId, PeerError, Result};
use crate::preprocessing::Preprocessing;
use crate::ring::{Ring, RingTensor};
use crate::share::{Share, ShareKind};
use alloc::format;
use alloc::vec::Vec;
use ndarray::Zip;

/// Reads the `j`-th little-endian word of `bytes`.
#[inline(always)]
fn word(bytes: &[u8], j: usize) -> Ring {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[j * 8..j * 8 + 8]);
    u64::from_le_bytes(w)
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
        let slices: Vec<_> = pieces.iter().map(|p| as_slice(p)).collect();
        let starts: Vec<usize> = slices
            .iter()
            .scan(0, |acc, s| {
                let start = *acc;
                *acc += s.len();
                Some(start)
            })
            .collect();
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let piece = |j: usize| {
            let t = starts.partition_point(|&s| s <= j) - 1;
            slices[t][j - starts[t]]
        };
        let opened = self.open_with::<K>(total, piece, |_, v| v).await?;
        Ok(pieces
            .iter()
            .zip(&starts)
            .map(|(p, &s)| from_vec(p.shape(), opened[s..s + p.len()].to_vec()))
            .collect())
    }

    /// The core of every opening, in two passes over memory: `piece(j)` is
    /// this party's piece of element `j` of the value being opened; it is sent
    /// to every other party, the pieces are combined, and `finish(j, value)`
    /// maps each opened value to the result (so a protocol's next local step
    /// can ride on the same pass).
    pub(crate) async fn open_with<K: ShareKind>(
        &mut self,
        len: usize,
        piece: impl Fn(usize) -> Ring + Sync + Send,
        finish: impl Fn(usize, Ring) -> Ring + Sync + Send,
    ) -> Result<Vec<Ring>> {
        let (me, n) = (self.id(), self.num_parties());
        let mut mine = collect_indexed(len, &piece);
        let mut bytes = self.scratch.take(len * 8);
        crate::elementwise::for_each_chunk_bytes(&mut bytes, |off, chunk| {
            for (o, &m) in chunk.chunks_exact_mut(8).zip(&mine[off / 8..]) {
                o.copy_from_slice(&m.to_le_bytes());
            }
        });
        let peers: Vec<PartyId> = (0..n).filter(|&p| p != me).collect();
        for (i, &peer) in peers.iter().enumerate() {
            let msg = if i + 1 == peers.len() {
                core::mem::take(&mut bytes)
            } else {
                bytes.clone()
            };
            self.channel.send(peer, msg).await?;
        }
        for (k, &peer) in peers.iter().enumerate() {
            let theirs = self.channel.recv(peer).await?;
            if theirs.len() != len * 8 {
                return Err(PeerError::WrongLength {
                    expected: len * 8,
                    got: theirs.len(),
                }
                .into());
            }
            let last = k + 1 == peers.len();
            for_each_chunk(&mut mine, |off, chunk| {
                for (i, m) in chunk.iter_mut().enumerate() {
                    let v = K::combine(*m, word(&theirs, off + i));
                    *m = if last { finish(off + i, v) } else { v };
                }
            });
            self.scratch.give(theirs);
        }
        if peers.is_empty() {
            for (j, m) in mine.iter_mut().enumerate() {
                *m = finish(j, *m);
            }
        }
        Ok(mine)
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
            for_each_chunk(&mut acc, |off, chunk| {
                for (i, a) in chunk.iter_mut().enumerate() {
                    *a = K::combine(*a, word(&theirs, off + i));
                }
            });
        }
        Ok(Some(from_vec(share.shape(), acc)))
    }
}
