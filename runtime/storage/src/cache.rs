//! A cache (placeholder: being written).

use crate::contract::Binding;
use crate::error::{Result, StorageError};

/// A cache.
#[derive(Clone, Debug)]
pub struct Cache;

impl Cache {
    /// The cache `binding` names: its DynamoDB table through `ddb`, or its Redis.
    pub async fn from_binding(_binding: &Binding, _ddb: &aws_sdk_dynamodb::Client) -> Result<Self> {
        Err(StorageError::Binding("caches are not built yet".into()))
    }
}
