//! A real PostgreSQL server for tests, from Debian's `postgresql` package: a new cluster in a
//! temporary directory, on a free port on 127.0.0.1, with a password-authenticated
//! (SCRAM-SHA-256) superuser and TLS under a CA made for it. Dropping it stops the server and
//! removes the directory; so does the test process exiting without dropping it (a `static`),
//! because a supervising shell stops the server when its standard input, a pipe from this
//! process, closes.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system
//! user and `initdb` and the server run as that user.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The superuser the cluster is made with.
const USER: &str = "adf";
/// The database initdb makes.
const DATABASE: &str = "postgres";

/// Starts the server (`$@`), prints its pid, and waits for it. A watcher stops it (fast
/// shutdown) when standard input closes and marks the directory for removal; the directory
/// is kept when the server exits by itself, so its log can be read.
const SUPERVISOR: &str = r#"
dir=$1; log=$2; shift 2
"$@" >>"$log" 2>&1 &
pg=$!
echo "$pg"
exec 3<&0
{ read -r _ <&3; touch "$dir/.stop"; kill -INT "$pg" 2>/dev/null; } &
watcher=$!
wait "$pg"
status=$?
if [ -e "$dir/.stop" ]; then rm -rf "$dir"; else kill "$watcher" 2>/dev/null; fi
exit $status
"#;

/// A running PostgreSQL server of its own.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    supervisor: Child,
    stop: Option<ChildStdin>,
    pid: String,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer").field("dir", &self.dir.path()).field("port", &self.port).finish()
    }
}

impl PostgresServer {
    /// A new cluster, started and accepting connections; an error (with the server's log)
    /// when it cannot start.
    pub fn start() -> Result<Self> {
        let bin = bin_dir().context(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run `cargo xtask test`, \
             which installs it, or `apt-get install postgresql`",
        )?;
        let owner = if is_root() { Some(system_user("postgres")?) } else { None };
        let dir = tempfile::Builder::new().prefix("adf-pg-").tempdir().context("creating the cluster's directory")?;
        let password = random_hex(16)?;
        let own = |path: &Path, mode: u32| -> Result<()> {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("giving {} to the postgres user", path.display()))?;
            }
            Ok(())
        };
        own(dir.path(), 0o700)?;
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password)?;
        own(&pwfile, 0o600)?;
        let (ca, cert, key) = tls_files()?;
        std::fs::write(dir.path().join("ca.crt"), ca)?;
        std::fs::write(dir.path().join("server.crt"), cert)?;
        own(&dir.path().join("server.crt"), 0o644)?;
        std::fs::write(dir.path().join("server.key"), key)?;
        own(&dir.path().join("server.key"), 0o600)?;

        let data = dir.path().join("data");
        let mut initdb = as_owner(Command::new(bin.join("initdb")), owner, dir.path());
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_file(&pwfile)?;

        // Another process may take the free port before the server binds it: try another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::spawn(&bin, owner, &dir, &data) {
                Ok((supervisor, stop, pid, port)) => {
                    return Ok(Self { dir, port, password, supervisor, stop: Some(stop), pid });
                }
                Err(e) if attempt < 3 && format!("{e:#}").contains("could not bind") => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the server on a free port under the supervisor and waits until it accepts
    /// connections: the supervisor, its stdin, the server's pid and the port.
    fn spawn(
        bin: &Path,
        owner: Option<(u32, u32)>,
        dir: &tempfile::TempDir,
        data: &Path,
    ) -> Result<(Child, ChildStdin, String, u16)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("postgres.log");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut supervisor = as_owner(Command::new("sh"), owner, dir.path());
        supervisor
            .args(["-c", SUPERVISOR, "sh"])
            .arg(dir.path())
            .arg(&log)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={}", dir.path().display())])
            .args(["-c", "ssl=on", "-c", &format!("ssl_cert_file={}", path("server.crt"))])
            .args(["-c", &format!("ssl_key_file={}", path("server.key"))])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = supervisor.spawn().context("starting postgres under sh")?;
        let stop = child.stdin.take().context("the supervisor's stdin")?;
        let mut pid = String::new();
        BufReader::new(child.stdout.take().context("the supervisor's stdout")?).read_line(&mut pid)?;
        let pid = pid.trim().to_string();
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("postgres exited at start ({status}); its log:\n{}", log_text());
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER, "-d", DATABASE, "-t", "2"])
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok((child, stop, pid, port));
            }
            if started.elapsed() > READY_TIMEOUT {
                let log = log_text();
                drop(stop);
                let _ = child.wait();
                bail!("postgres did not accept connections on port {port} within {READY_TIMEOUT:?}; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser.
    pub fn user(&self) -> &str {
        USER
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The database to use (`postgres`).
    pub fn database(&self) -> &str {
        DATABASE
    }

    /// `postgres://user:password@127.0.0.1:port/postgres?sslmode=disable`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}:{}@{}:{}/{DATABASE}?sslmode=disable", self.password, self.host(), self.port)
    }

    /// The PEM file of the CA that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`), to verify TLS connections with.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PostgresServer {
    /// Closes the supervisor's stdin, which stops the server and removes the directory; kills
    /// the server if it has not stopped within [`STOP_TIMEOUT`].
    fn drop(&mut self) {
        drop(self.stop.take());
        let started = Instant::now();
        while matches!(self.supervisor.try_wait(), Ok(None)) {
            if started.elapsed() > STOP_TIMEOUT {
                let _ = Command::new("kill").args(["-KILL", &self.pid]).status();
                let _ = self.supervisor.kill();
                let _ = self.supervisor.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Installs Debian's `postgresql` when no server binaries are found and we are root; else an
/// error saying what to install.
pub fn ensure_installed() -> Result<()> {
    if bin_dir().is_some() {
        return Ok(());
    }
    crate::tools::apt_install(&["postgresql"], "to run the SQL tests (no /usr/lib/postgresql/*/bin/postgres)")?;
    bin_dir().map(drop).context("apt-get installed postgresql, yet there is no /usr/lib/postgresql/*/bin/postgres")
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, `postgres` and `pg_isready`.
fn bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: Vec<u32> =
                e.file_name().to_str()?.split('.').map(str::parse).collect::<std::result::Result<_, _>>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "postgres", "pg_isready"].iter().all(|b| bin.join(b).is_file()).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// `command` to run in `dir`, as `owner` when given.
fn as_owner(mut command: Command, owner: Option<(u32, u32)>, dir: &Path) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command.current_dir(dir).env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST");
    command
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// The uid and gid of the system user `name`.
fn system_user(name: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            let mut ids = fields.skip(1).map(str::parse::<u32>);
            Some((ids.next()?.ok()?, ids.next()?.ok()?))
        })
        .with_context(|| format!("no {name:?} user: Debian's postgresql package makes it; install that"))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new CA's certificate, and a server certificate it signed for `localhost` and
/// `127.0.0.1` with its key, all PEM.
fn tls_files() -> Result<(String, String, String)> {
    let certs = crate::test_ca::issue("terraform-provider-adf test PostgreSQL CA")?;
    Ok((certs.ca_pem, certs.cert_pem, certs.key_pem))
}
