//! `adf kv`, `adf object` and `adf cache`: the stores of `adf_kv_namespace`, `adf_object_bucket`
//! and `adf_cache`, through `adf-storage`, addressed by a binding in `ADF_STORAGE_BINDINGS` (a
//! resource's `client_config` output) or by the resource's name.

pub mod cache;
pub mod kv;
pub mod object;
mod progress;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adf_common::contract::EnvSettings;
use adf_storage::contract::BINDINGS_ENV;
use adf_storage::{Binding, Bindings, Storage, StoreKind};
use anyhow::{Context, Result, anyhow};
use aws_config::SdkConfig;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

/// The help heading of the options that say which store a command works on.
const STORE: &str = "Store";

/// The AWS configuration from the standard chain (`AWS_PROFILE`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, ...). No request is sent.
async fn sdk() -> Result<SdkConfig> {
    let config = adf_common::sdk::load().await;
    if config.region().is_none() {
        anyhow::bail!("no AWS region: set AWS_REGION, or a region in the AWS profile");
    }
    Ok(config)
}

/// The binding `name` in `ADF_STORAGE_BINDINGS`. Errors never quote the variable: it may hold
/// a Redis AUTH token.
fn bound(name: &str) -> Result<Binding> {
    let bindings = Bindings::from_env().map_err(|_| {
        anyhow!("{BINDINGS_ENV} is not a JSON object of binding name to binding (a storage resource's client_config)")
    })?;
    if bindings.0.is_empty() {
        anyhow::bail!(
            "no binding {name}: {BINDINGS_ENV} is not set; export it from the store's client_config output, \
             or name the store instead of the binding"
        );
    }
    let known: Vec<&str> = bindings.0.keys().map(String::as_str).collect();
    let found = bindings.0.get(name).cloned();
    found.ok_or_else(|| anyhow!("no binding {name} in {BINDINGS_ENV} (it has {})", known.join(", ")))
}

/// A `Storage` holding `binding` alone, under `name`; its accessors check the kind.
fn storage(name: &str, binding: Binding, sdk: &SdkConfig) -> Storage {
    Storage::new(Bindings(BTreeMap::from([(name.to_string(), binding)])), sdk)
}

/// A store named by a resource: a binding as that resource's `binding` output would be.
fn named(kind: StoreKind, name: &str) -> Binding {
    Binding { kind: Some(kind), name: name.to_string(), ..Binding::default() }
}

/// The account the credentials belong to (managed bucket names end with it).
async fn account(sdk: &SdkConfig) -> Result<String> {
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow!("finding the AWS account (STS GetCallerIdentity): {}", adf_common::error_chain(&e)))?;
    out.account.context("STS GetCallerIdentity returned no account")
}

/// Whether `bucket` exists. A bucket that refuses `HeadBucket` (a policy that grants its
/// objects but not `s3:ListBucket`) exists.
async fn bucket_exists(sdk: &SdkConfig, bucket: &str) -> Result<bool> {
    match adf_common::sdk::s3_client(sdk).head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => Ok(false),
            Some(403) => Ok(true),
            _ => Err(anyhow!("HeadBucket {bucket}: {}", adf_common::error_chain(&e))),
        },
    }
}

/// A value given as an argument, read from a file, or read from standard input (`-`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Text(String),
    File(PathBuf),
    Stdin,
}

impl Value {
    /// `text`, or standard input when it is `-`; `file` when it is given instead.
    fn new(text: Option<String>, file: Option<PathBuf>) -> Result<Self> {
        match (text, file) {
            (Some(t), None) if t == "-" => Ok(Self::Stdin),
            (Some(t), None) => Ok(Self::Text(t)),
            (None, Some(path)) => Ok(Self::File(path)),
            _ => anyhow::bail!("give the value, --file PATH, or - for standard input"),
        }
    }

    async fn read(self) -> Result<Bytes> {
        Ok(match self {
            Self::Text(t) => Bytes::from(t),
            Self::File(path) => {
                tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?.into()
            }
            Self::Stdin => {
                let mut buf = Vec::new();
                tokio::io::stdin().read_to_end(&mut buf).await.context("reading standard input")?;
                buf.into()
            }
        })
    }
}

/// Writes `bytes` to standard output as they are, or to `path` (then says so on stdout).
fn write_out(bytes: &[u8], path: Option<&Path>) -> Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
            crate::output::line(&format!("wrote {} bytes to {}", bytes.len(), path.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

/// A duration: whole seconds (`90`) or humantime (`10m`, `1h 30m`).
fn duration(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text).map_err(|e| format!("{e}: use seconds (90) or a duration (10m)")),
    }
}

/// An instant as epoch seconds: a number, or an RFC 3339 timestamp.
fn epoch_seconds(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{e}: use epoch seconds or a timestamp such as 2030-01-31T12:00:00Z"))?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).map_err(|_| "before 1970".to_string())?.as_secs();
    i64::try_from(secs).map_err(|e| e.to_string())
}

/// Epoch seconds as an RFC 3339 timestamp.
fn timestamp(epoch_seconds: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch_seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Rows under a header, columns padded to their widest cell (the last one not padded).
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_string);
    let width = |i: usize| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..N).map(width).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| if i + 1 == N { c.clone() } else { format!("{c:<w$}") })
                .collect();
            cells.join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Says on standard error how to get the page after this one.
fn more(what: &str, cursor: Option<&str>) {
    if let Some(cursor) = cursor {
        eprintln!("more {what}: --cursor {cursor}");
    }
}

/// Parses `args` (the command's name first) into the options of one command.
#[cfg(test)]
fn parse_args<T: clap::Args>(args: &[&str]) -> Result<T, clap::Error> {
    let mut matches = T::augment_args(clap::Command::new("adf")).try_get_matches_from(args)?;
    T::from_arg_matches_mut(&mut matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_humantime() -> Result<(), String> {
        assert_eq!(duration("90")?, Duration::from_secs(90));
        assert_eq!(duration("10m")?, Duration::from_secs(600));
        assert!(duration("soon").expect_err("not a duration").contains("10m"));
        Ok(())
    }

    #[test]
    fn instants_are_epoch_seconds_or_timestamps() -> Result<(), String> {
        assert_eq!(epoch_seconds("1900000000")?, 1_900_000_000);
        assert_eq!(epoch_seconds("2030-01-01T00:00:00Z")?, 1_893_456_000);
        assert_eq!(timestamp(1_893_456_000), "2030-01-01T00:00:00Z");
        assert!(epoch_seconds("tomorrow").is_err());
        Ok(())
    }

    #[test]
    fn values_come_from_one_place() -> Result<()> {
        assert_eq!(Value::new(Some("v".into()), None)?, Value::Text("v".into()));
        assert_eq!(Value::new(Some("-".into()), None)?, Value::Stdin);
        assert_eq!(Value::new(None, Some("f".into()))?, Value::File("f".into()));
        assert!(Value::new(None, None).is_err());
        assert!(Value::new(Some("v".into()), Some("f".into())).is_err());
        Ok(())
    }

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rows = [["a".to_string(), "12".to_string(), "x".to_string()], ["bbb".into(), "3".into(), "yy".into()]];
        assert_eq!(table(["KEY", "SIZE", "M"], &rows), "KEY  SIZE  M\na    12    x\nbbb  3     yy");
    }
}
