//! The types a runtime states its contract with, so the provider that deploys it imports the
//! contract instead of retyping it:
//!
//! - [`TableSchema`]: a DynamoDB table's keys, its one global secondary index and its TTL
//!   attribute, as the runtime reads and writes them;
//! - [`EnvSettings`]: the `ADF_*` environment a runtime binary reads and the provider writes
//!   into the function's environment;
//! - [`Access`]: an IAM statement the runtime needs, on one kind of its resources; the
//!   provider supplies the ARNs and gets the statements from [`statements`].

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ProvisionedThroughput, ScalarAttributeType,
};

/// The type of a key attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl AttrType {
    /// As the SDK spells it.
    pub fn scalar(self) -> ScalarAttributeType {
        match self {
            Self::S => ScalarAttributeType::S,
            Self::N => ScalarAttributeType::N,
            Self::B => ScalarAttributeType::B,
        }
    }
}

/// A key attribute: its name and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// Attribute name.
    pub name: &'static str,
    /// Attribute type.
    pub ty: AttrType,
}

impl Key {
    /// A string key.
    pub const fn s(name: &'static str) -> Self {
        Self { name, ty: AttrType::S }
    }

    /// A number key.
    pub const fn n(name: &'static str) -> Self {
        Self { name, ty: AttrType::N }
    }
}

/// A global secondary index with a KEYS_ONLY projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSchema {
    /// Index name.
    pub name: &'static str,
    /// Hash (partition) key.
    pub hash: Key,
    /// Range (sort) key, if any.
    pub range: Option<Key>,
}

/// A table as a runtime uses it: keys, at most one global secondary index, the TTL attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// Hash (partition) key.
    pub hash: Key,
    /// Range (sort) key, if any.
    pub range: Option<Key>,
    /// The global secondary index, if any.
    pub index: Option<IndexSchema>,
    /// The attribute holding each item's expiry (epoch seconds), when TTL is on.
    pub ttl: Option<&'static str>,
}

fn key_elements(hash: Key, range: Option<Key>) -> Result<Vec<KeySchemaElement>, BuildError> {
    let element = |k: Key, kind| KeySchemaElement::builder().attribute_name(k.name).key_type(kind).build();
    let mut keys = vec![element(hash, KeyType::Hash)?];
    if let Some(r) = range {
        keys.push(element(r, KeyType::Range)?);
    }
    Ok(keys)
}

impl TableSchema {
    /// The table's key schema elements (hash, then range), as SDK types.
    pub fn key_schema(&self) -> Result<Vec<KeySchemaElement>, BuildError> {
        key_elements(self.hash, self.range)
    }

    /// The attribute definitions: the keys of the table and of its index, each once.
    pub fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, BuildError> {
        let index = self.index.iter().flat_map(|i| std::iter::once(i.hash).chain(i.range));
        let mut seen: Vec<&str> = Vec::new();
        let mut defs = Vec::new();
        for k in std::iter::once(self.hash).chain(self.range).chain(index) {
            if seen.contains(&k.name) {
                continue;
            }
            seen.push(k.name);
            defs.push(AttributeDefinition::builder().attribute_name(k.name).attribute_type(k.ty.scalar()).build()?);
        }
        Ok(defs)
    }

    /// The global secondary index (KEYS_ONLY), with `throughput` for a provisioned table.
    pub fn global_secondary_index(
        &self,
        throughput: Option<ProvisionedThroughput>,
    ) -> Result<Option<GlobalSecondaryIndex>, BuildError> {
        let Some(i) = self.index else { return Ok(None) };
        GlobalSecondaryIndex::builder()
            .index_name(i.name)
            .set_key_schema(Some(key_elements(i.hash, i.range)?))
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .set_provisioned_throughput(throughput)
            .build()
            .map(Some)
    }

    /// Creates table `name` with this schema, on demand (pay per request), without TTL (enable
    /// that separately): what the runtimes' tests and benches make their tables with. The
    /// error is the SDK's, with its causes ([`crate::error_chain`]).
    pub async fn create(&self, ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
        let text = |e: BuildError| crate::error_chain(&e);
        ddb.create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(self.key_schema().map_err(text)?))
            .set_attribute_definitions(Some(self.attribute_definitions().map_err(text)?))
            .set_global_secondary_indexes(self.global_secondary_index(None).map_err(text)?.map(|i| vec![i]))
            .send()
            .await
            .map_err(|e| crate::error_chain(&e))?;
        Ok(())
    }
}

/// One IAM statement a runtime needs: on which of its resources, which actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access<R> {
    /// The statement's `Sid`.
    pub sid: &'static str,
    /// The resource, as the runtime names it; the provider knows its ARNs.
    pub resource: R,
    /// The IAM actions.
    pub actions: &'static [&'static str],
}

