//! Unit tests of `adf_stream_topic`'s checks and the Lambda it deploys.
use super::*;

fn errors_at(d: &Diagnostics) -> Vec<String> {
    d.0.iter()
        .filter(|d| d.severity == tfplug::Severity::Error)
        .map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default())
        .collect()
}

#[test]
fn names_follow_bucket_rules() {
    for ok in ["orders", "o", "a-1", &"a".repeat(MAX_NAME)] {
        assert!(validate_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "Orders", "1orders", "orders-", "or_ders", "or.ders", &"a".repeat(MAX_NAME + 1)] {
        assert!(validate_name(bad).is_err(), "{bad}");
    }
    assert!(managed_bucket_name(&"a".repeat(MAX_NAME), "123456789012").len() <= 63);
}

#[test]
fn limits_are_plan_time_errors_on_their_attribute() {
    let c = Dynamic::object([
        ("name", "Orders".into()),
        ("partitions", 1025i64.into_dynamic()),
        ("retention_days", 0i64.into_dynamic()),
        ("auth_type", "OPEN".into()),
        ("prefix", "/x".into()),
        ("log_retention_days", 2i64.into_dynamic()),
    ]);
    assert_eq!(
        errors_at(&StreamTopic::KIND.checks(&c)),
        ["partitions", "retention_days", "auth_type", "log_retention_days", "name", "prefix"]
    );
    let zero = Dynamic::object([("name", "orders".into()), ("partitions", 0i64.into_dynamic())]);
    assert_eq!(errors_at(&StreamTopic::KIND.checks(&zero)), ["partitions"]);
}

#[test]
fn the_lambda_gets_only_its_own_storage() {
    let spec = Spec {
        name: "orders".into(),
        partitions: 4,
        retention_days: 30,
        compression: true,
        bucket: None,
        prefix: String::new(),
        kms_key_arn: None,
        auth_type: "AWS_IAM".into(),
        memory_size: 512,
        timeout: 30,
        log_retention_days: 30,
        lambda_zip: None,
        tags_all: BTreeMap::new(),
    };
    let f = spec.function("b", "arn:aws:dynamodb:us-east-1:1:table/adf-stream-orders", PathBuf::from("/none"));
    assert_eq!(f.config.environment.get("ADF_PARTITIONS").map(String::as_str), Some("4"));
    assert_eq!(f.config.environment.get("ADF_TABLE").map(String::as_str), Some("adf-stream-orders"));
    let statements = f.policy_statements.expect("statements");
    assert!(statements.contains("arn:aws:s3:::b/orders/*"), "{statements}");
    assert!(!statements.contains("\"*\""), "{statements}");
    let storage = spec.storage("b", &crate::aws::Ownership::new("id-1").owner(OWNER_TAG), true);
    assert!(storage.managed);
    assert_eq!(storage.tags.get(OWNER_TAG).map(String::as_str), Some("id-1"));
    assert_eq!(storage.rule.prefix, "orders/");
    assert_eq!(storage.rule.expiration_days, Some(spec.retention_days + crate::aws::s3::EXPIRY_MARGIN_DAYS));
}
