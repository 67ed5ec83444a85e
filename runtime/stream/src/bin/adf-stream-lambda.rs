//! The stream Lambda: serves one topic's HTTP API (see `adf_stream::http`) behind a Function
//! URL. `main` only wires clients and configuration from the environment
//! ([`TopicConfig`]'s variables: `ADF_TOPIC`, `ADF_PARTITIONS`, `ADF_BUCKET`, `ADF_PREFIX`,
//! `ADF_TABLE`, `ADF_RETENTION_DAYS`, `ADF_COMPRESS`).

use adf_common::contract::EnvSettings;
use adf_stream::{Stream, TopicConfig, http};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Lambda's logging controls: JSON lines and the level when the function asks for them.
    lambda_http::tracing::init_default_subscriber();
    let topic = TopicConfig::from_env()?;
    let config = adf_common::sdk::load().await;
    // Path-style bucket addressing with a custom endpoint (an emulator).
    let s3 = adf_common::sdk::s3_client(&config);
    // Produce and consume counts, bytes and latencies as EMF lines on stdout: no API call.
    let metrics = adf_common::metrics::Metrics::from_env(adf_stream::METRICS_NAMESPACE, &config)
        .with_dimension("Topic", &topic.name);
    let stream = Stream::new(s3, aws_sdk_dynamodb::Client::new(&config), topic).with_metrics(metrics);
    let stream = &stream;
    lambda_http::run(service_fn(move |req: Request| async move { Ok::<_, Error>(http::handle(stream, req).await) }))
        .await
}
