//! adf-stream-client: the client of a stream topic's HTTP API (the stream Lambda behind its
//! Function URL; routes in `docs/stream-http-api.md`).
//!
//! - [`Client`]: one request per call (`produce`, `consume`, `group_consume`, `commit`,
//!   `describe`), SigV4-signed for `lambda` with [`Auth::Iam`];
//! - [`Producer`]: Kafka-style batching per partition with linger, size limits and retries;
//! - [`Consumer`]: reads partitions from an offset or a group's commits, and commits.
//!
//! It is a crate of its own so the stream Lambda's zip does not carry an HTTP client.

mod auth;
mod client;
mod consumer;
mod error;
mod partitioner;
mod producer;
mod records;
#[cfg(test)]
mod test_server;

pub use auth::{Auth, Scope, sigv4_headers};
pub use client::Client;
pub use consumer::{Consumer, ConsumerConfig, Expired, Start};
pub use error::Error;
pub use partitioner::partition_for;
pub use producer::{Delivery, Producer, ProducerConfig};
pub use records::{Committed, Description, Fetched, NewRecord, PartitionInfo, Produced, Record, RecordMetadata};
