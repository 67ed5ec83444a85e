//! The engine: a pure state machine over a blueprint and the completions a run has recorded.
//! It decides which edges a result takes, which successors may run now (joins included), what
//! a stalled run still has to do, and when a run is finished. No AWS here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::blueprint::{Blueprint, Join};
use crate::expr::{self, ExprError};

/// The action of a result that names none.
pub const DEFAULT_ACTION: &str = "default";

/// A node's completion as the run records it (once per node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The action that chose the edges.
    #[serde(rename = "a")]
    pub action: String,
    /// The nodes its edges (or its fallback) led to.
    #[serde(rename = "t", default)]
    pub taken: Vec<String>,
    /// It failed after every attempt.
    #[serde(rename = "f", default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

/// Every completion of a run, by node.
pub type Done = BTreeMap<String, Completion>;

/// The edges `node`'s result takes: each target with the data passed along. Edges naming the
/// result's action are taken; edges naming no action are taken when none names it. A
/// `condition` must also hold on the output.
pub fn taken_edges(
    bp: &Blueprint,
    node: &str,
    action: &str,
    output: &Value,
) -> Result<Vec<(String, Value)>, ExprError> {
    let edges: Vec<_> = bp.edges_from(node).collect();
    let named = edges.iter().any(|e| e.action.as_deref() == Some(action));
    let mut taken = Vec::new();
    for e in edges {
        let by_action = match e.action.as_deref() {
            Some(a) => a == action,
            None => !named,
        };
        if !by_action {
            continue;
        }
        if let Some(c) = &e.condition
            && !expr::condition(c, output)?
        {
            continue;
        }
        let data = e.transform.as_ref().map_or_else(|| output.clone(), |t| expr::transform(t, output));
        if !taken.iter().any(|(to, _): &(String, Value)| *to == e.to) {
            taken.push((e.to.clone(), data));
        }
    }
    Ok(taken)
}

/// The distinct nodes with an edge into `node`.
pub fn predecessors<'a>(bp: &'a Blueprint, node: &str) -> BTreeSet<&'a str> {
    bp.edges.iter().filter(|e| e.to == node).map(|e| e.from.as_str()).collect()
}

/// Whether `node` waits for several predecessors (its input is then an object by predecessor).
pub fn is_join(bp: &Blueprint, node: &str) -> bool {
    predecessors(bp, node).len() > 1
}

/// The predecessors whose completion led to `node`.
pub fn arrivals<'a>(bp: &'a Blueprint, node: &str, done: &Done) -> BTreeSet<&'a str> {
    predecessors(bp, node)
        .into_iter()
        .filter(|p| done.get(*p).is_some_and(|c| c.taken.iter().any(|t| t == node)))
        .collect()
}

/// Whether a join `all` can never fire: a predecessor failed and its fallback does not lead
/// into the join in its place (the order is refunded, not shipped).
fn blocked(bp: &Blueprint, node: &str, done: &Done) -> bool {
    if bp.nodes.get(node).map(|n| n.join) != Some(Join::All) {
        return false;
    }
    let preds = predecessors(bp, node);
    preds.iter().any(|p| done.get(*p).is_some_and(|c| c.failed && !c.taken.iter().any(|f| preds.contains(f.as_str()))))
}

/// Whether `node` may run given `done` (a join `all` once every predecessor completed, one led
/// to it and none failed without a fallback that takes its place; `any` once one led to it).
fn satisfied(bp: &Blueprint, node: &str, done: &Done) -> bool {
    let arrived = arrivals(bp, node, done);
    match bp.nodes.get(node).map(|n| n.join) {
        Some(Join::All) => {
            !arrived.is_empty()
                && predecessors(bp, node).iter().all(|p| done.contains_key(*p))
                && !blocked(bp, node, done)
        }
        _ => !arrived.is_empty(),
    }
}

/// The successors that the completion of `node` (already in `done`, which is the run's state
/// right after it was recorded) makes runnable. Exactly one completion sees each successor
/// become runnable: for `any`, the first arrival; for `all`, the last predecessor.
pub fn dispatches(bp: &Blueprint, node: &str, done: &Done) -> Vec<String> {
    let Some(completion) = done.get(node) else {
        return Vec::new();
    };
    let mut targets: BTreeSet<&str> = completion.taken.iter().map(String::as_str).collect();
    // A join `all` fires on its last predecessor, whether or not that one's edge was taken.
    targets.extend(
        bp.edges_from(node).map(|e| e.to.as_str()).filter(|to| bp.nodes.get(*to).is_some_and(|n| n.join == Join::All)),
    );
    targets
        .into_iter()
        .filter(|t| !done.contains_key(*t))
        .filter(|t| {
            if !bp.nodes.contains_key(*t) {
                return false;
            }
            if completion.failed {
                // The fallback: entered by this failure alone.
                return completion.taken.iter().any(|x| x == t);
            }
            let arrived = arrivals(bp, t, done);
            match bp.nodes[*t].join {
                Join::Any => arrived.len() == 1 && arrived.contains(node),
                Join::All => satisfied(bp, t, done),
            }
        })
        .map(str::to_string)
        .collect()
}