/// The statements as JSON objects (`Sid`, `Effect: Allow`, sorted `Action`, `Resource`), given
/// each resource's ARNs; an access whose resource has no ARN (e.g. no KMS key) is left out.
pub fn statements<R: Copy>(access: &[Access<R>], arns: impl Fn(R) -> Vec<String>) -> Vec<serde_json::Value> {
    access
        .iter()
        .filter_map(|a| {
            let resources = arns(a.resource);
            if resources.is_empty() {
                return None;
            }
            let mut actions = a.actions.to_vec();
            actions.sort_unstable();
            actions.dedup();
            Some(serde_json::json!({ "Sid": a.sid, "Effect": "Allow", "Action": actions, "Resource": resources }))
        })
        .collect()
}

/// What policy `statements` (a JSON array's items, as a provider wrote them) fail to grant of
/// `access`, given each resource's ARNs: for each access with ARNs, a statement of that `Sid`
/// with exactly those actions on exactly those ARNs. Empty when everything is granted.
pub fn missing_grants<R: Copy>(
    statements: &[serde_json::Value],
    access: &[Access<R>],
    arns: impl Fn(R) -> Vec<String>,
) -> Vec<String> {
    let texts = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let mut problems = Vec::new();
    for a in access {
        let resources = arns(a.resource);
        if resources.is_empty() {
            continue;
        }
        let Some(s) = statements.iter().find(|s| s["Sid"] == a.sid) else {
            problems.push(format!("no statement {}", a.sid));
            continue;
        };
        let (mut granted, mut wanted) =
            (texts(&s["Action"]), a.actions.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        granted.sort_unstable();
        wanted.sort_unstable();
        if granted != wanted {
            problems.push(format!("{} grants {granted:?}, the runtime calls {wanted:?}", a.sid));
        }
        if texts(&s["Resource"]) != resources {
            problems.push(format!("{} names {:?}, expected {resources:?}", a.sid, texts(&s["Resource"])));
        }
    }
    problems
}

/// Why settings could not be read from an environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable does not hold what it should.
    #[error("{name} is {value:?}: expected {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// Settings a runtime reads from its environment and the provider writes into a function's
/// environment.
pub trait EnvSettings: Sized {
    /// The variables, as the provider sets them.
    fn to_env(&self) -> BTreeMap<String, String>;

    /// The settings, reading each variable through `get`.
    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError>;

    /// The settings from the process environment.
    fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// The settings from `env` (a function's environment as the provider wrote or read it).
    fn from_map(env: &BTreeMap<String, String>) -> Result<Self, EnvError> {
        Self::from_lookup(&|k| env.get(k).cloned())
    }
}

/// Variable `name` through `get`, or [`EnvError::Missing`]. For [`EnvSettings::from_lookup`].
pub fn required(get: &dyn Fn(&str) -> Option<String>, name: &'static str) -> Result<String, EnvError> {
    get(name).ok_or(EnvError::Missing(name))
}

/// Variable `name` through `get` parsed as a `T`, or [`EnvError::Missing`], or
/// [`EnvError::Invalid`] saying it should be `expected`. For [`EnvSettings::from_lookup`].
pub fn parsed<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<T, EnvError> {
    let value = required(get, name)?;
    value.parse().map_err(|_| EnvError::Invalid { name, value, expected })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: TableSchema = TableSchema {
        hash: Key::s("runId"),
        range: None,
        index: Some(IndexSchema { name: "by-shard", hash: Key::s("shard"), range: Some(Key::n("at")) }),
        ttl: None,
    };

    fn names(keys: &[KeySchemaElement]) -> Vec<(String, KeyType)> {
        keys.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect()
    }

    #[test]
    fn key_schemas_are_hash_then_range() -> Result<(), BuildError> {
        let t = TableSchema { hash: Key::s("pk"), range: Some(Key::n("sk")), index: None, ttl: Some("expires") };
        assert_eq!(names(&t.key_schema()?), [("pk".into(), KeyType::Hash), ("sk".into(), KeyType::Range)]);
        assert_eq!(names(&RUNS.key_schema()?), [("runId".into(), KeyType::Hash)]);
        assert_eq!(t.global_secondary_index(None)?, None);
        Ok(())
    }

    #[test]
    fn attribute_definitions_cover_table_and_index_keys_once() -> Result<(), BuildError> {
        let defs = |t: &TableSchema| -> Result<Vec<(String, ScalarAttributeType)>, BuildError> {
            Ok(t.attribute_definitions()?
                .iter()
                .map(|d| (d.attribute_name().to_string(), d.attribute_type().clone()))
                .collect())
        };
        assert_eq!(
            defs(&RUNS)?,
            [
                ("runId".into(), ScalarAttributeType::S),
                ("shard".into(), ScalarAttributeType::S),
                ("at".into(), ScalarAttributeType::N)
            ]
        );
        let shared = TableSchema {
            hash: Key::s("pk"),
            range: Some(Key::n("sk")),
            index: Some(IndexSchema { name: "by-sk", hash: Key::n("sk"), range: Some(Key::s("pk")) }),
            ttl: None,
        };
        assert_eq!(defs(&shared)?, [("pk".into(), ScalarAttributeType::S), ("sk".into(), ScalarAttributeType::N)]);
        Ok(())
    }

    #[test]
    fn the_index_is_keys_only_with_the_given_throughput() -> Result<(), BuildError> {
        let i = RUNS.global_secondary_index(None)?.ok_or_else(|| BuildError::missing_field("index", "none"))?;
        assert_eq!(i.index_name(), "by-shard");
        assert_eq!(names(i.key_schema()), [("shard".into(), KeyType::Hash), ("at".into(), KeyType::Range)]);
        assert_eq!(i.projection().and_then(|p| p.projection_type()), Some(&ProjectionType::KeysOnly));
        assert_eq!(i.provisioned_throughput(), None);
        let t = ProvisionedThroughput::builder().read_capacity_units(5).write_capacity_units(2).build()?;
        let i = RUNS.global_secondary_index(Some(t.clone()))?;
        assert_eq!(i.and_then(|i| i.provisioned_throughput().cloned()), Some(t));
        Ok(())
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Res {
        Queue,
        Key,
    }

    const ACCESS: &[Access<Res>] = &[
        Access { sid: "Jobs", resource: Res::Queue, actions: &["sqs:SendMessage", "sqs:DeleteMessage"] },
        Access { sid: "Key", resource: Res::Key, actions: &["kms:Decrypt"] },
    ];

    #[test]
    fn statements_sort_actions_and_leave_out_resources_without_arns() {
        let s = statements(ACCESS, |r| match r {
            Res::Queue => vec!["arn:q".to_string()],
            Res::Key => Vec::new(),
        });
        assert_eq!(
            s,
            [serde_json::json!({
                "Sid": "Jobs",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:SendMessage"],
                "Resource": ["arn:q"]
            })]
        );
        let s = statements(ACCESS, |_| vec!["arn:a".to_string(), "arn:b".to_string()]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1]["Resource"], serde_json::json!(["arn:a", "arn:b"]));
    }

    #[derive(Debug, PartialEq)]
    struct Demo {
        name: String,
        count: u32,
    }

    impl EnvSettings for Demo {
        fn to_env(&self) -> BTreeMap<String, String> {
            BTreeMap::from([("NAME".to_string(), self.name.clone()), ("COUNT".to_string(), self.count.to_string())])
        }

        fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
            Ok(Self { name: required(get, "NAME")?, count: parsed(get, "COUNT", "a whole number")? })
        }
    }

    #[test]
    fn settings_round_trip_and_name_what_is_wrong() {
        let d = Demo { name: "orders".into(), count: 3 };
        assert_eq!(Demo::from_map(&d.to_env()), Ok(d));
        let mut env = BTreeMap::from([("COUNT".to_string(), "3".to_string())]);
        assert_eq!(Demo::from_map(&env), Err(EnvError::Missing("NAME")));
        assert_eq!(EnvError::Missing("NAME").to_string(), "NAME is not set");
        env.insert("NAME".into(), "x".into());
        env.insert("COUNT".into(), "many".into());
        let e = Demo::from_map(&env).expect_err("not a number");
        assert_eq!(e, EnvError::Invalid { name: "COUNT", value: "many".into(), expected: "a whole number" });
        assert_eq!(e.to_string(), "COUNT is \"many\": expected a whole number");
    }

    #[test]
    fn missing_grants_name_what_the_statements_lack() {
        #[derive(Clone, Copy)]
        enum R {
            Queue,
            Key,
        }
        const ACCESS: &[Access<R>] = &[
            Access { sid: "Q", resource: R::Queue, actions: &["sqs:SendMessage", "sqs:ReceiveMessage"] },
            Access { sid: "K", resource: R::Key, actions: &["kms:Decrypt"] },
        ];
        let arns = |r| match r {
            R::Queue => vec!["arn:q".to_string()],
            R::Key => Vec::new(),
        };
        let full = statements(ACCESS, arns);
        assert!(missing_grants(&full, ACCESS, arns).is_empty());
        let short = vec![serde_json::json!({ "Sid": "Q", "Action": ["sqs:SendMessage"], "Resource": ["arn:q"] })];
        assert_eq!(missing_grants(&short, ACCESS, arns).len(), 1);
        let elsewhere = vec![
            serde_json::json!({ "Sid": "Q", "Action": ["sqs:ReceiveMessage", "sqs:SendMessage"], "Resource": ["*"] }),
        ];
        assert_eq!(missing_grants(&elsewhere, ACCESS, arns).len(), 1);
        assert_eq!(missing_grants(&[], ACCESS, arns), ["no statement Q"]);
    }
}
