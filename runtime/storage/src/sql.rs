//! SQL on PostgreSQL (RDS, Aurora or any server) through `tokio-postgres`: parameterised
//! queries and transactions over a small pool of connections, TLS through rustls, and RDS IAM
//! auth tokens in place of a password.
//!
//! ```ignore
//! let sql = Sql::new(SqlConfig::from_url("postgres://app@db.example.com/app?iam_auth=true")?, Some(&sdk))?;
//! let rows = sql.query("SELECT id, name FROM users WHERE org = $1", &[&org]).await?;
//! let mut tx = sql.begin().await?;
//! tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", &[&amount, &from]).await?;
//! tx.commit().await?;
//! ```
//!
//! Connections are made on first use, at most [`SqlConfig::pool_size`] at a time, and checked
//! with an empty query before each reuse, so a connection the server dropped (a failover, an
//! idle timeout, `pg_terminate_backend`) is replaced rather than handed out. With IAM auth a
//! token is signed for every new connection (tokens are good for 15 minutes; a connection
//! outlives its token).
//!
//! Errors map by SQLSTATE: a unique, exclusion or foreign-key violation and a serialization
//! failure or deadlock are [`StorageError::PreconditionFailed`]; bad SQL and values the column
//! refuses are [`StorageError::Invalid`]; authentication and privilege failures are
//! [`StorageError::AccessDenied`]; too many connections is [`StorageError::Throttled`]; a row
//! that cannot be read as the type asked is [`StorageError::Decode`]; connection failures are
//! [`StorageError::Backend`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_types::sdk_config::SharedTimeSource;
use deadpool::managed::{Manager, Metrics, Object, Pool, PoolError, RecycleError, RecycleResult, TimeoutType};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Result, StorageError};

pub use tokio_postgres::Row;
pub use tokio_postgres::types::{FromSql, Json, ToSql, Type};

/// The PostgreSQL port.
pub const DEFAULT_PORT: u16 = 5432;
/// Connections per [`Sql`] unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// How long connecting, or waiting for a busy pool, may take unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an RDS IAM auth token is valid (the most RDS accepts).
pub const IAM_TOKEN_EXPIRY: Duration = Duration::from_secs(900);

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone, PartialEq)]
pub struct SqlConfig {
    /// Host name or IP address of the server (the RDS endpoint).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The database.
    pub database: String,
    /// The role to connect as.
    pub user: String,
    /// The password, unless the server trusts the client or `iam_auth` is set.
    pub password: Option<String>,
    /// Sign an RDS IAM auth token for each connection and send it as the password (needs TLS
    /// and the SDK configuration's credentials).
    pub iam_auth: bool,
    /// The region IAM auth tokens are signed for; the SDK configuration's when None.
    pub region: Option<String>,
    /// Require TLS, verifying the server's certificate and name (`sslmode=verify-full`).
    /// Without it the connection is in the clear (`sslmode=disable`).
    pub tls: bool,
    /// PEM file of further trusted roots besides the system's, such as the RDS CA bundle
    /// (`global-bundle.pem`).
    pub tls_ca_file: Option<PathBuf>,
    /// The most connections open at once.
    pub pool_size: usize,
    /// How long connecting (TCP, TLS, authentication), or waiting for a connection while all
    /// are busy, may take.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("iam_auth", &self.iam_auth)
            .field("region", &self.region)
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl SqlConfig {
    /// `user` on `database` at `host`, port 5432, over TLS, without a password.
    pub fn new(host: impl Into<String>, database: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_PORT,
            database: database.into(),
            user: user.into(),
            password: None,
            iam_auth: false,
            region: None,
            tls: true,
            tls_ca_file: None,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// A `postgres://user:password@host:port/database?param=value` URL (`postgresql://` too).
    /// Parameters: `sslmode` (`disable`, or `require` / `verify-ca` / `verify-full`, which all
    /// verify fully; the default), `sslrootcert` (a PEM file), `iam_auth` (`true` / `false`),
    /// `region`, `pool_size`, `connect_timeout` (seconds). The database defaults to the user.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| StorageError::invalid("SQL URL", reason);
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(invalid(format!("the scheme is {:?}, not postgres", parsed.scheme())));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(invalid("it names no host".into())),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| invalid("a percent-encoded part is not UTF-8".into()))
        };
        let user = decode(parsed.username())?;
        if user.is_empty() {
            return Err(invalid("it names no user".into()));
        }
        let database = match decode(parsed.path().trim_start_matches('/'))? {
            d if d.is_empty() => user.clone(),
            d => d,
        };
        let mut config = Self::new(host, database, user);
        config.port = parsed.port().unwrap_or(DEFAULT_PORT);
        config.password = parsed.password().map(decode).transpose()?;
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("sslmode", "disable") => config.tls = false,
                ("sslmode", "require" | "verify-ca" | "verify-full") => config.tls = true,
                ("sslmode", other) => {
                    return Err(invalid(format!("sslmode={other} is not supported: use verify-full or disable")));
                }
                ("sslrootcert", path) => config.tls_ca_file = Some(PathBuf::from(path)),
                ("iam_auth", flag) => {
                    config.iam_auth =
                        flag.parse().map_err(|_| invalid(format!("iam_auth={flag} is not true or false")))?;
                }
                ("region", region) => config.region = Some(region.to_string()),
                ("pool_size", n) => {
                    config.pool_size = n.parse().map_err(|_| invalid(format!("pool_size={n} is not a number")))?;
                }
                ("connect_timeout", s) => {
                    let secs: u64 = s.parse().map_err(|_| invalid(format!("connect_timeout={s} is not seconds")))?;
                    config.connect_timeout = Duration::from_secs(secs);
                }
                (other, _) => return Err(invalid(format!("unknown parameter {other:?}"))),
            }
        }
        Ok(config)
    }

    fn target(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.database)
    }
}

