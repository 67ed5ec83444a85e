//! `adf object`: an object bucket's objects (`adf_object_bucket`, or any S3 bucket): put (in
//! parts, with progress, when large), get, ls, rm and presigned URLs.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adf_storage::contract::object_bucket_name;
use adf_storage::object::{HttpMetadata, ListOptions, ListPage, Metadata, ObjectInfo, PutOptions};
use adf_storage::{Objects, StoreKind};
use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use clap::{Args, Subcommand, ValueEnum};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::STORE;
use super::progress::{Progress, size};
use crate::output;

/// Files larger than this are uploaded in parts of this size.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// How much is read from the file at a time during a multipart upload.
const READ_BYTES: usize = 1024 * 1024;

/// `adf object` and the options that say which bucket.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The bucket bound as NAME in ADF_STORAGE_BINDINGS (the JSON in an adf_object_bucket's
    /// client_config output, or an adf_function's environment).
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    binding: Option<String>,
    /// The bucket of the adf_object_bucket named NAME: adf-objects-NAME-<account>.
    #[arg(long, global = true, value_name = "NAME", help_heading = STORE)]
    bucket_name: Option<String>,
    /// An S3 bucket, by its own name.
    #[arg(long, global = true, value_name = "BUCKET", help_heading = STORE)]
    bucket: Option<String>,
    #[command(subcommand)]
    command: ObjectCommand,
}

#[derive(Debug, Subcommand)]
enum ObjectCommand {
    /// Upload a file or standard input; over 8 MiB in 8 MiB parts, with progress on stderr.
    Put(Put),
    /// Download an object to a file or standard output.
    Get(Get),
    /// List objects in key order (with --delimiter, grouped by `/`).
    Ls(Ls),
    /// Delete an object; an absent one is fine.
    Rm(Rm),
    /// Print a presigned URL that lets its holder GET or PUT an object without credentials.
    Presign(Presign),
}

/// Runs one object command.
pub async fn run(args: ObjectArgs) -> Result<()> {
    let objects = open(&args).await?;
    match args.command {
        ObjectCommand::Put(c) => c.run(&objects).await,
        ObjectCommand::Get(c) => c.run(&objects).await,
        ObjectCommand::Ls(c) => c.run(&objects).await,
        ObjectCommand::Rm(c) => c.run(&objects).await,
        ObjectCommand::Presign(c) => c.run(&objects).await,
    }
}

/// The bucket `--binding`, `--bucket-name` or `--bucket` names.
async fn open(args: &ObjectArgs) -> Result<Objects> {
    let sdk = super::sdk().await?;
    let (name, binding) = match (&args.binding, &args.bucket_name, &args.bucket) {
        (Some(name), None, None) => (name.as_str(), super::bound(name)?),
        (None, Some(name), None) => {
            let bucket = object_bucket_name(name, &super::account(&sdk).await?);
            (name.as_str(), adf_storage::Binding { bucket: Some(bucket), ..super::named(StoreKind::Object, name) })
        }
        (None, None, Some(bucket)) => (
            bucket.as_str(),
            adf_storage::Binding { bucket: Some(bucket.clone()), ..super::named(StoreKind::Object, bucket) },
        ),
        (None, None, None) => anyhow::bail!(
            "no bucket: pass --binding NAME (a binding in ADF_STORAGE_BINDINGS), --bucket-name NAME (an \
             adf_object_bucket's name) or --bucket BUCKET"
        ),
        _ => anyhow::bail!("pass one of --binding, --bucket-name and --bucket"),
    };
    Ok(super::storage(name, binding, &sdk).objects(name)?)
}

/// `-` as standard input or output, anything else as a path.
fn path(p: &Path) -> Option<&Path> {
    (p != Path::new("-")).then_some(p)
}

