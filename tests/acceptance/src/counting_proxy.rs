//! An HTTP proxy in front of the emulator that counts the AWS requests passing through, by
//! service and operation: how benchmarks count what another process (the provider under
//! Terraform) sends. Point `AWS_ENDPOINT_URL` at [`CountingProxy::endpoint`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The largest request or answer body forwarded (a Lambda zip upload fits).
const MAX_BODY: usize = 256 * 1024 * 1024;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<BTreeMap<String, u64>>,
}

/// A counting proxy on a free loopback port; stops when dropped.
pub struct CountingProxy {
    endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Forwards every request to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?,
            counts: Mutex::default(),
        });
        let app = Router::new().fallback(forward).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { endpoint, shared, server })
    }

    /// The URL to send AWS requests to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Requests since the last call, keyed `service.Operation`; the counts start again at zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.shared.counts.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let key = operation(&parts.method, parts.uri.path(), &parts.headers, &body);
    if let Ok(mut c) = shared.counts.lock() {
        *c.entry(key).or_default() += 1;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = shared.client.request(parts.method.clone(), format!("{}{path}", shared.upstream)).body(body);
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
    for (name, value) in &parts.headers {
        if ![HOST, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION].contains(name) {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut headers = answer.headers().clone();
            for hop in [axum::http::header::TRANSFER_ENCODING, axum::http::header::CONNECTION] {
                headers.remove(hop);
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// `service.Operation` of a request: the service from the SigV4 credential scope, the operation
/// from `X-Amz-Target` (JSON protocols), `Action=` (query protocols), else the method and the
/// path's first segment (REST protocols such as Lambda's and S3's).
fn operation(method: &axum::http::Method, path: &str, headers: &HeaderMap, body: &[u8]) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unsigned")
        .to_string();
    let target = header("x-amz-target");
    if let Some(op) = target.rsplit('.').next().filter(|op| !op.is_empty()) {
        return format!("{service}.{op}");
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return format!("{service}.{action}");
    }
    let first = path.trim_start_matches('/').split('/').find(|s| !s.is_empty() && !s.starts_with("20")).unwrap_or("");
    format!("{service}.{method} /{first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().expect("value"))).collect()
    }

    #[test]
    fn operations_are_named_by_protocol() {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host";
        let h = headers(&[("authorization", auth), ("x-amz-target", "DynamoDB_20120810.DescribeTable")]);
        assert_eq!(operation(&axum::http::Method::POST, "/", &h, b""), "dynamodb.DescribeTable");
        let iam = auth.replace("dynamodb", "iam");
        assert_eq!(
            operation(
                &axum::http::Method::POST,
                "/",
                &headers(&[("authorization", &iam)]),
                b"Action=GetRole&Version=1"
            ),
            "iam.GetRole"
        );
        let lambda = auth.replace("dynamodb", "lambda");
        let get = operation(
            &axum::http::Method::GET,
            "/2015-03-31/functions/f",
            &headers(&[("authorization", &lambda)]),
            b"",
        );
        assert_eq!(get, "lambda.GET /functions");
    }
}