/// A PostgreSQL database reached through a pool of connections. Clones share the pool.
#[derive(Clone)]
pub struct Sql {
    pool: Pool<Connector>,
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql").field("target", &self.pool.manager().target).field("pool", &self.pool.status()).finish()
    }
}

impl Sql {
    /// A pool for `config`; nothing connects until the first query. `sdk` supplies the
    /// credentials, region and clock for IAM auth and is required with it.
    pub fn new(config: SqlConfig, sdk: Option<&aws_types::SdkConfig>) -> Result<Self> {
        if config.pool_size == 0 {
            return Err(StorageError::invalid("pool_size", "at least 1 connection"));
        }
        let target = config.target();
        let secret = if config.iam_auth {
            if !config.tls {
                return Err(StorageError::invalid(
                    "iam_auth",
                    "an IAM auth token is sent as the password, so it needs TLS (RDS refuses it without)",
                ));
            }
            let sdk = sdk.ok_or_else(|| StorageError::Binding("IAM auth needs the AWS SDK configuration".into()))?;
            let credentials = sdk
                .credentials_provider()
                .ok_or_else(|| StorageError::Binding("IAM auth needs AWS credentials; the SDK has none".into()))?;
            let region = config.region.clone().or_else(|| sdk.region().map(|r| r.to_string())).ok_or_else(|| {
                StorageError::Binding("IAM auth needs a region: set `region` or the SDK's (AWS_REGION)".into())
            })?;
            Secret::Iam(IamAuth {
                credentials,
                time: sdk.time_source().unwrap_or_default(),
                region,
                host: config.host.clone(),
                port: config.port,
                user: config.user.clone(),
            })
        } else {
            Secret::Password(config.password.clone())
        };
        let tls = if config.tls { Some(tls_connector(config.tls_ca_file.as_deref())?) } else { None };
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .dbname(&config.database)
            .user(&config.user)
            .application_name("adf-storage")
            .connect_timeout(config.connect_timeout)
            .ssl_mode(if config.tls { SslMode::Require } else { SslMode::Disable });
        let timeout = Some(config.connect_timeout);
        let pool = Pool::builder(Connector { pg, secret, tls, target, timeout: config.connect_timeout })
            .max_size(config.pool_size)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::invalid("SQL pool", e.to_string()))?;
        Ok(Self { pool })
    }

    async fn connection(&self) -> Result<Object<Connector>> {
        let connector = self.pool.manager();
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(TimeoutType::Wait) => StorageError::Throttled(format!(
                "all {} connections to {} stayed busy for {:?}",
                self.pool.status().max_size,
                connector.target,
                connector.timeout
            )),
            PoolError::Timeout(_) => StorageError::Backend(format!(
                "connecting to postgres at {}: no answer within {:?}",
                connector.target, connector.timeout
            )),
            other => StorageError::Backend(format!("postgres pool for {}: {other}", connector.target)),
        })
    }

    /// The rows `sql` returns with `params` bound to `$1`, `$2`, ….
    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.connection().await?.query(sql, params).await?)
    }

    /// The one row `sql` returns: [`StorageError::NotFound`] when none, `Invalid` when more.
    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        exactly_one(self.query(sql, params).await?)
    }

    /// The row `sql` returns, if any: `Invalid` when more than one.
    pub async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        at_most_one(self.query(sql, params).await?)
    }

    /// Runs `sql` with `params`; the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.connection().await?.execute(sql, params).await?)
    }

    /// Runs `sql`, which may hold several statements separated by `;` but no parameters
    /// (schema changes, migrations).
    pub async fn batch_execute(&self, sql: &str) -> Result<()> {
        Ok(self.connection().await?.batch_execute(sql).await?)
    }

    /// Starts a transaction on a connection of its own. It ends with
    /// [`SqlTransaction::commit`] or [`SqlTransaction::rollback`]; dropped before either, it
    /// rolls back.
    pub async fn begin(&self) -> Result<SqlTransaction> {
        let conn = self.connection().await?;
        conn.batch_execute("BEGIN").await?;
        Ok(SqlTransaction { conn: Some(conn), failed: false })
    }
}

