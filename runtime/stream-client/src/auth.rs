//! How requests prove who sends them: nothing (a Function URL with auth `NONE`), or SigV4 for
//! the `lambda` service (auth `AWS_IAM`, the default).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use crate::Error;

/// Where a signature is valid: a region and a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The region, such as `eu-west-1`.
    pub region: &'a str,
    /// The service: `lambda` for Function URLs, `execute-api` for API Gateway.
    pub service: &'a str,
}

impl<'a> Scope<'a> {
    /// A Function URL's scope in `region`.
    pub fn lambda(region: &'a str) -> Self {
        Self { region, service: "lambda" }
    }
}

/// The caller's identity.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Unsigned requests, for a Function URL whose auth type is `NONE`.
    None,
    /// SigV4-signed requests, for a Function URL whose auth type is `AWS_IAM`.
    Iam {
        /// Where credentials come from (refreshed as they expire).
        credentials: SharedCredentialsProvider,
        /// The region of the Function URL.
        region: String,
    },
}

impl Auth {
    /// IAM auth from the AWS default chain, as the provider loads it: `AWS_PROFILE`, the
    /// `AWS_*` environment, shared config and credentials files, SSO, web identity, container
    /// and instance roles; the region from `AWS_REGION` or the profile.
    pub async fn from_env() -> Result<Self, Error> {
        let config = adf_common::sdk::load().await;
        let region = config
            .region()
            .map(ToString::to_string)
            .ok_or_else(|| Error::Signing("no AWS region: set AWS_REGION or a region in the profile".into()))?;
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| Error::Signing("no AWS credentials provider in the default chain".into()))?;
        Ok(Self::Iam { credentials, region })
    }

    /// IAM auth with fixed credentials.
    pub fn static_credentials(access_key: &str, secret_key: &str, session_token: Option<String>, region: &str) -> Self {
        let credentials = Credentials::new(access_key, secret_key, session_token, None, "adf-stream-client");
        Self::Iam { credentials: SharedCredentialsProvider::new(credentials), region: region.to_string() }
    }

    /// The headers to add to a request so it carries this identity.
    pub(crate) async fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Error> {
        match self {
            Self::None => Ok(Vec::new()),
            Self::Iam { credentials, region } => {
                let creds = credentials
                    .provide_credentials()
                    .await
                    .map_err(|e| Error::Signing(format!("loading credentials: {e}")))?;
                sigv4_headers(&creds, Scope::lambda(region), SystemTime::now(), method, url, headers, body)
            }
        }
    }
}

/// SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256` and, with a session,
/// `x-amz-security-token`) for a request in `scope` (a Function URL's, usually) signed at `time`.
pub fn sigv4_headers(
    creds: &Credentials,
    scope: Scope<'_>,
    time: SystemTime,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, Error> {
    let failed = |e: &dyn std::fmt::Display| Error::Signing(e.to_string());
    let identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| failed(&e))?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use sha2::Digest;

    use super::*;

    /// 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
    fn time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn signed(session: Option<&str>, body: &[u8]) -> BTreeMap<String, String> {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", session.map(String::from), None, "test");
        let url = "https://abc.lambda-url.eu-west-1.on.aws/topics/t/produce";
        let headers = [("content-type", "application/json")];
        let out = sigv4_headers(&creds, Scope::lambda("eu-west-1"), time(), "POST", url, &headers, body);
        out.into_iter().flatten().collect()
    }

    #[test]
    fn signing_adds_authorization_date_and_payload_hash_for_lambda() {
        let h = signed(None, b"{\"records\":[]}");
        let auth = &h["authorization"];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/lambda/aws4_request, "),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date"), "{auth}");
        assert_eq!(h["x-amz-date"], "20150830T123600Z");
        assert_eq!(h["x-amz-content-sha256"], hex(&sha2::Sha256::digest(b"{\"records\":[]}")));
        assert!(!h.contains_key("x-amz-security-token"));
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let h = signed(Some("session"), b"");
        assert_eq!(h["x-amz-security-token"], "session");
        assert!(h["authorization"].contains("x-amz-security-token"), "{}", h["authorization"]);
    }

    #[test]
    fn the_signature_covers_the_body() {
        let signature = |body: &[u8]| signed(None, body)["authorization"].clone();
        assert_ne!(signature(b"a"), signature(b"b"));
        assert_eq!(signature(b"a"), signature(b"a"));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
