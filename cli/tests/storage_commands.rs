//! The built `adf kv`, `adf object` and `adf cache` against a moto server (and a real
//! `redis-server`): stores made as the provider's resources make them, then addressed by
//! resource name, by raw bucket, and by a binding in `ADF_STORAGE_BINDINGS`.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};

use adf_acceptance::redis::RedisServer;
use adf_acceptance::{Emulator, unique_name};
use adf_common::contract::EnvSettings;
use adf_storage::contract::{
    BINDINGS_ENV, CACHE_TABLE, KV_TABLE, cache_table_name, kv_bucket_name, kv_table_name, object_bucket_name,
};
use adf_storage::{Binding, Bindings, StoreKind};
use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// moto's account.
const ACCOUNT: &str = "123456789012";
const MIB: usize = 1024 * 1024;

/// A fresh emulator, its clients, and a directory for files.
struct Aws {
    emu: Emulator,
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    dir: tempfile::TempDir,
}

impl Aws {
    async fn new() -> Result<Self> {
        let emu = Emulator::start()?;
        let config = adf_acceptance::sdk_config(emu.endpoint()).await;
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        Ok(Self { ddb: aws_sdk_dynamodb::Client::new(&config), s3, emu, dir: tempfile::tempdir()? })
    }

    async fn bucket(&self, name: &str) -> Result<()> {
        self.s3.create_bucket().bucket(name).send().await?;
        Ok(())
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs `adf ARGS` with the emulator's endpoint, test credentials and `env`, writing `stdin`.
    async fn adf_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Result<Output> {
        let mut child =
            adf_acceptance::emulator_command(env!("CARGO_BIN_EXE_adf"), self.emu.endpoint(), self.dir.path())
                .args(args)
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
        let mut input = child.stdin.take().context("the child's stdin")?;
        input.write_all(stdin).await?;
        drop(input);
        Ok(child.wait_with_output().await?)
    }

    async fn adf(&self, args: &[&str]) -> Result<Output> {
        self.adf_with(args, &[], b"").await
    }

    /// Commands that start with `prefix` (the group and its store options).
    fn on<'a>(&'a self, prefix: &[&str]) -> On<'a> {
        On { aws: self, prefix: prefix.iter().map(|s| s.to_string()).collect() }
    }
}

/// `adf PREFIX ARGS`.
struct On<'a> {
    aws: &'a Aws,
    prefix: Vec<String>,
}

