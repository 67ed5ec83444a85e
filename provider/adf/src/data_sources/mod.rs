//! Data sources, one per module.

pub mod lambda_package;
