//! CloudFormation stacks: created or updated from a template and waited for until they settle;
//! a failed stack explained by the resources that failed and their reasons, read from the
//! stack events (a stack whose creation rolled back is deleted, since it can only be deleted);
//! an update with nothing to change taken as done; drift detected on demand; deleted only when
//! the owner's, and waited for until gone.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, Parameter, StackDriftDetectionStatus, StackEvent, StackResourceDrift, StackResourceDriftStatus, Tag,
};

use super::error::{AwsError, Sent, Target, call};
use super::{Owner, poll};

/// What the services layer calls a stack in errors.
const KIND: &str = "CloudFormation stack";
/// The first pause between two looks at a stack that is changing; it doubles up to
/// [`MAX_POLL`]. A stack takes seconds to hours, an emulator a moment.
const FIRST_POLL: Duration = Duration::from_millis(200);
/// The longest pause between two looks.
const MAX_POLL: Duration = Duration::from_secs(15);

/// Where the template comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// The template itself, JSON or YAML.
    Body(String),
    /// An S3 URL of it.
    Url(String),
}

impl Template {
    /// The `TemplateBody` and `TemplateURL` of a request: one of them.
    fn parts(&self) -> (Option<String>, Option<String>) {
        match self {
            Template::Body(b) => (Some(b.clone()), None),
            Template::Url(u) => (None, Some(u.clone())),
        }
    }
}

/// What a plan asks of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackSpec {
    /// The stack name.
    pub name: String,
    /// Its template.
    pub template: Template,
    /// Parameter values by key.
    pub parameters: BTreeMap<String, String>,
    /// Capabilities acknowledged (`CAPABILITY_IAM`...).
    pub capabilities: Vec<String>,
    /// Minutes CloudFormation may take to create it before rolling back.
    pub timeout_in_minutes: Option<i32>,
    /// Tags, the owner tag included; CloudFormation passes them to what it makes.
    pub tags: BTreeMap<String, String>,
}

/// A stack as CloudFormation describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackState {
    /// The stack id, an ARN.
    pub id: String,
    /// `CREATE_COMPLETE`, `UPDATE_IN_PROGRESS`, `ROLLBACK_COMPLETE`...
    pub status: String,
    /// Why it is in that status, when CloudFormation says.
    pub status_reason: Option<String>,
    /// Parameter values by key; `****` for a NoEcho parameter.
    pub parameters: BTreeMap<String, String>,
    /// Capabilities it was given.
    pub capabilities: Vec<String>,
    /// Its creation timeout in minutes, if any.
    pub timeout_in_minutes: Option<i32>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
    /// Outputs by key.
    pub outputs: BTreeMap<String, String>,
}

impl StackState {
    fn of(s: &aws_sdk_cloudformation::types::Stack) -> Self {
        let pairs = |p: &[Parameter]| {
            p.iter().filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value()?.to_string()))).collect()
        };
        Self {
            id: s.stack_id().unwrap_or_default().to_string(),
            status: s.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            status_reason: s.stack_status_reason().map(str::to_string),
            parameters: pairs(s.parameters()),
            capabilities: s.capabilities().iter().map(|c| c.as_str().to_string()).collect(),
            timeout_in_minutes: s.timeout_in_minutes(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect(),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value().unwrap_or_default().to_string())))
                .collect(),
        }
    }

    /// Whether an operation is still running on it (a stack awaiting a change set's review
    /// counts as settled: nothing will move it on).
    pub fn is_changing(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }

    /// Whether its creation failed and rolled back: it holds nothing and can only be deleted.
    pub fn is_rolled_back(&self) -> bool {
        self.status == "ROLLBACK_COMPLETE"
    }
}

/// Stack `name_or_id`, or None when there is none (or only a deleted one).
pub async fn find(cf: &Client, name_or_id: &str) -> Result<Option<StackState>, AwsError> {
    match cf.describe_stacks().stack_name(name_or_id).send().await {
        Ok(out) => Ok(out.stacks().first().map(StackState::of).filter(|s| s.status != "DELETE_COMPLETE")),
        // CloudFormation answers a missing stack with a ValidationError.
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
        Err(e) => Err(call("DescribeStacks", Target::stack(name_or_id), &e)),
    }
}

/// The template stack `name` was last given, as it was given.
pub async fn template(cf: &Client, name: &str) -> Result<String, AwsError> {
    let out = cf.get_template().stack_name(name).send().await.at(Target::stack(name))?;
    Ok(out.template_body.unwrap_or_default())
}

