//! A local Lambda: unpacks the zip that was deployed, starts its `bootstrap` under our own
//! implementation of the Lambda Runtime API, and invokes it with real event shapes. moto
//! stores functions but cannot run them (it wants Docker), so this is how the tests run the
//! exact artifact a user deploys.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use sha2::Digest;
use tokio::sync::{mpsc, oneshot};

/// The most output lines a runner keeps (the oldest go first), so a long bench stays small.
const MAX_OUTPUT_LINES: usize = 10_000;
/// How long one invocation may take before the runner gives up.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response a function may give: Lambda's synchronous payload limit (axum's
/// default body limit, 2 MB, would refuse responses Lambda accepts).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// How an invocation ended.
#[derive(Debug)]
enum Outcome {
    Response(Bytes),
    Error(Bytes),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
    function_arn: String,
    /// What the functions wrote to stdout and stderr, line by line (CloudWatch's log stream).
    output: Mutex<std::collections::VecDeque<String>>,
}

/// A function running locally, in one or more execution environments (`bootstrap` processes
/// taking invocations from one queue, as Lambda scales out).
pub struct LambdaRunner {
    children: Mutex<Vec<tokio::process::Child>>,
    invocations: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
    started: Instant,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    counter: std::sync::atomic::AtomicU64,
}

/// What starts a function: its zip, environment and identity.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// The deployment zip.
    pub zip: PathBuf,
    /// The function's environment variables.
    pub environment: BTreeMap<String, String>,
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Memory in MB.
    pub memory_mb: i64,
    /// The AWS endpoint the function should call (the emulator).
    pub endpoint: String,
    /// Lambda's advanced logging controls, which reach the function as its environment.
    pub logging: LogControls,
}

/// The logging controls Lambda passes a function: `AWS_LAMBDA_LOG_FORMAT` always, and
/// `AWS_LAMBDA_LOG_LEVEL` (the application log level) when the format is JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogControls {
    /// `JSON`, or text when unset.
    pub json: bool,
    /// The application log level (`DEBUG`, `WARN`, ...); JSON logs only.
    pub level: Option<String>,
}

impl LogControls {
    /// The controls of a function's `LoggingConfig`, as Lambda applies them.
    pub fn of(config: Option<&aws_sdk_lambda::types::LoggingConfig>) -> Self {
        let json = config.and_then(|c| c.log_format()).is_some_and(|f| f.as_str() == "JSON");
        let level = config.and_then(|c| c.application_log_level()).map(|l| l.as_str().to_string());
        Self { json, level: level.filter(|_| json) }
    }

    /// The environment variables Lambda sets for them.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let format = if self.json { "JSON" } else { "Text" };
        let level = self.level.iter().map(|l| ("AWS_LAMBDA_LOG_LEVEL", l.clone()));
        std::iter::once(("AWS_LAMBDA_LOG_FORMAT", format.to_string())).chain(level).collect()
    }
}

/// Base64 SHA-256 of a file, as Lambda's `CodeSha256`.
pub fn code_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

/// The spec of deployed function `name`: its configuration from Lambda, and `zip`, which must
/// be the very code Lambda holds (same `CodeSha256`).
pub async fn deployed(lambda: &aws_sdk_lambda::Client, name: &str, zip: &Path, endpoint: &str) -> Result<FunctionSpec> {
    let out = lambda.get_function().function_name(name).send().await?;
    let c = out.configuration.context("no configuration")?;
    let deployed = c.code_sha256.clone().unwrap_or_default();
    let local = code_sha256(zip)?;
    if deployed != local {
        bail!("{} is not the deployed code of {name}: CodeSha256 {deployed} != {local}", zip.display());
    }
    Ok(FunctionSpec {
        zip: zip.to_path_buf(),
        environment: c.environment.and_then(|e| e.variables).unwrap_or_default().into_iter().collect(),
        name: name.to_string(),
        arn: c.function_arn.unwrap_or_default(),
        memory_mb: i64::from(c.memory_size.unwrap_or(128)),
        endpoint: endpoint.to_string(),
        logging: LogControls::of(c.logging_config.as_ref()),
    })
}

