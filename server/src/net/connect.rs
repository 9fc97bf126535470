//! Outgoing WebSocket connections (client → server, client → dealer,
//! server → dealer), plain or TLS.

use super::ws::{WsTransport, tungstenite_config};
use hush_core::error::{ChannelError, Result};
use hush_core::session::Limits;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::Connector;

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach peers: TLS roots and frame limits.
#[derive(Clone)]
pub struct Connect {
    tls: Arc<rustls::ClientConfig>,
    limits: Limits,
    idle: Option<Duration>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("limits", &self.limits)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Connect {
    /// Trusts the web's roots (webpki-roots), plus the PEM certificates in
    /// `ca` if given (for a private CA or a self-signed server).
    pub fn new(ca: Option<&Path>, idle: Option<Duration>) -> std::result::Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate", path.display()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Connect {
            tls: Arc::new(tls),
            limits: Limits::default(),
            idle,
        })
    }

    /// The frame limits of connections made here.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Opens a WebSocket to `url` (`ws://` or `wss://`).
    pub async fn open(&self, url: &str) -> Result<WsTransport> {
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(tungstenite_config(&self.limits)),
            true,
            Some(Connector::Rustls(self.tls.clone())),
        );
        let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| ChannelError::Io(format!("connecting to {url} timed out")))?
            .map_err(|e| ChannelError::Io(format!("cannot connect to {url}: {e}")))?;
        Ok(WsTransport::from_tungstenite(socket, self.idle))
    }
}
