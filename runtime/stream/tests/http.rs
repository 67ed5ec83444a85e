//! The stream Lambda's HTTP API, called in-process with real Function URL events against the
//! emulator: the seed's routes, batches, consumer groups, the description, and JSON errors
//! with the right status.

mod common;

use adf_acceptance::repo_root;
use adf_stream::http::handle;
use anyhow::{Context, Result};
use common::Fixture;
use lambda_http::Body;
use serde_json::{Value, json};

/// A Function URL event for `method path?query` with `body`, from the recorded event shape.
fn event(method: &str, path: &str, query: &str, body: Option<&str>) -> Result<lambda_http::Request> {
    let fixture = repo_root().join("tests/acceptance/fixtures/events/function-url.json");
    let mut e: Value = serde_json::from_str(&std::fs::read_to_string(fixture)?)?;
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["rawQueryString"] = json!(query);
    let params: serde_json::Map<String, Value> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), json!(v))).collect();
    e["queryStringParameters"] = Value::Object(params);
    e["body"] = body.map_or(Value::Null, |b| json!(b));
    Ok(lambda_http::request::from_str(&e.to_string())?)
}

async fn call(fx: &Fixture, method: &str, path: &str, query: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let body = body.map(|b| b.to_string());
    let resp = handle(&fx.stream(), event(method, path, query, body.as_deref())?).await;
    let status = resp.status().as_u16();
    let text = match resp.body() {
        Body::Text(t) => t.clone(),
        other => String::from_utf8_lossy(other.as_ref()).into_owned(),
    };
    Ok((status, serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_groups_and_describe() -> Result<()> {
    let fx = Fixture::new(2).await?;
    let base = format!("/topics/{}", fx.topic.name);

    // The seed's shape: one record.
    let (status, one) =
        call(&fx, "POST", &format!("{base}/produce"), "", Some(json!({"key": "a", "value": "first"}))).await?;
    assert_eq!(status, 200, "{one}");
    let p = one["partition"].as_u64().context("partition")?;
    assert_eq!(one["offset"], 0);

    // A batch to the same partition: dense offsets after the first.
    let records: Vec<Value> = (0..5).map(|i| json!({"key": "a", "value": {"n": i}})).collect();
    let (status, batch) =
        call(&fx, "POST", &format!("{base}/produce"), "", Some(json!({"partition": p, "records": records}))).await?;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["offsets"], json!([1, 2, 3, 4, 5]));

    let (status, got) =
        call(&fx, "GET", &format!("{base}/consume"), &format!("partition={p}&offset=1&limit=3"), None).await?;
    assert_eq!(status, 200, "{got}");
    let offsets: Vec<u64> =
        got["records"].as_array().context("records")?.iter().filter_map(|r| r["offset"].as_u64()).collect();
    assert_eq!(offsets, [1, 2, 3]);
    assert_eq!(got["records"][0]["value"], "{\"n\":0}");
    assert_eq!(got["next_offset"], 4);
    assert_eq!(got["high_watermark"], 6);

    let group = format!("{base}/groups/billing");
    let (status, _) =
        call(&fx, "POST", &format!("{group}/commit"), "", Some(json!({"partition": p, "offset": 4}))).await?;
    assert_eq!(status, 200);
    let (_, from_group) = call(&fx, "GET", &format!("{group}/consume"), &format!("partition={p}"), None).await?;
    assert_eq!(from_group["records"][0]["offset"], 4);
    let (status, stale) =
        call(&fx, "POST", &format!("{group}/commit"), "", Some(json!({"partition": p, "offset": 2}))).await?;
    assert_eq!(status, 409, "{stale}");

    let (status, described) = call(&fx, "GET", &base, "", None).await?;
    assert_eq!(status, 200);
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(described["partitions"][p as usize]["high_watermark"], 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_the_right_status() -> Result<()> {
    let fx = Fixture::new(1).await?;
    let base = format!("/topics/{}", fx.topic.name);
    let cases = [
        ("GET", "/topics/nope/consume".to_string(), "partition=0&offset=0", None, 404),
        ("GET", format!("{base}/consume"), "partition=7&offset=0", None, 404),
        ("GET", format!("{base}/consume"), "partition=0&offset=9", None, 400),
        ("GET", format!("{base}/consume"), "partition=0", None, 400),
        ("POST", format!("{base}/produce"), "", Some(json!({"nothing": true})), 400),
        (
            "POST",
            format!("{base}/produce"),
            "",
            Some(json!({"value": "x".repeat(adf_stream::MAX_RECORD_BYTES + 1)})),
            413,
        ),
        ("DELETE", base.clone(), "", None, 404),
    ];
    for (method, path, query, body, want) in cases {
        let (status, answer) = call(&fx, method, &path, query, body).await?;
        assert_eq!(status, want, "{method} {path}?{query}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    Ok(())
}
