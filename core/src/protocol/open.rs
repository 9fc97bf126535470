//! Moving shares: input, open to all, reveal to one.

use super::Party;
use crate::backend::Backend;
use crate::channel::{Channel, decode_ring, encode_ring};
use crate::error::{Error, PartyId, Result};
use crate::preprocessing::Preprocessing;
use crate::ring::{Ring, RingTensor};
use crate::share::{Share, ShareKind, combine_into};
use alloc::format;
use alloc::vec::Vec;
use ndarray::{IxDyn, Zip};

pub(crate) fn contiguous(t: &RingTensor) -> Vec<Ring> {
    match t.as_slice() {
        Some(s) => s.to_vec(),
        None => t.iter().copied().collect(),
    }
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
            .ok_or_else(|| Error::Usage(format!("open returned nothing")))
    }

    /// Opens raw per-party pieces (masked values inside protocols).
    pub(crate) async fn open_raw_many<K: ShareKind>(
        &mut self,
        pieces: &[&RingTensor],
    ) -> Result<Vec<RingTensor>> {
        let (me, n) = (self.id(), self.num_parties());
        let mut payload = Vec::new();
        for p in pieces {
            payload.extend(contiguous(p));
        }
        let bytes = encode_ring(&payload);
        for peer in (0..n).filter(|&p| p != me) {
            self.channel.send(peer, bytes.clone()).await?;
        }
        let mut acc: Vec<RingTensor> = pieces
            .iter()
            .map(|p| p.as_standard_layout().into_owned())
            .collect();
        for peer in (0..n).filter(|&p| p != me) {
            let theirs = decode_ring(&self.channel.recv(peer).await?, payload.len())?;
            let mut off = 0;
            for a in acc.iter_mut() {
                let len = a.len();
                let t =
                    RingTensor::from_shape_vec(IxDyn(a.shape()), theirs[off..off + len].to_vec())
                        .map_err(|e| Error::Shape(format!("{e}")))?;
                combine_into::<K>(a, &t)?;
                off += len;
            }
        }
        Ok(acc)
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
                .send(target, encode_ring(&contiguous(share.as_raw())))
                .await?;
            return Ok(None);
        }
        let mut acc = share.as_raw().as_standard_layout().into_owned();
        for peer in (0..n).filter(|&p| p != me) {
            let theirs = decode_ring(&self.channel.recv(peer).await?, acc.len())?;
            let t = RingTensor::from_shape_vec(IxDyn(acc.shape()), theirs)
                .map_err(|e| Error::Shape(format!("{e}")))?;
            combine_into::<K>(&mut acc, &t)?;
        }
        Ok(Some(acc))
    }
}
