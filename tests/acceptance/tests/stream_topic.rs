//! `adf_stream_topic` against the emulator with the real terraform and provider binaries: the
//! lifecycle (apply, empty plan, import, partitions up, partitions down refused, drift,
//! destroy refused while segments remain, force_destroy), a topic in a bucket of the user's,
//! disappears, bad input, and the HTTP API (every route and error status) served by the
//! deployed zip under the local Lambda runner behind a local Function URL.

use std::sync::Arc;

use adf_acceptance::function_url::{FunctionUrlServer, test_credentials};
use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::runtime_zips::stream_lambda;
use adf_acceptance::{Emulator, PROVIDER_BLOCK, REGION, Workspace, repo_root, sdk_config, set_attributes, unique_name};
use adf_stream_client::{Scope, sigv4_headers};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const ADDRESS: &str = "adf_stream_topic.orders";

/// The first resource of the example `resource.tf`, named `name`, with `settings` added.
fn config(name: &str, settings: &[&str]) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_stream_topic/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let end = hcl.find("\n}\n").context("no resource block")?;
    let start = hcl.find("resource \"adf_stream_topic\" \"orders\"").context("no orders resource")?;
    let mut block: Vec<String> =
        hcl[start..end].replace("\"orders\"", &format!("\"{name}\"")).lines().map(str::to_string).collect();
    block[0] = "resource \"adf_stream_topic\" \"orders\" {".into();
    set_attributes(&mut block, settings);
    Ok(format!("{PROVIDER_BLOCK}\n{}\n}}\n", block.join("\n")))
}

struct Aws {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
}

impl Aws {
    async fn new(endpoint: &str) -> Self {
        let c = sdk_config(endpoint).await;
        Self {
            s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&c).force_path_style(true).build()),
            ddb: aws_sdk_dynamodb::Client::new(&c),
            lambda: aws_sdk_lambda::Client::new(&c),
            iam: aws_sdk_iam::Client::new(&c),
        }
    }

    async fn bucket_exists(&self, bucket: &str) -> bool {
        self.s3.head_bucket().bucket(bucket).send().await.is_ok()
    }

    async fn lifecycle_days(&self, bucket: &str, rule: &str) -> Result<Option<i32>> {
        let out = self
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .context("GetBucketLifecycleConfiguration")?;
        Ok(out.rules().iter().find(|r| r.id() == Some(rule)).and_then(|r| r.expiration().and_then(|e| e.days())))
    }

    async fn environment(&self, function: &str) -> Result<Value> {
        let c = self.lambda.get_function_configuration().function_name(function).send().await?;
        Ok(json!(c.environment().and_then(|e| e.variables()).cloned().unwrap_or_default()))
    }
}

/// The deployed stream Lambda, running locally behind a local Function URL.
struct Served {
    _runner: Arc<LambdaRunner>,
    server: FunctionUrlServer,
    http: reqwest::Client,
}

impl Served {
    async fn start(aws: &Aws, emu: &Emulator, function: &str) -> Result<Self> {
        // The zip terraform deployed is the one beside the provider binary: `deployed` checks
        // that Lambda's CodeSha256 matches it.
        let spec = deployed(&aws.lambda, function, &stream_lambda()?, emu.endpoint()).await?;
        let runner = Arc::new(LambdaRunner::start(&spec).await?);
        let server = FunctionUrlServer::start(Arc::clone(&runner)).await?;
        Ok(Self { _runner: runner, server, http: reqwest::Client::new() })
    }

