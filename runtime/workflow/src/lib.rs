//! adf-workflow: workflows as blueprints (DAGs of nodes and edges) run on an SQS job queue and
//! DynamoDB tables (`adf_workflow_tables`).
//!
//! - [`blueprint`]: the model, versioned by content hash; [`lint`]: its linter;
//! - [`engine`]: the pure state machine that decides what runs next;
//! - [`store`] and [`queue`]: DynamoDB and SQS; [`catalog`]: the deployed blueprints;
//! - [`contract`]: the tables, environment and IAM statements whoever deploys it must provide;
//! - [`worker`]: runs jobs (as a Lambda on the queue, or as a long-running poller);
//! - [`client`]: start, status, cancel, wait; [`reconciler`]: resumes stalled runs.

pub mod blueprint;
pub mod builtins;
pub mod catalog;
pub mod client;
pub mod contract;
pub mod egress;
pub mod engine;
pub mod expr;
pub mod lambda;
pub mod lint;
pub mod node;
pub mod poller;
pub mod queue;
pub mod reconciler;
pub mod store;
pub mod worker;
