//! `adf_cloudformation_stack`: a CloudFormation stack from a template body or URL, with
//! parameters, capabilities and tags. Create and update wait for the stack to settle; a
//! failure names the resources that failed and why; read detects drift, and drifted resources
//! show in the plan.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::{check_name, output, tags_and_id};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::cloudformation::{self, StackSpec, StackState, Template};
use crate::aws::{AwsError, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;

/// Tag marking the stack this resource made; its value is the instance's owner id.
/// CloudFormation passes it on to what the stack makes.
const OWNER_TAG: &str = "adf:cloudformation-stack";
/// The capabilities a stack can be given.
const CAPABILITIES: [&str; 3] = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"];
/// The largest template body CloudFormation takes inline, in bytes.
const MAX_TEMPLATE_BODY: usize = 51_200;
/// What CloudFormation shows for a NoEcho parameter's value.
const NO_ECHO: &str = "****";

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    template_body: Option<String>,
    template_url: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    #[serde(default)]
    capabilities: Vec<String>,
    timeout_in_minutes: Option<i32>,
    detect_drift: bool,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn stack(&self, owner: &Owner) -> StackSpec {
        let template = match (&self.template_body, &self.template_url) {
            (Some(body), _) => Template::Body(body.clone()),
            (None, url) => Template::Url(url.clone().unwrap_or_default()),
        };
        StackSpec {
            name: self.name.clone(),
            template,
            parameters: self.parameters.clone(),
            capabilities: self.capabilities.clone(),
            timeout_in_minutes: self.timeout_in_minutes,
            tags: owner.tagged(&self.tags_all),
        }
    }
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "A CloudFormation stack from a template body or URL. Create and update wait until the stack settles; \
             when it fails, the error names each resource that failed and CloudFormation's reason. Each refresh \
             runs drift detection: resources changed outside the stack show in the plan under \
             `drifted_resources`.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Stack name: letters, digits and `-`, starting with a letter, at most 128 characters. Changing it \
                 replaces the stack.",
            )
            .requires_replace(),
        )
        .optional(
            "template_body",
            Type::String,
            "The template, JSON or YAML, up to 51,200 bytes (`file(\"stack.yaml\")` or `jsonencode({...})`). A \
             JSON template's syntax and parameters are checked at plan time. Set this or `template_url`.",
        )
        .optional(
            "template_url",
            Type::String,
            "HTTPS URL of the template in S3, for templates over 51,200 bytes. Set this or `template_body`.",
        )
        .optional(
            "parameters",
            Type::map(Type::String),
            "Parameter values by name. Parameters left out take the template's defaults.",
        )
        .optional(
            "capabilities",
            Type::set(Type::String),
            "Capabilities the template needs: `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM` (IAM resources) or \
             `CAPABILITY_AUTO_EXPAND` (macros, nested stacks).",
        )
        .optional(
            "timeout_in_minutes",
            Type::Number,
            "Minutes CloudFormation may take to create the stack before it rolls back. It applies to the \
             creation only.",
        )
        .check(Check::Range(1, 43_200))
        .defaulted(
            "detect_drift",
            Type::Bool,
            "Run drift detection on each refresh (default `true`). Set `false` for stacks too large to check \
             each plan.",
            true,
        )
        .attributes(tags_and_id())
        .attribute(output("arn", "The stack id, an ARN."))
        .computed("outputs", Type::map(Type::String), "The stack's outputs by name.")
        .computed(
            "drifted_resources",
            Type::map(Type::String),
            "Resources that differ from the template, by logical id: `DELETED`, or `MODIFIED:` and the property \
             paths with their expected and actual values. While any are listed the plan shows an update; \
             CloudFormation cannot put them back, so fix them by hand (or change the template so an update \
             replaces them) and the next refresh clears them.",
        )
        .block("timeouts", Nesting::Single, timeouts_block("30m")),
    )
}

/// Checks a stack name.
fn validate_stack_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !(1..=128).contains(&name.len())
        || !starts_with_letter
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("{name:?} must be 1 to 128 letters, digits and `-`, starting with a letter."));
    }
    Ok(())
}