/// Waits until no operation runs on stack `id` (named `name` in errors) and returns it.
async fn settled(cf: &Client, name: &str, id: &str) -> Result<StackState, AwsError> {
    poll(FIRST_POLL, MAX_POLL, || async {
        let s = find(cf, id).await?.ok_or_else(|| AwsError::Vanished { kind: KIND, target: name.into() })?;
        if s.is_changing() {
            tracing::debug!(stack = name, status = %s.status, "waiting for the stack to settle");
            return Ok(None);
        }
        Ok(Some(s))
    })
    .await
}

/// Creates the stack tagged with `owner` (`spec.tags` carry it), or updates the one `owner`
/// owns, and waits for it to settle. A stack left by a failed creation (ROLLBACK_COMPLETE) is
/// deleted first. A failure names the resources that failed and why.
pub async fn ensure(cf: &Client, spec: &StackSpec, owner: &Owner) -> Result<StackState, AwsError> {
    let name = spec.name.as_str();
    let current = match find(cf, name).await? {
        Some(s) => {
            owner.check(KIND, name, &s.tags)?;
            Some(settled(cf, name, &s.id).await?)
        }
        None => None,
    };
    match current {
        Some(s) if s.is_rolled_back() => {
            // Only deletion is left for a stack whose creation rolled back.
            delete_stack(cf, name, &s.id).await?;
            create(cf, spec, owner).await
        }
        Some(s) => update(cf, spec, &s).await,
        None => create(cf, spec, owner).await,
    }
}

fn parameters(spec: &StackSpec) -> Vec<Parameter> {
    spec.parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect()
}

fn capabilities(spec: &StackSpec) -> Vec<Capability> {
    spec.capabilities.iter().map(|c| Capability::from(c.as_str())).collect()
}

fn tags(spec: &StackSpec) -> Vec<Tag> {
    spec.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

async fn create(cf: &Client, spec: &StackSpec, owner: &Owner) -> Result<StackState, AwsError> {
    let name = spec.name.as_str();
    let (body, url) = spec.template.parts();
    let out = cf
        .create_stack()
        .stack_name(name)
        .set_template_body(body)
        .set_template_url(url)
        .set_parameters(Some(parameters(spec)))
        .set_capabilities(Some(capabilities(spec)))
        .set_timeout_in_minutes(spec.timeout_in_minutes)
        .set_tags(Some(tags(spec)))
        .send()
        .await
        .at(Target::stack(name))?;
    owner.made_one();
    let id = out.stack_id.unwrap_or_else(|| name.to_string());
    let s = settled(cf, name, &id).await?;
    if s.status == "CREATE_COMPLETE" {
        return Ok(s);
    }
    let why = failure(cf, name, &id, &s).await?;
    if s.is_rolled_back() {
        // Nothing is left in it, and it can only be deleted: do so, so the next apply starts clean.
        delete_stack(cf, name, &id).await?;
    }
    Err(AwsError::other("CreateStack", Target::stack(name), why))
}

async fn update(cf: &Client, spec: &StackSpec, current: &StackState) -> Result<StackState, AwsError> {
    let name = spec.name.as_str();
    let (body, url) = spec.template.parts();
    let sent = cf
        .update_stack()
        .stack_name(&current.id)
        .set_template_body(body)
        .set_template_url(url)
        .set_parameters(Some(parameters(spec)))
        .set_capabilities(Some(capabilities(spec)))
        .set_tags(Some(tags(spec)))
        .send()
        .await;
    match sent {
        Ok(_) => {}
        Err(e) if e.message().is_some_and(|m| m.contains("No updates are to be performed")) => {
            return Ok(current.clone());
        }
        Err(e) => return Err(call("UpdateStack", Target::stack(name), &e)),
    }
    let s = settled(cf, name, &current.id).await?;
    if s.status == "UPDATE_COMPLETE" {
        return Ok(s);
    }
    let why = failure(cf, name, &current.id, &s).await?;
    Err(AwsError::other("UpdateStack", Target::stack(name), why))
}

/// Why the last operation on stack `id` ended in `s.status`: its failed resources, from the
/// events since the operation began.
async fn failure(cf: &Client, name: &str, id: &str, s: &StackState) -> Result<String, AwsError> {
    let mut events = Vec::new();
    let mut token = None;
    // Newest first: page back until the event that began the operation.
    loop {
        let out =
            cf.describe_stack_events().stack_name(id).set_next_token(token).send().await.at(Target::stack(name))?;
        let page = out.stack_events().to_vec();
        let began = page.iter().position(|e| began_operation(e, id));
        events.extend(page.into_iter().take(began.map_or(usize::MAX, |i| i + 1)));
        match out.next_token {
            Some(t) if began.is_none() && !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    events.reverse();
    let failed = failed_resources(&events);
    let why = if failed.is_empty() {
        s.status_reason.clone().unwrap_or_else(|| "CloudFormation gives no reason".to_string())
    } else {
        failed.join("; ")
    };
    Ok(format!("{}: {why}", s.status))
}

/// Whether `e` is the stack's own event that began an operation the user asked for.
fn began_operation(e: &StackEvent, id: &str) -> bool {
    let status = e.resource_status().map(|s| s.as_str()).unwrap_or_default();
    e.physical_resource_id() == Some(id)
        && e.resource_type() == Some("AWS::CloudFormation::Stack")
        && ["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"].contains(&status)
        && e.resource_status_reason() == Some("User Initiated")
}

/// The failed resources of `events` (oldest first), as `Logical (Type) STATUS: reason`. Those
/// CloudFormation cancelled because another failed are left out when any other failed.
fn failed_resources(events: &[StackEvent]) -> Vec<String> {
    let failed: Vec<&StackEvent> = events
        .iter()
        .filter(|e| e.resource_type() != Some("AWS::CloudFormation::Stack"))
        .filter(|e| e.resource_status().is_some_and(|s| s.as_str().ends_with("_FAILED")))
        .collect();
    let cancelled = |e: &&StackEvent| e.resource_status_reason().is_some_and(|r| r.contains("cancelled"));
    let causes: Vec<&StackEvent> =
        if failed.iter().all(cancelled) { failed } else { failed.into_iter().filter(|e| !cancelled(e)).collect() };
    causes
        .iter()
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_resource_id().unwrap_or_default(),
                e.resource_type().unwrap_or_default(),
                e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                e.resource_status_reason().unwrap_or("no reason given"),
            )
        })
        .collect()
}

