//! The one error type of the services layer, and the one mapper from SDK errors to it.

use std::fmt::Display;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services use for "it is not there".
const NOT_FOUND: [&str; 8] = [
    "ResourceNotFoundException",
    "NotFoundException",
    "NoSuchEntity",
    "NoSuchBucket",
    "NotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchTagSet",
];
/// Error codes for "something of that name exists already".
const ALREADY_EXISTS: [&str; 6] = [
    "ResourceConflictException",
    "ResourceInUseException",
    "EntityAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "QueueAlreadyExists",
    "ResourceAlreadyExistsException",
];
/// Error codes for throttling.
const THROTTLED: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
];

/// Why an AWS step failed. Every variant reads as "what, on what: why".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The call's target does not exist.
    #[error("{op} {target}: {cause}")]
    NotFound {
        /// The API operation.
        op: &'static str,
        /// What it was about ("SQS queue orders-jobs").
        target: String,
        /// The SDK error with its causes.
        cause: String,
    },
    /// Something of that name exists already.
    #[error("{op} {target}: {cause}")]
    AlreadyExists {
        /// The API operation.
        op: &'static str,
        /// What it was about.
        target: String,
        /// The SDK error with its causes.
        cause: String,
    },
    /// It exists, but this resource did not make it (it lacks the owner tag).
    #[error("{kind} {target} already exists and {}", not_owned_hint(tag, owner, found.as_deref()))]
    NotOwned {
        /// "SQS queue", "IAM role", ...
        kind: &'static str,
        /// Its name.
        target: String,
        /// The owner tag's key.
        tag: &'static str,
        /// The owner tag value this resource expects.
        owner: String,
        /// The owner tag value it carries, if any.
        found: Option<String>,
    },
    /// AWS throttled the call and the SDK's retries ran out.
    #[error("{op} {target}: throttled: {cause}")]
    Throttled {
        /// The API operation.
        op: &'static str,
        /// What it was about.
        target: String,
        /// The SDK error with its causes.
        cause: String,
    },
    /// Input that cannot be turned into a request, or that AWS refuses for good.
    #[error("{0}")]
    Invalid(String),
    /// It disappeared while being configured.
    #[error("{kind} {target} disappeared while being configured; apply again")]
    Vanished {
        /// What it is.
        kind: &'static str,
        /// Its name.
        target: String,
    },
    /// A runtime library's store failed (its message names the operation and table).
    #[error("{0}")]
    Runtime(String),
    /// Any other failed call.
    #[error("{op} {target}: {cause}")]
    Call {
        /// The API operation.
        op: &'static str,
        /// What it was about.
        target: String,
        /// The error with its causes.
        cause: String,
        /// Whether trying again may succeed (a timeout, a lost connection, a 5xx).
        retryable: bool,
    },
}

impl AwsError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Throttled { .. } | AwsError::Call { retryable: true, .. })
    }

    /// Whether the target does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AwsError::NotFound { .. })
    }

    /// Whether something of that name exists already.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, AwsError::AlreadyExists { .. })
    }

    /// A failure that is not an SDK error (a waiter's, a partial batch failure's).
    pub fn other(op: &'static str, target: impl Display, cause: impl Display) -> Self {
        AwsError::Call { op, target: target.to_string(), cause: cause.to_string(), retryable: false }
    }

    /// An SDK builder refused a request.
    pub fn build(e: impl Display) -> Self {
        AwsError::Invalid(format!("building request: {e}"))
    }
}

impl From<adf_workflow::store::StoreError> for AwsError {
    fn from(e: adf_workflow::store::StoreError) -> Self {
        AwsError::Runtime(e.to_string())
    }
}

/// What a call acts on, as errors name it: `DynamoDB table orders`. Formatted only on failure.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a>(&'static str, &'a str);

impl<'a> Target<'a> {
    /// A DynamoDB table.
    pub fn table(name: &'a str) -> Self {
        Self("DynamoDB table", name)
    }
    /// An SQS queue.
    pub fn queue(name: &'a str) -> Self {
        Self("SQS queue", name)
    }
    /// An S3 bucket.
    pub fn bucket(name: &'a str) -> Self {
        Self("bucket", name)
    }
    /// A Lambda function.
    pub fn function(name: &'a str) -> Self {
        Self("function", name)
    }
    /// An IAM role.
    pub fn role(name: &'a str) -> Self {
        Self("IAM role", name)
    }
    /// An ECR repository.
    pub fn repository(name: &'a str) -> Self {
        Self("ECR repository", name)
    }
    /// An MSK cluster.
    pub fn cluster(name: &'a str) -> Self {
        Self("MSK cluster", name)
    }
    /// A CloudFormation stack.
    pub fn stack(name: &'a str) -> Self {
        Self("CloudFormation stack", name)
    }
    /// An API Gateway HTTP API.
    pub fn api(name: &'a str) -> Self {
        Self("HTTP API", name)
    }
    /// A CloudWatch log group.
    pub fn log_group(name: &'a str) -> Self {
        Self("log group", name)
    }
    /// A Lambda event source mapping.
    pub fn mapping(uuid: &'a str) -> Self {
        Self("event source mapping", uuid)
    }
}

