//! One object-store conformance suite, run on the memory backend and on S3 in the emulator;
//! then, on the emulator, presigned URLs used by a plain HTTP client and `object_store`'s own
//! integration checks against the S3 client `adf_storage` configures.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use adf_acceptance::{Emulator, unique_name};
use adf_storage::StorageError;
use adf_storage::object::{GetOptions, GetRange, HttpMetadata, ListOptions, Metadata, Objects, PutOptions, amazon_s3};
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use futures::future::BoxFuture;

const MIB: usize = 1024 * 1024;

/// The emulator, with the SDK configuration that reaches it.
struct S3 {
    _emu: Emulator,
    sdk: aws_types::SdkConfig,
}

impl S3 {
    async fn start() -> Result<Self> {
        let emu = Emulator::start()?;
        let sdk = adf_acceptance::sdk_config(emu.endpoint()).await;
        Ok(Self { _emu: emu, sdk })
    }

    /// A new, empty bucket.
    async fn bucket(&self) -> Result<String> {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(true).build();
        let bucket = unique_name("obj");
        aws_sdk_s3::Client::from_conf(conf).create_bucket().bucket(&bucket).send().await?;
        Ok(bucket)
    }
}

fn described() -> Metadata {
    Metadata {
        http: HttpMetadata {
            content_type: Some("text/plain; charset=utf-8".into()),
            cache_control: Some("public, max-age=3600".into()),
            content_disposition: Some("attachment; filename=\"notes.txt\"".into()),
            content_encoding: Some("identity".into()),
            content_language: Some("fr-CA".into()),
        },
        custom: BTreeMap::from([("owner".to_string(), "ada".to_string()), ("run-id".to_string(), "42".to_string())]),
    }
}

fn is_precondition(r: &adf_storage::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(StorageError::PreconditionFailed(_)))
}

async fn metadata_round_trips(o: &Objects) -> Result<()> {
    let before = SystemTime::now() - Duration::from_secs(5);
    let written =
        o.put("meta/notes.txt", "bonjour", PutOptions { metadata: described(), ..PutOptions::default() }).await?;
    let info = o.head("meta/notes.txt").await?.context("head finds the object")?;
    ensure!(info.key == "meta/notes.txt" && info.size == 7, "{info:?}");
    ensure!(info.etag.is_some() && info.etag == written.etag, "{info:?} vs {written:?}");
    ensure!(info.last_modified >= before, "{info:?}");
    ensure!(info.metadata == Some(described()), "head: {:?}", info.metadata);
    let got = o.get("meta/notes.txt").await?.context("get finds the object")?;
    ensure!(got.body == "bonjour" && got.range == (0..7), "{got:?}");
    ensure!(got.info.metadata == Some(described()), "get: {:?}", got.info.metadata);
    ensure!(o.head("meta/absent").await?.is_none() && o.get("meta/absent").await?.is_none());
    let listed = o.list(ListOptions { prefix: Some("meta/".into()), ..ListOptions::default() }).await?;
    ensure!(listed.objects.len() == 1 && listed.objects[0].metadata.is_none(), "{listed:?}");
    Ok(())
}

async fn ranged_and_conditional_gets(o: &Objects) -> Result<()> {
    let etag = o.put("range/digits", "0123456789", PutOptions::default()).await?.etag.context("an etag")?;
    ensure!(o.get_range("range/digits", 2..5).await? == "234");
    ensure!(o.get_range("range/digits", 7..).await? == "789");
    ensure!(o.get_range("range/digits", GetRange::Suffix(3)).await? == "789");
    let part = o.get_with("range/digits", GetOptions { range: Some((3..6).into()), ..GetOptions::default() }).await?;
    let part = part.context("ranged get_with")?;
    ensure!(part.range == (3..6) && part.body == "345" && part.info.size == 10, "{part:?}");
    let missing = o.get_range("range/absent", 0..1).await;
    ensure!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");

    let matching = GetOptions { if_match: Some(etag.clone()), ..GetOptions::default() };
    ensure!(o.get_with("range/digits", matching).await?.is_some());
    let stale = GetOptions { if_match: Some("\"0000\"".into()), ..GetOptions::default() };
    let r = o.get_with("range/digits", stale).await;
    ensure!(is_precondition(&r), "if-match on another etag: {r:?}");
    let unchanged = GetOptions { if_none_match: Some(etag), ..GetOptions::default() };
    let r = o.get_with("range/digits", unchanged).await;
    ensure!(is_precondition(&r), "if-none-match on the etag: {r:?}");
    let changed = GetOptions { if_none_match: Some("\"0000\"".into()), ..GetOptions::default() };
    ensure!(o.get_with("range/digits", changed).await?.is_some());
    Ok(())
}

