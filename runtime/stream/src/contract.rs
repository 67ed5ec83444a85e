//! The stream runtime's contract with whoever deploys it (the provider's `adf_stream_topic`):
//! the table and its keys, where segment objects go, the environment the stream Lambda reads,
//! and the IAM statements it needs.

use std::collections::BTreeMap;

use adf_common::contract::{Access, EnvError, EnvSettings, Key, TableSchema, parsed, required};

use crate::TopicConfig;

/// A topic's table: offsets (`head`/0, every partition's high watermark), the log of segment
/// objects (`log`/<n>, which expire through TTL `expires`, epoch seconds), group commits
/// (`group#<g>#<p>`/0) and each sequenced producer's last batch (`producer#<id>#<p>`/0 or, for
/// a topic-wide sequence, `producer#<id>`/0, expiring with the index).
pub const TABLE: TableSchema =
    TableSchema { hash: Key::s("pk"), range: Some(Key::n("sk")), index: None, ttl: Some("expires") };

/// The key prefix under which the stream writes topic `topic`'s segment objects, given the
/// topic's `prefix` (empty or ending in `/`): `<prefix><topic>/`, then `<partition>/...` for a
/// segment of one partition, `m/...` for one of many.
pub fn segments_prefix(prefix: &str, topic: &str) -> String {
    format!("{prefix}{topic}/")
}

impl TopicConfig {
    /// The variable holding [`TopicConfig::name`].
    pub const TOPIC: &'static str = "ADF_TOPIC";
    /// The variable holding [`TopicConfig::partitions`].
    pub const PARTITIONS: &'static str = "ADF_PARTITIONS";
    /// The variable holding [`TopicConfig::bucket`].
    pub const BUCKET: &'static str = "ADF_BUCKET";
    /// The variable holding [`TopicConfig::prefix`] (optional: empty by default).
    pub const PREFIX: &'static str = "ADF_PREFIX";
    /// The variable holding [`TopicConfig::table`].
    pub const TABLE_ENV: &'static str = "ADF_TABLE";
    /// The variable holding [`TopicConfig::retention_days`].
    pub const RETENTION_DAYS: &'static str = "ADF_RETENTION_DAYS";
    /// The variable holding [`TopicConfig::compress`] (optional: on unless it is `false`).
    pub const COMPRESS: &'static str = "ADF_COMPRESS";
}

impl EnvSettings for TopicConfig {
    fn to_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (Self::TOPIC.to_string(), self.name.clone()),
            (Self::PARTITIONS.to_string(), self.partitions.to_string()),
            (Self::BUCKET.to_string(), self.bucket.clone()),
            (Self::PREFIX.to_string(), self.prefix.clone()),
            (Self::TABLE_ENV.to_string(), self.table.clone()),
            (Self::RETENTION_DAYS.to_string(), self.retention_days.to_string()),
            (Self::COMPRESS.to_string(), self.compress.to_string()),
        ])
    }

    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Ok(Self {
            name: required(get, Self::TOPIC)?,
            partitions: parsed(get, Self::PARTITIONS, "a whole number of partitions")?,
            bucket: required(get, Self::BUCKET)?,
            prefix: get(Self::PREFIX).unwrap_or_default(),
            table: required(get, Self::TABLE_ENV)?,
            retention_days: parsed(get, Self::RETENTION_DAYS, "a whole number of days")?,
            compress: get(Self::COMPRESS).is_none_or(|v| v != "false"),
        })
    }
}

/// What the stream Lambda's statements name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LambdaResource {
    /// The topic's segment objects: `arn:aws:s3:::<bucket>/<segments_prefix>*` (never the
    /// bucket itself: the Lambda finds segments through the table's index, it never lists).
    Segments,
    /// The topic's table.
    Table,
    /// The customer managed KMS key of the bucket and table (none: the statement is left out).
    KmsKey,
}

/// What the stream Lambda calls, and so what its role needs:
///
/// - `Segments`: `s3:PutObject` (a produced batch's segment), `s3:GetObject` (consuming, and
///   `HeadObject` when looking for the earliest segment retention kept), `s3:DeleteObject` (a
///   produce that lost every commit attempt, or whose sequenced batch was committed before,
///   removes its segment, which nothing references).
/// - `Offsets`: `dynamodb:GetItem` (the head item with every partition's high watermark, a
///   group's commit, a log entry), `dynamodb:Query` (the log, and the per-partition index of
///   earlier builds), `dynamodb:UpdateItem` (the head item, in the commit transaction; group
///   commits), `dynamodb:PutItem` (the log entry and a sequenced producer's last batch, in the
///   commit transaction).
///   `TransactWriteItems` is authorized per element (Update, Put); it has no ConditionCheck
///   element, so no `ConditionCheckItem`.
/// - `Encryption`: `kms:Decrypt` and `kms:GenerateDataKey`, to read and write segments and
///   items encrypted with a customer managed key.
pub const LAMBDA_ACCESS: &[Access<LambdaResource>] = &[
    Access {
        sid: "Segments",
        resource: LambdaResource::Segments,
        actions: &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
    },
    Access {
        sid: "Offsets",
        resource: LambdaResource::Table,
        actions: &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    },
    Access { sid: "Encryption", resource: LambdaResource::KmsKey, actions: &["kms:Decrypt", "kms:GenerateDataKey"] },
];

