//! The go-plugin handshake and the gRPC server Terraform talks to: magic cookie, protocol
//! version, unix socket (TCP as a fallback), AutoMTLS, the handshake line, the controller,
//! stdio and health services, and the `--debug` reattach mode.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use crate::proto::plugin as gp;
use crate::provider::Provider;
use crate::server::ProviderService;
use crate::tls::{ServerTls, TlsError, server_tls};

/// go-plugin's magic cookie key and value for Terraform providers.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value Terraform sets for [`MAGIC_COOKIE_KEY`].
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The plugin protocol major version we speak.
pub const PROTOCOL_VERSION: u32 = 6;

/// Why the plugin could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Terraform offered no protocol version we speak.
    #[error(
        "Terraform offers plugin protocol versions {0:?}; this provider speaks only version 6 (Terraform >= 1.0, OpenTofu)"
    )]
    Protocol(String),
    /// No socket could be opened.
    #[error("opening the plugin socket: {0}")]
    Listen(std::io::Error),
    /// AutoMTLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Writing the handshake line failed.
    #[error("writing the handshake: {0}")]
    Stdout(std::io::Error),
}

/// The environment the handshake reads, taken from the process or given by a test.
#[derive(Clone, Debug, Default)]
pub struct HandshakeEnv {
    /// `PLUGIN_PROTOCOL_VERSIONS`, comma separated.
    pub protocol_versions: Option<String>,
    /// `PLUGIN_CLIENT_CERT`: Terraform's PEM certificate; absent when TLS is disabled.
    pub client_cert: Option<String>,
    /// `PLUGIN_UNIX_SOCKET_DIR`, else the temp dir.
    pub socket_dir: Option<PathBuf>,
    /// `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT`, for the TCP fallback.
    pub port_range: Option<(u16, u16)>,
    /// Serve TCP even where unix sockets work.
    pub force_tcp: bool,
}

impl HandshakeEnv {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let port = |k: &str| var(k).and_then(|v| v.parse::<u16>().ok());
        Self {
            protocol_versions: var("PLUGIN_PROTOCOL_VERSIONS"),
            client_cert: var("PLUGIN_CLIENT_CERT"),
            socket_dir: var("PLUGIN_UNIX_SOCKET_DIR").map(PathBuf::from),
            port_range: port("PLUGIN_MIN_PORT").zip(port("PLUGIN_MAX_PORT")),
            force_tcp: false,
        }
    }
}

/// Runs a provider binary's `main`: the hint when started by hand, `--debug`, or the
/// handshake and server that Terraform expects. `source` is the provider's source without its
/// registry host, such as `activedataflow/adf`.
pub async fn run<P: Provider>(provider: P, source: &str) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|a| a == "--debug") {
        serve_debug(provider, source).await
    } else if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a plugin for Terraform and OpenTofu, not a program to run by hand.\n\
             Terraform starts it when a configuration uses the provider {source}.\n\
             To develop against it, run it with --debug and export the TF_REATTACH_PROVIDERS it prints."
        );
        return ExitCode::from(1);
    } else {
        let mut stdout = std::io::stdout();
        serve(provider, HandshakeEnv::from_process(), &mut stdout, shutdown_on_terminate()).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Resolves when the process gets SIGTERM. SIGINT is ignored, as go-plugin servers do:
/// Terraform handles Ctrl-C and tells the provider through `StopProvider`.
async fn shutdown_on_terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => tracing::debug!("ignoring SIGINT; waiting for Terraform's StopProvider"),
        }
    }
}

