//! The stream Lambda: serves one topic's HTTP API (see `adf_stream::http`) behind a Function
//! URL. `main` only wires clients and configuration from the environment.

use adf_stream::{Stream, TopicConfig, http};
use lambda_http::{Error, Request, service_fn};

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| Error::from(format!("{name} is not set")))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // CloudWatch timestamps every line already.
    tracing_subscriber::fmt().with_ansi(false).without_time().init();
    let topic = TopicConfig {
        name: env("ADF_TOPIC")?,
        partitions: env("ADF_PARTITIONS")?.parse()?,
        bucket: env("ADF_BUCKET")?,
        prefix: std::env::var("ADF_PREFIX").unwrap_or_default(),
        table: env("ADF_TABLE")?,
        retention_days: env("ADF_RETENTION_DAYS")?.parse()?,
        compress: std::env::var("ADF_COMPRESS").map_or(true, |v| v != "false"),
    };
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Emulators need path-style bucket addressing.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style).build());
    let stream = Stream::new(s3, aws_sdk_dynamodb::Client::new(&config), topic);
    let stream = &stream;
    lambda_http::run(service_fn(move |req: Request| async move { Ok::<_, Error>(http::handle(stream, req).await) }))
        .await
}
