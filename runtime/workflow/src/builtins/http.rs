//! `http`: `{"url": "...", "method": "POST", "headers": {..}, "timeout": "10s", "body": <template>,
//! "follow_redirects": 0, "max_body_bytes": 1048576}`; outputs `{"status": n, "body": <json or
//! text>}` with action `ok` (2xx) or `client_error` (4xx). 429, 5xx, timeouts and connection
//! errors are retryable. Redirects are followed only when `follow_redirects` allows hops, each
//! checked against the worker's [`crate::egress`] policy like the first; a body over
//! `max_body_bytes` fails the node.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Host;

use super::{ParamsError, duration, from_params};
use crate::egress::{Blocked, Egress};
use crate::expr;
use crate::node::{Node, NodeContext, NodeError, NodeResult};

pub(super) struct Http;

/// The per-request timeout unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 200;
/// The response body cap unless `max_body_bytes` says otherwise: 1 MiB.
const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// The highest `max_body_bytes`: Lambda's 6 MB response, which a node output may not exceed.
const MAX_BODY: u64 = 6_000_000;
/// The most redirects a node may follow.
const MAX_REDIRECTS: u8 = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    follow_redirects: u8,
    #[serde(default)]
    max_body_bytes: Option<u64>,
}

pub(super) struct Params {
    url: Url,
    method: Method,
    headers: HeaderMap,
    timeout: Duration,
    /// The body template (`$` by default); not sent with GET or HEAD.
    body: Value,
    /// Redirects to follow (0: none).
    follow_redirects: u8,
    /// The largest response body read.
    max_body: u64,
}

impl Params {
    pub(super) fn parse(params: &Value) -> Result<Self, ParamsError> {
        let raw: Raw = from_params(params)?;
        let url = Url::parse(&raw.url).map_err(|e| ParamsError(format!("`url` {:?}: {e}", raw.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ParamsError(format!("`url` {:?}: only http and https are supported", raw.url)));
        }
        let method = match raw.method {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ParamsError(format!("`method` {m:?} is not an HTTP method")))?,
            None => Method::GET,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &raw.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ParamsError(format!("`headers`: {name:?} is not a header name")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| ParamsError(format!("`headers`: the value of {name:?} is not a header value")))?;
            headers.insert(n, v);
        }
        let timeout = match &raw.timeout {
            Some(t) => duration("timeout", t)?,
            None => DEFAULT_TIMEOUT,
        };
        let body = raw.body.unwrap_or_else(|| Value::String("$".into()));
        expr::check_transform(&body).map_err(|e| ParamsError(format!("`body`: {e}")))?;
        if raw.follow_redirects > MAX_REDIRECTS {
            return Err(ParamsError(format!("`follow_redirects` is at most {MAX_REDIRECTS}")));
        }
        let max_body = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if !(1..=MAX_BODY).contains(&max_body) {
            return Err(ParamsError(format!("`max_body_bytes` must be 1 to {MAX_BODY}")));
        }
        Ok(Self { url, method, headers, timeout, body, follow_redirects: raw.follow_redirects, max_body })
    }
}

/// Timeouts, connection failures and broken responses are retryable; a request that cannot
/// be built, or that the egress policy blocks, is not.
fn classify(method: &Method, url: &Url, e: reqwest::Error) -> NodeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut blocked = false;
    while let Some(s) = source {
        blocked |= s.downcast_ref::<Blocked>().is_some();
        source = s.source();
    }
    let fatal = blocked || e.is_builder() || e.is_redirect();
    let message = format!("{method} {url}: {}", adf_common::error_chain(&e.without_url()));
    if fatal { NodeError::Fatal(message) } else { NodeError::Retryable(message) }
}

/// Checks a host written as an address (names are checked when resolved).
fn check_literal(egress: &Egress, url: &Url) -> Result<(), NodeError> {
    let addr = match url.host() {
        Some(Host::Ipv4(a)) => IpAddr::V4(a),
        Some(Host::Ipv6(a)) => IpAddr::V6(a),
        _ => return Ok(()),
    };
    egress.check(&addr.to_string(), addr).map_err(|b| NodeError::Fatal(format!("{url}: {b}")))
}

