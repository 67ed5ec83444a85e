//! `adf cache`: a cache's values (`adf_cache`: a DynamoDB table, Redis / Valkey, or both).

use std::time::Duration;

use adf_storage::contract::cache_table_name;
use adf_storage::{Cache, StoreKind};
use anyhow::Result;
use clap::{Args, Subcommand};

use super::{STORE, Value};
use crate::output;

/// The variable holding the Redis AUTH token for --redis-url (never an option, so it stays out
/// of shell history and process listings).
const REDIS_AUTH_TOKEN_ENV: &str = "ADF_REDIS_AUTH_TOKEN";

/// `adf cache` and the options that say which cache.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The cache bound as NAME in ADF_STORAGE_BINDINGS (the JSON in an adf_cache's client_config
    /// output, or an adf_function's environment).
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    binding: Option<String>,
    /// The DynamoDB table of the adf_cache named NAME: adf-cache-NAME.
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    cache: Option<String>,
    /// A Redis / Valkey server: `redis://host:6379`, or `rediss://...` for TLS. The AUTH token,
    /// if any, comes from ADF_REDIS_AUTH_TOKEN. With --cache, Redis is the fast tier in front
    /// of the table.
    #[arg(long, global = true, value_name = "URL", help_heading = STORE)]
    redis_url: Option<String>,
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Print the value under a key as stored; exit 1 when absent or expired.
    Get(Get),
    /// Store a value under a key for a time to live.
    Put(Put),
    /// Delete a key; an absent key is fine.
    Delete(Delete),
}

/// Runs one cache command.
pub async fn run(args: CacheArgs) -> Result<()> {
    let cache = open(&args).await?;
    match args.command {
        CacheCommand::Get(c) => c.run(&cache).await,
        CacheCommand::Put(c) => c.run(&cache).await,
        CacheCommand::Delete(c) => c.run(&cache).await,
    }
}

/// The cache `--binding`, or `--cache` and / or `--redis-url`, names.
async fn open(args: &CacheArgs) -> Result<Cache> {
    let sdk = super::sdk().await?;
    let (name, binding) = match (&args.binding, &args.cache, &args.redis_url) {
        (Some(name), None, None) => (name.clone(), super::bound(name)?),
        (None, None, None) => anyhow::bail!(
            "no cache: pass --binding NAME (a binding in ADF_STORAGE_BINDINGS), --cache NAME (an adf_cache's \
             name) or --redis-url URL"
        ),
        (Some(_), _, _) => anyhow::bail!("pass --binding, or --cache and / or --redis-url, not both"),
        (None, cache, redis_url) => {
            let name = cache.clone().unwrap_or_else(|| "redis".into());
            let binding = adf_storage::Binding {
                table: cache.as_deref().map(cache_table_name),
                redis_url: redis_url.clone(),
                redis_auth_token: std::env::var(REDIS_AUTH_TOKEN_ENV).ok().filter(|t| !t.is_empty()),
                ..super::named(StoreKind::Cache, &name)
            };
            (name, binding)
        }
    };
    Ok(super::storage(&name, binding, &sdk).cache(&name).await?)
}

#[derive(Debug, Args)]
pub struct Get {
    /// The key.
    key: String,
}

impl Get {
    async fn run(self, cache: &Cache) -> Result<()> {
        match cache.get(&self.key).await? {
            Some(value) => super::write_out(&value, None),
            None => anyhow::bail!("no value under {} (absent or expired)", self.key),
        }
    }
}

#[derive(Debug, Args)]
pub struct Put {
    /// The key (at most 512 bytes).
    key: String,
    /// The value; `-` reads it from standard input.
    value: String,
    /// How long to keep it: seconds or a duration such as `10m` (1 s to 365 days).
    #[arg(long, value_name = "DURATION", value_parser = super::duration)]
    ttl: Duration,
}

impl Put {
    async fn run(self, cache: &Cache) -> Result<()> {
        let value = Value::new(Some(self.value), None)?.read().await?;
        let size = value.len();
        cache.put(&self.key, value, self.ttl).await?;
        output::line(&format!("stored {} ({size} bytes, for {})", self.key, humantime::format_duration(self.ttl)))
    }
}

#[derive(Debug, Args)]
pub struct Delete {
    /// The key.
    key: String,
}

impl Delete {
    async fn run(self, cache: &Cache) -> Result<()> {
        cache.delete(&self.key).await?;
        output::line(&format!("deleted {}", self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::parse_args;

    #[test]
    fn a_put_needs_a_ttl() -> Result<(), clap::Error> {
        assert!(parse_args::<Put>(&["put", "k", "v"]).is_err());
        let p = parse_args::<Put>(&["put", "k", "v", "--ttl", "10m"])?;
        assert_eq!(p.ttl, Duration::from_secs(600));
        Ok(())
    }
}
