//! S3 storage: a private, encrypted, TLS-only bucket a resource owns, or a prefix in a bucket
//! the user brings. Either way the resource's one lifecycle rule expires what it writes and
//! aborts its incomplete multipart uploads. Versioning and CORS for object buckets.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CorsConfiguration, CorsRule, CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use serde_json::json;

use super::error::{AwsError, Sent, Target, call};
use super::{AwsClients, Owner};

/// Days segments outlive their log entries: DynamoDB TTL deletes within about 48 hours, so
/// no log entry points at an expired segment.
pub const EXPIRY_MARGIN_DAYS: i64 = 2;

/// Where and how segments are stored.
#[derive(Clone, Debug)]
pub struct Storage {
    /// The bucket.
    pub bucket: String,
    /// Whether this resource created and owns the bucket.
    pub managed: bool,
    /// The resource's lifecycle rule.
    pub rule: Rule,
    /// KMS key for SSE-KMS; None: SSE-S3.
    pub kms_key_arn: Option<String>,
    /// Tags of a managed bucket, the owner tag included.
    pub tags: BTreeMap<String, String>,
    /// Deny every request not made over TLS (off only when S3 is an emulator on plain HTTP).
    pub tls_only: bool,
}

/// The one lifecycle rule a resource keeps on a bucket (other rules are left alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// The rule's id.
    pub id: String,
    /// The key prefix it applies to (empty: the whole bucket).
    pub prefix: String,
    /// Days after which objects expire.
    pub expiration_days: Option<i64>,
    /// Days after which incomplete multipart uploads are aborted.
    pub abort_incomplete_upload_days: Option<i64>,
}

/// CORS for browsers uploading and downloading through presigned URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins.
    pub allow_origins: Vec<String>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    pub allow_headers: Vec<String>,
    /// Response headers browsers may read.
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer.
    pub max_age_seconds: Option<i64>,
}

/// Whether `bucket` exists (and we may see it).
pub async fn exists(s3: &Client, bucket: &str) -> Result<bool, AwsError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
        Err(e) => Err(call("HeadBucket", Target::bucket(bucket), &e)),
    }
}

/// The bucket's tags (none when it has no tag set).
pub async fn tags(s3: &Client, bucket: &str) -> Result<BTreeMap<String, String>, AwsError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out.tag_set.into_iter().map(|t| (t.key, t.value)).collect()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(BTreeMap::new()),
        Err(e) => Err(call("GetBucketTagging", Target::bucket(bucket), &e)),
    }
}

/// The bucket's lifecycle rules (none when it has no configuration).
async fn rules(s3: &Client, bucket: &str) -> Result<Vec<LifecycleRule>, AwsError> {
    match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(out) => Ok(out.rules.unwrap_or_default()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(Vec::new()),
        Err(e) => Err(call("GetBucketLifecycleConfiguration", Target::bucket(bucket), &e)),
    }
}

/// Our lifecycle rule `id`, as the bucket has it, if it exists.
pub async fn rule(s3: &Client, bucket: &str, id: &str) -> Result<Option<Rule>, AwsError> {
    Ok(rules(s3, bucket).await?.into_iter().find(|r| r.id.as_deref() == Some(id)).map(|r| Rule {
        id: id.to_string(),
        prefix: r.filter.and_then(|f| f.prefix).unwrap_or_default(),
        expiration_days: r.expiration.and_then(|e| e.days).map(i64::from),
        abort_incomplete_upload_days: r
            .abort_incomplete_multipart_upload
            .and_then(|a| a.days_after_initiation)
            .map(i64::from),
    }))
}

/// The versioning status of `bucket`; None when it was never versioned.
async fn versioning_status(s3: &Client, bucket: &str) -> Result<Option<BucketVersioningStatus>, AwsError> {
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => Ok(out.status),
        // moto names the answer's root element `GetBucketVersioningResponse` (S3 says
        // `VersioningConfiguration`), which the SDK refuses to parse; the status is still in it.
        Err(e) => match e.raw_response().and_then(|r| r.body().bytes()).map(String::from_utf8_lossy) {
            Some(body) if body.contains("<GetBucketVersioningResponse") => Ok(["Enabled", "Suspended"]
                .into_iter()
                .find(|s| body.contains(&format!("<Status>{s}</Status>")))
                .map(BucketVersioningStatus::from)),
            _ => Err(call("GetBucketVersioning", Target::bucket(bucket), &e)),
        },
    }
}

