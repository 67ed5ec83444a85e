//! The resource driver: a resource type implements [`Managed`] (schema, checks, planning, and
//! converge / observe / remove / import against the services layer) and [`Driver`] adapts it to
//! tfplug's [`Resource`], doing what every resource repeats: the `timeouts` block and its
//! deadlines, errors that read "creating adf_x (name): cause", `tags` / `tags_all` with the
//! provider's `default_tags`, `id` (the name), "gone, so remove from state", import, and each
//! instance's [`Ownership`]: a UUID made on create and kept in the state as `owner_id`, which
//! the owner tags of everything the instance makes carry. A create that fails after making
//! something returns that partial state, which Terraform saves as tainted and replaces on the
//! next apply.

pub mod attributes;
pub mod bindings;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, CreateError, Ctx, Diagnostic, Diagnostics, Dynamic, IntoDynamic,
    Mode, ObjectReader, Plan, PlanRequest, Resource, Schema, State, Type, Value,
};

use crate::aws::{AwsError, Ownership};
use crate::config::AdfData;

/// Why a step of a resource failed: an AWS call (the driver says which resource and name), or
/// diagnostics of its own.
#[derive(Debug)]
pub enum Failure {
    /// An AWS step failed.
    Aws(AwsError),
    /// Diagnostics to show as they are.
    Diagnostics(Diagnostics),
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Aws(e)
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Diagnostics(d)
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::Diagnostics(d.into())
    }
}

impl From<tfplug::DynamicError> for Failure {
    fn from(e: tfplug::DynamicError) -> Self {
        Failure::Diagnostics(Diagnostic::from(e).into())
    }
}

impl Failure {
    /// The diagnostics, an AWS failure reading "`verb` `type_name` (`name`): cause".
    fn into_diagnostics(self, verb: &str, type_name: &str, name: &str) -> Diagnostics {
        match self {
            Failure::Aws(e) => failed(verb, type_name, name, e),
            Failure::Diagnostics(d) => d,
        }
    }
}

/// What a resource type is: its name, its schema, its plan-time checks and its default deadline.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// `adf_something`.
    pub type_name: &'static str,
    /// The deadline of each operation unless the `timeouts` block says otherwise.
    pub default_timeout: Duration,
    /// The schema. With a `tags_all` attribute the driver plans it from `tags` and the
    /// provider's `default_tags`, and derives `tags` from it on read.
    pub schema: fn() -> Schema,
    /// Checks a configuration, whose values may be unknown. The driver checks `tags` and
    /// `timeouts` itself.
    pub validate: fn(&Dynamic) -> Diagnostics,
}

impl Kind {
    /// A resource type named `type_name`.
    pub const fn new(
        type_name: &'static str,
        default_timeout: Duration,
        schema: fn() -> Schema,
        validate: fn(&Dynamic) -> Diagnostics,
    ) -> Self {
        Self { type_name, default_timeout, schema, validate }
    }
}

#[cfg(test)]
impl Kind {
    /// What validating `config` reports, as the server asks it: the schema's attribute checks,
    /// then the resource's own.
    pub fn checks(&self, config: &Dynamic) -> Diagnostics {
        let mut d = (self.schema)().block.check_value(config);
        d.extend((self.validate)(config));
        d
    }
}

/// The typed model of a plan or state; a value that does not fit is an error diagnostic.
pub fn model<T: DeserializeOwned>(v: &Dynamic) -> Result<T, Diagnostics> {
    tfplug::from_dynamic(v).map_err(|e| Diagnostic::from(e).into())
}

/// `planned` with `outputs` (an object) set over it.
pub fn with_outputs(planned: &Dynamic, outputs: Dynamic) -> Dynamic {
    let mut v = planned.clone();
    if let Dynamic::Map(m) = outputs {
        for (k, val) in m {
            v.set(&k, val);
        }
    }
    v
}

/// One managed resource type, written against the services layer. The driver calls these
/// with the provider configured and the values wholly known (except in [`Managed::plan`]).
#[async_trait]
pub trait Managed: Send + Sync + 'static {
    /// Its name, schema, checks and default deadline.
    const KIND: Kind;

    /// Plans what the schema alone cannot (names, outputs known in advance, plan-time checks
    /// against the prior state). `data` is None when the provider is not configured yet.
    async fn plan(&self, _data: Option<&AdfData>, _req: &PlanRequest, _plan: &mut Plan) -> Diagnostics {
        Diagnostics::new()
    }

    /// Makes AWS match `req.planned` (creating when `req.prior` is null) and returns the new
    /// state. What it makes carries `owner`'s tags, and what exists must carry them already.
    /// After a failure the next apply calls it again (an update), or replaces it (a create).
    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure>;

    /// What AWS has now of the resource `name`, as a state built over `prior` (with `tags_all`
    /// as AWS shows it); None when it is gone.
    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure>;

    /// Deletes everything the state of `name` describes that carries `owner`'s tags; what is
    /// gone already, or someone else's, is left alone.
    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure>;

    /// The state to read after importing `id`, and the owner id its owner tag carries.
    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure>;
}

