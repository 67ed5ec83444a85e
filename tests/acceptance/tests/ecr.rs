//! `adf_ecr_repository` and a container-image `adf_function` against the emulator with the real
//! CLI and provider binaries: the example applied, an empty second plan, import, update, drift,
//! disappears, a destroy refused while images remain, and plan-time diagnostics. No Docker
//! engine here: an image is "pushed" with ECR's own `PutImage` and a manifest.

use adf_acceptance::{
    Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, example_import_args, repo_root, sdk_config, set_attributes,
    unique_name,
};
use anyhow::{Context, Result, bail, ensure};
use aws_sdk_ecr::types::ImageTagMutability;

const ADDRESS: &str = "adf_ecr_repository.api";
const OWNER_TAG: &str = "adf:ecr-repository";

/// The example with the repository and function names made unique.
fn example(repository: &str, function: &str, settings: &[&str]) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_ecr_repository/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let hcl =
        hcl.replace("\"team/api\"", &format!("\"{repository}\"")).replace("\"api\"\n", &format!("\"{function}\"\n"));
    let mut lines: Vec<String> = hcl.lines().map(str::to_string).collect();
    set_attributes(&mut lines, settings);
    Ok(format!("{PROVIDER}\n{}\n", lines.join("\n")))
}

struct Repo {
    ecr: aws_sdk_ecr::Client,
    name: String,
}

