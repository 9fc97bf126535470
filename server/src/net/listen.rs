//! Binding, announcing and serving an axum router, plain or with TLS.

use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Certificate and key files (PEM) for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Binds `addr`, prints `<what> listening on <url>` on stdout (tests and
/// scripts read the port from it), and serves `app` until the process ends.
pub async fn serve(
    what: &str,
    app: Router,
    addr: &str,
    tls: Option<TlsFiles>,
) -> Result<(), String> {
    let (listener, url) = bind(addr, tls.is_some())?;
    println!("{what} listening on {url}");
    tracing::info!(%url, "{what} listening");
    serve_on(listener, app, tls).await
}

/// Binds `addr`; returns the listener and its `ws://` (or `wss://`) URL.
pub fn bind(addr: &str, tls: bool) -> Result<(std::net::TcpListener, String), String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls { "wss" } else { "ws" };
    Ok((listener, format!("{scheme}://{local}")))
}

/// Serves `app` on a bound listener.
pub async fn serve_on(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<TlsFiles>,
) -> Result<(), String> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            use axum::serve::ListenerExt;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| e.to_string())?
                // MPC rounds are small messages sent back and forth: Nagle's
                // algorithm would hold each one for a delayed ACK.
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            axum::serve(listener, service)
                .await
                .map_err(|e| e.to_string())
        }
        Some(files) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await
                    .map_err(|e| {
                        format!(
                            "TLS certificate {} / key {}: {e}",
                            files.cert.display(),
                            files.key.display()
                        )
                    })?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .acceptor(axum_server::accept::NoDelayAcceptor::new());
            axum_server::from_tcp(listener)
                .map_err(|e| e.to_string())?
                .acceptor(acceptor)
                .serve(service)
                .await
                .map_err(|e| e.to_string())
        }
    }
}
