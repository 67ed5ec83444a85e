//! `map`: `{"over": "$.items", "uses": "<node type>", "params": {..}, "concurrency": 8,
//! "max_items": 1000}`; runs that node type on each element of the array at `over`,
//! `concurrency` at a time (at most 100), and outputs the array of their outputs in order. An
//! array longer than `max_items` (at most 10,000) fails the node rather than fan out without
//! bound.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::Value;

use super::{ParamsError, check_params, from_params};
use crate::expr;
use crate::node::{Effect, Node, NodeContext, NodeError, NodeResult};

pub(super) struct Map;

/// Node types whose results ask the worker for an effect, which `map` cannot carry out.
const WITH_EFFECTS: &[&str] = &["sleep", "subflow", "wait"];

/// The highest `concurrency`.
const MAX_CONCURRENCY: usize = 100;
/// The highest `max_items`.
const MAX_ITEMS: usize = 10_000;

fn default_concurrency() -> usize {
    8
}

fn default_max_items() -> usize {
    1000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    over: String,
    uses: String,
    #[serde(default)]
    params: Value,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_max_items")]
    max_items: usize,
}

impl Params {
    fn parse(params: &Value) -> Result<Self, ParamsError> {
        let p: Self = from_params(params)?;
        expr::check_path(&p.over).map_err(|e| ParamsError(format!("`over`: {e}")))?;
        if !(1..=MAX_CONCURRENCY).contains(&p.concurrency) {
            return Err(ParamsError(format!("`concurrency` must be 1 to {MAX_CONCURRENCY}")));
        }
        if !(1..=MAX_ITEMS).contains(&p.max_items) {
            return Err(ParamsError(format!("`max_items` must be 1 to {MAX_ITEMS}")));
        }
        if WITH_EFFECTS.contains(&p.uses.as_str()) {
            return Err(ParamsError(format!("`uses`: {:?} cannot run inside a map", p.uses)));
        }
        Ok(p)
    }
}

/// Checks the params, and the inner node type and its params against `known_types`.
pub(super) fn check(params: &Value, known_types: &[&str]) -> Result<(), ParamsError> {
    let p = Params::parse(params)?;
    if !known_types.contains(&p.uses.as_str()) {
        return Err(ParamsError(format!("`uses`: unknown node type {:?}", p.uses)));
    }
    check_params(&p.uses, &p.params, known_types).map_err(|e| ParamsError(format!("`params` for {:?}: {e}", p.uses)))
}