#[derive(Debug, Args)]
pub struct Put {
    /// The object's key.
    key: String,
    /// The file to upload; `-` reads standard input.
    #[arg(default_value = "-")]
    path: PathBuf,
    /// The Content-Type stored with the object and sent back with it.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Custom metadata (x-amz-meta-*): `--metadata owner=ada`, repeatable. Keys of lowercase
    /// letters, digits, `-`, `_` and `.`; at most 2 KiB in all.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Store only if no object has the key yet (inputs of at most 8 MiB).
    #[arg(long, conflicts_with = "if_match")]
    if_absent: bool,
    /// Store only if the object's ETag is still this one, quoted as `ls` shows it (inputs of at
    /// most 8 MiB).
    #[arg(long, value_name = "ETAG")]
    if_match: Option<String>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

impl Put {
    async fn run(self, objects: &Objects) -> Result<()> {
        let metadata = Metadata {
            http: HttpMetadata { content_type: self.content_type, ..HttpMetadata::default() },
            custom: self.metadata.into_iter().collect::<BTreeMap<_, _>>(),
        };
        let (mut reader, total): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = match path(&self.path) {
            Some(p) => {
                let file = tokio::fs::File::open(p).await.with_context(|| format!("reading {}", p.display()))?;
                let len = file.metadata().await.with_context(|| format!("reading {}", p.display()))?.len();
                (Box::new(file), Some(len))
            }
            None => (Box::new(tokio::io::stdin()), None),
        };
        let mut first = Vec::new();
        (&mut reader).take(PART_BYTES as u64 + 1).read_to_end(&mut first).await.context("reading the input")?;
        let (written, bytes) = if first.len() <= PART_BYTES {
            let bytes = first.len() as u64;
            let options = PutOptions { metadata, only_if_absent: self.if_absent, if_match: self.if_match };
            (objects.put(&self.key, first, options).await?, bytes)
        } else if self.if_absent || self.if_match.is_some() {
            anyhow::bail!("--if-absent and --if-match apply to inputs of at most 8 MiB (one request)");
        } else {
            let stderr = std::io::stderr();
            let mut progress = Progress::new(stderr.is_terminal(), stderr, total, PART_BYTES as u64);
            let mut bytes = 0;
            let body = chunks(first.into(), reader);
            let written = objects
                .put_multipart(&self.key, body, metadata, PART_BYTES, |n| {
                    bytes = n;
                    progress.show(n);
                })
                .await;
            progress.finish();
            (written?, bytes)
        };
        let etag = written.etag.map(|e| format!(", etag {e}")).unwrap_or_default();
        output::line(&format!("stored {} ({}{etag})", self.key, size(bytes)))
    }
}

/// `first`, then the rest of `reader`, a chunk at a time.
fn chunks(first: Bytes, reader: Box<dyn AsyncRead + Unpin + Send>) -> impl Stream<Item = std::io::Result<Bytes>> {
    let rest = futures::stream::try_unfold(reader, |mut r| async move {
        let mut buf = BytesMut::with_capacity(READ_BYTES);
        let n = r.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| (buf.freeze(), r)))
    });
    futures::stream::once(async { Ok(first) }).chain(rest)
}

#[derive(Debug, Args)]
pub struct Get {
    /// The object's key.
    key: String,
    /// Where to write it; `-` is standard output.
    #[arg(default_value = "-")]
    path: PathBuf,
}

impl Get {
    async fn run(self, objects: &Objects) -> Result<()> {
        let Some(object) = objects.get(&self.key).await? else { anyhow::bail!("no object {}", self.key) };
        super::write_out(&object.body, path(&self.path))
    }
}

#[derive(Debug, Args)]
pub struct Ls {
    /// Only keys starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// Group keys by `/` after the prefix: a deeper key is listed once, as its prefix ending in `/`.
    #[arg(long)]
    delimiter: bool,
    /// The most entries to list (1 to 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Start after the page that printed this cursor (on standard error, `more objects: --cursor C`).
    #[arg(long)]
    cursor: Option<String>,
    /// Print a JSON line per entry instead of a table: `{"key", "size", "etag", "last_modified"}`,
    /// or `{"prefix"}` for a group.
    #[arg(long)]
    json: bool,
}

impl Ls {
    async fn run(self, objects: &Objects) -> Result<()> {
        let options = ListOptions {
            prefix: self.prefix,
            limit: Some(self.limit.into()),
            cursor: self.cursor,
            delimiter: self.delimiter,
        };
        let page = objects.list(options).await?;
        if self.json {
            for o in &page.objects {
                output::line(&info_json(o).to_string())?;
            }
            for p in &page.delimited_prefixes {
                output::line(&json!({"prefix": p}).to_string())?;
            }
        } else if page.objects.is_empty() && page.delimited_prefixes.is_empty() {
            output::line("no objects")?;
        } else {
            output::line(&table(&page))?;
        }
        super::more("objects", page.cursor.as_deref());
        Ok(())
    }
}

