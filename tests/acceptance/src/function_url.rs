//! A local stand-in for a Lambda Function URL. The emulator stores Function URLs as metadata
//! only, so this server turns each HTTP request into the Function URL event (payload format
//! 2.0, the recorded shape in `fixtures/events/function-url.json`), invokes the function
//! through a [`LambdaRunner`], and turns its answer back into an HTTP response, as AWS does.
//!
//! Real AWS checks the SigV4 signature of an `AWS_IAM` Function URL; this server accepts any
//! `Authorization` header, or none. It counts the requests that carry a SigV4 signature for
//! the `lambda` service over their body ([`FunctionUrlServer::signed_requests`]), so a test
//! can assert that a client signs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use crate::lambda_runner::LambdaRunner;

/// The recorded event every request's event starts from.
const EVENT_TEMPLATE: &str = include_str!("../fixtures/events/function-url.json");
/// Lambda's synchronous payload limit, which Function URLs enforce on request bodies.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

struct Shared {
    runner: Arc<LambdaRunner>,
    requests: AtomicUsize,
    signed: AtomicUsize,
}

/// A Function URL on `127.0.0.1` for one running function; stops when dropped.
pub struct FunctionUrlServer {
    url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FunctionUrlServer {
    /// Serves `runner`'s function on a free loopback port.
    pub async fn start(runner: Arc<LambdaRunner>) -> Result<Self> {
        let shared = Arc::new(Shared { runner, requests: AtomicUsize::new(0), signed: AtomicUsize::new(0) });
        let app = Router::new().fallback(serve).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared, server })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received so far that carried a SigV4 signature for `lambda` over their body.
    pub fn signed_requests(&self) -> usize {
        self.shared.signed.load(Ordering::SeqCst)
    }
}

impl Drop for FunctionUrlServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(State(s): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        let message = format!("Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation");
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(json!({ "Message": message }))).into_response();
    };
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    let signer = sigv4_signer(&parts.headers, &body);
    if signer.is_some() {
        s.signed.fetch_add(1, Ordering::SeqCst);
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let context = EventContext { request_id: format!("c4b5a1e2-0000-4000-8000-{n:012}"), epoch_ms: now_ms, signer };
    let answer = match event(parts.method.as_str(), &parts.uri, &parts.headers, &body, &context) {
        Ok(event) => s.runner.invoke(&event).await.and_then(|a| answer(&a)),
        Err(e) => Err(e),
    };
    match answer {
        Ok(a) => a.into_response(),
        // What a Function URL answers when the function fails.
        Err(e) => (StatusCode::BAD_GATEWAY, axum::Json(json!({ "Message": format!("{e:#}") }))).into_response(),
    }
}

/// What the event says about its request beyond the HTTP message.
struct EventContext {
    request_id: String,
    epoch_ms: u64,
    /// The access key that signed the request, when it was signed.
    signer: Option<String>,
}

/// The Function URL event (payload 2.0) for one HTTP request.
fn event(method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8], cx: &EventContext) -> Result<Value> {
    let mut e: Value = serde_json::from_str(EVENT_TEMPLATE).context("the event fixture")?;
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!(query);

    // Repeated headers and query parameters are joined with commas; cookies move to `cookies`.
    let mut joined = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| json!(c.trim())));
            continue;
        }
        join(&mut joined, name.as_str(), value);
    }
    e["headers"] = Value::Object(joined);
    let object = e.as_object_mut().context("the event fixture is not an object")?;
    if cookies.is_empty() {
        object.remove("cookies");
    } else {
        object.insert("cookies".into(), Value::Array(cookies));
    }
    let pairs: Vec<(String, String)> = query_pairs(query);
    if pairs.is_empty() {
        object.remove("queryStringParameters");
    } else {
        let mut params = serde_json::Map::new();
        for (k, v) in pairs {
            join(&mut params, &k, v);
        }
        object.insert("queryStringParameters".into(), Value::Object(params));
    }
    match (body.is_empty(), std::str::from_utf8(body)) {
        (true, _) => {
            object.remove("body");
            object.insert("isBase64Encoded".into(), json!(false));
        }
        (false, Ok(text)) => {
            object.insert("body".into(), json!(text));
            object.insert("isBase64Encoded".into(), json!(false));
        }
        (false, Err(_)) => {
            object.insert("body".into(), json!(base64::engine::general_purpose::STANDARD.encode(body)));
            object.insert("isBase64Encoded".into(), json!(true));
        }
    }

    let rc = &mut e["requestContext"];
    rc["http"]["method"] = json!(method);
    rc["http"]["path"] = json!(path);
    let agent = headers.get("user-agent").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    rc["http"]["userAgent"] = json!(agent.unwrap_or_default());
    rc["requestId"] = json!(cx.request_id);
    rc["timeEpoch"] = json!(cx.epoch_ms);
    rc["time"] = json!(clf_time(cx.epoch_ms / 1000));
    match &cx.signer {
        Some(key) => rc["authorizer"]["iam"]["accessKey"] = json!(key),
        None => {
            if let Some(rc) = rc.as_object_mut() {
                rc.remove("authorizer");
            }
        }
    }
    Ok(e)
}

