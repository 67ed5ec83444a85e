//! `http`: `{"url": "...", "method": "POST", "headers": {..}, "timeout": "10s", "body": <template>}`;
//! outputs `{"status": n, "body": <json or text>}` with action `ok` (2xx) or `client_error`
//! (4xx). 429, 5xx, timeouts and connection errors are retryable.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ParamsError, duration, from_params};
use crate::expr;
use crate::node::{Node, NodeContext, NodeError, NodeResult};

pub(super) struct Http;

/// The per-request timeout unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 200;

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
}

pub(super) struct Params {
    url: Url,
    method: Method,
    headers: HeaderMap,
    timeout: Duration,
    /// The body template (`$` by default); not sent with GET or HEAD.
    body: Value,
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
        Ok(Self { url, method, headers, timeout, body })
    }
}

/// Timeouts, connection failures and broken responses are retryable; a request that cannot
/// be built is not.
fn classify(p: &Params, e: reqwest::Error) -> NodeError {
    let fatal = e.is_builder() || e.is_redirect();
    let message = format!("{} {}: {}", p.method, p.url, adf_common::error_chain(&e.without_url()));
    if fatal { NodeError::Fatal(message) } else { NodeError::Retryable(message) }
}

#[async_trait]
impl Node for Http {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        let mut req = cx.services.http.request(p.method.clone(), p.url.clone()).timeout(p.timeout);
        if p.method != Method::GET && p.method != Method::HEAD {
            if !p.headers.contains_key(CONTENT_TYPE) {
                req = req.header(CONTENT_TYPE, "application/json");
            }
            req = req.body(expr::transform(&p.body, &cx.input).to_string());
        }
        let resp = req.headers(p.headers.clone()).send().await.map_err(|e| classify(&p, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| classify(&p, e))?;
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
    use crate::node::Registry;

    /// Echoes the method, the content type and the body as JSON.
    async fn echo(method: AxumMethod, headers: AxumHeaders, body: Bytes) -> String {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        json!({
            "method": method.as_str(),
            "content_type": header("content-type"),
            "token": header("x-token"),
            "body": String::from_utf8_lossy(&body),
        })
        .to_string()
    }

    async fn server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/missing", any(|| async { (StatusCode::NOT_FOUND, "no such order") }))
            .route("/broken", any(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database down") }))
            .route("/busy", any(|| async { StatusCode::TOO_MANY_REQUESTS }))
            .route("/moved", any(|| async { StatusCode::NOT_MODIFIED }))
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
        let body = json!({"method": "GET", "content_type": null, "token": "t", "body": ""});
        assert_eq!(r, NodeResult::with_action(json!({"status": 200, "body": body}), "ok"));
    }

    #[tokio::test]
    async fn post_sends_the_body_template_as_json() {
        let addr = server().await;
        let s = services(Registry::empty());
        let params = json!({"url": format!("http://{addr}/echo"), "method": "post", "body": {"id": "$.order"}});
        let r = run(&Http, &s, params, json!({"order": 7})).await.expect("post");
        let body = json!({"method": "POST", "content_type": "application/json", "token": null, "body": "{\"id\":7}"});
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
        let p = Params::parse(&json!({"url": "https://x/"})).expect("defaults");
        assert_eq!((p.method, p.timeout, p.body), (Method::GET, DEFAULT_TIMEOUT, json!("$")));
    }
}