async fn conditional_puts(o: &Objects) -> Result<()> {
    let create = PutOptions { only_if_absent: true, ..PutOptions::default() };
    let v1 = o.put("cond/k", "one", create.clone()).await?.etag.context("an etag")?;
    let r = o.put("cond/k", "two", create).await;
    ensure!(is_precondition(&r), "create-only over an object: {r:?}");
    ensure!(o.get_range("cond/k", 0..3).await? == "one");

    let stale = PutOptions { if_match: Some("\"0000\"".into()), ..PutOptions::default() };
    let r = o.put("cond/k", "two", stale.clone()).await;
    ensure!(is_precondition(&r), "if-match on another etag: {r:?}");
    let r = o.put("cond/absent", "two", stale).await;
    ensure!(is_precondition(&r), "if-match with no object: {r:?}");
    let v2 = o.put("cond/k", "two", PutOptions { if_match: Some(v1.clone()), ..PutOptions::default() }).await?;
    ensure!(v2.etag.as_deref().is_some_and(|e| e != v1), "{v2:?} after {v1}");
    let r = o.put("cond/k", "three", PutOptions { if_match: Some(v1), ..PutOptions::default() }).await;
    ensure!(is_precondition(&r), "if-match on the replaced etag: {r:?}");
    ensure!(o.get_range("cond/k", 0..3).await? == "two");
    Ok(())
}

async fn deletes_are_idempotent(o: &Objects) -> Result<()> {
    o.put("del/k", "x", PutOptions::default()).await?;
    o.delete("del/k").await?;
    ensure!(o.head("del/k").await?.is_none());
    o.delete("del/k").await?;
    Ok(())
}

/// Every page of `options`, following the cursor.
async fn pages(o: &Objects, options: ListOptions) -> Result<Vec<adf_storage::object::ListPage>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = o.list(ListOptions { cursor, ..options.clone() }).await?;
        ensure!(page.truncated == page.cursor.is_some(), "{page:?}");
        cursor = page.cursor.clone();
        out.push(page);
        if cursor.is_none() || out.len() > 10 {
            return Ok(out);
        }
    }
}

async fn listing_pages_with_prefix_delimiter_and_cursor(o: &Objects) -> Result<()> {
    let keys: Vec<String> = (0..25).map(|i| format!("list/k{i:02}")).collect();
    for k in keys.iter().chain(&["list/sub/a".to_string(), "list/sub/b".to_string(), "lists".to_string()]) {
        o.put(k, "x", PutOptions::default()).await?;
    }
    let flat =
        pages(o, ListOptions { prefix: Some("list/k".into()), limit: Some(10), ..ListOptions::default() }).await?;
    let sizes: Vec<usize> = flat.iter().map(|p| p.objects.len()).collect();
    ensure!(sizes == [10, 10, 5], "page sizes {sizes:?}");
    let listed: Vec<String> = flat.iter().flat_map(|p| p.objects.iter().map(|o| o.key.clone())).collect();
    ensure!(listed == keys, "{listed:?}");
    ensure!(flat.iter().all(|p| p.delimited_prefixes.is_empty()));
    ensure!(flat[0].objects.iter().all(|o| o.size == 1 && o.etag.is_some()), "{:?}", flat[0]);

    let all = pages(o, ListOptions { prefix: Some("list".into()), limit: Some(10), ..ListOptions::default() }).await?;
    ensure!(all.iter().map(|p| p.objects.len()).sum::<usize>() == 28, "{all:?}");

    let delimited =
        ListOptions { prefix: Some("list/".into()), limit: Some(10), delimiter: true, ..ListOptions::default() };
    let delimited = pages(o, delimited).await?;
    let sizes: Vec<(usize, usize)> = delimited.iter().map(|p| (p.objects.len(), p.delimited_prefixes.len())).collect();
    ensure!(sizes == [(10, 0), (10, 0), (5, 1)], "page sizes {sizes:?}");
    ensure!(delimited[2].delimited_prefixes == ["list/sub/"], "{:?}", delimited[2]);
    let top = o.list(ListOptions { prefix: Some("lis".into()), delimiter: true, ..ListOptions::default() }).await?;
    ensure!(top.delimited_prefixes == ["list/"] && top.objects.len() == 1 && !top.truncated, "{top:?}");
    let r = o.list(ListOptions { cursor: Some("%%".into()), ..ListOptions::default() }).await;
    ensure!(matches!(r, Err(StorageError::Invalid { what: "cursor", .. })), "{r:?}");
    Ok(())
}

