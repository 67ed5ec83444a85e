//! Unit tests of `adf_workflow_tables`' checks and specs.
use super::*;

fn config(attrs: Vec<(&'static str, Dynamic)>) -> Dynamic {
    Dynamic::object(attrs)
}

fn errors_at(d: &Diagnostics) -> Vec<String> {
    d.0.iter().map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
}

#[test]
fn names_fit_sqs_limits_at_the_maximum_length() {
    for fifo in [false, true] {
        let name = "n".repeat(max_name_len(fifo));
        assert_eq!(Names::new(&name, fifo).dlq.len(), MAX_QUEUE_NAME);
        assert!(
            WorkflowTables::KIND
                .checks(&config(vec![("name", name.as_str().into()), ("fifo", fifo.into_dynamic())]))
                .is_empty()
        );
        let long = format!("{name}x");
        let d =
            WorkflowTables::KIND.checks(&config(vec![("name", long.as_str().into()), ("fifo", fifo.into_dynamic())]));
        assert_eq!(errors_at(&d), vec!["name"]);
    }
}

#[test]
fn bad_values_point_at_their_attributes() {
    let d = WorkflowTables::KIND.checks(&config(vec![
        ("name", "orders.v1".into()),
        ("max_receive_count", 0i64.into_dynamic()),
        ("visibility_timeout_seconds", 43_201i64.into_dynamic()),
        ("message_retention_seconds", 59i64.into_dynamic()),
        ("kms_key_arn", "alias/x".into()),
    ]));
    assert_eq!(
        errors_at(&d),
        vec!["max_receive_count", "visibility_timeout_seconds", "message_retention_seconds", "name", "kms_key_arn"]
    );
}

#[test]
fn capacities_follow_the_billing_mode() {
    let d = WorkflowTables::KIND.checks(&config(vec![("name", "a".into()), ("billing_mode", "PROVISIONED".into())]));
    assert_eq!(errors_at(&d), vec!["read_capacity", "write_capacity"]);
    let d = WorkflowTables::KIND.checks(&config(vec![("name", "a".into()), ("read_capacity", 5i64.into_dynamic())]));
    assert_eq!(errors_at(&d), vec!["read_capacity"]);
    let d = WorkflowTables::KIND.checks(&config(vec![("name", "a".into()), ("billing_mode", "ONDEMAND".into())]));
    assert_eq!(errors_at(&d), vec!["billing_mode"]);
}

#[test]
fn unknown_values_pass_validation() {
    let d =
        WorkflowTables::KIND.checks(&config(vec![("name", Dynamic::Unknown), ("max_receive_count", Dynamic::Unknown)]));
    assert!(d.is_empty(), "{d}");
    // A module passing its variables through, validated before they are known.
    for mode in [Dynamic::Unknown, Dynamic::Null, "PAY_PER_REQUEST".into(), "PROVISIONED".into()] {
        let d = WorkflowTables::KIND.checks(&config(vec![
            ("name", "a".into()),
            ("billing_mode", mode.clone()),
            ("read_capacity", Dynamic::Unknown),
            ("write_capacity", Dynamic::Unknown),
        ]));
        assert!(d.is_empty(), "{mode:?}: {d}");
    }
    let d = WorkflowTables::KIND.checks(&config(vec![
        ("name", "a".into()),
        ("billing_mode", Dynamic::Unknown),
        ("read_capacity", 5i64.into_dynamic()),
    ]));
    assert!(d.is_empty(), "{d}");
}

#[test]
fn drift_on_any_component_is_reported() {
    assert_eq!(drifted(Some(&1), &[1, 2, 1]), Some(2));
    assert_eq!(drifted(Some(&1), &[1, 1]), Some(1));
    assert_eq!(drifted(None, &[3, 4]), Some(3));
}

#[test]
fn the_job_queue_redrives_to_the_dlq_and_tables_carry_the_owner_tag() {
    let planned = config(vec![
        ("name", "orders".into()),
        ("fifo", true.into_dynamic()),
        ("max_receive_count", 3i64.into_dynamic()),
        ("visibility_timeout_seconds", 30i64.into_dynamic()),
        ("message_retention_seconds", 600i64.into_dynamic()),
        ("billing_mode", "PAY_PER_REQUEST".into()),
        ("point_in_time_recovery", false.into_dynamic()),
    ]);
    let spec: Spec = tfplug::from_dynamic(&planned).expect("spec");
    let owner = crate::aws::Ownership::new("id-1").owner(OWNER_TAG);
    let q = spec.queue("arn:aws:sqs:us-east-1:1:orders-jobs-dlq.fifo", &owner);
    assert_eq!(q.name, "orders-jobs.fifo");
    assert!(q.attributes[&QA::RedrivePolicy].contains("\"maxReceiveCount\":3"));
    assert_eq!(q.attributes[&QA::SqsManagedSseEnabled], "true");
    let [contexts, statuses, coordination] = spec.tables(&owner);
    assert_eq!(contexts.schema, CONTEXTS, "the runtime's own key schema");
    assert_eq!(statuses.schema.index.map(|i| i.name), Some(STALLED_INDEX));
    assert_eq!(coordination.schema.ttl, Some("ttl"));
    assert_eq!(coordination.tags.get(OWNER_TAG).map(String::as_str), Some("id-1"));
}
