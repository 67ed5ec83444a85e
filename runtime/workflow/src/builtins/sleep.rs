//! `sleep` (alias `wait`): `{"duration": "30s"}`; the worker re-queues the job with a delay and
//! holds nothing meanwhile, then the node completes with its input as output.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, duration, from_params};
use crate::node::{Effect, Node, NodeContext, NodeError, NodeResult};

pub(super) struct Sleep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    duration: String,
}

/// The sleep's duration.
pub(super) fn parse(params: &Value) -> Result<Duration, ParamsError> {
    let p: Params = from_params(params)?;
    duration("duration", &p.duration)
}

#[async_trait]
impl Node for Sleep {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let d = parse(cx.params)?;
        Ok(NodeResult { output: cx.input, action: None, effect: Effect::Sleep(d) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, services};
    use super::*;
    use crate::node::Registry;
    use serde_json::json;

    #[tokio::test]
    async fn asks_to_come_back_later() {
        let s = services(Registry::empty());
        let r = run(&Sleep, &s, json!({"duration": "1m 30s"}), json!({"a": 1})).await.expect("sleep");
        assert_eq!(
            r,
            NodeResult { output: json!({"a": 1}), action: None, effect: Effect::Sleep(Duration::from_secs(90)) }
        );
    }

    #[tokio::test]
    async fn a_bad_duration_is_fatal() {
        let s = services(Registry::empty());
        let e = run(&Sleep, &s, json!({"duration": 30}), json!({})).await.expect_err("number");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("invalid type")), "{e:?}");
        let e = run(&Sleep, &s, json!({"duration": "later"}), json!({})).await.expect_err("text");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("\"later\" is not a duration")), "{e:?}");
    }
}
