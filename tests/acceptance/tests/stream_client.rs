//! The stream client and the `adf` CLI against the real stream Lambda: the zip the provider
//! ships, run by the local Lambda runner behind a local Function URL, on the emulator's S3 and
//! DynamoDB. Every request the client sends is SigV4-signed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use adf_acceptance::function_url::FunctionUrlServer;
use adf_acceptance::lambda_runner::{FunctionSpec, LambdaRunner, LogControls};
use adf_acceptance::runtime_zips::stream_lambda;
use adf_acceptance::{Emulator, REGION, sdk_config, unique_name};
use adf_stream::{Stream, TopicConfig};
use adf_stream_client::{
    Auth, Client, Consumer, ConsumerConfig, Error, NewRecord, Producer, ProducerConfig, Start, partition_for,
};
use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// A topic served by the stream Lambda on a fresh emulator.
struct Served {
    topic: String,
    server: FunctionUrlServer,
    _runner: Arc<LambdaRunner>,
    _emu: Emulator,
}

impl Served {
    async fn start(partitions: u32) -> Result<Self> {
        let emu = Emulator::start()?;
        let config = sdk_config(emu.endpoint()).await;
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let topic = unique_name("topic");
        let storage = TopicConfig {
            name: topic.clone(),
            partitions,
            bucket: topic.clone(),
            prefix: "segments/".into(),
            table: topic.clone(),
            retention_days: 7,
            compress: true,
        };
        Stream::new(s3, aws_sdk_dynamodb::Client::new(&config), storage).create_storage().await?;
        let environment = BTreeMap::from([
            ("ADF_TOPIC", topic.clone()),
            ("ADF_PARTITIONS", partitions.to_string()),
            ("ADF_BUCKET", topic.clone()),
            ("ADF_PREFIX", "segments/".into()),
            ("ADF_TABLE", topic.clone()),
            ("ADF_RETENTION_DAYS", "7".into()),
        ]);
        let function = format!("adf-stream-{topic}");
        let spec = FunctionSpec {
            zip: stream_lambda()?,
            environment: environment.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            arn: format!("arn:aws:lambda:{REGION}:123456789012:function:{function}"),
            name: function,
            memory_mb: 512,
            endpoint: emu.endpoint().to_string(),
            logging: LogControls::default(),
        };
        // Two execution environments: a long poll holds one while a produce uses the other.
        let runner = Arc::new(LambdaRunner::start_many(&spec, 2).await?);
        let server = FunctionUrlServer::start(Arc::clone(&runner)).await?;
        Ok(Self { topic, server, _runner: runner, _emu: emu })
    }

    fn client(&self, auth: Auth) -> Result<Client> {
        Ok(Client::new(&self.server.url(), &self.topic, auth)?)
    }

