//! The function's managed execution role: Lambda's trust policy, a least-privilege policy for
//! its own log group, and the user's extra statements. No sleeps: Lambda's create is retried
//! while IAM propagates.

use std::collections::BTreeMap;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde_json::json;

use super::Owner;
use super::error::{AwsError, Sent, Target, call};

/// The inline policy that lets the function write its logs.
const LOGS_POLICY: &str = "adf-logs";
/// The inline policy holding `policy_statements`.
const EXTRA_POLICY: &str = "adf-extra";

/// The managed role's name for function `name` (IAM role names are at most 64 characters).
pub fn managed_role_name(name: &str) -> String {
    format!("{}-role", &name[..name.len().min(59)])
}

fn trust_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

/// The policy for writing to exactly this function's log group.
pub fn logs_policy(log_group_arn: &str) -> String {
    let group = log_group_arn.trim_end_matches(":*");
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [format!("{group}:*")]
        }]
    })
    .to_string()
}

/// The managed role's extra inline policy of function `function` (URL-decoded, as written);
/// None when there is none.
pub async fn extra_policy(iam: &Client, function: &str) -> Result<Option<String>, AwsError> {
    let role = managed_role_name(function);
    match iam.get_role_policy().role_name(&role).policy_name(EXTRA_POLICY).send().await {
        Ok(p) => Ok(Some(percent_encoding::percent_decode_str(&p.policy_document).decode_utf8_lossy().to_string())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(call("GetRolePolicy", Target::role(&role), &e)),
    }
}

/// Grants function `function`'s managed role `actions` on `resource` as inline policy `name`,
/// when `role_arn` (the function's role) is that role and carries `tag` (an `adf_function` made
/// it). Returns whether it did: a role the user brought is theirs to grant.
pub async fn grant_managed(
    iam: &Client,
    function: &str,
    role_arn: &str,
    tag: &str,
    name: &str,
    actions: &[&str],
    resource: &str,
) -> Result<bool, AwsError> {
    let role = managed_role_name(function);
    if role_arn.rsplit('/').next() != Some(role.as_str()) {
        return Ok(false);
    }
    match find(iam, &role).await? {
        Some((_, tags)) if tags.contains_key(tag) => {}
        _ => return Ok(false),
    }
    let doc = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": [resource] }]
    });
    put_policy(iam, &role, name, &doc.to_string()).await?;
    Ok(true)
}

/// Takes inline policy `name` off function `function`'s managed role; gone already is fine.
pub async fn revoke_managed(iam: &Client, function: &str, name: &str) -> Result<(), AwsError> {
    delete_policy(iam, &managed_role_name(function), name).await
}

/// The role's ARN and tags, or None when it does not exist. Errors other than "no such
/// entity" are errors.
pub async fn find(iam: &Client, role: &str) -> Result<Option<(String, BTreeMap<String, String>)>, AwsError> {
    match iam.get_role().role_name(role).send().await {
        Ok(out) => Ok(out.role.map(|r| {
            let tags = r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
            (r.arn, tags)
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(call("GetRole", Target::role(role), &e)),
    }
}

/// The ARN of role `role` when `owner` owns it; an error when someone else does.
async fn owned(iam: &Client, role: &str, owner: &Owner) -> Result<String, AwsError> {
    let (arn, tags) =
        find(iam, role).await?.ok_or_else(|| AwsError::Vanished { kind: "IAM role", target: role.to_string() })?;
    owner.check("IAM role", role, &tags)?;
    Ok(arn)
}

/// Creates (or converges, when `owner` owns it) the managed role and sets its policies.
pub async fn ensure(
    iam: &Client,
    function: &str,
    owner: &Owner,
    log_group_arn: &str,
    extra_statements: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let role = managed_role_name(function);
    let arn = match find(iam, &role).await? {
        Some(_) => owned(iam, &role, owner).await?,
        None => {
            let mut req = iam.create_role().role_name(&role).assume_role_policy_document(trust_policy()).description(
                format!("Execution role of Lambda function {function}, managed by terraform-provider-adf"),
            );
            for (k, v) in &owner.tagged(tags) {
                req = req.tags(Tag::builder().key(k).value(v).build().map_err(|e| AwsError::Invalid(e.to_string()))?);
            }
            match req.send().await {
                Ok(out) => {
                    owner.made_one();
                    out.role.map(|r| r.arn).unwrap_or_default()
                }
                // Made by a concurrent apply since we looked: ours only if it carries our tag.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_already_exists_exception()) => {
                    owned(iam, &role, owner).await?
                }
                Err(e) => return Err(call("CreateRole", Target::role(&role), &e)),
            }
        }
    };
    put_policy(iam, &role, LOGS_POLICY, &logs_policy(log_group_arn)).await?;
    match extra_statements {
        Some(statements) => {
            let statements: serde_json::Value =
                serde_json::from_str(statements).map_err(|e| AwsError::Invalid(e.to_string()))?;
            let doc = json!({ "Version": "2012-10-17", "Statement": statements }).to_string();
            put_policy(iam, &role, EXTRA_POLICY, &doc).await?;
        }
        None => delete_policy(iam, &role, EXTRA_POLICY).await?,
    }
    Ok(arn)
}

async fn put_policy(iam: &Client, role: &str, name: &str, doc: &str) -> Result<(), AwsError> {
    iam.put_role_policy().role_name(role).policy_name(name).policy_document(doc).send().await.at(Target::role(role))?;
    Ok(())
}

async fn delete_policy(iam: &Client, role: &str, name: &str) -> Result<(), AwsError> {
    match iam.delete_role_policy().role_name(role).policy_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
        Err(e) => Err(call("DeleteRolePolicy", Target::role(role), &e)),
    }
}

/// Deletes the managed role of `function` if `owner` owns it.
pub async fn delete(iam: &Client, function: &str, owner: &Owner) -> Result<(), AwsError> {
    let role = managed_role_name(function);
    match find(iam, &role).await? {
        Some((_, tags)) if owner.owns(&tags) => {}
        _ => return Ok(()),
    }
    // Every inline policy goes first (IAM refuses to delete a role that has any): ours, and
    // those an `adf_event_source` put on it to read its source.
    let listed = iam.list_role_policies().role_name(&role).send().await;
    let names = match listed {
        Ok(out) => out.policy_names,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(()),
        Err(e) => return Err(call("ListRolePolicies", Target::role(&role), &e)),
    };
    for p in &names {
        delete_policy(iam, &role, p).await?;
    }
    match iam.delete_role().role_name(&role).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
        Err(e) => Err(call("DeleteRole", Target::role(&role), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_policy_names_only_the_functions_log_group() {
        let p = logs_policy("arn:aws:logs:us-east-1:1:log-group:/aws/lambda/api:*");
        let v: serde_json::Value = serde_json::from_str(&p).expect("json");
        assert_eq!(v["Statement"][0]["Resource"][0], "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/api:*");
        assert!(!p.contains("\"*\""));
    }

    #[test]
    fn role_names_fit_iam() {
        assert_eq!(managed_role_name("api"), "api-role");
        assert_eq!(managed_role_name(&"f".repeat(64)).len(), 64);
    }
}
