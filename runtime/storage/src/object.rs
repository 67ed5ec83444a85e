//! Object buckets, shaped like Cloudflare R2's bindings: `put` with HTTP and custom metadata
//! and create-only or ETag conditions, `get` (whole, ranged, conditional), `head` with the
//! metadata, `delete`, prefix listing with a cursor and an optional `/` delimiter, multipart
//! uploads that can be resumed by upload id, and presigned URLs.
//!
//! [`Objects`] is a thin facade over `object_store`: [`AmazonS3`] for a bound bucket (with the
//! AWS SDK's credentials, region and endpoint) or [`InMemory`] for tests. The conditions,
//! ranges, listing, multipart protocol and signing are `object_store`'s; the facade checks
//! arguments against the limits below, so both backends refuse the same things, and maps every
//! failure to a [`StorageError`].
//!
//! Keys are `object_store` paths: 1 to [`MAX_KEY_BYTES`] bytes of `/`-separated non-empty
//! segments, none of them `.` or `..`, without ASCII control characters, and not starting or
//! ending with `/`. ETags are as HTTP carries them, quoted.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    Attribute, Attributes, CredentialProvider, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutPayload, UpdateVersion, WriteMultipart,
};

pub use object_store::GetRange;
pub use object_store::signer::Url;

use crate::contract::Binding;
use crate::encoding::{cursor_after, key_of_cursor};
use crate::error::{Result, StorageError};
use crate::metrics::{Metrics, measured};

/// The longest key, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;
/// The most custom metadata, as the sum of its keys' and values' bytes (S3's 2 KB).
pub const MAX_CUSTOM_METADATA_BYTES: usize = 2048;
/// The most entries (objects and delimited prefixes) one `list` page returns (also the
/// default).
pub const MAX_LIST_LIMIT: usize = 1000;
/// The highest part number of a multipart upload (parts are numbered from 1).
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The smallest part [`Objects::put_multipart`] uploads (S3's minimum for all parts but the
/// last): 5 MiB.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// The largest part of a multipart upload: 5 GiB.
pub const MAX_PART_BYTES: usize = 5 * 1024 * 1024 * 1024;
/// The longest a presigned URL stays valid (SigV4's limit): 7 days.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest a presigned URL may stay valid.
pub const MIN_PRESIGN_EXPIRY: Duration = Duration::from_secs(1);

/// How many parts [`Objects::put_multipart`] uploads at once.
const UPLOAD_CONCURRENCY: usize = 8;
/// How long before they expire the SDK's credentials are fetched again.
const CREDENTIAL_REFRESH: Duration = Duration::from_secs(300);

/// The HTTP headers stored with an object and sent back with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMetadata {
    /// `Content-Type`. S3 reports `binary/octet-stream` for an object stored without one;
    /// the memory backend reports none.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
}

/// What is stored beside an object's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The HTTP headers.
    pub http: HttpMetadata,
    /// Custom metadata (S3's `x-amz-meta-*`): keys of lowercase letters, digits, `-`, `_` and
    /// `.`; values of printable ASCII without surrounding spaces; at most
    /// [`MAX_CUSTOM_METADATA_BYTES`] in all.
    pub custom: BTreeMap<String, String>,
}

/// How an object is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// The metadata stored with it.
    pub metadata: Metadata,
    /// Write only if no object has the key ([`StorageError::PreconditionFailed`] otherwise).
    pub only_if_absent: bool,
    /// Write only if the object's ETag is this one ([`StorageError::PreconditionFailed`]
    /// otherwise, including when there is no object).
    pub if_match: Option<String>,
}

/// Which part of an object to read, and on which conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Only these bytes.
    pub range: Option<GetRange>,
    /// Read only if the ETag is this one ([`StorageError::PreconditionFailed`] otherwise).
    pub if_match: Option<String>,
    /// Read only if the ETag is not this one ([`StorageError::PreconditionFailed`] otherwise).
    pub if_none_match: Option<String>,
}

/// A stored object's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, quoted.
    pub etag: Option<String>,
    /// Its version, when the bucket keeps versions.
    pub version: Option<String>,
    /// When it was last written.
    pub last_modified: SystemTime,
    /// Its metadata: present from `head` and `get`; `None` from `list`, which does not return
    /// it (head the key for it).
    pub metadata: Option<Metadata>,
}

/// An object read by `get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectBody {
    /// The object.
    pub info: ObjectInfo,
    /// Which of its bytes `body` holds.
    pub range: Range<u64>,
    /// Those bytes.
    pub body: Bytes,
}

/// What a write produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The new object's ETag, quoted.
    pub etag: Option<String>,
    /// Its version, when the bucket keeps versions.
    pub version: Option<String>,
}