    fn iam(&self) -> Result<Client> {
        self.client(Auth::static_credentials("test", "test", None, REGION))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_consumer_groups_and_errors_through_the_lambda() -> Result<()> {
    const PARTITIONS: u32 = 3;
    const RECORDS: usize = 1_000;
    let served = Served::start(PARTITIONS).await?;
    let client = served.iam()?;

    // 1,000 keyed records through the batching producer: each gets its own dense offset in its
    // key's partition.
    let config = ProducerConfig { batch_size: 150, ..ProducerConfig::default() };
    let producer = Producer::new(client.clone(), config).await?;
    let key = |i: usize| format!("key-{}", i % 37);
    let sends: Vec<_> = (0..RECORDS).map(|i| producer.send(Some(&key(i)), i.to_string())).collect();
    producer.flush().await?;
    let mut placed = BTreeMap::new();
    for (i, sent) in sends.into_iter().enumerate() {
        let m = sent.await?;
        assert_eq!(m.partition, partition_for(&key(i), PARTITIONS), "record {i}");
        ensure!(placed.insert((m.partition, m.offset), i).is_none(), "two records at {m:?}");
    }
    producer.close().await?;
    assert_eq!(placed.len(), RECORDS);
    let mut per_partition = BTreeMap::<u32, Vec<u64>>::new();
    for (p, o) in placed.keys() {
        per_partition.entry(*p).or_default().push(*o);
    }
    for (p, offsets) in &per_partition {
        assert_eq!(*offsets, (0..offsets.len() as u64).collect::<Vec<_>>(), "partition {p} is dense");
    }
    assert_eq!(per_partition.len(), PARTITIONS as usize, "37 keys reach every partition");

    // The description agrees.
    let described = client.describe().await?;
    assert_eq!(described.topic, served.topic);
    let watermarks: Vec<u64> = described.partitions.iter().map(|p| p.high_watermark).collect();
    let counts: Vec<u64> = per_partition.values().map(|o| o.len() as u64).collect();
    assert_eq!(watermarks, counts);
    assert_eq!(watermarks.iter().sum::<u64>(), RECORDS as u64);

    // Everything comes back where it was put, and each key's records in the order sent.
    let mut consumer =
        Consumer::new(client.clone(), ConsumerConfig { limit: 300, ..ConsumerConfig::default() }).await?;
    let mut by_key = BTreeMap::<String, Vec<usize>>::new();
    let mut seen = 0;
    loop {
        let batch = consumer.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let i = placed.get(&(r.partition, r.offset)).copied().context("a record nobody produced")?;
            assert_eq!((r.value.as_str(), r.key.as_deref()), (i.to_string().as_str(), Some(key(i).as_str())));
            by_key.entry(key(i)).or_default().push(i);
            seen += 1;
        }
    }
    assert_eq!(seen, RECORDS);
    for (k, order) in &by_key {
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{k} out of order: {order:?}");
    }

    // A group commits, and a new consumer of the group resumes there.
    let group = |start| ConsumerConfig {
        partitions: Some(vec![0]),
        start,
        group: Some("billing".into()),
        limit: 10,
        ..ConsumerConfig::default()
    };
    let mut first = Consumer::new(client.clone(), group(Start::Committed)).await?;
    let offsets: Vec<u64> = first.next_batch().await?.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    first.commit().await?;
    let mut resumed = Consumer::new(client.clone(), group(Start::Committed)).await?;
    assert_eq!(resumed.next_batch().await?.first().map(|r| r.offset), Some(10));
    assert!(matches!(client.commit("billing", 0, 5).await, Err(Error::Conflict(_))), "commits never go back");

    // Limits and unknown partitions are typed errors.
    let huge = NewRecord::new(None, "x".repeat(2 * 1024 * 1024));
    let too_large = client.produce(std::slice::from_ref(&huge), Some(0)).await;
    assert!(matches!(too_large, Err(Error::TooLarge(_))), "{too_large:?}");
    let unknown = client.consume(PARTITIONS + 6, 0, 10, Duration::ZERO).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
    let past = client.consume(0, 1_000_000, 10, Duration::ZERO).await;
    assert!(matches!(past, Err(Error::BadRequest(_))), "{past:?}");

    // A sequenced batch sent again (its answer lost, say) gets its first offsets back and is
    // not appended twice; a number that skips ahead is refused.
    let batch = [NewRecord::new(None, "once-a"), NewRecord::new(None, "once-b")];
    let first = client.produce_sequenced(&batch, Some(2), Some(("acceptance-p", 0))).await?;
    let again = client.produce_sequenced(&batch, Some(2), Some(("acceptance-p", 0))).await?;
    assert_eq!((again.offsets(), first.duplicate, again.duplicate), (first.offsets(), false, true));
    assert_eq!(client.describe().await?.partitions[2].high_watermark, first.offsets()[0] + 2, "appended once");
    let skipped = client.produce_sequenced(&batch, Some(2), Some(("acceptance-p", 5))).await;
    assert!(matches!(skipped, Err(Error::Conflict(_))), "{skipped:?}");

    // Answers over 2 MB (axum's default body limit) still come back whole.
    let big: Vec<NewRecord> = (0..3).map(|i| NewRecord::new(None, format!("{i}").repeat(900 * 1024))).collect();
    let produced = client.produce(&big, Some(1)).await?;
    let fetched = client.consume(1, produced.offsets()[0], 10, Duration::ZERO).await?;
    let lengths: Vec<usize> = fetched.records.iter().map(|r| r.value.len()).collect();
    assert_eq!(lengths, [900 * 1024; 3]);

    // A long poll at the high watermark answers when a record arrives, not before, and an
    // empty one answers when its wait runs out.
    let hw = client.describe().await?.partitions[2].high_watermark;
    let started = std::time::Instant::now();
    let empty = client.consume(2, hw, 10, Duration::from_millis(600)).await?;
    let waited = started.elapsed();
    assert!(empty.records.is_empty() && waited >= Duration::from_millis(550), "{waited:?} {empty:?}");
    let polling = {
        let client = client.clone();
        tokio::spawn(async move { client.consume(2, hw, 10, Duration::from_secs(15)).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    ensure!(!polling.is_finished(), "the long poll answered before any record came");
    let sent = std::time::Instant::now();
    client.produce(&[NewRecord::new(None, "awaited")], Some(2)).await?;
    let fetched = polling.await??;
    assert_eq!(fetched.records.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["awaited"]);
    assert!(sent.elapsed() < Duration::from_secs(10), "answered when the record came: {:?}", sent.elapsed());

    // Every request above was signed; the URL's AWS_IAM auth refuses an unsigned one and one
    // signed with the wrong secret, as AWS does.
    let requests = served.server.requests();
    assert!(requests > 10, "{requests}");
    assert_eq!(served.server.signed_requests(), requests);
    let unsigned = served.client(Auth::None)?.describe().await;
    assert!(matches!(&unsigned, Err(Error::Denied(m)) if m == "Forbidden"), "{unsigned:?}");
    let wrong = served.client(Auth::static_credentials("test", "wrong", None, REGION))?.describe().await;
    assert!(
        matches!(&wrong, Err(Error::Denied(m)) if m.contains("signature we calculated does not match")),
        "{wrong:?}"
    );
    assert_eq!((served.server.requests(), served.server.signed_requests()), (requests + 2, requests));
    Ok(())
}

/// `target/<profile>/adf`, beside the directory of this test's executable.
fn adf_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("adf")).context("no target directory")?;
    if !bin.is_file() {
        bail!("{} is missing: run `cargo build -p adf-cli` first", bin.display());
    }
    Ok(bin)
}

/// `adf` against `served`, with credentials and region from the environment as a user has them.
fn adf(served: &Served, args: &[&str]) -> Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(adf_binary()?);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("ADF_STREAM_URL", served.server.url())
        .env("ADF_STREAM_TOPIC", &served.topic)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true);
    Ok(command)
}