/// The parameters a JSON template declares: name and whether it has a default. None when the
/// body is not JSON (YAML is left to CloudFormation).
fn declared_parameters(d: &mut Diagnostics, body: &str, at: &AttributePath) -> Option<BTreeMap<String, bool>> {
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let template: serde_json::Value = match serde_json::from_str(body) {
        Ok(t) => t,
        Err(e) => {
            d.error_at(at.clone(), "Invalid JSON template", format!("The template is not valid JSON: {e}."));
            return None;
        }
    };
    if template.get("Resources").and_then(|r| r.as_object()).is_none_or(|r| r.is_empty()) {
        d.error_at(
            at.clone(),
            "Template without resources",
            "A template needs a `Resources` section with at least one resource.",
        );
    }
    let declared = template.get("Parameters").and_then(|p| p.as_object());
    Some(declared.into_iter().flatten().map(|(k, v)| (k.clone(), v.get("Default").is_some())).collect())
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let root = AttributePath::root();
    check_name(&mut d, config, "stack", validate_stack_name);
    let r = ObjectReader::new(config);
    let body = d.take(r.get::<Value<String>>("template_body")).unwrap_or_default();
    let url = d.take(r.get::<Value<String>>("template_url")).unwrap_or_default();
    match (&body, &url) {
        (Value::Null, Value::Null) => d.error_at(
            root.attr("template_body"),
            "Missing template",
            "Set template_body (the template itself) or template_url (where it is in S3).",
        ),
        (Value::Null, _) | (_, Value::Null) => {}
        _ => d.error_at(
            root.attr("template_url"),
            "Conflicting template",
            "Set template_body or template_url, not both.",
        ),
    }
    if let Value::Known(u) = &url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        d.error_at(
            root.attr("template_url"),
            "Invalid template URL",
            format!("{u:?} is not an HTTPS URL of an S3 object."),
        );
    }
    let mut declared = None;
    if let Value::Known(b) = &body {
        let at = root.attr("template_body");
        if b.len() > MAX_TEMPLATE_BODY {
            d.error_at(
                at.clone(),
                "Template too large",
                format!(
                    "The template is {} bytes; CloudFormation takes at most {MAX_TEMPLATE_BODY} inline. Upload it to \
                     S3 and set template_url.",
                    b.len()
                ),
            );
        }
        declared = declared_parameters(&mut d, b, &at);
    }
    let parameters = d.take(r.get::<Value<BTreeMap<String, String>>>("parameters")).unwrap_or_default();
    if let (Some(declared), Value::Known(_) | Value::Null) = (&declared, &parameters) {
        let given = parameters.clone().into_known().unwrap_or_default();
        let names = declared.keys().cloned().collect::<Vec<_>>().join(", ");
        for key in given.keys().filter(|k| !declared.contains_key(*k)) {
            d.error_at(
                root.attr("parameters").key(key),
                "Unknown parameter",
                format!("The template declares no parameter {key:?}; it declares: {names}."),
            );
        }
        for (key, _) in declared.iter().filter(|(k, has_default)| !**has_default && !given.contains_key(*k)) {
            d.error_at(
                root.attr("parameters"),
                "Missing parameter",
                format!("The template's parameter {key:?} has no default: set parameters[{key:?}]."),
            );
        }
    }
    if let Some(Value::Known(caps)) = d.take(r.get::<Value<Vec<String>>>("capabilities")) {
        for c in caps.iter().filter(|c| !CAPABILITIES.contains(&c.as_str())) {
            d.error_at(
                root.attr("capabilities"),
                "Invalid capability",
                format!("{c:?} is not a capability; expected one of {}.", CAPABILITIES.join(", ")),
            );
        }
    }
    d
}

