//! Storage operation metrics: the shared [`adf_common::metrics`] emitter (CloudWatch embedded
//! metric format on Lambda), namespace `ADF/Storage`.

pub use adf_common::metrics::{METRICS_ENV, Metrics, Unit};

/// The namespace storage metrics go to.
pub const NAMESPACE: &str = "ADF/Storage";
