//! API Gateway v2 HTTP APIs in front of Lambda functions: the API (tagged with its owner), one
//! Lambda proxy integration (payload 2.0) per function, the routes, an optional JWT
//! authorizer, the `$default` stage (auto-deploy, throttling, JSON access logs to a managed
//! log group), and `lambda:InvokeFunction` for each function scoped to the API's execution ARN,
//! taken back when its last route goes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AccessLogSettings, AuthorizationType, AuthorizerType, Cors, IntegrationType, JwtConfiguration, ProtocolType,
    RouteSettings,
};

use super::error::{AwsError, Sent, Target, call};
use super::lambda::CorsSpec;
use super::{AwsClients, Owner, TagChanges, lambda, logs};

/// Tag marking the API this layer made; its value is the owning instance's id.
pub const OWNER_TAG: &str = "adf:http-api";
/// The one stage, deployed on every change.
pub const STAGE: &str = "$default";
/// The JWT authorizer's name.
const JWT_AUTHORIZER: &str = "jwt";
/// The access log line: JSON with what an operator looks for first.
const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength","integrationError":"$context.integrationErrorMessage"}"#;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// Anyone.
    None,
    /// Callers sign with SigV4 (`execute-api:Invoke`).
    AwsIam,
    /// A bearer token the API's JWT authorizer accepts.
    Jwt,
}

impl Authorization {
    /// As the HCL and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Authorization::None => "NONE",
            Authorization::AwsIam => "AWS_IAM",
            Authorization::Jwt => "JWT",
        }
    }

    /// From the HCL or the API; None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [Authorization::None, Authorization::AwsIam, Authorization::Jwt].into_iter().find(|a| a.as_str() == s)
    }
}

/// One route: a `METHOD /path` (or `$default`) to a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The function's ARN.
    pub function_arn: String,
    /// Who may call it.
    pub authorization: Authorization,
}

/// The JWT authorizer: tokens from `Authorization: Bearer`, checked against the issuer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jwt {
    /// The issuer URL, such as `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    pub issuer: String,
    /// Accepted audiences (client ids).
    pub audience: Vec<String>,
}

/// The `$default` stage's throttling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttling {
    /// Requests a burst may hold.
    pub burst_limit: i64,
    /// Steady requests per second.
    pub rate_limit: f64,
}

/// What a plan asks of an HTTP API (and what one is, read back).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiSpec {
    /// The API's name.
    pub name: String,
    /// Routes by route key.
    pub routes: BTreeMap<String, Route>,
    /// CORS, when browsers call it.
    pub cors: Option<CorsSpec>,
    /// The JWT authorizer, when a route uses one.
    pub jwt: Option<Jwt>,
    /// The stage's throttling.
    pub throttling: Throttling,
    /// Days the access logs are kept (0: forever).
    pub log_retention_days: i64,
    /// Tags, without the owner tag.
    pub tags: BTreeMap<String, String>,
}

/// An API as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiState {
    /// The API id.
    pub id: String,
    /// `https://<id>.execute-api.<region>.amazonaws.com`.
    pub endpoint: String,
    /// Its configuration, as AWS has it.
    pub spec: ApiSpec,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
    /// The JWT authorizer's id, when a route uses it.
    pub authorizer_id: Option<String>,
}

/// The access log group of API `name`.
pub fn log_group(name: &str) -> String {
    format!("/aws/apigateway/{name}")
}

/// The execution ARN: `arn:<partition>:execute-api:<region>:<account>:<id>`; permissions and
/// IAM policies name routes under it.
pub fn execution_arn(partition: &str, region: &str, account: &str, id: &str) -> String {
    format!("arn:{partition}:execute-api:{region}:{account}:{id}")
}

/// The id of the statement on a function's policy that lets API `id` invoke it.
fn statement_id(id: &str) -> String {
    format!("adf-http-api-{id}")
}

/// The function name in a function ARN, else the ARN as it is.
fn function_name(arn: &str) -> &str {
    super::function::name_in_arn(arn).unwrap_or(arn)
}

fn cors(c: &CorsSpec) -> Cors {
    Cors::builder()
        .set_allow_origins(Some(c.allow_origins.clone()))
        .set_allow_methods(Some(c.allow_methods.clone()))
        .set_allow_headers(Some(c.allow_headers.clone()))
        .set_max_age(c.max_age.and_then(|m| i32::try_from(m).ok()))
        .build()
}

