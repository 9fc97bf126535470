//! Moving shares: input, open to all, reveal to one.

use super::Party;
use crate::backend::Backend;
use crate::channel::{Channel, decode_ring};
use crate::elementwise::{
    as_slice, for_each_chunk, for_each_chunk_bytes, for_each_chunk_with_bytes, from_vec, gather,
    run_starts,
};
use crate::error::{Error, PartyId, PeerError, Result};
use crate::preprocessing::Preprocessing;
use crate::ring::{Ring, RingTensor};
use crate::share::{Share, ShareKind};
use alloc::format;
use alloc::vec::Vec;
use ndarray::Zip;

/// The other parties' pieces of an opening, combined.
pub(crate) enum PeerSum {
    /// One peer: its message of `width` bytes per element (the top bytes
    /// of every piece, see [`Party::exchange_top`]), read in place.
    Bytes { msg: Vec<u8>, width: usize },
    /// Several peers: their pieces combined.
    Words(Vec<Ring>),
}

impl PeerSum {
    /// The combined peer pieces of elements `off..off + out.len()`, into `out`.
    #[inline]
    pub(crate) fn read(&self, off: usize, out: &mut [Ring]) {
        match self {
            PeerSum::Bytes { msg, width } => {
                let w = *width;
                decode_words(&msg[off * w..(off + out.len()) * w], out, w)
            }
            PeerSum::Words(w) => out.copy_from_slice(&w[off..off + out.len()]),
        }
    }

    /// Combines the peers' pieces of elements `off..off + out.len()` into
    /// this party's, in `out`.
    #[inline]
    pub(crate) fn combine_into<K: ShareKind>(&self, off: usize, out: &mut [Ring]) {
        let mut buf = [0u64; LANES];
        for (k, sub) in out.chunks_mut(LANES).enumerate() {
            self.read(off + k * LANES, &mut buf[..sub.len()]);
            for (m, &p) in sub.iter_mut().zip(&buf) {
                *m = K::combine(*m, p);
            }
        }
    }
}

/// Elements per stack buffer inside a chunk loop.
pub(crate) const LANES: usize = 256;

/// Runs `$body` with the const `$w` bound to the runtime width `$width`
/// (1..=8), so that the per-element copies of each width compile to fixed
/// loads and stores.
macro_rules! with_width {
    ($width:expr, $w:ident => $body:expr) => {
        with_width!(@arms $width, $w, $body, 8 7 6 5 4 3 2 1)
    };
    (@arms $width:expr, $w:ident, $body:expr, $($n:literal)*) => {
        match $width {
            $($n => {
                const $w: usize = $n;
                $body
            })*
            w => unreachable!("opening width {w} checked by its caller"),
        }
    };
}

/// `out[i]` = the `width` bytes `bytes[width·i..]` as the top bytes of a
/// little-endian word, its low `8 − width` bytes zero.
#[inline]
fn decode_words(bytes: &[u8], out: &mut [Ring], width: usize) {
    with_width!(width, W => {
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(W)) {
            let mut w = [0u8; 8];
            w[8 - W..].copy_from_slice(c);
            *o = u64::from_le_bytes(w);
        }
    })
}

/// `bytes[width·i..width·(i+1)]` = the top `width` bytes of `values[i]`,
/// little-endian.
#[inline]
fn encode_words(values: &[Ring], bytes: &mut [u8], width: usize) {
    with_width!(width, W => {
        for (c, v) in bytes.chunks_exact_mut(W).zip(values) {
            c.copy_from_slice(&v.to_le_bytes()[8 - W..]);
        }
    })
}

/// Writes pieces into a message without storing them: `fill(off, out)`
/// writes the pieces of elements `off..off + out.len()` into a stack buffer,
/// which is encoded into `bytes` (8 per element).
fn encode_pieces(bytes: &mut [u8], fill: impl Fn(usize, &mut [Ring]) + Sync + Send) {
    for_each_chunk_bytes(
        bytes,
        8,
        #[inline(always)]
        |off, chunk| {
            let mut words = [0u64; LANES];
            for (k, sub) in chunk.chunks_mut(LANES * 8).enumerate() {
                let m = sub.len() / 8;
                fill(off + k * LANES, &mut words[..m]);
                encode_words(&words[..m], sub, 8);
            }
        },
    );
}

