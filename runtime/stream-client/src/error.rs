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
    /// 409: a group commit that would move backwards, or a producer sequence that does not
    /// follow the last one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: retention removed the offset; `earliest` is the first one still readable.
    #[error("out of range: {message}")]
    OutOfRange {
        /// The server's message.
        message: String,
        /// The offset asked for.
        offset: u64,
        /// The earliest offset still readable.
        earliest: u64,
    },
    /// 413: a record over 1 MiB, or a batch over 6 MB or 10,000 records.
    #[error("too large: {0}")]
    TooLarge(String),
    /// 429: Lambda throttled the call; retry later.
    #[error("throttled: {0}")]
    Throttled(String),
    /// 503: the partition is contended or AWS throttled the stream; retry after
    /// `retry_after_secs` (from `Retry-After`, 1 when absent).
    #[error("unavailable: {message}")]
    Unavailable {
        /// The server's message.
        message: String,
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
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
    /// The error for a non-success `status` whose body is `body` and whose `Retry-After`
    /// header (seconds) is `retry_after`.
    pub fn from_status(status: u16, retry_after: Option<&str>, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let message = message(json.as_ref(), body);
        match status {
            400 => Self::BadRequest(message),
            401 | 403 => Self::Denied(message),
            404 => Self::NotFound(message),
            409 => Self::Conflict(message),
            410 => match json.as_ref().map(|j| (j["offset"].as_u64(), j["earliest_offset"].as_u64())) {
                Some((Some(offset), Some(earliest))) => Self::OutOfRange { message, offset, earliest },
                _ => Self::Status { status, message },
            },
            413 => Self::TooLarge(message),
            429 => Self::Throttled(message),
            503 => {
                let retry_after_secs = retry_after.and_then(|v| v.trim().parse().ok()).unwrap_or(1);
                Self::Unavailable { message, retry_after_secs }
            }
            500..=599 => Self::Server { status, message },
            _ => Self::Status { status, message },
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Server { .. } | Self::Unavailable { .. } | Self::Throttled(_) | Self::Transport(_))
    }

    /// How long the server asked to wait before a retry, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Unavailable { retry_after_secs, .. } => Some(std::time::Duration::from_secs(*retry_after_secs)),
            _ => None,
        }
    }
}

/// The `message` (the stream's errors) or `Message` (Lambda's own) of a JSON body, else its
/// text.
fn message(json: Option<&serde_json::Value>, body: &[u8]) -> String {
    let field = json.and_then(|v| v.get("message").or_else(|| v.get("Message"))).and_then(|m| m.as_str());
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
        assert_eq!(Error::from_status(413, None, body), Error::TooLarge("record is too large".into()));
        assert_eq!(
            Error::from_status(404, None, br#"{"message":"no partition 9"}"#),
            Error::NotFound("no partition 9".into())
        );
        assert_eq!(Error::from_status(400, None, br#"{"message":"m"}"#), Error::BadRequest("m".into()));
        assert_eq!(Error::from_status(409, None, br#"{"message":"m"}"#), Error::Conflict("m".into()));
        assert_eq!(Error::from_status(403, None, br#"{"Message":"Forbidden"}"#), Error::Denied("Forbidden".into()));
        assert_eq!(
            Error::from_status(502, None, b"Bad Gateway\n"),
            Error::Server { status: 502, message: "Bad Gateway".into() }
        );
        assert_eq!(Error::from_status(418, None, b""), Error::Status { status: 418, message: String::new() });
        assert_eq!(
            Error::from_status(410, None, br#"{"message":"gone","offset":2,"earliest_offset":40}"#),
            Error::OutOfRange { message: "gone".into(), offset: 2, earliest: 40 }
        );
        let busy = Error::from_status(503, Some("7"), br#"{"message":"contended"}"#);
        assert_eq!(busy, Error::Unavailable { message: "contended".into(), retry_after_secs: 7 });
        assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert_eq!(Error::from_status(503, None, b"").retry_after(), Some(std::time::Duration::from_secs(1)));
    }

    #[test]
    fn only_server_throttling_and_transport_errors_are_retryable() {
        assert!(Error::from_status(500, None, b"").is_retryable());
        assert!(Error::from_status(503, None, b"").is_retryable());
        assert!(Error::from_status(429, None, b"").is_retryable());
        assert!(Error::Transport("reset".into()).is_retryable());
        for status in [400, 403, 404, 409, 410, 413] {
            assert!(!Error::from_status(status, None, b"").is_retryable(), "{status}");
        }
    }
}
