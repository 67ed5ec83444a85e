//! Blueprints: a workflow as a DAG of nodes and edges, written as JSON (or HCL through
//! `jsonencode`). Versioned by content hash, so a run pins the version it started with.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A workflow definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blueprint {
    /// The nodes, by id.
    pub nodes: BTreeMap<String, NodeSpec>,
    /// The edges between nodes.
    #[serde(default)]
    pub edges: Vec<Edge>,
}

/// How a node with several predecessors waits for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    /// After every predecessor whose edge was taken has completed.
    #[default]
    All,
    /// After the first predecessor; later ones are ignored.
    Any,
}

/// One step of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node type in the registry: `pass`, `transform`, `sleep`, `map`, `subflow`, `lambda`,
    /// `http`, or a custom one.
    pub uses: String,
    /// Parameters for the node type.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
    /// Extra inputs: name to a reference, `input.<path>` (the run's input) or `<node>.<path>`
    /// (a completed node's output). They are added to the node's input object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// Attempts after the first when the node fails or times out.
    #[serde(default)]
    pub max_retries: u32,
    /// Pause before the first retry (`"2s"`, `"500ms"`); doubled after each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// How long one attempt may take (`"30s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The node to run when every attempt failed; its edges continue the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// How the node waits for several predecessors.
    #[serde(default, skip_serializing_if = "is_default_join")]
    pub join: Join,
}

fn is_default_join(j: &Join) -> bool {
    *j == Join::All
}

/// A transition from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// The source node.
    pub from: String,
    /// The target node.
    pub to: String,
    /// Taken only when the source's result names this action (results without one are
    /// `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Taken only when this holds on the source's output: `<path> <op> <json>` with
    /// `==`, `!=`, `>`, `>=`, `<`, `<=`, or `<path> exists`. Paths start with `$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Reshapes the data passed along: a JSON value whose strings starting with `$` are paths
    /// into the source's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Value>,
}

/// Why a blueprint could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid blueprint JSON: {0}")]
pub struct ParseError(#[from] serde_json::Error);

impl Blueprint {
    /// Parses a blueprint from JSON.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The canonical JSON (sorted keys, no whitespace) the version hash is taken over.
    pub fn canonical_json(&self) -> String {
        // BTreeMaps and serde_json's sorted maps make this deterministic.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The version: the first 16 hex digits of the SHA-256 of the canonical JSON.
    pub fn version(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Edges leaving `node`.
    pub fn edges_from<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.from == node)
    }

    /// Edges entering `node`.
    pub fn edges_to<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.to == node)
    }

    /// Nodes no edge enters: where a run starts. Fallback targets are not start nodes.
    pub fn start_nodes(&self) -> Vec<&str> {
        let fallbacks: Vec<&str> = self.nodes.values().filter_map(|n| n.fallback.as_deref()).collect();
        self.nodes
            .keys()
            .map(String::as_str)
            .filter(|id| self.edges_to(id).next().is_none() && !fallbacks.contains(id))
            .collect()
    }
}

impl NodeSpec {
    /// The per-attempt timeout (default 5 minutes).
    pub fn timeout(&self) -> Duration {
        parse_duration(self.timeout.as_deref()).unwrap_or(DEFAULT_NODE_TIMEOUT)
    }

    /// The pause before retry `attempt` (1-based): `retry_delay` doubled per earlier retry.
    pub fn retry_pause(&self, attempt: u32) -> Duration {
        let base = parse_duration(self.retry_delay.as_deref()).unwrap_or(DEFAULT_RETRY_DELAY);
        base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
    }
}

/// A node attempt may take this long unless `timeout` says otherwise.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(300);
/// The first retry waits this long unless `retry_delay` says otherwise.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Parses `"2s"`, `"500ms"`, `"1m"` (humantime).
pub fn parse_duration(text: Option<&str>) -> Option<Duration> {
    text.and_then(|t| humantime::parse_duration(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{
        "nodes": {
            "validate": {"uses": "pass"},
            "charge": {"uses": "pass", "max_retries": 2, "retry_delay": "1s", "fallback": "refund"},
            "reserve": {"uses": "pass"},
            "ship": {"uses": "pass", "join": "all"},
            "refund": {"uses": "pass"}
        },
        "edges": [
            {"from": "validate", "to": "charge"},
            {"from": "validate", "to": "reserve"},
            {"from": "charge", "to": "ship"},
            {"from": "reserve", "to": "ship"}
        ]
    }"#;

    #[test]
    fn versions_follow_content_not_formatting() {
        let a = Blueprint::from_json(ORDER).expect("parse");
        let b = Blueprint::from_json(&ORDER.replace("\n", " ").replace("        ", "")).expect("parse");
        assert_eq!(a.version(), b.version());
        assert_eq!(a.version().len(), 16);
        let mut c = a.clone();
        c.nodes.get_mut("ship").expect("ship").max_retries = 1;
        assert_ne!(a.version(), c.version());
    }

    #[test]
    fn runs_start_where_no_edge_enters_except_fallbacks() {
        let bp = Blueprint::from_json(ORDER).expect("parse");
        assert_eq!(bp.start_nodes(), ["validate"]);
    }

    #[test]
    fn retries_back_off() {
        let bp = Blueprint::from_json(ORDER).expect("parse");
        let charge = &bp.nodes["charge"];
        assert_eq!(charge.retry_pause(1), Duration::from_secs(1));
        assert_eq!(charge.retry_pause(2), Duration::from_secs(2));
        assert_eq!(charge.retry_pause(3), Duration::from_secs(4));
        assert_eq!(charge.timeout(), DEFAULT_NODE_TIMEOUT);
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(Blueprint::from_json(r#"{"nodes": {"a": {"uses": "pass", "retries": 3}}}"#).is_err());
    }
}
