//! `adf_ecr_repository`: an ECR repository for container-image functions: immutable tags and
//! scan on push by default, AES256 or KMS encryption, a lifecycle policy written as two numbers,
//! a repository policy that lets the account's Lambda functions pull, and `force_delete`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    Schema, Type,
};

use super::driver::attributes::{check_kms_key_arn, check_name, output, tags_and_id};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::ecr::{self, Lifecycle, RepositorySpec, RepositoryState};
use crate::aws::{AwsError, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;

/// Tag marking the repository this resource made; its value is the instance's owner id.
const OWNER_TAG: &str = "adf:ecr-repository";

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    image_tag_mutability: String,
    scan_on_push: bool,
    kms_key_arn: Option<String>,
    keep_tagged_images: Option<i64>,
    expire_untagged_after_days: Option<i64>,
    lambda_pull: bool,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn repository(&self, owner: &Owner, policy: Option<String>) -> RepositorySpec {
        RepositorySpec {
            name: self.name.clone(),
            immutable_tags: self.image_tag_mutability == "IMMUTABLE",
            scan_on_push: self.scan_on_push,
            kms_key_arn: self.kms_key_arn.clone(),
            lifecycle: Lifecycle {
                keep_tagged_images: self.keep_tagged_images,
                expire_untagged_after_days: self.expire_untagged_after_days,
            },
            policy,
            tags: owner.tagged(&self.tags_all),
        }
    }
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "An ECR repository for container-image functions (`adf_function` with `image_uri`): immutable tags and \
             scan on push by default, AES256 or KMS encryption, a lifecycle policy written as two numbers, and a \
             repository policy that lets this account's Lambda functions pull its images.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Repository name: lowercase letters, digits and `._-/`, 2 to 256 characters, such as `team/api`. \
                 Changing it replaces the repository.",
            )
            .requires_replace(),
        )
        .defaulted(
            "image_tag_mutability",
            Type::String,
            "`IMMUTABLE` (default: a tag, once pushed, always names the same image) or `MUTABLE`.",
            "IMMUTABLE",
        )
        .check(Check::OneOf(&["IMMUTABLE", "MUTABLE"]))
        .defaulted(
            "scan_on_push",
            Type::Bool,
            "Scan each image for vulnerabilities when it is pushed. Default `true`.",
            true,
        )
        .attribute(
            Attribute::optional(
                "kms_key_arn",
                Type::String,
                "ARN of a customer managed KMS key (encryption type `KMS`). Null: `AES256`. Changing it replaces \
                 the repository.",
            )
            .requires_replace(),
        )
        .optional("keep_tagged_images", Type::Number, "Keep only the newest N tagged images. Null: keep all.")
        .check(Check::Range(1, 10_000))
        .optional(
            "expire_untagged_after_days",
            Type::Number,
            "Expire untagged images N days after they were pushed. Null: never.",
        )
        .check(Check::Range(1, 3650))
        .defaulted(
            "lambda_pull",
            Type::Bool,
            "A repository policy that lets this account's Lambda functions (and no one else) pull images. \
             Default `true`.",
            true,
        )
        .defaulted(
            "force_delete",
            Type::Bool,
            "Delete the images too on destroy. Default `false`: destroy refuses while images remain.",
            false,
        )
        .attributes(tags_and_id())
        .attribute(output("arn", "The repository's ARN."))
        .attribute(output("registry_id", "The registry (account) id."))
        .attribute(output(
            "repository_url",
            "`<account>.dkr.ecr.<region>.amazonaws.com/<name>`: where `docker push` sends images, and, with a \
             tag or digest, an `image_uri` for `adf_function`.",
        ))
        .block("timeouts", Nesting::Single, timeouts_block("5m")),
    )
}

/// Checks an ECR repository name.
fn validate_repository_name(name: &str) -> Result<(), String> {
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.split(['.', '_', '-'])
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    };
    if !(2..=256).contains(&name.len()) {
        return Err(format!("{name:?} must be 2 to 256 characters."));
    }
    if !name.split('/').all(valid_part) {
        return Err(format!(
            "{name:?} must be lowercase letters and digits, in words joined by one `.`, `_` or `-`, in parts \
             joined by `/` (such as `team/api-v2`)."
        ));
    }
    Ok(())
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_name(&mut d, config, "repository", validate_repository_name);
    check_kms_key_arn(&mut d, config, "");
    d
}