#[cfg(test)]
mod tests {
    use adf_common::contract::statements;
    use aws_sdk_dynamodb::error::BuildError;
    use aws_sdk_dynamodb::types::{KeyType, ScalarAttributeType};

    use super::*;

    fn topic() -> TopicConfig {
        TopicConfig {
            name: "clicks".into(),
            partitions: 4,
            bucket: "adf-stream-clicks".into(),
            prefix: "streams/".into(),
            table: "adf-stream-clicks".into(),
            retention_days: 30,
            compress: false,
        }
    }

    fn same(a: &TopicConfig, b: &TopicConfig) -> bool {
        a.name == b.name
            && a.partitions == b.partitions
            && a.bucket == b.bucket
            && a.prefix == b.prefix
            && a.table == b.table
            && a.retention_days == b.retention_days
            && a.compress == b.compress
    }

    #[test]
    fn the_topic_round_trips_through_the_environment() -> Result<(), EnvError> {
        let t = topic();
        let env = t.to_env();
        assert_eq!(env.get("ADF_COMPRESS").map(String::as_str), Some("false"));
        assert_eq!(env.get("ADF_PARTITIONS").map(String::as_str), Some("4"));
        assert!(same(&TopicConfig::from_map(&env)?, &t));
        let on = TopicConfig { compress: true, prefix: String::new(), ..t };
        assert!(same(&TopicConfig::from_map(&on.to_env())?, &on));
        Ok(())
    }

    #[test]
    fn prefix_and_compression_are_optional_the_rest_is_named_when_missing() -> Result<(), EnvError> {
        let mut env = topic().to_env();
        env.remove("ADF_PREFIX");
        env.remove("ADF_COMPRESS");
        let t = TopicConfig::from_map(&env)?;
        assert_eq!((t.prefix.as_str(), t.compress), ("", true));
        env.insert("ADF_COMPRESS".into(), "no".into());
        assert!(TopicConfig::from_map(&env)?.compress, "only \"false\" turns compression off");
        for name in ["ADF_TOPIC", "ADF_PARTITIONS", "ADF_BUCKET", "ADF_TABLE", "ADF_RETENTION_DAYS"] {
            let mut env = topic().to_env();
            env.remove(name);
            let e = TopicConfig::from_map(&env).err();
            assert_eq!(e.as_ref().map(ToString::to_string), Some(format!("{name} is not set")));
        }
        Ok(())
    }

    #[test]
    fn numbers_that_are_not_numbers_are_invalid() {
        let mut env = topic().to_env();
        env.insert("ADF_PARTITIONS".into(), "four".into());
        assert_eq!(
            TopicConfig::from_map(&env).err(),
            Some(EnvError::Invalid {
                name: "ADF_PARTITIONS",
                value: "four".into(),
                expected: "a whole number of partitions"
            })
        );
        let mut env = topic().to_env();
        env.insert("ADF_RETENTION_DAYS".into(), "-1".into());
        assert!(matches!(TopicConfig::from_map(&env), Err(EnvError::Invalid { name: "ADF_RETENTION_DAYS", .. })));
    }

    #[test]
    fn the_table_has_pk_sk_and_expires() -> Result<(), BuildError> {
        let keys: Vec<(String, KeyType)> =
            TABLE.key_schema()?.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect();
        assert_eq!(keys, [("pk".into(), KeyType::Hash), ("sk".into(), KeyType::Range)]);
        let types: Vec<ScalarAttributeType> =
            TABLE.attribute_definitions()?.iter().map(|d| d.attribute_type().clone()).collect();
        assert_eq!(types, [ScalarAttributeType::S, ScalarAttributeType::N]);
        assert_eq!(TABLE.ttl, Some("expires"));
        assert_eq!(TABLE.global_secondary_index(None)?, None);
        Ok(())
    }

    #[test]
    fn segments_live_under_the_prefix_and_the_topic() {
        assert_eq!(segments_prefix("", "clicks"), "clicks/");
        assert_eq!(segments_prefix("streams/", "clicks"), "streams/clicks/");
    }

    #[test]
    fn statements_name_the_segments_the_table_and_a_key_if_any() {
        let arns = |key: Option<&str>| {
            let key = key.map(str::to_string);
            move |r| match r {
                LambdaResource::Segments => vec!["arn:aws:s3:::b/clicks/*".to_string()],
                LambdaResource::Table => vec!["arn:aws:dynamodb:eu-west-1:1:table/t".to_string()],
                LambdaResource::KmsKey => key.iter().cloned().collect(),
            }
        };
        let s = statements(LAMBDA_ACCESS, arns(None));
        let sids: Vec<&str> = s.iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(sids, ["Segments", "Offsets"]);
        assert!(!serde_json::Value::Array(s).to_string().contains("kms:"));
        let s = statements(LAMBDA_ACCESS, arns(Some("arn:aws:kms:eu-west-1:1:key/k")));
        assert_eq!(s.len(), 3);
        assert_eq!(s[2]["Resource"], serde_json::json!(["arn:aws:kms:eu-west-1:1:key/k"]));
    }
}
