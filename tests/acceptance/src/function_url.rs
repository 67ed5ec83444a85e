//! A local stand-in for a Lambda Function URL. The emulator stores Function URLs as metadata
//! only, so this server turns each HTTP request into the Function URL event (payload format
//! 2.0, the recorded shape in `fixtures/events/function-url.json`), invokes the function
//! through a [`LambdaRunner`], and turns its answer back into an HTTP response, as AWS does.
//!
//! An `AWS_IAM` URL (the default, [`UrlAuth::AwsIam`]) verifies each request's SigV4 signature
//! as AWS does: it signs the request again with the test credentials (`test` / `test`) over the
//! headers the request says it signed, and answers 403 to a missing, expired (more than 5
//! minutes off) or wrong signature, or an unknown access key. A `NONE` URL serves everyone.
//! Both count the requests with a valid signature ([`FunctionUrlServer::signed_requests`]).
//!
//! In API mode ([`FunctionUrlServer::start_api`]) it stands in for an API Gateway HTTP API
//! instead: each request is matched to a route (`METHOD /path/{param}`, `ANY`, a greedy
//! `{proxy+}`, else `$default`, else 404), becomes the API Gateway v2 event (payload 2.0, with
//! `routeKey` and `pathParameters`) and reaches that route's function; an `AWS_IAM` route wants
//! a SigV4 signature for `execute-api`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use adf_stream_client::{Scope, sigv4_headers};
use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::lambda_runner::LambdaRunner;

/// The recorded event every request's event starts from.
const EVENT_TEMPLATE: &str = include_str!("../fixtures/events/function-url.json");
/// Lambda's synchronous payload limit, which Function URLs enforce on request bodies.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// The test credentials: the only access key this server knows, and its secret.
const ACCESS_KEY: &str = "test";
const SECRET_KEY: &str = "test";
/// How far a signature's time may be from the server's, as AWS allows.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// A Function URL's auth type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlAuth {
    /// Callers sign with SigV4 for `lambda`; anything else is 403.
    AwsIam,
    /// Anyone may call.
    None,
}

/// One route of an HTTP API in API mode.
pub struct ApiRoute {
    /// `METHOD /path` (path parameters as `{name}`, a greedy `{name+}` last) or `$default`.
    pub key: String,
    /// The function it reaches.
    pub runner: Arc<LambdaRunner>,
    /// Who may call it.
    pub auth: UrlAuth,
}

struct Shared {
    routes: Vec<ApiRoute>,
    /// The service signatures are for: `lambda` (a Function URL) or `execute-api` (an API).
    service: &'static str,
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
    /// Serves `runner`'s function on a free loopback port, with `AWS_IAM` auth.
    pub async fn start(runner: Arc<LambdaRunner>) -> Result<Self> {
        Self::start_with(runner, UrlAuth::AwsIam).await
    }

    /// Serves `runner`'s function on a free loopback port with `auth`.
    pub async fn start_with(runner: Arc<LambdaRunner>, auth: UrlAuth) -> Result<Self> {
        Self::serve(vec![ApiRoute { key: "$default".into(), runner, auth }], "lambda").await
    }

    /// Serves an HTTP API's `routes` on a free loopback port (API mode).
    pub async fn start_api(routes: Vec<ApiRoute>) -> Result<Self> {
        Self::serve(routes, "execute-api").await
    }

    async fn serve(routes: Vec<ApiRoute>, service: &'static str) -> Result<Self> {
        let shared = Arc::new(Shared { routes, service, requests: AtomicUsize::new(0), signed: AtomicUsize::new(0) });
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

    /// Requests received so far that carried a valid SigV4 signature for `lambda`.
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
    let Some((route, path_parameters)) = route(&s.routes, parts.method.as_str(), parts.uri.path()) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "Not Found" }))).into_response();
    };
    let verified = verify(s.service, parts.method.as_str(), &parts.uri, &parts.headers, &body, SystemTime::now());
    let signer = match (verified, route.auth) {
        (Ok(key), _) => {
            s.signed.fetch_add(1, Ordering::SeqCst);
            Some(key)
        }
        (Err(denied), UrlAuth::AwsIam) => {
            return (StatusCode::FORBIDDEN, axum::Json(json!({ "Message": denied.to_string() }))).into_response();
        }
        (Err(_), UrlAuth::None) => None,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let context = EventContext {
        request_id: format!("c4b5a1e2-0000-4000-8000-{n:012}"),
        epoch_ms: now_ms,
        signer,
        route_key: route.key.clone(),
        path_parameters,
    };
    let answer = match event(parts.method.as_str(), &parts.uri, &parts.headers, &body, &context) {
        Ok(event) => route.runner.invoke(&event).await.and_then(|a| answer(&a)),
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
    /// The route it matched (`$default` for a Function URL).
    route_key: String,
    /// The values of the route's `{name}` parts.
    path_parameters: serde_json::Map<String, Value>,
}

/// The route `method` and `path` reach, with its path parameters.
fn route<'a>(
    routes: &'a [ApiRoute],
    method: &str,
    path: &str,
) -> Option<(&'a ApiRoute, serde_json::Map<String, Value>)> {
    let keys: Vec<&str> = routes.iter().map(|r| r.key.as_str()).collect();
    pick(&keys, method, path).map(|(i, params)| (&routes[i], params))
}

