//! A two-party [`Channel`] over any transport of whole frames.

use super::Control;
use super::frame::{self, Frame, Limits};
use crate::channel::{Channel, CommStats, Meter};
use crate::error::{ChannelError, Error, ErrorCode, PartyId, PeerError, Result, SessionError};
use alloc::string::String;
use alloc::vec::Vec;

/// Sends and receives whole frames (one WebSocket message each). Transports
/// bound what they accept (frames over [`Limits::max_frame_bytes`] are an
/// error, not an allocation) and report a peer that went away as
/// [`ChannelError::Closed`], a silent one as [`ChannelError::TimedOut`].
#[allow(async_fn_in_trait)] // no `Send` bound: browser sockets are not `Send`
pub trait FrameTransport {
    /// Sends one frame.
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()>;
    /// Receives the next frame.
    async fn recv_frame(&mut self) -> Result<Vec<u8>>;

    /// Closes the connection after every queued frame has been sent.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The MPC channel between the two parties of a session, over one frame
/// transport that also carries the session's control messages.
pub struct FramedChannel<T> {
    transport: T,
    me: PartyId,
    limits: Limits,
    meter: Meter,
}

impl<T> core::fmt::Debug for FramedChannel<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FramedChannel")
            .field("party", &self.me)
            .field("stats", &self.meter.stats())
            .finish_non_exhaustive()
    }
}

impl<T: FrameTransport> FramedChannel<T> {
    /// Party `me` (0 or 1) of a two-party session over `transport`.
    pub fn new(transport: T, me: PartyId, limits: Limits) -> Result<Self> {
        if me > 1 {
            return Err(Error::Usage("a framed channel joins two parties".into()));
        }
        Ok(FramedChannel {
            transport,
            me,
            limits,
            meter: Meter::default(),
        })
    }

    /// Sends a control message.
    pub async fn send_control(&mut self, msg: &Control) -> Result<()> {
        let f = frame::encode_control(msg)?;
        self.transport.send_frame(f).await
    }

    /// Ends the session for a reason the peer will see. Best effort: the
    /// peer may already be gone.
    pub async fn send_error(&mut self, code: ErrorCode, message: impl Into<String>) {
        let msg = Control::Error {
            code,
            message: message.into(),
        };
        let _ = self.send_control(&msg).await;
    }

    /// Receives the next control message; a peer's [`Control::Error`] becomes
    /// an [`Error::Session`], an MPC payload here a protocol error.
    pub async fn recv_control(&mut self) -> Result<Control> {
        let f = self.transport.recv_frame().await?;
        match frame::decode(&f, &self.limits)? {
            Frame::Control(Control::Error { code, message }) => Err(peer_error(code, &message)),
            Frame::Control(c) => Ok(c),
            Frame::Data { .. } => {
                Err(PeerError::Unexpected("MPC data where a control message belongs").into())
            }
        }
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Takes the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }
}

/// A peer's error frame: its words as they came (peers write whole
/// sentences: "the dealer is at its session limit"), its code.
fn peer_error(code: ErrorCode, message: &str) -> Error {
    SessionError::new(code, message).into()
}

impl<T: FrameTransport> Channel for FramedChannel<T> {
    fn party(&self) -> PartyId {
        self.me
    }

    fn num_parties(&self) -> usize {
        2
    }

    async fn send(&mut self, to: PartyId, msg: Vec<u8>) -> Result<()> {
        if to > 1 || to == self.me {
            return Err(ChannelError::NoSuchPeer(to).into());
        }
        let stamp = self.meter.on_send(msg.len());
        for f in frame::encode_message(stamp, &msg, &self.limits) {
            self.transport.send_frame(f).await?;
        }
        Ok(())
    }

    async fn recv(&mut self, from: PartyId) -> Result<Vec<u8>> {
        if from > 1 || from == self.me {
            return Err(ChannelError::NoSuchPeer(from).into());
        }
        let mut msg: Vec<u8> = Vec::new();
        loop {
            let f = self.transport.recv_frame().await?;
            match frame::decode(&f, &self.limits)? {
                Frame::Data {
                    stamp,
                    last,
                    payload,
                } => {
                    if msg.len() + payload.len() > self.limits.max_message_bytes {
                        return Err(PeerError::Malformed("message over the size limit").into());
                    }
                    msg.extend_from_slice(payload);
                    if last {
                        self.meter.on_receive(stamp, msg.len());
                        return Ok(msg);
                    }
                }
                Frame::Control(Control::Error { code, message }) => {
                    return Err(peer_error(code, &message));
                }
                Frame::Control(_) => {
                    return Err(PeerError::Unexpected(
                        "control message in the middle of a computation",
                    )
                    .into());
                }
            }
        }
    }

    fn stats(&self) -> CommStats {
        self.meter.stats()
    }

    fn fence_rounds(&mut self) {
        self.meter.fence();
    }
}
