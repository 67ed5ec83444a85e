//! A real Redis server for tests: Debian's `redis-server` on a free loopback port, with no
//! persistence and a password (so AUTH is exercised), optionally also speaking TLS with a
//! certificate from a test CA; stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The binary.
const BINARY: &str = "redis-server";
/// What to install when it is missing.
const INSTALL_HINT: &str =
    "install redis-server (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`)";
/// How long the server may take to answer PING after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

fn installed() -> bool {
    Command::new(BINARY).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Installs `redis-server` from Debian when it is missing and we are root; else fails saying
/// what to install.
pub fn ensure_installed() -> Result<()> {
    if installed() {
        return Ok(());
    }
    crate::tools::apt_install(&["redis-server"], "to run the cache tests")?;
    if !installed() {
        bail!("apt-get installed redis-server but `{BINARY} --version` still fails");
    }
    Ok(())
}

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    tls_port: Option<u16>,
    password: String,
    ca_pem: Option<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A new server on a free loopback port, requiring [`Self::password`].
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// [`Self::start`], also serving TLS on a second port ([`Self::tls_url`]) with a
    /// certificate for `127.0.0.1` and `localhost` that a new test CA ([`Self::ca_pem`]) signed.
    pub fn start_tls() -> Result<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Result<Self> {
        if !installed() {
            bail!(
                "{BINARY} is not installed: {INSTALL_HINT} (`cargo xtask test` does it as root, through \
                 adf_acceptance::redis::ensure_installed)"
            );
        }
        crate::tools::start_retrying(BINARY, || Self::spawn(tls))
    }

    fn spawn(tls: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let password = crate::unique_name("test-token");
        let port = free_port()?;
        let log = dir.path().join("redis.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(BINARY);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .arg("--dir")
            .arg(dir.path())
            .args(["--requirepass", &password]);
        let (tls_port, ca_pem) = if tls {
            let tls_port = free_port()?;
            let ca_pem = write_certificates(dir.path())?;
            cmd.args(["--tls-port", &tls_port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(dir.path().join("server.crt"))
                .arg("--tls-key-file")
                .arg(dir.path().join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.path().join("ca.crt"));
            (Some(tls_port), Some(ca_pem))
        } else {
            (None, None)
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {BINARY}"))?;
        let mut server = Self { child, port, tls_port, password, ca_pem, dir };
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if answers_ping(port, &server.password) {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{BINARY} exited at start ({status}); log: {}", server.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{BINARY} did not answer PING on port {port} within {READY_TIMEOUT:?}; log: {}", server.log_text())
    }

    /// `redis://127.0.0.1:PORT` (without the password).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:PORT` of the TLS port, for a server from [`Self::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("rediss://127.0.0.1:{p}"))
    }

    /// The test CA's certificate (PEM) that the TLS port's certificate chains to.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The password (AUTH token) the server requires.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether the server on `port` authenticates with `password` and answers PING.
fn answers_ping(port: u16, password: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n", password.len());
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        answer.extend_from_slice(&buf[..n]);
        if answer.ends_with(b"+PONG\r\n") {
            return answer.starts_with(b"+OK\r\n");
        }
    }
    false
}

/// Writes a new test CA (`ca.crt`) and a server certificate it signed (`server.crt`,
/// `server.key`) into `dir`; returns the CA's PEM.
fn write_certificates(dir: &Path) -> Result<String> {
    let certs = crate::test_ca::issue("terraform-provider-adf redis test CA")?;
    std::fs::write(dir.join("ca.crt"), &certs.ca_pem)?;
    std::fs::write(dir.join("server.crt"), &certs.cert_pem)?;
    std::fs::write(dir.join("server.key"), &certs.key_pem)?;
    Ok(certs.ca_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_wants_its_password_and_stops_on_drop() -> Result<()> {
        ensure_installed()?;
        let server = RedisServer::start()?;
        let port = server.port;
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
        assert!(answers_ping(port, server.password()));
        assert!(!answers_ping(port, "not-the-password"));
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open after drop");
        Ok(())
    }
}
