//! `adf kv`: a KV namespace's keys (`adf_kv_namespace`): get, put, delete, list.

use std::path::PathBuf;

use adf_storage::contract::{kv_bucket_name, kv_table_name};
use adf_storage::kv::{ListKey, ListPage};
use adf_storage::{Kv, ListOptions, PutOptions, StoreKind};
use anyhow::Result;
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{STORE, Value};
use crate::output;

/// `adf kv` and the options that say which namespace.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// The namespace bound as NAME in ADF_STORAGE_BINDINGS (the JSON in an adf_kv_namespace's
    /// client_config output, or an adf_function's environment).
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    binding: Option<String>,
    /// The namespace of the adf_kv_namespace named NAME: table adf-kv-NAME, and large values in
    /// bucket adf-kv-NAME-<account> when it exists.
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Debug, Subcommand)]
enum KvCommand {
    /// Print a key's value as stored (with --metadata, a JSON object with its metadata).
    Get(Get),
    /// Store a value under a key, optionally expiring and with metadata.
    Put(Put),
    /// Delete a key (and its large value); an absent key is fine.
    Delete(Delete),
    /// List keys in key order, with their expiry and metadata.
    List(List),
}

/// Runs one kv command.
pub async fn run(args: KvArgs) -> Result<()> {
    let kv = open(args.binding.as_deref(), args.namespace.as_deref()).await?;
    match args.command {
        KvCommand::Get(c) => c.run(&kv).await,
        KvCommand::Put(c) => c.run(&kv).await,
        KvCommand::Delete(c) => c.run(&kv).await,
        KvCommand::List(c) => c.run(&kv).await,
    }
}

/// The namespace `--binding` or `--namespace` names.
async fn open(binding: Option<&str>, namespace: Option<&str>) -> Result<Kv> {
    let sdk = super::sdk().await?;
    let (name, b) = match (binding, namespace) {
        (Some(name), None) => (name, super::bound(name)?),
        (None, Some(ns)) => {
            let bucket = kv_bucket_name(ns, &super::account(&sdk).await?);
            let bucket = super::bucket_exists(&sdk, &bucket).await?.then_some(bucket);
            (ns, adf_storage::Binding { table: Some(kv_table_name(ns)), bucket, ..super::named(StoreKind::Kv, ns) })
        }
        (Some(_), Some(_)) => anyhow::bail!("pass --binding or --namespace, not both"),
        (None, None) => anyhow::bail!(
            "no namespace: pass --binding NAME (a binding in ADF_STORAGE_BINDINGS) or --namespace NAME (an \
             adf_kv_namespace's name)"
        ),
    };
    Ok(super::storage(name, b, &sdk).kv(name)?)
}

#[derive(Debug, Args)]
pub struct Get {
    /// The key.
    key: String,
    /// Print a JSON object instead: `value` (the value as text; `value_base64` instead when it
    /// is not UTF-8), `metadata` and `expiration` (epoch seconds), null when absent.
    #[arg(long)]
    metadata: bool,
}

impl Get {
    async fn run(self, kv: &Kv) -> Result<()> {
        let Some(entry) = kv.get_with_metadata(&self.key).await? else { anyhow::bail!("no key {}", self.key) };
        if !self.metadata {
            return super::write_out(&entry.value, None);
        }
        let mut out = json!({"metadata": entry.metadata, "expiration": entry.expiration});
        match std::str::from_utf8(&entry.value) {
            Ok(text) => out["value"] = json!(text),
            Err(_) => out["value_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&entry.value)),
        }
        output::line(&out.to_string())
    }
}

#[derive(Debug, Args)]
pub struct Put {
    /// The key (at most 512 bytes).
    key: String,
    /// The value; `-` reads it from standard input. At most 25 MiB; over 380 KiB it goes to
    /// the namespace's bucket, so the namespace needs one (large_values).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    value: Option<String>,
    /// Read the value from this file.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Expire the key this long from now: seconds (at least 60) or a duration such as `10m`.
    #[arg(long, value_name = "SECONDS", value_parser = super::duration, conflicts_with = "expiration")]
    ttl: Option<std::time::Duration>,
    /// Expire the key at this time (at least 60 s from now): epoch seconds or an RFC 3339
    /// timestamp.
    #[arg(long, value_name = "EPOCH", value_parser = super::epoch_seconds)]
    expiration: Option<i64>,
    /// Metadata stored with the key, returned by `get --metadata` and `list`: JSON, at most
    /// 1 KiB.
    #[arg(long, value_name = "JSON", value_parser = json_value)]
    metadata: Option<serde_json::Value>,
}

fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

impl Put {
    async fn run(self, kv: &Kv) -> Result<()> {
        let options = PutOptions {
            expiration: self.expiration,
            expiration_ttl: self.ttl.map(|t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX)),
            metadata: self.metadata,
        };
        let value = Value::new(self.value, self.file)?.read().await?;
        let size = value.len();
        kv.put(&self.key, value, options).await?;
        output::line(&format!("stored {} ({size} bytes)", self.key))
    }
}

