//! A real Apache Kafka broker for tests: a single KRaft node (broker and controller in one JVM)
//! on free loopback ports, run with the machine's `java` from Kafka's own jars, which Maven
//! copies from Maven Central into a cache outside the clone (`tests/acceptance/tools/kafka`);
//! its data lives in a temporary directory, and it is killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;

/// The Kafka release the tests run: `org.apache.kafka:kafka_2.13` on Maven Central. Keep
/// `<kafka.version>` in `tests/acceptance/tools/kafka/pom.xml` the same.
pub const KAFKA_VERSION: &str = "4.1.1";
/// The pom whose dependencies are the broker's classpath, relative to the repository root.
const POM: &str = "tests/acceptance/tools/kafka/pom.xml";
/// How long the broker may take from starting the JVM to serving as an unfenced broker.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// What `kafka.server.KafkaRaftServer` logs once the broker is unfenced and serving.
const READY_LINE: &str = "Kafka Server started";
/// The JVM flags: a small heap, the serial collector and the client compiler only, which start
/// faster and take less memory than the defaults; a broker that runs out of memory exits.
const JVM_FLAGS: &[&str] = &[
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
];
/// How many lines of the broker's log an error quotes.
const LOG_TAIL_LINES: usize = 60;

/// The directory the jars are cached in: `$ADF_KAFKA_HOME` when set, else
/// `$HOME/.cache/terraform-provider-adf/kafka-<version>`.
fn cache_dir() -> Result<PathBuf> {
    match std::env::var_os("ADF_KAFKA_HOME") {
        Some(d) => Ok(PathBuf::from(d)),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set (or set ADF_KAFKA_HOME)")?;
            Ok(PathBuf::from(home).join(".cache/terraform-provider-adf").join(format!("kafka-{KAFKA_VERSION}")))
        }
    }
}

fn works(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// Installs Maven (and with it a JDK) from Debian when `java` or `mvn` is missing and we are
/// root; else fails saying what to install.
fn ensure_java_and_maven() -> Result<()> {
    if works("java", "-version") && works("mvn", "-v") {
        return Ok(());
    }
    crate::tools::apt_install(&["maven"], "to run the Kafka tests (Maven brings a JDK)")?;
    if !(works("java", "-version") && works("mvn", "-v")) {
        bail!("apt-get installed maven but `java -version` or `mvn -v` still fails");
    }
    Ok(())
}

/// Makes sure the jars of Kafka [`KAFKA_VERSION`] (and what the broker needs at run time) are in
/// the cache (`$ADF_KAFKA_HOME`, else `$HOME/.cache/terraform-provider-adf/kafka-<version>`),
/// copying them from Maven Central with `mvn dependency:copy-dependencies` on the pinned pom
/// unless a finished earlier copy of the same pom is there. Returns the directory holding them.
pub fn ensure_installed(root: &Path) -> Result<PathBuf> {
    // Tests of one binary run in parallel: one of them downloads, the others wait for it.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _guard = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);

    let pom = root.join(POM);
    let wanted = std::fs::read_to_string(&pom).with_context(|| format!("reading {}", pom.display()))?;
    if !wanted.contains(&format!("<kafka.version>{KAFKA_VERSION}</kafka.version>")) {
        bail!(
            "{} does not pin <kafka.version>{KAFKA_VERSION}</kafka.version> (KAFKA_VERSION in kafka.rs)",
            pom.display()
        );
    }
    let cache = cache_dir()?;
    let libs = cache.join("libs");
    let marker = cache.join(".adf-installed");
    let installed =
        |libs: &Path| std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) && libs.is_dir();
    if installed(&libs) {
        return Ok(libs);
    }
    ensure_java_and_maven()?;
    println!("==> copying Apache Kafka {KAFKA_VERSION}'s jars from Maven Central into {}", libs.display());
    let started = Instant::now();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    // Into a directory of our own first, so that another process doing the same, or a
    // download cut short, never leaves a mixed or half-filled `libs` behind a marker.
    let partial = cache.join(format!("libs.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let output = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", partial.display()))
        .stdin(Stdio::null())
        .output()
        .context("starting mvn")?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        bail!(
            "mvn dependency:copy-dependencies on {} failed ({}):\n{}",
            pom.display(),
            output.status,
            text_of(&output)
        );
    }
    let jar = format!("kafka_2.13-{KAFKA_VERSION}.jar");
    if !partial.join(&jar).is_file() {
        bail!(
            "mvn dependency:copy-dependencies on {} succeeded but left no {jar} in {}; its output:\n{}",
            pom.display(),
            partial.display(),
            text_of(&output)
        );
    }
    if installed(&libs) {
        // Another process finished first.
        let _ = std::fs::remove_dir_all(&partial);
        return Ok(libs);
    }
    let _ = std::fs::remove_file(&marker);
    if libs.exists() {
        std::fs::remove_dir_all(&libs).with_context(|| format!("removing the old {}", libs.display()))?;
    }
    std::fs::rename(&partial, &libs).with_context(|| format!("moving {} to {}", partial.display(), libs.display()))?;
    std::fs::write(&marker, &wanted).with_context(|| format!("writing {}", marker.display()))?;
    println!("    copied in {:.0?}", started.elapsed());
    Ok(libs)
}

