//! Pieces every AWS resource shares: tags with `default_tags`, the `timeouts` block, and
//! error diagnostics that read "creating adf_x (name): cause".

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tfplug::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Type, Value,
};

/// The most tags AWS accepts on SQS queues and DynamoDB tables.
pub const MAX_TAGS: usize = 50;

/// The `tags` attribute.
pub fn tags_attribute() -> Attribute {
    Attribute::optional("tags", Type::map(Type::String), "Tags for the AWS resources this creates.")
}

/// The `tags_all` attribute: `tags` merged over the provider's `default_tags`.
pub fn tags_all_attribute() -> Attribute {
    Attribute::computed(
        "tags_all",
        Type::map(Type::String),
        "All tags applied: the provider's `default_tags` merged with `tags` (which win).",
    )
}

/// Checks tag keys and values against AWS limits.
pub fn validate_tags(tags: &BTreeMap<String, String>, path: &AttributePath) -> Diagnostics {
    let mut d = Diagnostics::new();
    if tags.len() > MAX_TAGS - 1 {
        d.error_at(
            path.clone(),
            "Too many tags",
            format!("AWS allows {MAX_TAGS} tags per resource and the provider uses one; got {}.", tags.len()),
        );
    }
    for (k, v) in tags {
        let at = path.key(k);
        if k.is_empty() || k.chars().count() > 128 {
            d.error_at(at.clone(), "Invalid tag key", "Tag keys are 1 to 128 characters.");
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            d.error_at(at.clone(), "Invalid tag key", "Tag keys starting with \"aws:\" are reserved by AWS.");
        }
        if v.chars().count() > 256 {
            d.error_at(at, "Invalid tag value", "Tag values are at most 256 characters.");
        }
    }
    d
}

/// `default_tags` with `tags` merged over them; unknown when `tags` is.
pub fn merge_tags(defaults: &BTreeMap<String, String>, tags: &Value<BTreeMap<String, String>>) -> Dynamic {
    match tags {
        Value::Unknown => Dynamic::Unknown,
        Value::Null => defaults.clone().into_dynamic(),
        Value::Known(t) => {
            let mut all = defaults.clone();
            all.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
            all.into_dynamic()
        }
    }
}

/// The resource's own tags given all tags: those not inherited unchanged from `default_tags`.
pub fn own_tags(all: &BTreeMap<String, String>, defaults: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter().filter(|(k, v)| defaults.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Plans `tags_all`: the provider's `default_tags` merged with the configuration's `tags`.
pub fn plan_tags_all(planned: &mut Dynamic, config: &Dynamic, default_tags: &BTreeMap<String, String>) {
    let tags: Value<BTreeMap<String, String>> = ObjectReader::new(config).get("tags").unwrap_or_default();
    planned.set("tags_all", merge_tags(default_tags, &tags));
}

/// The `tags` value to report for `tags_all` as read from AWS: the prior `tags` while they
/// still explain what AWS shows (so tags equal to a default tag cause no diff), else the tags
/// that are not inherited from `default_tags`.
pub fn read_tags(
    prior: &Dynamic,
    tags_all: &BTreeMap<String, String>,
    default_tags: &BTreeMap<String, String>,
) -> Dynamic {
    let prior_tags: Value<BTreeMap<String, String>> = ObjectReader::new(prior).get("tags").unwrap_or_default();
    if merge_tags(default_tags, &prior_tags) == tags_all.clone().into_dynamic() {
        return prior_tags.into_dynamic();
    }
    let own = own_tags(tags_all, default_tags);
    if own.is_empty() { Dynamic::Null } else { own.into_dynamic() }
}

/// One operation's deadline from the `timeouts` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

impl Op {
    fn key(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    /// "creating", "updating", "deleting".
    pub fn verb(self) -> &'static str {
        match self {
            Op::Create => "creating",
            Op::Update => "updating",
            Op::Delete => "deleting",
        }
    }
}

/// The `timeouts` block, with `default` as every operation's default.
pub fn timeouts_block(default: &str) -> Block {
    let mut b = Block::new("How long each operation may take, as a duration such as `30s`, `10m` or `1h`.");
    for op in [Op::Create, Op::Update, Op::Delete] {
        b = b.attribute(Attribute::optional(
            op.key(),
            Type::String,
            &format!("Time allowed to finish {} (default `{default}`).", op.verb()),
        ));
    }
    b
}

/// Checks the `timeouts` block of `config`.
pub fn validate_timeouts(config: &Dynamic) -> Diagnostics {
    let t = ObjectReader::new(config).object("timeouts");
    let mut d = Diagnostics::new();
    for op in [Op::Create, Op::Update, Op::Delete] {
        if let Some(Value::Known(s)) = d.take(t.get::<Value<String>>(op.key()))
            && let Err(e) = humantime::parse_duration(&s)
        {
            d.error_at(
                t.path().attr(op.key()),
                "Invalid duration",
                format!("{s:?} is not a duration such as \"30s\", \"10m\" or \"1h\": {e}."),
            );
        }
    }
    d
}

/// The deadline for `op` in `state`'s `timeouts` block, else `default`.
pub fn timeout(state: &Dynamic, op: Op, default: Duration) -> Duration {
    match state.get("timeouts").get(op.key()) {
        Dynamic::String(s) => humantime::parse_duration(s).unwrap_or(default),
        _ => default,
    }
}

/// Runs `fut` within `limit`, with a diagnostic naming the timeout to raise.
pub async fn within<T>(
    limit: Duration,
    op: Op,
    type_name: &str,
    name: &str,
    fut: impl Future<Output = Result<T, Diagnostics>>,
) -> Result<T, Diagnostics> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(Diagnostic::error(
            format!("{} {type_name} ({name}): timed out", op.verb()),
            format!(
                "Not finished after {}. Raise timeouts.{} if AWS is slow; the next apply picks up where this stopped.",
                humantime::format_duration(limit),
                op.key()
            ),
        )
        .into())
    })
}