/// An open transaction. A statement that fails aborts it (PostgreSQL's rule), after which
/// `commit` rolls back and says so.
pub struct SqlTransaction {
    conn: Option<Object<Connector>>,
    failed: bool,
}

impl std::fmt::Debug for SqlTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTransaction").field("failed", &self.failed).finish()
    }
}

impl SqlTransaction {
    fn client(&self) -> &Client {
        self.conn.as_ref().expect("a transaction holds its connection until it ends")
    }

    /// The result, noting a failure the server saw (which aborts the transaction).
    fn noted<T>(&mut self, result: std::result::Result<T, tokio_postgres::Error>) -> Result<T> {
        result.map_err(|e| {
            self.failed |= e.as_db_error().is_some() || e.is_closed();
            e.into()
        })
    }

    /// [`Sql::query`] inside the transaction.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let result = self.client().query(sql, params).await;
        self.noted(result)
    }

    /// [`Sql::query_one`] inside the transaction.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        exactly_one(self.query(sql, params).await?)
    }

    /// [`Sql::query_opt`] inside the transaction.
    pub async fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        at_most_one(self.query(sql, params).await?)
    }

    /// [`Sql::execute`] inside the transaction.
    pub async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let result = self.client().execute(sql, params).await;
        self.noted(result)
    }

    /// [`Sql::batch_execute`] inside the transaction (`SET TRANSACTION ISOLATION LEVEL …` as
    /// the first statement sets its isolation).
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let result = self.client().batch_execute(sql).await;
        self.noted(result)
    }

    /// Commits. After a failed statement it rolls back instead and returns `Invalid`; a
    /// serialization failure at commit is `PreconditionFailed`.
    pub async fn commit(mut self) -> Result<()> {
        let conn = self.conn.take().expect("a transaction holds its connection until it ends");
        if self.failed {
            conn.batch_execute("ROLLBACK").await?;
            return Err(StorageError::invalid(
                "transaction",
                "a statement in it failed, so it was rolled back instead of committed",
            ));
        }
        Ok(conn.batch_execute("COMMIT").await?)
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> Result<()> {
        let conn = self.conn.take().expect("a transaction holds its connection until it ends");
        Ok(conn.batch_execute("ROLLBACK").await?)
    }
}