/// Which of the route `keys` `method` and `path` reach, as API Gateway picks: the one with the
/// most literal parts (a method over `ANY`), else `$default`; with the path parameters.
fn pick(keys: &[&str], method: &str, path: &str) -> Option<(usize, serde_json::Map<String, Value>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    type Params = serde_json::Map<String, Value>;
    let mut best: Option<((usize, bool), usize, Params)> = None;
    for (index, key) in keys.iter().enumerate() {
        let Some((m, pattern)) = key.split_once(' ') else { continue };
        if m != "ANY" && m != method {
            continue;
        }
        let wanted: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        let mut params = serde_json::Map::new();
        let mut literal = 0;
        let mut matched = parts.len() >= wanted.len();
        for (i, w) in wanted.iter().enumerate() {
            if !matched {
                break;
            }
            if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix("+}")) {
                params.insert(name.into(), json!(parts[i..].join("/")));
                break;
            }
            if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                params.insert(name.into(), json!(parts[i]));
            } else if *w == parts[i] {
                literal += 1;
            } else {
                matched = false;
            }
            if i == wanted.len() - 1 && parts.len() > wanted.len() {
                matched = false;
            }
        }
        let rank = (literal, m != "ANY");
        if matched && best.as_ref().is_none_or(|(b, ..)| rank > *b) {
            best = Some((rank, index, params));
        }
    }
    best.map(|(_, i, p)| (i, p))
        .or_else(|| keys.iter().position(|k| *k == "$default").map(|i| (i, serde_json::Map::new())))
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

    e["routeKey"] = json!(cx.route_key);
    if !cx.path_parameters.is_empty() {
        e["pathParameters"] = Value::Object(cx.path_parameters.clone());
    }
    let rc = &mut e["requestContext"];
    rc["routeKey"] = json!(cx.route_key);
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
/// Why a request to an `AWS_IAM` URL is refused, in AWS's words.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No SigV4 `Authorization` header for `lambda`.
    #[error("Forbidden")]
    Missing,
    /// An access key this server does not know.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// Signed more than 5 minutes away from now.
    #[error("Signature expired: {0} is now earlier or later than 5 minutes from the server's time.")]
    Expired(String),
    /// The signature is not the one the request's content gives.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method."
    )]
    Mismatch,
}

/// The test credentials, with `secret` (a wrong one makes a wrong signature).
pub fn test_credentials(secret: &str) -> Credentials {
    Credentials::new(ACCESS_KEY, secret, None, None, "function-url")
}

/// Verifies a request's SigV4 signature for `service` at `now`: signs it again with the secret
/// of its access key, over the headers it names, and compares. Returns the access key.
fn verify(
    service: &str,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<String, Denied> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = text("authorization").and_then(|a| a.strip_prefix("AWS4-HMAC-SHA256 ")).ok_or(Denied::Missing)?;
    let field = |name: &str| auth.split(", ").find_map(|f| f.strip_prefix(name)).ok_or(Denied::Missing);
    let (credential, signed_headers, signature) =
        (field("Credential=")?, field("SignedHeaders=")?, field("Signature=")?);
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, _day, region, signed_for, "aws4_request"] = scope[..] else {
        return Err(Denied::Missing);
    };
    if signed_for != service {
        return Err(Denied::Missing);
    }
    if key != ACCESS_KEY {
        return Err(Denied::UnknownKey);
    }
    let date = text("x-amz-date").ok_or(Denied::Missing)?;
    let signed_at = amz_date(date).ok_or(Denied::Mismatch)?;
    let skew = now.duration_since(signed_at).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(Denied::Expired(date.to_string()));
    }
    // The signer adds host, the date, the payload hash and the token itself.
    let added = ["host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"];
    let mut others = Vec::new();
    for name in signed_headers.split(';').filter(|h| !added.contains(h)) {
        others.push((name, text(name).ok_or(Denied::Mismatch)?));
    }
    let url = format!("http://{}{}", text("host").ok_or(Denied::Mismatch)?, uri);
    let token = text("x-amz-security-token").map(str::to_string);
    let creds = Credentials::new(key, SECRET_KEY, token, None, "function-url");
    let again = sigv4_headers(&creds, Scope { region, service }, signed_at, method, &url, &others, body)
        .map_err(|_| Denied::Mismatch)?;
    let expected = again.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()).unwrap_or_default();
    if expected.ends_with(&format!("SignedHeaders={signed_headers}, Signature={signature}")) {
        Ok(key.to_string())
    } else {
        Err(Denied::Mismatch)
    }
}

