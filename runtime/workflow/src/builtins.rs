//! Built-in node types, one module each: `pass`, `transform`, `sleep` (alias `wait`), `map`,
//! `subflow`, `lambda` and `http`. Each parses its `params` with the same code at run time and
//! in the linter ([`check_params`]).

mod http;
mod lambda;
mod map;
mod pass;
mod sleep;
mod subflow;
mod transform;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::node::{NodeError, Registry};

/// The names of the built-in node types.
pub const NAMES: &[&str] = &["http", "lambda", "map", "pass", "sleep", "subflow", "transform", "wait"];

/// The built-in node types that only compute on their input, so finish at once.
pub const INSTANT: &[&str] = &["pass", "transform"];

/// Registers every built-in node type in `r`.
pub fn register(r: &mut Registry) {
    r.register("http", http::Http);
    r.register("lambda", lambda::Lambda);
    r.register("map", map::Map);
    r.register("pass", pass::Pass);
    r.register("sleep", sleep::Sleep);
    r.register("subflow", subflow::Subflow);
    r.register("transform", transform::Transform);
    r.register("wait", sleep::Sleep);
}

/// Why a built-in node's `params` are invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct ParamsError(String);

impl From<ParamsError> for NodeError {
    fn from(e: ParamsError) -> Self {
        NodeError::Fatal(format!("invalid params: {e}"))
    }
}

/// Checks `params` for node type `uses` if it is a built-in (other types are not checked).
/// `known_types` are the node types `map` may use.
pub fn check_params(uses: &str, params: &Value, known_types: &[&str]) -> Result<(), ParamsError> {
    match uses {
        "http" => http::Params::parse(params).map(drop),
        "lambda" => lambda::Params::parse(params).map(drop),
        "map" => map::check(params, known_types),
        "pass" => pass::check(params),
        "sleep" | "wait" => sleep::parse(params).map(drop),
        "subflow" => subflow::Params::parse(params).map(drop),
        "transform" => transform::Params::parse(params).map(drop),
        _ => Ok(()),
    }
}

/// Deserializes `params` (null reads as `{}`, so a missing required field is named).
fn from_params<T: DeserializeOwned>(params: &Value) -> Result<T, ParamsError> {
    let value = if params.is_null() { Value::Object(serde_json::Map::new()) } else { params.clone() };
    serde_json::from_value(value).map_err(|e| ParamsError(e.to_string()))
}

/// Parses the duration in field `field`.
fn duration(field: &str, text: &str) -> Result<Duration, ParamsError> {
    humantime::parse_duration(text)
        .map_err(|e| ParamsError(format!("`{field}` {text:?} is not a duration like \"30s\" or \"500ms\" ({e})")))
}

#[cfg(test)]
mod testing {
    use serde_json::Value;

    use crate::egress::{Egress, HttpClient};
    use crate::node::{Node, NodeContext, NodeError, NodeResult, Registry, Services};

    /// Services with `registry`, a plain HTTP client and no Lambda client.
    pub fn services(registry: Registry) -> Services {
        Services { lambda: None, http: HttpClient::new(Egress::default()), registry }
    }

    /// Runs `node` once.
    pub async fn run(
        node: &dyn Node,
        services: &Services,
        params: Value,
        input: Value,
    ) -> Result<NodeResult, NodeError> {
        node.run(NodeContext { run_id: "run-1", node_id: "node-1", params: &params, input, attempt: 0, services }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_is_registered() {
        assert_eq!(Registry::with_builtins().names(), NAMES);
    }

    #[test]
    fn params_are_checked_per_type() {
        let known = NAMES;
        let bad = |uses: &str, params: Value, why: &str| {
            let e = check_params(uses, &params, known).expect_err(uses);
            assert!(e.0.contains(why), "{uses}: {e}");
        };
        bad("sleep", Value::Null, "missing field `duration`");
        bad("wait", json!({"duration": "soon"}), "`duration` \"soon\" is not a duration");
        bad("http", json!({}), "missing field `url`");
        bad("lambda", json!({"qualifier": "live"}), "missing field `function`");
        bad("subflow", json!({"blueprint": "b", "extra": 1}), "unknown field `extra`");
        bad("transform", Value::Null, "missing field `template`");
        bad("pass", json!({"x": 1}), "unknown field `x`");
        check_params("pass", &Value::Null, known).expect("pass takes nothing");
        check_params("custom", &json!({"anything": 1}), known).expect("custom types are not checked");
    }
}