/// A running single-node Kafka broker (KRaft, `process.roles=broker,controller`, node 1) with a
/// PLAINTEXT listener on a free loopback port, topics created only on request
/// (`auto.create.topics.enable=false`) and replication factor 1 for its internal topics.
#[derive(Debug)]
pub struct KafkaBroker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// Installs the jars when needed ([`ensure_installed`]), formats a new storage directory
    /// and starts a broker, returning once it is unfenced and answers on [`Self::bootstrap`].
    pub fn start(root: &Path) -> Result<Self> {
        let libs = ensure_installed(root)?;
        crate::tools::start_retrying("the Kafka broker", || Self::spawn(&libs))
    }

    fn spawn(libs: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let controller_port = loop {
            let p = free_port()?;
            if p != port {
                break p;
            }
        };
        let data = dir.path().join("data");
        let properties = dir.path().join("server.properties");
        std::fs::write(&properties, server_properties(port, controller_port, &data))?;
        let log4j = dir.path().join("log4j2.properties");
        std::fs::write(&log4j, LOG4J2_PROPERTIES)?;
        let classpath = libs.join("*");
        let java = |class: &str| {
            let mut cmd = Command::new("java");
            cmd.args(JVM_FLAGS)
                .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
                .arg("-cp")
                .arg(&classpath)
                .arg(class)
                .stdin(Stdio::null());
            cmd
        };

        let format = java("kafka.tools.StorageTool")
            .args(["format", "--standalone", "-t", &cluster_id(), "-c"])
            .arg(&properties)
            .output()
            .context("starting java (kafka.tools.StorageTool format)")?;
        if !format.status.success() {
            bail!("kafka.tools.StorageTool format failed ({}):\n{}", format.status, text_of(&format));
        }

        let log = dir.path().join("kafka.log");
        let out = std::fs::File::create(&log)?;
        let child = java("kafka.Kafka")
            .arg(&properties)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting java (kafka.Kafka)")?;
        let mut broker = Self { child, port, dir };
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Some(status) = broker.child.try_wait()? {
                bail!("the Kafka broker exited at start ({status}); end of its log:\n{}", broker.log_tail());
            }
            if answers_api_versions(port) && broker.log_text().contains(READY_LINE) {
                return Ok(broker);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "the Kafka broker was not ready on port {port} within {READY_TIMEOUT:?}; end of its log:\n{}",
            broker.log_tail()
        )
    }

    /// `127.0.0.1:PORT`, the PLAINTEXT listener, for a client's `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the broker logged so far (its stdout and stderr, log4j at INFO).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kafka.log")).unwrap_or_default()
    }

    /// The last lines of [`Self::log_text`], for errors.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Kills the broker and waits for it to exit; its ports are closed after this.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The broker's configuration: one KRaft node that is its own controller quorum.
fn server_properties(port: u16, controller_port: u16, data: &Path) -> String {
    format!(
        "process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
log.dirs={data}
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
",
        data = data.display()
    )
}

/// Log4j 2 to stdout at INFO, without the full configuration dumps.
const LOG4J2_PROPERTIES: &str = "status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
";

/// A new cluster id as Kafka writes them: 16 random bytes in unpadded URL-safe base64, not
/// starting with `-` (which the storage tool would take for an option).
fn cluster_id() -> String {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes);
    // Below 0x80: the first character is a letter; nonzero: never an id Kafka reserves (0, 1).
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A finished command's stdout then stderr, without the terminal colour codes Maven 3.8 writes
/// even in batch mode.
fn text_of(output: &std::process::Output) -> String {
    let raw = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ params letter`: skip to the letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a Kafka broker on `port` answers an ApiVersions (v0) request without error.
fn answers_api_versions(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let client_id = b"adf-acceptance";
    let correlation_id: i32 = 7;
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // api version
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    if s.write_all(&request).is_err() {
        return false;
    }
    // Size, correlation id, error code.
    let mut head = [0u8; 10];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    head[4..8] == correlation_id.to_be_bytes() && head[8..10] == [0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_starts_and_accepts_connections() -> Result<()> {
        let root = crate::repo_root();
        let started = Instant::now();
        let libs = ensure_installed(&root)?;
        println!("ensure_installed: {:.1?}", started.elapsed());
        assert!(libs.join(format!("kafka_2.13-{KAFKA_VERSION}.jar")).is_file());

        let started = Instant::now();
        let mut broker = KafkaBroker::start(&root)?;
        println!("KafkaBroker::start: {:.1?} to readiness", started.elapsed());
        let bootstrap = broker.bootstrap();
        assert_eq!(bootstrap, format!("127.0.0.1:{}", broker.port));
        assert!(TcpStream::connect(&bootstrap).is_ok(), "cannot connect to {bootstrap}");
        assert!(answers_api_versions(broker.port));
        assert!(broker.log_text().contains(READY_LINE));

        broker.stop();
        assert!(TcpStream::connect(&bootstrap).is_err(), "{bootstrap} still open after stop");
        Ok(())
    }
}
