//! tfplug: a thin server for Terraform's plugin protocol 6 (Terraform >= 1.0, OpenTofu).
//!
//! A provider implements [`Provider`] and a [`Resource`] per managed resource type, then calls
//! [`run`] from `main`. This crate does the go-plugin handshake (magic cookie, unix socket or
//! TCP, AutoMTLS), serves `tfplugin6.Provider` plus go-plugin's controller, stdio and health
//! services, decodes and encodes values by schema, and plans defaults, computed unknowns and
//! replacements from the schema before the resource adjusts the plan.

mod diag;
mod handshake;
mod plan;
mod provider;
mod schema;
mod serde_bridge;
mod server;
mod tls;
mod value;

/// Generated protocol code: `tfplugin6` and go-plugin's `plugin` package.
pub mod proto {
    /// The Terraform plugin protocol, version 6.8.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin's controller and stdio services.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

pub use diag::{AttributePath, Diagnostic, Diagnostics, Severity, Step};
pub use handshake::{HandshakeEnv, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PROTOCOL_VERSION, ServeError, run, serve};
pub use provider::{
    ApplyRequest, ConfigureRequest, CreateError, Ctx, DataSource, Function, FunctionError, FunctionSignature,
    Parameter, Plan, PlanRequest, Provider, Resource, State,
};
pub use schema::{Attribute, Block, Check, Mode, NestedBlock, Nesting, Schema, Type};
pub use serde_bridge::{DynamicError, from_dynamic, to_dynamic};
pub use server::ProviderService;
pub use tls::{ServerTls, TlsError, crypto_provider, server_tls};
pub use value::{Dynamic, FromDynamic, IntoDynamic, ObjectReader, Value, ValueError};
