//! Blueprints: checked at plan time with the runtime's own parser and linter, and deployed with
//! the runtime's own store, which owns their item layout in the contexts table (versions kept
//! forever so runs pinned to one finish on it, a `current` pointer per blueprint with the
//! configured text and the owning workflow, and the names each workflow deploys).

use std::collections::{BTreeMap, BTreeSet};

use adf_workflow::blueprint::Blueprint;
use adf_workflow::node::Registry;
use adf_workflow::store::{MAX_VALUE_BYTES, Store, StoreError};
use serde_json::Value as Json;
use tfplug::{AttributePath, Diagnostic, Diagnostics, Dynamic, IntoDynamic};

/// The longest blueprint name.
pub const MAX_NAME: usize = 100;

/// The diagnostic path of blueprint `name`: `blueprints["name"]`.
pub fn path(name: &str) -> AttributePath {
    AttributePath::root().attr("blueprints").key(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What a check needs besides the blueprint.
#[derive(Debug, Default)]
pub struct CheckOptions<'a> {
    /// A worker of the user's (`worker_zip`) may register node types of its own: unknown types
    /// are then allowed, everything else is still checked.
    pub custom_nodes: bool,
    /// `invoke_function_arns`, when known: `lambda` nodes outside it get a warning.
    pub invoke_arns: Option<&'a [String]>,
    /// Every blueprint name this workflow deploys, when known: a `subflow` of another one gets
    /// a warning.
    pub deployed: Option<&'a BTreeSet<String>>,
    /// The worker's timeout in seconds, when known: a node `timeout` above it is an error.
    pub worker_timeout: Option<i64>,
}

/// The node types `bp` may use: the built-ins, plus (with custom nodes) every type it names.
fn known_types(bp: &Blueprint, custom_nodes: bool) -> Vec<String> {
    let mut known: BTreeSet<String> = Registry::with_builtins().names().into_iter().map(str::to_string).collect();
    if custom_nodes {
        for n in bp.nodes.values() {
            known.insert(n.uses.clone());
            if let Some(inner) = n.params.get("uses").and_then(Json::as_str) {
                known.insert(inner.to_string());
            }
        }
    }
    known.into_iter().collect()
}

/// The function name in a Lambda function reference (a name, `name:qualifier`, or an ARN).
fn function_name(reference: &str) -> &str {
    match reference.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => reference.split(':').next().unwrap_or(reference),
    }
}

/// The functions `bp`'s `lambda` nodes (and `map` nodes running `lambda`) invoke, by node.
fn invoked(bp: &Blueprint) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for (id, n) in &bp.nodes {
        let params = match n.uses.as_str() {
            "lambda" => &n.params,
            "map" if n.params.get("uses").and_then(Json::as_str) == Some("lambda") => &n.params["params"],
            _ => continue,
        };
        if let Some(f) = params.get("function").and_then(Json::as_str) {
            out.push((id.as_str(), f));
        }
    }
    out
}

