//! Managed resources, one per module.

pub mod common;
pub mod workflow_tables;