impl Drop for SqlTransaction {
    /// Rolls back on a task and then returns the connection to the pool; where that fails, or
    /// there is no runtime to run it on, the connection is closed instead, which rolls back too.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if conn.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(conn));
                    }
                });
            }
            Err(_) => drop(Object::take(conn)),
        }
    }
}

fn at_most_one(rows: Vec<Row>) -> Result<Option<Row>> {
    let count = rows.len();
    let mut rows = rows.into_iter();
    match rows.next() {
        row if count <= 1 => Ok(row),
        _ => Err(StorageError::invalid("query", format!("expected at most one row, got {count}"))),
    }
}

fn exactly_one(rows: Vec<Row>) -> Result<Row> {
    at_most_one(rows)?.ok_or_else(|| StorageError::NotFound("row".into()))
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        postgres_error("postgres", &e)
    }
}

/// The [`StorageError`] for `e`, its text starting with `context`.
fn postgres_error(context: &str, e: &tokio_postgres::Error) -> StorageError {
    let Some(db) = e.as_db_error() else {
        let text = format!("{context}: {}", adf_common::error_chain(e));
        // The driver's error kinds are private; its messages for them are stable and tested.
        let kind = e.to_string();
        return if kind.starts_with("error deserializing column") {
            StorageError::Decode { what: "SQL column", reason: text }
        } else if kind.starts_with("invalid column") {
            StorageError::invalid("SQL column", text)
        } else if kind.starts_with("error serializing parameter")
            || (kind.starts_with("expected ") && kind.contains(" parameters but got "))
        {
            StorageError::invalid("SQL parameters", text)
        } else if kind == "authentication error" {
            StorageError::AccessDenied(text)
        } else {
            StorageError::Backend(text)
        };
    };
    let code = db.code().code();
    let mut text = format!("{context}: {} (SQLSTATE {code})", db.message());
    if let Some(detail) = db.detail() {
        text.push_str("; ");
        text.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        text.push_str("; hint: ");
        text.push_str(hint);
    }
    match code {
        // unique, exclusion, foreign key, restrict violations: the rows there conflict
        "23505" | "23P01" | "23503" | "23001" => StorageError::PreconditionFailed(text),
        // serialization failure, deadlock: retry the transaction
        "40001" | "40P01" => StorageError::PreconditionFailed(format!("{text}; retry the transaction")),
        // insufficient privilege; invalid authorization (wrong password, no such role)
        "42501" => StorageError::AccessDenied(text),
        c if c.starts_with("28") => StorageError::AccessDenied(text),
        // too many connections; the server is starting up or shutting down
        "53300" | "57P03" => StorageError::Throttled(text),
        // syntax errors, unknown tables, columns, functions; unsupported features
        c if c.starts_with("42") || c == "0A000" => StorageError::invalid("SQL", text),
        // data exceptions (bad input text, out of range), not-null and check violations
        c if c.starts_with("22") || c == "23502" || c == "23514" => StorageError::invalid("SQL value", text),
        // a statement after one that failed, inside a transaction
        "25P02" => StorageError::invalid("transaction", text),
        _ => StorageError::Backend(text),
    }
}

/// Signs an RDS IAM auth token for `user` at `host:port` in `region` at time `at`, valid for
/// 15 minutes: `host:port/?Action=connect&DBUser=…&X-Amz-…&X-Amz-Signature=…`, the SigV4
/// presigned URL (service `rds-db`) without its scheme, as AWS documents and its SDKs make it.
pub fn rds_auth_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &Credentials,
    at: SystemTime,
) -> Result<String> {
    let failed = |e: &dyn std::fmt::Display| StorageError::Backend(format!("signing an RDS IAM auth token: {e}"));
    let mut url = url::Url::parse(&format!("https://{host}:{port}/")).map_err(|e| failed(&e))?;
    url.query_pairs_mut().append_pair("Action", "connect").append_pair("DBUser", user);
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(IAM_TOKEN_EXPIRY);
    settings.signature_location = SignatureLocation::QueryParams;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?;
    let request =
        SignableRequest::new("GET", url.as_str(), std::iter::empty(), SignableBody::empty()).map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(request, &params.into()).map_err(|e| failed(&e))?.into_parts();
    for (name, value) in instructions.params() {
        url.query_pairs_mut().append_pair(name, value);
    }
    Ok(url.as_str().trim_start_matches("https://").to_string())
}

