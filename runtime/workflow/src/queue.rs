//! Jobs on the SQS queue: sent ten to a request, received ten to a request, deleted in batches,
//! and kept invisible by a heartbeat while a node runs.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// SQS takes at most ten messages per batch request.
const BATCH: usize = 10;
/// SQS's limit on one message, and on one batch request's total.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Inputs larger than this are not carried in the job; the worker reads them.
pub const INLINE_INPUT_BYTES: usize = 64 * 1024;
/// The longest delay SQS applies to a message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// One node to run in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The run.
    pub run: String,
    /// The node.
    pub node: String,
    /// Blueprint name.
    pub bp: String,
    /// Blueprint version the run pinned.
    pub v: String,
    /// 0 for the first attempt.
    #[serde(default)]
    pub attempt: u32,
    /// The node's input, when small enough to carry; otherwise the worker reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// A sleeping node wakes at this time (epoch ms) and completes with its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<i64>,
    /// A retry runs no earlier than this (epoch ms): a delay longer than SQS's 15 minutes
    /// goes back to the queue in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
}

impl Job {
    /// A first attempt of `node` with `input` (left out when sent, if large).
    pub fn new(run: &str, node: &str, bp: &str, version: &str, input: Option<Value>) -> Self {
        Self {
            run: run.into(),
            node: node.into(),
            bp: bp.into(),
            v: version.into(),
            attempt: 0,
            input,
            wake_at: None,
            not_before: None,
        }
    }
}

/// A job as received, with what deletes it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The job, or why its body is not one.
    pub job: Result<Job, String>,
    /// The receipt handle.
    pub receipt: String,
    /// How many times SQS has delivered it.
    pub receive_count: u32,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An SQS call failed.
    #[error("SQS {op}: {cause}")]
    Aws {
        /// The operation.
        op: &'static str,
        /// The SDK error.
        cause: String,
    },
    /// Some messages of a batch were refused.
    #[error("SQS {op}: {failed} of the batch failed: {first}")]
    Partial {
        /// The operation.
        op: &'static str,
        /// How many.
        failed: usize,
        /// The first failure.
        first: String,
    },
    /// A job that cannot be encoded.
    #[error("encoding a job: {0}")]
    Encode(#[from] serde_json::Error),
}

fn aws<E: std::error::Error + 'static>(op: &'static str) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    move |e| QueueError::Aws { op, cause: adf_common::error_chain(&e) }
}

/// The job queue.
#[derive(Clone, Debug)]
pub struct Queue {
    sqs: Client,
    url: String,
}

impl Queue {
    /// The queue at `url`.
    pub fn new(sqs: Client, url: impl Into<String>) -> Self {
        Self { sqs, url: url.into() }
    }

    /// Sends `jobs`, each with its delay, ten (or 256 KB) to a request.
    pub async fn send(&self, jobs: &[(Job, Duration)]) -> Result<(), QueueError> {
        let mut batch: Vec<SendMessageBatchRequestEntry> = Vec::new();
        let mut bytes = 0;
        for (i, (job, delay)) in jobs.iter().enumerate() {
            let mut body = serde_json::to_string(job)?;
            if body.len() > INLINE_INPUT_BYTES {
                // The worker reads a large input from the run's state instead.
                body = serde_json::to_string(&Job { input: None, ..job.clone() })?;
            }
            if batch.len() == BATCH || bytes + body.len() > MAX_MESSAGE_BYTES {
                self.send_batch(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += body.len();
            let delay = i32::try_from(delay.min(&MAX_DELAY).as_secs()).unwrap_or(0);
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .delay_seconds(delay)
                .build()
                .map_err(|e| QueueError::Aws { op: "SendMessageBatch", cause: e.to_string() })?;
            batch.push(entry);
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn send_batch(&self, entries: Vec<SendMessageBatchRequestEntry>) -> Result<(), QueueError> {
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(aws("SendMessageBatch"))?;
        if let Some(f) = out.failed.first() {
            return Err(QueueError::Partial {
                op: "SendMessageBatch",
                failed: out.failed.len(),
                first: f.message.clone().unwrap_or_else(|| f.code.clone()),
            });
        }
        Ok(())
    }

    /// Receives up to ten jobs, waiting up to `wait` for the first, hidden for `visibility`.
    pub async fn receive(&self, max: i32, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(i32::try_from(wait.as_secs().min(20)).unwrap_or(0))
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(30))
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(aws("ReceiveMessage"))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Received {
                    job: serde_json::from_str(m.body.as_deref().unwrap_or_default()).map_err(|e| e.to_string()),
                    receipt: m.receipt_handle.unwrap_or_default(),
                    receive_count,
                }
            })
            .collect())
    }

    /// Deletes received messages, ten to a request.
    pub async fn delete(&self, receipts: &[String]) -> Result<(), QueueError> {
        for chunk in receipts.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| QueueError::Aws { op: "DeleteMessageBatch", cause: e.to_string() })?;
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(aws("DeleteMessageBatch"))?;
            if let Some(f) = out.failed.first() {
                return Err(QueueError::Partial {
                    op: "DeleteMessageBatch",
                    failed: out.failed.len(),
                    first: f.message.clone().unwrap_or_else(|| f.code.clone()),
                });
            }
        }
        Ok(())
    }

    /// Keeps a received message hidden for `visibility` more (0 makes it visible again).
    pub async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(0))
            .send()
            .await
            .map_err(aws("ChangeMessageVisibility"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_are_small_json() {
        let j = Job::new("r", "n", "order", "v1", Some(json!({"a": 1})));
        assert_eq!(
            serde_json::to_string(&j).expect("json"),
            r#"{"run":"r","node":"n","bp":"order","v":"v1","attempt":0,"input":{"a":1}}"#
        );
    }
}