fn join(map: &mut serde_json::Map<String, Value>, key: &str, value: String) {
    let joined = match map.get(key).and_then(Value::as_str) {
        Some(before) => format!("{before},{value}"),
        None => value,
    };
    map.insert(key.to_string(), json!(joined));
}

/// A query string's decoded pairs, in order (`+` is a space, as browsers and SDKs send it).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let uri: Option<Uri> = format!("/?{query}").parse().ok();
    uri.and_then(|u| axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
        .map_or_else(Vec::new, |q| q.0)
}

/// The access key of a SigV4 `Authorization` for the `lambda` service, when the request's
/// `x-amz-date` is there and its `x-amz-content-sha256`, if sent, is the body's hash.
fn sigv4_signer(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let credential = text("authorization")?.strip_prefix("AWS4-HMAC-SHA256 Credential=")?;
    let scope = credential.split(',').next()?;
    let (key, rest) = scope.split_once('/')?;
    let hash_ok = text("x-amz-content-sha256").is_none_or(|h| h == hex(&sha2::Sha256::digest(body)));
    (rest.ends_with("/lambda/aws4_request") && text("x-amz-date").is_some() && hash_ok).then(|| key.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `requestContext.time`'s format: `22/Nov/2026:17:00:00 +0000`.
fn clf_time(epoch_secs: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, secs) = (epoch_secs / 86_400, epoch_secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (all non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!("{day:02}/{name}/{year}:{:02}:{:02}:{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// An HTTP response from a function's answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads a Function URL answer: `{statusCode, headers, cookies, body, isBase64Encoded}`, or any
/// other JSON, which means 200 with that JSON as the body.
fn answer(a: &Value) -> Result<Answer> {
    let json_header = ("content-type".to_string(), "application/json".to_string());
    let Some(status) = a.get("statusCode") else {
        return Ok(Answer { status: 200, headers: vec![json_header], body: a.to_string().into_bytes() });
    };
    let status = status.as_u64().and_then(|s| u16::try_from(s).ok()).context("statusCode is not a status")?;
    let mut headers: Vec<(String, String)> = a
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(json_header);
    }
    for cookie in a.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        headers.push(("set-cookie".into(), cookie.to_string()));
    }
    let text = a.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if a.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        base64::engine::general_purpose::STANDARD.decode(text).context("the body is not base64")?
    } else {
        text.as_bytes().to_vec()
    };
    Ok(Answer { status, headers, body })
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                response.headers_mut().append(k, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(signer: Option<&str>) -> EventContext {
        EventContext { request_id: "r-1".into(), epoch_ms: 1_795_366_800_123, signer: signer.map(String::from) }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn a_request_becomes_the_recorded_event_shape() -> Result<()> {
        let uri: Uri = "/topics/orders/consume?partition=1&offset=5&tag=a&tag=b%20c".parse()?;
        let h =
            headers(&[("content-type", "application/json"), ("x-multi", "1"), ("x-multi", "2"), ("user-agent", "t/1")]);
        let e = event("GET", &uri, &h, b"", &cx(Some("AKID")))?;
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/topics/orders/consume");
        assert_eq!(e["rawQueryString"], "partition=1&offset=5&tag=a&tag=b%20c");
        assert_eq!(e["queryStringParameters"], json!({"partition": "1", "offset": "5", "tag": "a,b c"}));
        assert_eq!(e["headers"], json!({"content-type": "application/json", "x-multi": "1,2", "user-agent": "t/1"}));
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        assert_eq!(e["requestContext"]["http"]["path"], "/topics/orders/consume");
        assert_eq!(e["requestContext"]["http"]["userAgent"], "t/1");
        assert_eq!(e["requestContext"]["requestId"], "r-1");
        assert_eq!(e["requestContext"]["timeEpoch"], 1_795_366_800_123u64);
        assert_eq!(e["requestContext"]["time"], "22/Nov/2026:17:00:00 +0000", "the fixture's own time");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["accessKey"], "AKID");
        assert_eq!(e.get("body"), None);
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e.get("cookies"), None);
        Ok(())
    }

    #[test]
    fn bodies_are_text_or_base64_and_unsigned_requests_have_no_authorizer() -> Result<()> {
        let uri: Uri = "/topics/t/produce".parse()?;
        let text = event("POST", &uri, &HeaderMap::new(), br#"{"value":"v"}"#, &cx(None))?;
        assert_eq!((&text["body"], &text["isBase64Encoded"]), (&json!(r#"{"value":"v"}"#), &json!(false)));
        assert_eq!(text.get("queryStringParameters"), None);
        assert_eq!(text["rawQueryString"], "");
        assert_eq!(text["requestContext"].get("authorizer"), None);
        let binary = event("POST", &uri, &HeaderMap::new(), &[0xff, 0x00, 0x80], &cx(None))?;
        assert_eq!((&binary["body"], &binary["isBase64Encoded"]), (&json!("/wCA"), &json!(true)));
        let cookies = event("GET", &uri, &headers(&[("cookie", "a=1; b=2")]), b"", &cx(None))?;
        assert_eq!(cookies["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(cookies["headers"].get("cookie"), None);
        Ok(())
    }

    #[test]
    fn answers_become_responses() -> Result<()> {
        let full = json!({"statusCode": 413, "headers": {"Content-Type": "application/json", "x-a": "1"},
                          "cookies": ["s=1"], "body": "{\"message\":\"too large\"}", "isBase64Encoded": false});
        assert_eq!(
            answer(&full)?,
            Answer {
                status: 413,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-a".into(), "1".into()),
                    ("set-cookie".into(), "s=1".into())
                ],
                body: b"{\"message\":\"too large\"}".to_vec(),
            }
        );
        let binary = answer(&json!({"statusCode": 200, "body": "/wCA", "isBase64Encoded": true}))?;
        assert_eq!(binary.body, [0xff, 0x00, 0x80]);
        assert_eq!(binary.headers, [("content-type".to_string(), "application/json".to_string())]);
        let bare = answer(&json!({"message": "hi"}))?;
        assert_eq!((bare.status, bare.body), (200, br#"{"message":"hi"}"#.to_vec()));
        assert!(answer(&json!({"statusCode": "teapot"})).is_err());
        Ok(())
    }

    #[test]
    fn only_sigv4_for_lambda_over_the_body_counts_as_signed() {
        let body = b"{}";
        let hash = hex(&sha2::Sha256::digest(body));
        let auth =
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00";
        let signed = |pairs: &[(&'static str, &str)]| sigv4_signer(&headers(pairs), body);
        assert_eq!(
            signed(&[("authorization", auth), ("x-amz-date", "x"), ("x-amz-content-sha256", &hash)]).as_deref(),
            Some("AKID")
        );
        assert_eq!(signed(&[("authorization", auth), ("x-amz-date", "x")]).as_deref(), Some("AKID"));
        assert_eq!(signed(&[("authorization", auth), ("x-amz-date", "x"), ("x-amz-content-sha256", "00")]), None);
        assert_eq!(signed(&[("authorization", auth)]), None);
        assert_eq!(signed(&[("authorization", &auth.replace("/lambda/", "/s3/")), ("x-amz-date", "x")]), None);
        assert_eq!(signed(&[("authorization", "Bearer x"), ("x-amz-date", "x")]), None);
        assert_eq!(signed(&[]), None);
    }

    #[test]
    fn times_are_in_the_events_format() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(clf_time(1_795_366_800), "22/Nov/2026:17:00:00 +0000");
        assert_eq!(clf_time(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    }
}
