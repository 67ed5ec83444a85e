//! The AWS services layer: clients built once per configured provider (from the provider block
//! and the standard `AWS_*` environment, `AWS_ENDPOINT_URL[_<SERVICE>]` included), one module per
//! service holding its calls, waiters and owner-tag checks, one error type ([`AwsError`]) and
//! one mapper from SDK errors ([`error::call`]). Resources call these; they never call the SDK
//! themselves and never import each other.

pub mod cloudformation;
pub mod dynamodb;
pub mod ecr;
pub mod error;
pub mod esm;
pub mod events;
pub mod function;
pub mod http_api;
pub mod iam;
pub mod kafka;
pub mod lambda;
pub mod logs;
pub mod msk;
pub mod s3;
pub mod sqs;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_types::SdkConfig;
use aws_types::region::Region;
use tfplug::{Diagnostic, Diagnostics};

pub use self::error::AwsError;

/// The services the `endpoints` block accepts.
pub const SERVICES: [&str; 12] = [
    "apigatewayv2",
    "cloudformation",
    "cloudwatch",
    "dynamodb",
    "ecr",
    "events",
    "iam",
    "kafka",
    "lambda",
    "s3",
    "sqs",
    "sts",
];

/// Connection settings read from the provider block.
#[derive(Debug, Default)]
pub struct AwsSettings {
    /// Region, else the environment's.
    pub region: Option<String>,
    /// Named profile.
    pub profile: Option<String>,
    /// Access key id and secret.
    pub static_credentials: Option<(String, String)>,
    /// Session token for the static credentials.
    pub token: Option<String>,
    /// Extra shared config files.
    pub shared_config_files: Vec<String>,
    /// Extra shared credentials files.
    pub shared_credentials_files: Vec<String>,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Explicit S3 path-style choice.
    pub s3_use_path_style: Option<bool>,
    /// Endpoint URL per service.
    pub endpoints: BTreeMap<&'static str, String>,
}

/// The clients resources use, sharing one connection pool and credentials cache.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch Logs (the `cloudwatch` endpoint).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// S3 (path-style addressing when `s3_force_path_style`).
    pub s3: aws_sdk_s3::Client,
    /// EventBridge (the `events` endpoint).
    pub events: aws_sdk_eventbridge::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// API Gateway v2 (HTTP APIs).
    pub apigateway: aws_sdk_apigatewayv2::Client,
    /// MSK (the `kafka` endpoint).
    pub kafka: aws_sdk_kafka::Client,
    /// CloudFormation.
    pub cloudformation: aws_sdk_cloudformation::Client,
    /// The shared SDK configuration, for clients of services added later.
    pub sdk: SdkConfig,
    /// Endpoint overrides from the `endpoints` block.
    pub endpoints: BTreeMap<&'static str, String>,
    /// Whether S3 requests use path-style addressing.
    pub s3_force_path_style: bool,
    /// The ARN partition (`aws`, `aws-cn`, `aws-us-gov`...): the caller identity's once the
    /// credentials are checked, the region's until then.
    pub partition: String,
}

/// Who the credentials are, from STS `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account id.
    pub account: String,
    /// The partition of the caller's ARN.
    pub partition: String,
}

/// The partition of `arn` (its second field), if it is an ARN.
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    let mut fields = arn.split(':');
    (fields.next() == Some("arn")).then(|| fields.next()).flatten().filter(|p| !p.is_empty())
}

/// The partition that holds `region`, for when no caller identity is known.
pub fn partition_of_region(region: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 6] = [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
    ];
    PREFIXES.iter().find(|(prefix, _)| region.starts_with(prefix)).map_or("aws", |(_, p)| p)
}