/// Which objects to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this (a string prefix, not only whole segments).
    pub prefix: Option<String>,
    /// At most this many entries (default and maximum 1,000).
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Group keys by `/` after the prefix: keys with a further `/` are returned once, as a
    /// delimited prefix ending in `/`, instead of one by one.
    pub delimiter: bool,
}

/// One page of a listing, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects (without metadata).
    pub objects: Vec<ObjectInfo>,
    /// With a delimiter: the prefixes, each ending in `/`, that group further keys.
    pub delimited_prefixes: Vec<String>,
    /// True when more entries follow.
    pub truncated: bool,
    /// Pass as [`ListOptions::cursor`] (with the same prefix and delimiter) for the next page;
    /// `None` when the listing is complete.
    pub cursor: Option<String>,
}

/// A part uploaded to a multipart upload: what completing the upload needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedPart {
    /// Its number, 1 to [`MAX_PART_NUMBER`].
    pub part_number: u32,
    /// The backend's identifier for its content (S3: the part's ETag).
    pub etag: String,
}

/// An object bucket on S3 or in memory.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    signer: Option<Arc<dyn Signer>>,
    metrics: Metrics,
}

impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects").field("store", &self.store.to_string()).finish_non_exhaustive()
    }
}

/// The `object_store` S3 client for `bucket`, configured from `sdk` as the AWS SDK would reach
/// S3: its region (us-east-1 when it has none); its endpoint (`AWS_ENDPOINT_URL_S3` before
/// `AWS_ENDPOINT_URL`, as the SDK orders them), addressed path-style by
/// [`adf_common::sdk::s3_path_style`] and over plain HTTP when the endpoint says `http://`; and
/// its credentials provider (environment, profile, SSO, web identity, container or instance
/// role), cached until 5 minutes before expiry.
pub fn amazon_s3(bucket: &str, sdk: &aws_types::SdkConfig) -> Result<AmazonS3> {
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| StorageError::Binding("the AWS configuration has no credentials provider".into()))?;
    let endpoint = s3_endpoint(sdk);
    let path_style = adf_common::sdk::s3_path_style(None, endpoint.is_some());
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_credentials(Arc::new(SdkCredentials::new(provider)))
        .with_virtual_hosted_style_request(!path_style);
    if let Some(region) = sdk.region() {
        builder = builder.with_region(region.as_ref());
    }
    if let Some(endpoint) = endpoint {
        builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
    }
    builder.build().map_err(|e| StorageError::Binding(format!("S3 bucket {bucket:?}: {}", adf_common::error_chain(&e))))
}

/// The S3 endpoint `sdk` configures, by the SDK's precedence: one set in code, then the
/// S3-specific setting (`AWS_ENDPOINT_URL_S3`, a profile's `s3.endpoint_url`), then the
/// general one.
fn s3_endpoint(sdk: &aws_types::SdkConfig) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_string);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok();
    key.and_then(|key| sdk.service_config().and_then(|c| c.load_config(key)))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

/// The AWS SDK's credentials provider as `object_store`'s: each credential is kept until
/// [`CREDENTIAL_REFRESH`] before it expires (the SDK's own clients cache them the same way).
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(provider: SharedCredentialsProvider) -> Self {
        Self { provider, cached: tokio::sync::Mutex::new(None) }
    }
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref()
            && expiry.is_none_or(|e| e > SystemTime::now() + CREDENTIAL_REFRESH)
        {
            return Ok(Arc::clone(credential));
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic { store: "AWS credentials", source: Box::new(e) })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((Arc::clone(&credential), c.expiry()));
        Ok(credential)
    }
}

impl Objects {
    /// The bucket `binding` names, reached with `sdk`'s credentials, region and endpoint.
    pub fn from_binding(binding: &Binding, sdk: &aws_types::SdkConfig) -> Result<Self> {
        let bucket = binding
            .bucket
            .as_deref()
            .ok_or_else(|| StorageError::Binding(format!("binding {:?} has no bucket", binding.name)))?;
        Self::s3(bucket, sdk)
    }

    /// S3 bucket `bucket`, reached as [`amazon_s3`] says.
    pub fn s3(bucket: &str, sdk: &aws_types::SdkConfig) -> Result<Self> {
        let s3 = Arc::new(amazon_s3(bucket, sdk)?);
        Ok(Self { store: s3.clone(), multipart: s3.clone(), signer: Some(s3), metrics: Metrics::off() })
    }

    /// A bucket in memory (for tests of code that uses objects); it cannot presign URLs.
    pub fn memory() -> Self {
        let memory = Arc::new(InMemory::new());
        Self { store: memory.clone(), multipart: memory, signer: None, metrics: Metrics::off() }
    }