impl On<'_> {
    async fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with(args, b"").await
    }

    async fn run_with(&self, args: &[&str], stdin: &[u8]) -> Result<Output> {
        let all: Vec<&str> = self.prefix.iter().map(String::as_str).chain(args.iter().copied()).collect();
        self.aws.adf_with(&all, &[], stdin).await
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Checks that the command succeeded, showing both streams when it did not.
fn ok(o: &Output, what: &str) -> Result<()> {
    ensure!(o.status.success(), "{what}: exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), stdout(o), stderr(o));
    Ok(())
}

/// A one-line `adf: ...` error with exit code 1 that says `says`, and nothing on stdout.
fn fails(o: &Output, what: &str, says: &str) -> Result<()> {
    let err = stderr(o);
    ensure!(
        o.status.code() == Some(1),
        "{what}: exit {:?}, not 1\nstdout: {}\nstderr: {err}",
        o.status.code(),
        stdout(o)
    );
    ensure!(err.starts_with("adf: ") && err.lines().count() == 1, "{what}: {err}");
    ensure!(err.contains(says), "{what}: {err} does not say {says:?}");
    ensure!(o.stdout.is_empty(), "{what}: printed {}", stdout(o));
    Ok(())
}

/// Deterministic bytes that no two parts of share a pattern.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_keys_round_trip_by_namespace_name() -> Result<()> {
    let aws = Aws::new().await?;
    let ns = unique_name("ns");
    KV_TABLE.create(&aws.ddb, &kv_table_name(&ns)).await.map_err(anyhow::Error::msg)?;
    let kv = aws.on(&["kv", "--namespace", &ns]);

    let put = kv.run(&["put", "greeting", "hello", "--ttl", "120", "--metadata", r#"{"owner":"ada"}"#]).await?;
    ok(&put, "put")?;
    ensure!(stdout(&put).trim() == "stored greeting (5 bytes)", "{}", stdout(&put));
    let get = kv.run(&["get", "greeting"]).await?;
    ok(&get, "get")?;
    ensure!(get.stdout == b"hello", "{}", stdout(&get));
    let get = kv.run(&["get", "greeting", "--metadata"]).await?;
    ok(&get, "get --metadata")?;
    let v: Value = serde_json::from_str(&stdout(&get))?;
    ensure!(v["value"] == "hello" && v["metadata"] == json!({"owner": "ada"}), "{v}");
    let expires = v["expiration"].as_i64().context("an expiration")?;
    ensure!((now() + 100..=now() + 120).contains(&expires), "{v}");

    // From standard input and from a file; no expiry.
    ok(&kv.run_with(&["put", "user:1", "-"], b"one\n").await?, "put from stdin")?;
    std::fs::write(aws.path("two.bin"), [0xff, 0x00, 0x02])?;
    ok(&kv.run(&["put", "user:2", "--file", &aws.path("two.bin")]).await?, "put --file")?;
    let get = kv.run(&["get", "user:2", "--metadata"]).await?;
    let v: Value = serde_json::from_str(&stdout(&get))?;
    ensure!(v == json!({"value_base64": "/wAC", "metadata": null, "expiration": null}), "{v}");
    ensure!(kv.run(&["get", "user:1"]).await?.stdout == b"one\n");

    let list = kv.run(&["list"]).await?;
    ok(&list, "list")?;
    let text = stdout(&list);
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 4 && lines[0].starts_with("KEY "), "{text}");
    ensure!(lines[1].starts_with("greeting ") && lines[1].ends_with(r#"{"owner":"ada"}"#), "{text}");
    ensure!(lines[2].starts_with("user:1 ") && lines[3].ends_with(" -"), "{text}");
    let json = kv.run(&["list", "--prefix", "user:", "--json"]).await?;
    let keys: Vec<Value> = stdout(&json).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(
        keys == [
            json!({"key": "user:1", "expiration": null, "metadata": null}),
            json!({"key": "user:2", "expiration": null, "metadata": null})
        ],
        "{keys:?}"
    );

    // Page by page: the cursor is on stderr; --all follows it.
    let first = kv.run(&["list", "--limit", "2", "--json"]).await?;
    ensure!(stdout(&first).lines().count() == 2, "{}", stdout(&first));
    let cursor = stderr(&first).trim().strip_prefix("more keys: --cursor ").context("a cursor")?.to_string();
    let rest = kv.run(&["list", "--limit", "2", "--json", "--cursor", &cursor]).await?;
    ensure!(stdout(&rest).contains(r#""key":"user:2""#) && stdout(&rest).lines().count() == 1, "{}", stdout(&rest));
    ensure!(stderr(&rest).is_empty(), "{}", stderr(&rest));
    let all = kv.run(&["list", "--limit", "1", "--all", "--json"]).await?;
    ensure!(stdout(&all).lines().count() == 3 && stderr(&all).is_empty(), "{}{}", stdout(&all), stderr(&all));

    let delete = kv.run(&["delete", "greeting"]).await?;
    ok(&delete, "delete")?;
    ensure!(stdout(&delete).trim() == "deleted greeting");
    fails(&kv.run(&["get", "greeting"]).await?, "get after delete", "no key greeting")?;

    // The library's refusals, one line each.
    let short = kv.run(&["put", "k", "v", "--ttl", "30"]).await?;
    fails(&short, "ttl of 30 s", "under the minimum of 60 s")?;
    let soon = (now() + 30).to_string();
    fails(&kv.run(&["put", "k", "v", "--expiration", &soon]).await?, "expiration in 30 s", "less than 60 s from now")?;
    let long_key = "k".repeat(600);
    fails(&kv.run(&["put", &long_key, "v"]).await?, "600-byte key", "key is 600 bytes, over the limit of 512 bytes")?;
    fails(&kv.run(&["get", &long_key]).await?, "get of a 600-byte key", "over the limit of 512 bytes")?;
    let metadata = json!({"note": "m".repeat(1100)}).to_string();
    let says = format!("metadata is {} bytes, over the limit of 1024 bytes", metadata.len());
    fails(&kv.run(&["put", "k", "v", "--metadata", &metadata]).await?, "big metadata", &says)?;
    let big = noise(400 * 1024);
    std::fs::write(aws.path("big.bin"), &big)?;
    let no_bucket = kv.run(&["put", "big", "--file", &aws.path("big.bin")]).await?;
    fails(&no_bucket, "large value without a bucket", "no bucket for large values")?;

    // With the namespace's bucket (found by the account's name for it), large values fit.
    aws.bucket(&kv_bucket_name(&ns, ACCOUNT)).await?;
    ok(&kv.run(&["put", "big", "--file", &aws.path("big.bin")]).await?, "large value with a bucket")?;
    let get = kv.run(&["get", "big"]).await?;
    ensure!(get.stdout == big, "{} bytes back", get.stdout.len());

    let none = aws.adf(&["kv", "get", "k"]).await?;
    fails(&none, "no namespace", "pass --binding NAME")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_upload_in_parts_with_progress_and_round_trip() -> Result<()> {
    let aws = Aws::new().await?;
    let name = unique_name("up");
    let bucket = object_bucket_name(&name, ACCOUNT);
    aws.bucket(&bucket).await?;
    let obj = aws.on(&["object", "--bucket-name", &name]);

    let data = noise(20 * MIB);
    std::fs::write(aws.path("big.bin"), &data)?;
    let put = obj
        .run(&[
            "put",
            "data/big.bin",
            &aws.path("big.bin"),
            "--content-type",
            "application/x-test",
            "--metadata",
            "owner=ada",
        ])
        .await?;
    ok(&put, "put of 20 MiB")?;
    ensure!(stdout(&put).starts_with("stored data/big.bin (20.0 MiB, etag "), "{}", stdout(&put));
    // Not a terminal: a line per tenth, the last one complete.
    let progress = stderr(&put);
    let lines: Vec<&str> = progress.lines().collect();
    ensure!(lines.len() >= 5 && lines.iter().all(|l| l.contains(" / 20.0 MiB (")), "{progress}");
    ensure!(lines.last() == Some(&"20.0 MiB / 20.0 MiB (100%)"), "{progress}");
    let head = aws.s3.head_object().bucket(&bucket).key("data/big.bin").send().await?;
    ensure!(head.content_type() == Some("application/x-test"), "{head:?}");
    ensure!(head.metadata().and_then(|m| m.get("owner")).map(String::as_str) == Some("ada"), "{head:?}");
    ensure!(head.e_tag().is_some_and(|e| e.ends_with("-3\"")), "3 parts of 8 MiB: {head:?}");

    let get = obj.run(&["get", "data/big.bin", &aws.path("back.bin")]).await?;
    ok(&get, "get to a file")?;
    ensure!(std::fs::read(aws.path("back.bin"))? == data, "the download differs");

    // Small: one request, from standard input, back on standard output.
    let small = obj.run_with(&["put", "notes/a.txt"], b"hello").await?;
    ok(&small, "put from stdin")?;
    ensure!(stderr(&small).is_empty(), "no progress for one request: {}", stderr(&small));
    ensure!(obj.run(&["get", "notes/a.txt"]).await?.stdout == b"hello");

    let ls = obj.run(&["ls"]).await?;
    ok(&ls, "ls")?;
    let text = stdout(&ls);
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 3 && lines[0].starts_with("KEY "), "{text}");
    ensure!(lines[1].starts_with("data/big.bin  20971520  ") && lines[2].starts_with("notes/a.txt   5 "), "{text}");
    let grouped = obj.run(&["ls", "--delimiter", "--json"]).await?;
    let entries: Vec<Value> = stdout(&grouped).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(entries == [json!({"prefix": "data/"}), json!({"prefix": "notes/"})], "{entries:?}");
    let page = obj.run(&["ls", "--limit", "1", "--json"]).await?;
    ensure!(
        stdout(&page).lines().count() == 1 && stderr(&page).starts_with("more objects: --cursor "),
        "{}",
        stderr(&page)
    );

    // Presigned URLs work without credentials, and a raw bucket name reaches the same bucket.
    let http = reqwest::Client::new();
    let url = obj.run(&["presign", "notes/a.txt", "--expires", "5m"]).await?;
    ok(&url, "presign")?;
    let url = stdout(&url).trim().to_string();
    ensure!(url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="), "{url}");
    let r = http.get(&url).send().await?;
    ensure!(r.status().is_success() && r.bytes().await? == "hello", "GET {url}");
    let url = obj.run(&["presign", "notes/b.txt", "--method", "put"]).await?;
    let r = http.put(stdout(&url).trim()).body("via URL").send().await?;
    ensure!(r.status().is_success(), "presigned PUT: {}", r.status());
    let raw = aws.adf(&["object", "--bucket", &bucket, "get", "notes/b.txt"]).await?;
    ensure!(raw.stdout == b"via URL", "{}", stderr(&raw));

    let rm = obj.run(&["rm", "data/big.bin"]).await?;
    ok(&rm, "rm")?;
    ensure!(stdout(&rm).trim() == "removed data/big.bin");
    ensure!(!stdout(&obj.run(&["ls"]).await?).contains("data/big.bin"));
    fails(&obj.run(&["get", "data/big.bin"]).await?, "get after rm", "no object data/big.bin")?;

    fails(&obj.run(&["get", &"k".repeat(1100)]).await?, "long key", "key is 1100 bytes")?;
    fails(&obj.run(&["presign", "k", "--expires", "8days"]).await?, "presign for 8 days", "invalid expiry")?;
    // Conditional puts: create-only, then an ETag that no longer matches.
    std::fs::write(aws.path("small.txt"), "first")?;
    ok(&obj.run(&["put", "cond.txt", &aws.path("small.txt"), "--if-absent"]).await?, "create-only put")?;
    let again = obj.run(&["put", "cond.txt", &aws.path("small.txt"), "--if-absent"]).await?;
    fails(&again, "second create-only put", "precondition failed")?;
    let stale = obj.run(&["put", "cond.txt", &aws.path("small.txt"), "--if-match", "\"0000\""]).await?;
    fails(&stale, "put with a stale ETag", "precondition failed")?;
    fails(&obj.run(&["put", "k", &aws.path("missing")]).await?, "missing file", "missing")?;
    let bad = obj.run(&["put", "k", "--metadata", "Owner=ada"]).await?;
    fails(&bad, "upper-case metadata key", "invalid custom metadata")?;
    let both = aws.adf(&["object", "--bucket", &bucket, "--bucket-name", &name, "ls"]).await?;
    fails(&both, "two addresses", "pass one of --binding, --bucket-name and --bucket")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_values_round_trip_in_a_table() -> Result<()> {
    let aws = Aws::new().await?;
    let name = unique_name("hot");
    CACHE_TABLE.create(&aws.ddb, &cache_table_name(&name)).await.map_err(anyhow::Error::msg)?;
    let cache = aws.on(&["cache", "--cache", &name]);

    let put = cache.run(&["put", "page:/", "<html>", "--ttl", "10m"]).await?;
    ok(&put, "put")?;
    ensure!(stdout(&put).trim() == "stored page:/ (6 bytes, for 10m)", "{}", stdout(&put));
    let item = aws
        .ddb
        .get_item()
        .table_name(cache_table_name(&name))
        .key("k", aws_sdk_dynamodb::types::AttributeValue::S("page:/".into()))
        .send()
        .await?;
    let exp: i64 = item.item().and_then(|i| i.get("exp")).and_then(|e| e.as_n().ok()).context("exp")?.parse()?;
    ensure!((now() + 590..=now() + 601).contains(&exp), "expires at {exp}");
    ensure!(cache.run(&["get", "page:/"]).await?.stdout == b"<html>");
    ok(&cache.run(&["delete", "page:/"]).await?, "delete")?;
    fails(&cache.run(&["get", "page:/"]).await?, "get after delete", "no value under page:/ (absent or expired)")?;

    fails(&cache.run(&["put", &"k".repeat(600), "v", "--ttl", "1m"]).await?, "long key", "key is 600 bytes")?;
    fails(&cache.run(&["put", "k", "v", "--ttl", "0"]).await?, "no ttl", "invalid ttl")?;
    let usage = cache.run(&["put", "k", "v"]).await?;
    ensure!(usage.status.code() == Some(2) && stderr(&usage).contains("--ttl"), "{}", stderr(&usage));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cache_takes_its_token_from_the_environment_only() -> Result<()> {
    adf_acceptance::redis::ensure_installed()?;
    let (aws, redis) = (Aws::new().await?, RedisServer::start()?);
    let url = redis.url();
    let token = [("ADF_REDIS_AUTH_TOKEN", redis.password())];
    let put = aws.adf_with(&["cache", "--redis-url", &url, "put", "k", "v", "--ttl", "1m"], &token, b"").await?;
    ok(&put, "put with the token")?;
    let get = aws.adf_with(&["cache", "--redis-url", &url, "get", "k"], &token, b"").await?;
    ensure!(get.stdout == b"v", "{}", stderr(&get));

    let no_token = aws.adf(&["cache", "--redis-url", &url, "get", "k"]).await?;
    fails(&no_token, "no token", "wants an AUTH token")?;
    let wrong = [("ADF_REDIS_AUTH_TOKEN", "not-the-Secret-42")];
    let refused = aws.adf_with(&["cache", "--redis-url", &url, "get", "k"], &wrong, b"").await?;
    fails(&refused, "wrong token", "refused the AUTH token")?;
    ensure!(!stderr(&refused).contains("not-the-Secret-42"), "{}", stderr(&refused));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_found_by_their_binding() -> Result<()> {
    let aws = Aws::new().await?;
    let (ns, cache) = (unique_name("ns"), unique_name("hot"));
    let bucket = unique_name("raw");
    KV_TABLE.create(&aws.ddb, &kv_table_name(&ns)).await.map_err(anyhow::Error::msg)?;
    CACHE_TABLE.create(&aws.ddb, &cache_table_name(&cache)).await.map_err(anyhow::Error::msg)?;
    aws.bucket(&bucket).await?;
    let binding = |kind, name: &str| Binding { kind: Some(kind), name: name.to_string(), ..Binding::default() };
    let bindings = Bindings(BTreeMap::from([
        ("sessions".to_string(), Binding { table: Some(kv_table_name(&ns)), ..binding(StoreKind::Kv, &ns) }),
        ("uploads".to_string(), Binding { bucket: Some(bucket.clone()), ..binding(StoreKind::Object, "uploads") }),
        ("hot".to_string(), Binding { table: Some(cache_table_name(&cache)), ..binding(StoreKind::Cache, &cache) }),
    ]))
    .to_env();
    let env: Vec<(&str, &str)> = bindings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let adf = |args: &'static [&'static str]| aws.adf_with(args, &env, b"");

    ok(&adf(&["kv", "--binding", "sessions", "put", "user:1", "ada"]).await?, "kv put")?;
    ensure!(adf(&["kv", "get", "user:1", "--binding", "sessions"]).await?.stdout == b"ada");
    // The namespace's partition is the binding's name: the same key by namespace name.
    let by_name = aws.adf(&["kv", "--namespace", &ns, "get", "user:1"]).await?;
    ensure!(by_name.stdout == b"ada", "{}", stderr(&by_name));
    ok(&adf(&["object", "--binding", "uploads", "put", "a.txt"]).await?, "object put")?;
    let listed = adf(&["object", "--binding", "uploads", "ls", "--json"]).await?;
    ensure!(
        stdout(&listed).contains(r#""key":"a.txt""#) && stdout(&listed).contains(r#""size":0"#),
        "{}",
        stdout(&listed)
    );
    ok(&adf(&["cache", "--binding", "hot", "put", "k", "v", "--ttl", "90"]).await?, "cache put")?;
    ensure!(adf(&["cache", "--binding", "hot", "get", "k"]).await?.stdout == b"v");

    fails(
        &adf(&["kv", "--binding", "nope", "get", "k"]).await?,
        "unknown binding",
        "no binding nope in ADF_STORAGE_BINDINGS (it has hot, sessions, uploads)",
    )?;
    fails(
        &adf(&["kv", "--binding", "uploads", "get", "k"]).await?,
        "wrong kind",
        "binding \"uploads\" is object, not kv",
    )?;
    fails(&adf(&["kv", "--binding", "sessions", "--namespace", "x", "get", "k"]).await?, "both", "not both")?;
    let unset = aws.adf(&["cache", "--binding", "hot", "get", "k"]).await?;
    fails(&unset, "no bindings", "ADF_STORAGE_BINDINGS is not set")?;
    let secret = [(BINDINGS_ENV, r#"{"hot": {"kind": "cache", "redis_auth_token": "s3cret-token", "name": 1}}"#)];
    let invalid = aws.adf_with(&["cache", "--binding", "hot", "get", "k"], &secret, b"").await?;
    fails(&invalid, "invalid bindings", "is not a JSON object of binding name to binding")?;
    ensure!(!stderr(&invalid).contains("s3cret"), "{}", stderr(&invalid));
    Ok(())
}

#[test]
fn help_lists_every_storage_command_and_address() -> Result<()> {
    for (group, words) in [
        ("kv", &["get", "put", "delete", "list", "--binding", "--namespace"][..]),
        ("object", &["put", "get", "ls", "rm", "presign", "--binding", "--bucket-name", "--bucket"]),
        ("cache", &["get", "put", "delete", "--binding", "--cache", "--redis-url", "ADF_REDIS_AUTH_TOKEN"]),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_adf")).args([group, "--help"]).output()?;
        ensure!(out.status.success(), "{group} --help");
        let help = stdout(&out);
        for w in words {
            ensure!(help.contains(w), "{group} --help lacks {w}: {help}");
        }
    }
    Ok(())
}
