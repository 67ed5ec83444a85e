//! `adf_stream_topic`'s schema and its plan-time checks.

use tfplug::{Attribute, AttributePath, Check, Diagnostics, Dynamic, ObjectReader, Schema, Type, Value};

use super::{MAX_NAME, MAX_PARTITIONS};

use crate::resources::driver::attributes::{
    AUTH_TYPE, check_kms_key_arn, check_name, output, outputs_of, runtime_function, runtime_function_outputs,
    tags_and_id,
};
use crate::resources::driver::timeouts_block;

pub(super) fn schema() -> Schema {
    Schema::new(
        0,
        tfplug::Block::new(
            "A Kafka-like topic: records are appended to partitions as zstd-compressed segment objects in S3, \
             offsets and consumer groups live in DynamoDB, and the stream Lambda released with the provider \
             serves the HTTP API (produce, consume, consumer groups, describe) through a Function URL. Nothing \
             runs while the topic is idle. The bucket is private, encrypted and TLS-only; segments expire \
             after `retention_days`.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Topic name: 1 to 39 lowercase letters, digits and `-`, starting with a letter. It names the \
                 function and table `adf-stream-<name>` and the bucket `adf-stream-<name>-<account id>`. \
                 Changing it replaces the topic.",
            )
            .requires_replace(),
        )
        .defaulted(
            "partitions",
            Type::Number,
            "Partitions, 1 to 1024. Records with the same key go to the same partition and keep their order. \
             It can grow (keys then map to other partitions for new records) but never shrink. Default `1`.",
            1i64,
        )
        .check(Check::Range(1, MAX_PARTITIONS))
        .defaulted(
            "retention_days",
            Type::Number,
            "Days records are kept, at least 1. Segments expire by S3 lifecycle (kept 2 days longer than their \
             log entries, which expire by DynamoDB TTL). Default `7`.",
            7i64,
        )
        .check(Check::Range(1, 36_500))
        .defaulted("compression", Type::Bool, "Compress segments with zstd. Default `true`.", true)
        .attribute(
            Attribute::optional(
                "bucket",
                Type::String,
                "An existing bucket to store segments in, under `prefix`. The provider then only adds one \
                 lifecycle rule to it and leaves its policy and encryption to you. When null, the provider \
                 creates a private, encrypted, TLS-only bucket. Changing it replaces the topic.",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed(
                "prefix",
                Type::String,
                "Key prefix of the segments (`<prefix><name>/<partition>/...`), empty or ending in `/`. Default \
                 `adf-streams/` in a bucket of yours, empty in the managed bucket. Changing it replaces the topic.",
            )
            .requires_replace(),
        )
        .optional(
            "kms_key_arn",
            Type::String,
            "ARN of a customer managed KMS key for the managed bucket (SSE-KMS) and the table. When null, \
             SSE-S3 and the AWS owned DynamoDB key encrypt at rest.",
        )
        .defaulted(
            "force_destroy",
            Type::Bool,
            "Delete the stored segments on destroy. Without it, destroying a topic whose managed bucket holds \
             segments fails and deletes nothing; in a bucket of yours the segments are left to the lifecycle \
             rule. Default `false`.",
            false,
        )
        .defaulted(
            "auth_type",
            Type::String,
            "Function URL auth: `AWS_IAM` (default: requests are SigV4-signed; grant `lambda:InvokeFunctionUrl`) \
             or `NONE` (public: anyone with the URL can produce and consume).",
            "AWS_IAM",
        )
        .check(AUTH_TYPE)
        .attributes(runtime_function("the stream Lambda", 512, 30, ""))
        .optional(
            "lambda_zip",
            Type::String,
            "Path to a stream Lambda zip of your own (for example `adf_lambda_package.stream.output_path`, built \
             from a crate using `adf-stream`), x86_64. When null, the zip released with the provider is deployed.",
        )
        .attributes(tags_and_id())
        .attribute(output("endpoint", "The Function URL serving the topic's HTTP API (ends in `/`)."))
        .attribute(output("bucket_name", "The bucket holding the segments."))
        .attributes(outputs_of(
            "table",
            "the DynamoDB table of offsets, the segment index and consumer groups",
            &["name", "arn"],
        ))
        .attributes(runtime_function_outputs("the stream Lambda", ", `adf-stream-<name>`"))
        .block("timeouts", tfplug::Nesting::Single, timeouts_block("15m")),
    )
}

pub(super) fn validate_name(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let starts = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || !starts || name.ends_with('-') {
        return Err(format!(
            "Expected 1 to {MAX_NAME} lowercase letters, digits and '-', starting with a letter and not ending \
             with '-' (it names an S3 bucket), got {name:?}."
        ));
    }
    Ok(())
}

pub(super) fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    check_name(&mut d, config, "topic", validate_name);
    if let Some(Value::Known(p)) = d.take(o.get::<Value<String>>("prefix"))
        && !(p.is_empty() || (p.ends_with('/') && !p.starts_with('/')))
    {
        d.error_at(
            root.attr("prefix"),
            "Invalid prefix",
            format!("Expected an empty prefix or one ending in '/' (and not starting with one), got {p:?}."),
        );
    }
    if let Some(Value::Known(b)) = d.take(o.get::<Value<String>>("bucket"))
        && !(3..=63).contains(&b.len())
    {
        d.error_at(
            root.attr("bucket"),
            "Invalid bucket",
            format!("S3 bucket names have 3 to 63 characters, got {b:?}."),
        );
    }
    check_kms_key_arn(&mut d, config, "");
    d
}