    /// The same bucket with its puts, gets, heads, deletes and listings measured into
    /// `metrics`.
    pub fn measured(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Stores `value` under `key`, replacing any object there unless `options` says otherwise.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>, options: PutOptions) -> Result<Written> {
        measured(&self.metrics, "ObjectPut", async move {
            let path = key_path(key)?;
            let mode = match (options.only_if_absent, options.if_match) {
                (true, Some(_)) => {
                    return Err(StorageError::invalid("put options", "only_if_absent and if_match exclude each other"));
                }
                (true, None) => PutMode::Create,
                (false, Some(etag)) => PutMode::Update(UpdateVersion { e_tag: Some(etag), version: None }),
                (false, None) => PutMode::Overwrite,
            };
            let attributes = attributes(&options.metadata)?;
            let opts = object_store::PutOptions { mode, attributes, ..Default::default() };
            let r = self.store.put_opts(&path, PutPayload::from_bytes(value.into()), opts).await?;
            Ok(Written { etag: r.e_tag, version: r.version })
        })
        .await
    }

    /// The object under `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<ObjectBody>> {
        self.get_with(key, GetOptions::default()).await
    }

    /// The object under `key` (or the part `options` asks for), or `None`; a condition that
    /// does not hold is [`StorageError::PreconditionFailed`].
    pub async fn get_with(&self, key: &str, options: GetOptions) -> Result<Option<ObjectBody>> {
        measured(&self.metrics, "ObjectGet", async move {
            let path = key_path(key)?;
            let opts = object_store::GetOptions::new()
                .with_range(options.range)
                .with_if_match(options.if_match)
                .with_if_none_match(options.if_none_match);
            let Some(got) = found(self.store.get_opts(&path, opts).await)? else { return Ok(None) };
            let info = object_info(got.meta.clone(), Some(&got.attributes));
            let range = got.range.clone();
            Ok(Some(ObjectBody { info, range, body: got.bytes().await? }))
        })
        .await
    }

    /// The bytes of `range` (such as `2..5`, `7..` or `GetRange::Suffix(3)`) of the object
    /// under `key`; [`StorageError::NotFound`] when there is none.
    pub async fn get_range(&self, key: &str, range: impl Into<GetRange>) -> Result<Bytes> {
        let options = GetOptions { range: Some(range.into()), ..GetOptions::default() };
        let got = self.get_with(key, options).await?;
        got.map(|o| o.body).ok_or_else(|| StorageError::NotFound(key.to_string()))
    }

    /// The description and metadata of the object under `key`, or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        measured(&self.metrics, "ObjectHead", async move {
            let path = key_path(key)?;
            // `ObjectStore::head` drops the attributes; a `get_opts` with `head` keeps them.
            let opts = object_store::GetOptions::new().with_head(true);
            let got = found(self.store.get_opts(&path, opts).await)?;
            Ok(got.map(|g| object_info(g.meta, Some(&g.attributes))))
        })
        .await
    }

    /// Removes the object under `key`; absent is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        measured(&self.metrics, "ObjectDelete", async move {
            let path = key_path(key)?;
            found(self.store.delete(&path).await)?;
            Ok(())
        })
        .await
    }

    /// A page of objects in key order.
    ///
    /// Without a delimiter, the page is read from a listing that starts after the cursor's key
    /// (S3's `start-after`) and stops after `limit` keys. With one, the whole level under the
    /// prefix's last `/` is listed (S3 pages through it) and the page cut from it, so each page
    /// costs a listing of that level: fine for directory-like levels, slow for one of millions
    /// of keys. The cursor is the page's last key or prefix, base64url-encoded.
    pub async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let limit = options.limit.unwrap_or(MAX_LIST_LIMIT);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(StorageError::invalid("limit", format!("between 1 and {MAX_LIST_LIMIT}, not {limit}")));
        }
        let after = options.cursor.as_deref().map(|c| key_of_cursor(c, "bucket")).transpose()?;
        let prefix = options.prefix.unwrap_or_default();
        // `object_store` lists by whole segments: list the segments before the prefix's last
        // `/` and keep the keys that start with the rest.
        let level = match prefix.rfind('/') {
            Some(i) => Some(parse_path("prefix", &prefix[..i])?),
            None => None,
        };
        if options.delimiter {
            self.list_delimited(level, &prefix, limit, after).await
        } else {
            self.list_flat(level, &prefix, limit, after).await
        }
    }

    async fn list_flat(
        &self,
        level: Option<Path>,
        prefix: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<ListPage> {
        let mut listing = match after {
            Some(after) => self.store.list_with_offset(level.as_ref(), &parse_path("cursor", &after)?),
            None => self.store.list(level.as_ref()),
        };
        let mut page = ListPage::default();
        while let Some(meta) = listing.try_next().await? {
            let key = meta.location.as_ref();
            if !key.starts_with(prefix) {
                // Keys come in order: one past the prefix is past every key that has it.
                if key > prefix {
                    break;
                }
                continue;
            }
            if page.objects.len() == limit {
                page.truncated = true;
                break;
            }
            page.objects.push(object_info(meta, None));
        }
        if page.truncated {
            page.cursor = page.objects.last().map(|o| cursor_after(&o.key));
        }
        Ok(page)
    }

    async fn list_delimited(
        &self,
        level: Option<Path>,
        prefix: &str,
        limit: usize,
        after: Option<String>,
    ) -> Result<ListPage> {
        let listing = self.store.list_with_delimiter(level.as_ref()).await?;
        let objects = listing.objects.into_iter().map(|m| (m.location.to_string(), Some(m)));
        let prefixes = listing.common_prefixes.into_iter().map(|p| (format!("{p}/"), None));
        let mut entries: Vec<(String, Option<ObjectMeta>)> = objects
            .chain(prefixes)
            .filter(|(k, _)| k.starts_with(prefix) && after.as_ref().is_none_or(|a| k > a))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let cursor = truncated.then(|| entries.last().map(|(k, _)| cursor_after(k))).flatten();
        let mut page = ListPage { truncated, cursor, ..ListPage::default() };
        for (key, meta) in entries {
            match meta {
                Some(meta) => page.objects.push(object_info(meta, None)),
                None => page.delimited_prefixes.push(key),
            }
        }
        Ok(page)
    }

    /// Starts a multipart upload of `key`, whose object will carry `metadata`.
    pub async fn create_multipart(&self, key: &str, metadata: Metadata) -> Result<MultipartUpload> {
        let path = key_path(key)?;
        let opts = PutMultipartOptions { attributes: attributes(&metadata)?, ..Default::default() };
        let upload_id = self.multipart.create_multipart_opts(&path, opts).await?;
        Ok(MultipartUpload { multipart: Arc::clone(&self.multipart), path, upload_id })
    }

    /// The multipart upload `upload_id` of `key`, started earlier (perhaps by another process).
    pub fn resume_multipart(&self, key: &str, upload_id: &str) -> Result<MultipartUpload> {
        let path = key_path(key)?;
        if upload_id.is_empty() {
            return Err(StorageError::invalid("upload id", "an upload id cannot be empty"));
        }
        Ok(MultipartUpload { multipart: Arc::clone(&self.multipart), path, upload_id: upload_id.to_string() })
    }

    /// Stores `body` under `key` as a multipart upload in parts of `part_size` bytes
    /// ([`MIN_PART_BYTES`] to [`MAX_PART_BYTES`]), uploading up to 8 parts at once. After each
    /// chunk of `body` is taken, `on_progress` gets the bytes taken so far (uploaded, or in one
    /// of the parts being uploaded or filled). On any failure the upload is aborted.
    pub async fn put_multipart<S, E>(
        &self,
        key: &str,
        body: S,
        metadata: Metadata,
        part_size: usize,
        mut on_progress: impl FnMut(u64),
    ) -> Result<Written>
    where
        S: Stream<Item = std::result::Result<Bytes, E>>,
        E: fmt::Display,
    {
        let path = key_path(key)?;
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&part_size) {
            let reason = format!("between {MIN_PART_BYTES} and {MAX_PART_BYTES} bytes, not {part_size}");
            return Err(StorageError::invalid("part size", reason));
        }
        let opts = PutMultipartOptions { attributes: attributes(&metadata)?, ..Default::default() };
        let mut writer =
            WriteMultipart::new_with_chunk_size(self.store.put_multipart_opts(&path, opts).await?, part_size);
        let mut body = std::pin::pin!(body);
        let mut taken = 0u64;
        while let Some(chunk) = body.next().await {
            let failure = match chunk {
                Ok(chunk) => match writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                    Ok(()) => {
                        taken += chunk.len() as u64;
                        writer.put(chunk);
                        on_progress(taken);
                        continue;
                    }
                    Err(e) => StorageError::from(e),
                },
                Err(e) => StorageError::Backend(format!("reading the body of {key}: {e}")),
            };
            if let Err(e) = writer.abort().await {
                tracing::warn!(key, error = %adf_common::error_chain(&e), "aborting a failed multipart upload");
            }
            return Err(failure);
        }
        let r = writer.finish().await?;
        Ok(Written { etag: r.e_tag, version: r.version })
    }

    /// A URL that lets its holder `GET` the object under `key` for `expires` (1 s to 7 days).
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<Url> {
        self.presign(Method::GET, key, expires).await
    }

    /// A URL that lets its holder `PUT` an object under `key` for `expires` (1 s to 7 days).
    pub async fn presign_put(&self, key: &str, expires: Duration) -> Result<Url> {
        self.presign(Method::PUT, key, expires).await
    }

    async fn presign(&self, method: Method, key: &str, expires: Duration) -> Result<Url> {
        let path = key_path(key)?;
        if !(MIN_PRESIGN_EXPIRY..=MAX_PRESIGN_EXPIRY).contains(&expires) {
            return Err(StorageError::invalid("expiry", format!("between 1 s and 7 days, not {expires:?}")));
        }
        let signer = self.signer.as_ref().ok_or_else(|| {
            StorageError::invalid("presigned URL", format!("the {} object store cannot presign URLs", self.store))
        })?;
        Ok(signer.signed_url(method, &path, expires).await?)
    }
}

