//! The `tfplugin6.Provider` gRPC service over a [`Provider`]: decoding, dispatch, schema-driven
//! planning, cancellation on `StopProvider`, and panics turned into diagnostics.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::plan_from_schema;
use crate::proto::tfplugin6 as pb;
use crate::provider::{
    ApplyRequest, ConfigureRequest, CreateError, Ctx, DataSource, Function, Plan, PlanRequest, Provider, Resource,
    State,
};
use crate::schema::{Schema, Type};
use crate::value::Dynamic;

/// Serves one [`Provider`] as `tfplugin6.Provider`.
pub struct ProviderService<P: Provider> {
    inner: Arc<Inner<P>>,
}

impl<P: Provider> Clone for ProviderService<P> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

struct Typed<T: ?Sized> {
    handler: Arc<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Typed<T> {
    fn new(handler: Arc<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Self { handler, schema, ty }
    }
}

struct Inner<P: Provider> {
    provider: P,
    schema: Schema,
    resources: BTreeMap<&'static str, Typed<dyn Resource<P::Data>>>,
    data_sources: BTreeMap<&'static str, Typed<dyn DataSource<P::Data>>>,
    functions: BTreeMap<&'static str, Arc<dyn Function>>,
    data: RwLock<Option<Arc<P::Data>>>,
    stop: Mutex<CancellationToken>,
}

impl<P: Provider> ProviderService<P> {
    /// Wraps `provider`, reading its schemas once.
    pub fn new(provider: P) -> Self {
        let resources =
            provider.resources().into_iter().map(|r| (r.type_name(), Typed::new(Arc::clone(&r), r.schema()))).collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name(), Typed::new(Arc::clone(&d), d.schema())))
            .collect();
        let functions = provider.functions().into_iter().map(|f| (f.name(), f)).collect();
        let schema = provider.schema();
        Self {
            inner: Arc::new(Inner {
                provider,
                schema,
                resources,
                data_sources,
                functions,
                data: RwLock::new(None),
                stop: Mutex::new(CancellationToken::new()),
            }),
        }
    }

    /// The gRPC server for this service, accepting messages up to 256 MiB.
    pub fn into_server(self) -> pb::provider_server::ProviderServer<Self> {
        const MAX_MESSAGE: usize = 256 << 20;
        pb::provider_server::ProviderServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn ctx(&self) -> Ctx<P::Data> {
        let data = self.inner.data.read().unwrap_or_else(PoisonError::into_inner).clone();
        let token = self.inner.stop.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Ctx::new(data, token)
    }

    fn resource(&self, type_name: &str) -> Result<&Typed<dyn Resource<P::Data>>, Diagnostics> {
        self.inner.resources.get(type_name).ok_or_else(|| unknown_type("resource", type_name))
    }

    fn data_source(&self, type_name: &str) -> Result<&Typed<dyn DataSource<P::Data>>, Diagnostics> {
        self.inner.data_sources.get(type_name).ok_or_else(|| unknown_type("data source", type_name))
    }
}

fn unknown_type(kind: &str, name: &str) -> Diagnostics {
    Diagnostic::error(format!("Unknown {kind} type"), format!("This provider has no {kind} named {name:?}.")).into()
}

/// Runs `fut`, stopping it when `token` is cancelled and turning a panic into a diagnostic.
async fn guarded<T, F>(token: &CancellationToken, fut: F) -> Result<T, Diagnostics>
where
    F: Future<Output = Result<T, Diagnostics>>,
{
    tokio::select! {
        r = AssertUnwindSafe(fut).catch_unwind() => r.unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(panic = %msg, "provider handler panicked");
            Err(Diagnostic::error(
                "Provider internal error",
                format!("The provider panicked: {msg}. This is a bug; please report it. The provider is still running."),
            )
            .into())
        }),
        () = token.cancelled() => Err(Diagnostic::error(
            "Operation cancelled",
            "Terraform asked the provider to stop (StopProvider) while this operation was in progress.",
        )
        .into()),
    }
}

