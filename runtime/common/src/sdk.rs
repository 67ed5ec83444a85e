//! The AWS SDK as the runtimes (and the provider) set it up.

/// The environment variables that point every service, or S3 alone, at a custom endpoint.
const ENDPOINT_VARIABLES: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];

/// The AWS configuration from the default chain (`AWS_PROFILE`, the `AWS_*` environment
/// including `AWS_ENDPOINT_URL[_<SERVICE>]`, shared files, SSO, web identity, container and
/// instance roles) with the latest behavior version.
pub async fn load() -> aws_types::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Whether S3 is addressed path-style (`https://host/bucket/key`) rather than by virtual host:
/// as `explicit` says when it says, otherwise whenever S3 has a custom endpoint
/// (`s3_endpoint_configured`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), since emulators
/// serve buckets by path. This is the one rule; the provider applies it too.
pub fn s3_path_style(explicit: Option<bool>, s3_endpoint_configured: bool) -> bool {
    path_style(explicit, s3_endpoint_configured, |name| std::env::var_os(name).is_some())
}

fn path_style(explicit: Option<bool>, configured: bool, is_set: impl Fn(&str) -> bool) -> bool {
    explicit.unwrap_or_else(|| configured || ENDPOINT_VARIABLES.iter().any(|v| is_set(v)))
}

/// An S3 client on `config`, path-style by [`s3_path_style`] (no explicit choice, no endpoint
/// configured besides the environment's).
pub fn s3_client(config: &aws_types::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(s3_path_style(None, false)).build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_choice_wins() {
        assert!(!path_style(Some(false), true, |_| true));
        assert!(path_style(Some(true), false, |_| false));
    }

    #[test]
    fn any_custom_s3_endpoint_turns_path_style_on() {
        assert!(!path_style(None, false, |_| false));
        assert!(path_style(None, true, |_| false));
        assert!(path_style(None, false, |v| v == "AWS_ENDPOINT_URL"));
        assert!(path_style(None, false, |v| v == "AWS_ENDPOINT_URL_S3"));
        assert!(!path_style(None, false, |v| v == "AWS_ENDPOINT_URL_DYNAMODB"));
    }

    #[test]
    fn the_public_rule_reads_the_environment() {
        let set = ENDPOINT_VARIABLES.iter().any(|v| std::env::var_os(v).is_some());
        assert_eq!(s3_path_style(None, false), set);
        assert!(s3_path_style(None, true));
        assert!(!s3_path_style(Some(false), true));
    }
}