/// Nodes not completed that the run still waits for: start nodes, fallbacks entered, and
/// nodes some completion led to. The run is finished when there are none.
pub fn pending(bp: &Blueprint, done: &Done) -> Vec<String> {
    let mut p: BTreeSet<&str> = bp.start_nodes().into_iter().collect();
    p.extend(done.values().flat_map(|c| c.taken.iter().map(String::as_str)));
    p.into_iter()
        .filter(|n| !done.contains_key(*n) && bp.nodes.contains_key(*n) && !blocked(bp, n, done))
        .map(str::to_string)
        .collect()
}

/// How a run with nothing pending ended: `failed` when a node failed with nowhere to go (no
/// fallback), else `succeeded`.
pub fn outcome(done: &Done) -> &'static str {
    if done.values().any(|c| c.failed && c.taken.is_empty()) { "failed" } else { "succeeded" }
}

/// The node a finished run ended at, when exactly one completed without leading anywhere.
pub fn end_node(done: &Done) -> Option<&str> {
    let mut ends = done.iter().filter(|(_, c)| c.taken.is_empty() && !c.failed).map(|(n, _)| n.as_str());
    match (ends.next(), ends.next()) {
        (Some(n), None) => Some(n),
        _ => None,
    }
}

/// Pending nodes that may run now: what a stalled run is resumed with.
pub fn runnable(bp: &Blueprint, done: &Done) -> Vec<String> {
    let starts = bp.start_nodes();
    pending(bp, done)
        .into_iter()
        .filter(|n| {
            starts.contains(&n.as_str())
                || done.values().any(|c| c.failed && c.taken.contains(n))
                || satisfied(bp, n, done)
        })
        .collect()
}