/// Signs a fresh token for each connection.
struct IamAuth {
    credentials: SharedCredentialsProvider,
    time: SharedTimeSource,
    region: String,
    host: String,
    port: u16,
    user: String,
}

impl IamAuth {
    async fn token(&self) -> Result<String> {
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            StorageError::Backend(format!("RDS IAM auth: loading AWS credentials: {}", adf_common::error_chain(&e)))
        })?;
        rds_auth_token(&self.host, self.port, &self.user, &self.region, &credentials, self.time.now())
    }
}

/// What a new connection authenticates with.
enum Secret {
    Password(Option<String>),
    Iam(IamAuth),
}

/// Makes and checks the pool's connections.
struct Connector {
    /// Everything but the password.
    pg: tokio_postgres::Config,
    secret: Secret,
    tls: Option<MakeRustlsConnect>,
    /// `user@host:port/database`, for messages.
    target: String,
    timeout: Duration,
}

impl Manager for Connector {
    type Type = Client;
    type Error = StorageError;

    async fn create(&self) -> Result<Client> {
        let mut pg = self.pg.clone();
        match &self.secret {
            Secret::Password(Some(password)) => {
                pg.password(password);
            }
            Secret::Password(None) => {}
            Secret::Iam(iam) => {
                pg.password(iam.token().await?);
            }
        }
        let context = format!("connecting to postgres at {}", self.target);
        let failed = |e: tokio_postgres::Error| postgres_error(&context, &e);
        Ok(match &self.tls {
            Some(tls) => {
                let (client, connection) = pg.connect(tls.clone()).await.map_err(failed)?;
                tokio::spawn(drive(connection, self.target.clone()));
                client
            }
            None => {
                let (client, connection) = pg.connect(NoTls).await.map_err(failed)?;
                tokio::spawn(drive(connection, self.target.clone()));
                client
            }
        })
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<StorageError> {
        if client.is_closed() {
            return Err(RecycleError::message("the connection is closed"));
        }
        client.simple_query("").await.map(drop).map_err(|e| RecycleError::Backend(e.into()))
    }
}

/// Runs a connection's I/O until it closes.
async fn drive(connection: impl Future<Output = std::result::Result<(), tokio_postgres::Error>>, target: String) {
    if let Err(e) = connection.await {
        tracing::debug!(target = %target, error = %adf_common::error_chain(&e), "postgres connection ended");
    }
}

/// rustls trusting the system's roots and those in `ca_file`.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let invalid = |reason: String| StorageError::invalid("tls_ca_file", format!("{}: {reason}", path.display()));
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no certificates in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(StorageError::Binding(
            "TLS to postgres needs trusted roots: the system has none; set tls_ca_file".into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Backend(format!("TLS for postgres: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    use aws_credential_types::provider::future;
    use aws_types::region::Region;
    use aws_types::sdk_config::TimeSource;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn the_token_is_the_one_the_aws_sdk_signs() -> anyhow::Result<()> {
        // The known answer of aws-sdk-rds's own test of its AuthTokenGenerator.
        let credentials = Credentials::new("akid", "secret", None, None, "test");
        let at = UNIX_EPOCH + Duration::from_secs(1_724_709_600);
        let token =
            rds_auth_token("prod-instance.us-east-1.rds.amazonaws.com", 3306, "peccy", "us-east-1", &credentials, at)?;
        assert_eq!(
            token,
            "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=peccy\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=akid%2F20240826%2Fus-east-1%2Frds-db%2Faws4_request\
             &X-Amz-Date=20240826T220000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=dd0cba843009474347af724090233265628ace491ea17ce3eb3da098b983ad89"
        );
        Ok(())
    }

    #[test]
    fn a_token_has_the_documented_shape_and_signs_the_session_token() -> anyhow::Result<()> {
        let host = "db.abc.eu-west-1.rds.amazonaws.com";
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let session = |token: &str| Credentials::new("AKIDEXAMPLE", "secret", Some(token.into()), None, "test");
        let token = rds_auth_token(host, 5432, "app_user", "eu-west-1", &session("the/session+token="), at)?;
        let (prefix, rest) = token.split_once("&X-Amz-Signature=").expect("a signature");
        assert_eq!(
            prefix,
            "db.abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_user\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Frds-db%2Faws4_request\
             &X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        );
        // As the AWS SDKs do, the session token follows the signature, which covers it.
        let (signature, security) = rest.split_once('&').expect("a session token after the signature");
        assert!(signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()), "{signature}");
        assert_eq!(security, "X-Amz-Security-Token=the%2Fsession%2Btoken%3D");
        let other = rds_auth_token(host, 5432, "app_user", "eu-west-1", &session("another"), at)?;
        assert!(!other.contains(signature), "the signature covers the session token");
        let later = rds_auth_token(
            host,
            5432,
            "app_user",
            "eu-west-1",
            &session("the/session+token="),
            at + Duration::from_secs(1),
        )?;
        assert_ne!(token, later, "a token signed a second later differs");
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut config = SqlConfig::new("db.example.com", "app", "app");
        config.password = Some("hunter2-secret".into());
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2-secret") && text.contains("<redacted>"), "{text}");
        assert!(text.contains("db.example.com"), "{text}");
    }

    #[test]
    fn urls_parse_into_configs() -> anyhow::Result<()> {
        let c =
            SqlConfig::from_url("postgres://app%40x:p%2Fw+d@db.example.com:6543/orders?sslmode=disable&pool_size=2")?;
        assert_eq!((c.user.as_str(), c.password.as_deref()), ("app@x", Some("p/w+d")));
        assert_eq!((c.host.as_str(), c.port, c.database.as_str()), ("db.example.com", 6543, "orders"));
        assert!(!c.tls && !c.iam_auth && c.pool_size == 2);

        let c = SqlConfig::from_url(
            "postgresql://iam_user@[::1]/?iam_auth=true&region=eu-west-1&sslrootcert=/opt/rds.pem&connect_timeout=3",
        )?;
        assert_eq!((c.host.as_str(), c.port, c.database.as_str()), ("::1", DEFAULT_PORT, "iam_user"));
        assert!(c.tls && c.iam_auth && c.password.is_none());
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.tls_ca_file, Some(PathBuf::from("/opt/rds.pem")));
        assert_eq!(c.connect_timeout, Duration::from_secs(3));

        for (url, says) in [
            ("mysql://u@h/d", "scheme"),
            ("postgres://h/d", "no user"),
            ("postgres://u@h/d?sslmode=prefer", "sslmode=prefer"),
            ("postgres://u@h/d?iam_auth=yes", "iam_auth=yes"),
            ("postgres://u@h/d?pool=3", "unknown parameter \"pool\""),
        ] {
            let e = SqlConfig::from_url(url).expect_err(url);
            assert!(
                matches!(e, StorageError::Invalid { what: "SQL URL", .. }) && e.to_string().contains(says),
                "{url}: {e}"
            );
        }
        Ok(())
    }

    #[test]
    fn iam_auth_needs_tls_credentials_and_a_region() {
        let mut config = SqlConfig::new("db.example.com", "app", "app");
        config.iam_auth = true;
        let e = Sql::new(config.clone(), None).expect_err("no SDK configuration");
        assert!(matches!(e, StorageError::Binding(_)) && e.to_string().contains("SDK configuration"), "{e}");
        let sdk = aws_types::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
            .build();
        let e = Sql::new(config.clone(), Some(&sdk)).expect_err("no region");
        assert!(e.to_string().contains("region"), "{e}");
        config.tls = false;
        config.region = Some("us-east-1".into());
        let e = Sql::new(config, Some(&sdk)).expect_err("no TLS");
        assert!(matches!(e, StorageError::Invalid { what: "iam_auth", .. }), "{e}");
    }

    /// Credentials that count how often they were asked for.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);

    impl ProvideCredentials for Counted {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new("AKIDTEST", "secret", None, None, "counted")))
        }
    }