/// An `x-amz-date` (`20261130T171000Z`) as a time.
fn amz_date(date: &str) -> Option<SystemTime> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[0..4],
        &date[4..6],
        &date[6..8],
        &date[9..11],
        &date[11..13],
        &date[13..15]
    );
    let t = aws_smithy_types::DateTime::from_str(&iso, aws_smithy_types::date_time::Format::DateTime).ok()?;
    SystemTime::try_from(t).ok()
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
        EventContext {
            request_id: "r-1".into(),
            epoch_ms: 1_795_366_800_123,
            signer: signer.map(String::from),
            route_key: "$default".into(),
            path_parameters: serde_json::Map::new(),
        }
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

    /// A request to this server as the stream client signs it, at `time`, with `secret`.
    fn signed(secret: &str, time: SystemTime, body: &[u8]) -> HeaderMap {
        let url = "http://127.0.0.1:4000/topics/orders/produce?partition=1";
        let base = [("content-type", "application/json")];
        let added =
            sigv4_headers(&test_credentials(secret), Scope::lambda("us-east-1"), time, "POST", url, &base, body)
                .expect("sign");
        let mut h = headers(&[("host", "127.0.0.1:4000"), ("content-type", "application/json")]);
        for (k, v) in added {
            h.insert(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(&v).expect("value"));
        }
        h
    }

    #[test]
    fn requests_reach_the_route_api_gateway_would_pick() {
        let keys = ["GET /orders", "GET /orders/{orderId}", "ANY /orders/{orderId}", "ANY /files/{path+}", "$default"];
        let picked = |method: &str, path: &str| pick(&keys, method, path).map(|(i, p)| (keys[i], Value::Object(p)));
        assert_eq!(picked("GET", "/orders"), Some(("GET /orders", json!({}))));
        assert_eq!(picked("GET", "/orders/42"), Some(("GET /orders/{orderId}", json!({ "orderId": "42" }))));
        assert_eq!(picked("DELETE", "/orders/42"), Some(("ANY /orders/{orderId}", json!({ "orderId": "42" }))));
        assert_eq!(picked("PUT", "/files/a/b.txt"), Some(("ANY /files/{path+}", json!({ "path": "a/b.txt" }))));
        assert_eq!(picked("POST", "/orders"), Some(("$default", json!({}))), "no POST route: $default");
        assert_eq!(picked("GET", "/orders/42/items"), Some(("$default", json!({}))));
        assert_eq!(pick(&["GET /orders"], "GET", "/nothing"), None, "404 without $default");
    }

    #[test]
    fn signatures_are_verified_like_aws_does() {
        let uri: Uri = "/topics/orders/produce?partition=1".parse().expect("uri");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_366_800);
        let body = br#"{"records":[]}"#;
        let check = |h: &HeaderMap, body: &[u8], now: SystemTime| verify("lambda", "POST", &uri, h, body, now);
        let good = signed("test", at, body);
        assert_eq!(check(&good, body, at + Duration::from_secs(60)), Ok("test".into()));
        assert_eq!(check(&good, body, at - Duration::from_secs(60)), Ok("test".into()), "a clock a little behind");
        // Tampered content, a wrong secret, a late arrival, no signature, another key.
        assert_eq!(check(&good, b"{\"records\":[1]}", at), Err(Denied::Mismatch));
        assert_eq!(verify("lambda", "PUT", &uri, &good, body, at), Err(Denied::Mismatch));
        assert_eq!(verify("execute-api", "POST", &uri, &good, body, at), Err(Denied::Missing), "signed for lambda");
        assert_eq!(check(&signed("wrong", at, body), body, at), Err(Denied::Mismatch));
        let late = check(&good, body, at + Duration::from_secs(6 * 60));
        assert!(matches!(&late, Err(Denied::Expired(d)) if d == "20261122T170000Z"), "{late:?}");
        assert_eq!(check(&headers(&[("host", "127.0.0.1:4000")]), body, at), Err(Denied::Missing));
        let mut other = good.clone();
        let auth = other["authorization"].to_str().expect("auth").replace("Credential=test/", "Credential=AKIDX/");
        other.insert("authorization", HeaderValue::from_str(&auth).expect("value"));
        assert_eq!(check(&other, body, at), Err(Denied::UnknownKey));
        let mut moved = good;
        moved.insert("host", HeaderValue::from_static("127.0.0.1:4001"));
        assert_eq!(check(&moved, body, at), Err(Denied::Mismatch), "the host is signed");
    }

    #[test]
    fn times_are_in_the_events_format() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(clf_time(1_795_366_800), "22/Nov/2026:17:00:00 +0000");
        assert_eq!(clf_time(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    }
}