/// Does the handshake for `env`, writes the handshake line to `out`, and serves until
/// Terraform calls `GRPCController.Shutdown` or `stop` resolves.
pub async fn serve<P: Provider>(
    provider: P,
    env: HandshakeEnv,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let offered = env.protocol_versions.clone().unwrap_or_else(|| PROTOCOL_VERSION.to_string());
    if !offered.split(',').any(|v| v.trim() == PROTOCOL_VERSION.to_string()) {
        return Err(ServeError::Protocol(offered));
    }
    let tls = env.client_cert.as_deref().map(server_tls).transpose()?;
    let listener = Listener::bind(&env).map_err(ServeError::Listen)?;
    let cert = tls.as_ref().map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der));
    let line = format!(
        "1|{PROTOCOL_VERSION}|{}|{}|grpc|{}\n",
        listener.network(),
        listener.address(),
        cert.unwrap_or_default()
    );
    out.write_all(line.as_bytes()).and_then(|()| out.flush()).map_err(ServeError::Stdout)?;
    serve_on(provider, listener, tls, stop).await
}

/// The registry hosts a short source such as `activedataflow/adf` means: Terraform's default
/// and OpenTofu's.
const REGISTRY_HOSTS: [&str; 2] = ["registry.terraform.io", "registry.opentofu.org"];

async fn serve_debug<P: Provider>(provider: P, source: &str) -> Result<(), ServeError> {
    let listener = Listener::bind(&HandshakeEnv::default()).map_err(ServeError::Listen)?;
    let entry = serde_json::json!({
        "Protocol": "grpc",
        "ProtocolVersion": PROTOCOL_VERSION,
        "Pid": std::process::id(),
        "Test": true,
        "Addr": { "Network": listener.network(), "String": listener.address() },
    });
    // Under both hosts, so that `source = "activedataflow/adf"` attaches with either CLI.
    let reattach: serde_json::Map<String, serde_json::Value> =
        REGISTRY_HOSTS.iter().map(|host| (format!("{host}/{source}"), entry.clone())).collect();
    let reattach = serde_json::Value::Object(reattach);
    println!(
        "Provider started in debug mode. To attach Terraform, set this in the shell that runs it:\n\n\
         \tTF_REATTACH_PROVIDERS='{reattach}'\n\nPress Ctrl-C to stop."
    );
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve_on(provider, listener, None, ctrl_c).await
}

async fn serve_on<P: Provider>(
    provider: P,
    listener: Listener,
    tls: Option<ServerTls>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("plugin", tonic_health::ServingStatus::Serving).await;

    let (conn_tx, conn_rx) = mpsc::channel::<std::io::Result<Conn>>(16);
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let socket_path = listener.socket_path();
    let accept = tokio::spawn(listener.accept_loop(acceptor, conn_tx));

    let shutdown = async move {
        tokio::select! {
            () = stop => {},
            _ = shutdown_rx.wait_for(|s| *s) => {},
        }
    };
    let result = tonic::transport::Server::builder()
        .add_service(ProviderService::new(provider).into_server())
        .add_service(gp::grpc_controller_server::GrpcControllerServer::new(Controller { shutdown: shutdown_tx }))
        .add_service(gp::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(health_service)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(conn_rx), shutdown)
        .await;
    accept.abort();
    if let Some(p) = socket_path {
        let _ = std::fs::remove_file(p);
    }
    result.map_err(ServeError::from)
}

/// `plugin.GRPCController`: Terraform's request to exit.
struct Controller {
    shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _req: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        let _ = self.shutdown.send(true);
        Ok(Response::new(gp::Empty {}))
    }
}

/// `plugin.GRPCStdio`: we log to stderr ourselves, so the stream carries nothing.
struct Stdio;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = futures::stream::Empty<Result<gp::StdioData, Status>>;

    async fn stream_stdio(&self, _req: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(futures::stream::empty()))
    }
}

enum Listener {
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener, std::net::SocketAddr),
}

