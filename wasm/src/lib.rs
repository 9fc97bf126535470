//! # hush-wasm
//!
//! The client party (P0) of Hush in the browser: the same client session as
//! the native `hush infer` (`hush_core::session::client`), over the browser's
//! WebSocket, with randomness from `crypto.getRandomValues` (through
//! `getrandom`'s `wasm_js` backend) and the single-threaded CPU backend.
//!
//! JavaScript sees one class, [`Session`]; the npm package's `hush.js` wraps
//! it in the documented `HushSession` API (errors with a stable `code`,
//! `{data, dims}` tensors, timing).

mod socket;

pub use socket::BrowserSocket;

use hush_core::channel::CommStats;
use hush_core::error::{Error, ErrorCode, Result};
use hush_core::prg::Seed;
use hush_core::session::client::{ClientOptions, ClientSession, SeedSource, claim_seed};
use hush_core::session::{
    Limits, ModelInfo, SessionId, TensorInfo, parse_commitment, seed_url, session_url,
};
use hush_gpu::{BackendChoice, Compute, GpuOptions};
use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect};
use ndarray::{ArrayD, IxDyn};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Claims the client's seed from the dealer over a browser WebSocket.
struct DealerSeeds;

impl SeedSource for DealerSeeds {
    async fn claim(&mut self, url: &str, session: &SessionId, key: &Seed) -> Result<Seed> {
        let t = BrowserSocket::open(&seed_url(url)).await?;
        claim_seed(t, session, key, Limits::default()).await
    }
}

/// The model's inputs from [`Session::run`]'s flat arguments, each checked
/// against its shape (`BAD_REQUEST` otherwise).
fn split_inputs(
    model: &[TensorInfo],
    data: &[f32],
    dims: &[u32],
    ranks: &[u32],
) -> core::result::Result<Vec<ArrayD<f64>>, JsValue> {
    let bad = |m: String| js_error(ErrorCode::BadRequest.as_str(), &m);
    if ranks.len() != model.len() {
        let names: Vec<&str> = model.iter().map(|t| t.name.as_str()).collect();
        return Err(bad(format!(
            "{} inputs given; the model takes {} ({})",
            ranks.len(),
            model.len(),
            names.join(", ")
        )));
    }
    let (mut d, mut v) = (dims, data);
    let mut out = Vec::with_capacity(model.len());
    for (t, &rank) in model.iter().zip(ranks) {
        let rank = rank as usize;
        if rank > d.len() {
            return Err(bad("fewer dimensions than the ranks say".into()));
        }
        let (these, rest) = d.split_at(rank);
        d = rest;
        let shape: Vec<usize> = these.iter().map(|&x| x as usize).collect();
        let n: usize = t.shape.iter().product();
        if shape != t.shape || v.len() < n {
            return Err(bad(format!(
                "input '{}' has dims {shape:?}; the model takes {:?}",
                t.name, t.shape
            )));
        }
        let (values, rest) = v.split_at(n);
        v = rest;
        let x = ArrayD::from_shape_vec(
            IxDyn(&t.shape),
            values.iter().map(|&x| f64::from(x)).collect(),
        )
        .map_err(|e| bad(e.to_string()))?;
        out.push(x);
    }
    if !d.is_empty() || !v.is_empty() {
        return Err(bad(format!(
            "{} values and {} dimensions too many for the model's inputs",
            v.len(),
            d.len()
        )));
    }
    Ok(out)
}

/// A JavaScript `Error` with a stable `code`.
fn js_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    let _ = Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

fn to_js(e: &Error) -> JsValue {
    js_error(e.code().as_str(), &e.message())
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

fn tensors(ts: &[TensorInfo]) -> Array {
    ts.iter()
        .map(|t| {
            let o = Object::new();
            set(&o, "name", t.name.as_str());
            let dims: Array = t.shape.iter().map(|&d| JsValue::from(d as u32)).collect();
            set(&o, "dims", dims);
            JsValue::from(o)
        })
        .collect()
}

fn model_object(info: &ModelInfo, insecure: bool) -> Object {
    let o = Object::new();
    set(&o, "name", info.name.as_str());
    set(&o, "inputs", tensors(&info.inputs));
    set(&o, "outputs", tensors(&info.outputs));
    let names = |ts: &[TensorInfo]| -> Array {
        ts.iter().map(|t| JsValue::from(t.name.as_str())).collect()
    };
    set(&o, "inputNames", names(&info.inputs));
    set(&o, "outputNames", names(&info.outputs));
    set(&o, "commitment", info.commitment_string());
    set(&o, "parameters", info.parameters as f64);
    set(&o, "nodes", info.nodes as u32);
    set(&o, "insecureDealer", insecure);
    o
}

fn stats_object(s: &CommStats) -> Object {
    let o = Object::new();
    set(&o, "bytesSent", s.bytes_sent as f64);
    set(&o, "bytesReceived", s.bytes_received as f64);
    set(&o, "rounds", s.rounds as f64);
    o
}

type Inner = ClientSession<BrowserSocket, Compute>;

/// A connected session with a Hush model server: the model is known, the
/// weights are set up, and [`Session::run`] evaluates it privately.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<Option<Inner>>>,
    model: Object,
    /// The model's inputs (names and shapes) and its outputs' names.
    inputs: Vec<TensorInfo>,
    outputs: Vec<String>,
    setup: CommStats,
    last: Rc<Cell<Option<CommStats>>>,
}

