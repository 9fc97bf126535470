//! A [`FrameTransport`] over a WebSocket (axum's on the accepting side,
//! tokio-tungstenite's on the connecting side).
//!
//! Two tasks own the socket: a writer that drains an unbounded queue of
//! outgoing frames (so a party's `send` never waits for its peer to read:
//! both parties of an exchange send before they receive), and a reader that
//! pushes incoming frames into a small bounded queue (when the protocol
//! thread falls behind, the reader stops reading and TCP slows the peer
//! down). The WebSocket layer itself refuses messages over
//! [`Limits::max_frame_bytes`] before buffering them.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hush_core::error::{ChannelError, PeerError, Result};
use hush_core::session::{FrameTransport, Limits};
use std::fmt::Display;
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames buffered between the reader task and the protocol.
const INBOUND_FRAMES: usize = 8;

enum Out {
    Frame(Vec<u8>),
    Close(String),
    Finish,
}

/// What the reader makes of one WebSocket message.
pub(crate) enum Incoming {
    Frame(Vec<u8>),
    Close(Option<String>),
    Skip,
    Text,
}

/// One end of a WebSocket session.
pub struct WsTransport {
    out: mpsc::UnboundedSender<Out>,
    inbound: mpsc::Receiver<Result<Vec<u8>>>,
    idle: Option<Duration>,
    /// Fires when the writer task has sent everything and closed.
    flushed: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl WsTransport {
    /// Wraps an accepted axum WebSocket.
    pub fn from_axum(socket: axum::extract::ws::WebSocket, idle: Option<Duration>) -> Self {
        use axum::extract::ws::{CloseFrame, Message};
        spawn(
            socket,
            idle,
            |b| Message::Binary(b.into()),
            |reason| {
                Message::Close(Some(CloseFrame {
                    code: 1008,
                    reason: reason.into(),
                }))
            },
            |m| match m {
                Message::Binary(b) => Incoming::Frame(b.into()),
                Message::Close(c) => Incoming::Close(c.map(|c| c.reason.to_string())),
                Message::Text(_) => Incoming::Text,
                Message::Ping(_) | Message::Pong(_) => Incoming::Skip,
            },
        )
    }

    /// Wraps a connected tokio-tungstenite WebSocket.
    pub fn from_tungstenite<S>(
        socket: tokio_tungstenite::WebSocketStream<S>,
        idle: Option<Duration>,
    ) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        spawn(
            socket,
            idle,
            |b| Message::Binary(b.into()),
            |reason| {
                Message::Close(Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: reason.into(),
                }))
            },
            |m| match m {
                Message::Binary(b) => Incoming::Frame(b.into()),
                Message::Close(c) => Incoming::Close(c.map(|c| c.reason.to_string())),
                Message::Text(_) => Incoming::Text,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Incoming::Skip,
            },
        )
    }

    /// Closes the connection with a reason the peer sees even if it speaks
    /// another protocol version (a WebSocket close frame).
    pub fn close(&self, reason: &str) {
        // Close reasons are capped at 123 bytes by RFC 6455.
        let mut r = reason.to_string();
        while r.len() > 123 {
            r.pop();
        }
        let _ = self.out.send(Out::Close(r));
    }

    /// A handle that can still end the session after the transport has
    /// been handed to the protocol.
    pub fn handle(&self) -> WsHandle {
        WsHandle {
            out: self.out.clone(),
        }
    }

    /// Changes the idle timeout for the frames still to come.
    pub fn set_idle(&mut self, idle: Option<Duration>) {
        self.idle = idle;
    }
}

/// Ends a session from outside the protocol (see [`WsTransport::handle`]).
#[derive(Debug, Clone)]
pub struct WsHandle {
    out: mpsc::UnboundedSender<Out>,
}

impl WsHandle {
    /// Queues an error frame for the peer (after everything already queued).
    pub fn send_error(&self, code: hush_core::error::ErrorCode, message: &str) {
        let msg = hush_core::session::Control::Error {
            code,
            message: message.to_string(),
        };
        if let Ok(f) = hush_core::session::frame::encode_control(&msg) {
            let _ = self.out.send(Out::Frame(f));
        }
    }