/// A multipart upload in progress: upload its parts (in any order, concurrently if you like),
/// then complete or abort it. Its key and upload id are all it takes to resume it elsewhere
/// ([`Objects::resume_multipart`]).
#[derive(Clone)]
pub struct MultipartUpload {
    multipart: Arc<dyn MultipartStore>,
    path: Path,
    upload_id: String,
}

impl fmt::Debug for MultipartUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultipartUpload").field("key", &self.key()).field("upload_id", &self.upload_id).finish()
    }
}

impl MultipartUpload {
    /// The object's key.
    pub fn key(&self) -> &str {
        self.path.as_ref()
    }

    /// The upload's id.
    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// Uploads part `part_number` (1 to 10,000). Every part but the last must be at least
    /// 5 MiB on S3 (the memory backend does not check).
    pub async fn upload_part(&self, part_number: u32, bytes: impl Into<Bytes>) -> Result<UploadedPart> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(StorageError::invalid(
                "part number",
                format!("between 1 and {MAX_PART_NUMBER}, not {part_number}"),
            ));
        }
        let index = part_number as usize - 1;
        let payload = PutPayload::from_bytes(bytes.into());
        let part = self.multipart.put_part(&self.path, &self.upload_id, index, payload).await?;
        Ok(UploadedPart { part_number, etag: part.content_id })
    }

    /// Completes the upload from `parts`, which must be numbered 1 to N without gaps (in any
    /// order).
    pub async fn complete(&self, mut parts: Vec<UploadedPart>) -> Result<Written> {
        parts.sort_by_key(|p| p.part_number);
        if let Some((i, p)) = parts.iter().enumerate().find(|(i, p)| p.part_number as usize != i + 1) {
            let reason = format!(
                "parts must be numbered 1 to {} without gaps or repeats: part {} is {}",
                parts.len(),
                i + 1,
                p.part_number
            );
            return Err(StorageError::invalid("parts", reason));
        }
        let parts = parts.into_iter().map(|p| PartId { content_id: p.etag }).collect();
        let r = self.multipart.complete_multipart(&self.path, &self.upload_id, parts).await?;
        Ok(Written { etag: r.e_tag, version: r.version })
    }

    /// Abandons the upload and discards its parts.
    pub async fn abort(&self) -> Result<()> {
        Ok(self.multipart.abort_multipart(&self.path, &self.upload_id).await?)
    }
}