/// What an import found: the state to read, and the owner id from its owner tag.
#[derive(Debug)]
pub struct Imported {
    /// The state to read.
    pub value: Dynamic,
    /// The owner tag's value.
    pub owner: String,
}

/// The attribute every driven resource has for its instance's owner id.
pub const OWNER_ID: &str = "owner_id";

/// The ownership a state records; state saved before owner ids were kept uses the name, as
/// the owner tags of that time did.
fn ownership_of(value: &Dynamic) -> Ownership {
    match value.get(OWNER_ID) {
        Dynamic::String(id) => Ownership::new(id.clone()),
        _ => Ownership::new(name_of(value)),
    }
}

/// Sets `id` (the name) and `owner_id` of a state.
fn identify(value: &mut Dynamic, owner: &Ownership) {
    set_id(value);
    value.set(OWNER_ID, owner.id().into());
}

/// Marks unknown in `value` what AWS computes (`attributes` of mode computed, nested ones too),
/// except what the driver itself knows: the owner id and `tags_all`.
fn unknown_computed(value: &mut Dynamic, attributes: &[Attribute]) {
    let Dynamic::Map(m) = value else { return };
    for a in attributes {
        match (&a.nested, m.get_mut(&a.name)) {
            (Some(nested), Some(child @ Dynamic::Map(_))) => unknown_computed(child, nested),
            _ if a.mode == Mode::Computed && ![OWNER_ID, "tags_all"].contains(&a.name.as_str()) => {
                m.insert(a.name.clone(), Dynamic::Unknown);
            }
            _ => {}
        }
    }
}

/// What the driver keeps in a state's private data.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Private {
    /// Read found it gone, in part or whole: the next apply recreates what is missing.
    #[serde(default)]
    gone: bool,
}

impl Private {
    fn of(private: &[u8]) -> Self {
        serde_json::from_slice(private).unwrap_or_default()
    }

    fn bytes(gone: bool) -> Vec<u8> {
        if gone { serde_json::to_vec(&Private { gone }).unwrap_or_default() } else { Vec::new() }
    }
}

/// Adapts a [`Managed`] resource type to tfplug's [`Resource`].
#[derive(Debug, Default)]
pub struct Driver<M>(pub M);