    /// A request signed with the test credentials, as the URL's `AWS_IAM` auth wants.
    async fn call(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let url = format!("{}{}", self.server.url(), path_and_query.trim_start_matches('/'));
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if bytes.is_empty() { &[] } else { &[("content-type", "application/json")] };
        let now = std::time::SystemTime::now();
        let auth = sigv4_headers(
            &test_credentials("test"),
            Scope::lambda(REGION),
            now,
            method,
            &url,
            headers,
            bytes.as_bytes(),
        )?;
        let mut req = self.http.request(method.parse()?, url);
        for (k, v) in headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain(auth) {
            req = req.header(k, v);
        }
        let resp = req.body(bytes).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).with_context(|| format!("not JSON ({status}): {text}"))?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_apply_serve_import_grow_drift_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    stream_lambda()?;
    let name = unique_name("topic");
    let function = format!("adf-stream-{name}");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. apply: a private, encrypted, TLS-only bucket with lifecycle retention, the table with
    // TTL, the Lambda with a least-privilege role and an AWS_IAM Function URL.
    ws.write(&config(&name, &["partitions = 2", "retention_days = 3"])?)?;
    ws.apply()?;
    let applied = ws.state_values(ADDRESS)?;
    let bucket = applied["bucket_name"].as_str().context("bucket_name")?.to_string();
    assert_eq!(bucket, format!("adf-stream-{name}-123456789012"));
    assert_eq!(applied["table_name"], function);
    assert!(applied["endpoint"].as_str().is_some_and(|u| u.starts_with("http")), "{applied}");
    let pab = aws.s3.get_public_access_block().bucket(&bucket).send().await?;
    let pab = pab.public_access_block_configuration().context("no public access block")?;
    assert_eq!(
        (pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = aws.s3.get_bucket_encryption().bucket(&bucket).send().await?;
    let algorithm = enc
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().clone());
    assert_eq!(algorithm, Some(aws_sdk_s3::types::ServerSideEncryption::Aes256));
    // moto enforces bucket policies and its endpoint is plain HTTP: the TLS-only policy is left
    // out there (with a plan warning); a unit test checks the policy itself.
    assert!(aws.s3.get_bucket_policy().bucket(&bucket).send().await.is_err(), "no policy on http://");
    assert_eq!(aws.lifecycle_days(&bucket, &function).await?, Some(5), "3 days + 2 of margin");
    let ttl = aws.ddb.describe_time_to_live().table_name(&function).send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("expires"));
    let url = aws.lambda.get_function_url_config().function_name(&function).send().await?;
    assert_eq!(url.auth_type.as_str(), "AWS_IAM");
    let role = format!("{function}-role");
    let extra = aws.iam.get_role_policy().role_name(&role).policy_name("adf-extra").send().await?;
    let doc = percent_encoding::percent_decode_str(&extra.policy_document).decode_utf8()?.to_string();
    assert!(doc.contains(&format!("arn:aws:s3:::{bucket}/{name}/*")), "{doc}");
    assert!(!doc.contains("\"*\""), "no wildcard resources or actions: {doc}");
    assert_eq!(aws.environment(&function).await?["ADF_PARTITIONS"], "2");

    // 2. a second plan is empty
    ws.assert_empty_plan()?;

    // 3. the deployed zip serves the HTTP API (every route: `http_api_through_the_deployed_lambda`)
    let served = Served::start(&aws, &emu, &function).await?;
    let (status, produced) =
        served.call("POST", &format!("/topics/{name}/produce"), Some(json!({"value": "one"}))).await?;
    assert_eq!(status, 200, "{produced}");
    drop(served);

    // 4. state rm + import gives the same state
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    ws.run(&["import", "-no-color", ADDRESS, &name])?.ok()?;
    let imported = ws.state_values(ADDRESS)?;
    for k in [
        "partitions",
        "retention_days",
        "bucket_name",
        "endpoint",
        "function_arn",
        "role_arn",
        "source_code_hash",
        "prefix",
        "auth_type",
        "memory_size",
    ] {
        assert_eq!(imported[k], applied[k], "{k} differs after import");
    }
    ws.assert_empty_plan()?;

