//! Unit tests of `adf_function`'s checks.
use super::*;

/// The path of an empty zip file.
fn a_zip() -> String {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("adf-unit-{}.zip", std::process::id()));
        let mut empty = b"PK\x05\x06".to_vec();
        empty.resize(22, 0);
        std::fs::write(&path, empty).expect("write zip");
        path.display().to_string()
    })
    .clone()
}

fn errors_at(d: &Diagnostics) -> Vec<String> {
    d.0.iter().map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
}

#[test]
fn limits_are_plan_time_errors_on_their_attribute() {
    let c = Dynamic::object([
        ("name", "api".into()),
        ("filename", a_zip().into_dynamic()),
        ("memory_size", 64i64.into_dynamic()),
        ("timeout", 901i64.into_dynamic()),
        ("log_retention_days", 2i64.into_dynamic()),
    ]);
    assert_eq!(errors_at(&Function::KIND.checks(&c)), ["memory_size", "timeout", "log_retention_days"]);
}

#[test]
fn exactly_one_code_source() {
    let none = Dynamic::object([("name", "api".into())]);
    assert_eq!(errors_at(&Function::KIND.checks(&none)), [""]);
    let two =
        Dynamic::object([("name", "api".into()), ("filename", a_zip().into_dynamic()), ("image_uri", "x".into())]);
    assert_eq!(errors_at(&Function::KIND.checks(&two)), ["image_uri"]);
}

#[test]
fn url_auth_and_policy_statements_are_checked() {
    let c = Dynamic::object([
        ("name", "api".into()),
        ("filename", a_zip().into_dynamic()),
        ("function_url", Dynamic::object([("auth_type", "OPEN".into())])),
        ("policy_statements", "{}".into()),
    ]);
    assert_eq!(errors_at(&Function::KIND.checks(&c)), ["function_url.auth_type", "policy_statements"]);
}

#[test]
fn invoke_arns_follow_the_function_arn() {
    assert_eq!(
        invoke_arn("arn:aws:lambda:eu-west-1:1:function:api"),
        "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:api/invocations"
    );
}

#[test]
fn a_public_url_is_a_warning_naming_it() {
    let planned = |auth: &str| {
        Dynamic::object([("name", "api".into()), ("function_url", Dynamic::object([("auth_type", auth.into())]))])
    };
    let warn = |p: &Dynamic, prior: &Dynamic| {
        let at = AttributePath::root().attr("function_url").attr("auth_type");
        public_url_warning(p, p.get("function_url").get("auth_type"), prior.get("function_url").get("url"), at)
    };
    assert!(warn(&planned("AWS_IAM"), &Dynamic::Null).is_none());
    let new = warn(&planned("NONE"), &Dynamic::Null).expect("a warning");
    assert_eq!(new.attribute.as_ref().map(ToString::to_string).as_deref(), Some("function_url.auth_type"));
    assert!(new.detail.contains("api at its Function URL (known after apply)"), "{}", new.detail);
    let prior =
        Dynamic::object([("function_url", Dynamic::object([("url", "https://abc.lambda-url.on.aws/".into())]))]);
    let known = warn(&planned("NONE"), &prior).expect("a warning");
    assert!(known.detail.contains("https://abc.lambda-url.on.aws/"), "{}", known.detail);
}

#[test]
fn a_filename_that_is_missing_or_no_zip_is_an_error_on_it() {
    let with = |f: &str| Dynamic::object([("name", "api".into()), ("filename", f.into())]);
    assert!(errors_at(&Function::KIND.checks(&with(&a_zip()))).is_empty());
    let missing = Function::KIND.checks(&with("/nonexistent/f.zip"));
    assert_eq!(errors_at(&missing), ["filename"]);
    assert!(missing.0[0].detail.contains("/nonexistent/f.zip does not exist"), "{:?}", missing.0[0].detail);
    let text = std::env::temp_dir().join(format!("adf-unit-{}.txt", std::process::id()));
    std::fs::write(&text, "not a zip").expect("write");
    let not_zip = Function::KIND.checks(&with(&text.display().to_string()));
    assert_eq!(errors_at(&not_zip), ["filename"]);
    assert!(not_zip.0[0].detail.contains("is not a zip file"), "{:?}", not_zip.0[0].detail);
}

#[test]
fn layers_storage_tracing_and_image_config_are_checked_at_plan_time() {
    let layer = "arn:aws:lambda:us-east-1:123456789012:layer:deps:3";
    let c = Dynamic::object([
        ("name", "api".into()),
        ("filename", a_zip().into_dynamic()),
        ("layers", vec![layer.to_string(), "deps".into()].into_dynamic()),
        ("ephemeral_storage", 256i64.into_dynamic()),
        ("tracing", "On".into()),
        ("image_config", Dynamic::object([("command", vec!["app.handler".to_string()].into_dynamic())])),
    ]);
    assert_eq!(errors_at(&Function::KIND.checks(&c)), ["ephemeral_storage", "tracing", "layers[1]", "image_config"]);
    let six = Dynamic::object([
        ("name", "api".into()),
        ("image_uri", "1.dkr.ecr.us-east-1.amazonaws.com/api:v1".into()),
        ("layers", vec![layer.to_string(); 6].into_dynamic()),
        ("image_config", Dynamic::object([("command", vec!["app.handler".to_string()].into_dynamic())])),
    ]);
    assert_eq!(errors_at(&Function::KIND.checks(&six)), ["layers"]);
}

