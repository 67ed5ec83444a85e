//! SQS queues converged to a spec: created when missing, adopted only when they carry the
//! owner tag, then their attributes and tags set to what the spec says.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName as A;

use super::error::{AwsError, Sent, Target, call};
use super::{Owner, TagChanges};

/// What a queue should be.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    /// Queue name (with `.fifo` for FIFO queues).
    pub name: String,
    /// FIFO queue.
    pub fifo: bool,
    /// Managed attributes, set on create and on every converge.
    pub attributes: BTreeMap<A, String>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// A queue as SQS describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueState {
    /// Queue URL.
    pub url: String,
    /// Queue ARN.
    pub arn: String,
    /// `VisibilityTimeout`.
    pub visibility_timeout: Option<i64>,
    /// `MessageRetentionPeriod`.
    pub retention: Option<i64>,
    /// `maxReceiveCount` of the redrive policy.
    pub max_receive_count: Option<i64>,
    /// `KmsMasterKeyId`, when set.
    pub kms_key: Option<String>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

fn is_missing<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(e.code(), Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist"))
}

/// The URL of queue `name`, or None when it does not exist.
pub async fn find(sqs: &Client, name: &str) -> Result<Option<String>, AwsError> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist() || is_missing(s)) => Ok(None),
        Err(e) => Err(call("GetQueueUrl", Target::queue(name), &e)),
    }
}

/// Describes queue `name`, at `url` when known (no `GetQueueUrl` then: a refresh of a queue
/// in state costs two requests); None when it does not exist.
pub async fn observe(sqs: &Client, name: &str, url: Option<&str>) -> Result<Option<QueueState>, AwsError> {
    match url {
        Some(url) => describe(sqs, name, url).await,
        None => match find(sqs, name).await? {
            Some(url) => describe(sqs, name, &url).await,
            None => Ok(None),
        },
    }
}

/// Describes the queue at `url`; None when it was deleted meanwhile.
pub async fn describe(sqs: &Client, name: &str, url: &str) -> Result<Option<QueueState>, AwsError> {
    let attrs = match sqs.get_queue_attributes().queue_url(url).attribute_names(A::All).send().await {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist() || is_missing(s)) => {
            return Ok(None);
        }
        Err(e) => return Err(call("GetQueueAttributes", Target::queue(name), &e)),
    };
    let tags = sqs.list_queue_tags().queue_url(url).send().await.at(Target::queue(name))?.tags.unwrap_or_default();
    Ok(Some(parse(url, &attrs, tags)))
}

fn parse(url: &str, attrs: &HashMap<A, String>, tags: HashMap<String, String>) -> QueueState {
    let num = |k: &A| attrs.get(k).and_then(|v| v.parse::<i64>().ok());
    let max_receive_count = attrs
        .get(&A::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| match &p["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        });
    QueueState {
        url: url.to_string(),
        arn: attrs.get(&A::QueueArn).cloned().unwrap_or_default(),
        visibility_timeout: num(&A::VisibilityTimeout),
        retention: num(&A::MessageRetentionPeriod),
        max_receive_count,
        kms_key: attrs.get(&A::KmsMasterKeyId).filter(|k| !k.is_empty()).cloned(),
        tags: tags.into_iter().collect(),
    }
}

/// Creates the queue tagged with `owner` (`spec.tags` carry it), or converges the one `owner`
/// owns, to `spec`.
pub async fn ensure(sqs: &Client, spec: &QueueSpec, owner: &Owner) -> Result<QueueState, AwsError> {
    let url = match find(sqs, &spec.name).await? {
        Some(url) => {
            let current = describe(sqs, &spec.name, &url).await?.unwrap_or_default();
            owner.check("SQS queue", &spec.name, &current.tags)?;
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(spec.attributes.clone().into_iter().collect()))
                .send()
                .await
                .at(Target::queue(&spec.name))?;
            sync_tags(sqs, &spec.name, &url, &current.tags, &spec.tags).await?;
            url
        }
        None => {
            let mut attributes: HashMap<A, String> = spec.attributes.clone().into_iter().collect();
            if spec.fifo {
                attributes.insert(A::FifoQueue, "true".into());
            }
            let url = sqs
                .create_queue()
                .queue_name(&spec.name)
                .set_attributes(Some(attributes))
                .set_tags(Some(spec.tags.clone().into_iter().collect()))
                .send()
                .await
                .at(Target::queue(&spec.name))?
                .queue_url
                .unwrap_or_default();
            owner.made_one();
            url
        }
    };
    let state = describe(sqs, &spec.name, &url)
        .await?
        .ok_or_else(|| AwsError::Vanished { kind: "SQS queue", target: spec.name.clone() })?;
    // CreateQueue answers an existing queue of the same name and attributes: ours only if tagged so.
    owner.check("SQS queue", &spec.name, &state.tags)?;
    Ok(state)
}

async fn sync_tags(
    sqs: &Client,
    name: &str,
    url: &str,
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let changes = TagChanges::new(current, wanted);
    if !changes.stale.is_empty() {
        sqs.untag_queue().queue_url(url).set_tag_keys(Some(changes.stale)).send().await.at(Target::queue(name))?;
    }
    if !changes.set.is_empty() {
        sqs.tag_queue()
            .queue_url(url)
            .set_tags(Some(changes.set.into_iter().collect()))
            .send()
            .await
            .at(Target::queue(name))?;
    }
    Ok(())
}

/// Deletes queue `name` when `owner` owns it; a queue already gone, or someone else's, is left
/// alone.
pub async fn delete(sqs: &Client, name: &str, owner: &Owner) -> Result<(), AwsError> {
    let Some(url) = find(sqs, name).await? else { return Ok(()) };
    if !describe(sqs, name, &url).await?.is_some_and(|q| owner.owns(&q.tags)) {
        tracing::warn!(queue = name, "not deleting an SQS queue that another owner tagged");
        return Ok(());
    }
    match sqs.delete_queue().queue_url(url).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist() || is_missing(s)) => Ok(()),
        Err(e) => Err(call("DeleteQueue", Target::queue(name), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_count_is_read_as_number_or_string() {
        let mut attrs = HashMap::new();
        attrs.insert(A::RedrivePolicy, r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":"7"}"#.to_string());
        attrs.insert(A::VisibilityTimeout, "45".to_string());
        attrs.insert(A::KmsMasterKeyId, String::new());
        let q = parse("u", &attrs, HashMap::new());
        assert_eq!(q.max_receive_count, Some(7));
        assert_eq!(q.visibility_timeout, Some(45));
        assert_eq!(q.kms_key, None);
        attrs.insert(A::RedrivePolicy, r#"{"maxReceiveCount":3}"#.to_string());
        assert_eq!(parse("u", &attrs, HashMap::new()).max_receive_count, Some(3));
    }
}
