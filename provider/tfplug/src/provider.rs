//! The typed traits a provider implements: [`Provider`], [`Resource`], [`DataSource`] and
//! [`Function`]. Only the lifecycle is mandatory; validation, plan modification, import and
//! state upgrade are opt-in through default methods.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{Schema, Type};
use crate::value::Dynamic;

/// What every handler gets: the configured provider data and the stop signal.
#[derive(Debug)]
pub struct Ctx<D> {
    data: Option<Arc<D>>,
    cancel: CancellationToken,
}

impl<D> Ctx<D> {
    /// A context over `data` (None before `ConfigureProvider`).
    pub fn new(data: Option<Arc<D>>, cancel: CancellationToken) -> Self {
        Self { data, cancel }
    }

    /// The configured provider data, or an error diagnostic when the provider is not configured.
    pub fn data(&self) -> Result<&D, Diagnostics> {
        self.data.as_deref().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "This operation needs a configured provider; Terraform did not call ConfigureProvider first.",
            )
            .into()
        })
    }

    /// Cancelled when Terraform sends `StopProvider` (for example on Ctrl-C).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// The arguments of `ConfigureProvider`.
#[derive(Clone, Debug)]
pub struct ConfigureRequest {
    /// The calling Terraform's version.
    pub terraform_version: String,
    /// The provider block's value.
    pub config: Dynamic,
}

/// A provider: its own configuration, and the resources, data sources and functions it serves.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What configuring produces and every resource handler receives (clients, defaults).
    type Data: Send + Sync + 'static;

    /// The provider block's schema.
    fn schema(&self) -> Schema;

    /// Checks the provider block; values may still be unknown.
    async fn validate(&self, _config: &Dynamic) -> Diagnostics {
        Diagnostics::new()
    }

    /// Builds the provider data from a wholly known configuration.
    async fn configure(&self, req: ConfigureRequest) -> Result<Self::Data, Diagnostics>;

    /// The managed resource types.
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Data>>>;

    /// The data source types.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Data>>> {
        Vec::new()
    }

    /// The provider functions.
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        Vec::new()
    }
}

/// A resource's value plus the private bytes Terraform keeps for it and never shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// The state value, shaped by the resource schema.
    pub value: Dynamic,
    /// Provider-private data stored beside the state.
    pub private: Vec<u8>,
}

impl State {
    /// A state without private data.
    pub fn new(value: Dynamic) -> Self {
        Self { value, private: Vec::new() }
    }
}

/// A create that failed: its diagnostics, and the state of what it made before it failed.
/// Terraform records a partial state as tainted, so the next apply replaces it (deleting what
/// was made through that state) instead of losing track of it.
#[derive(Clone, Debug, Default)]
pub struct CreateError {
    /// What went wrong.
    pub diagnostics: Diagnostics,
    /// What exists now, when anything does; its unknown values are saved as null.
    pub partial: Option<State>,
}

impl From<Diagnostics> for CreateError {
    fn from(diagnostics: Diagnostics) -> Self {
        Self { diagnostics, partial: None }
    }
}

/// The arguments of a plan, after the server applied schema defaults and unknowns.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The configuration (may hold unknowns).
    pub config: Dynamic,
    /// The prior state; null when creating.
    pub prior: Dynamic,
    /// The private data of the prior state.
    pub prior_private: Vec<u8>,
}

/// A plan the resource may adjust in [`Resource::modify_plan`].
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The planned new state.
    pub planned: Dynamic,
    /// Attributes whose change replaces the resource.
    pub requires_replace: Vec<crate::diag::AttributePath>,
    /// Private data carried to apply.
    pub private: Vec<u8>,
}

/// The arguments of create and update.
#[derive(Clone, Debug)]
pub struct ApplyRequest {
    /// The configuration, wholly known.
    pub config: Dynamic,
    /// The planned state; unknowns are what apply must fill in.
    pub planned: Dynamic,
    /// The prior state: null on create.
    pub prior: State,
    /// Private data from the plan.
    pub planned_private: Vec<u8>,
}

