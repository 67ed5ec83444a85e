//! Lambda zips released with the provider: `adf-stream-lambda.zip` (for `adf_stream_topic`)
//! and `adf-workflow-worker.zip` (for `adf_workflow`), shipped in the provider's release
//! archive beside its binary (Terraform unpacks the whole archive into the plugin directory),
//! so a user needs no Rust toolchain. A release build (`cargo xtask release`) carries the
//! SHA-256 of the zips it was released with and refuses any other zip beside it; a development
//! build takes whatever zip sits there, and logs so.

use std::path::{Path, PathBuf};

use tfplug::{AttributePath, Diagnostic, Diagnostics, Dynamic, IntoDynamic};

/// One zip released with the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleasedZip {
    /// Its file name beside the provider binary.
    pub file: &'static str,
    /// The environment variable that points elsewhere (a path to the zip itself).
    pub env_override: &'static str,
    /// The resource attribute that deploys a zip of the user's own instead.
    pub own_attribute: &'static str,
}

/// The SHA-256 (base64, as Lambda's `CodeSha256`) of each zip this binary was released with,
/// `file=hash` pairs joined by `,`, set at build time by `cargo xtask release` through the
/// environment variable [`PIN_ENV`] names; None in a development build.
const PINNED: Option<&str> = option_env!("ADF_PINNED_RUNTIME_ZIPS");

/// The build-time environment variable that pins the released zips' hashes.
pub const PIN_ENV: &str = "ADF_PINNED_RUNTIME_ZIPS";

/// The stream Lambda that `adf_stream_topic` deploys.
pub const STREAM_LAMBDA: ReleasedZip =
    ReleasedZip { file: "adf-stream-lambda.zip", env_override: "ADF_STREAM_LAMBDA_ZIP", own_attribute: "lambda_zip" };

/// The workflow worker that `adf_workflow` deploys.
pub const WORKFLOW_WORKER: ReleasedZip = ReleasedZip {
    file: "adf-workflow-worker.zip",
    env_override: "ADF_WORKFLOW_WORKER_ZIP",
    own_attribute: "worker_zip",
};

impl ReleasedZip {
    /// Where the zip is: its environment override, else beside the running provider (which a
    /// release build checks against the hash it was released with).
    pub fn locate(&self) -> Result<PathBuf, String> {
        let over = std::env::var_os(self.env_override).map(PathBuf::from);
        let pinned = PINNED.and_then(|list| pinned_in(list, self.file));
        if over.is_none() && pinned.is_none() {
            tracing::info!("development build: {} beside the binary is used without a release hash check", self.file);
        }
        locate(self, over, std::env::current_exe().ok(), pinned)
    }

    /// The planned `source_code_hash`: of the user's zip (`own`, the value of
    /// `own_attribute`), else of the released one. A new zip (a new provider release) is an
    /// in-place update; a zip that cannot be read is an error on the attribute.
    pub fn planned_hash(&self, own: &Dynamic, d: &mut Diagnostics) -> Dynamic {
        match own {
            Dynamic::Unknown => Dynamic::Unknown,
            Dynamic::String(z) => match file_sha256(Path::new(z)) {
                Some(h) => h.into_dynamic(),
                None => {
                    d.error_at(
                        AttributePath::root().attr(self.own_attribute),
                        "Missing Lambda zip",
                        format!("{z} does not exist or cannot be read."),
                    );
                    Dynamic::Unknown
                }
            },
            _ => match self.locate() {
                Ok(z) => file_sha256(&z).into_dynamic(),
                Err(m) => {
                    d.push(Diagnostic::error(format!("Cannot use {}", self.file), m));
                    Dynamic::Unknown
                }
            },
        }
    }
}

/// The hash `list` (`file=hash,...`) pins for `file`.
fn pinned_in<'a>(list: &'a str, file: &str) -> Option<&'a str> {
    list.split(',').find_map(|pair| pair.split_once('=').filter(|(f, _)| *f == file).map(|(_, hash)| hash))
}

