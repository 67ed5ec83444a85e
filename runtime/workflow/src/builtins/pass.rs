//! `pass`: its output is its input.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, from_params};
use crate::node::{Node, NodeContext, NodeError, NodeResult};

pub(super) struct Pass;

/// `pass` takes no params.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub(super) fn check(params: &Value) -> Result<(), ParamsError> {
    from_params::<NoParams>(params).map(drop)
}

#[async_trait]
impl Node for Pass {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        Ok(NodeResult::output(cx.input))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, services};
    use super::*;
    use crate::node::Registry;
    use serde_json::json;

    #[tokio::test]
    async fn output_is_input() {
        let s = services(Registry::empty());
        let r = run(&Pass, &s, Value::Null, json!({"a": [1]})).await.expect("pass");
        assert_eq!(r, NodeResult::output(json!({"a": [1]})));
    }
}
