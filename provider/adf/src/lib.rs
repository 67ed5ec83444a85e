//! terraform-provider-adf: ActiveDataFlow's Terraform and OpenTofu provider.
//!
//! [`AdfProvider`] wires the provider block ([`config`]) to the resources ([`resources`]);
//! `main` hands it to [`tfplug::run`].

pub mod aws;
pub mod config;
pub mod data_sources;
pub mod docs;
#[doc(hidden)]
pub mod fuzzing;
pub mod resources;
pub mod runtimes;

use std::sync::Arc;

use async_trait::async_trait;
use tfplug::{ConfigureRequest, DataSource, Diagnostics, Dynamic, Provider, Resource, Schema};

use crate::config::AdfData;
use crate::resources::driver::Driver;

/// The provider's source in the registries (Terraform's and OpenTofu's), without the host.
pub const SOURCE: &str = "activedataflow/adf";

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
            Arc::new(Driver(resources::workflow_tables::WorkflowTables)),
            Arc::new(resources::lambda_package::LambdaPackage),
            Arc::new(Driver(resources::function::Function)),
            Arc::new(Driver(resources::stream_topic::StreamTopic)),
            Arc::new(Driver(resources::workflow::Workflow)),
            Arc::new(Driver(resources::kv_namespace::KvNamespace)),
            Arc::new(Driver(resources::object_bucket::ObjectBucket)),
            Arc::new(Driver(resources::cache::Cache)),
            Arc::new(Driver(resources::ecr_repository::EcrRepository)),
            Arc::new(Driver(resources::http_api::HttpApi)),
            Arc::new(Driver(resources::event_source::EventSource)),
            Arc::new(Driver(resources::function_alias::FunctionAlias)),
            Arc::new(Driver(resources::cloudformation_stack::CloudFormationStack)),
            Arc::new(Driver(resources::kafka_cluster::KafkaCluster)),
            Arc::new(Driver(resources::kafka_topic::KafkaTopic)),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<AdfData>>> {
        vec![Arc::new(data_sources::lambda_package::LambdaPackageData)]
    }
}

#[cfg(test)]
mod tests {
    use tfplug::Type;

    use crate::resources::driver::Managed;
    use crate::resources::workflow::Workflow;
    use crate::resources::workflow_tables::WorkflowTables;

    #[test]
    fn adf_workflow_takes_a_whole_adf_workflow_tables() {
        let s = (Workflow::KIND.schema)();
        let tables = s.block.find("tables").expect("tables");
        let Type::Object(fields) = &tables.ty else { panic!("tables is an object") };
        let theirs = (WorkflowTables::KIND.schema)();
        for (k, ty) in fields {
            let attr = theirs.block.find(k).unwrap_or_else(|| panic!("adf_workflow_tables has no {k}"));
            assert_eq!(&attr.ty, ty, "{k}");
        }
    }
}