impl AwsClients {
    /// Loads the SDK configuration and builds the clients. No request is sent.
    pub async fn new(s: AwsSettings) -> Result<Self, Diagnostics> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts.max(1)));
        if let Some(r) = &s.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &s.profile {
            loader = loader.profile_name(p);
        }
        if !s.shared_config_files.is_empty() || !s.shared_credentials_files.is_empty() {
            let mut files = EnvConfigFiles::builder();
            for f in &s.shared_config_files {
                files = files.with_file(EnvConfigFileKind::Config, f);
            }
            for f in &s.shared_credentials_files {
                files = files.with_file(EnvConfigFileKind::Credentials, f);
            }
            if s.shared_config_files.is_empty() {
                files = files.include_default_config_file(true);
            }
            if s.shared_credentials_files.is_empty() {
                files = files.include_default_credentials_file(true);
            }
            loader = loader.profile_files(files.build());
        }
        if let Some((key, secret)) = &s.static_credentials {
            let creds = Credentials::new(key, secret, s.token.clone(), None, "terraform-provider-adf");
            loader = loader.credentials_provider(creds);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Diagnostic::error(
                "No AWS region",
                "Set region in the provider block, or AWS_REGION in the environment.",
            )
            .into());
        }

        // One client per service, from the shared configuration, with the `endpoints` override.
        macro_rules! client {
            ($sdk:ident, $service:literal) => {{
                let mut b = $sdk::config::Builder::from(&sdk);
                if let Some(u) = s.endpoints.get($service) {
                    b = b.endpoint_url(u.clone());
                }
                $sdk::Client::from_conf(b.build())
            }};
        }
        let (dynamodb, sqs, sts) =
            (client!(aws_sdk_dynamodb, "dynamodb"), client!(aws_sdk_sqs, "sqs"), client!(aws_sdk_sts, "sts"));
        let (lambda, iam, logs) = (
            client!(aws_sdk_lambda, "lambda"),
            client!(aws_sdk_iam, "iam"),
            client!(aws_sdk_cloudwatchlogs, "cloudwatch"),
        );
        let (events, ecr) = (client!(aws_sdk_eventbridge, "events"), client!(aws_sdk_ecr, "ecr"));
        let (apigateway, kafka) = (client!(aws_sdk_apigatewayv2, "apigatewayv2"), client!(aws_sdk_kafka, "kafka"));
        let cloudformation = client!(aws_sdk_cloudformation, "cloudformation");
        // The runtimes' own rule, so the provider and the Lambdas it deploys address S3 alike.
        let s3_force_path_style = adf_common::sdk::s3_path_style(s.s3_use_path_style, s.endpoints.contains_key("s3"));
        let s3 = {
            let mut b = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(s3_force_path_style);
            if let Some(u) = s.endpoints.get("s3") {
                b = b.endpoint_url(u.clone());
            }
            aws_sdk_s3::Client::from_conf(b.build())
        };
        let partition = partition_of_region(sdk.region().map_or("", |r| r.as_ref())).to_string();
        Ok(Self {
            dynamodb,
            sqs,
            sts,
            lambda,
            iam,
            logs,
            s3,
            events,
            ecr,
            apigateway,
            kafka,
            cloudformation,
            sdk,
            s3_force_path_style,
            endpoints: s.endpoints,
            partition,
        })
    }

    /// Whether S3 is reached over plain HTTP: only an emulator is, and there a TLS-only bucket
    /// policy would refuse every request.
    pub fn s3_plain_http(&self) -> bool {
        let endpoint = self
            .endpoints
            .get("s3")
            .cloned()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| self.sdk.endpoint_url().map(str::to_string));
        endpoint.is_some_and(|e| e.starts_with("http://"))
    }

    /// Checks the credentials with STS `GetCallerIdentity`: whose they are.
    pub async fn check_credentials(&self) -> Result<Identity, String> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| error::cause_of(&e))?;
        let partition = out.arn.as_deref().and_then(partition_of_arn).unwrap_or(&self.partition).to_string();
        Ok(Identity { account: out.account.unwrap_or_default(), partition })
    }
}

