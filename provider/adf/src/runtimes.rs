//! The runtimes' contracts, filled in: the environment and the IAM statements the provider
//! gives each runtime it deploys. The names, actions and key schemas come from the runtime
//! crates ([`adf_workflow::contract`], [`adf_stream::contract`]); this module only supplies the
//! ARNs, so the two sides cannot drift apart.

use std::collections::BTreeMap;

use adf_common::contract::{EnvSettings, statements};
use adf_stream::TopicConfig;
use adf_stream::contract::{LAMBDA_ACCESS, LambdaResource};
use adf_workflow::contract::{HTTP_ALLOWED_NETWORKS_ENV, STALLED_INDEX, WORKER_ACCESS, WorkerResource, WorkerSettings};
use serde_json::{Value as Json, json};

/// The ARNs a workflow worker's statements name.
#[derive(Clone, Copy, Debug)]
pub struct WorkerArns<'a> {
    /// The job queue.
    pub queue: &'a str,
    /// The contexts table.
    pub contexts: &'a str,
    /// The statuses table.
    pub statuses: &'a str,
    /// Functions its `lambda` nodes may invoke (none: no statement).
    pub invoke: &'a [String],
    /// The customer managed KMS key of the queue and tables, if any.
    pub kms_key: Option<&'a str>,
}

/// The workflow worker's least-privilege statements.
pub fn worker_statements(a: &WorkerArns<'_>) -> Vec<Json> {
    statements(WORKER_ACCESS, |r| match r {
        WorkerResource::JobQueue => vec![a.queue.to_string()],
        WorkerResource::RunTables => vec![a.contexts.to_string(), a.statuses.to_string()],
        WorkerResource::StalledRunsIndex => vec![format!("{}/index/{STALLED_INDEX}", a.statuses)],
        WorkerResource::InvokedFunctions => a.invoke.to_vec(),
        WorkerResource::KmsKey => a.kms_key.map(str::to_string).into_iter().collect(),
    })
}

/// The workflow worker's environment: its queue and tables, and the networks its `http`
/// nodes may reach although blocked by default (none when empty).
pub fn worker_environment(settings: &WorkerSettings, allowed_networks: &[String]) -> BTreeMap<String, String> {
    let mut env = settings.to_env();
    if !allowed_networks.is_empty() {
        env.insert(HTTP_ALLOWED_NETWORKS_ENV.to_string(), allowed_networks.join(","));
    }
    env
}

/// The allowed networks a worker's environment holds, if any.
pub fn worker_allowed_networks(env: &BTreeMap<String, String>) -> Option<Vec<String>> {
    env.get(HTTP_ALLOWED_NETWORKS_ENV).map(|v| v.split(',').map(str::to_string).collect())
}

/// The ARNs the stream Lambda's statements name.
#[derive(Clone, Copy, Debug)]
pub struct StreamArns<'a> {
    /// The segments' object ARN pattern, `arn:aws:s3:::<bucket>/<segments prefix>*`.
    pub segments: &'a str,
    /// The offsets table.
    pub table: &'a str,
    /// The customer managed KMS key, if any.
    pub kms_key: Option<&'a str>,
}

/// The stream Lambda's least-privilege statements. It never lists the bucket: it finds
/// segments through the table's index.
pub fn stream_statements(a: &StreamArns<'_>) -> Vec<Json> {
    statements(LAMBDA_ACCESS, |r| match r {
        LambdaResource::Segments => vec![a.segments.to_string()],
        LambdaResource::Table => vec![a.table.to_string()],
        LambdaResource::KmsKey => a.kms_key.map(str::to_string).into_iter().collect(),
    })
}

/// The stream Lambda's environment.
pub fn stream_environment(topic: &TopicConfig) -> BTreeMap<String, String> {
    topic.to_env()
}

/// A whole policy document holding `statements`, as compact JSON.
pub fn policy_document(statements: Vec<Json>) -> String {
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// `statements` as a JSON array (a managed role's extra inline policy).
pub fn statements_json(statements: Vec<Json>) -> String {
    Json::Array(statements).to_string()
}

/// The function ARNs granted by the `InvokeFunctions` statement of policy document `doc` (a
/// JSON policy as IAM returns it once URL-decoded); empty when there is none.
pub fn invoke_arns(doc: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Json>(doc) else {
        return Vec::new();
    };
    let all = match &v["Statement"] {
        Json::Array(a) => a.clone(),
        one @ Json::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let sid = adf_workflow::contract::INVOKE_SID;
    all.iter()
        .filter(|s| s["Sid"] == sid)
        .flat_map(|s| match &s["Resource"] {
            Json::String(r) => vec![r.clone()],
            Json::Array(rs) => rs.iter().filter_map(|r| r.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_gets_exactly_its_resources() {
        let a = WorkerArns {
            queue: "arn:aws:sqs:r:1:q",
            contexts: "arn:aws:dynamodb:r:1:table/c",
            statuses: "arn:aws:dynamodb:r:1:table/s",
            invoke: &[],
            kms_key: None,
        };
        let doc = policy_document(worker_statements(&a));
        assert!(doc.contains("table/s/index/stalled-runs"), "{doc}");
        assert!(!doc.contains("lambda:InvokeFunction") && !doc.contains("kms:"), "{doc}");
        assert!(!doc.contains("\"*\""), "{doc}");
        let invoke = ["arn:aws:lambda:r:1:function:f".to_string()];
        let doc = policy_document(worker_statements(&WorkerArns { invoke: &invoke, kms_key: Some("arn:k"), ..a }));
        assert_eq!(invoke_arns(&doc), invoke.to_vec());
        assert!(doc.contains("arn:k"), "{doc}");
    }

    #[test]
    fn the_stream_lambda_gets_its_segments_and_table() {
        let a = StreamArns { segments: "arn:aws:s3:::b/t/*", table: "arn:t", kms_key: None };
        let doc = statements_json(stream_statements(&a));
        assert!(doc.contains("arn:aws:s3:::b/t/*") && doc.contains("arn:t") && !doc.contains("kms:"), "{doc}");
    }
}
