//! The worker's least-privilege statements: its job queue, its two run tables and the
//! stalled-runs index, the functions its `lambda` nodes invoke, and the tables' KMS key.

use adf_workflow::store::STALLED_INDEX;
use serde_json::json;

/// What the statements name.
#[derive(Debug)]
pub struct Grants<'a> {
    /// The job queue's ARN.
    pub queue: &'a str,
    /// The contexts table's ARN.
    pub contexts: &'a str,
    /// The statuses table's ARN.
    pub statuses: &'a str,
    /// Functions the worker may invoke (`lambda` nodes); none when empty.
    pub invoke: &'a [String],
    /// The customer managed KMS key of the queue and tables, if any.
    pub kms_key: Option<&'a str>,
}

/// The `Sid` of the statement granting `lambda:InvokeFunction`; Read finds the ARNs there.
pub const INVOKE_SID: &str = "InvokeFunctions";

/// The statements as a JSON array (the function role's extra inline policy). The worker never
/// touches the dead-letter queue (SQS moves failed jobs itself) or the coordination table (joins
/// are decided from the completions recorded in the statuses table), so neither is named.
pub fn statements(g: &Grants<'_>) -> String {
    let mut s = vec![
        json!({
            "Sid": "JobQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
                "sqs:SendMessage"
            ],
            "Resource": [g.queue]
        }),
        json!({
            "Sid": "RunTables",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem"
            ],
            "Resource": [g.contexts, g.statuses]
        }),
        json!({
            "Sid": "StalledRunsIndex",
            "Effect": "Allow",
            "Action": ["dynamodb:Query"],
            "Resource": [format!("{}/index/{STALLED_INDEX}", g.statuses)]
        }),
    ];
    if !g.invoke.is_empty() {
        s.push(json!({
            "Sid": INVOKE_SID,
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": g.invoke
        }));
    }
    if let Some(k) = g.kms_key {
        s.push(json!({
            "Sid": "EncryptionKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [k]
        }));
    }
    serde_json::Value::Array(s).to_string()
}

/// The function ARNs granted by the [`INVOKE_SID`] statement of policy document `doc` (a JSON
/// policy, as IAM returns it once URL-decoded); empty when there is none.
pub fn invoke_arns(doc: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(doc) else {
        return Vec::new();
    };
    let statements = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .filter(|s| s["Sid"] == INVOKE_SID)
        .flat_map(|s| match &s["Resource"] {
            serde_json::Value::String(r) => vec![r.clone()],
            serde_json::Value::Array(rs) => rs.iter().filter_map(|r| r.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:1:orders-jobs";
    const CONTEXTS: &str = "arn:aws:dynamodb:eu-west-1:1:table/orders-contexts";
    const STATUSES: &str = "arn:aws:dynamodb:eu-west-1:1:table/orders-statuses";

    fn resources(doc: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(doc).expect("json");
        v.as_array()
            .expect("statements")
            .iter()
            .flat_map(|s| s["Resource"].as_array().expect("resources").iter().map(|r| r.as_str().unwrap_or("").into()))
            .collect()
    }

    #[test]
    fn only_the_queue_the_two_run_tables_and_the_index_are_named() {
        let g = Grants { queue: QUEUE, contexts: CONTEXTS, statuses: STATUSES, invoke: &[], kms_key: None };
        let doc = statements(&g);
        assert_eq!(resources(&doc), [QUEUE, CONTEXTS, STATUSES, &format!("{STATUSES}/index/stalled-runs")]);
        assert!(!doc.contains('*'), "no wildcard action or resource: {doc}");
        assert!(!doc.contains("lambda:") && !doc.contains("kms:"), "{doc}");
        for action in ["sqs:ReceiveMessage", "sqs:SendMessage", "dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem"]
        {
            assert!(doc.contains(action), "{action} missing: {doc}");
        }
        assert!(!doc.contains("DeleteItem") && !doc.contains("Scan"), "{doc}");
    }

    #[test]
    fn invoke_and_kms_are_granted_on_exactly_what_is_given() {
        let fns = ["arn:aws:lambda:eu-west-1:1:function:charge".to_string()];
        let g = Grants {
            queue: QUEUE,
            contexts: CONTEXTS,
            statuses: STATUSES,
            invoke: &fns,
            kms_key: Some("arn:aws:kms:eu-west-1:1:key/k"),
        };
        let doc = statements(&g);
        assert!(doc.contains("lambda:InvokeFunction") && doc.contains("kms:Decrypt"), "{doc}");
        assert!(!doc.contains('*'), "{doc}");
        let policy = serde_json::json!({ "Version": "2012-10-17", "Statement": serde_json::from_str::<serde_json::Value>(&doc).expect("json") });
        assert_eq!(invoke_arns(&policy.to_string()), fns);
        assert!(invoke_arns("{}").is_empty());
        assert!(invoke_arns("not json").is_empty());
    }
}