/// Looks with `look` until it answers, pausing `first` after the first look and twice as long
/// after each next one, up to `max`. The driver's deadline bounds the whole.
pub async fn poll<T, F, Fut>(first: Duration, max: Duration, mut look: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, AwsError>>,
{
    let mut pause = first;
    loop {
        if let Some(answer) = look().await? {
            return Ok(answer);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(max);
    }
}

/// What turns tags `current` into `wanted`: the keys to remove and the tags to set (new or
/// changed). Each service's `sync_tags` sends these, skipping an empty half.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TagChanges {
    /// Keys in `current` but not in `wanted`.
    pub stale: Vec<String>,
    /// Tags of `wanted` that `current` lacks or holds with another value.
    pub set: BTreeMap<String, String>,
}

impl TagChanges {
    /// The changes from `current` to `wanted`.
    pub fn new(current: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> Self {
        Self {
            stale: current.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect(),
            set: wanted
                .iter()
                .filter(|(k, v)| current.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The identity of one resource instance: everything it makes carries an owner tag whose value
/// is this id, so a second configuration using the same names is refused instead of adopted,
/// and a destroy deletes only what carries it. Also records whether anything was made yet, so a
/// create that fails half way can save what it made.
#[derive(Clone, Debug)]
pub struct Ownership {
    id: String,
    made: Arc<AtomicBool>,
}

impl Ownership {
    /// The instance `id` (a fresh UUID on create; the resource name for state saved before ids).
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), made: Arc::default() }
    }

    /// The id, the owner tags' value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The owner tag `tag = id`, recording what it makes in this ownership.
    pub fn owner(&self, tag: &'static str) -> Owner {
        Owner { tag, value: self.id.clone(), made: self.made.clone() }
    }

    /// Whether anything was created under this ownership.
    pub fn made(&self) -> bool {
        self.made.load(Ordering::SeqCst)
    }
}

/// The tag that marks what a resource made (`tag = value`): only what carries it is converged
/// or deleted, and anything else of the same name is an error.
#[derive(Clone, Debug)]
pub struct Owner {
    /// The tag's key, such as `adf:workflow-tables`.
    pub tag: &'static str,
    /// Its value: the owning instance's id.
    pub value: String,
    made: Arc<AtomicBool>,
}

impl Owner {
    /// `tags` with the owner tag added.
    pub fn tagged(&self, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut t = tags.clone();
        t.insert(self.tag.to_string(), self.value.clone());
        t
    }

    /// Ok when `tags` (those of the `kind` named `target`) carry this owner tag.
    pub fn check(&self, kind: &'static str, target: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        if self.owns(tags) {
            Ok(())
        } else {
            Err(AwsError::NotOwned {
                kind,
                target: target.to_string(),
                tag: self.tag,
                owner: self.value.clone(),
                found: tags.get(self.tag).cloned(),
            })
        }
    }

    /// Whether `tags` carry this owner tag: only then is the thing deleted with the resource.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(self.tag) == Some(&self.value)
    }

    /// Records that a create call made something under this owner.
    pub fn made_one(&self) {
        self.made.store(true, Ordering::SeqCst);
    }
}

/// `tags` without the owner tag `tag`: the user's tags.
pub fn untagged(tag: &str, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter().filter(|(k, _)| k.as_str() != tag).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The owner id that `tags` carry under `tag`, for an import; an error naming `kind` and `target`
/// when they carry none (the provider did not make it).
pub fn imported_owner(
    tag: &'static str,
    kind: &'static str,
    target: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    tags.get(tag).cloned().ok_or_else(|| {
        AwsError::Invalid(format!(
            "{kind} {target} has no {tag} tag, so this provider did not make it; only what it made can be imported"
        ))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn partitions_come_from_the_caller_arn_or_the_region() {
        use super::{partition_of_arn, partition_of_region};
        assert_eq!(partition_of_arn("arn:aws-cn:iam::123456789012:user/ada"), Some("aws-cn"));
        assert_eq!(partition_of_arn("arn:aws-us-gov:sts::1:assumed-role/r/s"), Some("aws-us-gov"));
        assert_eq!(partition_of_arn("not an arn"), None);
        assert_eq!(partition_of_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }

    #[test]
    fn an_owner_owns_only_what_carries_its_id_and_says_whose_it_is() {
        use super::{AwsError, Ownership};
        let ours = Ownership::new("a1");
        let owner = ours.owner("adf:x");
        let tagged = owner.tagged(&BTreeMap::from([("team".to_string(), "t".to_string())]));
        assert!(owner.owns(&tagged));
        assert!(!ours.made(), "nothing made yet");
        owner.made_one();
        assert!(ours.made(), "made through any owner of the ownership");
        let theirs = BTreeMap::from([("adf:x".to_string(), "b2".to_string())]);
        let e = owner.check("SQS queue", "q", &theirs).expect_err("not ours");
        assert!(matches!(&e, AwsError::NotOwned { found: Some(f), .. } if f == "b2"));
        assert!(e.to_string().contains("adf:x=b2"), "{e}");
        let untagged = owner.check("SQS queue", "q", &BTreeMap::new()).expect_err("not ours");
        assert!(untagged.to_string().contains("has no adf:x tag"), "{untagged}");
    }

    use super::*;

    fn settings(endpoints: &[(&'static str, &str)]) -> AwsSettings {
        AwsSettings {
            region: Some("us-east-1".into()),
            static_credentials: Some(("AKIDEXAMPLE".into(), "secret".into())),
            max_attempts: 3,
            endpoints: endpoints.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
            ..AwsSettings::default()
        }
    }

    #[tokio::test]
    async fn an_s3_endpoint_turns_on_path_style_unless_told_otherwise() {
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
            return; // the environment decides; nothing to compare against
        }
        let plain = AwsClients::new(settings(&[])).await.expect("clients");
        assert!(!plain.s3_force_path_style);
        let custom = AwsClients::new(settings(&[("s3", "http://127.0.0.1:4566")])).await.expect("clients");
        assert!(custom.s3_force_path_style);
        let mut s = settings(&[("s3", "http://127.0.0.1:4566")]);
        s.s3_use_path_style = Some(false);
        assert!(!AwsClients::new(s).await.expect("clients").s3_force_path_style);
    }

    #[tokio::test]
    async fn endpoint_overrides_reach_the_clients() {
        let c = AwsClients::new(settings(&[("sqs", "http://127.0.0.1:1")])).await.expect("clients");
        let err = c.sqs.list_queues().send().await.expect_err("nothing listens on port 1");
        let text = adf_common::error_chain(&err);
        assert!(text.contains("dispatch failure") || text.contains("connect"), "{text}");
        assert_eq!(c.endpoints.get("sqs").map(String::as_str), Some("http://127.0.0.1:1"));
    }
}
