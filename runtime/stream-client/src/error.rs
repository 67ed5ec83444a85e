//! What can go wrong talking to a topic, mapped from the HTTP status and the API's
//! `{"message"}` body.

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: a malformed request or an offset past the high watermark.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401 or 403: the Function URL refused the caller (credentials, signature or policy).
    #[error("access denied: {0}")]
    Denied(String),
    /// 404: an unknown topic, partition or route.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a group commit that would move backwards.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: a record over 1 MiB, or a batch over 6 MB or 10,000 records.
    #[error("too large: {0}")]
    TooLarge(String),
    /// 429: Lambda throttled the call; retry later.
    #[error("throttled: {0}")]
    Throttled(String),
    /// 5xx: the stream or AWS failed; nothing acknowledged was lost, retry.
    #[error("server error {status}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Any other status.
    #[error("unexpected status {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The request did not get an answer (connection, timeout, TLS).
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the JSON the API promises.
    #[error("invalid response: {0}")]
    Decode(String),
    /// Credentials could not be loaded or the request could not be signed.
    #[error("signing: {0}")]
    Signing(String),
    /// The client was used in a way it does not support (bad URL, commit without a group).
    #[error("{0}")]
    Usage(String),
    /// The producer stopped before the record was acknowledged.
    #[error("the producer is closed")]
    Closed,
}

impl Error {
    /// The error for a non-success `status` whose body is `body`.
    pub fn from_status(status: u16, body: &[u8]) -> Self {
        let message = message(body);
        match status {
            400 => Self::BadRequest(message),
            401 | 403 => Self::Denied(message),
            404 => Self::NotFound(message),
            409 => Self::Conflict(message),
            413 => Self::TooLarge(message),
            429 => Self::Throttled(message),
            500..=599 => Self::Server { status, message },
            _ => Self::Status { status, message },
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Server { .. } | Self::Throttled(_) | Self::Transport(_))
    }
}

/// The `message` (the stream's errors) or `Message` (Lambda's own) of a JSON body, else its
/// text.
fn message(body: &[u8]) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = json.as_ref().and_then(|v| v.get("message").or_else(|| v.get("Message"))).and_then(|m| m.as_str());
    match field {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(body).trim().to_string(),
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(adf_common::error_chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants_with_the_message() {
        let body = br#"{"message":"record is too large"}"#;
        assert_eq!(Error::from_status(413, body), Error::TooLarge("record is too large".into()));
        assert_eq!(
            Error::from_status(404, br#"{"message":"no partition 9"}"#),
            Error::NotFound("no partition 9".into())
        );
        assert_eq!(Error::from_status(400, br#"{"message":"m"}"#), Error::BadRequest("m".into()));
        assert_eq!(Error::from_status(409, br#"{"message":"m"}"#), Error::Conflict("m".into()));
        assert_eq!(Error::from_status(403, br#"{"Message":"Forbidden"}"#), Error::Denied("Forbidden".into()));
        assert_eq!(
            Error::from_status(502, b"Bad Gateway\n"),
            Error::Server { status: 502, message: "Bad Gateway".into() }
        );
        assert_eq!(Error::from_status(418, b""), Error::Status { status: 418, message: String::new() });
    }

    #[test]
    fn only_server_throttling_and_transport_errors_are_retryable() {
        assert!(Error::from_status(500, b"").is_retryable());
        assert!(Error::from_status(503, b"").is_retryable());
        assert!(Error::from_status(429, b"").is_retryable());
        assert!(Error::Transport("reset".into()).is_retryable());
        for status in [400, 403, 404, 409, 413] {
            assert!(!Error::from_status(status, b"").is_retryable(), "{status}");
        }
    }
}
