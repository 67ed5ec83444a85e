//! Managed resources, one per module.

pub mod common;
pub mod function;
pub mod lambda_package;
pub mod stream_topic;
pub mod workflow_tables;
