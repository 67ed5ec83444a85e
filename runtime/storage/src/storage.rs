//! [`Storage`]: the stores bound to a function, by binding name.

use std::sync::Arc;

use adf_common::contract::EnvSettings;

use crate::contract::{Binding, Bindings, StoreKind};
use crate::error::{Result, StorageError};
use crate::kv::KvBackend;
use crate::metrics::{Measured, Metrics, NAMESPACE};
use crate::{Cache, Kv, Objects, kv};

/// The stores bound to this function, with the SDK clients that reach them. Their operations
/// are measured ([`crate::metrics`]): EMF lines on Lambda, nothing elsewhere unless
/// `ADF_METRICS` says so.
#[derive(Clone, Debug)]
pub struct Storage {
    bindings: Bindings,
    sdk: aws_types::SdkConfig,
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    metrics: Metrics,
}

impl Storage {
    /// The bindings in `ADF_STORAGE_BINDINGS`, reached with the SDK's default configuration.
    pub async fn from_env() -> Result<Self> {
        let bindings = Bindings::from_env().map_err(|e| StorageError::Binding(e.to_string()))?;
        Ok(Self::new(bindings, &adf_common::sdk::load().await))
    }

    /// `bindings`, reached with `sdk`.
    pub fn new(bindings: Bindings, sdk: &aws_types::SdkConfig) -> Self {
        Self {
            bindings,
            sdk: sdk.clone(),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            s3: adf_common::sdk::s3_client(sdk),
            metrics: Metrics::from_env(NAMESPACE, sdk),
        }
    }

    /// Metrics for the store bound as `name`.
    fn metrics(&self, name: &str) -> Metrics {
        self.metrics.clone().with_dimension("Binding", name)
    }

    /// The binding `name`, which must be of `kind`.
    pub fn binding(&self, name: &str, kind: StoreKind) -> Result<&Binding> {
        let b = self.bindings.0.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.bindings.0.keys().map(String::as_str).collect();
            StorageError::Binding(format!("no binding {name:?} (this function has {known:?})"))
        })?;
        match b.kind {
            Some(k) if k == kind => Ok(b),
            other => Err(StorageError::Binding(format!(
                "binding {name:?} is {}, not {}",
                other.map_or("of no kind", StoreKind::as_str),
                kind.as_str()
            ))),
        }
    }

    /// The KV namespace bound as `name`.
    pub fn kv(&self, name: &str) -> Result<Kv> {
        let b = self.binding(name, StoreKind::Kv)?;
        let table = b.table.clone().ok_or_else(|| StorageError::Binding(format!("binding {name:?} has no table")))?;
        let blobs = b.bucket.clone().map(|bucket| kv::dynamo::Blobs { s3: self.s3.clone(), bucket });
        let backend: Arc<dyn KvBackend> =
            Arc::new(kv::dynamo::DynamoKv::new(self.ddb.clone(), table, b.name.clone(), blobs));
        Ok(Kv::new(Arc::new(Measured::new(backend, self.metrics(name)))))
    }

    /// The object bucket bound as `name`.
    pub fn objects(&self, name: &str) -> Result<Objects> {
        Ok(Objects::from_binding(self.binding(name, StoreKind::Object)?, &self.sdk)?.measured(self.metrics(name)))
    }

    /// The cache bound as `name` (connecting to Redis when it is one).
    pub async fn cache(&self, name: &str) -> Result<Cache> {
        Ok(Cache::from_binding(self.binding(name, StoreKind::Cache)?, &self.ddb).await?.measured(self.metrics(name)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_missing_or_mistyped_binding_says_which() {
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .build();
        let kv = Binding { kind: Some(StoreKind::Kv), name: "s".into(), table: Some("t".into()), ..Binding::default() };
        let s = Storage::new(Bindings(BTreeMap::from([("sessions".to_string(), kv)])), &sdk);
        assert!(s.kv("sessions").is_ok());
        let e = s.kv("nope").expect_err("no such binding").to_string();
        assert!(e.contains("no binding \"nope\"") && e.contains("sessions"), "{e}");
        let e = s.objects("sessions").expect_err("not objects").to_string();
        assert!(e.contains("is kv, not object"), "{e}");
    }
}
