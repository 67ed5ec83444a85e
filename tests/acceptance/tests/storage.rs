//! The storage resources (`adf_kv_namespace`, `adf_object_bucket`, `adf_cache`) and
//! `adf_function`'s `bindings`, against the emulator with the real CLI and provider binaries:
//! lifecycle (apply, empty plan, import, update, destroy), drift, disappears, refusals that
//! lose nothing, and plan-time diagnostics.

use adf_acceptance::{Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, repo_root, sdk_config, unique_name};
use anyhow::{Context, Result, ensure};

/// moto's account.
const ACCOUNT: &str = "123456789012";

struct Aws {
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
    lambda: aws_sdk_lambda::Client,
}

impl Aws {
    async fn new(endpoint: &str) -> Self {
        let c = sdk_config(endpoint).await;
        Self {
            ddb: aws_sdk_dynamodb::Client::new(&c),
            s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&c).force_path_style(true).build()),
            iam: aws_sdk_iam::Client::new(&c),
            lambda: aws_sdk_lambda::Client::new(&c),
        }
    }

    async fn bucket_exists(&self, bucket: &str) -> bool {
        self.s3.head_bucket().bucket(bucket).send().await.is_ok()
    }

    async fn table_exists(&self, table: &str) -> bool {
        self.ddb.describe_table().table_name(table).send().await.is_ok()
    }

    /// The bucket's versioning status, from the answer's text: moto names its root element
    /// `GetBucketVersioningResponse`, which the SDK refuses to parse.
    async fn versioning(&self, bucket: &str) -> Result<String> {
        let e = match self.s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => return Ok(out.status().map(|s| s.as_str().to_string()).unwrap_or_default()),
            Err(e) => e,
        };
        let body = e.raw_response().and_then(|r| r.body().bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
        let status = body.as_deref().and_then(|b| b.split("<Status>").nth(1)).and_then(|s| s.split('<').next());
        status.map(str::to_string).ok_or_else(|| e.into())
    }

    /// The managed role's `adf-extra` policy of function `name`, decoded.
    async fn extra_policy(&self, name: &str) -> Result<Option<serde_json::Value>> {
        match self.iam.get_role_policy().role_name(format!("{name}-role")).policy_name("adf-extra").send().await {
            Ok(p) => {
                let doc = percent_encoding::percent_decode_str(&p.policy_document).decode_utf8_lossy().into_owned();
                Ok(Some(serde_json::from_str(&doc)?))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The example of resource `kind`, with its store names replaced by `name`.
fn example(kind: &str, names: &[(&str, &str)]) -> Result<String> {
    let path = repo_root().join(format!("examples/terraform/resources/{kind}/resource.tf"));
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let lines: Vec<String> = hcl
        .lines()
        .map(|l| {
            let quoted = |n: &str| format!("\"{n}\"");
            match names.iter().find(|(from, _)| l.trim_start().starts_with("name ") && l.contains(&quoted(from))) {
                Some((from, to)) => l.replace(&quoted(from), &quoted(to)),
                None => l.to_string(),
            }
        })
        .collect();
    Ok(format!("{PROVIDER}\n{}\n", lines.join("\n")))
}

fn reimport(ws: &Workspace, address: &str, kind: &str, id: &str) -> Result<()> {
    ws.run(&["state", "rm", address])?.ok()?;
    let args = adf_acceptance::example_import_args(kind, id)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lifecycle_kv_namespace() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("kv");
    let (table, bucket) = (format!("adf-kv-{name}"), format!("adf-kv-{name}-{ACCOUNT}"));
    let address = "adf_kv_namespace.sessions";
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&example("adf_kv_namespace", &[("sessions", &name)])?)?;
    ws.apply()?;

    // The table has the runtime's keys and TTL; the bucket is private and encrypted.
    let t = aws.ddb.describe_table().table_name(&table).send().await?;
    let keys: Vec<&str> =
        t.table().map(|t| t.key_schema().iter().map(|k| k.attribute_name()).collect()).unwrap_or_default();
    ensure!(keys == ["ns", "k"], "{keys:?}");
    let ttl = aws.ddb.describe_time_to_live().table_name(&table).send().await?;
    ensure!(ttl.time_to_live_description().and_then(|d| d.attribute_name()) == Some("exp"));
    let block = aws.s3.get_public_access_block().bucket(&bucket).send().await?;
    let block = block.public_access_block_configuration().context("no public access block")?;
    ensure!(block.block_public_acls() == Some(true) && block.restrict_public_buckets() == Some(true));
    ensure!(aws.s3.get_bucket_encryption().bucket(&bucket).send().await.is_ok());
    let state = ws.state_values(address)?;
    ensure!(state["binding"]["kind"] == "kv" && state["binding"]["access"] == "write", "{state}");
    ensure!(state["binding"]["bucket"] == bucket.as_str() && state["table_name"] == table.as_str(), "{state}");
    let policy: serde_json::Value = serde_json::from_str(state["read_policy_json"].as_str().unwrap_or("{}"))?;
    let text = policy.to_string();
    ensure!(text.contains("dynamodb:Query") && !text.contains("PutItem") && !text.contains("\"*\""), "{text}");
    ensure!(state["client_config"]["ADF_STORAGE_BINDINGS"].as_str().is_some_and(|e| e.contains(&table)));
    ws.assert_empty_plan()?;

    // Import gives the same state.
    reimport(&ws, address, "adf_kv_namespace", &name)?;
    ensure!(ws.state_values(address)? == state, "imported state differs");
    ws.assert_empty_plan()?;

    // Drift: recovery turned off behind Terraform's back shows in the plan.
    let off = aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(false)
        .build()?;
    aws.ddb.update_continuous_backups().table_name(&table).point_in_time_recovery_specification(off).send().await?;
    let plan = ws.plan_code()?;
    ensure!(plan.code == 2 && plan.stdout.contains("point_in_time_recovery"), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // A large value in the bucket: turning large_values off is refused and loses nothing.
    aws.s3.put_object().bucket(&bucket).key(format!("kv/{name}/x")).body(b"v".to_vec().into()).send().await?;
    ws.write(&example("adf_kv_namespace", &[("sessions", &name)])?.replace("large_values           = true", ""))?;
    let refused = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    ensure!(refused.code != 0 && refused.stderr.contains("still holds large values"), "{}", refused.stderr);
    ensure!(aws.bucket_exists(&bucket).await);
    aws.s3.delete_object().bucket(&bucket).key(format!("kv/{name}/x")).send().await?;
    ws.apply()?;
    ensure!(!aws.bucket_exists(&bucket).await, "the bucket outlived large_values");
    let state = ws.state_values(address)?;
    ensure!(state["bucket_name"].is_null() && state["binding"]["bucket"].is_null(), "{state}");
    ws.assert_empty_plan()?;

    // Disappears: a deleted table is planned to be made again.
    aws.ddb.delete_table().table_name(&table).send().await?;
    let plan = ws.plan_code()?;
    ensure!(plan.code == 2 && plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    ws.destroy()?;
    ensure!(!aws.table_exists(&table).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lifecycle_object_bucket() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("obj");
    let bucket = format!("adf-objects-{name}-{ACCOUNT}");
    let address = "adf_object_bucket.uploads";
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&example("adf_object_bucket", &[("uploads", &name)])?)?;
    ws.apply()?;

    let cors = aws.s3.get_bucket_cors().bucket(&bucket).send().await?;
    let rule = cors.cors_rules().first().context("no CORS rule")?;
    ensure!(rule.allowed_origins() == ["https://example.com"], "{rule:?}");
    ensure!(rule.allowed_methods() == ["GET", "PUT", "HEAD"] && rule.expose_headers() == ["ETag"], "{rule:?}");
    ensure!(aws.versioning(&bucket).await? == "Enabled");
    let lifecycle = aws.s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await?;
    let r = lifecycle.rules().first().context("no lifecycle rule")?;
    ensure!(r.expiration().and_then(|e| e.days()) == Some(365), "{r:?}");
    ensure!(r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()) == Some(2), "{r:?}");
    let block = aws.s3.get_public_access_block().bucket(&bucket).send().await?;
    let block = block.public_access_block_configuration().context("no public access block")?;
    ensure!(block.block_public_policy() == Some(true) && block.ignore_public_acls() == Some(true));
    let state = ws.state_values(address)?;
    ensure!(state["binding"]["kind"] == "object" && state["bucket_arn"] == format!("arn:aws:s3:::{bucket}"));
    let write: serde_json::Value = serde_json::from_str(state["policy_json"].as_str().unwrap_or("{}"))?;
    ensure!(write.to_string().contains(&format!("arn:aws:s3:::{bucket}/*")), "{write}");
    ws.assert_empty_plan()?;

    reimport(&ws, address, "adf_object_bucket", &name)?;
    ensure!(ws.state_values(address)? == state, "imported state differs");
    ws.assert_empty_plan()?;

    // Drift: CORS removed by hand is planned back.
    aws.s3.delete_bucket_cors().bucket(&bucket).send().await?;
    let plan = ws.plan_code()?;
    ensure!(plan.code == 2 && plan.stdout.contains("cors"), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Update in place: another origin, no versioning, no expiry.
    let updated = example("adf_object_bucket", &[("uploads", &name)])?
        .replace("https://example.com", "https://app.example.com")
        .replace("versioning                   = true", "")
        .replace("expire_after_days            = 365", "");
    ws.write(&updated)?;
    let plan = ws.plan_code()?;
    ensure!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let cors = aws.s3.get_bucket_cors().bucket(&bucket).send().await?;
    ensure!(
        cors.cors_rules().first().map(|r| r.allowed_origins()) == Some(&["https://app.example.com".to_string()][..])
    );
    ensure!(aws.versioning(&bucket).await? == "Suspended");
    ws.assert_empty_plan()?;

    // Destroy refuses while objects remain, loses nothing, and force_destroy empties it.
    aws.s3.put_object().bucket(&bucket).key("a.txt").body(b"a".to_vec().into()).send().await?;
    let refused = ws.run(&["destroy", "-auto-approve", "-no-color"])?;
    ensure!(refused.code != 0 && refused.stderr.contains("still holds objects"), "{}", refused.stderr);
    ensure!(aws.s3.head_object().bucket(&bucket).key("a.txt").send().await.is_ok());
    ws.write(
        &updated
            .replace("abort_incomplete_upload_days = 2", "abort_incomplete_upload_days = 2\n  force_destroy = true"),
    )?;
    ws.apply()?;
    ws.destroy()?;
    ensure!(!aws.bucket_exists(&bucket).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lifecycle_cache_dynamodb_redis_and_both() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let (api, hot) = (unique_name("api"), unique_name("hot"));
    let ws = Workspace::new(emu.endpoint())?.with_env("TF_VAR_redis_token", "s3cret-token");
    ws.write(&example("adf_cache", &[("api", &api), ("hot", &hot)])?)?;
    let plan = ws.run(&["plan", "-no-color"])?.ok()?;
    ensure!(!plan.stdout.contains("s3cret-token"), "the token shows in the plan:\n{}", plan.stdout);
    ws.apply()?;
    ensure!(aws.table_exists(&format!("adf-cache-{api}")).await && aws.table_exists(&format!("adf-cache-{hot}")).await);
    let ttl = aws.ddb.describe_time_to_live().table_name(format!("adf-cache-{api}")).send().await?;
    ensure!(ttl.time_to_live_description().and_then(|d| d.attribute_name()) == Some("exp"));
    let state = ws.state_values("adf_cache.hot")?;
    ensure!(state["binding"]["redis_url"] == "rediss://master.hot.abc123.use1.cache.amazonaws.com:6379", "{state}");
    ensure!(state["binding"]["redis_auth_token"] == "s3cret-token" && state["dynamodb"] == true, "{state}");
    ensure!(ws.state_values("adf_cache.api")?["binding"]["redis_url"].is_null());
    ws.assert_empty_plan()?;

    reimport(&ws, "adf_cache.api", "adf_cache", &api)?;
    ws.assert_empty_plan()?;

    // Redis only: the table goes.
    ws.write(&example("adf_cache", &[("api", &api), ("hot", &hot)])?.replace("dynamodb         = true", ""))?;
    ws.apply()?;
    ensure!(!aws.table_exists(&format!("adf-cache-{hot}")).await, "a Redis-only cache keeps no table");
    ensure!(ws.state_values("adf_cache.hot")?["table_name"].is_null());
    ws.assert_empty_plan()?;

    // Disappears: the table of the DynamoDB cache.
    aws.ddb.delete_table().table_name(format!("adf-cache-{api}")).send().await?;
    let plan = ws.plan_code()?;
    ensure!(plan.code == 2 && plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    ws.destroy()?;
    ensure!(!aws.table_exists(&format!("adf-cache-{api}")).await);
    Ok(())
}

/// A zip holding a `bootstrap` (the function is deployed, not run, here).
fn bootstrap_zip(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let path = dir.join("bootstrap.zip");
    std::fs::write(&path, adf_acceptance::bootstrap_zip()?)?;
    Ok(path)
}

fn function_hcl(kv: &str, bucket: &str, function: &str, zip: &std::path::Path, bindings: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "adf_kv_namespace" "sessions" {{
  name         = "{kv}"
  large_values = true
}}

resource "adf_object_bucket" "uploads" {{
  name = "{bucket}"
}}

resource "adf_function" "bot" {{
  name        = "{function}"
  filename    = "{zip}"
  runtime     = "provided.al2023"
  handler     = "bootstrap"
  environment = {{ LOG_LEVEL = "info" }}
  bindings    = {{{bindings}}}
}}
"#,
        zip = zip.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lifecycle_function_bindings_grant_and_revoke() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let (kv, bucket, function) = (unique_name("kv"), unique_name("up"), unique_name("bot"));
    let dir = tempfile::tempdir()?;
    let zip = bootstrap_zip(dir.path())?;
    let ws = Workspace::new(emu.endpoint())?;
    let both = "\n    sessions = adf_kv_namespace.sessions.binding\n    uploads  = merge(adf_object_bucket.uploads.binding, { access = \"read\" })\n  ";
    ws.write(&function_hcl(&kv, &bucket, &function, &zip, both))?;
    ws.apply()?;

    // The role grants exactly the bound stores; read-only where bound read-only.
    let policy = aws.extra_policy(&function).await?.context("no bindings policy")?;
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let sid = |s: &str| statements.iter().find(|x| x["Sid"] == s).cloned();
    let kv_write = sid("SessionsKvWrite").context("no KV statement")?;
    ensure!(
        kv_write["Resource"] == serde_json::json!([format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/adf-kv-{kv}")])
    );
    let blobs = sid("SessionsKvBlobsWrite").context("no KV blob statement")?;
    ensure!(
        blobs["Resource"] == serde_json::json!([format!("arn:aws:s3:::adf-kv-{kv}-{ACCOUNT}/kv/{kv}/*")]),
        "{blobs}"
    );
    let objects = sid("UploadsObjectsRead").context("no read-only objects statement")?;
    ensure!(objects["Action"] == serde_json::json!(["s3:GetObject"]), "{objects}");
    ensure!(sid("UploadsObjectsWrite").is_none(), "a read binding must not write: {policy}");

    // The settings are in the function's environment, beside the user's; the state shows them apart.
    let config = aws.lambda.get_function_configuration().function_name(&function).send().await?;
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    ensure!(env.get("LOG_LEVEL").map(String::as_str) == Some("info"));
    let bindings: serde_json::Value =
        serde_json::from_str(env.get("ADF_STORAGE_BINDINGS").context("no bindings variable")?)?;
    ensure!(
        bindings["sessions"]["table"] == format!("adf-kv-{kv}") && bindings["uploads"]["access"] == "read",
        "{bindings}"
    );
    let state = ws.state_values("adf_function.bot")?;
    ensure!(state["environment"] == serde_json::json!({ "LOG_LEVEL": "info" }), "{state}");
    ensure!(state["bindings"]["uploads"]["access"] == "read", "{state}");
    ws.assert_empty_plan()?;

    // Drift: the variable edited by hand shows as a change of bindings.
    let mut edited = env.clone();
    edited.insert("ADF_STORAGE_BINDINGS".into(), "{}".into());
    let vars = aws_sdk_lambda::types::Environment::builder().set_variables(Some(edited)).build();
    aws.lambda.update_function_configuration().function_name(&function).environment(vars).send().await?;
    let plan = ws.plan_code()?;
    ensure!(plan.code == 2 && plan.stdout.contains("bindings"), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Removing a binding removes its statements and settings; removing all removes the policy.
    ws.write(&function_hcl(&kv, &bucket, &function, &zip, "\n    sessions = adf_kv_namespace.sessions.binding\n  "))?;
    ws.apply()?;
    let policy = aws.extra_policy(&function).await?.context("no bindings policy")?.to_string();
    ensure!(policy.contains("SessionsKvWrite") && !policy.contains("Uploads"), "{policy}");
    ws.write(&function_hcl(&kv, &bucket, &function, &zip, "").replace("bindings    = {}", ""))?;
    ws.apply()?;
    ensure!(aws.extra_policy(&function).await?.is_none(), "the bindings policy outlived its bindings");
    let config = aws.lambda.get_function_configuration().function_name(&function).send().await?;
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    ensure!(!env.contains_key("ADF_STORAGE_BINDINGS"), "{env:?}");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

#[test]
fn storage_bad_input_is_a_plan_time_diagnostic_on_the_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let binding = r#"{ kind = "kv", access = "admin", name = "s", table = "t", table_arn = "arn:t", bucket = null, bucket_arn = null, kms_key_arn = null, redis_url = null, redis_auth_token = null }"#;
    let cases = [
        ("resource \"adf_kv_namespace\" \"k\" {\n  name = \"Sessions_1\"\n}", "Invalid namespace name", "name"),
        (
            "resource \"adf_object_bucket\" \"b\" {\n  name = \"b\"\n  cors = { allow_origins = [] }\n}",
            "No CORS origin",
            "cors",
        ),
        (
            "resource \"adf_object_bucket\" \"b\" {\n  name = \"b\"\n  cors = { allow_origins = [\"*\"], allow_methods = [\"PATCH\"] }\n}",
            "Invalid CORS method",
            "cors",
        ),
        (
            "resource \"adf_cache\" \"c\" {\n  name = \"c\"\n  dynamodb = false\n}",
            "needs somewhere to keep entries",
            "dynamodb",
        ),
        (
            "resource \"adf_cache\" \"c\" {\n  name = \"c\"\n  redis_endpoint = \"cache.local\"\n}",
            "expected host:port",
            "redis_endpoint",
        ),
        (
            "resource \"adf_kv_namespace\" \"k\" {\n  name = \"k\"\n  kms_key_arn = \"alias/mine\"\n}",
            "Invalid kms_key_arn",
            "kms_key_arn",
        ),
    ];
    let function = format!(
        "resource \"adf_function\" \"f\" {{\n  name = \"f\"\n  filename = \"f.zip\"\n  bindings = {{ s = {binding} }}\n}}"
    );
    for (body, message, attribute) in
        cases.iter().map(|(b, m, a)| (b.to_string(), *m, *a)).chain([(function, "Invalid binding access", "bindings")])
    {
        ws.write(&format!("{PROVIDER}\n{body}\n"))?;
        ws.assert_plan_error(message, attribute)?;
    }
    Ok(())
}

/// ARNs take the partition of the caller identity: in a China region, `arn:aws-cn:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arns_use_the_callers_partition() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("cn");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        "{}\nresource \"adf_object_bucket\" \"cn\" {{\n  name = \"{name}\"\n}}\n",
        PROVIDER.replace("provider \"adf\" {}", "provider \"adf\" {\n  region = \"cn-north-1\"\n}")
    ))?;
    ws.apply()?;
    let state = ws.state_values("adf_object_bucket.cn")?;
    let arn = format!("arn:aws-cn:s3:::adf-objects-{name}-{ACCOUNT}");
    ensure!(state["bucket_arn"] == arn, "{}", state["bucket_arn"]);
    let policy = state["policy_json"].as_str().unwrap_or_default();
    ensure!(policy.contains(&format!("{arn}/*")) && !policy.contains("arn:aws:"), "{policy}");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}