/// Whether versioning is enabled on `bucket`.
pub async fn versioning(s3: &Client, bucket: &str) -> Result<bool, AwsError> {
    Ok(versioning_status(s3, bucket).await? == Some(BucketVersioningStatus::Enabled))
}

/// Enables versioning on `bucket`, or suspends it (a bucket never versioned stays so).
pub async fn put_versioning(s3: &Client, bucket: &str, enabled: bool) -> Result<(), AwsError> {
    if !enabled && !versioning(s3, bucket).await? {
        return Ok(());
    }
    let status = if enabled { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .at(Target::bucket(bucket))?;
    Ok(())
}

/// The bucket's CORS (its first rule), if it has any.
pub async fn cors(s3: &Client, bucket: &str) -> Result<Option<Cors>, AwsError> {
    match s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => Ok(out.cors_rules.unwrap_or_default().into_iter().next().map(|r| Cors {
            allow_origins: r.allowed_origins,
            allow_methods: r.allowed_methods,
            allow_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds.map(i64::from),
        })),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
        Err(e) => Err(call("GetBucketCors", Target::bucket(bucket), &e)),
    }
}

/// Sets the bucket's CORS to `cors`, or removes it.
pub async fn put_cors(s3: &Client, bucket: &str, cors: Option<&Cors>) -> Result<(), AwsError> {
    let Some(c) = cors else {
        s3.delete_bucket_cors().bucket(bucket).send().await.at(Target::bucket(bucket))?;
        return Ok(());
    };
    let rule = CorsRule::builder()
        .set_allowed_origins(Some(c.allow_origins.clone()))
        .set_allowed_methods(Some(c.allow_methods.clone()))
        .set_allowed_headers(Some(c.allow_headers.clone()))
        .set_expose_headers(Some(c.expose_headers.clone()))
        .set_max_age_seconds(c.max_age_seconds.and_then(|s| i32::try_from(s).ok()))
        .build()
        .map_err(AwsError::build)?;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build().map_err(AwsError::build)?)
        .send()
        .await
        .at(Target::bucket(bucket))?;
    Ok(())
}

/// The ARN of `bucket` in `partition`.
pub fn bucket_arn(partition: &str, bucket: &str) -> String {
    format!("arn:{partition}:s3:::{bucket}")
}

/// The policy that refuses every request not made over TLS.
pub fn tls_only_policy(partition: &str, bucket: &str) -> String {
    let arn = bucket_arn(partition, bucket);
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn.clone(), format!("{arn}/*")],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } }
        }]
    })
    .to_string()
}

