//! The provider block: schema, validation, and turning it into [`AwsClients`].

use std::collections::BTreeMap;

use tfplug::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, Nesting, ObjectReader, Schema, Type, Value,
};

use crate::aws::{AwsClients, AwsSettings, SERVICES};
use crate::resources::driver::validate_tags;

/// Default for `max_retries`: the SDK backs off exponentially between attempts.
const DEFAULT_MAX_RETRIES: i64 = 10;

/// The provider block's schema.
pub fn schema() -> Schema {
    let mut endpoints = Block::new(
        "Custom endpoint URLs per AWS service, for LocalStack, moto or a VPC endpoint. \
         `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` work too; a URL here wins.",
    );
    for service in SERVICES {
        endpoints = endpoints.optional(
            service,
            Type::String,
            &format!("Endpoint URL for {service}, such as `http://localhost:4566`."),
        );
    }
    Schema::new(
        0,
        Block::new("Configures how the provider reaches AWS (or a local emulator) and the tags it applies everywhere.")
            .optional("region", Type::String, "AWS region, such as `eu-west-1`. Defaults to `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's region.")
            .optional("profile", Type::String, "Named profile from the shared config and credentials files. Defaults to `AWS_PROFILE`.")
            .attribute(
                Attribute::optional(
                    "access_key",
                    Type::String,
                    "Access key id. Defaults to `AWS_ACCESS_KEY_ID`, then the profile, then the instance or container role.",
                )
                .sensitive(),
            )
            .attribute(
                Attribute::optional("secret_key", Type::String, "Secret access key. Required with `access_key`.")
                    .sensitive(),
            )
            .attribute(
                Attribute::optional("token", Type::String, "Session token for temporary credentials.").sensitive(),
            )
            .optional("shared_config_files", Type::list(Type::String), "Paths of shared config files. Defaults to `AWS_CONFIG_FILE`, then `~/.aws/config`.")
            .optional("shared_credentials_files", Type::list(Type::String), "Paths of shared credentials files. Defaults to `AWS_SHARED_CREDENTIALS_FILE`, then `~/.aws/credentials`.")
            .optional("max_retries", Type::Number, "Attempts after the first for a throttled or failed AWS request, with exponential backoff. Default 10.")
            .optional("skip_credentials_validation", Type::Bool, "Skip the STS `GetCallerIdentity` check of the credentials when the provider is configured.")
            .optional("s3_use_path_style", Type::Bool, "Address S3 buckets by path (`host/bucket`). Defaults to true when an S3 endpoint is set, as emulators need.")
            .block("endpoints", Nesting::Single, endpoints)
            .block(
                "default_tags",
                Nesting::Single,
                Block::new("Tags added to every resource that supports tags; a resource's own `tags` win.").attribute(
                    Attribute::optional("tags", Type::map(Type::String), "Tags for every resource."),
                ),
            ),
    )
}

/// The provider block, read.
#[derive(Debug, Default)]
struct ProviderConfig {
    region: Value<String>,
    profile: Value<String>,
    access_key: Value<String>,
    secret_key: Value<String>,
    token: Value<String>,
    shared_config_files: Value<Vec<String>>,
    shared_credentials_files: Value<Vec<String>>,
    max_retries: Value<i64>,
    skip_credentials_validation: Value<bool>,
    s3_use_path_style: Value<bool>,
    endpoints: BTreeMap<&'static str, Value<String>>,
    default_tags: Value<BTreeMap<String, String>>,
}

impl ProviderConfig {
    fn read(config: &Dynamic) -> Result<Self, Diagnostics> {
        let o = ObjectReader::new(config);
        let mut d = Diagnostics::new();
        let ep = o.object("endpoints");
        let endpoints = SERVICES.iter().filter_map(|s| Some((*s, d.take(ep.get(s))?))).collect();
        let c = Self {
            region: d.take(o.get("region")).unwrap_or_default(),
            profile: d.take(o.get("profile")).unwrap_or_default(),
            access_key: d.take(o.get("access_key")).unwrap_or_default(),
            secret_key: d.take(o.get("secret_key")).unwrap_or_default(),
            token: d.take(o.get("token")).unwrap_or_default(),
            shared_config_files: d.take(o.get("shared_config_files")).unwrap_or_default(),
            shared_credentials_files: d.take(o.get("shared_credentials_files")).unwrap_or_default(),
            max_retries: d.take(o.get("max_retries")).unwrap_or_default(),
            skip_credentials_validation: d.take(o.get("skip_credentials_validation")).unwrap_or_default(),
            s3_use_path_style: d.take(o.get("s3_use_path_style")).unwrap_or_default(),
            endpoints,
            default_tags: d.take(o.object("default_tags").get("tags")).unwrap_or_default(),
        };
        d.into_result().map(|()| c)
    }

