//! A [`FrameTransport`] over the browser's `WebSocket`.
//!
//! The socket's event handlers push frames (or the reason it closed) into a
//! queue and wake the protocol's future; sends go straight to the socket,
//! which buffers them. The browser allocates each message before we see it,
//! so the frame limit is checked when the frame is parsed.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use hush_core::error::{ChannelError, PeerError, Result};
use hush_core::session::FrameTransport;
use js_sys::{ArrayBuffer, Uint8Array};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

#[derive(Default)]
struct Shared {
    open: bool,
    queue: VecDeque<Result<Vec<u8>>>,
    waker: Option<Waker>,
}

impl Shared {
    fn push(&mut self, item: Result<Vec<u8>>) {
        self.queue.push_back(item);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

type Handler<E> = Closure<dyn FnMut(E)>;

/// An open browser WebSocket.
pub struct BrowserSocket {
    ws: WebSocket,
    shared: Rc<RefCell<Shared>>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
    _on_error: Handler<Event>,
    _on_open: Handler<Event>,
}

impl core::fmt::Debug for BrowserSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BrowserSocket").finish_non_exhaustive()
    }
}

fn io(msg: String) -> hush_core::Error {
    ChannelError::Io(msg).into()
}

impl BrowserSocket {
    /// Connects to `url` and waits until the socket is open.
    pub async fn open(url: &str) -> Result<BrowserSocket> {
        let ws =
            WebSocket::new(url).map_err(|_| io(format!("{url} is not a WebSocket address")))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let shared = Rc::new(RefCell::new(Shared::default()));
        let s = shared.clone();
        let on_message: Handler<MessageEvent> = Closure::new(move |e: MessageEvent| {
            let item = match e.data().dyn_into::<ArrayBuffer>() {
                Ok(buf) => Ok(Uint8Array::new(&buf).to_vec()),
                Err(_) => Err(PeerError::Malformed("text message").into()),
            };
            s.borrow_mut().push(item);
        });
        let s = shared.clone();
        let on_close: Handler<CloseEvent> = Closure::new(move |e: CloseEvent| {
            let reason = e.reason();
            let msg = if reason.is_empty() {
                "the connection closed".to_string()
            } else {
                format!("the peer closed the connection: {reason}")
            };
            s.borrow_mut().push(Err(io(msg)));
        });
        let s = shared.clone();
        let target = url.to_string();
        let on_error: Handler<Event> = Closure::new(move |_e: Event| {
            let mut sh = s.borrow_mut();
            let msg = if sh.open {
                "the connection failed".to_string()
            } else {
                format!("cannot connect to {target}")
            };
            sh.push(Err(io(msg)));
        });
        let s = shared.clone();
        let on_open: Handler<Event> = Closure::new(move |_e: Event| {
            let mut sh = s.borrow_mut();
            sh.open = true;
            if let Some(w) = sh.waker.take() {
                w.wake();
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let socket = BrowserSocket {
            ws,
            shared,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
            _on_open: on_open,
        };
        poll_fn(|cx| {
            let mut sh = socket.shared.borrow_mut();
            if sh.open {
                return Poll::Ready(Ok(()));
            }
            if let Some(Err(e)) = sh.queue.pop_front() {
                return Poll::Ready(Err(e));
            }
            sh.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        Ok(socket)
    }
}

impl FrameTransport for BrowserSocket {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        self.ws
            .send_with_u8_array(&frame)
            .map_err(|_| io("the connection closed".into()))
    }

    async fn recv_frame(&mut self) -> Result<Vec<u8>> {
        poll_fn(|cx| {
            let mut sh = self.shared.borrow_mut();
            match sh.queue.pop_front() {
                Some(item) => Poll::Ready(item),
                None => {
                    sh.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for BrowserSocket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        self.ws.set_onopen(None);
        let _ = self.ws.close();
    }
}