#[derive(Debug, Args)]
pub struct Delete {
    /// The key.
    key: String,
}

impl Delete {
    async fn run(self, kv: &Kv) -> Result<()> {
        kv.delete(&self.key).await?;
        output::line(&format!("deleted {}", self.key))
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Only keys starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// The most keys to list (1 to 1000; with --all, per request).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Start after the page that printed this cursor (on standard error, `more keys: --cursor C`).
    #[arg(long)]
    cursor: Option<String>,
    /// List every key, following the cursor page after page.
    #[arg(long)]
    all: bool,
    /// Print a JSON line per key, `{"key", "expiration", "metadata"}`, instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, kv: &Kv) -> Result<()> {
        let mut keys = Vec::new();
        let mut cursor = self.cursor;
        loop {
            let options =
                ListOptions { prefix: self.prefix.clone(), limit: Some(self.limit.into()), cursor: cursor.take() };
            let ListPage { keys: page, cursor: next, .. } = kv.list(options).await?;
            keys.extend(page);
            match next {
                Some(next) if self.all => cursor = Some(next),
                next => {
                    cursor = next;
                    break;
                }
            }
        }
        if self.json {
            for k in &keys {
                output::line(&json!({"key": k.name, "expiration": k.expiration, "metadata": k.metadata}).to_string())?;
            }
        } else if keys.is_empty() {
            output::line("no keys")?;
        } else {
            output::line(&table(&keys))?;
        }
        super::more("keys", cursor.as_deref());
        Ok(())
    }
}

fn table(keys: &[ListKey]) -> String {
    let rows: Vec<[String; 3]> = keys
        .iter()
        .map(|k| {
            [
                k.name.clone(),
                k.expiration.map_or_else(|| "-".into(), super::timestamp),
                k.metadata.as_ref().map_or_else(|| "-".into(), |m| m.to_string()),
            ]
        })
        .collect();
    super::table(["KEY", "EXPIRES", "METADATA"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::parse_args;

    #[test]
    fn a_put_takes_one_value_and_one_expiry() -> Result<(), clap::Error> {
        let p = parse_args::<Put>(&["put", "k", "v", "--ttl", "90", "--metadata", r#"{"a":1}"#])?;
        assert_eq!((p.value.as_deref(), p.ttl), (Some("v"), Some(std::time::Duration::from_secs(90))));
        assert_eq!(p.metadata, Some(json!({"a": 1})));
        assert_eq!(parse_args::<Put>(&["put", "k", "--file", "f"])?.file, Some(PathBuf::from("f")));
        for bad in [
            &["put", "k"][..],
            &["put", "k", "v", "--file", "f"],
            &["put", "k", "v", "--ttl", "60", "--expiration", "1900000000"],
            &["put", "k", "v", "--metadata", "{a"],
        ] {
            assert!(parse_args::<Put>(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn list_limits_are_those_of_a_page() {
        assert!(parse_args::<List>(&["list", "--limit", "0"]).is_err());
        assert!(parse_args::<List>(&["list", "--limit", "1001"]).is_err());
    }

    #[test]
    fn the_table_shows_expiry_and_metadata() {
        let keys = [
            ListKey { name: "a".into(), expiration: Some(1_893_456_000), metadata: Some(json!({"v": 1})) },
            ListKey { name: "user:42".into(), expiration: None, metadata: None },
        ];
        assert_eq!(
            table(&keys),
            "KEY      EXPIRES               METADATA\n\
             a        2030-01-01T00:00:00Z  {\"v\":1}\n\
             user:42  -                     -"
        );
    }
}
