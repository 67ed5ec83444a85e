//! The storage connector's contract with the provider that binds stores to functions: the
//! tables' key schemas, the binding a function's environment carries, and the IAM actions each
//! kind of binding needs at each access level.
//!
//! `adf_kv_namespace`, `adf_object_bucket` and `adf_cache` each expose a [`Binding`];
//! `adf_function`'s `bindings` writes them all into one variable, [`BINDINGS_ENV`], as a JSON
//! object of binding name to binding, and adds [`binding_statements`] to the managed role.

use std::collections::BTreeMap;

use adf_common::contract::{Access, EnvError, EnvSettings, Key, TableSchema, statements};
use serde::{Deserialize, Serialize};

/// A KV namespace's table: partition `ns` (the namespace name), sort `k` (the key), so a
/// prefix listing is a `Query`; TTL on `exp` (epoch seconds). Items hold `v` (the value,
/// binary) or `blob` (the S3 key of a large value), `md` (metadata JSON) and `size`.
pub const KV_TABLE: TableSchema =
    TableSchema { hash: Key::s("ns"), range: Some(Key::s("k")), index: None, ttl: Some("exp") };

/// A DynamoDB cache table: key `k`, value `v` (binary), TTL on `exp` (epoch seconds).
pub const CACHE_TABLE: TableSchema = TableSchema { hash: Key::s("k"), range: None, index: None, ttl: Some("exp") };

/// The variable holding a function's bindings: a JSON object of binding name to [`Binding`].
pub const BINDINGS_ENV: &str = "ADF_STORAGE_BINDINGS";

/// The table of KV namespace `name` (`adf_kv_namespace`).
pub fn kv_table_name(name: &str) -> String {
    format!("adf-kv-{name}")
}

/// The large-value bucket of KV namespace `name` in `account` (bucket names are global).
pub fn kv_bucket_name(name: &str, account: &str) -> String {
    format!("adf-kv-{name}-{account}")
}

/// The bucket of object bucket `name` in `account` (`adf_object_bucket`).
pub fn object_bucket_name(name: &str, account: &str) -> String {
    format!("adf-objects-{name}-{account}")
}

/// The DynamoDB table of cache `name` (`adf_cache`).
pub fn cache_table_name(name: &str) -> String {
    format!("adf-cache-{name}")
}

/// The key prefix under which a namespace's large values go in its bucket.
pub fn kv_blob_prefix(namespace: &str) -> String {
    format!("kv/{namespace}/")
}

/// What a binding gives access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A KV namespace (`adf_kv_namespace`).
    Kv,
    /// An object bucket (`adf_object_bucket`).
    Object,
    /// A cache (`adf_cache`).
    Cache,
}

impl StoreKind {
    /// As written in a binding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kv => "kv",
            Self::Object => "object",
            Self::Cache => "cache",
        }
    }
}

/// What a binding lets the function do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Read only.
    Read,
    /// Read and write (the default).
    #[default]
    Write,
}

/// One store bound to a function: which one, where it lives, and how far the function may
/// use it. The provider's resources output it as `binding`; every field the kind does not use
/// is null.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The kind of store.
    pub kind: Option<StoreKind>,
    /// `read` or `write` (null reads as `write`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub access: AccessLevel,
    /// The store's name (a KV namespace's partition key value).
    pub name: String,
    /// The DynamoDB table (KV, DynamoDB cache).
    #[serde(default)]
    pub table: Option<String>,
    /// The table's ARN.
    #[serde(default)]
    pub table_arn: Option<String>,
    /// The S3 bucket (objects; a KV namespace's large values).
    #[serde(default)]
    pub bucket: Option<String>,
    /// The bucket's ARN.
    #[serde(default)]
    pub bucket_arn: Option<String>,
    /// The KMS key encrypting the table or bucket, when it is a customer key.
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// `redis://` or `rediss://` URL of a Redis / Valkey cache (without the token).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The Redis AUTH token, when the cluster has one.
    #[serde(default)]
    pub redis_auth_token: Option<String>,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The resources a binding's statements name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The table.
    Table,
    /// The bucket itself (listing).
    Bucket,
    /// The objects in the bucket (for a KV namespace: under its blob prefix).
    Objects,
    /// The customer KMS key.
    Key,
}

