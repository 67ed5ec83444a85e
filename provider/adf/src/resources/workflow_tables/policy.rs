//! The least-privilege IAM policy a workflow worker needs on these queues and tables.

use serde_json::json;

use super::STALLED_INDEX;

/// The ARNs the policy names.
#[derive(Debug)]
pub struct Arns<'a> {
    /// The job queue.
    pub queue: &'a str,
    /// Contexts, statuses and coordination tables.
    pub tables: [&'a str; 3],
    /// The customer managed KMS key, if any.
    pub kms_key: Option<&'a str>,
}

/// The policy document as compact JSON. Only the job queue is named: SQS itself moves failed
/// jobs to the dead-letter queue, so workers need no access to it.
pub fn worker_policy(a: &Arns<'_>) -> String {
    let [contexts, statuses, coordination] = a.tables;
    let mut statements = vec![
        json!({
            "Sid": "JobQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage"
            ],
            "Resource": [a.queue]
        }),
        json!({
            "Sid": "RunTables",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem"
            ],
            "Resource": [contexts, statuses, coordination]
        }),
        json!({
            "Sid": "StalledRunsIndex",
            "Effect": "Allow",
            "Action": ["dynamodb:Query"],
            "Resource": [format!("{statuses}/index/{STALLED_INDEX}")]
        }),
    ];
    if let Some(key) = a.kms_key {
        statements.push(json!({
            "Sid": "EncryptionKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [key]
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_only_the_given_resources() {
        let arns = Arns { queue: "arn:q", tables: ["arn:t1", "arn:t2", "arn:t3"], kms_key: None };
        let p: serde_json::Value = serde_json::from_str(&worker_policy(&arns)).expect("json");
        let resources: Vec<String> = p["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .flat_map(|s| {
                s["Resource"].as_array().expect("resources").iter().map(|r| r.as_str().unwrap_or("").to_string())
            })
            .collect();
        assert_eq!(resources, ["arn:q", "arn:t1", "arn:t2", "arn:t3", "arn:t2/index/stalled-runs"]);
        assert!(!worker_policy(&arns).contains('*'));
        let with_key = Arns { kms_key: Some("arn:k"), ..arns };
        assert!(worker_policy(&with_key).contains("kms:Decrypt"));
    }
}
