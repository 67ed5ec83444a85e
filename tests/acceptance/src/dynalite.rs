//! A second DynamoDB server for the workflow tests and bench: dynalite (Apache-2.0, DynamoDB's
//! API on LevelDB, in memory here), which applies each write under a lock, so conditional
//! writes are atomic without our moto launcher serializing every DynamoDB request. It has no
//! transactions (`TransactWriteItems` is an unknown operation), so the stream stays on moto.
//! npm installs it from `tests/acceptance/tools/dynalite` into a cache outside the clone; it is
//! run with the machine's Node (20 or later) and killed on drop.
//!
//! AWS's own DynamoDB Local is not used: its licence is not an open-source one.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The variable that puts the workflow tests' DynamoDB on dynalite (`dynalite`; unset: moto).
pub const DYNAMODB_ENV: &str = "ADF_TEST_DYNAMODB";
/// The package directory (with its lock file), relative to the repository root.
const PACKAGE: &str = "tests/acceptance/tools/dynalite";
/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether [`DYNAMODB_ENV`] asks for dynalite.
pub fn wanted() -> bool {
    std::env::var(DYNAMODB_ENV).is_ok_and(|v| v == "dynalite")
}

/// The dynalite release, as `tests/acceptance/tools/dynalite/package.json` pins it.
pub const DYNALITE_VERSION: &str = "4.0.0";

/// The install directory: `$HOME/.cache/terraform-provider-adf/dynalite-<version>`.
fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/terraform-provider-adf").join(format!("dynalite-{DYNALITE_VERSION}")))
}

/// Installs the locked packages (`npm ci`) once; returns dynalite's `cli.js`.
pub fn ensure_installed(root: &Path) -> Result<PathBuf> {
    // Tests of one binary run in parallel: one installs, the others wait for it.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _guard = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let package = root.join(PACKAGE);
    let lock = std::fs::read_to_string(package.join("package-lock.json"))
        .with_context(|| format!("reading {}/package-lock.json", package.display()))?;
    if !lock.contains(&format!("\"node_modules/dynalite\": {{\n      \"version\": \"{DYNALITE_VERSION}\"")) {
        bail!(
            "{PACKAGE}/package-lock.json does not lock dynalite {DYNALITE_VERSION} (DYNALITE_VERSION in dynalite.rs)"
        );
    }
    let dir = cache_dir()?;
    let cli = dir.join("node_modules/dynalite/cli.js");
    // The lock file copied in last marks a complete install of exactly these packages.
    let marker = dir.join("package-lock.json");
    if cli.is_file() && std::fs::read_to_string(&marker).ok().as_deref() == Some(lock.as_str()) {
        return Ok(cli);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if Command::new("npm").arg("--version").output().is_err() {
        crate::tools::apt_install(&["nodejs", "npm"], "to run the workflow tests on dynalite")?;
    }
    println!("==> installing dynalite (npm ci) into {}", dir.display());
    // Into a directory of our own first, so that a cut-short install never looks complete.
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(package.join(file), partial.join(file)).with_context(|| format!("copying {file}"))?;
    }
    // No install scripts: the in-memory store needs no native LevelDB build.
    let output = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&partial)
        .stdin(Stdio::null())
        .output()
        .context("starting npm")?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        bail!(
            "npm ci in {} failed ({}):\n{}",
            package.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&partial, &dir).with_context(|| format!("moving the install to {}", dir.display()))?;
    Ok(cli)
}

/// A running dynalite.
#[derive(Debug)]
pub struct Dynalite {
    child: Child,
    endpoint: String,
    _log: tempfile::NamedTempFile,
}

impl Dynalite {
    /// A new, empty server on a free loopback port (installing it first if needed).
    pub fn start() -> Result<Self> {
        let cli = ensure_installed(&crate::repo_root())?;
        crate::tools::start_retrying("dynalite", || Self::spawn(&cli))
    }

    fn spawn(cli: &Path) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = tempfile::NamedTempFile::new()?;
        // Tables are ACTIVE at once, as moto's are.
        let mut child = Command::new("node")
            .arg(cli)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen()?))
            .spawn()
            .context("starting node (dynalite needs Node 20 or later)")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let err = std::fs::read_to_string(log.path()).unwrap_or_default();
                bail!("dynalite exited ({status}) before serving:\n{err}");
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                bail!("dynalite did not accept connections on port {port} within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Self { child, endpoint: format!("http://127.0.0.1:{port}"), _log: log })
    }

    /// Its URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
