//! The worker as a Lambda: SQS batches from the event source mapping (with partial batch
//! responses, so one bad job does not redeliver the others), and the reconciler's schedule.

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

use crate::contract::RECONCILE_KEY;
use crate::queue::Job;
use crate::reconciler;
use crate::worker::{Worker, WorkerError};

/// Runs found unchanged this long are resumed by a scheduled reconcile, unless the event
/// says `older_than_seconds`.
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(300);

/// Handles one invocation: an SQS event, or `{"reconcile": true}` from the schedule.
pub async fn handle(worker: &Worker, event: Value, deadline: Option<Instant>) -> Result<Value, WorkerError> {
    if event.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(event)
            .map_err(|e| crate::store::StoreError::Corrupt { what: "SQS event".into(), cause: e.to_string() })?;
        let response = handle_sqs(worker, sqs, deadline).await;
        return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
    }
    if event.get(RECONCILE_KEY).is_some() {
        let older =
            event.get("older_than_seconds").and_then(Value::as_u64).map_or(DEFAULT_STALLED_AFTER, Duration::from_secs);
        let r = reconciler::reconcile(worker.store(), worker.queue(), older).await?;
        return Ok(json!({ "stalled": r.stalled, "resumed_jobs": r.resumed_jobs, "finished": r.finished }));
    }
    Err(WorkerError::Store(crate::store::StoreError::Corrupt {
        what: "event".into(),
        cause: "expected an SQS event or {\"reconcile\": true}".into(),
    }))
}

/// Runs the batch's jobs within `deadline`; those that failed are reported for redelivery.
pub async fn handle_sqs(worker: &Worker, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut jobs = Vec::new();
    let mut ids = Vec::new();
    for m in event.records {
        let id = m.message_id.clone().unwrap_or_default();
        match serde_json::from_str::<Job>(m.body.as_deref().unwrap_or_default()) {
            Ok(job) => {
                jobs.push((job, None));
                ids.push(id);
            }
            Err(e) => {
                tracing::error!(message = %id, error = %e, "not a job; it goes to the DLQ after max_receive_count");
                failures.push(id);
            }
        }
    }
    for (id, result) in ids.into_iter().zip(worker.handle_batch(jobs, deadline).await) {
        if let Err(e) = result {
            tracing::warn!(message = %id, error = %e, "job failed; SQS delivers it again");
            failures.push(id);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}