    // 5. partitions up: an in-place update that reaches the Lambda
    ws.write(&config(&name, &["partitions = 4", "retention_days = 3"])?)?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["change"]["actions"], json!(["update"]), "{changes:?}");
    ws.apply()?;
    assert_eq!(aws.environment(&function).await?["ADF_PARTITIONS"], "4");

    // 6. partitions down: refused at plan time, on the attribute
    ws.write(&config(&name, &["partitions = 2", "retention_days = 3"])?)?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("Partitions cannot decrease") && out.stderr.contains("partitions"), "{}", out.stderr);
    ws.write(&config(&name, &["partitions = 4", "retention_days = 3"])?)?;
    ws.assert_empty_plan()?;

    // 7. drift: memory changed and the lifecycle rule removed outside terraform
    aws.lambda.update_function_configuration().function_name(&function).memory_size(1024).send().await?;
    aws.s3.delete_bucket_lifecycle().bucket(&bucket).send().await?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    let after = &changes[0]["change"]["after"];
    let before = &changes[0]["change"]["before"];
    assert_eq!((before["memory_size"].clone(), after["memory_size"].clone()), (json!(1024), json!(512)));
    assert_eq!((before["retention_days"].clone(), after["retention_days"].clone()), (json!(0), json!(3)));
    ws.apply()?;
    assert_eq!(aws.lifecycle_days(&bucket, &function).await?, Some(5));
    ws.assert_empty_plan()?;

    // 8. destroy refuses while segments remain, and deletes nothing
    let out = ws.run(&["destroy", "-auto-approve", "-no-color"])?;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("still holds segments"), "{}", out.stderr);
    assert!(aws.bucket_exists(&bucket).await);
    assert!(aws.lambda.get_function().function_name(&function).send().await.is_ok());

    // 9. with force_destroy, destroy removes everything
    ws.write(&config(&name, &["partitions = 4", "retention_days = 3", "force_destroy = true"])?)?;
    ws.apply()?;
    ws.destroy()?.ok()?;
    assert!(!aws.bucket_exists(&bucket).await);
    assert!(aws.lambda.get_function().function_name(&function).send().await.is_err());
    assert!(aws.ddb.describe_table().table_name(&function).send().await.is_err());
    if aws.iam.get_role().role_name(&role).send().await.is_ok() {
        bail!("the managed role outlived the topic");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_of_the_users_keeps_its_rules_and_outlives_the_topic() -> Result<()> {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    };
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    stream_lambda()?;
    let name = unique_name("mine");
    let bucket = unique_name("lake");
    aws.s3.create_bucket().bucket(&bucket).send().await?;
    let theirs = LifecycleRule::builder()
        .id("logs")
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(90).build())
        .build()?;
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(theirs).build()?)
        .send()
        .await?;

    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &[&format!("bucket = \"{bucket}\"")])?)?;
    ws.apply()?;
    let state = ws.state_values(ADDRESS)?;
    assert_eq!(state["bucket_name"], bucket.as_str());
    assert_eq!(state["prefix"], "adf-streams/");
    let rule = format!("adf-stream-{name}");
    assert_eq!(aws.lifecycle_days(&bucket, &rule).await?, Some(32), "30 days + 2 of margin");
    assert_eq!(aws.lifecycle_days(&bucket, "logs").await?, Some(90), "the user's rule is kept");
    let env = aws.environment(&format!("adf-stream-{name}")).await?;
    assert_eq!((env["ADF_BUCKET"].as_str(), env["ADF_PREFIX"].as_str()), (Some(bucket.as_str()), Some("adf-streams/")));
    ws.assert_empty_plan()?;

    // Import tells the user's bucket from a managed one by the owner tag.
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    ws.run(&["import", "-no-color", ADDRESS, &name])?.ok()?;
    assert_eq!(ws.state_values(ADDRESS)?["bucket"], bucket.as_str());
    ws.assert_empty_plan()?;

    // Segments in a bucket of the user's do not block destroy; the bucket and its rule stay.
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(format!("adf-streams/{name}/0/x.seg"))
        .body(b"x".to_vec().into())
        .send()
        .await?;
    ws.destroy()?;
    assert!(aws.bucket_exists(&bucket).await);
    assert_eq!(aws.lifecycle_days(&bucket, &rule).await?, None, "our rule is removed");
    assert_eq!(aws.lifecycle_days(&bucket, "logs").await?, Some(90));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_function_is_recreated_and_the_rest_kept() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    stream_lambda()?;
    let name = unique_name("gone");
    let function = format!("adf-stream-{name}");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &["force_destroy = true"])?)?;
    ws.apply()?;
    let bucket = ws.state_values(ADDRESS)?["bucket_name"].as_str().unwrap_or_default().to_string();
    aws.lambda.delete_function().function_name(&function).send().await?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    assert_eq!(changes[0]["change"]["actions"], json!(["update"]), "{changes:?}");
    // The bucket and table still exist and carry the owner tag: the update keeps them.
    ws.apply()?;
    assert_eq!(ws.state_values(ADDRESS)?["bucket_name"], bucket.as_str());
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_plan_time_error_on_the_attribute() -> Result<()> {
    let emu = Emulator::start()?;
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config("Orders_1", &["partitions = 2000", "retention_days = 0", "auth_type = \"OPEN\""])?)?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1);
    for (attribute, summary) in [
        ("name", "Invalid topic name"),
        ("partitions", "Invalid partitions"),
        ("retention_days", "Invalid retention_days"),
        ("auth_type", "Invalid auth_type"),
    ] {
        assert!(out.stderr.contains(summary), "{summary} missing:\n{}", out.stderr);
        assert!(out.stderr.contains(&format!("  {attribute}")), "{attribute} not pointed at:\n{}", out.stderr);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_through_the_deployed_lambda() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    stream_lambda()?;
    let name = unique_name("http");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &["partitions = 2", "force_destroy = true"])?)?;
    ws.apply()?;
    let served = Served::start(&aws, &emu, &format!("adf-stream-{name}")).await?;
    let base = format!("/topics/{name}");

    // The seed's shape: one record.
    let (status, one) =
        served.call("POST", &format!("{base}/produce"), Some(json!({"key": "a", "value": "first"}))).await?;
    assert_eq!(status, 200, "{one}");
    let p = one["partition"].as_u64().context("partition")?;
    assert_eq!(one["offset"], 0);

    // A batch to the same partition: dense offsets after the first.
    let records: Vec<Value> = (0..5).map(|i| json!({"key": "a", "value": {"n": i}})).collect();
    let (status, batch) =
        served.call("POST", &format!("{base}/produce"), Some(json!({"partition": p, "records": records}))).await?;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["offsets"], json!([1, 2, 3, 4, 5]));

    let (status, got) = served.call("GET", &format!("{base}/consume?partition={p}&offset=1&limit=3"), None).await?;
    assert_eq!(status, 200, "{got}");
    let offsets: Vec<u64> =
        got["records"].as_array().context("records")?.iter().filter_map(|r| r["offset"].as_u64()).collect();
    assert_eq!(offsets, [1, 2, 3]);
    assert_eq!(got["records"][0]["value"], "{\"n\":0}");
    assert_eq!((got["next_offset"].clone(), got["high_watermark"].clone()), (json!(4), json!(6)));

    // Consumer groups: commit, resume from the commit, never backwards.
    let group = format!("{base}/groups/billing");
    let (status, _) =
        served.call("POST", &format!("{group}/commit"), Some(json!({"partition": p, "offset": 4}))).await?;
    assert_eq!(status, 200);
    let (_, from_group) = served.call("GET", &format!("{group}/consume?partition={p}"), None).await?;
    assert_eq!(from_group["records"][0]["offset"], 4);
    let (status, stale) =
        served.call("POST", &format!("{group}/commit"), Some(json!({"partition": p, "offset": 2}))).await?;
    assert_eq!(status, 409, "{stale}");

    let (status, described) = served.call("GET", &base, None).await?;
    assert_eq!(status, 200);
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(described["partitions"][p as usize]["high_watermark"], 6);

    // One request for both partitions: one segment, each record placed in its own partition.
    let q = 1 - p;
    let spread = json!({"records": [
        {"partition": p, "value": "p-first"},
        {"partition": q, "value": "q-first"},
        {"partition": p, "value": "p-second"},
    ]});
    let (status, many) = served.call("POST", &format!("{base}/produce"), Some(spread)).await?;
    assert_eq!(status, 200, "{many}");
    let placed: Vec<(u64, u64)> = many["records"]
        .as_array()
        .context("records")?
        .iter()
        .filter_map(|r| Some((r["partition"].as_u64()?, r["offset"].as_u64()?)))
        .collect();
    assert_eq!(placed, [(p, 6), (q, 0), (p, 7)]);
    assert_eq!(many["partitions"].as_array().map(Vec::len), Some(2));
    assert!(many.get("partition").is_none(), "no single partition to name: {many}");
    let (_, got) = served.call("GET", &format!("{base}/consume?partition={q}&offset=0"), None).await?;
    assert_eq!(got["records"][0]["value"], "q-first");
    let (_, got) = served.call("GET", &format!("{base}/consume?partition={p}&offset=6"), None).await?;
    let values: Vec<&str> =
        got["records"].as_array().context("records")?.iter().filter_map(|r| r["value"].as_str()).collect();
    assert_eq!(values, ["p-first", "p-second"]);

    // Every error is JSON with a message and the right status.
    let too_big = json!({"value": "x".repeat(adf_stream::MAX_RECORD_BYTES + 1)});
    let cases = [
        ("GET", "/topics/nope/consume?partition=0&offset=0".to_string(), None, 404),
        ("GET", format!("{base}/consume?partition=7&offset=0"), None, 404),
        ("GET", format!("{base}/consume?partition=0&offset=99"), None, 400),
        ("GET", format!("{base}/consume?partition=0"), None, 400),
        ("POST", format!("{base}/produce"), Some(json!({"nothing": true})), 400),
        ("POST", format!("{base}/produce"), Some(too_big), 413),
        // A retry of a keyless record could land elsewhere: a sequenced one needs a partition.
        (
            "POST",
            format!("{base}/produce"),
            Some(json!({"records": [{"value": "v"}], "producer_id": "p", "sequence": 0})),
            400,
        ),
        ("DELETE", base.clone(), None, 405),
        ("GET", format!("{base}/produce"), None, 405),
        ("POST", format!("{base}/groups/a%23b/commit"), Some(json!({"partition": 0, "offset": 0})), 400),
        ("GET", format!("{base}/groups/has%20space/consume?partition=0"), None, 400),
    ];
    for (method, path, body, want) in cases {
        let (status, answer) = served.call(method, &path, body).await?;
        assert_eq!(status, want, "{method} {path}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    drop(served);
    ws.destroy()?;
    Ok(())
}