async fn multipart_resumes_by_upload_id_and_completes(o: &Objects) -> Result<()> {
    let part = |b: u8, len: usize| Bytes::from(vec![b; len]);
    let upload = o.create_multipart("mp/assembled", described()).await?;
    ensure!(upload.key() == "mp/assembled" && !upload.upload_id().is_empty(), "{upload:?}");
    let p1 = upload.upload_part(1, part(1, 5 * MIB + 1)).await?;
    ensure!(p1.part_number == 1);
    // A fresh handle, as another process would build from the key and upload id.
    let resumed = o.resume_multipart("mp/assembled", upload.upload_id())?;
    let p3 = resumed.upload_part(3, part(3, 100)).await?;
    let p2 = resumed.upload_part(2, part(2, 5 * MIB + 1)).await?;
    let r = resumed.upload_part(10_001, part(4, 1)).await;
    ensure!(matches!(r, Err(StorageError::Invalid { what: "part number", .. })), "{r:?}");
    let gap = vec![p1.clone(), p3.clone()];
    let r = resumed.complete(gap).await;
    ensure!(matches!(r, Err(StorageError::Invalid { what: "parts", .. })), "{r:?}");
    let written = resumed.complete(vec![p3, p1, p2]).await?;

    let info = o.head("mp/assembled").await?.context("the completed object")?;
    ensure!(info.size == 2 * (5 * MIB as u64 + 1) + 100, "{info:?}");
    ensure!(info.etag == written.etag, "{info:?} vs {written:?}");
    ensure!(info.metadata == Some(described()), "{:?}", info.metadata);
    let seam = 5 * MIB as u64 + 1;
    ensure!(o.get_range("mp/assembled", seam - 2..seam + 2).await? == [1u8, 1, 2, 2][..]);
    ensure!(o.get_range("mp/assembled", GetRange::Suffix(100)).await? == part(3, 100));
    Ok(())
}

async fn multipart_aborts(o: &Objects) -> Result<()> {
    let upload = o.create_multipart("mp/abandoned", Metadata::default()).await?;
    let p1 = upload.upload_part(1, Bytes::from_static(b"never")).await?;
    upload.abort().await?;
    let r = o.resume_multipart("mp/abandoned", upload.upload_id())?.complete(vec![p1]).await;
    ensure!(r.is_err(), "completed an aborted upload: {r:?}");
    ensure!(o.head("mp/abandoned").await?.is_none());
    Ok(())
}

async fn put_multipart_streams_with_progress(o: &Objects) -> Result<()> {
    let chunk = Bytes::from(vec![9u8; MIB]);
    let body = futures::stream::iter((0..11).map(|_| Ok::<_, std::io::Error>(chunk.clone())));
    let mut progress = Vec::new();
    let written = o.put_multipart("mp/streamed", body, described(), 5 * MIB, |n| progress.push(n)).await?;
    ensure!(progress.len() == 11 && progress.last() == Some(&(11 * MIB as u64)), "{progress:?}");
    ensure!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    let info = o.head("mp/streamed").await?.context("the streamed object")?;
    ensure!(info.size == 11 * MIB as u64 && info.etag == written.etag, "{info:?}");
    ensure!(info.metadata == Some(described()), "{:?}", info.metadata);
    ensure!(o.get_range("mp/streamed", 5 * MIB as u64 - 1..5 * MIB as u64 + 1).await? == [9u8, 9][..]);
    Ok(())
}

type Check = for<'a> fn(&'a Objects) -> BoxFuture<'a, Result<()>>;