    /// A clock a second further on each time it is read.
    #[derive(Debug)]
    struct Ticking(AtomicU64);

    impl TimeSource for Ticking {
        fn now(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(1_700_000_000 + self.0.fetch_add(1, Ordering::SeqCst))
        }
    }

    #[tokio::test]
    async fn each_new_connection_signs_a_fresh_token_and_sends_it_as_the_password() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (port, passwords) = refusing_server(dir.path()).await?;
        let asked = Arc::new(AtomicUsize::new(0));
        let sdk = aws_types::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(Counted(asked.clone())))
            .time_source(SharedTimeSource::new(Ticking(AtomicU64::new(0))))
            .region(Region::new("eu-west-1"))
            .build();
        let mut config = SqlConfig::new("localhost", "app", "iam_user");
        config.port = port;
        config.iam_auth = true;
        config.tls_ca_file = Some(dir.path().join("ca.pem"));
        let sql = Sql::new(config, Some(&sdk))?;

        for attempt in 1..=2 {
            let e = sql.execute("SELECT 1", &[]).await.expect_err("the server refuses every password");
            assert!(matches!(e, StorageError::AccessDenied(_)), "{e}");
            assert!(e.to_string().contains("password authentication failed"), "{e}");
            assert_eq!(asked.load(Ordering::SeqCst), attempt, "credentials once per connection");
        }
        let passwords = passwords.lock().expect("not poisoned").clone();
        assert_eq!(passwords.len(), 2, "{passwords:?}");
        assert_ne!(passwords[0], passwords[1], "each connection has a token of its own");
        for token in &passwords {
            let prefix = format!(
                "localhost:{port}/?Action=connect&DBUser=iam_user&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Credential=AKIDTEST%2F20231114%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20231114T2213"
            );
            assert!(token.starts_with(&prefix), "{token}");
            assert!(token.contains("&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="), "{token}");
        }
        Ok(())
    }

    /// A TLS server on a free port that speaks just enough of PostgreSQL's protocol to ask
    /// for a cleartext password (as RDS does for IAM auth), record it and refuse it. Writes
    /// its CA to `dir/ca.pem`.
    async fn refusing_server(dir: &std::path::Path) -> anyhow::Result<(u16, Arc<Mutex<Vec<String>>>)> {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate()?;
        std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])?
            .signed_by(&leaf_key, &rcgen::Issuer::new(ca, ca_key))?;
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let passwords = Arc::new(Mutex::new(Vec::new()));
        let seen = passwords.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let session = async {
                        let mut ssl_request = [0u8; 8];
                        tcp.read_exact(&mut ssl_request).await?;
                        tcp.write_all(b"S").await?;
                        let mut tls = acceptor.accept(tcp).await?;
                        let _startup = read_message(&mut tls, false).await?;
                        tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?; // AuthenticationCleartextPassword
                        let password = read_message(&mut tls, true).await?;
                        let password = String::from_utf8_lossy(password.strip_suffix(&[0]).unwrap_or(&password));
                        seen.lock().expect("not poisoned").push(password.into_owned());
                        let fields = b"SFATAL\0C28P01\0Mpassword authentication failed for user \"iam_user\"\0\0";
                        let mut error = vec![b'E'];
                        error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                        error.extend_from_slice(fields);
                        tls.write_all(&error).await?;
                        tls.shutdown().await
                    };
                    let _ = session.await;
                });
            }
        });
        Ok((port, passwords))
    }

    /// One message's body: a length-prefixed startup message, or a tagged one.
    async fn read_message(stream: &mut (impl AsyncRead + Unpin), tagged: bool) -> std::io::Result<Vec<u8>> {
        if tagged {
            stream.read_u8().await?;
        }
        let len = stream.read_u32().await? as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        stream.read_exact(&mut body).await?;
        Ok(body)
    }
}