#[async_trait]
impl Node for Map {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let p = Params::parse(cx.params)?;
        let node = cx
            .services
            .registry
            .get(&p.uses)
            .ok_or_else(|| NodeError::Fatal(format!("map: unknown node type {:?}", p.uses)))?;
        let items = match expr::path(&cx.input, &p.over) {
            Some(Value::Array(items)) if items.len() > p.max_items => {
                return Err(NodeError::Fatal(format!(
                    "map: {} has {} items, over max_items {}",
                    p.over,
                    items.len(),
                    p.max_items
                )));
            }
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                return Err(NodeError::Fatal(format!("map: {} is not an array but {other}", p.over)));
            }
            None => return Err(NodeError::Fatal(format!("map: {} is not in the input", p.over))),
        };
        let (node, params, uses) = (&node, &p.params, &p.uses);
        let (run_id, node_id, attempt, services) = (cx.run_id, cx.node_id, cx.attempt, cx.services);
        let outputs: Vec<Value> = stream::iter(items.into_iter().enumerate())
            .map(|(i, input)| async move {
                let cx = NodeContext { run_id, node_id, params, input, attempt, services };
                match node.run(cx).await {
                    Ok(NodeResult { output, effect: Effect::Done, .. }) => Ok(output),
                    Ok(_) => Err(NodeError::Fatal(format!(
                        "map element {i}: node type {uses:?} asked for a sleep or subflow, which map cannot run"
                    ))),
                    Err(NodeError::Retryable(m)) => Err(NodeError::Retryable(format!("map element {i}: {m}"))),
                    Err(NodeError::Fatal(m)) => Err(NodeError::Fatal(format!("map element {i}: {m}"))),
                }
            })
            .buffered(p.concurrency)
            .try_collect()
            .await?;
        Ok(NodeResult::output(Value::Array(outputs)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::super::testing::{run, services};
    use super::*;
    use crate::node::Registry;
    use serde_json::json;

    /// Fails on elements `{"fail": "retry"}` and `{"fail": "fatal"}`; counts how many run at once.
    #[derive(Default)]
    struct Picky {
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Node for Picky {
        async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            match cx.input.get("fail").and_then(Value::as_str) {
                Some("retry") => Err(NodeError::Retryable("try again".into())),
                Some("fatal") => Err(NodeError::Fatal("never".into())),
                _ => Ok(NodeResult::output(cx.input)),
            }
        }
    }

    fn registry() -> (Registry, Arc<AtomicUsize>) {
        let picky = Picky::default();
        let peak = picky.peak.clone();
        let mut r = Registry::empty();
        crate::builtins::register(&mut r);
        r.register("picky", picky);
        (r, peak)
    }

    #[tokio::test]
    async fn runs_each_element_and_keeps_the_order() {
        let (r, _) = registry();
        let s = services(r);
        let params = json!({"over": "$.items", "uses": "transform", "params": {"template": {"sku": "$.id"}}});
        let input = json!({"items": [{"id": "a"}, {"id": "b"}, {"id": "c"}]});
        let out = run(&Map, &s, params, input).await.expect("map");
        assert_eq!(out, NodeResult::output(json!([{"sku": "a"}, {"sku": "b"}, {"sku": "c"}])));
        let out = run(&Map, &s, json!({"over": "$", "uses": "pass"}), json!([])).await.expect("empty");
        assert_eq!(out.output, json!([]));
    }

    #[tokio::test]
    async fn runs_at_most_concurrency_at_once() {
        let (r, peak) = registry();
        let s = services(r);
        let items: Vec<Value> = (0..10).map(|i| json!({"i": i})).collect();
        let out = run(&Map, &s, json!({"over": "$", "uses": "picky", "concurrency": 3}), json!(items.clone()))
            .await
            .expect("map");
        assert_eq!(out.output, json!(items));
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failing_element_fails_the_map_with_its_index() {
        let (r, _) = registry();
        let s = services(r);
        let params = json!({"over": "$.items", "uses": "picky"});
        let e = run(&Map, &s, params.clone(), json!({"items": [{}, {"fail": "retry"}]})).await.expect_err("retry");
        assert!(matches!(&e, NodeError::Retryable(m) if m == "map element 1: try again"), "{e:?}");
        let e = run(&Map, &s, params, json!({"items": [{}, {}, {"fail": "fatal"}]})).await.expect_err("fatal");
        assert!(matches!(&e, NodeError::Fatal(m) if m == "map element 2: never"), "{e:?}");
    }

    #[tokio::test]
    async fn needs_an_array_and_a_registered_type() {
        let (r, _) = registry();
        let s = services(r);
        let e = run(&Map, &s, json!({"over": "$.items", "uses": "pass"}), json!({"items": 3}))
            .await
            .expect_err("not array");
        assert!(matches!(&e, NodeError::Fatal(m) if m == "map: $.items is not an array but 3"), "{e:?}");
        let e = run(&Map, &s, json!({"over": "$.items", "uses": "pass"}), json!({})).await.expect_err("absent");
        assert!(matches!(&e, NodeError::Fatal(m) if m == "map: $.items is not in the input"), "{e:?}");
        let e = run(&Map, &s, json!({"over": "$", "uses": "nope"}), json!([1])).await.expect_err("unknown");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("unknown node type \"nope\"")), "{e:?}");
        let e = run(&Map, &s, json!({"over": "$", "uses": "sleep"}), json!([1])).await.expect_err("effect");
        assert!(matches!(&e, NodeError::Fatal(m) if m.contains("cannot run inside a map")), "{e:?}");
    }

    #[test]
    fn check_looks_inside() {
        let known = &["map", "pass", "transform"];
        check(&json!({"over": "$.a", "uses": "transform", "params": {"template": "$"}}), known).expect("ok");
        let e = check(&json!({"over": "$.a", "uses": "transform"}), known).expect_err("inner params");
        assert_eq!(e.0, "`params` for \"transform\": missing field `template`");
        let e = check(&json!({"over": "$.a", "uses": "http"}), known).expect_err("unknown");
        assert_eq!(e.0, "`uses`: unknown node type \"http\"");
        let e = check(&json!({"over": "a", "uses": "pass"}), known).expect_err("path");
        assert!(e.0.starts_with("`over`: path \"a\""), "{e}");
        let e = check(&json!({"uses": "pass"}), known).expect_err("over");
        assert!(e.0.contains("missing field `over`"), "{e}");
        let e = check(&json!({"over": "$", "uses": "pass", "concurrency": 101}), known).expect_err("concurrency");
        assert_eq!(e.0, "`concurrency` must be 1 to 100");
        let e = check(&json!({"over": "$", "uses": "pass", "max_items": 10_001}), known).expect_err("items");
        assert_eq!(e.0, "`max_items` must be 1 to 10000");
    }

    #[tokio::test]
    async fn more_items_than_max_items_fail_the_node() {
        let (r, _) = registry();
        let s = services(r);
        let e = run(&Map, &s, json!({"over": "$", "uses": "pass", "max_items": 2}), json!([1, 2, 3]))
            .await
            .expect_err("too many");
        assert!(matches!(&e, NodeError::Fatal(m) if m == "map: $ has 3 items, over max_items 2"), "{e:?}");
        run(&Map, &s, json!({"over": "$", "uses": "pass", "max_items": 3}), json!([1, 2, 3])).await.expect("fits");
    }
}