const KV_READ: &[Access<Resource>] = &[
    Access {
        sid: "KvRead",
        resource: Resource::Table,
        actions: &["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
    },
    Access { sid: "KvBlobsRead", resource: Resource::Objects, actions: &["s3:GetObject"] },
    Access { sid: "KvKeyRead", resource: Resource::Key, actions: &["kms:Decrypt"] },
];
const KV_WRITE: &[Access<Resource>] = &[
    Access {
        sid: "KvWrite",
        resource: Resource::Table,
        actions: &[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        ],
    },
    Access {
        sid: "KvBlobsWrite",
        resource: Resource::Objects,
        actions: &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
    },
    Access { sid: "KvKeyWrite", resource: Resource::Key, actions: &["kms:Decrypt", "kms:GenerateDataKey"] },
];
const OBJECT_READ: &[Access<Resource>] = &[
    Access { sid: "ObjectsList", resource: Resource::Bucket, actions: &["s3:ListBucket"] },
    Access { sid: "ObjectsRead", resource: Resource::Objects, actions: &["s3:GetObject"] },
    Access { sid: "ObjectsKeyRead", resource: Resource::Key, actions: &["kms:Decrypt"] },
];
const OBJECT_WRITE: &[Access<Resource>] = &[
    Access {
        sid: "ObjectsList",
        resource: Resource::Bucket,
        actions: &["s3:ListBucket", "s3:ListBucketMultipartUploads"],
    },
    Access {
        sid: "ObjectsWrite",
        resource: Resource::Objects,
        actions: &[
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
    },
    Access { sid: "ObjectsKeyWrite", resource: Resource::Key, actions: &["kms:Decrypt", "kms:GenerateDataKey"] },
];
const CACHE_READ: &[Access<Resource>] = &[
    Access { sid: "CacheRead", resource: Resource::Table, actions: &["dynamodb:GetItem"] },
    Access { sid: "CacheKeyRead", resource: Resource::Key, actions: &["kms:Decrypt"] },
];
const CACHE_WRITE: &[Access<Resource>] = &[
    Access {
        sid: "CacheWrite",
        resource: Resource::Table,
        actions: &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
    },
    Access { sid: "CacheKeyWrite", resource: Resource::Key, actions: &["kms:Decrypt", "kms:GenerateDataKey"] },
];

/// The IAM actions a binding of `kind` needs at `access`, by resource.
pub fn access(kind: StoreKind, access: AccessLevel) -> &'static [Access<Resource>] {
    match (kind, access) {
        (StoreKind::Kv, AccessLevel::Read) => KV_READ,
        (StoreKind::Kv, AccessLevel::Write) => KV_WRITE,
        (StoreKind::Object, AccessLevel::Read) => OBJECT_READ,
        (StoreKind::Object, AccessLevel::Write) => OBJECT_WRITE,
        (StoreKind::Cache, AccessLevel::Read) => CACHE_READ,
        (StoreKind::Cache, AccessLevel::Write) => CACHE_WRITE,
    }
}

impl Binding {
    /// The ARNs of `resource` for this binding; empty when it has none (no bucket, no key).
    pub fn arns(&self, resource: Resource) -> Vec<String> {
        let one = |v: &Option<String>| v.iter().cloned().collect();
        match resource {
            Resource::Table => one(&self.table_arn),
            Resource::Bucket => one(&self.bucket_arn),
            Resource::Objects => match (self.kind, &self.bucket_arn) {
                (Some(StoreKind::Kv), Some(b)) => vec![format!("{b}/{}*", kv_blob_prefix(&self.name))],
                (_, Some(b)) => vec![format!("{b}/*")],
                (_, None) => Vec::new(),
            },
            Resource::Key => one(&self.kms_key_arn),
        }
    }

    /// This binding's IAM statements, their `Sid`s prefixed with `prefix` (letters and digits
    /// only, as IAM requires) so several bindings fit one policy. A Redis cache needs none.
    pub fn statements(&self, prefix: &str) -> Vec<serde_json::Value> {
        let Some(kind) = self.kind else { return Vec::new() };
        let mut out = statements(access(kind, self.access), |r| self.arns(r));
        for s in &mut out {
            let sid = format!("{prefix}{}", s["Sid"].as_str().unwrap_or_default());
            s["Sid"] = serde_json::Value::String(sid);
        }
        out
    }
}

/// The statements of every binding, each binding's `Sid`s prefixed with its name in
/// alphanumerics (`user-sessions` → `UserSessions`).
pub fn binding_statements(bindings: &BTreeMap<String, Binding>) -> Vec<serde_json::Value> {
    bindings.iter().flat_map(|(name, b)| b.statements(&sid_prefix(name))).collect()
}

/// `name` as an IAM `Sid` part: alphanumerics only, each word capitalised.
fn sid_prefix(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// A function's bindings, as its environment carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings(pub BTreeMap<String, Binding>);

impl EnvSettings for Bindings {
    fn to_env(&self) -> BTreeMap<String, String> {
        if self.0.is_empty() {
            return BTreeMap::new();
        }
        let json = serde_json::to_string(&self.0).unwrap_or_default();
        BTreeMap::from([(BINDINGS_ENV.to_string(), json)])
    }

    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let Some(text) = get(BINDINGS_ENV) else { return Ok(Self::default()) };
        serde_json::from_str(&text).map(Self).map_err(|_| EnvError::Invalid {
            name: BINDINGS_ENV,
            value: text,
            expected: "a JSON object of binding name to binding",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> Binding {
        Binding {
            kind: Some(StoreKind::Kv),
            access: AccessLevel::Read,
            name: "sessions".into(),
            table: Some("sessions-kv".into()),
            table_arn: Some("arn:aws:dynamodb:eu-west-1:1:table/sessions-kv".into()),
            bucket: Some("b".into()),
            bucket_arn: Some("arn:aws:s3:::b".into()),
            ..Binding::default()
        }
    }

    #[test]
    fn a_read_binding_grants_reads_on_its_table_and_blob_prefix_only() {
        let s = kv().statements("Sessions");
        assert_eq!(s.len(), 2, "no key, no key statement: {s:?}");
        assert_eq!(s[0]["Sid"], "SessionsKvRead");
        assert_eq!(s[0]["Action"], serde_json::json!(["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"]));
        assert_eq!(s[0]["Resource"], serde_json::json!(["arn:aws:dynamodb:eu-west-1:1:table/sessions-kv"]));
        assert_eq!(s[1]["Resource"], serde_json::json!(["arn:aws:s3:::b/kv/sessions/*"]));
        let all = serde_json::to_string(&s).unwrap_or_default();
        assert!(!all.contains("Put") && !all.contains("Delete"), "{all}");
    }

    #[test]
    fn no_statement_uses_a_wildcard_action_or_resource() {
        for kind in [StoreKind::Kv, StoreKind::Object, StoreKind::Cache] {
            for level in [AccessLevel::Read, AccessLevel::Write] {
                let b = Binding { kind: Some(kind), access: level, kms_key_arn: Some("arn:k".into()), ..kv() };
                for s in b.statements("X") {
                    for a in s["Action"].as_array().into_iter().flatten() {
                        assert!(!a.as_str().unwrap_or("*").contains('*'), "{s}");
                    }
                    for r in s["Resource"].as_array().into_iter().flatten() {
                        assert_ne!(r, "*", "{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn bindings_round_trip_through_one_variable_and_sids_are_unique() {
        let b = Bindings(BTreeMap::from([
            ("user-sessions".to_string(), kv()),
            ("uploads".to_string(), Binding { kind: Some(StoreKind::Object), name: "up".into(), ..kv() }),
        ]));
        let env = b.to_env();
        assert_eq!(env.keys().collect::<Vec<_>>(), [BINDINGS_ENV]);
        assert_eq!(Bindings::from_map(&env), Ok(b.clone()));
        let sids: Vec<String> =
            binding_statements(&b.0).iter().map(|s| s["Sid"].as_str().unwrap_or_default().to_string()).collect();
        assert!(sids.contains(&"UserSessionsKvRead".to_string()), "{sids:?}");
        let mut unique = sids.clone();
        unique.dedup();
        assert_eq!(unique, sids);
        assert_eq!(Bindings::from_map(&BTreeMap::new()), Ok(Bindings::default()));
        assert!(Bindings::default().to_env().is_empty());
    }
}