/// Runs `adf args` with `stdin`; its exit code, standard output and standard error.
async fn run(served: &Served, args: &[&str], stdin: &str) -> Result<(i32, String, String)> {
    let mut child = adf(served, args)?.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut input, stdin.as_bytes()).await?;
    drop(input);
    let out = child.wait_with_output().await?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok((out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr)))
}

async fn ok(served: &Served, args: &[&str], stdin: &str) -> Result<String> {
    let (code, out, err) = run(served, args, stdin).await?;
    ensure!(code == 0, "adf {args:?} exited {code}: {err}");
    Ok(out)
}

fn json_lines(out: &str) -> Result<Vec<Value>> {
    out.lines().map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_produces_consumes_tails_and_describes() -> Result<()> {
    let served = Served::start(2).await?;
    let p = partition_for("k", 2);

    // produce: arguments with a key, then standard input without one.
    let out = ok(&served, &["stream", "produce", "--key", "k", "a", "b", "c"], "").await?;
    assert_eq!(out, format!("{p} 0\n{p} 1\n{p} 2\n"));
    let out = ok(&served, &["stream", "produce", "--quiet"], "x\ny\n").await?;
    assert!(out.starts_with("produced 2 records to partition"), "{out}");

    // describe: a table, or the API's JSON.
    let described: Value = serde_json::from_str(&ok(&served, &["stream", "describe", "--json"], "").await?)?;
    let watermarks: Vec<u64> = described["partitions"]
        .as_array()
        .context("partitions")?
        .iter()
        .filter_map(|p| p["high_watermark"].as_u64())
        .collect();
    assert_eq!(watermarks.iter().sum::<u64>(), 5);
    let table = ok(&served, &["stream", "describe"], "").await?;
    assert_eq!(table.lines().last().map(|l| l.split_whitespace().collect::<Vec<_>>()), Some(vec!["total", "5"]));

    // consume: one JSON line per record.
    let p_arg = p.to_string();
    let out = ok(&served, &["stream", "consume", "--partition", &p_arg, "--offset", "1", "--limit", "2"], "").await?;
    let records = json_lines(&out)?;
    let got: Vec<(u64, &str, &str)> = records
        .iter()
        .map(|r| {
            (r["offset"].as_u64().unwrap_or(99), r["key"].as_str().unwrap_or(""), r["value"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(got, [(1, "k", "b"), (2, "k", "c")]);
    assert_eq!(records[0]["partition"], p);
    assert!(records[0]["timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000), "{}", records[0]);

    // A group reads everything once: after --commit, it has nothing left.
    let all = json_lines(&ok(&served, &["stream", "consume", "--group", "g", "--commit"], "").await?)?;
    assert_eq!(all.len(), 5);
    assert!(ok(&served, &["stream", "consume", "--group", "g"], "").await?.is_empty());

    // tail -f prints what arrives, and Ctrl-C ends it cleanly. Caught up, it sends one long
    // poll (after its describe and one consume of each of the 2 partitions) and nothing more
    // while it waits: no sleep loop. The record produced then reaches it long before the
    // poll's 20 s run out.
    let before = served.server.requests();
    let mut tail =
        adf(&served, &["stream", "tail", "-f", "-n", "0"])?.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().context("stdout")?).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while served.server.requests() < before + 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .context("tail sent no long poll")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(served.server.requests(), before + 4, "one long poll in flight, no polling loop");
    let produced = std::time::Instant::now();
    ok(&served, &["stream", "produce", "--key", "k", "late"], "").await?;
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??.context("tail ended")?;
    assert!(produced.elapsed() < Duration::from_secs(10), "the long poll answered when the record came");
    let record: Value = serde_json::from_str(&line)?;
    assert_eq!((&record["value"], &record["offset"]), (&Value::from("late"), &Value::from(3)));
    let pid = tail.id().context("tail's pid")?.to_string();
    ensure!(std::process::Command::new("kill").args(["-INT", &pid]).status()?.success(), "kill -INT failed");
    assert!(tail.wait().await?.success());

    // Errors are one line and exit 1.
    let (code, out, err) = run(&served, &["stream", "consume", "--partition", "9"], "").await?;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("adf: not found: ") && err.lines().count() == 1, "{err}");

    assert_eq!(served.server.signed_requests(), served.server.requests(), "the CLI signs with the AWS chain");
    Ok(())
}
