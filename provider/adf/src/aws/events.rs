//! Schedules: an EventBridge rule that invokes a function every N minutes with a fixed input,
//! and the function permission that lets EventBridge (from that rule only) invoke it.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};

use super::AwsClients;
use super::error::{AwsError, Sent, call};

/// The id of the rule's only target (first named for the workflow worker; rules already
/// deployed carry it).
const TARGET_ID: &str = "worker";

/// A schedule that invokes a function with a fixed input.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The rule's name.
    pub rule: String,
    /// The function.
    pub function: String,
    /// The event the function receives.
    pub input: &'static str,
    /// The function's policy statement that lets the rule invoke it.
    pub statement_id: &'static str,
}

/// `rate(N minutes)` (`rate(1 minute)`: EventBridge wants the singular).
pub fn expression(minutes: i64) -> String {
    if minutes == 1 { "rate(1 minute)".into() } else { format!("rate({minutes} minutes)") }
}

/// The minutes of a `rate(...)` expression in minutes, hours or days; None for anything else.
pub fn minutes(expression: &str) -> Option<i64> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: i64 = n.parse().ok()?;
    match unit.trim() {
        "minute" | "minutes" => Some(n),
        "hour" | "hours" => Some(n * 60),
        "day" | "days" => Some(n * 24 * 60),
        _ => None,
    }
}

fn not_found<E: ProvideErrorMetadata>(e: &aws_sdk_eventbridge::error::SdkError<E>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ResourceNotFoundException")
}

/// The rule's period in minutes while it is enabled and sends its input to `function_arn`;
/// None when there is no such rule (or it is disabled, or aims elsewhere: drift to repair).
pub async fn observe(
    events: &aws_sdk_eventbridge::Client,
    s: &Schedule,
    function_arn: &str,
) -> Result<Option<i64>, AwsError> {
    let rule = &s.rule;
    let target = format!("EventBridge rule {rule}");
    let described = match events.describe_rule().name(rule).send().await {
        Ok(r) => r,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(call("DescribeRule", &target, &e)),
    };
    if described.state() != Some(&RuleState::Enabled) {
        return Ok(None);
    }
    let targets = match events.list_targets_by_rule().rule(rule).send().await {
        Ok(t) => t,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(call("ListTargetsByRule", &target, &e)),
    };
    let aimed = targets.targets().iter().any(|t| t.arn() == function_arn && t.input() == Some(s.input));
    Ok(if aimed { described.schedule_expression().and_then(minutes) } else { None })
}

/// Creates or updates the rule (every `every_minutes`, described by `description`), its
/// target and the invoke permission; returns the rule's ARN.
pub async fn ensure(
    aws: &AwsClients,
    s: &Schedule,
    every_minutes: i64,
    description: &str,
    function_arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let rule = &s.rule;
    let target = format!("EventBridge rule {rule}");
    let put = aws
        .events
        .put_rule()
        .name(rule)
        .schedule_expression(expression(every_minutes))
        .state(RuleState::Enabled)
        .description(description)
        .send()
        .await
        .at(&target)?;
    let rule_arn = put.rule_arn.unwrap_or_default();
    if !tags.is_empty() {
        let mut req = aws.events.tag_resource().resource_arn(&rule_arn);
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(k).value(v).build().map_err(|e| AwsError::Invalid(e.to_string()))?);
        }
        req.send().await.at(&target)?;
    }
    let current = aws.events.list_targets_by_rule().rule(rule).send().await.at(&target)?;
    let aimed =
        current.targets().iter().any(|t| t.id() == TARGET_ID && t.arn() == function_arn && t.input() == Some(s.input));
    if !aimed {
        let t = Target::builder()
            .id(TARGET_ID)
            .arn(function_arn)
            .input(s.input)
            .build()
            .map_err(|e| AwsError::Invalid(e.to_string()))?;
        let out = aws.events.put_targets().rule(rule).targets(t).send().await.at(&target)?;
        if out.failed_entry_count > 0 {
            let why: Vec<String> =
                out.failed_entries().iter().map(|f| f.error_message().unwrap_or_default().to_string()).collect();
            return Err(AwsError::other("PutTargets", target, why.join("; ")));
        }
    }
    allow_invoke(&aws.lambda, s, &rule_arn).await?;
    Ok(rule_arn)
}

/// The source ARN of statement `sid` in function `function`'s resource policy, if present.
async fn statement_source(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    sid: &str,
) -> Result<Option<String>, AwsError> {
    let policy = match lambda.get_policy().function_name(function).send().await {
        Ok(p) => p.policy.unwrap_or_default(),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => {
            return Err(AwsError::other("GetPolicy", format!("function {function}"), adf_common::error_chain(&e)));
        }
    };
    let doc: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
    let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    Ok(statements.iter().find(|s| s["Sid"] == sid).map(|s| {
        let c = &s["Condition"]["ArnLike"]["AWS:SourceArn"];
        c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string())
    }))
}

/// Lets EventBridge invoke the function, from rule `rule_arn` only.
async fn allow_invoke(lambda: &aws_sdk_lambda::Client, s: &Schedule, rule_arn: &str) -> Result<(), AwsError> {
    let function = &s.function;
    let target = format!("function {function}");
    match statement_source(lambda, function, s.statement_id).await? {
        Some(source) if source == rule_arn => return Ok(()),
        Some(_) => remove_permission(lambda, s).await?,
        None => {}
    }
    let added = lambda
        .add_permission()
        .function_name(function)
        .statement_id(s.statement_id)
        .action("lambda:InvokeFunction")
        .principal("events.amazonaws.com")
        .source_arn(rule_arn)
        .send()
        .await;
    match added {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_conflict_exception()) => Ok(()),
        Err(e) => Err(AwsError::other("AddPermission", target, adf_common::error_chain(&e))),
    }
}

async fn remove_permission(lambda: &aws_sdk_lambda::Client, s: &Schedule) -> Result<(), AwsError> {
    let function = &s.function;
    match lambda.remove_permission().function_name(function).statement_id(s.statement_id).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(AwsError::other("RemovePermission", format!("function {function}"), adf_common::error_chain(&e))),
    }
}

/// Deletes the rule (target first) and the permission; what is gone already is fine.
pub async fn remove(aws: &AwsClients, s: &Schedule) -> Result<(), AwsError> {
    let rule = &s.rule;
    let target = format!("EventBridge rule {rule}");
    match aws.events.remove_targets().rule(rule).ids(TARGET_ID).send().await {
        Err(e) if !not_found(&e) => return Err(call("RemoveTargets", &target, &e)),
        _ => {}
    }
    match aws.events.delete_rule().name(rule).send().await {
        Err(e) if !not_found(&e) => return Err(call("DeleteRule", &target, &e)),
        _ => {}
    }
    match statement_source(&aws.lambda, &s.function, s.statement_id).await {
        Ok(Some(_)) => remove_permission(&aws.lambda, s).await,
        Ok(None) => Ok(()),
        // The function is being deleted too; its policy goes with it.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_round_trip() {
        assert_eq!(expression(1), "rate(1 minute)");
        assert_eq!(expression(5), "rate(5 minutes)");
        for n in [1, 5, 60, 1440] {
            assert_eq!(minutes(&expression(n)), Some(n));
        }
        assert_eq!(minutes("rate(2 hours)"), Some(120));
        assert_eq!(minutes("cron(0 12 * * ? *)"), None);
    }
}