/// What [`Party::exchange`] returns.
pub(crate) struct Exchanged {
    /// This party's pieces, if kept.
    pub mine: Option<Vec<Ring>>,
    /// The other parties' pieces.
    pub peers: PeerSum,
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
        let refs: Vec<&[Ring]> = slices.iter().map(|s| &s[..]).collect();
        let starts = run_starts(&refs);
        let total: usize = refs.iter().map(|s| s.len()).sum();
        let fill = {
            #[inline(always)]
            |off: usize, out: &mut [Ring]| gather(&refs, &starts, off, out)
        };
        let opened = self
            .open_with::<K>(alloc::vec![0; total], fill, |_, _| {})
            .await?;
        Ok(pieces
            .iter()
            .zip(&starts)
            .map(|(p, &s)| from_vec(p.shape(), opened[s..s + p.len()].to_vec()))
            .collect())
    }

    /// Sends this party's pieces of `len` elements to every other party and
    /// receives theirs: the first half of every opening. `fill(off, out)`
    /// writes this party's pieces of elements `off..off + out.len()`.
    ///
    /// With `keep = Some(buf)` (of `len` elements) the pieces are built in
    /// `buf` and kept: `fill` sees `buf`'s previous contents in `out` and may
    /// use them (a correlation consumed in place), and the result needs no
    /// new allocation. With `None` they are streamed through a stack buffer
    /// (when recomputing them later costs less than storing them).
    pub(crate) async fn exchange<K: ShareKind>(
        &mut self,
        len: usize,
        fill: impl Fn(usize, &mut [Ring]) + Sync + Send,
        keep: Option<Vec<Ring>>,
    ) -> Result<Exchanged> {
        let additive = if K::ADDITIVE { len } else { 0 };
        self.exchange_mixed(len, additive, fill, keep).await
    }

    /// [`Party::exchange`] of a message whose first `additive` elements are
    /// additive pieces and the rest XOR pieces (two openings of different
    /// kinds in one round).
    pub(crate) async fn exchange_mixed(
        &mut self,
        len: usize,
        additive: usize,
        fill: impl Fn(usize, &mut [Ring]) + Sync + Send,
        keep: Option<Vec<Ring>>,
    ) -> Result<Exchanged> {
        let mine = if let Some(mine) = keep {
            if mine.len() != len {
                return Err(Error::Usage("opening buffer has the wrong length".into()));
            }
            Some(self.send_kept(0, &fill, mine).await?)
        } else {
            let mut bytes = self.scratch.take(len * 8);
            encode_pieces(&mut bytes, &fill);
            self.send_to_others(bytes).await?;
            None
        };
        let peers = self.recv_peer_sum(len, additive, 8).await?;
        Ok(Exchanged { mine, peers })
    }

    /// [`Party::exchange`] of additive pieces whose low `dropped` bytes
    /// (0..=7) are not sent: each party clears them in its piece (in `mine`
    /// too) and sends the top `8 − dropped` bytes. What the pieces then
    /// open to is `c − δ` for `0 ≤ δ < n·2^(8·dropped)` — the pieces' low
    /// parts summed — which is all an opening that divides by `2^s` with
    /// `n·2^(8·dropped) ≤ 2^s` needs (see [`super::powers`]). The pieces
    /// are built in `mine` (of `len` elements) and kept, as
    /// [`Party::exchange`] with `Some(buf)` does.
    pub(crate) async fn exchange_top(
        &mut self,
        dropped: usize,
        fill: impl Fn(usize, &mut [Ring]) + Sync + Send,
        mine: Vec<Ring>,
    ) -> Result<Exchanged> {
        if dropped > 7 {
            return Err(Error::Usage(format!(
                "an opening may leave out at most 7 bytes of each piece, not {dropped}"
            )));
        }
        let (len, width) = (mine.len(), 8 - dropped);
        let mine = self.send_kept(dropped, &fill, mine).await?;
        let peers = self.recv_peer_sum(len, len, width).await?;
        Ok(Exchanged {
            mine: Some(mine),
            peers,
        })
    }

    /// Builds this party's pieces in `mine` (`fill`, then the low `dropped`
    /// bytes cleared) and sends their top `8 − dropped` bytes to every
    /// other party; returns `mine`.
    async fn send_kept(
        &mut self,
        dropped: usize,
        fill: &(impl Fn(usize, &mut [Ring]) + Sync + Send),
        mut mine: Vec<Ring>,
    ) -> Result<Vec<Ring>> {
        let width = 8 - dropped;
        let low = if dropped == 0 {
            0
        } else {
            u64::MAX >> (64 - 8 * dropped)
        };
        let mut bytes = self.scratch.take(mine.len() * width);
        for_each_chunk_with_bytes(
            &mut mine,
            &mut bytes,
            width,
            #[inline(always)]
            |off, words, out| {
                fill(off, words);
                if low != 0 {
                    for w in words.iter_mut() {
                        *w &= !low;
                    }
                }
                encode_words(words, out, width);
            },
        );
        self.send_to_others(bytes).await?;
        Ok(mine)
    }

    /// Every party but this one.
    fn others(&self) -> Vec<PartyId> {
        let me = self.id();
        (0..self.num_parties()).filter(|&p| p != me).collect()
    }

    /// Sends `msg` to every other party (copies for all but the last).
    pub(crate) async fn send_to_others(&mut self, mut msg: Vec<u8>) -> Result<()> {
        let others = self.others();
        for (i, &peer) in others.iter().enumerate() {
            let m = if i + 1 == others.len() {
                core::mem::take(&mut msg)
            } else {
                msg.clone()
            };
            self.channel.send(peer, m).await?;
        }
        Ok(())
    }

    /// The other parties' pieces of `len` elements (the first `additive`
    /// additive, the rest XOR) of `width` bytes each (the top bytes of a
    /// word), combined: one message each, read in place when there is one.
    async fn recv_peer_sum(
        &mut self,
        len: usize,
        additive: usize,
        width: usize,
    ) -> Result<PeerSum> {
        let mut sum: Option<PeerSum> = None;
        for peer in self.others() {
            let theirs = self.recv_exact(peer, len * width).await?;
            sum = Some(match sum {
                None => PeerSum::Bytes { msg: theirs, width },
                Some(prev) => {
                    let mut acc = alloc::vec![0u64; len];
                    for_each_chunk(
                        &mut acc,
                        #[inline(always)]
                        |off, chunk| prev.read(off, chunk),
                    );
                    if let PeerSum::Bytes { msg, .. } = prev {
                        self.scratch.give(msg);
                    }
                    for_each_chunk(
                        &mut acc,
                        #[inline(always)]
                        |off, chunk| {
                            let mut buf = [0u64; LANES];
                            for (k, sub) in chunk.chunks_mut(LANES).enumerate() {
                                let o = off + k * LANES;
                                decode_words(
                                    &theirs[o * width..(o + sub.len()) * width],
                                    &mut buf[..sub.len()],
                                    width,
                                );
                                for ((a, &t), j) in sub.iter_mut().zip(&buf).zip(o..) {
                                    *a = if j < additive {
                                        a.wrapping_add(t)
                                    } else {
                                        *a ^ t
                                    };
                                }
                            }
                        },
                    );
                    self.scratch.give(theirs);
                    PeerSum::Words(acc)
                }
            });
        }
        Ok(sum.unwrap_or_else(|| PeerSum::Words(alloc::vec![0; len])))
    }

    /// Reveals this party's pieces of `buf.len()` elements to `target` (one
    /// message from every other party), without combining them:
    /// `fill(off, out)` turns `buf`'s elements `off..off + out.len()` (given
    /// in `out`) into this party's pieces. At `target` the pieces are built
    /// in `buf` and come back with the others' (checked for length), for the
    /// caller to combine on its next pass; elsewhere they are streamed into
    /// the message and `buf` comes back unchanged, for reuse.
    pub(crate) async fn reveal_pieces_to<K: ShareKind>(
        &mut self,
        mut buf: Vec<Ring>,
        fill: impl Fn(usize, &mut [Ring]) + Sync + Send,
        target: PartyId,
    ) -> Result<(Vec<Ring>, Option<PeerSum>)> {
        let (me, n, len) = (self.id(), self.num_parties(), buf.len());
        if target >= n {
            return Err(Error::Usage(format!("party {target} does not exist")));
        }
        if me == target {
            for_each_chunk(&mut buf, &fill);
            let additive = if K::ADDITIVE { len } else { 0 };
            let sum = self.recv_peer_sum(len, additive, 8).await?;
            return Ok((buf, Some(sum)));
        }
        let mut bytes = self.scratch.take(len * 8);
        let src = &buf;
        encode_pieces(&mut bytes, |o, words| {
            words.copy_from_slice(&src[o..o + words.len()]);
            fill(o, words);
        });
        self.channel.send(target, bytes).await?;
        Ok((buf, None))
    }

    /// Returns an exchange's buffers for reuse.
    pub(crate) fn recycle(&mut self, ex: Exchanged) {
        self.recycle_peers(ex.peers);
    }

    /// Keeps a vector of ring elements for reuse by later protocol steps.
    pub(crate) fn give_words(&mut self, v: Vec<Ring>) {
        self.scratch.give_words(v);
    }

    /// Returns a peer sum's buffer for reuse.
    pub(crate) fn recycle_peers(&mut self, peers: PeerSum) {
        if let PeerSum::Bytes { msg, .. } = peers {
            self.scratch.give(msg);
        }
    }

    /// A whole opening in two passes over memory, built in `buf`:
    /// `fill(off, out)` turns `buf`'s elements `off..off + out.len()` into
    /// this party's pieces; the pieces are exchanged and combined, and
    /// `finish(off, values)` transforms the opened values in place (so a
    /// protocol's next local step rides on the same pass). Returns `buf`.
    pub(crate) async fn open_with<K: ShareKind>(
        &mut self,
        buf: Vec<Ring>,
        fill: impl Fn(usize, &mut [Ring]) + Sync + Send,
        finish: impl Fn(usize, &mut [Ring]) + Sync + Send,
    ) -> Result<Vec<Ring>> {
        let len = buf.len();
        let mut ex = self.exchange::<K>(len, fill, Some(buf)).await?;
        let mut mine = ex.mine.take().unwrap_or_default();
        {
            let peers = &ex.peers;
            for_each_chunk(
                &mut mine,
                #[inline(always)]
                |off, chunk| {
                    for (k, sub) in chunk.chunks_mut(LANES).enumerate() {
                        let o = off + k * LANES;
                        peers.combine_into::<K>(o, sub);
                        finish(o, sub);
                    }
                },
            );
        }
        self.recycle(ex);
        Ok(mine)
    }

    /// One message of exactly `bytes` bytes from `peer`; any other length is
    /// a [`PeerError::WrongLength`].
    pub(crate) async fn recv_exact(&mut self, peer: PartyId, bytes: usize) -> Result<Vec<u8>> {
        let msg = self.channel.recv(peer).await?;
        if msg.len() != bytes {
            return Err(PeerError::WrongLength {
                expected: bytes,
                got: msg.len(),
            }
            .into());
        }
        Ok(msg)
    }

    /// One message of exactly `len` ring elements from `peer`, decoded.
    pub(crate) async fn recv_ring(&mut self, peer: PartyId, len: usize) -> Result<Vec<Ring>> {
        let bytes = self.recv_exact(peer, len * 8).await?;
        decode_ring(&bytes, len)
    }

    /// Reveals a shared tensor to `target` only: `Some(value)` there, `None`
    /// at every other party.
    pub async fn reveal_to<K: ShareKind>(
        &mut self,
        share: &Share<K>,
        target: PartyId,
    ) -> Result<Option<RingTensor>> {
        let mine = as_slice(share.as_raw()).into_owned();
        let value = self.reveal_raw_to::<K>(mine, target).await?;
        Ok(value.map(|v| from_vec(share.shape(), v)))
    }

    /// Reveals raw per-party pieces to `target` (one message from every other
    /// party; checked for length): their combination there, `None` elsewhere.
    pub(crate) async fn reveal_raw_to<K: ShareKind>(
        &mut self,
        mine: Vec<Ring>,
        target: PartyId,
    ) -> Result<Option<Vec<Ring>>> {
        let (mut acc, peers) = self.reveal_pieces_to::<K>(mine, |_, _| {}, target).await?;
        let Some(peers) = peers else {
            return Ok(None);
        };
        for_each_chunk(
            &mut acc,
            #[inline(always)]
            |off, chunk| peers.combine_into::<K>(off, chunk),
        );
        self.recycle_peers(peers);
        Ok(Some(acc))
    }
}
