//! `adf_function_alias`: a name for a published version of a function, optionally sending a
//! share of invocations to a second version (weighted routing, for canary deployments).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting, Schema, Type,
};

use super::driver::attributes::output;
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::function::invoke_arn;
use crate::aws::lambda::{self, Alias};
use crate::aws::{AwsError, Ownership};
use crate::config::AdfData;

#[derive(Debug, Deserialize)]
struct Model {
    name: String,
    function: FunctionRef,
    function_version: String,
    description: Option<String>,
    #[serde(default)]
    routing: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
struct FunctionRef {
    name: String,
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "An alias of a function: a stable name (and ARN) for a published version, which callers, event \
             sources and API routes can use while new versions roll out. `routing` sends a share of invocations to \
             a second version.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "The alias, such as `live`: letters, digits, `-` and `_`, not only digits.",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::required(
                "function",
                Type::object([("arn", Type::String), ("name", Type::String)]),
                "The function: write `adf_function.x` (its `name` is read).",
            )
            .requires_replace(),
        )
        .required(
            "function_version",
            Type::String,
            "The version the alias names, such as `adf_function.x.version` (with `publish = true`).",
        )
        .optional("description", Type::String, "What the alias is for.")
        .optional(
            "routing",
            Type::map(Type::Number),
            "A second version and the share of invocations it gets, from 0 to 1: `{ \"4\" = 0.1 }` sends 10% to \
             version 4 and the rest to `function_version`.",
        )
        .attribute(output("arn", "The alias ARN, `<function ARN>:<name>`: invoke or grant on it."))
        .attribute(output("invoke_arn", "The ARN for API Gateway integrations."))
        .attribute(output("id", "Same as `name`."))
        .block("timeouts", Nesting::Single, timeouts_block("5m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let root = AttributePath::root();
    if let Dynamic::String(name) = config.get("name") {
        let valid = (1..=128).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !name.chars().all(|c| c.is_ascii_digit());
        if !valid {
            d.error_at(
                root.attr("name"),
                "Invalid alias name",
                format!("{name:?}: 1 to 128 letters, digits, `-` or `_`, not only digits (that is a version)."),
            );
        }
    }
    if let Dynamic::Map(routing) = config.get("routing") {
        if routing.len() > 1 {
            d.error_at(root.attr("routing"), "One version only", "Lambda routes to at most one additional version.");
        }
        for (version, weight) in routing {
            if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
                d.error_at(
                    root.attr("routing").key(version),
                    "Invalid version",
                    format!("{version:?} is not a published version number."),
                );
            }
            if let Dynamic::Number(w) = weight
                && !w.as_f64().is_some_and(|w| (0.0..=1.0).contains(&w))
            {
                d.error_at(root.attr("routing").key(version), "Invalid weight", format!("{w} is not between 0 and 1."));
            }
            if config.get("function_version") == &Dynamic::String(version.clone()) {
                d.error_at(
                    root.attr("routing").key(version),
                    "Same version",
                    "The additional version must differ from function_version.",
                );
            }
        }
    }
    d
}

/// The state Read reports.
fn observed_state(prior: &Dynamic, a: &Alias) -> Dynamic {
    let mut v = prior.clone();
    let routing = if a.additional_version_weights.is_empty() && prior.get("routing").is_null() {
        Dynamic::Null
    } else {
        Dynamic::Map(a.additional_version_weights.iter().map(|(k, w)| (k.clone(), (*w).into_dynamic())).collect())
    };
    for (k, val) in [
        ("function_version", a.function_version.clone().into_dynamic()),
        ("description", a.description.clone().into_dynamic()),
        ("routing", routing),
    ] {
        v.set(k, val);
    }
    set_outputs(&mut v, a);
    v
}

fn set_outputs(state: &mut Dynamic, a: &Alias) {
    state.set("arn", a.arn.clone().into_dynamic());
    state.set("invoke_arn", invoke_arn(&a.arn).into_dynamic());
}

fn function_of(state: &Dynamic) -> Option<String> {
    match state.get("function").get("name") {
        Dynamic::String(f) => Some(f.clone()),
        _ => None,
    }
}

/// The `adf_function_alias` resource.
#[derive(Debug, Default)]
pub struct FunctionAlias;

#[async_trait]
impl Managed for FunctionAlias {
    const KIND: Kind = Kind::new("adf_function_alias", Duration::from_secs(5 * 60), schema, validate_config);

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, _owner: &Ownership) -> Result<Dynamic, Failure> {
        let m = model::<Model>(&req.planned)?;
        let wanted = Alias {
            function_version: m.function_version,
            description: m.description,
            additional_version_weights: m.routing.unwrap_or_default(),
            arn: String::new(),
        };
        // On create the name is claimed by CreateAlias: one that exists is someone else's.
        let exists = !req.prior.value.is_null()
            && lambda::get_alias(&data.aws.lambda, &m.function.name, &m.name).await?.is_some();
        let a = lambda::put_alias(&data.aws.lambda, &m.function.name, &m.name, &wanted, exists).await?;
        let mut state = req.planned.clone();
        set_outputs(&mut state, &a);
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let Some(function) = function_of(prior) else { return Ok(None) };
        Ok(lambda::get_alias(&data.aws.lambda, &function, name).await?.map(|a| observed_state(prior, &a)))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, _owner: &Ownership) -> Result<(), Failure> {
        match function_of(state) {
            Some(function) => Ok(lambda::delete_alias(&data.aws.lambda, &function, name).await?),
            None => Ok(()),
        }
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        let what = format!("importing {} ({id})", Self::KIND.type_name);
        let Some((function, name)) = id.split_once(':') else {
            return Err(Diagnostic::error(what, "The import id is `<function>:<alias>`, such as `api:live`.").into());
        };
        let Some(a) = lambda::get_alias(&data.aws.lambda, function, name).await? else {
            return Err(AwsError::Invalid(format!("function {function} has no alias {name}")).into());
        };
        let function_arn = a.arn.rsplit_once(':').map_or(String::new(), |(f, _)| f.to_string());
        let prior = Dynamic::object([
            ("name", name.into()),
            ("function", Dynamic::object([("arn", function_arn.into_dynamic()), ("name", function.into())])),
        ]);
        // An alias carries no tags: the importing instance owns it from now on.
        Ok(Imported { value: observed_state(&prior, &a), owner: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_a_diagnostic_at_the_attribute() {
        let config = Dynamic::object([
            ("name", "123".into()),
            ("function_version", "2".into()),
            (
                "routing",
                Dynamic::Map([("2".to_string(), 0.5f64.into_dynamic()), ("x".into(), 1.5f64.into_dynamic())].into()),
            ),
        ]);
        let d = FunctionAlias::KIND.checks(&config);
        let at: Vec<String> = d.0.iter().filter_map(|d| d.attribute.as_ref().map(ToString::to_string)).collect();
        assert_eq!(at.len(), 5, "{at:?}");
        assert_eq!(at[0], "name");
        assert_eq!(at[1], "routing");
        assert!(at.iter().filter(|a| a.starts_with("routing[")).count() == 3, "{at:?}");
    }
}
