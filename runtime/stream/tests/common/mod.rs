//! A topic on a fresh emulator: bucket, table and clients.

use adf_acceptance::faults::Faults;
use adf_acceptance::{Emulator, unique_name};
use adf_stream::{Stream, TopicConfig};
use anyhow::Result;

pub struct Fixture {
    _emu: Emulator,
    config: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub topic: TopicConfig,
}

fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

impl Fixture {
    pub async fn new(partitions: u32) -> Result<Self> {
        let emu = Emulator::start()?;
        let config = adf_acceptance::sdk_config(emu.endpoint()).await;
        let s3 = s3_client(&config);
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let name = unique_name("topic");
        let topic = TopicConfig {
            name: name.clone(),
            partitions,
            bucket: name.clone(),
            prefix: "segments/".into(),
            table: name,
            retention_days: 7,
            compress: true,
        };
        let fx = Self { _emu: emu, config, s3, ddb, topic };
        fx.stream().create_storage().await?;
        Ok(fx)
    }

    pub fn stream(&self) -> Stream {
        Stream::new(self.s3.clone(), self.ddb.clone(), self.topic.clone())
    }

    /// An engine of the same topic whose AWS calls go through `faults`.
    pub fn stream_with(&self, faults: &Faults) -> Stream {
        let config = faults.wrap(&self.config);
        Stream::new(s3_client(&config), aws_sdk_dynamodb::Client::new(&config), self.topic.clone())
    }
}