/// Deletes stack `id` and waits until it is gone; an error naming what failed to delete.
async fn delete_stack(cf: &Client, name: &str, id: &str) -> Result<(), AwsError> {
    cf.delete_stack().stack_name(id).send().await.at(Target::stack(name))?;
    let s = poll(FIRST_POLL, MAX_POLL, || async {
        Ok(match find(cf, id).await? {
            Some(s) if s.is_changing() => None,
            other => Some(other),
        })
    })
    .await?;
    match s {
        None => Ok(()),
        Some(s) => Err(AwsError::other("DeleteStack", Target::stack(name), failure(cf, name, id, &s).await?)),
    }
}

/// Deletes stack `name` when `owner` owns it, and waits until it is gone; one already gone, or
/// someone else's, is left alone.
pub async fn delete(cf: &Client, name: &str, owner: &Owner) -> Result<(), AwsError> {
    match find(cf, name).await? {
        Some(s) if owner.owns(&s.tags) => delete_stack(cf, name, &s.id).await,
        Some(_) => {
            tracing::warn!(stack = name, "not deleting a CloudFormation stack that another owner tagged");
            Ok(())
        }
        None => Ok(()),
    }
}

/// The resources of stack `name` that differ from its template, by logical id, each described
/// as `DELETED` or `MODIFIED: /Path expected E, actual A; ...`. Runs drift detection and waits
/// for it.
pub async fn drift(cf: &Client, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let target = Target::stack(name);
    let out = cf.detect_stack_drift().stack_name(name).send().await.at(target)?;
    let detection = out.stack_drift_detection_id.unwrap_or_default();
    let drifted = poll(FIRST_POLL, MAX_POLL, || async {
        let s =
            cf.describe_stack_drift_detection_status().stack_drift_detection_id(&detection).send().await.at(target)?;
        Ok(match s.detection_status() {
            Some(StackDriftDetectionStatus::DetectionInProgress) => None,
            // DETECTION_FAILED still reports the resources it could check.
            _ => Some(s.drifted_stack_resource_count().unwrap_or_default()),
        })
    })
    .await?;
    let mut found = BTreeMap::new();
    if drifted == 0 {
        return Ok(found);
    }
    let mut token = None;
    loop {
        let out = cf
            .describe_stack_resource_drifts()
            .stack_name(name)
            .stack_resource_drift_status_filters(StackResourceDriftStatus::Modified)
            .stack_resource_drift_status_filters(StackResourceDriftStatus::Deleted)
            .set_next_token(token)
            .send()
            .await
            .at(target)?;
        for d in out.stack_resource_drifts() {
            found.insert(d.logical_resource_id().unwrap_or_default().to_string(), drift_summary(d));
        }
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(found),
        }
    }
}

