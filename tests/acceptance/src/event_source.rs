//! An SQS event source mapping for a locally run Lambda: what Lambda does for a function mapped
//! to a queue, which moto cannot (it cannot run Lambda code).

use anyhow::Result;
use serde_json::{Value, json};

use crate::lambda_runner::LambdaRunner;

/// Receives up to ten messages (waiting up to a second), invokes `runner` with them as one SQS
/// event, and deletes those the function did not report in `batchItemFailures`. Returns how
/// many messages the batch held (0: nothing was invoked).
pub async fn deliver_batch(runner: &LambdaRunner, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<usize> {
    let got = sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1).send().await?;
    let messages = got.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                   "eventSource": "aws:sqs", "awsRegion": crate::REGION})
        })
        .collect();
    let answer = runner.invoke(&json!({ "Records": records })).await?;
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    for m in messages.iter().filter(|m| !failed.contains(&m.message_id().unwrap_or_default())) {
        sqs.delete_message().queue_url(queue_url).receipt_handle(m.receipt_handle().unwrap_or_default()).send().await?;
    }
    Ok(messages.len())
}
