//! The stream Lambda's least-privilege statements: its own segments and its own table.

use serde_json::json;

/// What the statements name.
#[derive(Debug)]
pub struct Grants<'a> {
    /// The segments' object ARN pattern, `arn:aws:s3:::<bucket>/<prefix><topic>/*`.
    pub segments: &'a str,
    /// The table's ARN.
    pub table: &'a str,
    /// The customer managed KMS key, if any.
    pub kms_key: Option<&'a str>,
}

/// The statements as a JSON array (the function role's extra inline policy). The Lambda never
/// lists the bucket: it finds segments through the table's index.
pub fn statements(g: &Grants<'_>) -> String {
    let mut s = vec![
        json!({
            "Sid": "Segments",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Resource": [g.segments]
        }),
        json!({
            "Sid": "Offsets",
            "Effect": "Allow",
            "Action": [
                "dynamodb:ConditionCheckItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem"
            ],
            "Resource": [g.table]
        }),
    ];
    if let Some(k) = g.kms_key {
        s.push(json!({
            "Sid": "Encryption",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [k]
        }));
    }
    serde_json::Value::Array(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_is_granted_only_with_a_key() {
        let g = Grants { segments: "arn:aws:s3:::b/t/*", table: "arn:t", kms_key: None };
        assert!(!statements(&g).contains("kms:"));
        let g = Grants { kms_key: Some("arn:aws:kms:r:1:key/k"), ..g };
        assert!(statements(&g).contains("arn:aws:kms:r:1:key/k"));
    }
}