impl Repo {
    async fn describe(&self) -> Result<Option<aws_sdk_ecr::types::Repository>> {
        match self.ecr.describe_repositories().repository_names(&self.name).send().await {
            Ok(out) => Ok(out.repositories.unwrap_or_default().into_iter().next()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn lifecycle(&self) -> Result<Option<serde_json::Value>> {
        match self.ecr.get_lifecycle_policy().repository_name(&self.name).send().await {
            Ok(p) => Ok(Some(serde_json::from_str(p.lifecycle_policy_text().unwrap_or_default())?)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn policy(&self) -> Result<Option<String>> {
        match self.ecr.get_repository_policy().repository_name(&self.name).send().await {
            Ok(p) => Ok(p.policy_text),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_policy_not_found_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn owner_tag(&self) -> Result<Option<String>> {
        let arn = self.describe().await?.and_then(|r| r.repository_arn).context("no repository")?;
        let tags = self.ecr.list_tags_for_resource().resource_arn(arn).send().await?;
        Ok(tags.tags().iter().find(|t| t.key() == OWNER_TAG).map(|t| t.value().to_string()))
    }

    /// What `docker push` leaves: an image manifest under `tag`.
    async fn push(&self, tag: &str) -> Result<()> {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7" },
            "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                         "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f" }]
        });
        self.ecr
            .put_image()
            .repository_name(&self.name)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_with_an_image_function_import_update_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let config = sdk_config(emu.endpoint()).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let repo = Repo { ecr: aws_sdk_ecr::Client::new(&config), name: format!("team/{}", unique_name("api")) };
    let function = unique_name("img");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. The example: immutable tags, both lifecycle rules, Lambda's pull policy, an image
    //    function. Scanning starts off here and is turned on below: the SDK leaves a `false`
    //    out of the request, which AWS reads as false and moto as "no change".
    ws.write(&example(&repo.name, &function, &["scan_on_push = false"])?)?;
    ws.apply()?;
    let r = repo.describe().await?.context("repository made")?;
    assert_eq!(r.image_tag_mutability(), Some(&ImageTagMutability::Immutable));
    assert_eq!(r.image_scanning_configuration().map(|c| c.scan_on_push()), Some(false));
    let rules = repo.lifecycle().await?.context("lifecycle policy")?;
    assert_eq!(rules["rules"].as_array().map(Vec::len), Some(2), "{rules}");
    let policy = repo.policy().await?.context("repository policy")?;
    assert!(policy.contains("lambda.amazonaws.com") && policy.contains(":function:*"), "{policy}");
    let state = ws.state_values(ADDRESS)?;
    assert_eq!(repo.owner_tag().await?.as_deref(), state["owner_id"].as_str(), "tagged with the instance's owner id");
    let url = state["repository_url"].as_str().unwrap_or_default().to_string();
    assert!(url.ends_with(&format!("/{}", repo.name)) && url.contains(".dkr.ecr."), "{url}");
    let f = lambda.get_function().function_name(&function).send().await?;
    let f_config = f.configuration().context("configuration")?;
    assert_eq!(f_config.package_type().map(|p| p.as_str()), Some("Image"));
    assert_eq!(f.code().and_then(|c| c.image_uri()), Some(format!("{url}:v1").as_str()));
    let image_config = f_config.image_config_response().and_then(|r| r.image_config()).context("image_config")?;
    assert_eq!(image_config.command(), ["orders.handler"]);
    assert_eq!(image_config.entry_point(), [] as [String; 0]);

    // 2. A second plan is empty; so is one after state rm + import (the example import.sh).
    ws.assert_empty_plan()?;
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    let args = example_import_args("adf_ecr_repository", &repo.name)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    assert_eq!(ws.state_values(ADDRESS)?, state, "the imported state is the applied one");
    ws.assert_empty_plan()?;

    // 3. Update in place: mutability, scanning (the default, on), one lifecycle rule, no pull
    //    policy; the function moves to another tag.
    let updated = example(
        &repo.name,
        &function,
        &["image_tag_mutability = \"MUTABLE\"", "keep_tagged_images = null", "lambda_pull = false"],
    )?
    .replace(":v1\"", ":v2\"");
    ws.write(&updated)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("2 to change, 0 to destroy"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("runtime"), "an image function plans no runtime change: {}", plan.stdout);
    ws.apply()?;
    let r = repo.describe().await?.context("repository")?;
    assert_eq!(r.image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    assert_eq!(r.image_scanning_configuration().map(|c| c.scan_on_push()), Some(true));
    let rules = repo.lifecycle().await?.context("lifecycle policy")?;
    assert_eq!(rules["rules"].as_array().map(Vec::len), Some(1), "{rules}");
    assert_eq!(rules["rules"][0]["selection"]["tagStatus"], "untagged");
    assert_eq!(repo.policy().await?, None, "the pull policy is removed");
    let f = lambda.get_function().function_name(&function).send().await?;
    assert_eq!(f.code().and_then(|c| c.image_uri()), Some(format!("{url}:v2").as_str()));
    ws.assert_empty_plan()?;

    // 4. Drift shows in the plan and apply repairs it.
    repo.ecr
        .put_image_tag_mutability()
        .repository_name(&repo.name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("\"IMMUTABLE\" -> \"MUTABLE\""), "{}", plan.stdout);
    ws.apply()?;
    let r = repo.describe().await?.context("repository")?;
    assert_eq!(r.image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    ws.assert_empty_plan()?;

    // 5. Disappears: the next apply makes it again.
    repo.ecr.delete_repository().repository_name(&repo.name).force(true).send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    ensure!(repo.describe().await?.is_some(), "the repository is made again");
    ws.assert_empty_plan()?;

    // 6. A destroy while images remain is refused and loses nothing; force_delete lets it go.
    repo.push("v2").await?;
    let refused = ws.run(&["destroy", "-auto-approve", "-no-color"])?;
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("still holds images"), "{}", refused.stderr);
    ensure!(repo.describe().await?.is_some(), "a refused destroy deletes nothing");
    ensure!(ws.state_list()?.contains(&ADDRESS.to_string()), "and keeps the state");
    ws.write(&updated.replace("  expire_untagged_after_days", "  force_delete = true\n  expire_untagged_after_days"))?;
    ws.apply()?;
    ws.destroy()?;
    ensure!(repo.describe().await?.is_none(), "destroyed with its images");
    Ok(())
}

#[test]
fn invalid_attributes_fail_at_plan_with_the_attribute_path() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:1")?;
    ws.write(&format!(
        "{PROVIDER}\nresource \"adf_ecr_repository\" \"r\" {{\n  name = \"Team/API\"\n  image_tag_mutability = \"SOMETIMES\"\n  \
         expire_untagged_after_days = 0\n  kms_key_arn = \"alias/mine\"\n}}\n"
    ))?;
    let errors = ws.plan_errors()?;
    for attr in ["name", "image_tag_mutability", "expire_untagged_after_days", "kms_key_arn"] {
        if !errors.iter().any(|(_, code)| code.trim_start().starts_with(attr)) {
            bail!("no plan error at {attr}: {errors:?}");
        }
    }
    Ok(())
}
