//! Managed resources, one per file, each a [`driver::Managed`] implementation on the services
//! layer ([`crate::aws`]). No resource imports another.

pub mod cache;
pub mod cloudformation_stack;
pub mod driver;
pub mod ecr_repository;
pub mod event_source;
pub mod function;
pub mod function_alias;
pub mod http_api;
pub mod kafka_cluster;
pub mod kafka_topic;
pub mod kv_namespace;
pub mod lambda_package;
pub mod object_bucket;
pub mod released_zip;
pub mod stream_topic;
pub mod workflow;
pub mod workflow_tables;
