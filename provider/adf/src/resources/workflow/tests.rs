//! Unit tests of `adf_workflow`'s planning, checks and state.
use super::*;

const ORDER: &str =
    r#"{"nodes":{"charge":{"uses":"pass"},"ship":{"uses":"pass"}},"edges":[{"from":"charge","to":"ship"}]}"#;

fn errors_at(d: &Diagnostics) -> Vec<String> {
    d.0.iter()
        .filter(|d| d.severity == tfplug::Severity::Error)
        .map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default())
        .collect()
}

fn tables(visibility: i64, queue: &str) -> Dynamic {
    TablesRef {
        queue_url: "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".into(),
        queue_arn: queue.into(),
        visibility_timeout: visibility,
        contexts: "orders-contexts".into(),
        contexts_arn: "arn:aws:dynamodb:eu-west-1:1:table/orders-contexts".into(),
        statuses: "orders-statuses".into(),
        statuses_arn: "arn:aws:dynamodb:eu-west-1:1:table/orders-statuses".into(),
        kms_key_arn: None,
    }
    .value()
}

fn config(extra: Vec<(&'static str, Dynamic)>) -> Dynamic {
    let mut c = Dynamic::object([
        ("name", "orders".into()),
        ("tables", tables(1800, "arn:aws:sqs:eu-west-1:1:orders-jobs")),
        ("blueprints", Dynamic::object([("order", ORDER.into())])),
    ]);
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

#[test]
fn a_valid_configuration_has_no_diagnostics() {
    let d = Workflow::KIND.checks(&config(vec![]));
    assert!(d.is_empty(), "{d}");
}

#[test]
fn limits_are_plan_time_errors_on_their_attribute() {
    let c = config(vec![
        ("name", "orders.v1".into()),
        ("batch_size", 10_001i64.into_dynamic()),
        ("maximum_concurrency", 1i64.into_dynamic()),
        ("reconcile_every_minutes", 1441i64.into_dynamic()),
        ("memory_size", 64i64.into_dynamic()),
        ("log_retention_days", 2i64.into_dynamic()),
        ("invoke_function_arns", vec!["charge".to_string()].into_dynamic()),
    ]);
    assert_eq!(
        errors_at(&Workflow::KIND.checks(&c)),
        [
            "batch_size",
            "maximum_concurrency",
            "reconcile_every_minutes",
            "memory_size",
            "log_retention_days",
            "name",
            "invoke_function_arns[0]"
        ]
    );
    assert!(validate_name(&"a".repeat(MAX_NAME)).is_ok());
    assert!(validate_name(&"a".repeat(MAX_NAME + 1)).is_err());
}

#[test]
fn the_timeout_must_fit_the_queues_visibility_timeout() {
    let c = config(vec![("tables", tables(60, "arn:aws:sqs:eu-west-1:1:orders-jobs"))]);
    let d = Workflow::KIND.checks(&c);
    assert_eq!(errors_at(&d), ["timeout"]);
    assert!(d.0[0].detail.contains("visibility_timeout_seconds"), "{d}");
    let ok = config(vec![("tables", tables(60, "arn:x")), ("timeout", 60i64.into_dynamic())]);
    assert!(Workflow::KIND.checks(&ok).is_empty());
}

#[test]
fn fifo_queues_take_ten_jobs_a_batch() {
    let c = config(vec![
        ("tables", tables(1800, "arn:aws:sqs:eu-west-1:1:orders-jobs.fifo")),
        ("batch_size", 11i64.into_dynamic()),
    ]);
    assert_eq!(errors_at(&Workflow::KIND.checks(&c)), ["batch_size"]);
}

#[test]
fn unknown_values_pass_validation() {
    let c = Dynamic::object([
        ("name", Dynamic::Unknown),
        ("tables", Dynamic::Unknown),
        ("blueprints", Dynamic::object([("order", Dynamic::Unknown)])),
        ("batch_size", Dynamic::Unknown),
    ]);
    assert!(Workflow::KIND.checks(&c).is_empty());
}

#[test]
fn blueprint_problems_are_errors_at_the_blueprint_naming_it_and_the_node() {
    let bad = r#"{"nodes":{"a":{"uses":"pass"},"b":{"uses":"nope"}},"edges":[{"from":"a","to":"b"},{"from":"b","to":"ghost"}]}"#;
    let c = config(vec![("blueprints", Dynamic::object([("order", ORDER.into()), ("refund", bad.into())]))]);
    let d = Workflow::KIND.checks(&c);
    assert_eq!(errors_at(&d), ["blueprints[\"refund\"]", "blueprints[\"refund\"]"]);
    let text: Vec<String> = d.0.iter().map(|d| format!("{} | {}", d.summary, d.detail)).collect();
    assert!(
        text.iter().any(|t| t.contains("\"refund\"") && t.contains("node \"b\"") && t.contains("unknown node type")),
        "{text:?}"
    );
    assert!(text.iter().any(|t| t.contains("\"ghost\" is not a node")), "{text:?}");
    // With a worker of one's own, the unknown type is a custom node; the bad edge is still an error.
    let custom =
        config(vec![("blueprints", Dynamic::object([("refund", bad.into())])), ("worker_zip", "worker.zip".into())]);
    assert_eq!(errors_at(&Workflow::KIND.checks(&custom)), ["blueprints[\"refund\"]"]);
}

fn spec() -> Spec {
    let mut planned = config(vec![
        ("batch_size", 20i64.into_dynamic()),
        ("reconcile_every_minutes", 5i64.into_dynamic()),
        ("enabled", true.into_dynamic()),
        ("memory_size", 512i64.into_dynamic()),
        ("timeout", 300i64.into_dynamic()),
        ("log_retention_days", 30i64.into_dynamic()),
        ("invoke_function_arns", vec!["arn:aws:lambda:eu-west-1:1:function:charge".to_string()].into_dynamic()),
    ]);
    planned.set("tags_all", Dynamic::Null);
    // As in a real plan: outputs not known until apply.
    planned.set("function_arn", Dynamic::Unknown);
    planned.set("event_source_mapping_uuid", Dynamic::Unknown);
    model::<Spec>(&planned).expect("spec")
}

#[test]
fn the_worker_gets_its_queue_and_tables_and_no_url() {
    let s = spec();
    let f = s.function(PathBuf::from("/none.zip"));
    assert_eq!(f.name, "adf-workflow-orders");
    assert_eq!(f.config.runtime.as_deref(), Some("provided.al2023"));
    assert_eq!(f.config.handler.as_deref(), Some("bootstrap"));
    assert!(f.url.is_none());
    assert_eq!(
        f.config.environment,
        BTreeMap::from([
            ("ADF_CONTEXTS_TABLE".to_string(), "orders-contexts".to_string()),
            ("ADF_QUEUE_URL".to_string(), "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".to_string()),
            ("ADF_STATUSES_TABLE".to_string(), "orders-statuses".to_string()),
        ])
    );
    let statements = f.policy_statements.expect("statements");
    assert!(statements.contains("arn:aws:sqs:eu-west-1:1:orders-jobs"), "{statements}");
    assert!(statements.contains("table/orders-contexts") && statements.contains("table/orders-statuses"));
    assert!(statements.contains("orders-statuses/index/stalled-runs"), "{statements}");
    assert!(statements.contains("function:charge"), "{statements}");
    assert!(!statements.contains('*'), "{statements}");
    let m = s.esm();
    assert_eq!((m.batch_size, m.window(), m.enabled), (20, Some(1), true));
}

#[test]
fn client_config_is_unknown_until_the_tables_are_known() {
    let c = client_config(&tables(60, "arn:q"), "eu-west-1");
    assert_eq!(c.get("statuses_table"), &Dynamic::from("orders-statuses"));
    assert_eq!(c.get("region"), &Dynamic::from("eu-west-1"));
    let mut partial = tables(60, "arn:q");
    partial.set("queue_url", Dynamic::Unknown);
    assert_eq!(client_config(&partial, "eu-west-1"), Dynamic::Unknown);
    assert_eq!(client_config(&Dynamic::Unknown, "eu-west-1"), Dynamic::Unknown);
}

#[test]
fn the_rule_name_fits_eventbridge() {
    assert_eq!(rule_name("orders"), "adf-workflow-orders-reconcile");
    assert!(rule_name(&"n".repeat(MAX_NAME)).len() <= 64);
}