/// One drifted resource as the plan shows it.
fn drift_summary(d: &StackResourceDrift) -> String {
    let status = d.stack_resource_drift_status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    let differences: Vec<String> = d
        .property_differences()
        .iter()
        .map(|p| {
            format!(
                "{} expected {}, actual {}",
                p.property_path().unwrap_or_default(),
                p.expected_value().unwrap_or("(none)"),
                p.actual_value().unwrap_or("(none)"),
            )
        })
        .collect();
    if differences.is_empty() { status.to_string() } else { format!("{status}: {}", differences.join("; ")) }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::types::{PropertyDifference, ResourceStatus};

    use super::*;

    fn event(logical: &str, kind: &str, status: ResourceStatus, reason: Option<&str>) -> StackEvent {
        StackEvent::builder()
            .stack_id("arn:stack/s/1")
            .event_id(format!("{logical}-{status}"))
            .stack_name("s")
            .logical_resource_id(logical)
            .resource_type(kind)
            .resource_status(status)
            .set_resource_status_reason(reason.map(str::to_string))
            .timestamp(aws_sdk_cloudformation::primitives::DateTime::from_secs(0))
            .build()
    }

    #[test]
    fn a_failure_names_the_resource_that_failed_not_those_cancelled_for_it() {
        let events = [
            event("s", "AWS::CloudFormation::Stack", ResourceStatus::CreateInProgress, Some("User Initiated")),
            event("Queue", "AWS::SQS::Queue", ResourceStatus::CreateFailed, Some("Resource creation cancelled")),
            event("Bucket", "AWS::S3::Bucket", ResourceStatus::CreateFailed, Some("taken already exists")),
            event("s", "AWS::CloudFormation::Stack", ResourceStatus::RollbackComplete, None),
        ];
        assert_eq!(failed_resources(&events), ["Bucket (AWS::S3::Bucket) CREATE_FAILED: taken already exists"]);
        // When all were cancelled (a timeout), they are what there is to say.
        assert_eq!(failed_resources(&events[..2]).len(), 1);
        assert!(failed_resources(&events[3..]).is_empty());
    }

    #[test]
    fn the_operation_begins_at_the_stack_event_the_user_initiated() {
        let mut began =
            event("s", "AWS::CloudFormation::Stack", ResourceStatus::UpdateInProgress, Some("User Initiated"));
        began.physical_resource_id = Some("arn:stack/s/1".into());
        assert!(began_operation(&began, "arn:stack/s/1"));
        assert!(!began_operation(&began, "arn:stack/other/2"));
        let mut resource = event("Queue", "AWS::SQS::Queue", ResourceStatus::UpdateInProgress, None);
        resource.physical_resource_id = Some("arn:stack/s/1".into());
        assert!(!began_operation(&resource, "arn:stack/s/1"));
    }

    #[test]
    fn drift_reads_as_the_properties_that_differ() {
        let modified = StackResourceDrift::builder()
            .stack_id("arn:stack/s/1")
            .logical_resource_id("Queue")
            .resource_type("AWS::SQS::Queue")
            .stack_resource_drift_status(StackResourceDriftStatus::Modified)
            .property_differences(
                PropertyDifference::builder()
                    .property_path("/VisibilityTimeout")
                    .expected_value("30")
                    .actual_value("60")
                    .difference_type(aws_sdk_cloudformation::types::DifferenceType::NotEqual)
                    .build(),
            )
            .timestamp(aws_sdk_cloudformation::primitives::DateTime::from_secs(0))
            .build();
        assert_eq!(drift_summary(&modified), "MODIFIED: /VisibilityTimeout expected 30, actual 60");
        let deleted = StackResourceDrift::builder()
            .stack_id("arn:stack/s/1")
            .logical_resource_id("Bucket")
            .resource_type("AWS::S3::Bucket")
            .stack_resource_drift_status(StackResourceDriftStatus::Deleted)
            .timestamp(aws_sdk_cloudformation::primitives::DateTime::from_secs(0))
            .build();
        assert_eq!(drift_summary(&deleted), "DELETED");
    }
}