/// The state Read reports: what ECR shows, plus what only the configuration knows.
fn observed_state(prior: &Dynamic, name: &str, r: &RepositoryState) -> Dynamic {
    let mut v = prior.clone();
    for (k, val) in [
        ("name", name.into_dynamic()),
        ("image_tag_mutability", if r.immutable_tags { "IMMUTABLE" } else { "MUTABLE" }.into_dynamic()),
        ("scan_on_push", r.scan_on_push.into_dynamic()),
        ("kms_key_arn", r.kms_key_arn.clone().into_dynamic()),
        ("keep_tagged_images", r.lifecycle.keep_tagged_images.into_dynamic()),
        ("expire_untagged_after_days", r.lifecycle.expire_untagged_after_days.into_dynamic()),
        ("lambda_pull", r.lambda_pull.into_dynamic()),
        ("tags_all", untagged(OWNER_TAG, &r.tags).into_dynamic()),
    ] {
        v.set(k, val);
    }
    if v.get("force_delete").is_null() {
        v.set("force_delete", false.into_dynamic());
    }
    set_outputs(&mut v, r);
    v
}

fn set_outputs(state: &mut Dynamic, r: &RepositoryState) {
    state.set("arn", r.arn.clone().into_dynamic());
    state.set("registry_id", r.registry_id.clone().into_dynamic());
    state.set("repository_url", r.uri.clone().into_dynamic());
}

/// The `adf_ecr_repository` resource.
#[derive(Debug, Default)]
pub struct EcrRepository;

#[async_trait]
impl Managed for EcrRepository {
    const KIND: Kind = Kind::new("adf_ecr_repository", Duration::from_secs(5 * 60), schema, validate_config);

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let owner = owner.owner(OWNER_TAG);
        let policy = if spec.lambda_pull {
            let account = data.account_id().await.map_err(AwsError::Invalid)?;
            let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
            Some(ecr::lambda_pull_policy(&data.aws.partition, &region, &account))
        } else {
            None
        };
        let r = ecr::ensure(&data.aws.ecr, &spec.repository(&owner, policy), &owner).await?;
        let mut state = req.planned.clone();
        set_outputs(&mut state, &r);
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        Ok(ecr::describe(&data.aws.ecr, name).await?.map(|r| observed_state(prior, name, &r)))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let force = state.get("force_delete") == &Dynamic::Bool(true);
        Ok(ecr::delete(&data.aws.ecr, name, &owner.owner(OWNER_TAG), force).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_repository_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        let Some(r) = ecr::describe(&data.aws.ecr, id).await? else {
            return Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no repository {id} exists"),
            )
            .into());
        };
        let owner = imported_owner(OWNER_TAG, "ECR repository", id, &r.tags)?;
        Ok(Imported { value: observed_state(&Dynamic::object([("name", id.into())]), id, &r), owner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr() {
        for ok in ["ab", "team/api", "a.b_c-d/e9", &"a".repeat(256)] {
            assert!(validate_repository_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Team/api", "a//b", "a-", "-a", "a..b", "a b", &"a".repeat(257)] {
            assert!(validate_repository_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_input_is_a_diagnostic_at_the_attribute() {
        let config = Dynamic::object([
            ("name", "Bad Name".into()),
            ("image_tag_mutability", "SOMETIMES".into()),
            ("keep_tagged_images", 0i64.into_dynamic()),
            ("kms_key_arn", "alias/mine".into()),
        ]);
        let d = EcrRepository::KIND.checks(&config);
        let at: Vec<_> = d.0.iter().filter_map(|d| d.attribute.clone()).collect();
        for attr in ["name", "image_tag_mutability", "keep_tagged_images", "kms_key_arn"] {
            assert!(at.contains(&AttributePath::root().attr(attr)), "{attr}: {d}");
        }
    }
}