/// The input of `node`: for a join, an object of the arrived predecessors' data (each through
/// its edge's transform); otherwise that one predecessor's data.
pub fn join_input(bp: &Blueprint, node: &str, done: &Done, outputs: &BTreeMap<String, Value>) -> Value {
    let mut by_pred = Map::new();
    for p in arrivals(bp, node, done) {
        let output = outputs.get(p).cloned().unwrap_or(Value::Null);
        let edge = bp.edges.iter().find(|e| e.from == p && e.to == node);
        let data =
            edge.and_then(|e| e.transform.as_ref()).map_or_else(|| output.clone(), |t| expr::transform(t, &output));
        by_pred.insert(p.to_string(), data);
    }
    if is_join(bp, node) {
        Value::Object(by_pred)
    } else {
        by_pred.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(join: &str) -> Blueprint {
        Blueprint::from_json(&format!(
            r#"{{
            "nodes": {{
                "validate": {{"uses": "pass"}},
                "charge": {{"uses": "pass", "fallback": "refund"}},
                "reserve": {{"uses": "pass"}},
                "ship": {{"uses": "pass", "join": "{join}"}},
                "refund": {{"uses": "pass"}}
            }},
            "edges": [
                {{"from": "validate", "to": "charge"}},
                {{"from": "validate", "to": "reserve"}},
                {{"from": "charge", "to": "ship", "transform": {{"paid": "$.amount"}}}},
                {{"from": "reserve", "to": "ship"}}
            ]
        }}"#
        ))
        .expect("blueprint")
    }

    fn complete(bp: &Blueprint, done: &mut Done, node: &str, output: &Value) -> Vec<String> {
        let taken = taken_edges(bp, node, DEFAULT_ACTION, output).expect("edges");
        done.insert(
            node.into(),
            Completion {
                action: DEFAULT_ACTION.into(),
                taken: taken.into_iter().map(|(t, _)| t).collect(),
                failed: false,
            },
        );
        dispatches(bp, node, done)
    }

    #[test]
    fn a_join_all_fires_once_on_the_last_predecessor() {
        let bp = order("all");
        let mut done = Done::new();
        assert_eq!(pending(&bp, &done), ["validate"]);
        assert_eq!(complete(&bp, &mut done, "validate", &json!({})), ["charge", "reserve"]);
        assert!(complete(&bp, &mut done, "reserve", &json!({})).is_empty(), "charge is still running");
        assert_eq!(complete(&bp, &mut done, "charge", &json!({"amount": 5})), ["ship"]);
        let outputs = BTreeMap::from([("charge".to_string(), json!({"amount": 5})), ("reserve".into(), json!("r"))]);
        assert_eq!(join_input(&bp, "ship", &done, &outputs), json!({"charge": {"paid": 5}, "reserve": "r"}));
        assert_eq!(pending(&bp, &done), ["ship"]);
        assert!(complete(&bp, &mut done, "ship", &json!(null)).is_empty());
        assert!(pending(&bp, &done).is_empty(), "finished");
    }

    #[test]
    fn a_join_any_fires_on_the_first_and_ignores_the_rest() {
        let bp = order("any");
        let mut done = Done::new();
        complete(&bp, &mut done, "validate", &json!({}));
        assert_eq!(complete(&bp, &mut done, "reserve", &json!({})), ["ship"]);
        assert!(complete(&bp, &mut done, "charge", &json!({})).is_empty(), "no second firing");
    }

    #[test]
    fn a_failure_enters_the_fallback_only() {
        let bp = order("all");
        let mut done = Done::new();
        complete(&bp, &mut done, "validate", &json!({}));
        done.insert("charge".into(), Completion { action: "error".into(), taken: vec!["refund".into()], failed: true });
        assert_eq!(dispatches(&bp, "charge", &done), ["refund"]);
        assert_eq!(runnable(&bp, &done), ["refund", "reserve"]);
    }

    #[test]
    fn a_failed_predecessor_blocks_a_join_all_unless_its_fallback_leads_there() {
        let bp = order("all");
        let mut done = Done::new();
        complete(&bp, &mut done, "validate", &json!({}));
        complete(&bp, &mut done, "reserve", &json!({}));
        done.insert("charge".into(), Completion { action: "error".into(), taken: vec!["refund".into()], failed: true });
        assert_eq!(dispatches(&bp, "charge", &done), ["refund"], "refund, not ship");
        assert_eq!(pending(&bp, &done), ["refund"]);
        complete(&bp, &mut done, "refund", &json!({}));
        assert!(pending(&bp, &done).is_empty(), "the run ends without shipping");

        // When the fallback feeds the join, the join waits for it instead.
        let mut bp = order("all");
        bp.edges.push(crate::blueprint::Edge {
            from: "refund".into(),
            to: "ship".into(),
            action: None,
            condition: None,
            transform: None,
        });
        let mut done = Done::new();
        complete(&bp, &mut done, "validate", &json!({}));
        complete(&bp, &mut done, "reserve", &json!({}));
        done.insert("charge".into(), Completion { action: "error".into(), taken: vec!["refund".into()], failed: true });
        assert_eq!(complete(&bp, &mut done, "refund", &json!({})), ["ship"]);
    }

    #[test]
    fn actions_and_conditions_choose_edges() {
        let bp = Blueprint::from_json(
            r#"{"nodes": {"check": {"uses": "pass"}, "big": {"uses": "pass"}, "small": {"uses": "pass"}, "manual": {"uses": "pass"}},
                "edges": [
                    {"from": "check", "to": "big", "condition": "$.total > 100"},
                    {"from": "check", "to": "small", "condition": "$.total <= 100"},
                    {"from": "check", "to": "manual", "action": "review"}
                ]}"#,
        )
        .expect("blueprint");
        let to = |action: &str, total: i64| -> Vec<String> {
            taken_edges(&bp, "check", action, &json!({"total": total}))
                .expect("edges")
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        };
        assert_eq!(to(DEFAULT_ACTION, 150), ["big"]);
        assert_eq!(to(DEFAULT_ACTION, 50), ["small"]);
        assert_eq!(to("review", 150), ["manual"]);
    }

    #[test]
    fn a_finished_run_fails_only_on_a_failure_with_nowhere_to_go_and_ends_at_its_one_end_node() {
        let c = |taken: &[&str], failed: bool| Completion {
            action: DEFAULT_ACTION.into(),
            taken: taken.iter().map(|t| t.to_string()).collect(),
            failed,
        };
        let mut done = Done::new();
        done.insert("a".into(), c(&["b"], true)); // failed, but its fallback led on
        done.insert("b".into(), c(&[], false));
        assert_eq!((outcome(&done), end_node(&done)), ("succeeded", Some("b")));
        done.insert("x".into(), c(&[], false));
        assert_eq!(end_node(&done), None, "two ends: no single output");
        done.insert("y".into(), c(&[], true));
        assert_eq!(outcome(&done), "failed");
    }

    #[test]
    fn a_stalled_run_resumes_what_was_dispatched_but_not_done() {
        let bp = order("all");
        let mut done = Done::new();
        complete(&bp, &mut done, "validate", &json!({}));
        // A worker died after recording validate and before sending its successors.
        assert_eq!(runnable(&bp, &done), ["charge", "reserve"]);
        complete(&bp, &mut done, "charge", &json!({}));
        complete(&bp, &mut done, "reserve", &json!({}));
        // ... and after the last predecessor of the join, before sending ship.
        assert_eq!(runnable(&bp, &done), ["ship"]);
    }
}
