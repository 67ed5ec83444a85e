//! `lambda`: `{"function": "<name or ARN>", "qualifier": "<version or alias>"}`; invokes the
//! function synchronously with the input as its event and outputs its JSON response.

use async_trait::async_trait;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, from_params};
use crate::node::{Node, NodeContext, NodeError, NodeResult};

pub(super) struct Lambda;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    function: String,
    #[serde(default)]
    qualifier: Option<String>,
}

impl Params {
    pub(super) fn parse(params: &Value) -> Result<Self, ParamsError> {
        let p: Self = from_params(params)?;
        if p.function.is_empty() {
            return Err(ParamsError("`function` is empty".into()));
        }
        Ok(p)
    }
}

/// Error codes worth another attempt besides throttling and 5xx: the function is being
/// updated or is not ready yet.
const TRANSIENT_CODES: &[&str] = &["ResourceConflictException", "ResourceNotReadyException"];

/// Throttling, 5xx, timeouts and connection failures are retryable; the rest is fatal.
fn classify(e: &SdkError<InvokeError>) -> NodeError {
    let retryable = match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            status == 429 || status >= 500 || e.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    let message = format!("Lambda Invoke: {}", adf_common::error_chain(e));
    if retryable { NodeError::Retryable(message) } else { NodeError::Fatal(message) }
}

/// The payload as JSON, or as a string when it is not JSON (null when empty).
fn decode(payload: &[u8]) -> Value {
    if payload.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

#[async_trait]
impl Node for Lambda {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        let client =
            cx.services.lambda.as_ref().ok_or_else(|| NodeError::Fatal("no Lambda client configured".into()))?;
        let out = client
            .invoke()
            .function_name(&p.function)
            .set_qualifier(p.qualifier)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(cx.input.to_string()))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let payload = out.payload().map(Blob::as_ref).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(NodeError::Retryable(format!(
                "function {} failed ({kind}): {}",
                p.function,
                String::from_utf8_lossy(payload)
            )));
        }
        Ok(NodeResult::output(decode(payload)))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, RawQuery};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use serde_json::json;

    use super::super::testing::{run, services};
    use super::*;
    use crate::node::{Registry, Services};

    /// A stand-in for the Lambda Invoke API: `echo` echoes the event and the query, `text`
    /// answers plain text, `boom` fails in the function, `busy` is throttled, `gone` does not
    /// exist.
    async fn invoke(
        Path(name): Path<String>,
        RawQuery(query): RawQuery,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, String) {
        let mut headers = HeaderMap::new();
        let (status, body) = match name.as_str() {
            "echo" => {
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                (StatusCode::OK, json!({"event": event, "query": query}).to_string())
            }
            "text" => (StatusCode::OK, "plain".into()),
            "boom" => {
                headers.insert("x-amz-function-error", "Unhandled".parse().expect("header"));
                (StatusCode::OK, r#"{"errorMessage":"boom"}"#.into())
            }
            "busy" => {
                headers.insert("x-amzn-errortype", "TooManyRequestsException".parse().expect("header"));
                (StatusCode::TOO_MANY_REQUESTS, r#"{"message":"Rate exceeded"}"#.into())
            }
            _ => {
                headers.insert("x-amzn-errortype", "ResourceNotFoundException".parse().expect("header"));
                (StatusCode::NOT_FOUND, r#"{"message":"Function not found"}"#.into())
            }
        };
        (status, headers, body)
    }

    async fn fake_lambda() -> Services {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let app = Router::new().route("/2015-03-31/functions/{name}/invocations", post(invoke));
        tokio::spawn(async move { axum::serve(listener, app).await });
        client_for(addr)
    }

    fn client_for(addr: SocketAddr) -> Services {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .build();
        Services { lambda: Some(aws_sdk_lambda::Client::from_conf(config)), ..services(Registry::empty()) }
    }

    #[tokio::test]
    async fn outputs_the_response() {
        let s = fake_lambda().await;
        let r =
            run(&Lambda, &s, json!({"function": "echo", "qualifier": "live"}), json!({"a": 1})).await.expect("echo");
        assert_eq!(r, NodeResult::output(json!({"event": {"a": 1}, "query": "Qualifier=live"})));
        let r = run(&Lambda, &s, json!({"function": "text"}), json!({})).await.expect("text");
        assert_eq!(r.output, json!("plain"));
    }

    #[tokio::test]
    async fn function_errors_and_throttling_are_retryable() {
        let s = fake_lambda().await;
        let e = run(&Lambda, &s, json!({"function": "boom"}), json!({})).await.expect_err("boom");
        assert!(
            matches!(&e, NodeError::Retryable(m) if m == r#"function boom failed (Unhandled): {"errorMessage":"boom"}"#),
            "{e:?}"
        );
        let e = run(&Lambda, &s, json!({"function": "busy"}), json!({})).await.expect_err("busy");
        assert!(matches!(&e, NodeError::Retryable(m) if m.contains("TooManyRequestsException")), "{e:?}");
    }

    #[tokio::test]
    async fn a_missing_function_is_fatal() {
        let s = fake_lambda().await;
        let e = run(&Lambda, &s, json!({"function": "gone"}), json!({})).await.expect_err("gone");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("ResourceNotFoundException")), "{e:?}");
    }

    #[tokio::test]
    async fn connection_failures_are_retryable() {
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr")
        };
        let s = client_for(closed);
        let e = run(&Lambda, &s, json!({"function": "echo"}), json!({})).await.expect_err("refused");
        assert!(matches!(&e, NodeError::Retryable(m) if m.starts_with("Lambda Invoke: ")), "{e:?}");
    }

    #[tokio::test]
    async fn without_a_client_it_is_fatal() {
        let s = services(Registry::empty());
        let e = run(&Lambda, &s, json!({"function": "echo"}), json!({})).await.expect_err("no client");
        assert!(matches!(&e, NodeError::Fatal(m) if m == "no Lambda client configured"), "{e:?}");
    }

    #[test]
    fn payloads_decode_as_json_or_text() {
        assert_eq!(decode(b""), Value::Null);
        assert_eq!(decode(b"[1]"), json!([1]));
        assert_eq!(decode(b"not json"), json!("not json"));
    }
}
