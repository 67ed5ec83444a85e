//! Managed resources, one per module.

pub mod common;
pub mod function;
pub mod lambda_package;
pub mod released_zip;
pub mod stream_topic;
pub mod workflow;
pub mod workflow_tables;
