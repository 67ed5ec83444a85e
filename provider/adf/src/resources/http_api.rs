//! `adf_http_api`: an API Gateway v2 HTTP API in front of functions: routes to Lambda proxy
//! integrations (payload 2.0), `NONE`, `AWS_IAM` or JWT authorization, CORS, and a `$default`
//! stage with auto-deploy, throttling and access logs; each function may be invoked by this API
//! only.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Schema, Type, Value,
};

use super::driver::attributes::{Cors, LOG_RETENTION_DAYS, check_name, cors, cors_value, output, tags_and_id};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::function::name_in_arn;
use crate::aws::http_api::{self, ApiSpec, ApiState, Authorization, Jwt, OWNER_TAG, Route, Throttling};
use crate::aws::{AwsError, Ownership, imported_owner};
use crate::config::AdfData;

/// The methods a route key may start with.
const METHODS: [&str; 8] = ["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Debug, Deserialize)]
struct Model {
    name: String,
    #[serde(default)]
    routes: Option<BTreeMap<String, RouteModel>>,
    cors: Option<Cors>,
    jwt: Option<JwtModel>,
    throttling_burst_limit: i64,
    throttling_rate_limit: i64,
    log_retention_days: i64,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RouteModel {
    function: FunctionRef,
    authorization: String,
}

#[derive(Debug, Deserialize)]
struct FunctionRef {
    arn: String,
}

#[derive(Debug, Deserialize)]
struct JwtModel {
    issuer: String,
    audience: Vec<String>,
}

impl Model {
    fn spec(self) -> ApiSpec {
        let routes = self.routes.unwrap_or_default().into_iter().map(|(key, r)| {
            let authorization = Authorization::parse(&r.authorization).unwrap_or(Authorization::None);
            (key, Route { function_arn: r.function.arn, authorization })
        });
        ApiSpec {
            name: self.name,
            routes: routes.collect(),
            cors: self.cors.map(Cors::into_spec),
            jwt: self.jwt.map(|j| Jwt { issuer: j.issuer, audience: j.audience }),
            #[allow(clippy::cast_precision_loss)] // a rate is at most 10,000
            throttling: Throttling {
                burst_limit: self.throttling_burst_limit,
                rate_limit: self.throttling_rate_limit as f64,
            },
            log_retention_days: self.log_retention_days,
            tags: self.tags_all,
        }
    }
}

fn schema() -> Schema {
    let route = vec![
        Attribute::required(
            "function",
            Type::object([("arn", Type::String), ("name", Type::String)]),
            "The function the route invokes: write `adf_function.x` (its `arn` and `name` are read).",
        ),
        Attribute::with_default(
            "authorization",
            Type::String,
            "`NONE` (default), `AWS_IAM` (callers sign with SigV4 and need `execute-api:Invoke`) or `JWT` (the \
             `jwt` authorizer checks a bearer token).",
            "NONE".into(),
        )
        .check(Check::OneOf(&["NONE", "AWS_IAM", "JWT"])),
    ];
    let jwt = Attribute::nested(
        "jwt",
        "The JWT authorizer for routes with `authorization = \"JWT\"`: tokens from the `Authorization` header.",
        vec![
            Attribute::required("issuer", Type::String, "The issuer URL, such as a Cognito user pool's."),
            Attribute::required("audience", Type::list(Type::String), "Accepted audiences (client ids)."),
        ],
    );
    Schema::new(
        0,
        Block::new(
            "An API Gateway HTTP API in front of functions: one Lambda proxy integration (payload format 2.0) per \
             function, routes with `NONE`, `AWS_IAM` or JWT authorization, CORS, and a `$default` stage with \
             auto-deploy, throttling and JSON access logs. Each function gets a permission that lets this API, and \
             no other, invoke it; it goes when the function's last route goes.",
        )
        .attribute(Attribute::required("name", Type::String, "The API's name: 1 to 128 characters.").requires_replace())
        .attribute(Attribute::nested_map(
            "routes",
            "Routes by route key: `METHOD /path` (path parameters as `{name}`, a greedy `{proxy+}` last) or \
             `$default`.",
            route,
        ))
        .attribute(cors("CORS for browsers calling the API."))
        .attribute(jwt)
        .defaulted(
            "throttling_burst_limit",
            Type::Number,
            "Requests a burst may hold on the stage, 0 to 5000. Default `100`.",
            100i64,
        )
        .check(Check::Range(0, 5000))
        .defaulted(
            "throttling_rate_limit",
            Type::Number,
            "Steady requests per second on the stage, 0 to 10000. Default `50`.",
            50i64,
        )
        .check(Check::Range(0, 10_000))
        .defaulted(
            "log_retention_days",
            Type::Number,
            "Days CloudWatch keeps the access logs (0: forever). Default `14`.",
            14i64,
        )
        .check(LOG_RETENTION_DAYS)
        .attributes(tags_and_id())
        .attribute(output("api_id", "The API id."))
        .attribute(output("api_endpoint", "The endpoint: `https://<api_id>.execute-api.<region>.amazonaws.com`."))
        .attribute(output(
            "execution_arn",
            "`arn:aws:execute-api:<region>:<account>:<api_id>`: IAM policies allowing `execute-api:Invoke` name \
             routes under it, such as `${execution_arn}/*/GET/orders/*`.",
        ))
        .attribute(output("log_group_name", "The access logs' log group, `/aws/apigateway/<name>`."))
        .block("timeouts", Nesting::Single, timeouts_block("5m")),
    )
}

/// Whether `key` is a route key: `$default`, or a method and a path of `/`-separated parts.
fn check_route_key(key: &str) -> Result<(), String> {
    if key == "$default" {
        return Ok(());
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err(format!("{key:?} is not `METHOD /path` or `$default`."));
    };
    if !METHODS.contains(&method) {
        return Err(format!("{key:?}: the method must be one of {METHODS:?}."));
    }
    let greedy_last =
        path.split('/').enumerate().all(|(i, part)| !part.ends_with("+}") || i == path.split('/').count() - 1);
    if !path.starts_with('/') || path.contains(' ') || path.contains("//") || !greedy_last {
        return Err(format!(
            "{key:?}: the path must start with `/`, have no empty part, and a `{{proxy+}}` only last."
        ));
    }
    Ok(())
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_name(&mut d, config, "API", |name| {
        if (1..=128).contains(&name.chars().count()) { Ok(()) } else { Err("1 to 128 characters.".into()) }
    });
    let at = AttributePath::root().attr("routes");
    if let Dynamic::Map(routes) = config.get("routes") {
        for (key, route) in routes {
            if let Err(m) = check_route_key(key) {
                d.error_at(at.clone(), "Invalid route key", m);
            }
            if route.get("authorization") == &Dynamic::from("JWT") && config.get("jwt").is_null() {
                d.error_at(
                    at.clone(),
                    "JWT route without an authorizer",
                    format!("routes[{key:?}] uses JWT: set the `jwt` block (issuer and audience)."),
                );
            }
        }
    }
    if let Some(Value::Known(origins)) =
        d.take(ObjectReader::new(config).object("cors").get::<Value<Vec<String>>>("allow_origins"))
    {
        for o in origins.iter().filter(|o| *o != "*" && !o.starts_with("https://") && !o.starts_with("http://")) {
            d.error_at(
                AttributePath::root().attr("cors").attr("allow_origins"),
                "Invalid origin",
                format!("{o:?}: an origin is `*` or a URL such as `https://example.com`."),
            );
        }
    }
    d
}

/// The state Read reports.
fn observed_state(prior: &Dynamic, a: &ApiState, execution_arn: &str) -> Dynamic {
    let mut v = prior.clone();
    let routes: BTreeMap<String, Dynamic> = a
        .spec
        .routes
        .iter()
        .map(|(key, r)| {
            let name = name_in_arn(&r.function_arn).unwrap_or_default().to_string();
            let function =
                Dynamic::object([("arn", r.function_arn.clone().into_dynamic()), ("name", name.into_dynamic())]);
            (key.clone(), Dynamic::object([("function", function), ("authorization", r.authorization.as_str().into())]))
        })
        .collect();
    let routes = if routes.is_empty() && prior.get("routes").is_null() { Dynamic::Null } else { Dynamic::Map(routes) };
    let jwt = a.spec.jwt.as_ref().map_or(Dynamic::Null, |j| {
        Dynamic::object([("issuer", j.issuer.clone().into_dynamic()), ("audience", j.audience.clone().into_dynamic())])
    });
    #[allow(clippy::cast_possible_truncation)] // rates are whole numbers here
    let rate = a.spec.throttling.rate_limit.round() as i64;
    for (k, val) in [
        ("name", a.spec.name.clone().into_dynamic()),
        ("routes", routes),
        ("cors", a.spec.cors.as_ref().map_or(Dynamic::Null, |c| cors_value(c, prior.get("cors")))),
        ("jwt", jwt),
        ("throttling_burst_limit", a.spec.throttling.burst_limit.into_dynamic()),
        ("throttling_rate_limit", rate.into_dynamic()),
        ("log_retention_days", a.spec.log_retention_days.into_dynamic()),
        ("tags_all", a.spec.tags.clone().into_dynamic()),
    ] {
        v.set(k, val);
    }
    set_outputs(&mut v, a, execution_arn);
    v
}

fn set_outputs(state: &mut Dynamic, a: &ApiState, execution_arn: &str) {
    state.set("api_id", a.id.clone().into_dynamic());
    state.set("api_endpoint", a.endpoint.clone().into_dynamic());
    state.set("execution_arn", execution_arn.into());
    state.set("log_group_name", http_api::log_group(&a.spec.name).into_dynamic());
}

/// A function from API ids to their execution ARNs in this account and region.
async fn execution(data: &AdfData) -> Result<impl Fn(&str) -> String + use<>, Failure> {
    let account = data.account_id().await.map_err(AwsError::Invalid)?;
    let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
    let partition = data.aws.partition.clone();
    Ok(move |id: &str| http_api::execution_arn(&partition, &region, &account, id))
}

fn api_id(state: &Dynamic) -> Option<String> {
    match state.get("api_id") {
        Dynamic::String(id) => Some(id.clone()),
        _ => None,
    }
}

/// The `adf_http_api` resource.
#[derive(Debug, Default)]
pub struct HttpApi;

#[async_trait]
impl Managed for HttpApi {
    const KIND: Kind = Kind::new("adf_http_api", Duration::from_secs(5 * 60), schema, validate_config);

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Model>(&req.planned)?.spec();
        let execution = execution(data).await?;
        let prior = api_id(&req.prior.value);
        let a = http_api::converge(&data.aws, &spec, &owner.owner(OWNER_TAG), prior.as_deref(), &execution).await?;
        let mut state = req.planned.clone();
        set_outputs(&mut state, &a, &execution(&a.id));
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, _name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let Some(id) = api_id(prior) else { return Ok(None) };
        let Some(a) = http_api::observe(&data.aws, &id).await? else { return Ok(None) };
        let execution = execution(data).await?;
        Ok(Some(observed_state(prior, &a, &execution(&a.id))))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let owner = owner.owner(OWNER_TAG);
        match api_id(state) {
            Some(id) => Ok(http_api::remove(&data.aws, &id, &owner).await?),
            // A create that failed half way saved no id: what it made carries the owner tag.
            None => Ok(http_api::remove_named(&data.aws, name, &owner).await?),
        }
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        let named = http_api::named(&data.aws.apigateway, id).await?;
        let (api, tags) = match &named[..] {
            [one] => one.clone(),
            [] => {
                return Err(Diagnostic::error(
                    format!("importing {} ({id})", Self::KIND.type_name),
                    format!("no HTTP API is named {id}"),
                )
                .into());
            }
            _ => {
                return Err(Diagnostic::error(
                    format!("importing {} ({id})", Self::KIND.type_name),
                    format!("{} HTTP APIs are named {id}: rename the others first", named.len()),
                )
                .into());
            }
        };
        let owner = imported_owner(OWNER_TAG, "HTTP API", id, &tags)?;
        Ok(Imported { value: Dynamic::object([("name", id.into()), ("api_id", api.into_dynamic())]), owner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_follow_api_gateway() {
        for ok in ["$default", "GET /", "POST /orders", "GET /orders/{orderId}", "ANY /files/{proxy+}"] {
            assert!(check_route_key(ok).is_ok(), "{ok}");
        }
        for bad in ["GET", "FETCH /orders", "GET orders", "GET /a//b", "GET /{proxy+}/x", "get /"] {
            assert!(check_route_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_input_is_a_diagnostic_at_the_attribute() {
        let route = |auth: &str| {
            Dynamic::object([
                ("function", Dynamic::object([("arn", "arn:aws:lambda:us-east-1:1:function:f".into())])),
                ("authorization", auth.into()),
            ])
        };
        let config = Dynamic::object([
            ("name", "".into()),
            (
                "routes",
                Dynamic::Map([("GET orders".to_string(), route("NONE")), ("GET /".into(), route("JWT"))].into()),
            ),
            ("cors", Dynamic::object([("allow_origins", vec!["example.com".to_string()].into_dynamic())])),
            ("throttling_burst_limit", 9000i64.into_dynamic()),
        ]);
        let d = HttpApi::KIND.checks(&config);
        let at: Vec<String> = d.0.iter().filter_map(|d| d.attribute.as_ref().map(ToString::to_string)).collect();
        assert_eq!(at, ["throttling_burst_limit", "name", "routes", "routes", "cors.allow_origins"], "{d}");
    }
}