/// What every backend must do, by name.
const CHECKS: &[(&str, Check)] = &[
    ("metadata round trips", |o| Box::pin(metadata_round_trips(o))),
    ("ranged and conditional gets", |o| Box::pin(ranged_and_conditional_gets(o))),
    ("conditional puts", |o| Box::pin(conditional_puts(o))),
    ("deletes are idempotent", |o| Box::pin(deletes_are_idempotent(o))),
    ("listing", |o| Box::pin(listing_pages_with_prefix_delimiter_and_cursor(o))),
    ("multipart completes", |o| Box::pin(multipart_resumes_by_upload_id_and_completes(o))),
    ("multipart aborts", |o| Box::pin(multipart_aborts(o))),
    ("put_multipart", |o| Box::pin(put_multipart_streams_with_progress(o))),
];

/// Runs every check on `o`, failing with all the checks that failed.
async fn conformance(o: &Objects) -> Result<()> {
    let mut failed = Vec::new();
    for (name, check) in CHECKS {
        if let Err(e) = check(o).await {
            failed.push(format!("{name}: {e:#}"));
        }
    }
    if !failed.is_empty() {
        bail!("{} of {} checks failed:\n{}", failed.len(), CHECKS.len(), failed.join("\n"));
    }
    Ok(())
}

#[tokio::test]
async fn memory_conforms() -> Result<()> {
    conformance(&Objects::memory()).await
}

#[tokio::test]
async fn s3_on_the_emulator_conforms() -> Result<()> {
    let s3 = S3::start().await?;
    conformance(&Objects::s3(&s3.bucket().await?, &s3.sdk)?).await
}

#[tokio::test]
async fn presigned_urls_work_with_a_plain_http_client() -> Result<()> {
    let s3 = S3::start().await?;
    let o = Objects::s3(&s3.bucket().await?, &s3.sdk)?;
    let http = reqwest::Client::new();
    let payload = Bytes::from((0..=255u8).cycle().take(70_000).collect::<Vec<u8>>());

    let put = o.presign_put("shared/report.bin", Duration::from_secs(300)).await?;
    ensure!(put.query().is_some_and(|q| q.contains("X-Amz-Signature=")), "{put}");
    let r = http.put(put).body(payload.clone()).send().await?;
    ensure!(r.status().is_success(), "presigned PUT: {}", r.status());
    let stored = o.get("shared/report.bin").await?.context("the uploaded object")?;
    ensure!(stored.body == payload, "{} bytes stored", stored.body.len());

    let get = o.presign_get("shared/report.bin", Duration::from_secs(300)).await?;
    let r = http.get(get).send().await?;
    ensure!(r.status().is_success(), "presigned GET: {}", r.status());
    ensure!(r.bytes().await? == payload);
    // Not asserted: refusal of a tampered or expired URL. moto 5.2.5 does not check S3
    // signatures or expiry (both got 200 when tried), unless made to enforce IAM.
    Ok(())
}

/// `object_store`'s own integration checks, on the S3 client `adf_storage` builds.
#[tokio::test]
async fn object_store_integration_checks_pass_on_the_emulator() -> Result<()> {
    use object_store::integration::*;
    let s3 = S3::start().await?;
    let store = amazon_s3(&s3.bucket().await?, &s3.sdk)?;
    // In the order of object_store's own S3 test: some expect the bucket the previous left.
    put_get_delete_list(&store).await;
    list_with_offset_exclusivity(&store).await;
    get_opts(&store).await;
    list_uses_directories_correctly(&store).await;
    list_with_delimiter(&store).await;
    rename_and_copy(&store).await;
    stream_get(&store).await;
    multipart(&store, &store).await;
    multipart_with_opts(&store, &store).await;
    multipart_put_part_out_of_order(&store, &store).await;
    multipart_race_condition(&store, true).await;
    multipart_out_of_order(&store).await;
    put_get_attributes(&store).await;
    list_paginated(&store, &store).await;
    put_opts(&store, true).await;
    // Left out: copy_if_not_exists, and copy_rename_nonexistent_object (which ends with it),
    // need an `S3CopyIfNotExists` mode our configuration does not set (S3 has no create-only
    // copy), so they get NotImplemented; not a moto limitation.
    Ok(())
}