fn cors_spec(c: Cors) -> CorsSpec {
    CorsSpec {
        allow_origins: c.allow_origins.unwrap_or_default(),
        allow_methods: c.allow_methods.unwrap_or_default(),
        allow_headers: c.allow_headers.unwrap_or_default(),
        max_age: c.max_age.map(i64::from),
    }
}

/// The API with id `id`; None when it is gone.
async fn get(
    api: &Client,
    id: &str,
) -> Result<Option<aws_sdk_apigatewayv2::operation::get_api::GetApiOutput>, AwsError> {
    match api.get_api().api_id(id).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
        Err(e) => Err(call("GetApi", Target::api(id), &e)),
    }
}

/// Every API named `name`: its id and tags.
pub async fn named(api: &Client, name: &str) -> Result<Vec<(String, BTreeMap<String, String>)>, AwsError> {
    let mut token = None;
    let mut found = Vec::new();
    loop {
        let out = api.get_apis().set_next_token(token).send().await.at(Target::api(name))?;
        for a in out.items.unwrap_or_default() {
            if let (Some(id), Some(true)) = (a.api_id, a.name.as_deref().map(|n| n == name)) {
                found.push((id, a.tags.unwrap_or_default().into_iter().collect()));
            }
        }
        token = out.next_token;
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// The id of the API named `name` that `owner` owns; else, when one of that name belongs to
/// someone else, the error saying so; else None.
async fn find(api: &Client, name: &str, owner: &Owner) -> Result<Option<String>, AwsError> {
    let named = named(api, name).await?;
    if let Some((id, _)) = named.iter().find(|(_, tags)| owner.owns(tags)) {
        return Ok(Some(id.clone()));
    }
    match named.first() {
        Some((_, tags)) => owner.check("HTTP API", name, tags).map(|()| None),
        None => Ok(None),
    }
}

/// Reads API `id`: routes, integrations, authorizer, stage and tags; None when it is gone.
pub async fn observe(aws: &AwsClients, id: &str) -> Result<Option<ApiState>, AwsError> {
    let api = &aws.apigateway;
    let Some(a) = get(api, id).await? else { return Ok(None) };
    let name = a.name.clone().unwrap_or_default();
    let integrations: BTreeMap<String, String> = api
        .get_integrations()
        .api_id(id)
        .send()
        .await
        .at(Target::api(&name))?
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| Some((i.integration_id?, i.integration_uri?)))
        .collect();
    let mut routes = BTreeMap::new();
    let mut authorizer = None;
    for r in api.get_routes().api_id(id).send().await.at(Target::api(&name))?.items.unwrap_or_default() {
        let target = r.target.as_deref().and_then(|t| t.strip_prefix("integrations/"));
        let Some(function_arn) = target.and_then(|t| integrations.get(t)) else { continue };
        let authorization =
            r.authorization_type.as_ref().and_then(|t| Authorization::parse(t.as_str())).unwrap_or(Authorization::None);
        if authorization == Authorization::Jwt {
            authorizer = r.authorizer_id.clone();
        }
        routes.insert(r.route_key.unwrap_or_default(), Route { function_arn: function_arn.clone(), authorization });
    }
    let jwt = match &authorizer {
        Some(authorizer) => {
            let out = api.get_authorizer().api_id(id).authorizer_id(authorizer).send().await.at(Target::api(&name))?;
            out.jwt_configuration
                .map(|j| Jwt { issuer: j.issuer.unwrap_or_default(), audience: j.audience.unwrap_or_default() })
        }
        None => None,
    };
    let stage = match api.get_stage().api_id(id).stage_name(STAGE).send().await {
        Ok(s) => Some(s),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => None,
        Err(e) => return Err(call("GetStage", Target::api(&name), &e)),
    };
    let settings = stage.as_ref().and_then(|s| s.default_route_settings.as_ref());
    let throttling = Throttling {
        burst_limit: settings.and_then(|s| s.throttling_burst_limit).map_or(0, i64::from),
        rate_limit: settings.and_then(|s| s.throttling_rate_limit).unwrap_or(0.0),
    };
    let retention = logs::describe(&aws.logs, &log_group(&name)).await?.map_or(0, |(_, days)| days);
    let tags: BTreeMap<String, String> = a.tags.unwrap_or_default().into_iter().collect();
    Ok(Some(ApiState {
        id: id.to_string(),
        endpoint: a.api_endpoint.unwrap_or_default(),
        spec: ApiSpec {
            name,
            routes,
            cors: a.cors_configuration.map(cors_spec),
            jwt,
            throttling,
            log_retention_days: retention,
            tags: super::untagged(OWNER_TAG, &tags),
        },
        tags,
        authorizer_id: authorizer,
    }))
}

/// Makes the API match `spec`: API `id` when known (else the one of that name `owner` owns,
/// else a new one), then the log group, authorizer, integrations, routes, permissions, stage
/// and tags. `execution` maps an API id to its execution ARN. Returns the API as it is then.
pub async fn converge(
    aws: &AwsClients,
    spec: &ApiSpec,
    owner: &Owner,
    id: Option<&str>,
    execution: impl Fn(&str) -> String,
) -> Result<ApiState, AwsError> {
    let api = &aws.apigateway;
    let target = Target::api(&spec.name);
    let known = match id {
        Some(id) => get(api, id).await?.map(|a| {
            let tags: BTreeMap<String, String> = a.tags.unwrap_or_default().into_iter().collect();
            (id.to_string(), tags)
        }),
        None => None,
    };
    let id = match known {
        Some((id, tags)) => {
            owner.check("HTTP API", &spec.name, &tags)?;
            id
        }
        None => match find(api, &spec.name, owner).await? {
            Some(id) => id,
            None => {
                let out = api
                    .create_api()
                    .name(&spec.name)
                    .protocol_type(ProtocolType::Http)
                    .set_cors_configuration(spec.cors.as_ref().map(cors))
                    .set_tags(Some(owner.tagged(&spec.tags).into_iter().collect()))
                    .send()
                    .await
                    .at(target)?;
                owner.made_one();
                out.api_id.ok_or(AwsError::Vanished { kind: "HTTP API", target: spec.name.clone() })?
            }
        },
    };
    let current = observe(aws, &id).await?.ok_or(AwsError::Vanished { kind: "HTTP API", target: spec.name.clone() })?;
    if current.spec.cors != spec.cors {
        match &spec.cors {
            Some(c) => {
                api.update_api().api_id(&id).cors_configuration(cors(c)).send().await.at(target)?;
            }
            None => {
                api.delete_cors_configuration().api_id(&id).send().await.at(target)?;
            }
        }
    }
    let group_arn = logs::ensure(&aws.logs, &log_group(&spec.name), spec.log_retention_days, &spec.tags).await?;
    // Each routed function lets this API (and only it) invoke it, before a route reaches it.
    let source_arn = format!("{}/*/*", execution(&id));
    let wanted: BTreeSet<&str> = spec.routes.values().map(|r| r.function_arn.as_str()).collect();
    for arn in &wanted {
        lambda::allow_invoke(
            &aws.lambda,
            function_name(arn),
            &statement_id(&id),
            "apigateway.amazonaws.com",
            &source_arn,
        )
        .await?;
    }
    let authorizer = sync_authorizer(api, &id, spec, &current).await?;
    let integrations = sync_routes(api, &id, spec, authorizer.as_deref()).await?;
    // Functions no route reaches any more lose their integration and their permission.
    for (integration, arn) in integrations.iter().filter(|(_, arn)| !wanted.contains(arn.as_str())) {
        lambda::remove_statement(&aws.lambda, function_name(arn), &statement_id(&id)).await?;
        match api.delete_integration().api_id(&id).integration_id(integration).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {}
            Err(e) => return Err(call("DeleteIntegration", target, &e)),
        }
    }
    sync_stage(api, &id, spec, &group_arn).await?;
    sync_tags(api, &api_arn(aws, &id), owner, spec, &current.tags).await?;
    observe(aws, &id).await?.ok_or(AwsError::Vanished { kind: "HTTP API", target: spec.name.clone() })
}

