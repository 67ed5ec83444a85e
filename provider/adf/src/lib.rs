//! terraform-provider-adf: ActiveDataFlow's Terraform and OpenTofu provider.
//!
//! [`AdfProvider`] wires the provider block ([`config`]) to the resources ([`resources`]);
//! `main` hands it to [`tfplug::run`].

pub mod aws;
pub mod config;
pub mod data_sources;
pub mod docs;
pub mod resources;

use std::sync::Arc;

use async_trait::async_trait;
use tfplug::{ConfigureRequest, DataSource, Diagnostics, Dynamic, Provider, Resource, Schema};

use crate::config::AdfData;

/// The provider's source address in the registries.
pub const ADDRESS: &str = "registry.terraform.io/activedataflow/adf";

/// The ActiveDataFlow provider.
#[derive(Debug, Default)]
pub struct AdfProvider;

#[async_trait]
impl Provider for AdfProvider {
    type Data = AdfData;

    fn schema(&self) -> Schema {
        config::schema()
    }

    async fn validate(&self, config: &Dynamic) -> Diagnostics {
        config::validate(config)
    }

    async fn configure(&self, req: ConfigureRequest) -> Result<AdfData, Diagnostics> {
        config::configure(&req.config).await
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<AdfData>>> {
        vec![
            Arc::new(resources::workflow_tables::WorkflowTables),
            Arc::new(resources::lambda_package::LambdaPackage),
            Arc::new(resources::function::Function),
            Arc::new(resources::stream_topic::StreamTopic),
            Arc::new(resources::workflow::Workflow),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<AdfData>>> {
        vec![Arc::new(data_sources::lambda_package::LambdaPackageData)]
    }
}
