//! A minimal executor and frame transports for the targets: the protocols
//! are async but wait only on their channels, and the transports here never
//! wait on anything else.

use hush_core::Result;
use hush_core::error::ChannelError;
use hush_core::session::FrameTransport;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Polls with no progress after which a future is taken to be stuck.
const STUCK_POLLS: usize = 1_000;

/// Runs `f` to completion. Its transports must never wait (a [`Replay`]
/// answers every receive at once), so a future that stays pending is a
/// hang, reported as a panic.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..STUCK_POLLS {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a future stayed pending with nothing to wait for");
}

/// Runs two futures that talk over a [`pipe`] to completion, in turn.
pub fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let mut cx = Context::from_waker(Waker::noop());
    let (mut ra, mut rb) = (None, None);
    let mut idle = 0;
    while ra.is_none() || rb.is_none() {
        let before = (ra.is_some(), rb.is_some());
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(&mut cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(&mut cx)
        {
            rb = Some(v);
        }
        // A round in which neither finished may still have moved frames;
        // only a long run of them is a deadlock.
        idle = if before == (ra.is_some(), rb.is_some()) {
            idle + 1
        } else {
            0
        };
        assert!(idle < 1 << 24, "two parties deadlocked");
    }
    match (ra, rb) {
        (Some(x), Some(y)) => (x, y),
        _ => unreachable!("the loop ends when both are done"),
    }
}

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory frame pipe ([`pipe`]); it keeps a copy of every
/// frame it receives (the seed corpus of the session targets).
pub struct PipeEnd {
    inbox: Queue,
    outbox: Queue,
    received: Received,
}

/// What an end of a [`pipe`] received, frame by frame.
pub type Received = Rc<RefCell<Vec<Vec<u8>>>>;

/// Two connected ends, each recording what it receives.
pub fn pipe() -> ((PipeEnd, Received), (PipeEnd, Received)) {
    let (ab, ba): (Queue, Queue) = Default::default();
    let (ra, rb): (Received, Received) = Default::default();
    (
        (
            PipeEnd {
                inbox: ba.clone(),
                outbox: ab.clone(),
                received: ra.clone(),
            },
            ra,
        ),
        (
            PipeEnd {
                inbox: ab,
                outbox: ba,
                received: rb.clone(),
            },
            rb,
        ),
    )
}

impl FrameTransport for PipeEnd {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        self.outbox.borrow_mut().push_back(frame);
        Ok(())
    }

    async fn recv_frame(&mut self) -> Result<Vec<u8>> {
        let f = poll_fn(|_| match self.inbox.borrow_mut().pop_front() {
            Some(f) => Poll::Ready(f),
            None => Poll::Pending,
        })
        .await;
        self.received.borrow_mut().push(f.clone());
        Ok(f)
    }
}

/// A peer that sends the frames of a fuzz input and ignores what it is
/// sent: the input is a sequence of `u32` little-endian lengths, each
/// followed by that many bytes (the last frame takes what is left).
pub struct Replay<'a> {
    rest: &'a [u8],
}

impl<'a> Replay<'a> {
    /// The frames of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Replay { rest: data }
    }

    fn next_frame(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 4 {
            return None;
        }
        let (len, rest) = self.rest.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (f, rest) = rest.split_at(len.min(rest.len()));
        self.rest = rest;
        Some(f)
    }
}

/// The fuzz input a [`Replay`] turns back into `frames`.
pub fn encode_frames(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

impl FrameTransport for Replay<'_> {
    async fn send_frame(&mut self, _frame: Vec<u8>) -> Result<()> {
        Ok(())
    }

    async fn recv_frame(&mut self) -> Result<Vec<u8>> {
        self.next_frame()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ChannelError::Closed { peer: 1 }.into())
    }
}