/// The ARN tags are set on: `arn:<partition>:apigateway:<region>::/apis/<id>`.
fn api_arn(aws: &AwsClients, id: &str) -> String {
    let region = aws.sdk.region().map(ToString::to_string).unwrap_or_default();
    format!("arn:{}:apigateway:{region}::/apis/{id}", aws.partition)
}

/// Creates, updates or deletes the JWT authorizer; returns its id when there is one.
async fn sync_authorizer(
    api: &Client,
    id: &str,
    spec: &ApiSpec,
    current: &ApiState,
) -> Result<Option<String>, AwsError> {
    let target = Target::api(&spec.name);
    let Some(jwt) = &spec.jwt else {
        return Ok(None);
    };
    let config = JwtConfiguration::builder().issuer(&jwt.issuer).set_audience(Some(jwt.audience.clone())).build();
    match current.authorizer_id.clone() {
        Some(authorizer) if current.spec.jwt.as_ref() == Some(jwt) => Ok(Some(authorizer)),
        Some(authorizer) => {
            api.update_authorizer()
                .api_id(id)
                .authorizer_id(&authorizer)
                .jwt_configuration(config)
                .send()
                .await
                .at(target)?;
            Ok(Some(authorizer))
        }
        None => {
            let out = api
                .create_authorizer()
                .api_id(id)
                .name(JWT_AUTHORIZER)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source("$request.header.Authorization")
                .jwt_configuration(config)
                .send()
                .await
                .at(target)?;
            Ok(out.authorizer_id)
        }
    }
}