fn decode(v: Option<&pb::DynamicValue>, ty: &Type) -> Result<Dynamic, Diagnostics> {
    let Some(v) = v else { return Ok(Dynamic::Null) };
    let r = if !v.msgpack.is_empty() {
        Dynamic::from_msgpack(&v.msgpack)
    } else if !v.json.is_empty() {
        Dynamic::from_json(&v.json, ty)
    } else {
        Ok(Dynamic::Null)
    };
    r.map_err(|e| Diagnostic::error("Invalid value from Terraform", e.to_string()).into())
}

fn encode(v: &Dynamic, ty: &Type) -> Result<pb::DynamicValue, Diagnostics> {
    v.to_msgpack(ty)
        .map(|msgpack| pb::DynamicValue { msgpack, json: Vec::new() })
        .map_err(|e| Diagnostic::error("Provider produced an invalid value", e.to_string()).into())
}

fn diags_of<T>(r: &Result<T, Diagnostics>) -> Vec<pb::Diagnostic> {
    r.as_ref().err().map(Diagnostics::to_proto).unwrap_or_default()
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities { plan_destroy: false, get_provider_schema_optional: true, move_resource_state: false }
}

fn function_to_proto(f: &dyn Function) -> pb::Function {
    let sig = f.signature();
    let param = |p: &crate::provider::Parameter| pb::function::Parameter {
        name: p.name.clone(),
        r#type: p.ty.to_json().to_string().into_bytes(),
        allow_null_value: p.allow_null,
        allow_unknown_values: false,
        description: p.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
    };
    pb::Function {
        parameters: sig.parameters.iter().map(param).collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return { r#type: sig.returns.to_json().to_string().into_bytes() }),
        summary: sig.summary,
        description: sig.description,
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

const NO_EPHEMERAL: &str = "This provider has no ephemeral resources.";

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .inner
                .data_sources
                .keys()
                .map(|t| m::DataSourceMetadata { type_name: (*t).to_string() })
                .collect(),
            resources: self
                .inner
                .resources
                .keys()
                .map(|t| m::ResourceMetadata { type_name: (*t).to_string() })
                .collect(),
            functions: self.inner.functions.keys().map(|n| m::FunctionMetadata { name: (*n).to_string() }).collect(),
            ephemeral_resources: Vec::new(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let i = &self.inner;
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(i.schema.to_proto()),
            resource_schemas: i.resources.iter().map(|(k, r)| ((*k).to_string(), r.schema.to_proto())).collect(),
            data_source_schemas: i.data_sources.iter().map(|(k, d)| ((*k).to_string(), d.schema.to_proto())).collect(),
            functions: i.functions.iter().map(|(k, f)| ((*k).to_string(), function_to_proto(f.as_ref()))).collect(),
            ephemeral_resource_schemas: HashMap::new(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = req.into_inner();
        let token = self.ctx().cancellation().clone();
        let r = guarded(&token, async {
            let config = decode(req.config.as_ref(), &self.inner.schema.value_type())?;
            self.inner.provider.validate(&config).await.into_result().map(|()| Diagnostics::new())
        })
        .await;
        let diagnostics = match &r {
            Ok(d) => d.to_proto(),
            Err(d) => d.to_proto(),
        };
        Ok(Response::new(pb::validate_provider_config::Response { diagnostics }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let token = self.ctx().cancellation().clone();
        let r = guarded(&token, async {
            let r = self.resource(&req.type_name)?;
            let config = decode(req.config.as_ref(), &r.ty)?;
            let mut d = r.schema.block.check_value(&config);
            d.extend(r.handler.validate(&config).await);
            Ok(d.shown_in(&r.schema.block))
        })
        .await;
        let diagnostics = r.unwrap_or_else(|d| d).to_proto();
        Ok(Response::new(pb::validate_resource_config::Response { diagnostics }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let token = self.ctx().cancellation().clone();
        let r = guarded(&token, async {
            let d = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &d.ty)?;
            let mut diags = d.schema.block.check_value(&config);
            diags.extend(d.handler.validate(&config).await);
            Ok(diags)
        })
        .await;
        let diagnostics = r.unwrap_or_else(|d| d).to_proto();
        Ok(Response::new(pb::validate_data_resource_config::Response { diagnostics }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let token = self.ctx().cancellation().clone();
        let r = guarded(&token, async {
            let r = self.resource(&req.type_name)?;
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                return Err(Diagnostic::error(
                    "Unsupported state format",
                    "This provider reads JSON state only; the legacy flatmap format is not supported.",
                )
                .into());
            }
            let mut json: serde_json::Value = serde_json::from_slice(&raw.json)
                .map_err(|e| Diagnostics::from(Diagnostic::error("Invalid stored state", e.to_string())))?;
            let mut version = req.version;
            if version > r.schema.version {
                return Err(Diagnostic::error(
                    "State from a newer provider",
                    format!(
                        "The state was written by schema version {version}, newer than this provider's {}. Upgrade the provider.",
                        r.schema.version
                    ),
                )
                .into());
            }
            while version < r.schema.version {
                json = r.handler.upgrade_state(version, json).await?;
                version += 1;
            }
            let value = Dynamic::from_json_value(&json, &r.ty)
                .map_err(|e| Diagnostics::from(Diagnostic::error("Invalid stored state", e.to_string())))?;
            encode(&value, &r.ty)
        })
        .await;
        Ok(Response::new(pb::upgrade_resource_state::Response { diagnostics: diags_of(&r), upgraded_state: r.ok() }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = req.into_inner();
        let token = self.ctx().cancellation().clone();
        let r = guarded(&token, async {
            let config = decode(req.config.as_ref(), &self.inner.schema.value_type())?;
            let data = self
                .inner
                .provider
                .configure(ConfigureRequest { terraform_version: req.terraform_version, config })
                .await?;
            *self.inner.data.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(data));
            Ok(())
        })
        .await;
        Ok(Response::new(pb::configure_provider::Response { diagnostics: diags_of(&r) }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let r = guarded(ctx.cancellation(), async {
            let r = self.resource(&req.type_name)?;
            let value = decode(req.current_state.as_ref(), &r.ty)?;
            if value.is_null() {
                return Ok((pb::DynamicValue::default(), Vec::new()));
            }
            let current = State { value, private: req.private.clone() };
            match r.handler.read(&ctx, current).await? {
                Some(s) => Ok((encode(&s.value, &r.ty)?, s.private)),
                None => Ok((encode(&Dynamic::Null, &r.ty)?, Vec::new())),
            }
        })
        .await;
        let diagnostics = diags_of(&r);
        let (new_state, private) = match r {
            Ok((s, p)) => (Some(s), p),
            // Keep what Terraform had: a failed read must not drop the resource.
            Err(_) => (req.current_state, req.private),
        };
        Ok(Response::new(pb::read_resource::Response { new_state, diagnostics, private, deferred: None }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let r = guarded(ctx.cancellation(), async {
            let r = self.resource(&req.type_name)?;
            let prior = decode(req.prior_state.as_ref(), &r.ty)?;
            let proposed = decode(req.proposed_new_state.as_ref(), &r.ty)?;
            let config = decode(req.config.as_ref(), &r.ty)?;
            let (planned, requires_replace) = plan_from_schema(&r.schema, &prior, &proposed, &config);
            let mut plan = Plan { planned, requires_replace, private: req.prior_private.clone() };
            let mut warnings = Diagnostics::new();
            if !plan.planned.is_null() {
                let preq = PlanRequest { config, prior, prior_private: req.prior_private.clone() };
                warnings = r.handler.modify_plan(&ctx, &preq, &mut plan).await.shown_in(&r.schema.block);
                if warnings.has_errors() {
                    return Err(warnings);
                }
            }
            Ok(pb::plan_resource_change::Response {
                planned_state: Some(encode(&plan.planned, &r.ty)?),
                requires_replace: plan.requires_replace.iter().map(crate::diag::AttributePath::to_proto).collect(),
                planned_private: plan.private,
                // A plan's warnings reach the user: only errors replace the plan.
                diagnostics: warnings.to_proto(),
                legacy_type_system: false,
                deferred: None,
            })
        })
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| pb::plan_resource_change::Response {
            diagnostics: d.to_proto(),
            ..Default::default()
        })))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let prior_private = req.planned_private.clone();
        // What a failed create made, saved (tainted) instead of nothing.
        let partial = Mutex::new(None);
        let r = guarded(ctx.cancellation(), async {
            let r = self.resource(&req.type_name)?;
            let prior = decode(req.prior_state.as_ref(), &r.ty)?;
            let planned = decode(req.planned_state.as_ref(), &r.ty)?;
            let config = decode(req.config.as_ref(), &r.ty)?;
            let h = &r.handler;
            let state = if planned.is_null() {
                h.delete(&ctx, State { value: prior, private: req.planned_private.clone() }).await?;
                State::default()
            } else {
                let creating = prior.is_null();
                let areq = ApplyRequest {
                    config,
                    planned,
                    prior: State { value: prior, private: req.planned_private.clone() },
                    planned_private: req.planned_private.clone(),
                };
                if !creating {
                    h.update(&ctx, areq).await?
                } else {
                    match h.create(&ctx, areq).await {
                        Ok(s) => s,
                        Err(CreateError { diagnostics, partial: made }) => {
                            if let Some(s) = made {
                                let value = encode(&s.value.unknown_as_null(), &r.ty)?;
                                *partial.lock().unwrap_or_else(PoisonError::into_inner) = Some((value, s.private));
                            }
                            return Err(diagnostics);
                        }
                    }
                }
            };
            Ok((encode(&state.value, &r.ty)?, state.private))
        })
        .await;
        let diagnostics = diags_of(&r);
        let partial = partial.into_inner().unwrap_or_else(PoisonError::into_inner);
        let (new_state, private) = match (r, partial) {
            (Ok((s, p)), _) => (Some(s), p),
            // A create that made something: Terraform saves it as tainted.
            (Err(_), Some((s, p))) => (Some(s), p),
            // A create that made nothing saves nothing; a failed update or delete keeps the prior state.
            (Err(_), None) => (req.prior_state, prior_private),
        };
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let r = guarded(ctx.cancellation(), async {
            let r = self.resource(&req.type_name)?;
            let s = r.handler.import(&ctx, &req.id).await?;
            Ok(pb::import_resource_state::ImportedResource {
                type_name: req.type_name.clone(),
                state: Some(encode(&s.value, &r.ty)?),
                private: s.private,
            })
        })
        .await;
        Ok(Response::new(pb::import_resource_state::Response {
            diagnostics: diags_of(&r),
            imported_resources: r.into_iter().collect(),
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        _req: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let d = Diagnostic::error(
            "Move not supported",
            "This provider does not support moving state between resource types.",
        );
        Ok(Response::new(pb::move_resource_state::Response { diagnostics: vec![d.to_proto()], ..Default::default() }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let r = guarded(ctx.cancellation(), async {
            let d = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &d.ty)?;
            let value = d.handler.read(&ctx, config).await?;
            encode(&value, &d.ty)
        })
        .await;
        Ok(Response::new(pb::read_data_source::Response { diagnostics: diags_of(&r), state: r.ok(), deferred: None }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let d = Diagnostic::error("Unknown ephemeral resource type", NO_EPHEMERAL);
        Ok(Response::new(pb::validate_ephemeral_resource_config::Response { diagnostics: vec![d.to_proto()] }))
    }

    async fn open_ephemeral_resource(
        &self,
        _req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let d = Diagnostic::error("Unknown ephemeral resource type", NO_EPHEMERAL);
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        _req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let d = Diagnostic::error("Unknown ephemeral resource type", NO_EPHEMERAL);
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        _req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let d = Diagnostic::error("Unknown ephemeral resource type", NO_EPHEMERAL);
        Ok(Response::new(pb::close_ephemeral_resource::Response { diagnostics: vec![d.to_proto()] }))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self
                .inner
                .functions
                .iter()
                .map(|(k, f)| ((*k).to_string(), function_to_proto(f.as_ref())))
                .collect(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = req.into_inner();
        let fail = |text: String, argument: Option<i64>| {
            Ok(Response::new(pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError { text, function_argument: argument }),
            }))
        };
        let Some(f) = self.inner.functions.get(req.name.as_str()) else {
            return fail(format!("This provider has no function named {:?}.", req.name), None);
        };
        let sig = f.signature();
        let mut args = Vec::with_capacity(req.arguments.len());
        for (i, (a, p)) in req.arguments.iter().zip(&sig.parameters).enumerate() {
            match decode(Some(a), &p.ty) {
                Ok(v) => args.push(v),
                Err(d) => return fail(d.to_string(), i64::try_from(i).ok()),
            }
        }
        let token = self.ctx().cancellation().clone();
        let call = guarded(&token, async { Ok(f.call(args).await) }).await;
        match call {
            Ok(Ok(v)) => match encode(&v, &sig.returns) {
                Ok(result) => Ok(Response::new(pb::call_function::Response { result: Some(result), error: None })),
                Err(d) => fail(d.to_string(), None),
            },
            Ok(Err(e)) => fail(e.text, e.argument),
            Err(d) => fail(d.to_string(), None),
        }
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        let mut token = self.inner.stop.lock().unwrap_or_else(PoisonError::into_inner);
        token.cancel();
        // Work that starts after the stop is not cancelled: only in-flight calls are.
        *token = CancellationToken::new();
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use pb::provider_server::Provider as _;

    use super::*;
    use crate::provider::{FunctionError, FunctionSignature, Parameter};
    use crate::schema::{Attribute, Block};
    use crate::value::IntoDynamic;
    use crate::{AttributePath, ObjectReader};

    /// A provider whose resources exercise the server: a plain one, one that panics, one
    /// that blocks until cancelled, and a function.
    struct TestProvider;

    struct Thing;

    fn thing_schema() -> Schema {
        Schema::new(
            1,
            Block::new("thing")
                .attribute(Attribute::required("name", Type::String, "n").requires_replace())
                .attribute(Attribute::with_default("size", Type::Number, "s", 3i64.into_dynamic()))
                .attribute(Attribute::computed("id", Type::String, "i").stable()),
        )
    }

    #[async_trait]
    impl Resource<String> for Thing {
        fn type_name(&self) -> &'static str {
            "test_thing"
        }
        fn schema(&self) -> Schema {
            thing_schema()
        }
        async fn validate(&self, config: &Dynamic) -> Diagnostics {
            let mut d = Diagnostics::new();
            if let Some(crate::Value::Known(n)) = d.take(ObjectReader::new(config).get::<crate::Value<i64>>("size"))
                && n < 0
            {
                d.error_at(AttributePath::root().attr("size"), "Invalid size", "size must be positive");
            }
            d
        }
        async fn modify_plan(&self, _ctx: &Ctx<String>, _req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
            let mut d = Diagnostics::new();
            if plan.planned.get("size") == &13i64.into_dynamic() {
                d.push(Diagnostic::warning("Unlucky size", "13").at(AttributePath::root().attr("size")));
            }
            d
        }
        async fn create(&self, ctx: &Ctx<String>, req: ApplyRequest) -> Result<State, CreateError> {
            if req.planned.get("name") == &Dynamic::from("half") {
                // Made something, then failed: the planned value, `id` still unknown.
                let partial = State { value: req.planned, private: b"half".to_vec() };
                return Err(CreateError {
                    diagnostics: Diagnostic::error("failed half way", "").into(),
                    partial: Some(partial),
                });
            }
            let mut v = req.planned;
            v.set("id", ctx.data()?.clone().into_dynamic());
            Ok(State { value: v, private: b"secret".to_vec() })
        }
        async fn read(&self, _ctx: &Ctx<String>, state: State) -> Result<Option<State>, Diagnostics> {
            if state.value.get("name") == &Dynamic::from("gone") { Ok(None) } else { Ok(Some(state)) }
        }
        async fn update(&self, _ctx: &Ctx<String>, req: ApplyRequest) -> Result<State, Diagnostics> {
            Ok(State::new(req.planned))
        }
        async fn delete(&self, _ctx: &Ctx<String>, _state: State) -> Result<(), Diagnostics> {
            Ok(())
        }
        async fn upgrade_state(
            &self,
            version: i64,
            mut state: serde_json::Value,
        ) -> Result<serde_json::Value, Diagnostics> {
            // Version 0 called `name` `title`.
            assert_eq!(version, 0);
            state["name"] = state["title"].take();
            Ok(state)
        }
    }

    struct Panics;

    #[async_trait]
    impl Resource<String> for Panics {
        fn type_name(&self) -> &'static str {
            "test_panics"
        }
        fn schema(&self) -> Schema {
            thing_schema()
        }
        async fn create(&self, _ctx: &Ctx<String>, _req: ApplyRequest) -> Result<State, CreateError> {
            panic!("boom")
        }
        async fn read(&self, _ctx: &Ctx<String>, _state: State) -> Result<Option<State>, Diagnostics> {
            std::future::pending().await
        }
        async fn update(&self, _ctx: &Ctx<String>, _req: ApplyRequest) -> Result<State, Diagnostics> {
            Err(Diagnostic::error("nope", "").into())
        }
        async fn delete(&self, _ctx: &Ctx<String>, _state: State) -> Result<(), Diagnostics> {
            Ok(())
        }
    }

    struct Upper;

    #[async_trait]
    impl Function for Upper {
        fn name(&self) -> &'static str {
            "upper"
        }
        fn signature(&self) -> FunctionSignature {
            FunctionSignature {
                parameters: vec![Parameter {
                    name: "s".into(),
                    ty: Type::String,
                    description: "text".into(),
                    allow_null: false,
                }],
                returns: Type::String,
                summary: "upper case".into(),
                description: "Upper-cases a string.".into(),
            }
        }
        async fn call(&self, args: Vec<Dynamic>) -> Result<Dynamic, FunctionError> {
            match args.first() {
                Some(Dynamic::String(s)) if !s.is_empty() => Ok(s.to_uppercase().into_dynamic()),
                _ => Err(FunctionError { text: "empty".into(), argument: Some(0) }),
            }
        }
    }

    #[async_trait]
    impl Provider for TestProvider {
        type Data = String;
        fn schema(&self) -> Schema {
            Schema::new(0, Block::new("p").attribute(Attribute::optional("label", Type::String, "l")))
        }
        async fn configure(&self, req: ConfigureRequest) -> Result<String, Diagnostics> {
            Ok(match req.config.get("label") {
                Dynamic::String(s) => s.clone(),
                _ => "unlabelled".into(),
            })
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<String>>> {
            vec![Arc::new(Thing), Arc::new(Panics)]
        }
        fn functions(&self) -> Vec<Arc<dyn Function>> {
            vec![Arc::new(Upper)]
        }
    }

    fn dv(v: &Dynamic) -> Option<pb::DynamicValue> {
        Some(encode(v, &thing_schema().value_type()).expect("encode"))
    }

    fn undv(v: Option<pb::DynamicValue>) -> Dynamic {
        decode(v.as_ref(), &thing_schema().value_type()).expect("decode")
    }

    async fn configured() -> ProviderService<TestProvider> {
        let svc = ProviderService::new(TestProvider);
        let config = Dynamic::object([("label", "L".into())]);
        let ty = TestProvider.schema().value_type();
        let r = svc
            .configure_provider(Request::new(pb::configure_provider::Request {
                terraform_version: "1.11.4".into(),
                config: Some(encode(&config, &ty).expect("encode")),
                client_capabilities: None,
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics.is_empty());
        svc
    }

    #[tokio::test]
    async fn schema_and_metadata_list_everything() {
        let svc = ProviderService::new(TestProvider);
        let s = svc.get_provider_schema(Request::new(Default::default())).await.expect("rpc").into_inner();
        assert_eq!(s.resource_schemas["test_thing"].version, 1);
        assert!(s.functions.contains_key("upper"));
        let m = svc.get_metadata(Request::new(Default::default())).await.expect("rpc").into_inner();
        assert_eq!(m.resources.len(), 2);
    }

    #[tokio::test]
    async fn validation_diagnostics_carry_the_attribute_path() {
        let svc = ProviderService::new(TestProvider);
        let config = Dynamic::object([("name", "a".into()), ("size", (-1i64).into_dynamic())]);
        let r = svc
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "test_thing".into(),
                config: dv(&config),
                client_capabilities: None,
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(r.diagnostics.len(), 1);
        let path = AttributePath::from_proto(r.diagnostics[0].attribute.as_ref().expect("path"));
        assert_eq!(path, AttributePath::root().attr("size"));
    }

    #[tokio::test]
    async fn plan_create_then_replace() {
        let svc = configured().await;
        let config = Dynamic::object([("name", "a".into())]);
        let plan = |prior: Dynamic, config: Dynamic| {
            let svc = svc.clone();
            async move {
                svc.plan_resource_change(Request::new(pb::plan_resource_change::Request {
                    type_name: "test_thing".into(),
                    prior_state: dv(&prior),
                    proposed_new_state: dv(&config),
                    config: dv(&config),
                    ..Default::default()
                }))
                .await
                .expect("rpc")
                .into_inner()
            }
        };
        let p = plan(Dynamic::Null, config.clone()).await;
        let planned = undv(p.planned_state);
        assert_eq!(planned.get("size"), &3i64.into_dynamic());
        assert_eq!(planned.get("id"), &Dynamic::Unknown);

        let applied = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_thing".into(),
                prior_state: dv(&Dynamic::Null),
                planned_state: dv(&planned),
                config: dv(&config),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(applied.private, b"secret");
        let state = undv(applied.new_state);
        assert_eq!(state.get("id"), &Dynamic::from("L"), "create sees the configured data");

        let p = plan(state.clone(), Dynamic::object([("name", "b".into())])).await;
        assert_eq!(p.requires_replace.len(), 1);
        assert_eq!(undv(p.planned_state).get("id"), &Dynamic::Unknown);

        // A warning of the resource's plan reaches the user along with the plan.
        let p = plan(state, Dynamic::object([("name", "a".into()), ("size", 13i64.into_dynamic())])).await;
        assert_eq!(undv(p.planned_state).get("size"), &13i64.into_dynamic());
        assert_eq!(p.diagnostics.len(), 1, "{:?}", p.diagnostics);
        assert_eq!(p.diagnostics[0].summary, "Unlucky size");
        assert_eq!(p.diagnostics[0].severity, pb::diagnostic::Severity::Warning as i32);
    }

    #[tokio::test]
    async fn read_of_a_vanished_resource_returns_null() {
        let svc = configured().await;
        let gone = Dynamic::object([("name", "gone".into()), ("size", 3i64.into_dynamic()), ("id", "x".into())]);
        let r = svc
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "test_thing".into(),
                current_state: dv(&gone),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics.is_empty());
        assert!(undv(r.new_state).is_null());
    }

    #[tokio::test]
    async fn old_state_is_upgraded_through_the_resource() {
        let svc = ProviderService::new(TestProvider);
        let r = svc
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "test_thing".into(),
                version: 0,
                raw_state: Some(pb::RawState {
                    json: br#"{"title":"t","size":2,"id":"i"}"#.to_vec(),
                    flatmap: HashMap::new(),
                }),
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let v = undv(r.upgraded_state);
        assert_eq!(v.get("name"), &Dynamic::from("t"));
        assert_eq!(v.get("size"), &2i64.into_dynamic());
    }

    #[tokio::test]
    async fn a_panic_becomes_a_diagnostic_and_the_server_lives_on() {
        let svc = configured().await;
        let planned = Dynamic::object([("name", "a".into()), ("size", 3i64.into_dynamic()), ("id", Dynamic::Unknown)]);
        let r = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_panics".into(),
                prior_state: dv(&Dynamic::Null),
                planned_state: dv(&planned),
                config: dv(&planned),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics[0].detail.contains("boom"), "{:?}", r.diagnostics);
        assert!(undv(r.new_state).is_null(), "a failed create saves nothing");
        let again = svc.get_metadata(Request::new(Default::default())).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn a_create_that_failed_half_way_saves_what_it_made_with_unknowns_as_null() {
        let svc = configured().await;
        let planned =
            Dynamic::object([("name", "half".into()), ("size", 3i64.into_dynamic()), ("id", Dynamic::Unknown)]);
        let r = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_thing".into(),
                prior_state: dv(&Dynamic::Null),
                planned_state: dv(&planned),
                config: dv(&planned),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(r.diagnostics.len(), 1);
        assert_eq!(r.diagnostics[0].summary, "failed half way");
        let saved = undv(r.new_state);
        assert_eq!(saved.get("name"), &Dynamic::from("half"));
        assert_eq!(saved.get("id"), &Dynamic::Null);
        assert_eq!(r.private, b"half");
    }

    #[tokio::test]
    async fn a_failed_update_keeps_the_prior_state() {
        let svc = configured().await;
        let prior = Dynamic::object([("name", "a".into()), ("size", 3i64.into_dynamic()), ("id", "x".into())]);
        let mut planned = prior.clone();
        planned.set("size", 4i64.into_dynamic());
        let r = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_panics".into(),
                prior_state: dv(&prior),
                planned_state: dv(&planned),
                config: dv(&planned),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(r.diagnostics.len(), 1);
        assert_eq!(undv(r.new_state), prior);
    }

    #[tokio::test]
    async fn stop_provider_cancels_in_flight_work_only() {
        let svc = configured().await;
        let state = Dynamic::object([("name", "a".into()), ("size", 3i64.into_dynamic()), ("id", "x".into())]);
        let reader = svc.clone();
        let stuck = tokio::spawn(async move {
            reader
                .read_resource(Request::new(pb::read_resource::Request {
                    type_name: "test_panics".into(),
                    current_state: dv(&state),
                    ..Default::default()
                }))
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        svc.stop_provider(Request::new(Default::default())).await.expect("stop");
        let r = tokio::time::timeout(Duration::from_secs(5), stuck).await.expect("cancelled").expect("join");
        let r = r.expect("rpc").into_inner();
        assert!(r.diagnostics[0].summary.contains("cancelled"));
        assert!(r.new_state.is_some(), "a cancelled read keeps the state");
        // New work after the stop still runs.
        let thing = Dynamic::object([("name", "a".into()), ("size", 3i64.into_dynamic()), ("id", "x".into())]);
        let r = svc
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "test_thing".into(),
                current_state: dv(&thing),
                ..Default::default()
            }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics.is_empty());
    }

    #[tokio::test]
    async fn functions_return_results_and_argument_errors() {
        let svc = ProviderService::new(TestProvider);
        let call = |arg: &str| {
            let svc = svc.clone();
            let arg = Dynamic::from(arg).to_msgpack(&Type::String).expect("encode");
            async move {
                svc.call_function(Request::new(pb::call_function::Request {
                    name: "upper".into(),
                    arguments: vec![pb::DynamicValue { msgpack: arg, json: Vec::new() }],
                }))
                .await
                .expect("rpc")
                .into_inner()
            }
        };
        let ok = call("abc").await;
        let v = Dynamic::from_msgpack(&ok.result.expect("result").msgpack).expect("decode");
        assert_eq!(v, Dynamic::from("ABC"));
        let err = call("").await.error.expect("error");
        assert_eq!(err.function_argument, Some(0));
    }

    #[test]
    fn fields_from_a_newer_protocol_minor_are_ignored() {
        use prost::Message;
        let req = pb::plan_resource_change::Request { type_name: "test_thing".into(), ..Default::default() };
        let mut bytes = req.encode_to_vec();
        // Field 99 (varint 1) and field 100 (bytes "new"), unknown to protocol 6.8.
        bytes.extend_from_slice(&[0x98, 0x06, 0x01, 0xa2, 0x06, 0x03, b'n', b'e', b'w']);
        let decoded = pb::plan_resource_change::Request::decode(bytes.as_slice()).expect("decode");
        assert_eq!(decoded.type_name, "test_thing");
    }

    #[tokio::test]
    async fn unknown_types_are_diagnostics_not_crashes() {
        let svc = configured().await;
        let r = svc
            .read_resource(Request::new(pb::read_resource::Request { type_name: "nope".into(), ..Default::default() }))
            .await
            .expect("rpc")
            .into_inner();
        assert!(r.diagnostics[0].detail.contains("nope"));
    }
}
