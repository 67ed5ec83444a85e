//! The local AWS emulator: moto server 5.2.5 in the project's own virtualenv, started on a
//! free loopback port and stopped on drop; or an external endpoint (LocalStack, real AWS
//! through a proxy) named by `ADF_TEST_ENDPOINT`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The moto version the constraints file pins.
pub const MOTO_VERSION: &str = "5.2.5";
/// How long moto may take to answer `/moto-api/` after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The virtualenv moto lives in (`ADF_MOTO_VENV` overrides `.cache/moto-venv`).
fn moto_server(root: &Path) -> PathBuf {
    crate::tools::venv_dir(root, "moto-venv", "ADF_MOTO_VENV").join("bin/moto_server")
}

/// Our launcher: moto's server with DynamoDB requests serialized (see the script).
fn launcher(root: &Path) -> (PathBuf, PathBuf) {
    let python = crate::tools::venv_dir(root, "moto-venv", "ADF_MOTO_VENV").join("bin/python");
    (python, root.join("tests/acceptance/tools/moto_server.py"))
}

/// Installs moto server (pinned, with its dependencies constrained) unless it is there.
pub fn install(root: &Path) -> Result<PathBuf> {
    let venv = crate::tools::venv_dir(root, "moto-venv", "ADF_MOTO_VENV");
    let requirement = format!("moto[server]=={MOTO_VERSION}");
    crate::tools::venv_install(root, &venv, &[&requirement], Some("moto-constraints.txt"))?;
    Ok(moto_server(root))
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Emulator {
    /// `ADF_TEST_ENDPOINT` when set; otherwise a new moto server on a free port.
    pub fn start() -> Result<Self> {
        if let Ok(endpoint) = std::env::var("ADF_TEST_ENDPOINT")
            && !endpoint.is_empty()
        {
            return Ok(Self { endpoint, child: None, log: None });
        }
        let root = crate::repo_root();
        let server = moto_server(&root);
        if !server.exists() {
            bail!(
                "moto server is not installed at {}: run `cargo xtask emulator install` \
                 (`cargo xtask test` does it), or set ADF_TEST_ENDPOINT",
                server.display()
            );
        }
        let mut last = None;
        for _ in 0..3 {
            match Self::spawn(&launcher(&root)) {
                Ok(e) => return Ok(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    fn spawn((python, script): &(PathBuf, PathBuf)) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::env::temp_dir().join(format!("adf-moto-{port}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(python)
            .arg(script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let mut emulator = Self { endpoint: format!("http://127.0.0.1:{port}"), child: Some(child), log: Some(log) };
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if ready(port) {
                return Ok(emulator);
            }
            if let Some(Some(status)) = emulator.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                bail!("moto exited at start ({status}); log: {}", emulator.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("moto did not answer on port {port} within {READY_TIMEOUT:?}; log: {}", emulator.log_text())
    }

    /// The endpoint URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What the emulator printed so far (empty for an external endpoint).
    pub fn log_text(&self) -> String {
        self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// AWS requests the emulator served so far, counted from its access log (moto only).
    pub fn request_count(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| {
                l.contains("\"POST ") || l.contains("\"GET ") || l.contains("\"PUT ") || l.contains("\"DELETE ")
            })
            .count()
    }
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(log) = self.log.take() {
            let _ = std::fs::remove_file(log);
        }
    }
}