/// `r`, with a missing object as `None`.
fn found<T>(r: object_store::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `key` as a path, if it is one exactly.
fn key_path(key: &str) -> Result<Path> {
    if key.is_empty() {
        return Err(StorageError::invalid("key", "a key cannot be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::TooLarge { what: "key", size: key.len(), limit: MAX_KEY_BYTES });
    }
    parse_path("key", key)
}

/// `text` as a path, refused as `what` unless it parses to exactly itself.
fn parse_path(what: &'static str, text: &str) -> Result<Path> {
    let path = Path::parse(text).map_err(|e| StorageError::invalid(what, e.to_string()))?;
    if path.as_ref() != text {
        return Err(StorageError::invalid(what, format!("{text:?} starts or ends with '/'")));
    }
    Ok(path)
}

/// Whether `value` can travel as an HTTP header value unchanged.
fn header_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b)) && value.trim() == value
}

/// `metadata` as `object_store` attributes, if both backends would store it unchanged.
fn attributes(metadata: &Metadata) -> Result<Attributes> {
    let http = &metadata.http;
    let headers = [
        (Attribute::ContentType, &http.content_type),
        (Attribute::CacheControl, &http.cache_control),
        (Attribute::ContentDisposition, &http.content_disposition),
        (Attribute::ContentEncoding, &http.content_encoding),
        (Attribute::ContentLanguage, &http.content_language),
    ];
    let mut out = Attributes::new();
    for (attribute, value) in headers {
        if let Some(value) = value {
            if !header_safe(value) {
                let reason = format!("{value:?} is not printable ASCII without surrounding spaces");
                return Err(StorageError::invalid("HTTP metadata", reason));
            }
            out.insert(attribute, value.clone().into());
        }
    }
    let mut size = 0;
    for (key, value) in &metadata.custom {
        let key_ok =
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !key_ok {
            let reason = format!("key {key:?} is not lowercase letters, digits, '-', '_' and '.'");
            return Err(StorageError::invalid("custom metadata", reason));
        }
        if !header_safe(value) {
            let reason = format!("value {value:?} of {key:?} is not printable ASCII without surrounding spaces");
            return Err(StorageError::invalid("custom metadata", reason));
        }
        size += key.len() + value.len();
        out.insert(Attribute::Metadata(key.clone().into()), value.clone().into());
    }
    if size > MAX_CUSTOM_METADATA_BYTES {
        return Err(StorageError::TooLarge { what: "custom metadata", size, limit: MAX_CUSTOM_METADATA_BYTES });
    }
    Ok(out)
}