/// Creates the managed bucket tagged with `owner` (`storage.tags` carry it) or takes the one
/// `owner` owns, or checks the user's, then sets what `storage` asks.
pub async fn ensure(aws: &AwsClients, storage: &Storage, owner: &Owner) -> Result<(), AwsError> {
    let (s3, b) = (&aws.s3, storage.bucket.as_str());
    let region = aws.sdk.region().map(ToString::to_string).unwrap_or_default();
    if !storage.managed {
        if !exists(s3, b).await? {
            return Err(AwsError::Invalid(format!("bucket {b} does not exist (it is the `bucket` attribute)")));
        }
        return put_rule(s3, storage).await;
    }
    if exists(s3, b).await? {
        owner.check("S3 bucket", b, &tags(s3, b).await?)?;
    } else {
        let mut req = s3.create_bucket().bucket(b).object_ownership(ObjectOwnership::BucketOwnerEnforced);
        if region != "us-east-1" {
            let location = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build();
            req = req.create_bucket_configuration(location);
        }
        match req.send().await {
            Ok(_) => owner.made_one(),
            // This account made it since we looked: its tags decide.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {
                owner.check("S3 bucket", b, &tags(s3, b).await?)?;
            }
            Err(e) => return Err(call("CreateBucket", Target::bucket(b), &e)),
        }
    }
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(b)
        .public_access_block_configuration(block)
        .send()
        .await
        .at(Target::bucket(b))?;
    let ownership = OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .map_err(AwsError::build)?,
        )
        .build()
        .map_err(AwsError::build)?;
    s3.put_bucket_ownership_controls().bucket(b).ownership_controls(ownership).send().await.at(Target::bucket(b))?;
    let default = match &storage.kms_key_arn {
        Some(k) => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::AwsKms).kms_master_key_id(k)
        }
        None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default.build().map_err(AwsError::build)?)
        .bucket_key_enabled(storage.kms_key_arn.is_some())
        .build();
    s3.put_bucket_encryption()
        .bucket(b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(AwsError::build)?,
        )
        .send()
        .await
        .at(Target::bucket(b))?;
    if storage.tls_only {
        s3.put_bucket_policy()
            .bucket(b)
            .policy(tls_only_policy(&aws.partition, b))
            .send()
            .await
            .at(Target::bucket(b))?;
    }
    let mut tag_set = Vec::new();
    for (k, v) in &storage.tags {
        tag_set.push(Tag::builder().key(k).value(v).build().map_err(AwsError::build)?);
    }
    s3.put_bucket_tagging()
        .bucket(b)
        .tagging(Tagging::builder().set_tag_set(Some(tag_set)).build().map_err(AwsError::build)?)
        .send()
        .await
        .at(Target::bucket(b))?;
    put_rule(s3, storage).await
}

/// Puts our lifecycle rule, keeping every other rule of the bucket.
async fn put_rule(s3: &Client, storage: &Storage) -> Result<(), AwsError> {
    let b = storage.bucket.as_str();
    let r = &storage.rule;
    let days = |d: i64| i32::try_from(d).unwrap_or(i32::MAX);
    let ours = LifecycleRule::builder()
        .id(&r.id)
        .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
        .status(ExpirationStatus::Enabled)
        .set_expiration(r.expiration_days.map(|d| LifecycleExpiration::builder().days(days(d)).build()))
        .set_abort_incomplete_multipart_upload(
            r.abort_incomplete_upload_days
                .map(|d| AbortIncompleteMultipartUpload::builder().days_after_initiation(days(d)).build()),
        )
        .build()
        .map_err(AwsError::build)?;
    let mut all: Vec<LifecycleRule> =
        rules(s3, b).await?.into_iter().filter(|r| r.id.as_deref() != Some(&storage.rule.id)).collect();
    all.push(ours);
    s3.put_bucket_lifecycle_configuration()
        .bucket(b)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder().set_rules(Some(all)).build().map_err(AwsError::build)?,
        )
        .send()
        .await
        .at(Target::bucket(b))?;
    Ok(())
}

/// Removes our lifecycle rule from a bucket we do not own; a missing bucket is fine.
async fn remove_rule(s3: &Client, storage: &Storage) -> Result<(), AwsError> {
    let b = storage.bucket.as_str();
    if !exists(s3, b).await? {
        return Ok(());
    }
    let current = rules(s3, b).await?;
    let rest: Vec<LifecycleRule> =
        current.iter().filter(|r| r.id.as_deref() != Some(&storage.rule.id)).cloned().collect();
    if rest.len() == current.len() {
        return Ok(());
    }
    if rest.is_empty() {
        s3.delete_bucket_lifecycle().bucket(b).send().await.at(Target::bucket(b))?;
    } else {
        s3.put_bucket_lifecycle_configuration()
            .bucket(b)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder().set_rules(Some(rest)).build().map_err(AwsError::build)?,
            )
            .send()
            .await
            .at(Target::bucket(b))?;
    }
    Ok(())
}

