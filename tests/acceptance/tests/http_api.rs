//! `adf_http_api` against the emulator with the real CLI and provider binaries: the example
//! applied (with a second function), what API Gateway and Lambda hold checked, the routes called
//! end to end through the local API server and runner (the deployed zips answering), an empty
//! second plan, import, an update that drops a route and its function's permission, drift,
//! disappears, destroy, and plan-time diagnostics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use adf_acceptance::function_url::{ApiRoute, FunctionUrlServer, UrlAuth, test_credentials};
use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::{
    Emulator, PROVIDER_BLOCK as PROVIDER, REGION, Workspace, example_import_args, repo_root, sdk_config, unique_name,
};
use adf_stream_client::{Scope, sigv4_headers};
use anyhow::{Context, Result, ensure};
use serde_json::Value;

const ADDRESS: &str = "adf_http_api.orders";

/// The example, with unique names, the Go hello world as the code, and a second function on
/// `GET /admin` when `admin`.
fn example(api: &str, function: &str, admin: bool) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_http_api/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let go = repo_root().join("tests/acceptance/fixtures/hello-go");
    let mut hcl = hcl
        .replace("\"${path.module}/api\"", &format!("{:?}", go.display().to_string()))
        .replace("\"orders-api\"", &format!("\"{function}\""))
        .replace("name = \"orders\"", &format!("name = \"{api}\""));
    if admin {
        hcl = hcl.replace(
            "    \"GET /orders/{orderId}\"",
            "    \"GET /admin\" = { function = adf_function.admin }\n    \"GET /orders/{orderId}\"",
        );
        hcl.push_str(&format!(
            "\nresource \"adf_function\" \"admin\" {{\n  name        = \"{function}-admin\"\n  package     = \
             adf_lambda_package.api\n  environment = {{ GREETING = \"admin\" }}\n}}\n"
        ));
    }
    Ok(format!("{PROVIDER}\n{hcl}"))
}

/// The API's routes as API Gateway holds them: route key to (function ARN, authorization).
async fn routes(api: &aws_sdk_apigatewayv2::Client, id: &str) -> Result<BTreeMap<String, (String, String)>> {
    let integrations: BTreeMap<String, String> = api
        .get_integrations()
        .api_id(id)
        .send()
        .await?
        .items()
        .iter()
        .map(|i| {
            assert_eq!(i.integration_type().map(|t| t.as_str()), Some("AWS_PROXY"));
            assert_eq!(i.payload_format_version(), Some("2.0"));
            (i.integration_id().unwrap_or_default().to_string(), i.integration_uri().unwrap_or_default().to_string())
        })
        .collect();
    let mut out = BTreeMap::new();
    for r in api.get_routes().api_id(id).send().await?.items() {
        let integration = r.target().and_then(|t| t.strip_prefix("integrations/")).unwrap_or_default();
        let function = integrations.get(integration).cloned().context("a route to no integration")?;
        let auth = r.authorization_type().map(|a| a.as_str().to_string()).unwrap_or_default();
        out.insert(r.route_key().unwrap_or_default().to_string(), (function, auth));
    }
    Ok(out)
}