/// Makes the routes match: one integration per function (made when missing), each route
/// created, updated or deleted. Returns every integration (id to function ARN), the unused
/// ones included, for the caller to take back.
async fn sync_routes(
    api: &Client,
    id: &str,
    spec: &ApiSpec,
    authorizer: Option<&str>,
) -> Result<BTreeMap<String, String>, AwsError> {
    let target = Target::api(&spec.name);
    let mut integrations: BTreeMap<String, String> = api
        .get_integrations()
        .api_id(id)
        .send()
        .await
        .at(target)?
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| Some((i.integration_id?, i.integration_uri?)))
        .collect();
    let mut by_function: BTreeMap<String, String> =
        integrations.iter().map(|(i, arn)| (arn.clone(), i.clone())).collect();
    for route in spec.routes.values() {
        if by_function.contains_key(&route.function_arn) {
            continue;
        }
        let out = api
            .create_integration()
            .api_id(id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_method("POST")
            .integration_uri(&route.function_arn)
            .payload_format_version("2.0")
            .send()
            .await
            .at(target)?;
        let integration = out.integration_id.unwrap_or_default();
        integrations.insert(integration.clone(), route.function_arn.clone());
        by_function.insert(route.function_arn.clone(), integration);
    }
    let existing = api.get_routes().api_id(id).send().await.at(target)?.items.unwrap_or_default();
    for (key, route) in &spec.routes {
        let to = format!("integrations/{}", by_function.get(&route.function_arn).cloned().unwrap_or_default());
        let auth = AuthorizationType::from(route.authorization.as_str());
        let authorizer =
            (route.authorization == Authorization::Jwt).then(|| authorizer.unwrap_or_default().to_string());
        match existing.iter().find(|r| r.route_key.as_deref() == Some(key.as_str())) {
            Some(r)
                if r.target.as_deref() == Some(to.as_str())
                    && r.authorization_type.as_ref() == Some(&auth)
                    && r.authorizer_id == authorizer => {}
            Some(r) => {
                api.update_route()
                    .api_id(id)
                    .route_id(r.route_id.clone().unwrap_or_default())
                    .target(&to)
                    .authorization_type(auth)
                    .set_authorizer_id(authorizer)
                    .send()
                    .await
                    .at(target)?;
            }
            None => {
                api.create_route()
                    .api_id(id)
                    .route_key(key)
                    .target(&to)
                    .authorization_type(auth)
                    .set_authorizer_id(authorizer)
                    .send()
                    .await
                    .at(target)?;
            }
        }
    }
    for r in existing.iter().filter(|r| !spec.routes.contains_key(r.route_key.as_deref().unwrap_or_default())) {
        api.delete_route().api_id(id).route_id(r.route_id.clone().unwrap_or_default()).send().await.at(target)?;
    }
    Ok(integrations)
}