/// Checks blueprint `name` (JSON `text`) with the runtime's parser and linter. Every problem
/// is an error at `blueprints["name"]` naming the blueprint and the node; returns its version
/// when it is valid.
pub fn check(name: &str, text: &str, opts: &CheckOptions<'_>) -> (Option<String>, Diagnostics) {
    let mut d = Diagnostics::new();
    let at = path(name);
    if !valid_name(name) {
        d.error_at(
            at.clone(),
            format!("Invalid blueprint name {name:?}"),
            format!(
                "Blueprint names are 1 to {MAX_NAME} letters, digits, '-', '_' or '.'; runs start a blueprint by name."
            ),
        );
    }
    if text.len() > MAX_VALUE_BYTES {
        d.error_at(
            at.clone(),
            format!("Blueprint {name:?} is too large"),
            format!(
                "It is {} bytes of JSON; a blueprint is stored in one DynamoDB item of at most {MAX_VALUE_BYTES} bytes.",
                text.len()
            ),
        );
    }
    let bp = match Blueprint::from_json(text) {
        Ok(bp) => bp,
        Err(e) => {
            d.error_at(at, format!("Invalid blueprint {name:?}"), format!("Blueprint {name:?}: {e}."));
            return (None, d);
        }
    };
    let known = known_types(&bp, opts.custom_nodes);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    for problem in adf_workflow::lint::lint(&bp, &known) {
        let summary = match &problem.node {
            Some(node) => format!("Invalid blueprint {name:?} at node {node:?}"),
            None => format!("Invalid blueprint {name:?}"),
        };
        d.error_at(at.clone(), summary, format!("Blueprint {name:?}: {problem}."));
    }
    if let Some(arns) = opts.invoke_arns {
        for (node, f) in invoked(&bp) {
            let wanted = function_name(f);
            if !arns.iter().any(|a| function_name(a) == wanted) {
                d.push(
                    Diagnostic::warning(
                        format!("Blueprint {name:?} at node {node:?} invokes a function the worker may not"),
                        format!(
                            "Node {node:?} of blueprint {name:?} invokes {f:?}, but invoke_function_arns does not \
                             name it, so the worker's role is denied lambda:InvokeFunction. Add its ARN (with \
                             \":*\" for a qualified call) to invoke_function_arns."
                        ),
                    )
                    .at(at.clone()),
                );
            }
        }
    }
    if let Some(limit) = opts.worker_timeout {
        for (node, n) in bp.nodes.iter().filter(|(_, n)| n.timeout.is_some()) {
            if n.timeout().as_secs_f64() > limit as f64 {
                d.error_at(
                    at.clone(),
                    format!("Invalid blueprint {name:?} at node {node:?}"),
                    format!(
                        "Blueprint {name:?}: node {node:?} has timeout {:?}, longer than the worker's timeout of \
                         {limit} s: Lambda would stop the worker in the middle of an attempt. Lower the node's \
                         timeout, or raise the adf_workflow's timeout (at most 900).",
                        n.timeout.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
    }
    if let Some(deployed) = opts.deployed {
        for (node, n) in &bp.nodes {
            if n.uses == "subflow"
                && let Some(child) = n.params.get("blueprint").and_then(Json::as_str)
                && !deployed.contains(child)
            {
                d.push(
                    Diagnostic::warning(
                        format!("Blueprint {name:?} at node {node:?} starts a blueprint this workflow does not deploy"),
                        format!(
                            "Node {node:?} starts blueprint {child:?}, which is not in blueprints: its runs fail \
                             unless something else stores it in the same contexts table."
                        ),
                    )
                    .at(at.clone()),
                );
            }
        }
    }
    let version = (!d.has_errors()).then(|| bp.version());
    (version, d)
}

/// The blueprints (name to JSON text) that start themselves through subflows: an error at
/// each, naming the node that starts the loop.
pub fn check_calls(blueprints: &BTreeMap<String, Dynamic>) -> Diagnostics {
    let parsed: BTreeMap<String, Blueprint> = blueprints
        .iter()
        .filter_map(|(name, text)| match text {
            Dynamic::String(t) => Some((name.clone(), Blueprint::from_json(t).ok()?)),
            _ => None,
        })
        .collect();
    let mut d = Diagnostics::new();
    for (name, problem) in adf_workflow::lint::lint_calls(&parsed) {
        let node = problem.node.as_deref().unwrap_or_default();
        d.error_at(
            path(&name),
            format!("Invalid blueprint {name:?} at node {node:?}"),
            format!("Blueprint {name:?}: {problem}."),
        );
    }
    d
}

/// The version of blueprint JSON `text`, when it parses.
pub fn version(text: &str) -> Option<String> {
    Blueprint::from_json(text).ok().map(|bp| bp.version())
}
/// The planned `blueprint_versions` of `blueprints` (name to JSON text): unknown until every
/// blueprint is known.
pub fn planned_versions(blueprints: &Dynamic) -> Dynamic {
    match blueprints {
        Dynamic::Map(m) if !m.values().any(Dynamic::has_unknown) => Dynamic::Map(
            m.iter()
                .filter_map(|(k, v)| match v {
                    Dynamic::String(text) => version(text).map(|ver| (k.clone(), ver.into_dynamic())),
                    _ => None,
                })
                .collect(),
        ),
        _ => Dynamic::Unknown,
    }
}

/// Stores every blueprint whose `current` item is not already this text, deletes the `current`
/// pointers of blueprints no longer deployed (and, when the workflow moved to other tables,
/// those in `old`), and records the names. Returns the versions.
pub async fn sync(
    store: &Store,
    workflow: &str,
    blueprints: &BTreeMap<String, String>,
    prior_names: &BTreeSet<String>,
    old: Option<(Store, BTreeSet<String>)>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let names: Vec<String> = blueprints.keys().cloned().collect();
    let current = store.current(&names).await?;
    let mut versions = BTreeMap::new();
    for (name, text) in blueprints {
        let bp = Blueprint::from_json(text)
            .map_err(|e| StoreError::Corrupt { what: format!("blueprint {name:?}"), cause: e.to_string() })?;
        let want = bp.version();
        let stored = current.get(name).is_some_and(|c| c.version == want && c.source.as_deref() == Some(text));
        let version = if stored { want } else { store.deploy(workflow, name, &bp, text).await? };
        versions.insert(name.clone(), version);
    }
    let recorded = store.index(workflow).await?;
    let mut gone: BTreeSet<String> = recorded.clone().unwrap_or_default().into_iter().collect();
    match old {
        // The workflow moved to other tables: the old ones start no more runs of its blueprints.
        Some((old, old_names)) => {
            for n in &old_names {
                old.delete_current(workflow, n).await?;
            }
            old.delete_index(workflow).await?;
        }
        None => gone.extend(prior_names.iter().cloned()),
    }
    for n in gone.iter().filter(|n| !blueprints.contains_key(*n)) {
        store.delete_current(workflow, n).await?;
    }
    if recorded.as_ref() != Some(&names) {
        store.put_index(workflow, &names).await?;
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(d: &Diagnostics) -> Vec<(String, String, String)> {
        d.0.iter()
            .filter(|d| d.severity == tfplug::Severity::Error)
            .map(|d| {
                (d.attribute.as_ref().map(ToString::to_string).unwrap_or_default(), d.summary.clone(), d.detail.clone())
            })
            .collect()
    }

    const ORDER: &str =
        r#"{"nodes":{"charge":{"uses":"pass"},"ship":{"uses":"pass"}},"edges":[{"from":"charge","to":"ship"}]}"#;

    #[test]
    fn a_valid_blueprint_has_the_runtimes_version() {
        let (v, d) = check("order", ORDER, &CheckOptions::default());
        assert!(d.is_empty(), "{d}");
        assert_eq!(v, Blueprint::from_json(ORDER).ok().map(|b| b.version()));
        assert_eq!(version(ORDER), v);
    }

    #[test]
    fn every_lint_problem_is_an_error_at_the_blueprint_naming_it_and_the_node() {
        let bad = r#"{"nodes":{"a":{"uses":"pass"},"b":{"uses":"pass"},"c":{"uses":"teleport"}},
                      "edges":[{"from":"a","to":"b"},{"from":"b","to":"a"},{"from":"a","to":"ghost"}]}"#;
        let (v, d) = check("order", bad, &CheckOptions::default());
        assert_eq!(v, None);
        let e = errors(&d);
        assert!(e.len() >= 3, "{e:?}");
        for (at, summary, detail) in &e {
            assert_eq!(at, "blueprints[\"order\"]");
            assert!(summary.contains("\"order\"") && detail.contains("\"order\""), "{summary} / {detail}");
        }
        let all = e.iter().map(|(_, s, d)| format!("{s} {d}")).collect::<Vec<_>>().join("\n");
        assert!(all.contains("node \"c\"") && all.contains("unknown node type \"teleport\""), "{all}");
        assert!(all.contains("cycle"), "{all}");
        assert!(all.contains("\"ghost\" is not a node"), "{all}");
    }

    #[test]
    fn json_that_is_no_blueprint_is_an_error_at_it() {
        let (_, d) = check("x", r#"{"nodes": {"a": {"uses": "pass", "retries": 2}}}"#, &CheckOptions::default());
        let e = errors(&d);
        assert_eq!(e.len(), 1);
        assert!(e[0].2.contains("unknown field `retries`"), "{e:?}");
        let (_, d) = check("bad name", ORDER, &CheckOptions::default());
        assert_eq!(errors(&d)[0].1, "Invalid blueprint name \"bad name\"");
    }

    #[test]
    fn a_worker_of_ones_own_allows_unknown_types_but_checks_the_rest() {
        let custom = r#"{"nodes":{"a":{"uses":"geocode"},"m":{"uses":"map","params":{"over":"$.items","uses":"score"}}},
                         "edges":[{"from":"a","to":"m"}]}"#;
        let opts = CheckOptions { custom_nodes: true, ..CheckOptions::default() };
        let (v, d) = check("geo", custom, &opts);
        assert!(d.is_empty(), "{d}");
        assert!(v.is_some());
        assert_eq!(errors(&check("geo", custom, &CheckOptions::default()).1).len(), 2);
        let cyclic = r#"{"nodes":{"s":{"uses":"geocode"},"a":{"uses":"geocode"},"b":{"uses":"x"}},
                         "edges":[{"from":"s","to":"a"},{"from":"a","to":"b"},{"from":"b","to":"a"}]}"#;
        let e = errors(&check("geo", cyclic, &opts).1);
        assert!(e.iter().any(|(_, _, d)| d.contains("cycle")), "{e:?}");
        assert!(!e.iter().any(|(_, _, d)| d.contains("unknown node type")), "{e:?}");
    }

    #[test]
    fn lambda_nodes_outside_invoke_function_arns_are_warned_about() {
        let bp = r#"{"nodes":{"charge":{"uses":"lambda","params":{"function":"charge:live"}},
                               "each":{"uses":"map","params":{"over":"$.x","uses":"lambda","params":{"function":"arn:aws:lambda:eu-west-1:1:function:score"}}}},
                     "edges":[{"from":"charge","to":"each"}]}"#;
        let none: Vec<String> = Vec::new();
        let (v, d) = check("pay", bp, &CheckOptions { invoke_arns: Some(&none), ..CheckOptions::default() });
        assert!(v.is_some() && !d.has_errors());
        assert_eq!(d.0.len(), 2, "{d}");
        assert!(d.0.iter().all(|w| w.attribute == Some(path("pay"))));
        let arns = vec![
            "arn:aws:lambda:eu-west-1:1:function:charge:*".to_string(),
            "arn:aws:lambda:eu-west-1:1:function:score".to_string(),
        ];
        let (_, d) = check("pay", bp, &CheckOptions { invoke_arns: Some(&arns), ..CheckOptions::default() });
        assert!(d.is_empty(), "{d}");
    }

    #[test]
    fn subflows_of_blueprints_not_deployed_are_warned_about() {
        let parent = r#"{"nodes":{"child":{"uses":"subflow","params":{"blueprint":"refund"}}}}"#;
        let deployed = BTreeSet::from(["order".to_string()]);
        let (_, d) = check("order", parent, &CheckOptions { deployed: Some(&deployed), ..CheckOptions::default() });
        assert_eq!(d.0.len(), 1);
        assert!(!d.has_errors());
        let deployed = BTreeSet::from(["order".to_string(), "refund".to_string()]);
        let (_, d) = check("order", parent, &CheckOptions { deployed: Some(&deployed), ..CheckOptions::default() });
        assert!(d.is_empty());
    }

    #[test]
    fn a_node_timeout_over_the_workers_is_an_error_naming_both() {
        let bp = r#"{"nodes":{"quick":{"uses":"pass","timeout":"1m"},"long":{"uses":"pass","timeout":"10m"},"plain":{"uses":"pass"}},
                     "edges":[{"from":"quick","to":"long"},{"from":"long","to":"plain"}]}"#;
        let (_, d) = check("jobs", bp, &CheckOptions { worker_timeout: Some(300), ..CheckOptions::default() });
        let found = errors(&d);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, r#"Invalid blueprint "jobs" at node "long""#);
        assert!(found[0].2.contains(r#"timeout "10m", longer than the worker's timeout of 300 s"#), "{found:?}");
        let (_, d) = check("jobs", bp, &CheckOptions { worker_timeout: Some(900), ..CheckOptions::default() });
        assert!(d.is_empty());
    }

    #[test]
    fn function_names_come_from_names_qualified_names_and_arns() {
        assert_eq!(function_name("charge"), "charge");
        assert_eq!(function_name("charge:live"), "charge");
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:1:function:charge"), "charge");
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:1:function:charge:*"), "charge");
    }
}