impl Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// `send().await.at(target)?`: an SDK result with its error mapped by [`call`], the operation
/// named after the SDK's error type (`DescribeLogGroupsError` is `DescribeLogGroups`).
pub trait Sent<T> {
    /// Maps the error of this call on `target`.
    fn at(self, target: impl Display) -> Result<T, AwsError>;
}

impl<T, E, R> Sent<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    fn at(self, target: impl Display) -> Result<T, AwsError> {
        self.map_err(|e| call(operation::<E>(), target, &e))
    }
}

/// The operation an SDK error type belongs to: `aws_sdk_x::operation::get_role::GetRoleError`
/// is `GetRole`.
fn operation<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    let last = name.rsplit("::").next().unwrap_or(name);
    last.strip_suffix("Error").unwrap_or(last)
}

/// What a call that found no credentials says, instead of the SDK's report of each provider
/// it tried (which goes to the provider log).
pub const NO_CREDENTIALS: &str = "no AWS credentials were found: the SDK looked in the environment \
     (AWS_ACCESS_KEY_ID), the shared config and credentials files (AWS_PROFILE), a web identity token, \
     the ECS container and the EC2 instance metadata";

/// The causes of `e` as short sentences.
pub fn cause_of<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let chain = adf_common::error_chain(e);
    if matches!(e, SdkError::DispatchFailure(_)) && chain.contains("no credentials found") {
        tracing::debug!(cause = %chain, "no credentials");
        return NO_CREDENTIALS.to_string();
    }
    chain
}

/// The one mapper from an SDK error of any service: `op` on `target` failed because of `e`.
pub fn call<E, R>(op: &'static str, target: impl Display, e: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let target = target.to_string();
    let cause = cause_of(e);
    let code = e.as_service_error().and_then(ProvideErrorMetadata::code);
    match code {
        Some(c) if NOT_FOUND.contains(&c) => AwsError::NotFound { op, target, cause },
        Some(c) if ALREADY_EXISTS.contains(&c) => AwsError::AlreadyExists { op, target, cause },
        Some(c) if THROTTLED.contains(&c) => AwsError::Throttled { op, target, cause },
        _ => {
            let retryable =
                matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_));
            AwsError::Call { op, target, cause, retryable }
        }
    }
}

/// The rest of a [`AwsError::NotOwned`] message: whose it is, and what to do.
fn not_owned_hint(tag: &str, owner: &str, found: Option<&str>) -> String {
    match found {
        Some(other) => format!(
            "belongs to another resource instance (its tag {tag}={other}, this one's is {owner}): another \
             configuration, or a concurrent apply, manages that name. Choose another name, or manage it from \
             the configuration that made it"
        ),
        None => format!(
            "was not made by this provider (it has no {tag} tag). Delete it, choose another name, or, if an earlier \
             version of this provider made it, import it with `terraform import`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::error::ErrorMetadata;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;

    fn service_error(code: &str) -> SdkError<GetCallerIdentityError, ()> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        SdkError::service_error(GetCallerIdentityError::generic(meta), ())
    }

    #[test]
    fn codes_map_to_meaningful_variants() {
        assert!(call("GetRole", "IAM role r", &service_error("NoSuchEntity")).is_not_found());
        assert!(call("CreateQueue", "q", &service_error("QueueAlreadyExists")).is_already_exists());
        let throttled = call("PutItem", "t", &service_error("ThrottlingException"));
        assert!(throttled.is_retryable() && !throttled.is_not_found());
        let denied = call("GetRole", "IAM role r", &service_error("AccessDenied"));
        assert!(!denied.is_not_found() && !denied.is_retryable(), "any error is not 'not found'");
        assert!(denied.to_string().starts_with("GetRole IAM role r: "), "{denied}");
    }

    #[test]
    fn results_name_their_operation() {
        let r: Result<(), _> = Err(service_error("AccessDenied"));
        let e = r.at(Target::role("r")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("GetCallerIdentity IAM role r: "), "{e}");
    }

    #[test]
    fn lost_connections_are_retryable() {
        let e: SdkError<GetCallerIdentityError, ()> = SdkError::timeout_error("slow");
        assert!(call("GetCallerIdentity", "account", &e).is_retryable());
    }
}
