//! Objects on S3 through `object_store` (placeholder: being written).

use crate::contract::Binding;
use crate::error::{Result, StorageError};

/// An object bucket.
#[derive(Clone, Debug)]
pub struct Objects;

impl Objects {
    /// The bucket `binding` names, reached with `sdk`'s credentials, region and endpoint.
    pub fn from_binding(_binding: &Binding, _sdk: &aws_types::SdkConfig) -> Result<Self> {
        Err(StorageError::Binding("objects are not built yet".into()))
    }
}
