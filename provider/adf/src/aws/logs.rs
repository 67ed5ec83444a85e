//! The function's CloudWatch log group `/aws/lambda/<name>`, with its retention and tags.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::Client;

use super::error::{AwsError, Sent, Target, call};

/// The log group Lambda writes to.
pub fn group_name(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// The group's ARN and retention in days (0: never expires), or None when it does not exist.
pub async fn describe(logs: &Client, group: &str) -> Result<Option<(String, i64)>, AwsError> {
    let out = logs.describe_log_groups().log_group_name_prefix(group).send().await.at(Target::log_group(group))?;
    Ok(out
        .log_groups
        .unwrap_or_default()
        .into_iter()
        .find(|g| g.log_group_name.as_deref() == Some(group))
        .map(|g| (g.arn.unwrap_or_default(), i64::from(g.retention_in_days.unwrap_or(0)))))
}

/// Creates the group if needed, then sets retention and tags. Returns its ARN.
pub async fn ensure(
    logs: &Client,
    group: &str,
    retention_days: i64,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    if describe(logs, group).await?.is_none() {
        let created = logs
            .create_log_group()
            .log_group_name(group)
            .set_tags(Some(tags.clone().into_iter().collect::<HashMap<_, _>>()))
            .send()
            .await;
        if let Err(e) = created
            && !e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception())
        {
            return Err(call("CreateLogGroup", Target::log_group(group), &e));
        }
    }
    if retention_days > 0 {
        logs.put_retention_policy()
            .log_group_name(group)
            .retention_in_days(i32::try_from(retention_days).unwrap_or(i32::MAX))
            .send()
            .await
            .at(Target::log_group(group))?;
    } else {
        logs.delete_retention_policy().log_group_name(group).send().await.at(Target::log_group(group))?;
    }
    describe(logs, group)
        .await?
        .map(|(arn, _)| arn)
        .ok_or(AwsError::Vanished { kind: "log group", target: group.to_string() })
}

/// Deletes the group; one already gone is fine.
pub async fn delete(logs: &Client, group: &str) -> Result<(), AwsError> {
    match logs.delete_log_group().log_group_name(group).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(call("DeleteLogGroup", Target::log_group(group), &e)),
    }
}