fn modified(o: &ObjectInfo) -> String {
    humantime::format_rfc3339_seconds(o.last_modified).to_string()
}

fn info_json(o: &ObjectInfo) -> serde_json::Value {
    json!({"key": o.key, "size": o.size, "etag": o.etag, "last_modified": modified(o)})
}

/// Objects and groups in key order.
fn table(page: &ListPage) -> String {
    let mut rows: Vec<[String; 3]> =
        page.objects.iter().map(|o| [o.key.clone(), o.size.to_string(), modified(o)]).collect();
    rows.extend(page.delimited_prefixes.iter().map(|p| [p.clone(), "-".into(), "-".into()]));
    rows.sort();
    super::table(["KEY", "SIZE", "MODIFIED"], &rows)
}

#[derive(Debug, Args)]
pub struct Rm {
    /// The object's key.
    key: String,
}

impl Rm {
    async fn run(self, objects: &Objects) -> Result<()> {
        objects.delete(&self.key).await?;
        output::line(&format!("removed {}", self.key))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Method {
    Get,
    Put,
}

#[derive(Debug, Args)]
pub struct Presign {
    /// The object's key.
    key: String,
    /// What the URL allows: downloading the object, or uploading one under the key.
    #[arg(long, value_enum, default_value_t = Method::Get)]
    method: Method,
    /// How long the URL stays valid: `15m`, `1h`, up to `7d`.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    expires: Duration,
}

impl Presign {
    async fn run(self, objects: &Objects) -> Result<()> {
        let url = match self.method {
            Method::Get => objects.presign_get(&self.key, self.expires).await?,
            Method::Put => objects.presign_put(&self.key, self.expires).await?,
        };
        output::line(url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::parse_args;

    #[test]
    fn put_reads_standard_input_unless_given_a_file() -> Result<(), clap::Error> {
        let p = parse_args::<Put>(&["put", "k"])?;
        assert_eq!(path(&p.path), None);
        let p = parse_args::<Put>(&["put", "k", "a.bin", "--metadata", "owner=ada", "--metadata", "x=a=b"])?;
        assert_eq!(path(&p.path), Some(Path::new("a.bin")));
        assert_eq!(p.metadata, [("owner".into(), "ada".into()), ("x".into(), "a=b".into())]);
        assert!(parse_args::<Put>(&["put", "k", "--metadata", "owner"]).is_err());
        Ok(())
    }

    #[test]
    fn presign_defaults_to_a_get_for_15_minutes() -> Result<(), clap::Error> {
        let p = parse_args::<Presign>(&["presign", "k"])?;
        assert_eq!((p.method, p.expires), (Method::Get, Duration::from_secs(900)));
        let p = parse_args::<Presign>(&["presign", "k", "--method", "put", "--expires", "1h"])?;
        assert_eq!((p.method, p.expires), (Method::Put, Duration::from_secs(3600)));
        assert!(parse_args::<Presign>(&["presign", "k", "--method", "delete"]).is_err());
        Ok(())
    }

    #[tokio::test]
    async fn chunks_start_with_what_was_read_first() -> Result<()> {
        let rest: Box<dyn AsyncRead + Unpin + Send> = Box::new(&b"cdef"[..]);
        let got: Vec<Bytes> = chunks(Bytes::from_static(b"ab"), rest)
            .map(|c| c.map_err(anyhow::Error::from))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        assert_eq!(got.concat(), b"abcdef");
        assert_eq!(got[0], Bytes::from_static(b"ab"));
        Ok(())
    }

    #[test]
    fn groups_sort_among_the_objects() {
        let o = |key: &str| ObjectInfo {
            key: key.into(),
            size: 3,
            etag: None,
            version: None,
            last_modified: std::time::UNIX_EPOCH + Duration::from_secs(1_893_456_000),
            metadata: None,
        };
        let page =
            ListPage { objects: vec![o("a"), o("c")], delimited_prefixes: vec!["b/".into()], ..ListPage::default() };
        assert_eq!(
            table(&page),
            "KEY  SIZE  MODIFIED\na    3     2030-01-01T00:00:00Z\nb/   -     -\nc    3     2030-01-01T00:00:00Z"
        );
    }
}
