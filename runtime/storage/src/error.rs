//! The one error every store returns.

/// What went wrong in a storage operation. Callers match on the kind; the text says what to
/// change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The key or object does not exist (operations that require it, such as a ranged get).
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional operation's condition did not hold (create-only put on an existing
    /// object, an ETag that no longer matches).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A value, key or metadata over its limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What is too large: "key", "value", "metadata".
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// An argument outside what the store accepts (a TTL under 60 s, a part number out of
    /// range, an empty key).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The store asked us to slow down; retrying later may succeed.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The credentials lack a permission (a binding with `access = "read"` that writes).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The binding is missing or of another kind, or the environment is incomplete.
    #[error("binding: {0}")]
    Binding(String),
    /// A value could not be decoded as asked (text that is not UTF-8, JSON that does not parse).
    #[error("decoding {what}: {reason}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Any other failure of the backend (network, service error), with its causes.
    #[error("{0}")]
    Backend(String),
}

/// The result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// An [`StorageError::Invalid`] for `what`.
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { what, reason: reason.into() }
    }

    /// The error for an SDK failure: throttling and access denial by their service error
    /// codes, everything else as [`StorageError::Backend`] with the causes on one line.
    pub fn sdk<E, R>(op: &str, e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug + 'static,
    {
        let text = format!("{op}: {}", adf_common::error_chain(e));
        match e.as_service_error().and_then(|s| s.code()) {
            Some(
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "SlowDown"
                | "TooManyRequestsException",
            ) => Self::Throttled(text),
            Some("AccessDeniedException" | "AccessDenied") => Self::AccessDenied(text),
            _ => Self::Backend(text),
        }
    }
}

#[cfg(feature = "stores")]
impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        use object_store::Error as E;
        let text = adf_common::error_chain(&e);
        match e {
            E::NotFound { path, .. } => Self::NotFound(path),
            E::Precondition { .. } | E::AlreadyExists { .. } | E::NotModified { .. } => Self::PreconditionFailed(text),
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => Self::AccessDenied(text),
            E::InvalidPath { .. } | E::NotSupported { .. } | E::NotImplemented { .. } => {
                Self::invalid("object request", text)
            }
            _ => Self::Backend(text),
        }
    }
}

#[cfg(feature = "stores")]
impl From<redis::RedisError> for StorageError {
    fn from(e: redis::RedisError) -> Self {
        Self::Backend(format!("redis: {}", adf_common::error_chain(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "stores")]
    #[test]
    fn object_store_errors_map_to_their_kinds() {
        let e: StorageError = object_store::Error::NotFound { path: "a/b".into(), source: "gone".into() }.into();
        assert!(matches!(e, StorageError::NotFound(ref p) if p == "a/b"), "{e}");
        let e: StorageError = object_store::Error::Precondition { path: "a".into(), source: "etag".into() }.into();
        assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
        let e: StorageError = object_store::Error::AlreadyExists { path: "a".into(), source: "there".into() }.into();
        assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
    }

    #[test]
    fn messages_say_what_and_how_much() {
        let e = StorageError::TooLarge { what: "key", size: 600, limit: 512 };
        assert_eq!(e.to_string(), "key is 600 bytes, over the limit of 512 bytes");
        assert_eq!(StorageError::invalid("ttl", "at least 60 s").to_string(), "invalid ttl: at least 60 s");
    }
}