/// Whether any object exists under `prefix`.
pub async fn has_objects(s3: &Client, bucket: &str, prefix: &str) -> Result<bool, AwsError> {
    let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).max_keys(1).send().await.at(Target::bucket(bucket))?;
    Ok(out.key_count.unwrap_or_default() > 0 || !out.contents.unwrap_or_default().is_empty())
}

/// Deletes every object under `prefix`, a thousand per request.
async fn empty(s3: &Client, bucket: &str, prefix: &str) -> Result<(), AwsError> {
    loop {
        let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.at(Target::bucket(bucket))?;
        let keys = out.contents.unwrap_or_default().into_iter().map(|o| (o.key, None));
        if !delete_objects(s3, bucket, keys).await? {
            return Ok(());
        }
    }
}

/// Deletes every old version and delete marker of a bucket that has been versioned.
async fn empty_versions(s3: &Client, bucket: &str) -> Result<(), AwsError> {
    if versioning_status(s3, bucket).await?.is_none() {
        return Ok(());
    }
    loop {
        let out = s3.list_object_versions().bucket(bucket).send().await.at(Target::bucket(bucket))?;
        let versions = out.versions.unwrap_or_default().into_iter().map(|v| (v.key, v.version_id));
        let markers = out.delete_markers.unwrap_or_default().into_iter().map(|m| (m.key, m.version_id));
        if !delete_objects(s3, bucket, versions.chain(markers)).await? {
            return Ok(());
        }
    }
}

/// Deletes `objects` (keys, with a version or not) in one request; false when there were none.
async fn delete_objects(
    s3: &Client,
    bucket: &str,
    objects: impl Iterator<Item = (Option<String>, Option<String>)>,
) -> Result<bool, AwsError> {
    let mut ids = Vec::new();
    for (key, version) in objects {
        if let Some(k) = key {
            ids.push(ObjectIdentifier::builder().key(k).set_version_id(version).build().map_err(AwsError::build)?);
        }
    }
    if ids.is_empty() {
        return Ok(false);
    }
    s3.delete_objects()
        .bucket(bucket)
        .delete(Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(AwsError::build)?)
        .send()
        .await
        .at(Target::bucket(bucket))?;
    Ok(true)
}

/// Refuses (deleting nothing) to delete a managed bucket that still holds objects, unless
/// `force_destroy`; `holding` names what it holds ("segments", "objects").
pub async fn check_deletable(
    s3: &Client,
    storage: &Storage,
    force_destroy: bool,
    holding: &str,
) -> Result<(), AwsError> {
    let b = storage.bucket.as_str();
    if storage.managed && !force_destroy && exists(s3, b).await? && has_objects(s3, b, "").await? {
        return Err(AwsError::Invalid(format!(
            "bucket {b} still holds {holding}; set force_destroy = true and apply first, or empty the bucket"
        )));
    }
    Ok(())
}

/// Deletes what the resource stored: the managed bucket (which must be empty unless
/// `force_destroy`, and only when `owner` owns it), or, in the user's bucket, our rule and (with
/// `force_destroy`) our objects.
pub async fn delete(s3: &Client, storage: &Storage, owner: &Owner, force_destroy: bool) -> Result<(), AwsError> {
    let b = storage.bucket.as_str();
    if !storage.managed {
        if force_destroy && exists(s3, b).await? {
            empty(s3, b, &storage.rule.prefix).await?;
        }
        return remove_rule(s3, storage).await;
    }
    if !exists(s3, b).await? {
        return Ok(());
    }
    if !owner.owns(&tags(s3, b).await?) {
        tracing::warn!(bucket = b, "not deleting an S3 bucket that another owner tagged");
        return Ok(());
    }
    if force_destroy {
        empty(s3, b, "").await?;
        empty_versions(s3, b).await?;
    }
    match s3.delete_bucket().bucket(b).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
        Err(e) => Err(call("DeleteBucket", Target::bucket(b), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_denies_plain_http_on_the_bucket_and_its_objects() {
        let p: serde_json::Value = serde_json::from_str(&tls_only_policy("aws-cn", "b")).expect("json");
        let s = &p["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(s["Resource"], json!(["arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/*"]));
    }
}
