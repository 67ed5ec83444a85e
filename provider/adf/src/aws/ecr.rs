//! ECR repositories for container-image functions: created tagged with their owner (the
//! create is atomic), then tag mutability, scan on push, the lifecycle policy, the repository
//! policy that lets Lambda pull, and tags converged; deleted only when the owner's.

use std::collections::BTreeMap;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use serde_json::json;

use super::error::{AwsError, Sent, Target, call};
use super::{Owner, TagChanges};

/// The repository policy statement that lets Lambda pull images.
pub const LAMBDA_PULL_SID: &str = "LambdaPull";

/// What a plan asks of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositorySpec {
    /// The repository name.
    pub name: String,
    /// Whether a tag, once pushed, can never point at another image.
    pub immutable_tags: bool,
    /// Whether images are scanned for vulnerabilities when pushed.
    pub scan_on_push: bool,
    /// A customer managed KMS key; None: AES256.
    pub kms_key_arn: Option<String>,
    /// The lifecycle rules.
    pub lifecycle: Lifecycle,
    /// The repository policy (Lambda's pull statement), when wanted.
    pub policy: Option<String>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// The two lifecycle rules a repository can have, written as simple numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Keep only the newest N tagged images.
    pub keep_tagged_images: Option<i64>,
    /// Expire untagged images N days after they were pushed.
    pub expire_untagged_after_days: Option<i64>,
}

impl Lifecycle {
    /// The lifecycle policy document, or None when there is no rule.
    pub fn policy(&self) -> Option<String> {
        let mut rules = Vec::new();
        if let Some(days) = self.expire_untagged_after_days {
            rules.push(json!({
                "rulePriority": rules.len() + 1,
                "description": format!("Expire untagged images {days} days after they were pushed"),
                "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days },
                "action": { "type": "expire" }
            }));
        }
        if let Some(n) = self.keep_tagged_images {
            rules.push(json!({
                "rulePriority": rules.len() + 1,
                "description": format!("Keep the newest {n} tagged images"),
                "selection": { "tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan", "countNumber": n },
                "action": { "type": "expire" }
            }));
        }
        (!rules.is_empty()).then(|| json!({ "rules": rules }).to_string())
    }

    /// The rules a lifecycle policy document holds, as far as they are ours.
    pub fn parse(text: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let mut l = Lifecycle::default();
        for rule in doc["rules"].as_array().into_iter().flatten() {
            let s = &rule["selection"];
            match (s["tagStatus"].as_str(), s["countType"].as_str()) {
                (Some("untagged"), Some("sinceImagePushed")) => {
                    l.expire_untagged_after_days = s["countNumber"].as_i64()
                }
                (Some("tagged"), Some("imageCountMoreThan")) => l.keep_tagged_images = s["countNumber"].as_i64(),
                _ => {}
            }
        }
        l
    }
}

/// The policy that lets Lambda functions of `account` in `region` pull the repository's images.
pub fn lambda_pull_policy(partition: &str, region: &str, account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": LAMBDA_PULL_SID,
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Condition": { "StringLike": { "aws:sourceArn": format!("arn:{partition}:lambda:{region}:{account}:function:*") } }
        }]
    })
    .to_string()
}

/// A repository as ECR describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryState {
    /// Its ARN.
    pub arn: String,
    /// The registry (account) id.
    pub registry_id: String,
    /// `<registry>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub uri: String,
    /// Whether tags are immutable.
    pub immutable_tags: bool,
    /// Whether images are scanned on push.
    pub scan_on_push: bool,
    /// The KMS key, when encrypted with one.
    pub kms_key_arn: Option<String>,
    /// The lifecycle rules.
    pub lifecycle: Lifecycle,
    /// Whether the repository policy has Lambda's pull statement.
    pub lambda_pull: bool,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// The repository `name`, or None when it does not exist.
pub async fn describe(ecr: &Client, name: &str) -> Result<Option<RepositoryState>, AwsError> {
    let out = match ecr.describe_repositories().repository_names(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => return Ok(None),
        Err(e) => return Err(call("DescribeRepositories", Target::repository(name), &e)),
    };
    let Some(r) = out.repositories.unwrap_or_default().into_iter().next() else { return Ok(None) };
    let arn = r.repository_arn.unwrap_or_default();
    let tags = ecr.list_tags_for_resource().resource_arn(&arn).send().await.at(Target::repository(name))?;
    let tags = tags.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect();
    let lifecycle = match ecr.get_lifecycle_policy().repository_name(name).send().await {
        Ok(p) => Lifecycle::parse(p.lifecycle_policy_text.as_deref().unwrap_or_default()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) => {
            Lifecycle::default()
        }
        Err(e) => return Err(call("GetLifecyclePolicy", Target::repository(name), &e)),
    };
    let lambda_pull = match ecr.get_repository_policy().repository_name(name).send().await {
        Ok(p) => p.policy_text.is_some_and(|t| t.contains(LAMBDA_PULL_SID)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_policy_not_found_exception()) => false,
        Err(e) => return Err(call("GetRepositoryPolicy", Target::repository(name), &e)),
    };
    let encryption = r.encryption_configuration;
    Ok(Some(RepositoryState {
        arn,
        registry_id: r.registry_id.unwrap_or_default(),
        uri: r.repository_uri.unwrap_or_default(),
        immutable_tags: r.image_tag_mutability == Some(ImageTagMutability::Immutable),
        scan_on_push: r.image_scanning_configuration.is_some_and(|c| c.scan_on_push),
        kms_key_arn: encryption.filter(|e| e.encryption_type == EncryptionType::Kms).and_then(|e| e.kms_key),
        lifecycle,
        lambda_pull,
        tags,
    }))
}

fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable }
}

fn scanning(on_push: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder().scan_on_push(on_push).build()
}

/// Creates the repository tagged with `owner` (`spec.tags` carry it) or takes the one `owner`
/// owns, then converges it to `spec`. CreateRepository is atomic: of two applies racing for a
/// name, exactly one gets it.
pub async fn ensure(ecr: &Client, spec: &RepositorySpec, owner: &Owner) -> Result<RepositoryState, AwsError> {
    let name = spec.name.as_str();
    if describe(ecr, name).await?.is_none() {
        let encryption = match &spec.kms_key_arn {
            Some(key) => EncryptionConfiguration::builder().encryption_type(EncryptionType::Kms).kms_key(key),
            None => EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256),
        };
        let tags = spec.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        let created = ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(mutability(spec.immutable_tags))
            .image_scanning_configuration(scanning(spec.scan_on_push))
            .encryption_configuration(encryption.build().map_err(AwsError::build)?)
            .set_tags(Some(tags.collect::<Result<Vec<_>, _>>().map_err(AwsError::build)?))
            .send()
            .await;
        match created {
            Ok(_) => owner.made_one(),
            // Made by a concurrent apply since we looked: its tags decide.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_already_exists_exception()) => {}
            Err(e) => return Err(call("CreateRepository", Target::repository(name), &e)),
        }
    }
    let current =
        describe(ecr, name).await?.ok_or_else(|| AwsError::Vanished { kind: "ECR repository", target: name.into() })?;
    owner.check("ECR repository", name, &current.tags)?;
    converge(ecr, spec, &current).await?;
    describe(ecr, name).await?.ok_or_else(|| AwsError::Vanished { kind: "ECR repository", target: name.into() })
}

async fn converge(ecr: &Client, spec: &RepositorySpec, current: &RepositoryState) -> Result<(), AwsError> {
    let name = spec.name.as_str();
    if current.immutable_tags != spec.immutable_tags {
        let m = mutability(spec.immutable_tags);
        ecr.put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(m)
            .send()
            .await
            .at(Target::repository(name))?;
    }
    if current.scan_on_push != spec.scan_on_push {
        ecr.put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(scanning(spec.scan_on_push))
            .send()
            .await
            .at(Target::repository(name))?;
    }
    if current.lifecycle != spec.lifecycle {
        match spec.lifecycle.policy() {
            Some(text) => {
                ecr.put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(text)
                    .send()
                    .await
                    .at(Target::repository(name))?;
            }
            None => match ecr.delete_lifecycle_policy().repository_name(name).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) => {}
                Err(e) => return Err(call("DeleteLifecyclePolicy", Target::repository(name), &e)),
            },
        }
    }
    match (&spec.policy, current.lambda_pull) {
        (Some(policy), false) => {
            ecr.set_repository_policy()
                .repository_name(name)
                .policy_text(policy)
                .send()
                .await
                .at(Target::repository(name))?;
        }
        (None, true) => match ecr.delete_repository_policy().repository_name(name).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_policy_not_found_exception()) => {}
            Err(e) => return Err(call("DeleteRepositoryPolicy", Target::repository(name), &e)),
        },
        _ => {}
    }
    let changes = TagChanges::new(&current.tags, &spec.tags);
    if !changes.stale.is_empty() {
        ecr.untag_resource()
            .resource_arn(&current.arn)
            .set_tag_keys(Some(changes.stale))
            .send()
            .await
            .at(Target::repository(name))?;
    }
    if !changes.set.is_empty() {
        let tags = changes.set.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        let tags = tags.collect::<Result<Vec<_>, _>>().map_err(AwsError::build)?;
        ecr.tag_resource().resource_arn(&current.arn).set_tags(Some(tags)).send().await.at(Target::repository(name))?;
    }
    Ok(())
}

/// Deletes repository `name` when `owner` owns it (with its images only when `force`); one
/// already gone, or someone else's, is left alone.
pub async fn delete(ecr: &Client, name: &str, owner: &Owner, force: bool) -> Result<(), AwsError> {
    match describe(ecr, name).await? {
        Some(r) if owner.owns(&r.tags) => {}
        Some(_) => {
            tracing::warn!(repository = name, "not deleting an ECR repository that another owner tagged");
            return Ok(());
        }
        None => return Ok(()),
    }
    match ecr.delete_repository().repository_name(name).force(force).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_empty_exception()) => {
            Err(AwsError::Invalid(format!(
                "repository {name} still holds images; set force_delete = true and apply first, or delete the images"
            )))
        }
        Err(e) => Err(call("DeleteRepository", Target::repository(name), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_rules_are_written_and_read_back() {
        let l = Lifecycle { keep_tagged_images: Some(10), expire_untagged_after_days: Some(7) };
        let text = l.policy().expect("two rules");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(doc["rules"][0]["rulePriority"], 1);
        assert_eq!(doc["rules"][1]["selection"]["tagPatternList"][0], "*");
        assert_eq!(Lifecycle::parse(&text), l);
        assert_eq!(Lifecycle::default().policy(), None);
        assert_eq!(Lifecycle::parse("not json"), Lifecycle::default());
    }

    #[test]
    fn only_lambda_of_the_account_may_pull() {
        let p: serde_json::Value =
            serde_json::from_str(&lambda_pull_policy("aws-cn", "cn-north-1", "123")).expect("json");
        let s = &p["Statement"][0];
        assert_eq!(s["Principal"]["Service"], "lambda.amazonaws.com");
        assert_eq!(s["Action"], json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]));
        assert_eq!(s["Condition"]["StringLike"]["aws:sourceArn"], "arn:aws-cn:lambda:cn-north-1:123:function:*");
    }
}