/// "creating adf_x (name): cause" as an error diagnostic.
pub fn failed(verb: &str, type_name: &str, name: &str, cause: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error(format!("{verb} {type_name} ({name}): {cause}"), "").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn resource_tags_win_over_default_tags() {
        let all = merge_tags(&map(&[("env", "dev"), ("team", "a")]), &Value::Known(map(&[("env", "prod")])));
        assert_eq!(all, map(&[("env", "prod"), ("team", "a")]).into_dynamic());
        assert_eq!(merge_tags(&map(&[]), &Value::Unknown), Dynamic::Unknown);
    }

    #[test]
    fn read_tags_keep_the_configured_tags_while_they_explain_aws() {
        let defaults = map(&[("team", "a")]);
        let prior = Dynamic::object([("tags", map(&[("team", "a"), ("env", "dev")]).into_dynamic())]);
        let seen = map(&[("team", "a"), ("env", "dev")]);
        assert_eq!(read_tags(&prior, &seen, &defaults), map(&[("team", "a"), ("env", "dev")]).into_dynamic());
        let drifted = map(&[("team", "a"), ("env", "prod")]);
        assert_eq!(read_tags(&prior, &drifted, &defaults), map(&[("env", "prod")]).into_dynamic());
        assert_eq!(read_tags(&Dynamic::Null, &defaults, &defaults), Dynamic::Null);
    }

    #[test]
    fn own_tags_drop_inherited_defaults_only() {
        let own = own_tags(&map(&[("env", "prod"), ("team", "a")]), &map(&[("env", "dev"), ("team", "a")]));
        assert_eq!(own, map(&[("env", "prod")]));
    }

    #[test]
    fn reserved_and_oversized_tags_are_errors_at_the_key() {
        let long = "v".repeat(300);
        let d = validate_tags(&map(&[("aws:x", "1"), ("ok", &long)]), &AttributePath::root().attr("tags"));
        assert_eq!(d.0.len(), 2);
        assert_eq!(d.0[0].attribute, Some(AttributePath::root().attr("tags").key("aws:x")));
    }

    #[test]
    fn timeouts_parse_and_fall_back_to_the_default() {
        let cfg =
            Dynamic::object([("timeouts", Dynamic::object([("create", "90s".into()), ("delete", "soon".into())]))]);
        assert_eq!(timeout(&cfg, Op::Create, Duration::from_secs(1)), Duration::from_secs(90));
        assert_eq!(timeout(&cfg, Op::Update, Duration::from_secs(1)), Duration::from_secs(1));
        let d = validate_timeouts(&cfg);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].attribute, Some(AttributePath::root().attr("timeouts").attr("delete")));
    }

    #[tokio::test]
    async fn a_slow_operation_times_out_with_a_hint() {
        let r: Result<(), _> = within(Duration::from_millis(10), Op::Create, "adf_x", "n", async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        let d = r.expect_err("timeout");
        assert!(d.0[0].summary.contains("creating adf_x (n)"));
        assert!(d.0[0].detail.contains("timeouts.create"));
    }
}
