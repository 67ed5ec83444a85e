//! The blueprint linter: every problem names the node it is about, when there is one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::blueprint::{Blueprint, Edge, Join};
use crate::{builtins, expr};

/// One problem in a blueprint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The node it is about, if any.
    pub node: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node {n:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The longest node timeout: Lambda's limit.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The name `inputs` references use for the run's input.
const RUN_INPUT: &str = "input";

fn at(node: &str, message: String) -> Problem {
    Problem { node: Some(node.to_string()), message }
}

/// The problems of `bp`, given the node types that exist, sorted by node then message.
pub fn lint(bp: &Blueprint, known_types: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_nodes(bp, known_types, &mut problems);
    check_edges(bp, &mut problems);
    check_graph(bp, &mut problems);
    check_joins(bp, &mut problems);
    problems.sort();
    problems.dedup();
    problems
}

/// Types, params, fallbacks, durations and `inputs`.
fn check_nodes(bp: &Blueprint, known_types: &[&str], out: &mut Vec<Problem>) {
    for (id, n) in &bp.nodes {
        if id == RUN_INPUT {
            out.push(at(id, "the id \"input\" names the run's input in `inputs`; rename the node".into()));
        }
        if !known_types.contains(&n.uses.as_str()) {
            out.push(at(id, format!("unknown node type {:?}; known: {}", n.uses, known_types.join(", "))));
        } else if let Err(e) = builtins::check_params(&n.uses, &n.params, known_types) {
            out.push(at(id, format!("params: {e}")));
        }
        match n.fallback.as_deref() {
            Some(f) if f == id => out.push(at(id, "fallback is the node itself".into())),
            Some(f) if !bp.nodes.contains_key(f) => out.push(at(id, format!("fallback {f:?} is not a node"))),
            _ => {}
        }
        if let Some(d) = &n.retry_delay
            && humantime::parse_duration(d).is_err()
        {
            out.push(at(id, format!("retry_delay {d:?} is not a duration like \"2s\" or \"500ms\"")));
        }
        if let Some(t) = &n.timeout {
            match humantime::parse_duration(t) {
                Err(_) => out.push(at(id, format!("timeout {t:?} is not a duration like \"30s\" or \"5m\""))),
                Ok(d) if d.is_zero() => out.push(at(id, format!("timeout {t:?} must be more than zero"))),
                Ok(d) if d > MAX_TIMEOUT => {
                    out.push(at(id, format!("timeout {t:?} is over 15 minutes, the Lambda limit")));
                }
                Ok(_) => {}
            }
        }
        for (name, reference) in &n.inputs {
            match expr::split_reference(reference) {
                Err(e) => out.push(at(id, format!("inputs.{name}: {e}"))),
                Ok((source, _)) if source == id => {
                    out.push(at(id, format!("inputs.{name}: {reference:?} is the node's own output")));
                }
                Ok((source, _)) if source != RUN_INPUT && !bp.nodes.contains_key(source) => out.push(at(
                    id,
                    format!("inputs.{name}: {reference:?} names neither the run's input (input.<path>) nor a node (<node>.<path>)"),
                )),
                Ok(_) => {}
            }
        }
    }
}

/// `edge "a" -> "b"`, for messages.
fn label(e: &Edge) -> String {
    format!("edge {:?} -> {:?}", e.from, e.to)
}

/// Endpoints, conditions, transforms and duplicates.
fn check_edges(bp: &Blueprint, out: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for e in &bp.edges {
        for end in [&e.from, &e.to] {
            if !bp.nodes.contains_key(end) {
                out.push(at(&e.from, format!("{}: {end:?} is not a node", label(e))));
            }
        }
        if let Some(c) = &e.condition
            && let Err(err) = expr::check_condition(c)
        {
            out.push(at(&e.from, format!("{}: {err}", label(e))));
        }
        if let Some(t) = &e.transform
            && let Err(err) = expr::check_transform(t)
        {
            out.push(at(&e.from, format!("{}: transform: {err}", label(e))));
        }
        if !seen.insert((&e.from, &e.to, &e.action, &e.condition)) {
            out.push(at(&e.from, format!("{}: duplicate edge (same from, to, action and condition)", label(e))));
        }
    }
}

/// Successors by node, through edges and fallback links between existing nodes.
type Graph<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

/// The run's graph: edges and fallback links, self-fallbacks left out (reported on their own).
fn graph(bp: &Blueprint) -> Graph<'_> {
    let mut g: Graph<'_> = bp.nodes.keys().map(|id| (id.as_str(), BTreeSet::new())).collect();
    let links = bp.edges.iter().map(|e| (e.from.as_str(), e.to.as_str()));
    let fallbacks = bp.nodes.iter().filter_map(|(id, n)| n.fallback.as_deref().map(|f| (id.as_str(), f)));
    for (from, to) in links.chain(fallbacks.filter(|(id, f)| id != f)) {
        if bp.nodes.contains_key(to)
            && let Some(next) = g.get_mut(from)
        {
            next.insert(to);
        }
    }
    g
}