    fn validate(&self) -> Diagnostics {
        let root = AttributePath::root();
        let mut d = Diagnostics::new();
        if let Some(n) = self.max_retries.known()
            && !(0..=100).contains(n)
        {
            d.error_at(root.attr("max_retries"), "Invalid max_retries", format!("Expected 0 to 100, got {n}."));
        }
        if self.access_key.known().is_some() != self.secret_key.known().is_some()
            && !self.access_key.is_unknown()
            && !self.secret_key.is_unknown()
        {
            let missing = if self.access_key.known().is_some() { "secret_key" } else { "access_key" };
            d.error_at(
                root.attr(missing),
                "Incomplete static credentials",
                "Set both access_key and secret_key, or neither.",
            );
        }
        for (service, url) in &self.endpoints {
            if let Some(u) = url.known()
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                d.error_at(
                    root.attr("endpoints").attr(service),
                    "Invalid endpoint URL",
                    format!("Expected a URL starting with http:// or https://, got {u:?}."),
                );
            }
        }
        if let Some(tags) = self.default_tags.known() {
            d.extend(validate_tags(tags, &root.attr("default_tags").attr("tags")));
        }
        d
    }

    fn into_settings(self) -> AwsSettings {
        AwsSettings {
            region: self.region.into_known(),
            profile: self.profile.into_known(),
            static_credentials: self.access_key.into_known().zip(self.secret_key.into_known()),
            token: self.token.into_known(),
            shared_config_files: self.shared_config_files.into_known().unwrap_or_default(),
            shared_credentials_files: self.shared_credentials_files.into_known().unwrap_or_default(),
            max_attempts: u32::try_from(self.max_retries.known_or(DEFAULT_MAX_RETRIES) + 1).unwrap_or(1),
            s3_use_path_style: self.s3_use_path_style.into_known(),
            endpoints: self.endpoints.into_iter().filter_map(|(k, v)| Some((k, v.into_known()?))).collect(),
        }
    }
}

/// Checks the provider block at validate time.
pub fn validate(config: &Dynamic) -> Diagnostics {
    match ProviderConfig::read(config) {
        Ok(c) => c.validate(),
        Err(d) => d,
    }
}

/// What every resource gets once the provider is configured.
#[derive(Debug)]
pub struct AdfData {
    /// AWS clients, built once.
    pub aws: AwsClients,
    /// `default_tags.tags`.
    pub default_tags: BTreeMap<String, String>,
    /// The account id STS returned at configure (None when the check was skipped).
    pub account_id: Option<String>,
}

impl AdfData {
    /// The account id: the one learnt at configure, else one STS call.
    pub async fn account_id(&self) -> Result<String, String> {
        match &self.account_id {
            Some(a) => Ok(a.clone()),
            None => self.aws.check_credentials().await.map(|id| id.account),
        }
    }
}

/// Builds the clients and, unless skipped, checks the credentials with STS.
pub async fn configure(config: &Dynamic) -> Result<AdfData, Diagnostics> {
    let c = ProviderConfig::read(config)?;
    c.validate().into_result()?;
    let skip_check = c.skip_credentials_validation.clone().known_or(false);
    let default_tags = c.default_tags.clone().known_or(BTreeMap::new());
    let mut aws = AwsClients::new(c.into_settings()).await?;
    let mut account_id = None;
    if !skip_check {
        let identity = aws.check_credentials().await.map_err(|cause| {
            Diagnostics::from(Diagnostic::error(
                "No valid AWS credentials",
                format!(
                    "STS GetCallerIdentity failed: {cause}\n\nSet access_key and secret_key or profile in the provider \
                     block, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE in the environment. For a local \
                     emulator also set endpoints (or AWS_ENDPOINT_URL). To skip this check, set \
                     skip_credentials_validation = true."
                ),
            ))
        })?;
        aws.partition = identity.partition;
        account_id = Some(identity.account);
    }
    Ok(AdfData { aws, default_tags, account_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplug::IntoDynamic;

    fn default_tags_value(tags: &BTreeMap<String, String>) -> Dynamic {
        Dynamic::object([("tags", tags.clone().into_dynamic())])
    }

    fn cfg(attrs: Vec<(&'static str, Dynamic)>) -> Dynamic {
        Dynamic::object(attrs)
    }

    #[test]
    fn a_bad_endpoint_points_at_its_attribute() {
        let c = cfg(vec![("endpoints", Dynamic::object([("sqs", "localhost:5000".into())]))]);
        let d = validate(&c);
        assert!(d.has_errors());
        assert_eq!(d.0[0].attribute, Some(AttributePath::root().attr("endpoints").attr("sqs")));
    }

    #[test]
    fn half_static_credentials_are_an_error_on_the_missing_half() {
        let d = validate(&cfg(vec![("access_key", "AKIA".into())]));
        assert_eq!(d.0[0].attribute, Some(AttributePath::root().attr("secret_key")));
    }

    #[test]
    fn unknown_values_are_not_errors_at_validate_time() {
        let c = cfg(vec![("max_retries", Dynamic::Unknown), ("access_key", Dynamic::Unknown)]);
        assert!(!validate(&c).has_errors());
        assert!(validate(&cfg(vec![("max_retries", 500i64.into_dynamic())])).has_errors());
    }

    #[test]
    fn default_tags_are_checked() {
        let mut tags = BTreeMap::new();
        tags.insert("aws:reserved".to_string(), "x".to_string());
        let d = validate(&cfg(vec![("default_tags", default_tags_value(&tags))]));
        assert!(d.has_errors());
    }
}
