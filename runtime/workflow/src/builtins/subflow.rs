//! `subflow`: `{"blueprint": "name", "input": <template, default "$">}`; starts a run of that
//! blueprint and completes with its output.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, from_params};
use crate::expr;
use crate::node::{Effect, Node, NodeContext, NodeError, NodeResult};

pub(super) struct Subflow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    blueprint: String,
    #[serde(default)]
    input: Option<Value>,
}

impl Params {
    pub(super) fn parse(params: &Value) -> Result<Self, ParamsError> {
        let p: Self = from_params(params)?;
        if p.blueprint.is_empty() {
            return Err(ParamsError("`blueprint` is empty".into()));
        }
        if let Some(t) = &p.input {
            expr::check_transform(t).map_err(|e| ParamsError(format!("`input`: {e}")))?;
        }
        Ok(p)
    }
}

#[async_trait]
impl Node for Subflow {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        let input = match &p.input {
            Some(t) => expr::transform(t, &cx.input),
            None => cx.input,
        };
        Ok(NodeResult { output: Value::Null, action: None, effect: Effect::Subflow { blueprint: p.blueprint, input } })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, services};
    use super::*;
    use crate::node::Registry;
    use serde_json::json;

    #[tokio::test]
    async fn asks_for_a_child_run() {
        let s = services(Registry::empty());
        let input = json!({"order": {"id": "o1"}, "other": 1});
        let r = run(&Subflow, &s, json!({"blueprint": "ship"}), input.clone()).await.expect("subflow");
        assert_eq!(r.effect, Effect::Subflow { blueprint: "ship".into(), input });
        assert_eq!(r.output, Value::Null);
        let params = json!({"blueprint": "ship", "input": {"id": "$.order.id"}});
        let r = run(&Subflow, &s, params, json!({"order": {"id": "o1"}})).await.expect("subflow");
        assert_eq!(r.effect, Effect::Subflow { blueprint: "ship".into(), input: json!({"id": "o1"}) });
    }

    #[tokio::test]
    async fn needs_a_blueprint() {
        let s = services(Registry::empty());
        let e = run(&Subflow, &s, json!({"blueprint": ""}), json!({})).await.expect_err("empty");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("`blueprint` is empty")), "{e:?}");
    }
}
