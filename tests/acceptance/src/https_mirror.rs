//! A provider network mirror on `https://localhost`: the files of a directory (laid out by
//! [`crate::release::network_mirror`]) served over TLS with a certificate from a test CA made
//! for this server, which a CLI trusts through `SSL_CERT_FILE`.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Shared {
    root: PathBuf,
    served: Mutex<Vec<String>>,
}

/// The running mirror; stops when dropped.
pub struct HttpsMirror {
    url: String,
    ca_file: PathBuf,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl HttpsMirror {
    /// Serves `root` on a free loopback port.
    pub fn serve(root: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (ca_pem, config) = tls_config()?;
        let ca_file = dir.path().join("test-ca.pem");
        std::fs::write(&ca_file, ca_pem)?;
        let shared = Arc::new(Shared { root: root.to_path_buf(), served: Mutex::new(Vec::new()) });
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("https://localhost:{}/", listener.local_addr()?.port());
        let app = Router::new().fallback(file).with_state(Arc::clone(&shared));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Ok(Self { url, ca_file, shared, _dir: dir, _runtime: runtime })
    }

    /// `https://localhost:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test CA's certificate (PEM), for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The paths served so far.
    pub fn served(&self) -> Vec<String> {
        self.shared.served.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn file(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    let relative = Path::new(uri.path().trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(s.root.join(relative)).await {
        Ok(data) => {
            if let Ok(mut served) = s.served.lock() {
                served.push(uri.path().to_string());
            }
            // The protocol's JSON documents must say so; archives are opaque bytes.
            let kind = if uri.path().ends_with(".json") { "application/json" } else { "application/zip" };
            ([(header::CONTENT_TYPE, kind)], data).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A new test CA (its PEM) and a server configuration whose certificate it signed, for
/// `localhost` and `127.0.0.1`.
fn tls_config() -> Result<(String, rustls::ServerConfig)> {
    let certs = crate::test_ca::issue("terraform-provider-adf test CA")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certs.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certs.key_der)),
        )
        .context("the mirror's TLS configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((certs.ca_pem, config))
}