/// A managed resource type.
#[async_trait]
pub trait Resource<D>: Send + Sync {
    /// `adf_something`.
    fn type_name(&self) -> &'static str;

    /// The schema, with its version.
    fn schema(&self) -> Schema;

    /// Checks a configuration; values may be unknown.
    async fn validate(&self, _config: &Dynamic) -> Diagnostics {
        Diagnostics::new()
    }

    /// Adjusts the plan that the server derived from the schema (defaults, computed
    /// unknowns, `requires_replace`). Runs after the provider is configured.
    async fn modify_plan(&self, _ctx: &Ctx<D>, _req: &PlanRequest, _plan: &mut Plan) -> Diagnostics {
        Diagnostics::new()
    }

    /// Creates the resource. On error only [`CreateError::partial`] is saved (tainted).
    async fn create(&self, ctx: &Ctx<D>, req: ApplyRequest) -> Result<State, CreateError>;

    /// Reads the real resource. `Ok(None)` means it is gone and leaves the state.
    async fn read(&self, ctx: &Ctx<D>, state: State) -> Result<Option<State>, Diagnostics>;

    /// Updates in place. On error the prior state is kept.
    async fn update(&self, ctx: &Ctx<D>, req: ApplyRequest) -> Result<State, Diagnostics>;

    /// Deletes. On error the prior state is kept.
    async fn delete(&self, ctx: &Ctx<D>, state: State) -> Result<(), Diagnostics>;

    /// Builds a state from an import id; Terraform then calls [`Resource::read`].
    async fn import(&self, _ctx: &Ctx<D>, _id: &str) -> Result<State, Diagnostics> {
        Err(Diagnostic::error("Import not supported", format!("{} cannot be imported.", self.type_name())).into())
    }

    /// Upgrades state stored by schema `version` (older than the current one) to the next
    /// version's JSON. The server calls it repeatedly until the version is current.
    async fn upgrade_state(&self, version: i64, _state: serde_json::Value) -> Result<serde_json::Value, Diagnostics> {
        Err(Diagnostic::error(
            "Unsupported state version",
            format!("{} has no upgrade from schema version {version}.", self.type_name()),
        )
        .into())
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource<D>: Send + Sync {
    /// `adf_something`.
    fn type_name(&self) -> &'static str;

    /// The schema.
    fn schema(&self) -> Schema;

    /// Checks a configuration; values may be unknown.
    async fn validate(&self, _config: &Dynamic) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads, from a wholly known configuration, the data source's value.
    async fn read(&self, ctx: &Ctx<D>, config: Dynamic) -> Result<Dynamic, Diagnostics>;
}

/// One parameter of a [`Function`].
#[derive(Clone, Debug)]
pub struct Parameter {
    /// Display name.
    pub name: String,
    /// Type constraint.
    pub ty: Type,
    /// What it is.
    pub description: String,
    /// Whether null may be passed.
    pub allow_null: bool,
}

/// A function's signature and documentation.
#[derive(Clone, Debug)]
pub struct FunctionSignature {
    /// Positional parameters.
    pub parameters: Vec<Parameter>,
    /// The result type.
    pub returns: Type,
    /// One line.
    pub summary: String,
    /// Markdown documentation.
    pub description: String,
}

/// A function's failure, optionally blaming one argument.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct FunctionError {
    /// What went wrong.
    pub text: String,
    /// The index of the argument at fault.
    pub argument: Option<i64>,
}

/// A provider function, called as `provider::adf::name(...)`.
#[async_trait]
pub trait Function: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;

    /// Its signature.
    fn signature(&self) -> FunctionSignature;

    /// Calls it with known arguments.
    async fn call(&self, args: Vec<Dynamic>) -> Result<Dynamic, FunctionError>;
}