/// The metadata in `attributes`.
fn metadata(attributes: &Attributes) -> Metadata {
    let mut m = Metadata::default();
    for (attribute, value) in attributes {
        let value = value.to_string();
        match attribute {
            Attribute::ContentType => m.http.content_type = Some(value),
            Attribute::CacheControl => m.http.cache_control = Some(value),
            Attribute::ContentDisposition => m.http.content_disposition = Some(value),
            Attribute::ContentEncoding => m.http.content_encoding = Some(value),
            Attribute::ContentLanguage => m.http.content_language = Some(value),
            Attribute::Metadata(key) => {
                m.custom.insert(key.to_string(), value);
            }
            _ => {}
        }
    }
    m
}

/// The description of the object `meta` describes, with the metadata in `attributes` when the
/// backend returned them (not in a listing).
fn object_info(meta: ObjectMeta, attributes: Option<&Attributes>) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        etag: meta.e_tag,
        version: meta.version,
        last_modified: SystemTime::from(meta.last_modified),
        metadata: attributes.map(metadata),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::future;

    use super::*;

    fn described() -> Metadata {
        Metadata {
            http: HttpMetadata {
                content_type: Some("text/plain; charset=utf-8".into()),
                cache_control: Some("max-age=60".into()),
                content_disposition: Some("attachment; filename=\"a.txt\"".into()),
                content_encoding: Some("identity".into()),
                content_language: Some("en-GB".into()),
            },
            custom: BTreeMap::from([
                ("owner".to_string(), "ada".to_string()),
                ("run-id".to_string(), "42".to_string()),
            ]),
        }
    }

    #[tokio::test]
    async fn metadata_round_trips_through_put_head_and_get() -> anyhow::Result<()> {
        let o = Objects::memory();
        let written = o.put("a/b.txt", "hello", PutOptions { metadata: described(), ..PutOptions::default() }).await?;
        let info = o.head("a/b.txt").await?.expect("the object is there");
        assert_eq!((info.key.as_str(), info.size), ("a/b.txt", 5));
        assert_eq!(info.etag, written.etag);
        assert_eq!(info.metadata, Some(described()));
        let got = o.get("a/b.txt").await?.expect("the object is there");
        assert_eq!((got.body, got.range, got.info), (Bytes::from("hello"), 0..5, info));
        assert_eq!(o.head("a/c.txt").await?, None);
        assert_eq!(o.get("a/c.txt").await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_create_only_put_on_an_existing_key_fails_and_keeps_the_object() -> anyhow::Result<()> {
        let o = Objects::memory();
        let create = PutOptions { only_if_absent: true, ..PutOptions::default() };
        o.put("k", "first", create.clone()).await?;
        let e = o.put("k", "second", create).await.expect_err("the key exists");
        assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
        assert_eq!(o.get_range("k", 0..5).await?, "first");
        Ok(())
    }

    #[tokio::test]
    async fn if_match_writes_only_over_that_etag() -> anyhow::Result<()> {
        let o = Objects::memory();
        let v1 = o.put("k", "one", PutOptions::default()).await?.etag.expect("an etag");
        let stale = PutOptions { if_match: Some("\"not-it\"".into()), ..PutOptions::default() };
        let e = o.put("k", "two", stale.clone()).await.expect_err("another etag");
        assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
        let e = o.put("absent", "two", stale).await.expect_err("no object");
        assert!(matches!(e, StorageError::PreconditionFailed(_)), "{e}");
        let v2 = o.put("k", "two", PutOptions { if_match: Some(v1.clone()), ..PutOptions::default() }).await?;
        assert_ne!(v2.etag.as_deref(), Some(v1.as_str()));
        let both = PutOptions { only_if_absent: true, if_match: Some(v1), ..PutOptions::default() };
        let e = o.put("k", "three", both).await.expect_err("exclusive options");
        assert!(matches!(e, StorageError::Invalid { what: "put options", .. }), "{e}");
        Ok(())
    }

    #[tokio::test]
    async fn list_pages_follow_the_cursor_within_the_prefix() -> anyhow::Result<()> {
        let o = Objects::memory();
        for i in 0..25 {
            o.put(&format!("logs/{i:02}"), "x", PutOptions::default()).await?;
        }
        o.put("logs-old", "x", PutOptions::default()).await?;
        o.put("logz", "x", PutOptions::default()).await?;
        let mut keys = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor = None;
        loop {
            let options = ListOptions { prefix: Some("logs".into()), limit: Some(10), cursor, delimiter: false };
            let page = o.list(options).await?;
            sizes.push(page.objects.len());
            keys.extend(page.objects.into_iter().map(|o| o.key));
            assert_eq!(page.truncated, page.cursor.is_some());
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(sizes, [10, 10, 6]);
        let mut expected: Vec<String> = (0..25).map(|i| format!("logs/{i:02}")).collect();
        expected.insert(0, "logs-old".into());
        assert_eq!(keys, expected);
        let e =
            o.list(ListOptions { cursor: Some("!".into()), ..ListOptions::default() }).await.expect_err("bad cursor");
        assert!(matches!(e, StorageError::Invalid { what: "cursor", .. }), "{e}");
        let e = o.list(ListOptions { limit: Some(1001), ..ListOptions::default() }).await.expect_err("over the limit");
        assert!(matches!(e, StorageError::Invalid { what: "limit", .. }), "{e}");
        Ok(())
    }

    #[tokio::test]
    async fn a_delimited_listing_groups_deeper_keys_by_prefix() -> anyhow::Result<()> {
        let o = Objects::memory();
        for key in ["p/a", "p/b/1", "p/b/2", "p/c", "p/ca/1", "q/1"] {
            o.put(key, "x", PutOptions::default()).await?;
        }
        let list =
            |prefix: &str, cursor| ListOptions { prefix: Some(prefix.into()), limit: Some(2), cursor, delimiter: true };
        let first = o.list(list("p/", None)).await?;
        let names: Vec<&str> = first.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            (names, first.delimited_prefixes.clone(), first.truncated),
            (vec!["p/a"], vec!["p/b/".to_string()], true)
        );
        let second = o.list(list("p/", first.cursor)).await?;
        let names: Vec<&str> = second.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            (names, second.delimited_prefixes, second.truncated),
            (vec!["p/c"], vec!["p/ca/".to_string()], false)
        );
        let partial = o.list(list("p/c", None)).await?;
        assert_eq!((partial.objects.len(), partial.delimited_prefixes), (1, vec!["p/ca/".to_string()]));
        Ok(())
    }

    #[tokio::test]
    async fn part_numbers_outside_1_to_10000_are_refused() -> anyhow::Result<()> {
        let o = Objects::memory();
        let upload = o.create_multipart("big", Metadata::default()).await?;
        for n in [0, MAX_PART_NUMBER + 1] {
            let e = upload.upload_part(n, "x").await.expect_err("out of range");
            assert!(matches!(e, StorageError::Invalid { what: "part number", .. }), "{e}");
        }
        let p1 = upload.upload_part(1, "a").await?;
        let p3 = upload.upload_part(3, "c").await?;
        let e = upload.complete(vec![p1.clone(), p3]).await.expect_err("part 2 is missing");
        assert!(matches!(e, StorageError::Invalid { what: "parts", .. }), "{e}");
        let p2 = o.resume_multipart("big", upload.upload_id())?.upload_part(2, "b").await?;
        let p3 = upload.upload_part(3, "c").await?;
        upload.complete(vec![p3, p1, p2]).await?;
        assert_eq!(o.get_range("big", 0..3).await?, "abc");
        Ok(())
    }

    #[tokio::test]
    async fn presigning_in_memory_is_refused_and_expiry_is_checked_first() -> anyhow::Result<()> {
        let o = Objects::memory();
        let e = o.presign_get("k", Duration::from_secs(60)).await.expect_err("memory cannot sign");
        assert!(matches!(e, StorageError::Invalid { what: "presigned URL", .. }), "{e}");
        assert!(e.to_string().contains("cannot presign"), "{e}");
        for expires in [Duration::ZERO, MAX_PRESIGN_EXPIRY + Duration::from_secs(1)] {
            let e = o.presign_put("k", expires).await.expect_err("out of range");
            assert!(matches!(e, StorageError::Invalid { what: "expiry", .. }), "{e}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn keys_and_metadata_both_backends_would_change_are_refused() {
        let o = Objects::memory();
        for key in ["", "/a", "a/", "a//b", "a/../b", "a\nb"] {
            let e = o.put(key, "x", PutOptions::default()).await.expect_err(key);
            assert!(matches!(e, StorageError::Invalid { what: "key", .. }), "{key:?}: {e}");
        }
        let e = o.head(&"k".repeat(MAX_KEY_BYTES + 1)).await.expect_err("too long");
        assert!(matches!(e, StorageError::TooLarge { what: "key", .. }), "{e}");
        for (k, v) in [("Owner", "ada"), ("", "x"), ("owner", "ünï"), ("owner", " padded")] {
            let metadata = Metadata { custom: BTreeMap::from([(k.to_string(), v.to_string())]), ..Metadata::default() };
            let e = o.put("k", "x", PutOptions { metadata, ..PutOptions::default() }).await.expect_err(k);
            assert!(matches!(e, StorageError::Invalid { what: "custom metadata", .. }), "{k:?}={v:?}: {e}");
        }
        let metadata =
            Metadata { custom: BTreeMap::from([("k".to_string(), "v".repeat(2048))]), ..Metadata::default() };
        let e = o.put("k", "x", PutOptions { metadata, ..PutOptions::default() }).await.expect_err("too much");
        assert!(matches!(e, StorageError::TooLarge { what: "custom metadata", size: 2049, .. }), "{e}");
    }

    #[tokio::test]
    async fn put_multipart_streams_parts_and_reports_progress() -> anyhow::Result<()> {
        let o = Objects::memory();
        let chunk = Bytes::from(vec![7u8; 1024 * 1024]);
        let body = futures::stream::iter((0..11).map(|_| Ok::<_, std::io::Error>(chunk.clone())));
        let mut seen = Vec::new();
        o.put_multipart("big", body, described(), MIN_PART_BYTES, |n| seen.push(n)).await?;
        assert_eq!(seen, (1..=11).map(|i| i * 1024 * 1024).collect::<Vec<u64>>());
        let info = o.head("big").await?.expect("the object is there");
        assert_eq!((info.size, info.metadata), (11 * 1024 * 1024, Some(described())));
        let failing = futures::stream::iter([Ok(chunk), Err("disk gone")]);
        let e = o
            .put_multipart("broken", failing, Metadata::default(), MIN_PART_BYTES, |_| {})
            .await
            .expect_err("body fails");
        assert!(e.to_string().contains("disk gone"), "{e}");
        assert_eq!(o.head("broken").await?, None);
        let e = o.put_multipart(
            "small",
            futures::stream::empty::<Result<Bytes, String>>(),
            Metadata::default(),
            1024,
            |_| {},
        );
        assert!(matches!(e.await, Err(StorageError::Invalid { what: "part size", .. })));
        Ok(())
    }

    fn sdk(endpoint: Option<&str>) -> aws_types::SdkConfig {
        let mut b =
            aws_types::SdkConfig::builder().region(aws_types::region::Region::new("eu-west-1")).credentials_provider(
                SharedCredentialsProvider::new(Credentials::new("AKID", "secret", None, None, "test")),
            );
        if let Some(e) = endpoint {
            b = b.endpoint_url(e);
        }
        b.build()
    }

    #[tokio::test]
    async fn s3_urls_follow_the_sdk_region_endpoint_and_credentials() -> anyhow::Result<()> {
        let o = Objects::s3("bkt", &sdk(Some("http://127.0.0.1:4566")))?;
        let url = o.presign_get("a/b c", Duration::from_secs(60)).await?.to_string();
        assert!(url.starts_with("http://127.0.0.1:4566/bkt/a/b%20c?"), "path-style on the endpoint: {url}");
        assert!(url.contains("X-Amz-Credential=AKID%2F") && url.contains("%2Feu-west-1%2Fs3%2Faws4_request"), "{url}");
        let url = Objects::s3("bkt", &sdk(None))?.presign_put("k", Duration::from_secs(60)).await?.to_string();
        let expected = if adf_common::sdk::s3_path_style(None, false) {
            "https://s3.eu-west-1.amazonaws.com/bkt/k?"
        } else {
            "https://bkt.s3.eu-west-1.amazonaws.com/k?"
        };
        assert!(url.starts_with(expected), "{url}");
        let binding = Binding { name: "up".into(), ..Binding::default() };
        let e = Objects::from_binding(&binding, &sdk(None)).expect_err("no bucket");
        assert!(matches!(e, StorageError::Binding(_)) && e.to_string().contains("\"up\""), "{e}");
        Ok(())
    }

    /// Credentials that expire `lifetime` after each fetch, counting fetches.
    #[derive(Debug)]
    struct Counting {
        fetches: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst);
            let expiry = SystemTime::now() + self.lifetime;
            future::ProvideCredentials::ready(Ok(Credentials::new(format!("AKID{n}"), "s", None, Some(expiry), "test")))
        }
    }

    #[tokio::test]
    async fn sdk_credentials_are_reused_until_shortly_before_they_expire() -> anyhow::Result<()> {
        for (lifetime, fetches) in [(Duration::from_secs(3600), 1), (Duration::from_secs(60), 2)] {
            let counter = Arc::new(AtomicUsize::new(0));
            let provider = SharedCredentialsProvider::new(Counting { fetches: counter.clone(), lifetime });
            let credentials = SdkCredentials::new(provider);
            let first = credentials.get_credential().await?;
            let second = credentials.get_credential().await?;
            assert_eq!(counter.load(Ordering::SeqCst), fetches, "{lifetime:?}");
            assert_eq!(first.key_id == second.key_id, fetches == 1);
        }
        Ok(())
    }
}