/// Whether two templates are the same: equal text, or equal JSON.
fn same_template(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The `parameters` value to report: the stack's values of the parameters `prior` names (the
/// rest take their defaults), NoEcho ones as `prior` has them. Null stays null.
fn observed_parameters(prior: &Dynamic, actual: &BTreeMap<String, String>) -> Dynamic {
    let Dynamic::Map(prior) = prior else { return prior.clone() };
    let observed: BTreeMap<String, Dynamic> = prior
        .iter()
        .filter_map(|(k, was)| match actual.get(k)?.as_str() {
            NO_ECHO => Some((k.clone(), was.clone())),
            now => Some((k.clone(), now.into())),
        })
        .collect();
    Dynamic::Map(observed)
}

/// What read and import report of stack `s` (named `name`), built over `prior`: what it is
/// now, its template when `prior` has a body (`template`, when already read), and its drift
/// when `prior` asks for detection.
async fn observed(
    data: &AdfData,
    name: &str,
    s: &StackState,
    prior: &Dynamic,
    template: Option<String>,
) -> Result<Dynamic, AwsError> {
    let cf = &data.aws.cloudformation;
    let mut v = prior.clone();
    v.set("arn", s.id.clone().into_dynamic());
    v.set("outputs", s.outputs.clone().into_dynamic());
    v.set("tags_all", untagged(OWNER_TAG, &s.tags).into_dynamic());
    v.set("parameters", observed_parameters(prior.get("parameters"), &s.parameters));
    if let Dynamic::String(body) = prior.get("template_body") {
        let now = match template {
            Some(now) => now,
            None => cloudformation::template(cf, name).await?,
        };
        if !same_template(body, &now) {
            v.set("template_body", now.into_dynamic());
        }
    }
    // A stack that is changing cannot be checked; its last findings stand meanwhile.
    if prior.get("detect_drift") != &Dynamic::Bool(false) && !s.is_changing() {
        v.set("drifted_resources", cloudformation::drift(cf, name).await?.into_dynamic());
    }
    Ok(v)
}

/// The `adf_cloudformation_stack` resource.
#[derive(Debug, Default)]
pub struct CloudFormationStack;

#[async_trait]
impl Managed for CloudFormationStack {
    const KIND: Kind = Kind::new("adf_cloudformation_stack", Duration::from_secs(30 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        // Drifted resources: the plan shows an update, whose apply looks again.
        let drifted = matches!(plan.planned.get("drifted_resources"), Dynamic::Map(m) if !m.is_empty());
        if !req.prior.is_null() && drifted && plan.planned.get("detect_drift") != &Dynamic::Bool(false) {
            plan.planned.set("drifted_resources", Dynamic::Unknown);
        }
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let owner = owner.owner(OWNER_TAG);
        let cf = &data.aws.cloudformation;
        let s = cloudformation::ensure(cf, &spec.stack(&owner), &owner).await?;
        let mut state = req.planned.clone();
        state.set("arn", s.id.into_dynamic());
        state.set("outputs", s.outputs.into_dynamic());
        if state.get("drifted_resources") == &Dynamic::Unknown {
            // A new stack matches its template; an updated one is checked again.
            let drifted = if spec.detect_drift && !req.prior.value.is_null() {
                cloudformation::drift(cf, &spec.name).await?
            } else {
                BTreeMap::new()
            };
            state.set("drifted_resources", drifted.into_dynamic());
        }
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        match cloudformation::find(&data.aws.cloudformation, name).await? {
            // A stack whose creation rolled back holds nothing: the next apply makes it again.
            Some(s) if s.is_rolled_back() => Ok(None),
            Some(s) => Ok(Some(observed(data, name, &s, prior, None).await?)),
            None => Ok(None),
        }
    }

    async fn remove(&self, data: &AdfData, name: &str, _state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        Ok(cloudformation::delete(&data.aws.cloudformation, name, &owner.owner(OWNER_TAG)).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_stack_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        let cf = &data.aws.cloudformation;
        let Some(s) = cloudformation::find(cf, id).await?.filter(|s| !s.is_rolled_back()) else {
            return Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no CloudFormation stack named {id} exists"),
            )
            .into());
        };
        let owner = imported_owner(OWNER_TAG, "CloudFormation stack", id, &s.tags)?;
        let capabilities =
            if s.capabilities.is_empty() { Dynamic::Null } else { s.capabilities.clone().into_dynamic() };
        let parameters = if s.parameters.is_empty() { Dynamic::Null } else { s.parameters.clone().into_dynamic() };
        let template = cloudformation::template(cf, id).await?;
        let prior = Dynamic::object([
            ("name", id.into()),
            ("template_body", template.clone().into_dynamic()),
            ("template_url", Dynamic::Null),
            ("parameters", parameters),
            ("capabilities", capabilities),
            ("timeout_in_minutes", s.timeout_in_minutes.map_or(Dynamic::Null, |t| i64::from(t).into_dynamic())),
            ("detect_drift", Dynamic::Bool(true)),
        ]);
        Ok(Imported { value: observed(data, id, &s, &prior, Some(template)).await?, owner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{
        "Parameters": {"Visibility": {"Type": "Number", "Default": "30"}, "Env": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}
    }"#;

    fn config(body: Option<&str>, parameters: &[(&str, &str)]) -> Dynamic {
        let parameters: BTreeMap<String, String> =
            parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Dynamic::object([
            ("name", "orders".into()),
            ("template_body", body.map_or(Dynamic::Null, Dynamic::from)),
            ("template_url", Dynamic::Null),
            ("parameters", parameters.into_dynamic()),
            ("capabilities", Dynamic::Null),
        ])
    }

    fn errors_at(d: &Diagnostics) -> Vec<AttributePath> {
        d.0.iter().filter_map(|d| d.attribute.clone()).collect()
    }

    #[test]
    fn stack_names_follow_cloudformation() {
        for ok in ["s", "orders-1", &format!("a{}", "b".repeat(127))] {
            assert!(validate_stack_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1orders", "or_ders", "or ders", &"a".repeat(129)] {
            assert!(validate_stack_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_json_template_and_its_parameters_are_checked_at_plan_time() {
        let root = AttributePath::root();
        let check = |c: &Dynamic| CloudFormationStack::KIND.checks(c);
        assert!(check(&config(Some(TEMPLATE), &[("Env", "prod")])).0.is_empty());
        assert_eq!(errors_at(&check(&config(Some(TEMPLATE), &[]))), [root.attr("parameters")]);
        assert_eq!(
            errors_at(&check(&config(Some(TEMPLATE), &[("Env", "prod"), ("Colour", "red")]))),
            [root.attr("parameters").key("Colour")]
        );
        assert_eq!(errors_at(&check(&config(Some("{\"Resources\": "), &[]))), [root.attr("template_body")]);
        assert_eq!(errors_at(&check(&config(Some("{\"Resources\": {}}"), &[]))), [root.attr("template_body")]);
        // YAML is left to CloudFormation.
        assert!(check(&config(Some("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n"), &[])).0.is_empty());
    }

    #[test]
    fn one_template_source_and_known_capabilities() {
        let root = AttributePath::root();
        let check = |c: &Dynamic| CloudFormationStack::KIND.checks(c);
        assert_eq!(errors_at(&check(&config(None, &[]))), [root.attr("template_body")]);
        let mut both = config(Some(TEMPLATE), &[("Env", "prod")]);
        both.set("template_url", "https://s3.amazonaws.com/b/t.json".into());
        assert_eq!(errors_at(&check(&both)), [root.attr("template_url")]);
        let mut caps = config(Some(TEMPLATE), &[("Env", "prod")]);
        caps.set("capabilities", vec!["CAPABILITY_IAM".to_string(), "IAM".to_string()].into_dynamic());
        assert_eq!(errors_at(&check(&caps)), [root.attr("capabilities")]);
        let mut big =
            config(Some(&format!("{{\"Resources\": {{\"A\": {{\"Type\": \"{}\"}}}}}}", "x".repeat(60_000))), &[]);
        big.set("parameters", Dynamic::Null);
        assert_eq!(errors_at(&check(&big)), [root.attr("template_body")]);
    }

    #[test]
    fn templates_compare_as_json_and_parameters_as_configured() {
        assert!(same_template("{\"a\": 1}", "{ \"a\" : 1 }"));
        assert!(!same_template("{\"a\": 1}", "{\"a\": 2}"));
        assert!(same_template("a: 1\n", "a: 1\n"));
        let actual = BTreeMap::from([
            ("Env".to_string(), "staging".to_string()),
            ("Secret".to_string(), NO_ECHO.to_string()),
            ("Visibility".to_string(), "30".to_string()),
        ]);
        let prior =
            BTreeMap::from([("Env".to_string(), "prod".to_string()), ("Secret".to_string(), "s3cr3t".to_string())]);
        assert_eq!(
            observed_parameters(&prior.into_dynamic(), &actual),
            BTreeMap::from([("Env".to_string(), "staging".to_string()), ("Secret".to_string(), "s3cr3t".to_string()),])
                .into_dynamic()
        );
        assert_eq!(observed_parameters(&Dynamic::Null, &actual), Dynamic::Null);
    }
}