#[wasm_bindgen]
impl Session {
    /// Connects to the server at `url` (`ws://host:port` or the full session
    /// address), fetches this client's seed from the dealer the server names,
    /// and sets up the weights. Refuses a model whose commitment differs from
    /// `expect_model` (`sha256:<hex>`). `backend` (`cpu`, the default;
    /// `gpu`: WebGPU, an error without an adapter; `auto`: WebGPU for the
    /// products where it measured faster than the CPU here) says where the
    /// client's products run.
    pub async fn connect(
        url: String,
        expect_model: Option<String>,
        token: Option<String>,
        backend: Option<String>,
    ) -> std::result::Result<Session, JsValue> {
        let choice: BackendChoice = backend
            .as_deref()
            .unwrap_or("cpu")
            .parse()
            .map_err(|e: String| js_error(ErrorCode::BadRequest.as_str(), &e))?;
        let compute = Compute::open(choice, &GpuOptions::default(), js_sys::Date::now)
            .await
            .map_err(|e| to_js(&e))?;
        let backend = compute.describe();
        let expect_model = match expect_model {
            Some(s) => Some(parse_commitment(&s).ok_or_else(|| {
                js_error(
                    ErrorCode::BadRequest.as_str(),
                    &format!("expectModel {s:?} is not a SHA-256 (sha256:<64 hex digits>)"),
                )
            })?),
            None => None,
        };
        let options = ClientOptions {
            expect_model,
            token,
            software: format!("hush-wasm/{}", env!("CARGO_PKG_VERSION")),
            limits: Limits::default(),
        };
        let transport = BrowserSocket::open(&session_url(&url))
            .await
            .map_err(|e| to_js(&e))?;
        let session = ClientSession::connect(transport, compute, &options, &mut DealerSeeds)
            .await
            .map_err(|e| to_js(&e))?;
        let info = session.model().clone();
        let model = model_object(&info, session.insecure_dealer());
        set(&model, "backend", backend.as_str());
        Ok(Session {
            model,
            inputs: info.inputs.clone(),
            outputs: info.outputs.iter().map(|t| t.name.clone()).collect(),
            setup: session.setup_stats(),
            inner: Rc::new(RefCell::new(Some(session))),
            last: Rc::new(Cell::new(None)),
        })
    }

    /// The model: `name`, `inputs`/`outputs` (`{name, dims}`), `inputNames`,
    /// `outputNames`, `commitment`, `parameters`, `nodes`, `insecureDealer`.
    #[wasm_bindgen(getter)]
    pub fn model(&self) -> Object {
        self.model.clone()
    }

    /// Traffic of the last inference and of the weight setup:
    /// `{bytesSent, bytesReceived, rounds, setup: {...}}`.
    #[wasm_bindgen(getter)]
    pub fn stats(&self) -> Object {
        let o = match self.last.get() {
            Some(s) => stats_object(&s),
            None => Object::new(),
        };
        set(&o, "setup", stats_object(&self.setup));
        o
    }

    /// Evaluates the model on its inputs, in the model's order: `data`
    /// holds their values one after another (each row-major), `dims` their
    /// dimensions one after another, and `ranks` how many dimensions each
    /// has. Resolves to an array of `{name, data: Float32Array, dims}`, one
    /// per model output; calls `on_progress(done, total, op)` after every
    /// node. One inference at a time per session.
    pub fn run(
        &self,
        data: Vec<f32>,
        dims: Vec<u32>,
        ranks: Vec<u32>,
        on_progress: Option<Function>,
    ) -> Promise {
        let inner = self.inner.clone();
        let last = self.last.clone();
        let inputs = split_inputs(&self.inputs, &data, &dims, &ranks);
        let output_names = self.outputs.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let inputs = inputs?;
            let mut session = inner.borrow_mut().take().ok_or_else(|| {
                js_error(
                    "BUSY",
                    "the session is running another inference, or it is closed",
                )
            })?;
            let before = session.stats();
            let mut progress = |p: hush_core::plan::secure::Progress| {
                if let Some(f) = &on_progress {
                    let _ = f.call3(
                        &JsValue::NULL,
                        &JsValue::from(p.done as u32),
                        &JsValue::from(p.total as u32),
                        &JsValue::from(p.op),
                    );
                }
            };
            let result = session.run(&inputs, &mut progress).await;
            let ys = match result {
                Ok(ys) if !ys.is_empty() => ys,
                Ok(_) => return Err(js_error("INTERNAL", "the model returned no output")),
                // Shape errors leave the session usable; anything else broke it.
                Err(e @ (Error::Shape(_) | Error::Encoding(_))) => {
                    *inner.borrow_mut() = Some(session);
                    return Err(to_js(&e));
                }
                Err(e) => return Err(to_js(&e)),
            };
            last.set(Some(session.stats().since(&before)));
            *inner.borrow_mut() = Some(session);
            let out: Array = ys
                .iter()
                .zip(&output_names)
                .map(|(y, name)| {
                    let o = Object::new();
                    set(&o, "name", name.as_str());
                    let values: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                    set(&o, "data", Float32Array::from(values.as_slice()));
                    let dims: Array = y.shape().iter().map(|&d| JsValue::from(d as u32)).collect();
                    set(&o, "dims", dims);
                    JsValue::from(o)
                })
                .collect();
            Ok(out.into())
        })
    }

    /// Ends the session politely.
    pub fn close(&self) -> Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let session = inner.borrow_mut().take();
            if let Some(s) = session {
                s.close().await.map_err(|e| to_js(&e))?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}