/// Reads at most `max` bytes of `resp`'s body.
async fn read_capped(resp: reqwest::Response, max: u64, method: &Method, url: &Url) -> Result<Vec<u8>, NodeError> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large(method, url, max));
    }
    let mut resp = resp;
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(method, url, e))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max {
            return Err(too_large(method, url, max));
        }
    }
    Ok(bytes)
}

fn too_large(method: &Method, url: &Url, max: u64) -> NodeError {
    NodeError::Fatal(format!("{method} {url}: the response body is over {max} bytes (raise max_body_bytes)"))
}

#[async_trait]
impl Node for Http {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        let http = &cx.services.http;
        let (mut method, mut url, mut headers) = (p.method.clone(), p.url.clone(), p.headers.clone());
        let mut hops = 0;
        let resp = loop {
            check_literal(&http.egress, &url)?;
            let mut req = http.client.request(method.clone(), url.clone()).timeout(p.timeout);
            if method != Method::GET && method != Method::HEAD {
                if !headers.contains_key(CONTENT_TYPE) {
                    req = req.header(CONTENT_TYPE, "application/json");
                }
                req = req.body(expr::transform(&p.body, &cx.input).to_string());
            }
            let resp = req.headers(headers.clone()).send().await.map_err(|e| classify(&method, &url, e))?;
            let location = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()).and_then(|l| url.join(l).ok());
            match location {
                Some(next) if resp.status().is_redirection() && hops < p.follow_redirects => {
                    hops += 1;
                    // 303, and 301/302 after a POST, continue with a GET, as browsers do.
                    let status = resp.status().as_u16();
                    if status == 303 || (matches!(status, 301 | 302) && method == Method::POST) {
                        method = Method::GET;
                    }
                    // Credentials stay with the host they were written for.
                    if next.host_str() != url.host_str() || next.port_or_known_default() != url.port_or_known_default()
                    {
                        headers.remove(AUTHORIZATION);
                        headers.remove(COOKIE);
                    }
                    url = next;
                }
                _ => break resp,
            }
        };
        let p = Params { method, url, ..p };
        let status = resp.status();
        let bytes = read_capped(resp, p.max_body, &p.method, &p.url).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let failure = || {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(ERROR_BODY_CHARS).collect();
            format!("{} {} returned {status}: {text}", p.method, p.url)
        };
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(NodeError::Retryable(failure()));
        }
        let output = json!({"status": status.as_u16(), "body": body});
        if status.is_success() {
            Ok(NodeResult::with_action(output, "ok"))
        } else if status.is_client_error() {
            Ok(NodeResult::with_action(output, "client_error"))
        } else if status.is_redirection() && p.follow_redirects == 0 {
            Err(NodeError::Fatal(format!("{} (set follow_redirects to follow redirects)", failure())))
        } else {
            Err(NodeError::Fatal(failure()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap as AxumHeaders, Method as AxumMethod, StatusCode};
    use axum::routing::any;

    use super::super::testing::{run, services};
    use super::*;
    use crate::egress::HttpClient;
    use crate::node::{Registry, Services};

    /// Echoes the method, the content type and the body as JSON.
    async fn echo(method: AxumMethod, headers: AxumHeaders, body: Bytes) -> String {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        json!({
            "method": method.as_str(),
            "content_type": header("content-type"),
            "token": header("x-token"),
            "auth": header("authorization"),
            "body": String::from_utf8_lossy(&body),
        })
        .to_string()
    }

    async fn server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let port = addr.port();
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/missing", any(|| async { (StatusCode::NOT_FOUND, "no such order") }))
            .route("/broken", any(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database down") }))
            .route("/busy", any(|| async { StatusCode::TOO_MANY_REQUESTS }))
            .route("/moved", any(|| async { StatusCode::NOT_MODIFIED }))
            .route("/hop", any(|| async { (StatusCode::SEE_OTHER, [("location", "/echo")]) }))
            .route(
                "/to-metadata",
                any(|| async { (StatusCode::FOUND, [("location", "http://169.254.169.254/latest/meta-data/")]) }),
            )
            .route("/big", any(|| async { "x".repeat(2000) }))
            .route(
                "/elsewhere",
                any(move || async move {
                    (StatusCode::TEMPORARY_REDIRECT, [("location", format!("http://localhost:{port}/echo"))])
                }),
            )
            .route(
                "/slow",
                any(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn get_sends_no_body_and_parses_json() {
        let addr = server().await;
        let s = services(Registry::empty());
        let params = json!({"url": format!("http://{addr}/echo"), "headers": {"X-Token": "t"}});
        let r = run(&Http, &s, params, json!({"a": 1})).await.expect("get");
        let body = json!({"method": "GET", "content_type": null, "token": "t", "auth": null, "body": ""});
        assert_eq!(r, NodeResult::with_action(json!({"status": 200, "body": body}), "ok"));
    }

    #[tokio::test]
    async fn post_sends_the_body_template_as_json() {
        let addr = server().await;
        let s = services(Registry::empty());
        let params = json!({"url": format!("http://{addr}/echo"), "method": "post", "body": {"id": "$.order"}});
        let r = run(&Http, &s, params, json!({"order": 7})).await.expect("post");
        let body = json!({"method": "POST", "content_type": "application/json", "token": null, "auth": null, "body": "{\"id\":7}"});
        assert_eq!(r.output, json!({"status": 200, "body": body}));
        let params = json!({"url": format!("http://{addr}/echo"), "method": "PUT"});
        let r = run(&Http, &s, params, json!([1, 2])).await.expect("put");
        assert_eq!(r.output["body"]["body"], json!("[1,2]"), "the whole input by default");
    }

    #[tokio::test]
    async fn client_errors_are_an_action() {
        let addr = server().await;
        let s = services(Registry::empty());
        let r = run(&Http, &s, json!({"url": format!("http://{addr}/missing")}), json!({})).await.expect("404");
        assert_eq!(r, NodeResult::with_action(json!({"status": 404, "body": "no such order"}), "client_error"));
    }

    #[tokio::test]
    async fn server_errors_throttling_and_timeouts_are_retryable() {
        let addr = server().await;
        let s = services(Registry::empty());
        let e = run(&Http, &s, json!({"url": format!("http://{addr}/broken")}), json!({})).await.expect_err("500");
        let expected = format!("GET http://{addr}/broken returned 500 Internal Server Error: database down");
        assert!(matches!(&e, NodeError::Retryable(m) if *m == expected), "{e:?}");
        let e = run(&Http, &s, json!({"url": format!("http://{addr}/busy")}), json!({})).await.expect_err("429");
        assert!(matches!(&e, NodeError::Retryable(m) if m.contains("429")), "{e:?}");
        let params = json!({"url": format!("http://{addr}/slow"), "timeout": "100ms"});
        let started = std::time::Instant::now();
        let e = run(&Http, &s, params, json!({})).await.expect_err("timeout");
        assert!(matches!(&e, NodeError::Retryable(m) if m.contains("/slow") && m.contains("timed out")), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn connection_failures_are_retryable_and_other_statuses_fatal() {
        let addr = server().await;
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr")
        };
        let s = services(Registry::empty());
        let e = run(&Http, &s, json!({"url": format!("http://{closed}/")}), json!({})).await.expect_err("refused");
        assert!(matches!(&e, NodeError::Retryable(_)), "{e:?}");
        let e = run(&Http, &s, json!({"url": format!("http://{addr}/moved")}), json!({})).await.expect_err("304");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("304")), "{e:?}");
    }

    #[tokio::test]
    async fn redirects_are_followed_only_when_asked_and_checked_at_each_hop() {
        let addr = server().await;
        let s = services(Registry::empty());
        let hop = format!("http://{addr}/hop");
        let e = run(&Http, &s, json!({"url": hop, "method": "POST"}), json!({})).await.expect_err("not followed");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("303") && m.contains("follow_redirects")), "{e:?}");
        let r = run(&Http, &s, json!({"url": hop, "method": "POST", "follow_redirects": 1}), json!({})).await;
        let r = r.expect("followed");
        assert_eq!(r.output["body"]["method"], "GET", "a 303 continues with a GET");
        // Credentials stay with their host: 127.0.0.1 to localhost drops Authorization.
        let elsewhere = json!({"url": format!("http://{addr}/elsewhere"), "follow_redirects": 1,
                               "headers": {"Authorization": "Bearer s", "X-Token": "t"}});
        let r = run(&Http, &s, elsewhere, json!({})).await.expect("followed");
        assert_eq!((&r.output["body"]["auth"], &r.output["body"]["token"]), (&json!(null), &json!("t")));
        let same = json!({"url": hop, "follow_redirects": 1, "headers": {"Authorization": "Bearer s"}});
        let r = run(&Http, &s, same, json!({})).await.expect("followed");
        assert_eq!(r.output["body"]["auth"], "Bearer s", "the same host keeps it");
        let params = json!({"url": format!("http://{addr}/to-metadata"), "follow_redirects": 3});
        let e = run(&Http, &s, params, json!({})).await.expect_err("blocked");
        assert!(
            matches!(&e, NodeError::Fatal(m) if m.contains("169.254.169.254 is 169.254.169.254, a link-local address")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn loopback_is_blocked_on_lambda_unless_allowed_and_bodies_are_capped() {
        let addr = server().await;
        let lambda = Services { http: HttpClient::new(Egress::lambda(Vec::new())), ..services(Registry::empty()) };
        let echo = json!({"url": format!("http://{addr}/echo")});
        let e = run(&Http, &lambda, echo.clone(), json!({})).await.expect_err("loopback");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("loopback")), "{e:?}");
        let named = json!({"url": format!("http://localhost:{}/echo", addr.port())});
        let e = run(&Http, &lambda, named.clone(), json!({})).await.expect_err("resolved loopback");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("loopback")), "{e:?}");
        let allowed = Egress::lambda(Egress::parse_networks("127.0.0.0/8,::1").expect("networks"));
        let allowed = Services { http: HttpClient::new(allowed), ..services(Registry::empty()) };
        run(&Http, &allowed, named, json!({})).await.expect("allowed");

        let s = services(Registry::empty());
        let big = format!("http://{addr}/big");
        let e = run(&Http, &s, json!({"url": big, "max_body_bytes": 1000}), json!({})).await.expect_err("capped");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("over 1000 bytes")), "{e:?}");
        let r = run(&Http, &s, json!({"url": big, "max_body_bytes": 2000}), json!({})).await.expect("fits");
        assert_eq!(r.output["body"].as_str().map(str::len), Some(2000));
    }

    #[test]
    fn params_are_validated() {
        let why = |params: Value| Params::parse(&params).err().map(|e| e.0).unwrap_or_default();
        assert!(why(json!({"url": "not a url"})).starts_with("`url` \"not a url\""));
        assert!(why(json!({"url": "ftp://x/"})).contains("only http and https"));
        assert_eq!(why(json!({"url": "http://x/", "method": "GE T"})), "`method` \"GE T\" is not an HTTP method");
        assert_eq!(
            why(json!({"url": "http://x/", "headers": {"a b": "c"}})),
            "`headers`: \"a b\" is not a header name"
        );
        assert!(why(json!({"url": "http://x/", "timeout": "soon"})).contains("`timeout` \"soon\" is not a duration"));
        assert!(why(json!({"url": "http://x/", "body": "$.["})).starts_with("`body`: path"));
        assert_eq!(why(json!({"url": "http://x/", "follow_redirects": 11})), "`follow_redirects` is at most 10");
        assert_eq!(why(json!({"url": "http://x/", "max_body_bytes": 0})), "`max_body_bytes` must be 1 to 6000000");
        let p = Params::parse(&json!({"url": "https://x/"})).expect("defaults");
        assert_eq!((p.method, p.timeout, p.body), (Method::GET, DEFAULT_TIMEOUT, json!("$")));
    }
}