impl LambdaRunner {
    /// Unpacks the zip and starts `bootstrap` against a fresh Runtime API: one execution
    /// environment, so invocations run one at a time.
    pub async fn start(spec: &FunctionSpec) -> Result<Self> {
        Self::start_many(spec, 1).await
    }

    /// As [`LambdaRunner::start`], with `environments` execution environments, so that many
    /// invocations run at once (a long poll does not hold up the others).
    pub async fn start_many(spec: &FunctionSpec, environments: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("adf-lambda-").tempdir()?;
        unzip(&spec.zip, dir.path())?;
        let bootstrap = dir.path().join("bootstrap");
        if !bootstrap.is_file() {
            bail!("{} has no bootstrap: the runner runs provided.al2023 packages", spec.zip.display());
        }

        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            init_error: Mutex::new(None),
            function_arn: spec.arn.clone(),
            output: Mutex::new(std::collections::VecDeque::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_RESPONSE_BYTES))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let started = Instant::now();
        let mut children = Vec::new();
        for _ in 0..environments.max(1) {
            let mut child = tokio::process::Command::new(&bootstrap)
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .envs(&spec.environment)
                .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
                .env("LAMBDA_TASK_ROOT", dir.path())
                .env("_HANDLER", "bootstrap")
                .env("AWS_REGION", crate::REGION)
                .env("AWS_DEFAULT_REGION", crate::REGION)
                .env("AWS_ENDPOINT_URL", &spec.endpoint)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .envs(spec.logging.environment())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", bootstrap.display()))?;
            if let Some(out) = child.stdout.take() {
                tokio::spawn(keep_lines(out, Arc::clone(&shared)));
            }
            if let Some(err) = child.stderr.take() {
                tokio::spawn(keep_lines(err, Arc::clone(&shared)));
            }
            children.push(child);
        }
        Ok(Self {
            children: Mutex::new(children),
            invocations: tx,
            shared,
            started,
            server,
            _dir: dir,
            counter: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Invokes the function with `event`; its JSON answer, or an error with its error report.
    pub async fn invoke(&self, event: &serde_json::Value) -> Result<serde_json::Value> {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (reply, answer) = oneshot::channel();
        self.invocations
            .send(Invocation { id, event: serde_json::to_vec(event)?, reply })
            .await
            .context("the runner stopped")?;
        let outcome = tokio::time::timeout(INVOKE_TIMEOUT, answer).await.context("the invocation timed out")?;
        match outcome {
            Ok(Outcome::Response(body)) => Ok(serde_json::from_slice(&body).context("the response is not JSON")?),
            Ok(Outcome::Error(body)) => bail!("the function failed: {}", String::from_utf8_lossy(&body)),
            Err(_) => {
                let init = self.shared.init_error.lock().map(|e| e.clone()).unwrap_or_default();
                bail!("the function exited without answering{}", init.map(|e| format!(": {e}")).unwrap_or_default())
            }
        }
    }

    /// Invocations `bootstrap` has taken and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.shared.pending.lock().map_or(0, |p| p.len())
    }

    /// Kills every `bootstrap` with SIGKILL, as when an execution environment dies mid-invocation:
    /// every invocation not answered yet fails at once with "exited without answering".
    /// Returns how many it cut off in flight.
    pub fn kill(&self) -> Result<usize> {
        for child in self.children.lock().map_err(|_| anyhow::anyhow!("the child lock is poisoned"))?.iter_mut() {
            child.start_kill()?;
        }
        let cut = self.shared.pending.lock().map(|mut p| p.drain().count()).unwrap_or(0);
        // Invocations not taken yet (a `/next` waiting holds the lock: then there are none).
        if let Ok(mut queued) = self.shared.queue.try_lock() {
            while queued.try_recv().is_ok() {}
        }
        Ok(cut)
    }

    /// The first line the functions wrote (stdout or stderr) that `matches`, waiting up to
    /// `within` for it.
    pub async fn output_line(&self, matches: impl Fn(&str) -> bool, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.shared.output.lock().ok().and_then(|o| o.iter().find(|l| matches(l)).cloned());
            if let Some(line) = found {
                return Ok(line);
            }
            if Instant::now() >= deadline {
                let seen = self.shared.output.lock().map(|o| o.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
                bail!("no matching output line within {within:?}; the functions wrote: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every line the functions wrote so far (the newest [`MAX_OUTPUT_LINES`]).
    pub fn output(&self) -> Vec<String> {
        self.shared.output.lock().map(|o| o.iter().cloned().collect()).unwrap_or_default()
    }

    /// Time from starting `bootstrap` to its first `/next` call, once it has made one.
    pub fn init_duration(&self) -> Option<Duration> {
        self.shared.first_next.lock().ok().and_then(|t| t.map(|t| t.duration_since(self.started)))
    }
}

impl Drop for LambdaRunner {
    fn drop(&mut self) {
        if let Ok(mut children) = self.children.lock() {
            for child in children.iter_mut() {
                let _ = child.start_kill();
            }
        }
        self.server.abort();
    }
}

/// Keeps each line `from` writes, and passes it on to the test's stderr, as CloudWatch keeps a
/// function's output.
async fn keep_lines(from: impl tokio::io::AsyncRead + Unpin, shared: Arc<Shared>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{line}");
        if let Ok(mut output) = shared.output.lock() {
            if output.len() == MAX_OUTPUT_LINES {
                output.pop_front();
            }
            output.push_back(line);
        }
    }
}

fn unzip(zip: &Path, to: &Path) -> Result<()> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip)?)?;
    for i in 0..archive.len() {
        let mut f = archive.by_index(i)?;
        let Some(rel) = f.enclosed_name() else { bail!("unsafe path in {}", zip.display()) };
        let path = to.join(rel);
        if f.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data)?;
        std::fs::write(&path, data)?;
        if let Some(mode) = f.unix_mode() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    if let Ok(mut first) = s.first_next.lock() {
        first.get_or_insert_with(Instant::now);
    }
    let Some(inv) = s.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    if let Ok(mut pending) = s.pending.lock() {
        pending.insert(inv.id.clone(), inv.reply);
    }
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d + INVOKE_TIMEOUT)
        .unwrap_or_default()
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", inv.id);
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put("lambda-runtime-invoked-function-arn", s.function_arn.clone());
    put("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into());
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, inv.event).into_response()
}

fn settle(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let reply = s.pending.lock().ok().and_then(|mut p| p.remove(id));
    match reply {
        Some(r) => {
            let _ = r.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn respond(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    settle(&s, &id, Outcome::Response(body))
}

async fn fail(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    settle(&s, &id, Outcome::Error(body))
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut e) = s.init_error.lock() {
        *e = Some(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{ApplicationLogLevel, LogFormat, LoggingConfig};

    #[test]
    fn lambda_passes_the_level_only_with_json_logs() {
        let json =
            LoggingConfig::builder().log_format(LogFormat::Json).application_log_level(ApplicationLogLevel::Warn);
        let controls = LogControls::of(Some(&json.build()));
        assert_eq!(
            controls.environment(),
            [("AWS_LAMBDA_LOG_FORMAT", "JSON".into()), ("AWS_LAMBDA_LOG_LEVEL", "WARN".into())]
        );
        let text =
            LoggingConfig::builder().log_format(LogFormat::Text).application_log_level(ApplicationLogLevel::Warn);
        assert_eq!(LogControls::of(Some(&text.build())).environment(), [("AWS_LAMBDA_LOG_FORMAT", "Text".into())]);
        assert_eq!(LogControls::of(None), LogControls::default());
    }
}