/// Where `zip` is, given the override's value, the provider binary's path and the hash the
/// binary was released with (None in a development build).
fn locate(
    zip: &ReleasedZip,
    over: Option<PathBuf>,
    exe: Option<PathBuf>,
    pinned: Option<&str>,
) -> Result<PathBuf, String> {
    if let Some(p) = over {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{} is {}, which is not a file", zip.env_override, p.display()))
        };
    }
    let dir = exe.as_deref().and_then(Path::parent).ok_or("cannot locate the provider binary")?;
    let path = dir.join(zip.file);
    if !path.is_file() {
        return Err(format!(
            "{} is missing: the provider's release archive ships it beside the binary. Reinstall the provider, \
             set {}, or set {} to a package of your own",
            path.display(),
            zip.env_override,
            zip.own_attribute
        ));
    }
    match (pinned, file_sha256(&path)) {
        (Some(want), Some(got)) if got != want => Err(format!(
            "{} is not the zip this provider was released with: its SHA-256 is {got}, the release's is {want}. \
             Reinstall the provider (`init -upgrade`, or from your mirror), set {} to a zip you trust, or set {} \
             to a package of your own",
            path.display(),
            zip.env_override,
            zip.own_attribute
        )),
        _ => Ok(path),
    }
}

/// Base64 SHA-256 of a local file, like Lambda's `CodeSha256`; None when it cannot be read.
pub fn file_sha256(path: &Path) -> Option<String> {
    use base64::Engine;
    use sha2::Digest;
    let bytes = std::fs::read(path).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_wins_and_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("mine.zip");
        std::fs::write(&zip, b"zip").expect("write");
        for released in [STREAM_LAMBDA, WORKFLOW_WORKER] {
            assert_eq!(locate(&released, Some(zip.clone()), None, None), Ok(zip.clone()));
            let missing = locate(&released, Some(dir.path().join("nope.zip")), None, None).expect_err("missing");
            assert!(missing.contains(released.env_override), "{missing}");
        }
    }

    #[test]
    fn otherwise_it_sits_beside_the_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("terraform-provider-adf");
        for released in [STREAM_LAMBDA, WORKFLOW_WORKER] {
            let err = locate(&released, None, Some(exe.clone()), None).expect_err("absent");
            assert!(err.contains(&format!("{} is missing", released.file)), "{err}");
            assert!(err.contains(released.own_attribute), "{err}");
            std::fs::write(dir.path().join(released.file), b"zip").expect("write");
            assert_eq!(locate(&released, None, Some(exe.clone()), None), Ok(dir.path().join(released.file)));
        }
    }

    #[test]
    fn a_release_build_refuses_any_other_zip_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("terraform-provider-adf");
        let zip = dir.path().join(STREAM_LAMBDA.file);
        std::fs::write(&zip, b"released").expect("write");
        let released = file_sha256(&zip).expect("hash");
        let list = format!("{}={released},{}=other", STREAM_LAMBDA.file, WORKFLOW_WORKER.file);
        let pinned = pinned_in(&list, STREAM_LAMBDA.file);
        assert_eq!(pinned, Some(released.as_str()));
        assert_eq!(pinned_in(&list, WORKFLOW_WORKER.file), Some("other"));
        assert_eq!(locate(&STREAM_LAMBDA, None, Some(exe.clone()), pinned), Ok(zip.clone()));

        std::fs::write(&zip, b"rebuilt").expect("write");
        let err = locate(&STREAM_LAMBDA, None, Some(exe.clone()), pinned).expect_err("a different zip");
        assert!(err.contains("not the zip this provider was released with"), "{err}");
        assert!(err.contains(&released) && err.contains("lambda_zip"), "{err}");
        // An explicit override is the user's choice; a development build checks nothing.
        assert_eq!(locate(&STREAM_LAMBDA, Some(zip.clone()), None, pinned), Ok(zip.clone()));
        assert_eq!(locate(&STREAM_LAMBDA, None, Some(exe), None), Ok(zip));
    }

    #[test]
    fn hashes_match_lambdas_code_sha256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("z");
        std::fs::write(&f, b"abc").expect("write");
        assert_eq!(file_sha256(&f).as_deref(), Some("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="));
        assert_eq!(file_sha256(&dir.path().join("none")), None);
    }
}
