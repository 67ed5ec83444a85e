//! The `adf_lambda_package` data source: the same build as the resource, done while reading,
//! for configurations that want the zip without a resource in state.

use async_trait::async_trait;
use tfplug::{Ctx, DataSource, Diagnostic, Diagnostics, Dynamic, Schema};

use crate::config::AdfData;
use crate::resources::lambda_package::{TYPE, build, schema, set_outputs, spec_of, validate};

/// The `adf_lambda_package` data source.
#[derive(Debug, Default)]
pub struct LambdaPackageData;

#[async_trait]
impl DataSource<AdfData> for LambdaPackageData {
    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> Schema {
        schema(
            "Builds (or takes from the cache) a reproducible Lambda zip from Rust, Go or Ruby sources while \
             Terraform reads data sources. Same attributes as the `adf_lambda_package` resource.",
        )
    }

    async fn validate(&self, config: &Dynamic) -> Diagnostics {
        validate(config)
    }

    async fn read(&self, _ctx: &Ctx<AdfData>, config: Dynamic) -> Result<Dynamic, Diagnostics> {
        let Some(spec) = spec_of(&config)? else {
            return Err(Diagnostic::error(format!("reading {TYPE}"), "the configuration is not wholly known").into());
        };
        let artifact = build(spec).await?;
        let mut v = config;
        set_outputs(&mut v, &artifact);
        Ok(v)
    }
}