/// The shortest cycle through `start`, as `start, .., start`.
fn cycle_through<'a>(g: &Graph<'a>, start: &'a str) -> Option<Vec<&'a str>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for &m in g.get(n).into_iter().flatten() {
            if m == start {
                let mut path = vec![start, n];
                let mut cur = n;
                while let Some(&p) = parent.get(cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            if !parent.contains_key(m) {
                parent.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    None
}

/// The problems of blueprints that start themselves through `subflow` nodes, directly or
/// through others of `blueprints` (by name), as (blueprint, problem at the node that starts
/// the loop): such a run would start children until the tables fill.
pub fn lint_calls(blueprints: &BTreeMap<String, Blueprint>) -> Vec<(String, Problem)> {
    let starts = |bp: &Blueprint| -> Vec<(String, String)> {
        bp.nodes
            .iter()
            .filter(|(_, n)| n.uses == "subflow")
            .filter_map(|(id, n)| Some((id.clone(), n.params.get("blueprint")?.as_str()?.to_string())))
            .collect()
    };
    let calls: BTreeMap<&str, Vec<(String, String)>> =
        blueprints.iter().map(|(name, bp)| (name.as_str(), starts(bp))).collect();
    let mut g: Graph<'_> = BTreeMap::new();
    for (&name, children) in &calls {
        let known = children.iter().filter_map(|(_, c)| blueprints.get_key_value(c.as_str()).map(|(k, _)| k.as_str()));
        g.entry(name).or_default().extend(known);
    }
    let mut out = Vec::new();
    for (&name, children) in &calls {
        let Some(cycle) = cycle_through(&g, name) else { continue };
        let next = cycle[1];
        for (node, _) in children.iter().filter(|(_, c)| c == next) {
            let message = format!(
                "starts blueprint {next:?}, which leads back to {name:?} ({}): every run would start subflows \
                 without end; break the loop",
                cycle.join(" -> ")
            );
            out.push((name.to_string(), at(node, message)));
        }
    }
    out
}

/// Cycles, start nodes, reachability and orphans.
fn check_graph(bp: &Blueprint, out: &mut Vec<Problem>) {
    let g = graph(bp);
    let mut cycles = BTreeSet::new();
    for &id in g.keys() {
        if let Some(mut cycle) = cycle_through(&g, id) {
            // Rotate to start at the smallest id, so each cycle is reported once.
            cycle.pop();
            let min = cycle.iter().enumerate().min_by_key(|(_, n)| **n).map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            cycle.push(cycle[0]);
            cycles.insert(cycle);
        }
    }
    for c in cycles {
        let message = format!(
            "cycle {}: loops are not supported by this engine version; remove an edge or fallback to break it",
            c.join(" -> ")
        );
        out.push(at(c[0], message));
    }

    if bp.nodes.is_empty() {
        out.push(Problem { node: None, message: "the blueprint has no nodes".into() });
        return;
    }
    let starts = bp.start_nodes();
    if starts.is_empty() {
        let message = "no start node: every node has an incoming edge or is a fallback target".into();
        out.push(Problem { node: None, message });
        return;
    }
    let mut reached: BTreeSet<&str> = starts.iter().copied().collect();
    let mut queue: VecDeque<&str> = starts.iter().copied().collect();
    while let Some(n) = queue.pop_front() {
        for &m in g.get(n).into_iter().flatten() {
            if reached.insert(m) {
                queue.push_back(m);
            }
        }
    }
    let fallback_targets: BTreeSet<&str> = bp.nodes.values().filter_map(|n| n.fallback.as_deref()).collect();
    for (id, n) in &bp.nodes {
        if !reached.contains(id.as_str()) {
            out.push(at(id, format!("unreachable from the start nodes ({})", starts.join(", "))));
        }
        let linked = bp.edges.iter().any(|e| e.from == *id || e.to == *id)
            || fallback_targets.contains(id.as_str())
            || n.fallback.as_ref().is_some_and(|f| bp.nodes.contains_key(f));
        if bp.nodes.len() > 1 && !linked {
            out.push(at(
                id,
                "orphan: no edges in or out, so it runs on its own at the start; connect or remove it".into(),
            ));
        }
    }
}

/// Whether an edge is taken only sometimes: it has a condition or an action, or a sibling
/// names an action (an edge without one is taken only when no sibling names the action).
fn conditional(bp: &Blueprint, e: &Edge) -> bool {
    e.condition.is_some() || e.action.is_some() || bp.edges_from(&e.from).any(|s| s.action.is_some())
}

/// `join: "all"` waiting for a predecessor that may never run.
fn check_joins(bp: &Blueprint, out: &mut Vec<Problem>) {
    let starts = bp.start_nodes();
    for id in bp.nodes.iter().filter(|(_, n)| n.join == Join::All).map(|(id, _)| id) {
        let preds: BTreeSet<&str> =
            bp.edges_to(id).map(|e| e.from.as_str()).filter(|p| bp.nodes.contains_key(*p)).collect();
        if preds.len() < 2 {
            continue;
        }
        for p in preds {
            let incoming: Vec<&Edge> = bp.edges_to(p).filter(|e| bp.nodes.contains_key(&e.from)).collect();
            if starts.contains(&p) || incoming.iter().any(|e| !conditional(bp, e)) {
                continue;
            }
            let why = if incoming.is_empty() {
                "runs only as a fallback"
            } else {
                "is reached only through conditional edges (condition or action)"
            };
            out.push(at(
                id,
                format!(
                    "join \"all\" may wait forever: predecessor {p:?} {why}, so it may never run; use join \"any\""
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::NAMES;

    fn problems(json: &str) -> Vec<String> {
        let bp = Blueprint::from_json(json).expect("blueprint");
        lint(&bp, NAMES).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn blueprints_that_start_themselves_are_problems_at_the_starting_node() {
        let bp = |json: &str| Blueprint::from_json(json).expect("blueprint");
        let calling = |child: &str| {
            bp(&format!(r#"{{"nodes":{{"call":{{"uses":"subflow","params":{{"blueprint":"{child}"}}}}}}}}"#))
        };
        let all: BTreeMap<String, Blueprint> = [
            ("self".to_string(), calling("self")),
            ("a".to_string(), calling("b")),
            ("b".to_string(), calling("a")),
            ("caller".to_string(), calling("a")),
            ("leaf".to_string(), bp(r#"{"nodes":{"x":{"uses":"pass"}}}"#)),
            ("fine".to_string(), calling("leaf")),
            ("elsewhere".to_string(), calling("not-deployed")),
        ]
        .into();
        let found: Vec<String> = lint_calls(&all).iter().map(|(b, p)| format!("{b}: {p}")).collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with(r#"a: node "call": starts blueprint "b", which leads back to "a" (a -> b -> a)"#));
        assert!(found[1].starts_with(r#"b: node "call": starts blueprint "a", which leads back to "b" (b -> a -> b)"#));
        assert!(
            found[2].starts_with(
                r#"self: node "call": starts blueprint "self", which leads back to "self" (self -> self)"#
            )
        );
    }

    /// Asserts that `json` has exactly the problem `expected`.
    #[track_caller]
    fn only(json: &str, expected: &str) {
        assert_eq!(problems(json), [expected]);
    }

    const ORDER: &str = r#"{
        "nodes": {
            "validate": {"uses": "pass"},
            "charge": {"uses": "lambda", "params": {"function": "charge"}, "max_retries": 2,
                       "retry_delay": "1s", "timeout": "30s", "fallback": "refund"},
            "reserve": {"uses": "http", "params": {"url": "https://stock.example.com/reserve", "method": "POST"}},
            "ship": {"uses": "pass", "join": "all", "inputs": {"order": "input.order", "paid": "charge.amount"}},
            "refund": {"uses": "lambda", "params": {"function": "refund"}}
        },
        "edges": [
            {"from": "validate", "to": "charge", "transform": {"amount": "$.total"}},
            {"from": "validate", "to": "reserve"},
            {"from": "charge", "to": "ship"},
            {"from": "reserve", "to": "ship"}
        ]
    }"#;

    #[test]
    fn the_order_workflow_is_clean() {
        assert_eq!(problems(ORDER), Vec::<String>::new());
    }

    #[test]
    fn unknown_types() {
        only(
            r#"{"nodes": {"a": {"uses": "nope"}}}"#,
            &format!("node \"a\": unknown node type \"nope\"; known: {}", NAMES.join(", ")),
        );
    }

    #[test]
    fn edges_to_and_from_missing_nodes() {
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "ghost"}]}"#,
            "node \"a\": edge \"a\" -> \"ghost\": \"ghost\" is not a node",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b"}, {"from": "ghost", "to": "b"}]}"#,
            "node \"ghost\": edge \"ghost\" -> \"b\": \"ghost\" is not a node",
        );
    }

    #[test]
    fn fallbacks() {
        only(
            r#"{"nodes": {"a": {"uses": "pass", "fallback": "nope"}}}"#,
            "node \"a\": fallback \"nope\" is not a node",
        );
        assert_eq!(
            problems(r#"{"nodes": {"a": {"uses": "pass", "fallback": "a"}}}"#),
            [
                "no start node: every node has an incoming edge or is a fallback target",
                "node \"a\": fallback is the node itself",
            ]
        );
        // A fallback target may also have incoming edges.
        let ok = r#"{"nodes": {"a": {"uses": "pass", "fallback": "c"}, "b": {"uses": "pass"}, "c": {"uses": "pass"}},
                     "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}"#;
        assert_eq!(problems(ok), Vec::<String>::new());
    }

    #[test]
    fn cycles() {
        assert_eq!(
            problems(
                r#"{"nodes": {"s": {"uses": "pass"}, "a": {"uses": "pass"}, "b": {"uses": "pass"}},
                    "edges": [{"from": "s", "to": "b"}, {"from": "b", "to": "a"}, {"from": "a", "to": "b"}]}"#
            ),
            [
                "node \"a\": cycle a -> b -> a: loops are not supported by this engine version; remove an edge or fallback to break it"
            ]
        );
        assert_eq!(
            problems(
                r#"{"nodes": {"s": {"uses": "pass"}, "a": {"uses": "pass"}},
                    "edges": [{"from": "s", "to": "a"}, {"from": "a", "to": "a"}]}"#
            ),
            [
                "node \"a\": cycle a -> a: loops are not supported by this engine version; remove an edge or fallback to break it"
            ]
        );
        // Through a fallback.
        assert_eq!(
            problems(
                r#"{"nodes": {"s": {"uses": "pass"}, "a": {"uses": "pass", "fallback": "f", "join": "any"}, "f": {"uses": "pass"}},
                    "edges": [{"from": "s", "to": "a"}, {"from": "f", "to": "a"}]}"#
            ),
            [
                "node \"a\": cycle a -> f -> a: loops are not supported by this engine version; remove an edge or fallback to break it"
            ]
        );
    }

    #[test]
    fn no_start_node() {
        assert_eq!(
            problems(
                r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}"#
            ),
            [
                "no start node: every node has an incoming edge or is a fallback target",
                "node \"a\": cycle a -> b -> a: loops are not supported by this engine version; remove an edge or fallback to break it",
            ]
        );
        only(r#"{"nodes": {}}"#, "the blueprint has no nodes");
    }

    #[test]
    fn orphans() {
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}, "c": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b"}]}"#,
            "node \"c\": orphan: no edges in or out, so it runs on its own at the start; connect or remove it",
        );
        assert_eq!(problems(r#"{"nodes": {"a": {"uses": "pass"}}}"#), Vec::<String>::new(), "a lone node is fine");
    }

    #[test]
    fn unreachable_nodes() {
        // c is entered only from a node that does not exist, and d only from c.
        assert_eq!(
            problems(
                r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}, "c": {"uses": "pass"}, "d": {"uses": "pass"}},
                    "edges": [{"from": "a", "to": "b"}, {"from": "ghost", "to": "c"}, {"from": "c", "to": "d"}]}"#
            ),
            [
                "node \"c\": unreachable from the start nodes (a)",
                "node \"d\": unreachable from the start nodes (a)",
                "node \"ghost\": edge \"ghost\" -> \"c\": \"ghost\" is not a node",
            ]
        );
    }

    #[test]
    fn invalid_conditions_and_transforms() {
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b", "condition": "$.total = 1"}]}"#,
            "node \"a\": edge \"a\" -> \"b\": condition \"$.total = 1\": expected `==`, `!=`, `>`, `>=`, `<`, `<=` or `exists` after the path, found \"= 1\" (use `==`)",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b", "transform": {"x": "$.items[x]"}}]}"#,
            "node \"a\": edge \"a\" -> \"b\": transform: path \"$.items[x]\": index \"x\" is not a non-negative integer",
        );
    }

    #[test]
    fn durations() {
        only(
            r#"{"nodes": {"a": {"uses": "pass", "retry_delay": "soon"}}}"#,
            "node \"a\": retry_delay \"soon\" is not a duration like \"2s\" or \"500ms\"",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass", "timeout": "forever"}}}"#,
            "node \"a\": timeout \"forever\" is not a duration like \"30s\" or \"5m\"",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass", "timeout": "16m"}}}"#,
            "node \"a\": timeout \"16m\" is over 15 minutes, the Lambda limit",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass", "timeout": "0s"}}}"#,
            "node \"a\": timeout \"0s\" must be more than zero",
        );
        assert_eq!(problems(r#"{"nodes": {"a": {"uses": "pass", "timeout": "15m"}}}"#), Vec::<String>::new());
    }

    #[test]
    fn join_all_after_a_conditional_predecessor() {
        only(
            r#"{"nodes": {"s": {"uses": "pass"}, "big": {"uses": "pass"}, "t": {"uses": "pass"}, "j": {"uses": "pass"}},
                "edges": [{"from": "s", "to": "big", "condition": "$.total > 100"}, {"from": "s", "to": "t"},
                          {"from": "big", "to": "j"}, {"from": "t", "to": "j"}]}"#,
            "node \"j\": join \"all\" may wait forever: predecessor \"big\" is reached only through conditional edges (condition or action), so it may never run; use join \"any\"",
        );
        // An edge without an action is conditional too when a sibling names one.
        only(
            r#"{"nodes": {"s": {"uses": "pass"}, "h": {"uses": "pass"}, "ok": {"uses": "pass"}, "other": {"uses": "pass"},
                          "t": {"uses": "pass"}, "j": {"uses": "pass"}},
                "edges": [{"from": "s", "to": "h"}, {"from": "s", "to": "t"},
                          {"from": "h", "to": "ok", "action": "ok"}, {"from": "h", "to": "other"},
                          {"from": "other", "to": "j"}, {"from": "t", "to": "j"}]}"#,
            "node \"j\": join \"all\" may wait forever: predecessor \"other\" is reached only through conditional edges (condition or action), so it may never run; use join \"any\"",
        );
    }

    #[test]
    fn join_all_after_a_fallback() {
        only(
            r#"{"nodes": {"s": {"uses": "pass", "fallback": "f"}, "t": {"uses": "pass"}, "f": {"uses": "pass"}, "j": {"uses": "pass"}},
                "edges": [{"from": "s", "to": "t"}, {"from": "t", "to": "j"}, {"from": "f", "to": "j"}]}"#,
            "node \"j\": join \"all\" may wait forever: predecessor \"f\" runs only as a fallback, so it may never run; use join \"any\"",
        );
        let any = r#"{"nodes": {"s": {"uses": "pass", "fallback": "f"}, "t": {"uses": "pass"}, "f": {"uses": "pass"}, "j": {"uses": "pass", "join": "any"}},
                      "edges": [{"from": "s", "to": "t"}, {"from": "t", "to": "j"}, {"from": "f", "to": "j"}]}"#;
        assert_eq!(problems(any), Vec::<String>::new());
    }

    #[test]
    fn inputs_references() {
        only(
            r#"{"nodes": {"a": {"uses": "pass", "inputs": {"x": "order.id"}}}}"#,
            "node \"a\": inputs.x: \"order.id\" names neither the run's input (input.<path>) nor a node (<node>.<path>)",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass", "inputs": {"x": "input.items["}}}}"#,
            "node \"a\": inputs.x: reference \"input.items[\": path \"$.items[\": `[` without `]`",
        );
        only(
            r#"{"nodes": {"a": {"uses": "pass", "inputs": {"x": "a.total"}}}}"#,
            "node \"a\": inputs.x: \"a.total\" is the node's own output",
        );
        let ok = r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass", "inputs": {"all": "input", "first": "a.items[0]", "whole": "a"}}},
                     "edges": [{"from": "a", "to": "b"}]}"#;
        assert_eq!(problems(ok), Vec::<String>::new());
        only(
            r#"{"nodes": {"input": {"uses": "pass"}}}"#,
            "node \"input\": the id \"input\" names the run's input in `inputs`; rename the node",
        );
    }

    #[test]
    fn duplicate_edges() {
        only(
            r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b", "action": "ok"}, {"from": "a", "to": "b", "action": "ok", "transform": {"x": 1}}]}"#,
            "node \"a\": edge \"a\" -> \"b\": duplicate edge (same from, to, action and condition)",
        );
        let distinct = r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "pass"}},
                "edges": [{"from": "a", "to": "b", "action": "ok"}, {"from": "a", "to": "b", "action": "retry"}]}"#;
        assert_eq!(problems(distinct), Vec::<String>::new());
    }

    #[test]
    fn builtin_params() {
        for (node, expected) in [
            (r#"{"uses": "sleep"}"#, "params: missing field `duration`"),
            (
                r#"{"uses": "wait", "params": {"duration": "a while"}}"#,
                "params: `duration` \"a while\" is not a duration",
            ),
            (r#"{"uses": "http", "params": {"method": "POST"}}"#, "params: missing field `url`"),
            (r#"{"uses": "lambda"}"#, "params: missing field `function`"),
            (r#"{"uses": "map", "params": {"uses": "pass"}}"#, "params: missing field `over`"),
            (
                r#"{"uses": "map", "params": {"over": "$.items", "uses": "nope"}}"#,
                "params: `uses`: unknown node type \"nope\"",
            ),
            (r#"{"uses": "subflow"}"#, "params: missing field `blueprint`"),
            (
                r#"{"uses": "transform", "params": {"template": "$.a..b"}}"#,
                "params: `template`: path \"$.a..b\": empty key",
            ),
        ] {
            let p = problems(&format!(r#"{{"nodes": {{"n": {node}}}}}"#));
            assert_eq!(p.len(), 1, "{node}: {p:?}");
            assert!(p[0].starts_with(&format!("node \"n\": {expected}")), "{node}: {p:?}");
        }
    }

    #[test]
    fn problems_are_sorted_by_node_then_message() {
        let bp = Blueprint::from_json(
            r#"{"nodes": {"b": {"uses": "x", "timeout": "1h"}, "a": {"uses": "pass", "fallback": "zz"}},
                "edges": [{"from": "a", "to": "b"}]}"#,
        )
        .expect("blueprint");
        let p = lint(&bp, &["pass"]);
        let keys: Vec<(Option<&str>, &str)> =
            p.iter().map(|p| (p.node.as_deref(), p.message.split(' ').next().unwrap_or(""))).collect();
        assert_eq!(keys, [(Some("a"), "fallback"), (Some("b"), "timeout"), (Some("b"), "unknown")]);
    }
}