/// Makes the `$default` stage: auto-deploy, the throttling, JSON access logs to `group_arn`.
async fn sync_stage(api: &Client, id: &str, spec: &ApiSpec, group_arn: &str) -> Result<(), AwsError> {
    let target = Target::api(&spec.name);
    let settings = RouteSettings::builder()
        .throttling_burst_limit(i32::try_from(spec.throttling.burst_limit).unwrap_or(i32::MAX))
        .throttling_rate_limit(spec.throttling.rate_limit)
        .build();
    // The log group's ARN without the `:*` DescribeLogGroups puts at its end.
    let destination = group_arn.trim_end_matches(":*");
    let logs = AccessLogSettings::builder().destination_arn(destination).format(ACCESS_LOG_FORMAT).build();
    match api.get_stage().api_id(id).stage_name(STAGE).send().await {
        Ok(s) => {
            let same_throttling = s.default_route_settings.as_ref().is_some_and(|d| {
                d.throttling_burst_limit == settings.throttling_burst_limit
                    && d.throttling_rate_limit == settings.throttling_rate_limit
            });
            let same_logs =
                s.access_log_settings.as_ref().and_then(|l| l.destination_arn.as_deref()) == Some(destination);
            if !same_throttling || !same_logs {
                api.update_stage()
                    .api_id(id)
                    .stage_name(STAGE)
                    .default_route_settings(settings)
                    .access_log_settings(logs)
                    .send()
                    .await
                    .at(target)?;
            }
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {
            api.create_stage()
                .api_id(id)
                .stage_name(STAGE)
                .auto_deploy(true)
                .default_route_settings(settings)
                .access_log_settings(logs)
                .send()
                .await
                .at(target)?;
        }
        Err(e) => return Err(call("GetStage", target, &e)),
    }
    Ok(())
}

async fn sync_tags(
    api: &Client,
    arn: &str,
    owner: &Owner,
    spec: &ApiSpec,
    current: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let target = Target::api(&spec.name);
    let changes = TagChanges::new(current, &owner.tagged(&spec.tags));
    if !changes.stale.is_empty() {
        api.untag_resource().resource_arn(arn).set_tag_keys(Some(changes.stale)).send().await.at(target)?;
    }
    if !changes.set.is_empty() {
        api.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(changes.set.into_iter().collect()))
            .send()
            .await
            .at(target)?;
    }
    Ok(())
}

/// Deletes API `id` when `owner` owns it: first the functions' permissions, then the API and
/// its log group. One already gone, or someone else's, is left alone. Without an id (a create
/// that failed before it was saved), every API named `name` that `owner` owns.
pub async fn remove_named(aws: &AwsClients, name: &str, owner: &Owner) -> Result<(), AwsError> {
    for (id, tags) in named(&aws.apigateway, name).await? {
        if owner.owns(&tags) {
            remove(aws, &id, owner).await?;
        }
    }
    Ok(())
}

/// Deletes API `id` when `owner` owns it: first the functions' permissions, then the API and
/// its log group. One already gone, or someone else's, is left alone.
pub async fn remove(aws: &AwsClients, id: &str, owner: &Owner) -> Result<(), AwsError> {
    let Some(current) = observe(aws, id).await? else { return Ok(()) };
    if !owner.owns(&current.tags) {
        tracing::warn!(api = id, "not deleting an HTTP API that another owner tagged");
        return Ok(());
    }
    let functions: BTreeSet<&str> = current.spec.routes.values().map(|r| r.function_arn.as_str()).collect();
    for arn in functions {
        lambda::remove_statement(&aws.lambda, function_name(arn), &statement_id(id)).await?;
    }
    match aws.apigateway.delete_api().api_id(id).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {}
        Err(e) => return Err(call("DeleteApi", Target::api(&current.spec.name), &e)),
    }
    logs::delete(&aws.logs, &log_group(&current.spec.name)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:api"), "api");
        assert_eq!(
            execution_arn("aws", "eu-west-1", "123456789012", "a1b2c3"),
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3"
        );
        assert_eq!(Authorization::parse("AWS_IAM"), Some(Authorization::AwsIam));
        assert_eq!(Authorization::parse("IAM"), None);
        assert!(serde_json::from_str::<serde_json::Value>(ACCESS_LOG_FORMAT).is_ok(), "the access log line is JSON");
    }
}