fn name_of(v: &Dynamic) -> String {
    match v.get("name") {
        Dynamic::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// Sets `id` to the name once it is known: every driven resource has an `id` that is its name
/// ([`attributes::tags_and_id`]).
fn set_id(value: &mut Dynamic) {
    if let Dynamic::Map(m) = value
        && let Some(name @ Dynamic::String(_)) = m.get("name").cloned()
    {
        m.insert("id".to_string(), name);
    }
}

/// Whether the resource's schema has `tags_all`: its values (objects of every attribute) then
/// carry the key.
fn has_tags(value: &Dynamic) -> bool {
    matches!(value, Dynamic::Map(m) if m.contains_key("tags_all"))
}

impl<M: Managed> Driver<M> {
    async fn apply(&self, data: &AdfData, req: &ApplyRequest, op: Op, owner: &Ownership) -> Result<State, Diagnostics> {
        let name = name_of(&req.planned);
        let limit = timeout(&req.planned, op, M::KIND.default_timeout);
        let mut value = within(limit, op, M::KIND.type_name, &name, async {
            self.0.converge(data, req, owner).await.map_err(|f| f.into_diagnostics(op.verb(), M::KIND.type_name, &name))
        })
        .await?;
        identify(&mut value, owner);
        Ok(State::new(value))
    }
}

#[async_trait]
impl<M: Managed> Resource<AdfData> for Driver<M> {
    fn type_name(&self) -> &'static str {
        M::KIND.type_name
    }

    fn schema(&self) -> Schema {
        let mut schema = (M::KIND.schema)();
        schema.block = schema.block.attribute(
            Attribute::computed(
                OWNER_ID,
                Type::String,
                "The id in the owner tag of everything this resource makes. A second configuration using the \
                 same names is refused instead of sharing them, and a destroy deletes only what carries it.",
            )
            .stable(),
        );
        schema
    }

    async fn validate(&self, config: &Dynamic) -> Diagnostics {
        let mut d = (M::KIND.validate)(config);
        if let Ok(Value::Known(tags)) = ObjectReader::new(config).get::<Value<BTreeMap<String, String>>>("tags") {
            d.extend(validate_tags(&tags, &AttributePath::root().attr("tags")));
        }
        d.extend(validate_timeouts(config));
        d
    }

    async fn modify_plan(&self, ctx: &Ctx<AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let data = ctx.data().ok();
        if has_tags(&plan.planned) {
            let default_tags = data.map(|d| d.default_tags.clone()).unwrap_or_default();
            plan_tags_all(&mut plan.planned, &req.config, &default_tags);
        }
        if plan.planned.is_null() {
            return Diagnostics::new();
        }
        set_id(&mut plan.planned);
        if !req.prior.is_null() {
            plan.planned.set(OWNER_ID, ownership_of(&req.prior).id().into());
        }
        if Private::of(&req.prior_private).gone {
            // An update that recreates what read found missing, learning anew what AWS computes.
            unknown_computed(&mut plan.planned, &(M::KIND.schema)().block.attributes);
            plan.planned.set("id", Dynamic::Unknown);
        }
        self.0.plan(data, req, plan).await
    }

    async fn create(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, CreateError> {
        let data = ctx.data()?;
        let owner = Ownership::new(uuid::Uuid::new_v4().to_string());
        self.apply(data, &req, Op::Create, &owner).await.map_err(|diagnostics| {
            // What was made is saved (tainted): the next apply deletes it through this state.
            let partial = owner.made().then(|| {
                let mut value = req.planned.clone();
                identify(&mut value, &owner);
                State::new(value)
            });
            CreateError { diagnostics, partial }
        })
    }

    async fn read(&self, ctx: &Ctx<AdfData>, state: State) -> Result<Option<State>, Diagnostics> {
        let data = ctx.data()?;
        let name = name_of(&state.value);
        let observed = self
            .0
            .observe(data, &name, &state.value)
            .await
            .map_err(|f| f.into_diagnostics("reading", M::KIND.type_name, &name))?;
        let Some(mut value) = observed else {
            // Kept, marked gone, so the next apply recreates what is missing under the same
            // owner id and keeps what remains (a new instance would find it someone else's).
            tracing::info!(name, "{} is gone, in part or whole; planning to recreate it", M::KIND.type_name);
            return Ok(Some(State { value: state.value, private: Private::bytes(true) }));
        };
        if has_tags(&value) {
            let tags_all: BTreeMap<String, String> = ObjectReader::new(&value)
                .get::<Value<_>>("tags_all")
                .ok()
                .and_then(Value::into_known)
                .unwrap_or_default();
            value.set("tags", read_tags(&state.value, &tags_all, &data.default_tags));
        }
        value.set("timeouts", state.value.get("timeouts").clone());
        identify(&mut value, &ownership_of(&state.value));
        Ok(Some(State::new(value)))
    }

    async fn update(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        let owner = ownership_of(&req.prior.value);
        self.apply(ctx.data()?, &req, Op::Update, &owner).await
    }

    async fn delete(&self, ctx: &Ctx<AdfData>, state: State) -> Result<(), Diagnostics> {
        let data = ctx.data()?;
        let name = name_of(&state.value);
        let limit = timeout(&state.value, Op::Delete, M::KIND.default_timeout);
        let owner = ownership_of(&state.value);
        within(limit, Op::Delete, M::KIND.type_name, &name, async {
            self.0
                .remove(data, &name, &state.value, &owner)
                .await
                .map_err(|f| f.into_diagnostics(Op::Delete.verb(), M::KIND.type_name, &name))
        })
        .await
    }

    async fn import(&self, ctx: &Ctx<AdfData>, id: &str) -> Result<State, Diagnostics> {
        let data = ctx.data()?;
        let Imported { mut value, owner } =
            self.0.import(data, id).await.map_err(|f| f.into_diagnostics("importing", M::KIND.type_name, id))?;
        identify(&mut value, &Ownership::new(owner));
        Ok(State::new(value))
    }
}

/// The most tags AWS accepts on SQS queues and DynamoDB tables.
pub const MAX_TAGS: usize = 50;

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
    fn the_owner_id_is_kept_in_state_and_older_state_falls_back_to_the_name() {
        let owner = Ownership::new("5f1c");
        let mut state = Dynamic::object([("name", "orders".into())]);
        assert_eq!(ownership_of(&state).id(), "orders", "state saved before owner ids");
        identify(&mut state, &owner);
        assert_eq!(ownership_of(&state).id(), "5f1c");
        assert_eq!(state.get("id"), &Dynamic::from("orders"));
        assert!(Private::of(&Private::bytes(true)).gone);
        assert!(!Private::of(&Private::bytes(false)).gone);
        assert!(Private::bytes(false).is_empty());
    }

    #[test]
    fn what_aws_computes_is_unknown_again_after_read_found_it_gone() {
        let attributes = vec![
            Attribute::required("name", Type::String, ""),
            Attribute::computed("arn", Type::String, "").stable(),
            Attribute::computed(OWNER_ID, Type::String, ""),
            Attribute::nested(
                "url",
                "",
                vec![Attribute::optional("auth", Type::String, ""), Attribute::computed("url", Type::String, "")],
            ),
        ];
        let mut v = Dynamic::object([
            ("name", "n".into()),
            ("arn", "a".into()),
            (OWNER_ID, "o".into()),
            ("url", Dynamic::object([("auth", "NONE".into()), ("url", "https://u".into())])),
        ]);
        unknown_computed(&mut v, &attributes);
        assert_eq!(v.get("arn"), &Dynamic::Unknown);
        assert_eq!(v.get("url").get("url"), &Dynamic::Unknown);
        assert_eq!(v.get("url").get("auth"), &Dynamic::from("NONE"));
        assert_eq!(v.get(OWNER_ID), &Dynamic::from("o"));
        assert_eq!(v.get("name"), &Dynamic::from("n"));
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