impl Listener {
    fn bind(env: &HandshakeEnv) -> std::io::Result<Self> {
        if !env.force_tcp {
            let dir = env.socket_dir.clone().unwrap_or_else(std::env::temp_dir);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let path = dir.join(format!("plugin-adf-{}-{nanos:x}.sock", std::process::id()));
            match tokio::net::UnixListener::bind(&path) {
                Ok(l) => return Ok(Listener::Unix(l, path)),
                Err(e) => tracing::warn!(error = %e, path = %path.display(), "unix socket failed; falling back to TCP"),
            }
        }
        let (min, max) = env.port_range.unwrap_or((0, 0));
        let mut last = None;
        for port in min..=max {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => {
                    l.set_nonblocking(true)?;
                    let addr = l.local_addr()?;
                    return Ok(Listener::Tcp(tokio::net::TcpListener::from_std(l)?, addr));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT")))
    }

    fn network(&self) -> &'static str {
        match self {
            Listener::Unix(..) => "unix",
            Listener::Tcp(..) => "tcp",
        }
    }

    fn address(&self) -> String {
        match self {
            Listener::Unix(_, p) => p.display().to_string(),
            Listener::Tcp(_, a) => a.to_string(),
        }
    }

    fn socket_path(&self) -> Option<PathBuf> {
        match self {
            Listener::Unix(_, p) => Some(p.clone()),
            Listener::Tcp(..) => None,
        }
    }

    /// Accepts connections, finishing each TLS handshake in its own task so that a slow
    /// client does not hold up the others.
    async fn accept_loop(self, tls: Option<tokio_rustls::TlsAcceptor>, tx: mpsc::Sender<std::io::Result<Conn>>) {
        loop {
            let accepted = match &self {
                Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn(Box::new(s))),
                Listener::Tcp(l, _) => l.accept().await.map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Conn(Box::new(s))
                }),
            };
            let conn = match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a plugin connection");
                    continue;
                }
            };
            let tx = tx.clone();
            match &tls {
                None => {
                    if tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor.accept(conn).await {
                            Ok(s) => {
                                let _ = tx.send(Ok(Conn(Box::new(s)))).await;
                            }
                            Err(e) => tracing::warn!(error = %e, "TLS handshake with Terraform failed"),
                        }
                    });
                }
            }
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One accepted connection: unix or TCP, plain or TLS.
struct Conn(Box<dyn Io>);

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine;
    use hyper_util::rt::TokioIo;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
    use tonic::transport::{Channel, Endpoint};

    use super::*;
    use crate::proto::tfplugin6 as pb;
    use crate::{Diagnostics, Resource, Schema};

    struct Empty;

    #[async_trait::async_trait]
    impl Provider for Empty {
        type Data = ();
        fn schema(&self) -> Schema {
            Schema::new(0, crate::Block::new("empty"))
        }
        async fn configure(&self, _req: crate::ConfigureRequest) -> Result<(), Diagnostics> {
            Ok(())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
            Vec::new()
        }
    }

    /// go-plugin's client side: trusts exactly the certificate from the handshake line.
    #[derive(Debug)]
    struct PinnedServer(Vec<u8>, rustls::crypto::WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for PinnedServer {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.0.as_slice() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General("unexpected server certificate".into()))
            }
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.1)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.1)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.supported_schemes()
        }
    }

    /// A client certificate like Terraform's: self-signed, CA-flagged, ECDSA P-521.
    fn client_identity() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let der = CertificateDer::from(cert.der().to_vec());
        (cert.pem(), der, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    struct Started {
        line: String,
        done: tokio::task::JoinHandle<Result<(), ServeError>>,
    }

    async fn start(env: HandshakeEnv) -> Started {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = tokio::spawn(async move {
            let mut out = LineCatcher(Vec::new(), Some(tx));
            serve(Empty, env, &mut out, std::future::pending()).await
        });
        let line = rx.await.expect("handshake line");
        Started { line, done }
    }

    struct LineCatcher(Vec<u8>, Option<tokio::sync::oneshot::Sender<String>>);

    impl Write for LineCatcher {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            if let Some(tx) = self.1.take() {
                let _ = tx.send(String::from_utf8_lossy(&self.0).trim_end().to_string());
            }
            Ok(())
        }
    }

    async fn channel(
        line: &str,
        identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ) -> Result<Channel, tonic::transport::Error> {
        let parts: Vec<String> = line.split('|').map(str::to_string).collect();
        let (network, addr, cert) = (parts[2].clone(), parts[3].clone(), parts[5].clone());
        let tls = identity.map(|(c, k)| {
            let server = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cert).expect("cert");
            let provider = crate::tls::crypto_provider();
            let verifier = Arc::new(PinnedServer(server, provider.signature_verification_algorithms));
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_client_auth_cert(vec![c], k)
                .expect("client cert");
            config.alpn_protocols = vec![b"h2".to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_| {
                let (network, addr, tls) = (network.clone(), addr.clone(), tls.clone());
                async move {
                    let io: Box<dyn Io> = if network == "unix" {
                        Box::new(tokio::net::UnixStream::connect(&addr).await?)
                    } else {
                        Box::new(tokio::net::TcpStream::connect(&addr).await?)
                    };
                    let io: Box<dyn Io> = match tls {
                        Some(t) => Box::new(t.connect(ServerName::try_from("localhost").expect("name"), io).await?),
                        None => io,
                    };
                    Ok::<_, std::io::Error>(TokioIo::new(io))
                }
            }))
            .await
    }

    async fn schema_and_shutdown(ch: Channel, started: Started) {
        let mut client = pb::provider_client::ProviderClient::new(ch.clone());
        let schema = client.get_provider_schema(pb::get_provider_schema::Request {}).await.expect("schema");
        assert!(schema.into_inner().provider.is_some());
        let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest { service: "plugin".into() })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(status.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        let mut ctl = gp::grpc_controller_client::GrpcControllerClient::new(ch);
        ctl.shutdown(gp::Empty {}).await.expect("shutdown");
        let served = tokio::time::timeout(std::time::Duration::from_secs(10), started.done).await;
        assert!(matches!(served, Ok(Ok(Ok(())))), "server stops after Shutdown");
    }

    #[tokio::test]
    async fn automtls_over_a_unix_socket_accepts_only_terraforms_certificate() {
        let (pem, cert, key) = client_identity();
        let env = HandshakeEnv { client_cert: Some(pem), protocol_versions: Some("5,6".into()), ..Default::default() };
        let started = start(env).await;
        let parts: Vec<&str> = started.line.split('|').collect();
        assert_eq!(&parts[..3], ["1", "6", "unix"]);
        assert_eq!(parts[4], "grpc");
        assert!(!parts[5].is_empty() && !parts[5].ends_with('='), "base64 without padding");

        let (_, other_cert, other_key) = client_identity();
        let intruder = channel(&started.line, Some((other_cert, other_key))).await;
        if let Ok(ch) = intruder {
            let mut client = pb::provider_client::ProviderClient::new(ch);
            assert!(client.get_provider_schema(pb::get_provider_schema::Request {}).await.is_err());
        }
        let ch = channel(&started.line, Some((cert, key))).await.expect("connect");
        let socket = parts[3].to_string();
        schema_and_shutdown(ch, started).await;
        assert!(!std::path::Path::new(&socket).exists(), "socket removed on exit");
    }

    #[tokio::test]
    async fn plaintext_when_tls_is_disabled_and_tcp_as_fallback() {
        let env = HandshakeEnv { force_tcp: true, ..Default::default() };
        let started = start(env).await;
        assert!(started.line.starts_with("1|6|tcp|127.0.0.1:"), "{}", started.line);
        assert!(started.line.ends_with("|grpc|"), "no certificate without PLUGIN_CLIENT_CERT");
        let ch = channel(&started.line, None).await.expect("connect");
        schema_and_shutdown(ch, started).await;
    }

    #[tokio::test]
    async fn an_unsupported_protocol_version_is_refused() {
        let env = HandshakeEnv { protocol_versions: Some("4,5".into()), ..Default::default() };
        let r = serve(Empty, env, &mut Vec::new(), std::future::pending()).await;
        assert!(matches!(r, Err(ServeError::Protocol(_))));
    }
}