/// The statement ids on function `name`'s resource policy.
async fn statements(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<Vec<Value>> {
    match lambda.get_policy().function_name(name).send().await {
        Ok(p) => {
            let doc: Value = serde_json::from_str(p.policy().unwrap_or("{}"))?;
            Ok(doc["Statement"].as_array().cloned().unwrap_or_default())
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// An HTTP call to the local API, signed for `execute-api` when `sign`.
async fn call(base: &str, method: &str, path: &str, sign: bool) -> Result<(u16, Value)> {
    let url = format!("{}{}", base, path.trim_start_matches('/'));
    let mut req = reqwest::Client::new().request(method.parse()?, &url);
    if sign {
        let scope = Scope { region: REGION, service: "execute-api" };
        let now = std::time::SystemTime::now();
        for (k, v) in sigv4_headers(&test_credentials("test"), scope, now, method, &url, &[], b"")? {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_routes_answer_end_to_end_import_update_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let config = sdk_config(emu.endpoint()).await;
    let (apigw, lambda) = (aws_sdk_apigatewayv2::Client::new(&config), aws_sdk_lambda::Client::new(&config));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let (name, function) = (unique_name("orders"), unique_name("orders-api"));
    let admin = format!("{function}-admin");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. Apply: two functions behind three routes.
    ws.write(&example(&name, &function, true)?)?;
    ws.apply()?;
    let state = ws.state_values(ADDRESS)?;
    let id = state["api_id"].as_str().context("api_id")?.to_string();
    let a = apigw.get_api().api_id(&id).send().await?;
    assert_eq!(a.name(), Some(name.as_str()));
    assert_eq!(a.tags().and_then(|t| t.get("adf:http-api")).map(String::as_str), state["owner_id"].as_str());
    assert_eq!(a.cors_configuration().map(|c| c.allow_origins().to_vec()), Some(vec!["https://example.com".into()]));
    let table = routes(&apigw, &id).await?;
    let arn = |f: &str| format!("arn:aws:lambda:{REGION}:123456789012:function:{f}");
    assert_eq!(table.len(), 3, "{table:?}");
    assert_eq!(table["GET /orders/{orderId}"], (arn(&function), "AWS_IAM".into()));
    assert_eq!(table["POST /orders"], (arn(&function), "NONE".into()));
    assert_eq!(table["GET /admin"], (arn(&admin), "NONE".into()));
    let integrations = apigw.get_integrations().api_id(&id).send().await?;
    assert_eq!(integrations.items().len(), 2, "one integration per function");
    let stage = apigw.get_stage().api_id(&id).stage_name("$default").send().await?;
    assert_eq!(stage.auto_deploy(), Some(true));
    let throttle = stage.default_route_settings().context("route settings")?;
    assert_eq!((throttle.throttling_burst_limit(), throttle.throttling_rate_limit()), (Some(100), Some(50.0)));
    let group = format!("/aws/apigateway/{name}");
    let destination = stage.access_log_settings().and_then(|l| l.destination_arn()).unwrap_or_default();
    assert!(destination.ends_with(&format!("log-group:{group}")), "{destination}");
    let execution_arn = state["execution_arn"].as_str().context("execution_arn")?;
    assert_eq!(execution_arn, format!("arn:aws:execute-api:{REGION}:123456789012:{id}"));
    for f in [&function, &admin] {
        let s = statements(&lambda, f).await?;
        let ours: Vec<&Value> = s.iter().filter(|s| s["Sid"] == format!("adf-http-api-{id}")).collect();
        assert_eq!(ours.len(), 1, "{f}: {s:?}");
        let source = ours[0]["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap_or_default();
        assert_eq!(source, format!("{execution_arn}/*/*"), "scoped to this API");
        assert_eq!(ours[0]["Principal"]["Service"], "apigateway.amazonaws.com");
    }

    // 2. An empty second plan.
    ws.assert_empty_plan()?;

    // 3. The routes answer end to end: each reaches its function's deployed zip, with the
    //    route key and path parameters in the event; the AWS_IAM route wants a signature.
    let package = ws.state_values("adf_lambda_package.api")?;
    let zip = PathBuf::from(package["output_path"].as_str().context("output_path")?);
    let mut runners = BTreeMap::new();
    for f in [&function, &admin] {
        let runner = LambdaRunner::start(&deployed(&lambda, f, &zip, emu.endpoint()).await?).await?;
        runners.insert(arn(f), Arc::new(runner));
    }
    let served = table
        .iter()
        .map(|(key, (f, auth))| {
            let auth = if auth == "AWS_IAM" { UrlAuth::AwsIam } else { UrlAuth::None };
            Ok(ApiRoute { key: key.clone(), runner: Arc::clone(runners.get(f).context("no runner")?), auth })
        })
        .collect::<Result<Vec<_>>>()?;
    let server = FunctionUrlServer::start_api(served).await?;
    let base = server.url();
    let (status, body) = call(&base, "POST", "/orders", false).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "hello from go on amd64");
    assert_eq!(body["input"]["routeKey"], "POST /orders");
    let (status, _) = call(&base, "GET", "/orders/42", false).await?;
    assert_eq!(status, 403, "an AWS_IAM route refuses an unsigned call");
    let (status, body) = call(&base, "GET", "/orders/42", true).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["input"]["pathParameters"]["orderId"], "42");
    assert_eq!(body["input"]["requestContext"]["routeKey"], "GET /orders/{orderId}");
    let (status, body) = call(&base, "GET", "/admin", false).await?;
    assert_eq!((status, body["message"].as_str()), (200, Some("admin from go on amd64")));
    assert_eq!(call(&base, "GET", "/nothing", false).await?.0, 404);
    drop(server);

    // 4. Import by name (the example's import.sh) gives the applied state back.
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    let args = example_import_args("adf_http_api", &name)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    assert_eq!(ws.state_values(ADDRESS)?, state, "the imported state is the applied one");
    ws.assert_empty_plan()?;

    // 5. Update in place: the admin route goes, and with it the admin function's permission
    //    and integration; POST /orders now wants a signature, and a new GET /me a JWT.
    let hcl = example(&name, &function, true)?;
    let hcl = hcl
        .replace(
            "    \"GET /admin\" = { function = adf_function.admin }\n",
            "    \"GET /me\" = { function = adf_function.api, authorization = \"JWT\" }\n",
        )
        .replace(
            "\"POST /orders\"          = { function = adf_function.api }",
            "\"POST /orders\" = { function = adf_function.api, authorization = \"AWS_IAM\" }",
        )
        .replace(
            "  tags = { team",
            "  jwt = { issuer = \"https://issuer.example.com\", audience = [\"orders-client\"] }\n  tags = { team",
        );
    ws.write(&hcl)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let table = routes(&apigw, &id).await?;
    assert_eq!(table.len(), 3, "{table:?}");
    assert_eq!(table["POST /orders"], (arn(&function), "AWS_IAM".into()));
    assert_eq!(table["GET /me"], (arn(&function), "JWT".into()));
    let me = apigw.get_routes().api_id(&id).send().await?;
    let authorizer = me.items().iter().find_map(|r| r.authorizer_id()).context("the JWT route's authorizer")?;
    let authorizer = apigw.get_authorizer().api_id(&id).authorizer_id(authorizer).send().await?;
    let jwt = authorizer.jwt_configuration().context("a JWT authorizer")?;
    assert_eq!(jwt.issuer(), Some("https://issuer.example.com"));
    assert_eq!(jwt.audience(), ["orders-client".to_string()]);
    assert_eq!(apigw.get_integrations().api_id(&id).send().await?.items().len(), 1);
    let sid = format!("adf-http-api-{id}");
    assert!(!statements(&lambda, &admin).await?.iter().any(|s| s["Sid"] == sid), "admin's permission taken back");
    assert!(statements(&lambda, &function).await?.iter().any(|s| s["Sid"] == sid), "api's permission kept");
    ws.assert_empty_plan()?;

    // 6. Drift: a route deleted behind Terraform's back shows in the plan; apply restores it.
    let route_id = apigw
        .get_routes()
        .api_id(&id)
        .send()
        .await?
        .items()
        .iter()
        .find(|r| r.route_key() == Some("POST /orders"))
        .and_then(|r| r.route_id().map(str::to_string))
        .context("route id")?;
    apigw.delete_route().api_id(&id).route_id(route_id).send().await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("POST /orders"), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(routes(&apigw, &id).await?.len(), 3);
    ws.assert_empty_plan()?;

    // 7. Disappears: the next apply makes a new API with the same routes.
    apigw.delete_api().api_id(&id).send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    let new_id = ws.state_values(ADDRESS)?["api_id"].as_str().context("api_id")?.to_string();
    ensure!(new_id != id, "a new API");
    assert_eq!(routes(&apigw, &new_id).await?.len(), 3);
    ws.assert_empty_plan()?;

    // 8. Destroy: the API, its log group and the function's permission go.
    ws.destroy()?;
    ensure!(apigw.get_api().api_id(&new_id).send().await.is_err(), "the API is deleted");
    let groups = logs.describe_log_groups().log_group_name_prefix(&group).send().await?;
    ensure!(groups.log_groups().is_empty(), "the access log group is deleted");
    Ok(())
}

#[test]
fn bad_input_is_a_plan_time_diagnostic_on_the_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let f = "{ arn = \"arn:aws:lambda:us-east-1:123456789012:function:f\", name = \"f\" }";
    for (settings, message, attribute) in [
        (format!("routes = {{ \"GET orders\" = {{ function = {f} }} }}"), "the path must start with `/`", "routes"),
        (format!("routes = {{ \"FETCH /orders\" = {{ function = {f} }} }}"), "the method must be one of", "routes"),
        (
            format!("routes = {{ \"GET /\" = {{ function = {f}, authorization = \"JWT\" }} }}"),
            "set the `jwt` block",
            "routes",
        ),
        (
            format!("routes = {{ \"GET /\" = {{ function = {f}, authorization = \"OPEN\" }} }}"),
            "Invalid authorization Expected \"NONE\"",
            "",
        ),
        ("throttling_burst_limit = 9000".into(), "must be 0 to 5000", "throttling_burst_limit"),
        ("cors = { allow_origins = [\"example.com\"] }".into(), "an origin is `*` or a URL", ""),
    ] {
        // (The CLIs point no further than the resource into a map of objects.)
        ws.write(&format!("{PROVIDER}\nresource \"adf_http_api\" \"a\" {{\n  name = \"a\"\n  {settings}\n}}\n"))?;
        ws.assert_plan_error(message, attribute)?;
    }
    Ok(())
}

/// A create that fails after the API was made (its route's function does not exist, so the
/// permission cannot be added) saves it tainted; the next apply deletes that API, though the
/// saved state has no id, and makes one that works: one API of that name, nothing orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_half_way_is_saved_tainted_and_replaced_by_the_next_apply() -> Result<()> {
    let emu = Emulator::start()?;
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk_config(emu.endpoint()).await);
    let (name, function) = (unique_name("half"), unique_name("half-fn"));
    let ws = Workspace::new(emu.endpoint())?;
    std::fs::write(ws.path().join("f.zip"), adf_acceptance::bootstrap_zip()?)?;
    let hcl = |target: &str| {
        format!(
            "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"{function}\"\n  filename = \"f.zip\"\n  \
             runtime = \"provided.al2023\"\n  handler = \"bootstrap\"\n}}\n\nresource \"adf_http_api\" \"a\" {{\n  \
             name = \"{name}\"\n  routes = {{ \"GET /\" = {{ function = {target} }} }}\n}}\n"
        )
    };
    let apis = || async {
        let out = apigw.get_apis().send().await?;
        Ok::<_, anyhow::Error>(out.items().iter().filter(|a| a.name() == Some(name.as_str())).count())
    };
    let missing = format!(
        "{{ arn = \"arn:aws:lambda:{REGION}:123456789012:function:{function}-missing\", name = \"{function}-missing\" }}"
    );
    ws.write(&hcl(&missing))?;
    let failed = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    assert_eq!(failed.code, 1, "{}", failed.stdout);
    let stderr = failed.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(stderr.contains(&format!("creating adf_http_api ({name})")), "{stderr}");
    let state: Value = serde_json::from_slice(&std::fs::read(ws.path().join("terraform.tfstate"))?)?;
    let saved = state["resources"].as_array().into_iter().flatten().find(|r| r["type"] == "adf_http_api");
    assert_eq!(saved.map(|r| r["instances"][0]["status"].clone()), Some(Value::from("tainted")), "{state}");
    assert_eq!(apis().await?, 1, "the first attempt made the API");

    ws.write(&hcl("adf_function.f"))?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("is tainted, so must be replaced"), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(apis().await?, 1, "the tainted API was deleted and one made: nothing orphaned");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    assert_eq!(apis().await?, 0);
    Ok(())
}
