//! Node implementations: a trait, and a registry from `uses` names to implementations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// What a node run sees.
pub struct NodeContext<'a> {
    /// The run.
    pub run_id: &'a str,
    /// The node's id in the blueprint.
    pub node_id: &'a str,
    /// The node's `params`.
    pub params: &'a Value,
    /// Its input: the predecessor's output (after the edge's transform), an object of
    /// predecessor outputs for a join, or the run's input for a start node; plus `inputs`.
    pub input: Value,
    /// 0 for the first attempt.
    pub attempt: u32,
    /// Clients and other nodes, for nodes that call out or nest.
    pub services: &'a Services,
}

/// What nodes may use: AWS clients, an HTTP client, the registry itself.
#[derive(Clone)]
pub struct Services {
    /// For the `lambda` node.
    pub lambda: Option<aws_sdk_lambda::Client>,
    /// For the `http` node, under the worker's egress policy.
    pub http: crate::egress::HttpClient,
    /// For nodes that run other nodes (`map`).
    pub registry: Registry,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("registry", &self.registry).finish_non_exhaustive()
    }
}

/// What a node asks the worker to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// It is done: record the output and follow the edges.
    Done,
    /// Come back after this long (the worker re-queues the job with an SQS delay and holds
    /// nothing meanwhile); the node then completes with its input as output.
    Sleep(Duration),
    /// Start a run of blueprint `blueprint` with `input`; the node completes with that run's
    /// output when it succeeds.
    Subflow {
        /// Blueprint name.
        blueprint: String,
        /// The child run's input.
        input: Value,
    },
}

/// A node's result.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeResult {
    /// Its output, passed along the edges.
    pub output: Value,
    /// The action that chooses edges (`default` when None).
    pub action: Option<String>,
    /// What happens next.
    pub effect: Effect,
}

impl NodeResult {
    /// Done with `output`, default action.
    pub fn output(output: Value) -> Self {
        Self { output, action: None, effect: Effect::Done }
    }

    /// Done with `output` and `action`.
    pub fn with_action(output: Value, action: impl Into<String>) -> Self {
        Self { output, action: Some(action.into()), effect: Effect::Done }
    }
}

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Worth another attempt (per `max_retries`).
    #[error("{0}")]
    Retryable(String),
    /// No attempt will succeed: go to the fallback (or fail the run) now.
    #[error("{0}")]
    Fatal(String),
}

/// A node type.
#[async_trait]
pub trait Node: Send + Sync {
    /// Runs one attempt.
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError>;
}

/// Node types by name.
#[derive(Clone, Default)]
pub struct Registry {
    nodes: BTreeMap<String, Arc<dyn Node>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.nodes.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in node types: `pass`, `transform`, `sleep`, `map`, `subflow`, `lambda`, `http`.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        crate::builtins::register(&mut r);
        r
    }

    /// Adds (or replaces) node type `name`.
    pub fn register(&mut self, name: impl Into<String>, node: impl Node + 'static) -> &mut Self {
        self.nodes.insert(name.into(), Arc::new(node));
        self
    }

    /// The node type `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Node>> {
        self.nodes.get(name).cloned()
    }

    /// Every registered name.
    pub fn names(&self) -> Vec<&str> {
        self.nodes.keys().map(String::as_str).collect()
    }
}