#[test]
fn tracing_and_a_vpc_add_their_statements_to_the_managed_role() {
    let mut config = Config::bootstrap(128, 3, BTreeMap::new());
    assert!(config.role_statements().is_empty());
    config.tracing = "Active".into();
    config.vpc = Some(Vpc { subnet_ids: vec!["subnet-1".into()], security_group_ids: vec!["sg-1".into()] });
    let actions: Vec<String> = config
        .role_statements()
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert!(actions.contains(&"xray:PutTraceSegments".to_string()), "{actions:?}");
    assert!(actions.contains(&"ec2:CreateNetworkInterface".to_string()), "{actions:?}");
    assert!(actions.iter().all(|a| a.starts_with("xray:") || a.starts_with("ec2:")), "{actions:?}");
}

#[test]
fn destinations_are_checked_and_granted_on_exactly_their_arn() {
    let c = Dynamic::object([
        ("name", "api".into()),
        ("filename", a_zip().into_dynamic()),
        (
            "async_invoke",
            Dynamic::object([
                ("maximum_retry_attempts", 3i64.into_dynamic()),
                ("on_failure", "arn:aws:s3:::bucket".into()),
            ]),
        ),
    ]);
    assert_eq!(
        errors_at(&Function::KIND.checks(&c)),
        ["async_invoke.maximum_retry_attempts", "async_invoke.on_failure"]
    );
    let a = AsyncInvoke {
        on_success: Some("arn:aws:events:us-east-1:1:event-bus/default".into()),
        on_failure: Some("arn:aws:sqs:us-east-1:1:failed".into()),
        ..AsyncInvoke::default()
    };
    let s = a.role_statements();
    assert_eq!(s[0]["Action"], serde_json::json!(["events:PutEvents"]));
    assert_eq!(s[1]["Action"], serde_json::json!(["sqs:SendMessage"]));
    assert_eq!(s[1]["Resource"], serde_json::json!(["arn:aws:sqs:us-east-1:1:failed"]));
}

#[test]
fn log_levels_need_json_and_a_dead_letter_target_is_a_queue_or_topic() {
    let with = |logging: Dynamic, dlq: &str| {
        Dynamic::object([
            ("name", "api".into()),
            ("filename", a_zip().into_dynamic()),
            ("logging", logging),
            ("dead_letter_target", dlq.into()),
        ])
    };
    let text = Dynamic::object([("application_log_level", "DEBUG".into()), ("system_log_level", "WARN".into())]);
    assert_eq!(
        errors_at(&Function::KIND.checks(&with(text, "arn:aws:lambda:eu-west-1:1:function:f"))),
        ["dead_letter_target", "logging.application_log_level", "logging.system_log_level"]
    );
    let json = Dynamic::object([("log_format", "JSON".into()), ("application_log_level", "DEBUG".into())]);
    assert!(errors_at(&Function::KIND.checks(&with(json, "arn:aws:sns:eu-west-1:1:failed"))).is_empty());
    let unknown = Dynamic::object([("log_format", Dynamic::Unknown), ("system_log_level", "WARN".into())]);
    assert!(errors_at(&Function::KIND.checks(&with(unknown, "arn:aws:sqs:eu-west-1:1:q"))).is_empty());
}

#[test]
fn lambdas_default_logging_reads_as_the_configuration_wrote_it() {
    let json =
        Logging { format: "JSON".into(), application_level: Some("DEBUG".into()), system_level: Some("INFO".into()) };
    // Lambda's default for what the configuration left out reads as left out...
    assert_eq!(logging_value(&Logging::default(), &Dynamic::Null), Dynamic::Null);
    let prior = Dynamic::object([("log_format", "JSON".into()), ("application_log_level", "DEBUG".into())]);
    assert_eq!(logging_value(&json, &prior).get("system_log_level"), &Dynamic::Null);
    // ...a level the configuration names is read back, and a change behind Terraform's back shows.
    let named = Dynamic::object([("log_format", "JSON".into()), ("system_log_level", "INFO".into())]);
    assert_eq!(logging_value(&json, &named).get("system_log_level"), &Dynamic::from("INFO"));
    assert_eq!(logging_value(&Logging::default(), &prior).get("log_format"), &Dynamic::from("Text"));
    // JSON without levels is sent as Lambda reports it, so an apply does not update it again.
    let bare = Logging { format: "JSON".into(), application_level: None, system_level: None };
    assert_eq!(bare.as_lambda_reports().application_level.as_deref(), Some(DEFAULT_LOG_LEVEL));
}
