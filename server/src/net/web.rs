//! The browser app (`web/`) and the npm package's files (`wasm/pkg/`),
//! embedded in the binary so that `hush serve` needs no build step.
//! `cargo xtask wasm` rebuilds `wasm/pkg/`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../../web/index.html");
const APP: &str = include_str!("../../../web/app.js");
const STYLE: &str = include_str!("../../../web/style.css");
const HUSH_JS: &str = include_str!("../../../wasm/pkg/hush.js");
const GLUE_JS: &str = include_str!("../../../wasm/pkg/hush_wasm.js");
const WASM: &[u8] = include_bytes!("../../../wasm/pkg/hush_wasm_bg.wasm");

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// Routes of the app, to merge into a server's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX.as_bytes()) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP.as_bytes()) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE.as_bytes()) }),
        )
        .route(
            "/pkg/hush.js",
            get(|| async { asset("text/javascript; charset=utf-8", HUSH_JS.as_bytes()) }),
        )
        .route(
            "/pkg/hush_wasm.js",
            get(|| async { asset("text/javascript; charset=utf-8", GLUE_JS.as_bytes()) }),
        )
        .route(
            "/pkg/hush_wasm_bg.wasm",
            get(|| async { asset("application/wasm", WASM) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
}
