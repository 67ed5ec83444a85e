//! `transform`: `{"template": <json with $-paths>}`; its output is the template filled from
//! its input.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, from_params};
use crate::expr;
use crate::node::{Node, NodeContext, NodeError, NodeResult};

pub(super) struct Transform;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    template: Value,
}

impl Params {
    pub(super) fn parse(params: &Value) -> Result<Self, ParamsError> {
        let p: Self = from_params(params)?;
        expr::check_transform(&p.template).map_err(|e| ParamsError(format!("`template`: {e}")))?;
        Ok(p)
    }
}

#[async_trait]
impl Node for Transform {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        Ok(NodeResult::output(expr::transform(&p.template, &cx.input)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, services};
    use super::*;
    use crate::node::Registry;
    use serde_json::json;

    #[tokio::test]
    async fn fills_the_template() {
        let s = services(Registry::empty());
        let params = json!({"template": {"id": "$.order.id", "n": ["$.qty", 1], "none": "$.x"}});
        let r = run(&Transform, &s, params, json!({"order": {"id": "o1"}, "qty": 3})).await.expect("transform");
        assert_eq!(r, NodeResult::output(json!({"id": "o1", "n": [3, 1], "none": null})));
    }

    #[tokio::test]
    async fn a_missing_or_invalid_template_is_fatal() {
        let s = services(Registry::empty());
        let e = run(&Transform, &s, json!({}), json!({})).await.expect_err("no template");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("missing field `template`")), "{e:?}");
        let e = run(&Transform, &s, json!({"template": "$.a["}), json!({})).await.expect_err("bad path");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("`[` without `]`")), "{e:?}");
    }
}
