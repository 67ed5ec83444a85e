//! Injected AWS faults: an HTTP client for the SDK that makes chosen calls fail, either before
//! the emulator sees them (throttling, a 5xx) or after it applied them (its answer is lost and
//! a 5xx comes back instead), or never answer at all. The SDK's own retries, and then the
//! runtimes' recovery, face real faults on real requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Refused before the emulator sees it, as throttled (DynamoDB and SQS: 400
    /// `ThrottlingException`; S3: 503 `SlowDown`).
    Throttle,
    /// Refused before the emulator sees it with a 500.
    ServerError,
    /// Applied by the emulator, but its answer is replaced by a 500: the caller cannot tell.
    LoseAnswer,
    /// Never answered (the caller's timeout or an abort ends it).
    Hang,
}

/// One call, as the injector sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The signing name: `dynamodb`, `sqs`, `s3`, ...
    pub service: &'a str,
    /// The operation for JSON protocols (`TransactWriteItems`, `SendMessage`), else the
    /// HTTP method (`PUT`, `GET`, ... for S3).
    pub operation: &'a str,
}

type Rule = dyn Fn(&Call<'_>) -> Option<Fault> + Send + Sync;

/// A fault plan and what it injected; clones share both.
#[derive(Clone)]
pub struct Faults {
    rule: Arc<Rule>,
    armed: Arc<AtomicBool>,
    injected: Arc<Mutex<BTreeMap<(Fault, String), u64>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("injected", &self.injected()).finish_non_exhaustive()
    }
}

impl Faults {
    /// Faults chosen by `rule` for each call.
    pub fn new(rule: impl Fn(&Call<'_>) -> Option<Fault> + Send + Sync + 'static) -> Self {
        Self { rule: Arc::new(rule), armed: Arc::new(AtomicBool::new(true)), injected: Arc::default() }
    }

    /// Injects faults (the default) or, with `false`, lets every call through: for set-up and
    /// checks that are not under test.
    pub fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }

    /// `percent` of DynamoDB, SQS and S3 calls fail, picked by a generator seeded with `seed`;
    /// each fault is in turn a throttle, a 500, or a lost answer.
    pub fn random(percent: u8, seed: u64) -> Self {
        let rng = Mutex::new(fastrand::Rng::with_seed(seed));
        let turn = AtomicU64::new(0);
        Self::new(move |call| {
            if !matches!(call.service, "dynamodb" | "sqs" | "s3") {
                return None;
            }
            let hit = rng.lock().map(|mut r| r.u8(0..100) < percent).unwrap_or(false);
            hit.then(|| match turn.fetch_add(1, Ordering::Relaxed) % 3 {
                0 => Fault::Throttle,
                1 => Fault::ServerError,
                _ => Fault::LoseAnswer,
            })
        })
    }

    /// How many faults were injected, in all.
    pub fn injected(&self) -> u64 {
        self.injected.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    /// How many faults of each kind were injected into each `service.operation`.
    pub fn summary(&self) -> String {
        let counts = self.injected.lock().map(|m| m.clone()).unwrap_or_default();
        let parts: Vec<String> = counts.iter().map(|((fault, call), n)| format!("{fault:?} {call}: {n}")).collect();
        parts.join(", ")
    }

    /// `config` with every call going through this plan.
    pub fn wrap(&self, config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        let inner =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_https();
        config.to_builder().http_client(FaultyClient { inner, faults: self.clone() }).build()
    }

    fn count(&self, fault: Fault, call: &Call<'_>) {
        if let Ok(mut m) = self.injected.lock() {
            *m.entry((fault, format!("{}.{}", call.service, call.operation))).or_default() += 1;
        }
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: Faults,
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, faults: self.faults.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Faults,
}

/// The signing name in a SigV4 `Authorization` header's credential scope.
fn service_of(authorization: &str) -> Option<&str> {
    let scope = authorization.split("Credential=").nth(1)?.split(',').next()?;
    scope.split('/').nth(3)
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let headers = request.headers();
        let service = headers.get("authorization").and_then(service_of).unwrap_or("unknown").to_string();
        let operation = match headers.get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => request.method().to_string(),
        };
        let call = Call { service: &service, operation: &operation };
        let fault = if self.faults.armed.load(Ordering::SeqCst) { (self.faults.rule)(&call) } else { None };
        let Some(fault) = fault else { return self.inner.call(request) };
        self.faults.count(fault, &call);
        let s3 = service == "s3";
        match fault {
            Fault::Throttle => HttpConnectorFuture::ready(Ok(refusal(s3, true))),
            Fault::ServerError => HttpConnectorFuture::ready(Ok(refusal(s3, false))),
            Fault::LoseAnswer => {
                let applied = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    applied.await?;
                    Ok(refusal(s3, false))
                })
            }
            Fault::Hang => HttpConnectorFuture::new(std::future::pending()),
        }
    }
}

/// The error answer AWS gives when throttling (`throttle`) or failing inside.
fn refusal(s3: bool, throttle: bool) -> HttpResponse {
    let (status, code, body, content_type) = match (s3, throttle) {
        (true, true) => (503, "SlowDown", xml_error("SlowDown"), "application/xml"),
        (true, false) => (500, "InternalError", xml_error("InternalError"), "application/xml"),
        (false, true) => (400, "ThrottlingException", json_error("ThrottlingException"), "application/x-amz-json-1.0"),
        (false, false) => (500, "InternalServerError", json_error("InternalServerError"), "application/x-amz-json-1.0"),
    };
    let status = StatusCode::try_from(status).expect("a valid status");
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response.headers_mut().insert("content-type", content_type);
    response.headers_mut().insert("x-amzn-errortype", code);
    response
}

fn xml_error(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected fault</Message></Error>"
    )
}

fn json_error(code: &str) -> String {
    format!("{{\"__type\":\"{code}\",\"message\":\"injected fault\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_the_credential_scopes_signing_name() {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(service_of(auth), Some("dynamodb"));
        assert_eq!(service_of("Bearer x"), None);
    }

    #[test]
    fn a_random_plan_hits_about_its_share_of_the_services_it_names_and_rotates_faults() {
        let faults = Faults::random(10, 7);
        let dynamo = Call { service: "dynamodb", operation: "GetItem" };
        let hits: Vec<Fault> = (0..10_000).filter_map(|_| (faults.rule)(&dynamo)).collect();
        assert!((800..1200).contains(&hits.len()), "{}", hits.len());
        assert_eq!(hits[..3], [Fault::Throttle, Fault::ServerError, Fault::LoseAnswer]);
        let sts = Call { service: "sts", operation: "POST" };
        assert!((0..1000).all(|_| (faults.rule)(&sts).is_none()));
    }
}