    /// Ends a session after `e`: an error frame with its code, or — for a
    /// peer of another protocol version, which could not parse our frames —
    /// a WebSocket close with the reason in words.
    pub fn report(&self, e: &hush_core::Error) {
        use hush_core::error::{Error, PeerError};
        match e {
            Error::Peer(PeerError::Version { ours, .. }) => {
                let _ = self
                    .out
                    .send(Out::Close(format!("hush protocol version {ours} required")));
            }
            _ => self.send_error(e.code(), &e.message()),
        }
    }
}

fn spawn<S, M, E>(
    socket: S,
    idle: Option<Duration>,
    binary: fn(Vec<u8>) -> M,
    close: fn(String) -> M,
    classify: fn(M) -> Incoming,
) -> WsTransport
where
    S: Stream<Item = std::result::Result<M, E>> + Sink<M> + Send + 'static,
    M: Send + 'static,
    E: Display + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let (in_tx, in_rx) = mpsc::channel::<Result<Vec<u8>>>(INBOUND_FRAMES);
    let (flushed_tx, flushed_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        loop {
            let item = match stream.next().await {
                None => Err(closed()),
                Some(Err(e)) => Err(io_error(&e)),
                Some(Ok(m)) => match classify(m) {
                    Incoming::Frame(b) => Ok(b),
                    Incoming::Skip => continue,
                    Incoming::Text => Err(PeerError::Malformed("text message").into()),
                    Incoming::Close(reason) => Err(match reason.filter(|r| !r.is_empty()) {
                        Some(r) => {
                            ChannelError::Io(format!("the peer closed the connection: {r}")).into()
                        }
                        None => closed(),
                    }),
                },
            };
            let end = item.is_err();
            if in_tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let (msg, last) = match o {
                Out::Frame(b) => (binary(b), false),
                Out::Close(r) => (close(r), true),
                Out::Finish => break,
            };
            if sink.send(msg).await.is_err() || last {
                break;
            }
        }
        let _ = sink.close().await;
        let _ = flushed_tx.send(());
        // The peer has had our close; stop waiting for it to answer.
        tokio::time::sleep(Duration::from_millis(500)).await;
        reader.abort();
    });
    WsTransport {
        out: out_tx,
        inbound: in_rx,
        idle,
        flushed: Some(flushed_rx),
    }
}

fn closed() -> hush_core::Error {
    ChannelError::Io("the connection closed".into()).into()
}

fn io_error(e: &dyn Display) -> hush_core::Error {
    let s = e.to_string();
    if s.contains("Space limit exceeded") || s.contains("too long") || s.contains("Capacity") {
        PeerError::Malformed("frame over the size limit").into()
    } else {
        ChannelError::Io(format!("connection failed: {s}")).into()
    }
}

impl FrameTransport for WsTransport {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        self.out.send(Out::Frame(frame)).map_err(|_| closed())
    }

    async fn close(&mut self) -> Result<()> {
        let _ = self.out.send(Out::Finish);
        if let Some(flushed) = self.flushed.take() {
            // Bounded: a peer that never reads must not hold us forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), flushed).await;
        }
        Ok(())
    }

    async fn recv_frame(&mut self) -> Result<Vec<u8>> {
        let next = match self.idle {
            Some(d) => tokio::time::timeout(d, self.inbound.recv())
                .await
                .map_err(|_| hush_core::Error::from(ChannelError::TimedOut))?,
            None => self.inbound.recv().await,
        };
        next.unwrap_or_else(|| Err(closed()))
    }
}

/// Accepts an upgrade with frame limits `max_frame` and hands the
/// transport (idle timeout `idle`) to `session`.
pub fn accept<F, Fut>(
    ws: axum::extract::ws::WebSocketUpgrade,
    max_frame: usize,
    idle: Option<Duration>,
    session: F,
) -> axum::response::Response
where
    F: FnOnce(WsTransport) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| session(WsTransport::from_axum(socket, idle)))
}

/// The WebSocket limits matching `limits`.
pub fn tungstenite_config(
    limits: &Limits,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}
