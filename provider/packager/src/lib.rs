//! adf-packager: builds AWS Lambda deployment zips from Rust, Go and Ruby sources.
//!
//! It builds and archives; it does not deploy. A build is described by a [`PackageSpec`];
//! [`inputs`] are the cheap content hashes of everything the build reads, as the build tool
//! sees it (a crate's path dependencies and workspace lock, a Go module's local replacements
//! and `go.work`, the toolchain, the target); [`build`] returns an [`Artifact`] (path,
//! architecture, `source_code_hash`, size), from the content-addressed cache when it holds
//! that hash. Builds never write into the user's tree. Archives are reproducible: sorted
//! entries, fixed times, fixed modes, fixed compression, so two clean builds give the same
//! bytes and Lambda's `CodeSha256`, from any checkout path.

mod archive;
mod cache;
mod cargo_project;
mod digests;
mod elf;
mod go;
mod inputs;
mod ruby;
mod rust;
mod sources;
mod stage;
mod toolchain;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toolchain::Toolchain;

pub use archive::{Entry, write_zip};
pub use cache::{default_cache_dir, inline_sources};
pub use elf::elf_architecture;
pub use inputs::Inputs;
pub use ruby::DEFAULT_HANDLER as DEFAULT_RUBY_HANDLER;

/// Lambda's limit for a zip uploaded directly (larger ones must go through S3).
pub const MAX_ZIPPED_BYTES: u64 = 50 * 1024 * 1024;
/// Lambda's limit for the unzipped deployment package.
pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;

/// The source language of a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A Cargo project; its binary becomes `bootstrap` for `provided.al2023`.
    Rust,
    /// A Go module; built as `bootstrap` for `provided.al2023`.
    Go,
    /// Ruby sources for the `ruby3.3` runtime.
    Ruby,
}

impl Language {
    /// Parses `rust`, `go` or `ruby`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rust" => Some(Language::Rust),
            "go" => Some(Language::Go),
            "ruby" => Some(Language::Ruby),
            _ => None,
        }
    }

    /// The Lambda runtime identifier.
    pub fn runtime(self) -> &'static str {
        match self {
            Language::Rust | Language::Go => "provided.al2023",
            Language::Ruby => "ruby3.3",
        }
    }

    /// The file that marks a project of this language.
    pub fn marker(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::Go => "go.mod",
            Language::Ruby => "*.rb",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Go => "go",
            Language::Ruby => "ruby",
        })
    }
}

/// The Lambda instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// `x86_64`
    #[serde(rename = "x86_64")]
    X86_64,
    /// `arm64`
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// Parses `x86_64` or `arm64`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "x86_64" => Some(Architecture::X86_64),
            "arm64" => Some(Architecture::Arm64),
            _ => None,
        }
    }

    /// Lambda's name: `x86_64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The Rust target triple.
    pub fn rust_target(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64-unknown-linux-gnu",
            Architecture::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// Go's `GOARCH`.
    pub fn goarch(self) -> &'static str {
        match self {
            Architecture::X86_64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to build.
#[derive(Clone, Debug)]
pub struct PackageSpec {
    /// The project directory.
    pub source_dir: PathBuf,
    /// Its language.
    pub language: Language,
    /// The target architecture.
    pub architecture: Architecture,
    /// Rust: the workspace member to build, when `source_dir` is a workspace.
    pub package: Option<String>,
    /// Rust: the binary to ship, when the package has several.
    pub binary: Option<String>,
    /// Rust: the workspace's Cargo profile to build with (default `release`).
    pub profile: Option<String>,
    /// Ruby: the handler, `file.method`.
    pub handler: Option<String>,
    /// Extra `.gitignore`-style patterns to leave out of the hash and the archive.
    pub excludes: Vec<String>,
    /// Where built zips are kept, by input hash.
    pub cache_dir: PathBuf,
}

impl PackageSpec {
    /// `source_dir` in `language` for x86_64, with nothing chosen or excluded, cached in
    /// `cache_dir`.
    pub fn new(source_dir: impl Into<PathBuf>, language: Language, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            source_dir: source_dir.into(),
            language,
            architecture: Architecture::X86_64,
            package: None,
            binary: None,
            profile: None,
            handler: None,
            excludes: Vec::new(),
            cache_dir: cache_dir.into(),
        }
    }
}

/// A built package, ready to deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The zip file.
    pub path: PathBuf,
    /// The input hash it was built from.
    pub input_hash: String,
    /// Its architecture.
    pub architecture: Architecture,
    /// Base64 SHA-256 of the zip, as Lambda's `CodeSha256`.
    pub source_code_hash: String,
    /// Zip size in bytes.
    pub size: u64,
    /// Lambda runtime.
    pub runtime: String,
    /// Lambda handler.
    pub handler: String,
    /// The digest of each part of the inputs (see [`Inputs::parts`]).
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

/// Why a package could not be hashed or built. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// `source_dir` does not exist.
    #[error("source directory {0} does not exist")]
    MissingSourceDir(PathBuf),
    /// No project of the language in `source_dir`.
    #[error("{dir} holds no {language} project (expected {marker})")]
    NotAProject {
        /// The directory.
        dir: PathBuf,
        /// The language asked for.
        language: Language,
        /// The file that was expected.
        marker: &'static str,
    },
    /// A tool is not installed.
    #[error("{tool} is not installed or not on PATH: {hint}")]
    MissingTool {
        /// The tool.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// The Rust standard library for the target is not installed.
    #[error(
        "the Rust target {target} is not installed, so an {arch} build would not be an {arch} binary: \
         run `rustup target add {target}` (and install cargo-zigbuild and ziglang to link it)"
    )]
    MissingRustTarget {
        /// The target triple.
        target: &'static str,
        /// The architecture asked for.
        arch: Architecture,
    },
    /// The host's glibc is newer than Lambda's and no cross linker is available.
    #[error(
        "this machine's glibc {host} is newer than provided.al2023's {lambda}, so the binary may not start on \
         Lambda: install cargo-zigbuild and ziglang (`pip install cargo-zigbuild ziglang`)"
    )]
    GlibcTooNew {
        /// The host glibc.
        host: String,
        /// Lambda's glibc.
        lambda: &'static str,
    },
    /// The Rust package has no binary, or several and none was chosen.
    #[error("{0}")]
    Binary(String),
    /// The workspace has no such member, or several and none was chosen.
    #[error("{0}")]
    Package(String),
    /// The build command failed.
    #[error("{command} failed:\n{tail}")]
    BuildFailed {
        /// The command line.
        command: String,
        /// The last lines it printed.
        tail: String,
    },
    /// The built binary is for another machine.
    #[error("bootstrap is an ELF for {found}, not {expected}")]
    WrongArchitecture {
        /// The architecture asked for.
        expected: Architecture,
        /// What the ELF header says.
        found: String,
    },
    /// The package exceeds a Lambda limit.
    #[error("the package is {size} bytes {what}, over Lambda's limit of {limit} bytes")]
    TooLarge {
        /// "zipped" or "unzipped".
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The gems that `Gemfile.lock` pins cannot be vendored.
    #[error("vendoring the gems of {gemfile}: {why}")]
    Gems {
        /// The Gemfile.
        gemfile: PathBuf,
        /// Why.
        why: String,
    },
    /// A file written inline has a name that is not a plain relative path.
    #[error("{0:?} is not a relative path inside the package (no `..`, no leading `/`)")]
    InlineFile(String),
    /// Reading or writing files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl PackageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| PackageError::Io { context, source }
    }
}

/// Checks what can be checked without hashing or building: the directory, the project marker,
/// the toolchain (for Rust the target's standard library and zig as well) and the project as
/// its build tool reads it (a Rust workspace's member and binary, a Ruby handler's file).
pub fn check(spec: &PackageSpec) -> Result<(), PackageError> {
    if let (_, Project::Ruby) = read(spec)? {
        ruby::handler(spec)?;
    }
    Ok(())
}

/// The directory, its marker and the toolchain.
fn toolchain(spec: &PackageSpec) -> Result<Toolchain, PackageError> {
    if !spec.source_dir.is_dir() {
        return Err(PackageError::MissingSourceDir(spec.source_dir.clone()));
    }
    let has_marker = match spec.language {
        Language::Rust => spec.source_dir.join("Cargo.toml").is_file(),
        Language::Go => spec.source_dir.join("go.mod").is_file(),
        Language::Ruby => std::fs::read_dir(&spec.source_dir)
            .map_err(PackageError::io(format!("reading {}", spec.source_dir.display())))?
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "rb")),
    };
    if !has_marker {
        return Err(PackageError::NotAProject {
            dir: spec.source_dir.clone(),
            language: spec.language,
            marker: spec.language.marker(),
        });
    }
    Toolchain::detect(spec.language, spec.architecture, &spec.source_dir)
}

/// A project read by its build tool, ready to hash and build.
enum Project {
    Rust(rust::RustProject),
    Go(go::GoModule),
    Ruby,
}

/// Checks the toolchain and reads the project.
fn read(spec: &PackageSpec) -> Result<(Toolchain, Project), PackageError> {
    let toolchain = toolchain(spec)?;
    let project = match spec.language {
        Language::Rust => Project::Rust(rust::RustProject::discover(spec)?),
        Language::Go => Project::Go(go::GoModule::discover(spec)?),
        Language::Ruby => Project::Ruby,
    };
    Ok((toolchain, project))
}

/// Reads the project and hashes its inputs.
fn prepare(spec: &PackageSpec) -> Result<(Toolchain, Project, Inputs), PackageError> {
    let (toolchain, project) = read(spec)?;
    let mut inputs = match &project {
        Project::Rust(p) => p.inputs(spec, &toolchain)?,
        Project::Go(m) => m.inputs(spec, &toolchain)?,
        Project::Ruby => ruby::inputs(spec, &toolchain)?,
    };
    let read = inputs.remember();
    tracing::debug!(files_read = read, "hashed the inputs");
    Ok((toolchain, project, inputs))
}

/// Everything the build reads, in named parts; [`Inputs::hash`] is the input hash.
pub fn inputs(spec: &PackageSpec) -> Result<Inputs, PackageError> {
    Ok(prepare(spec)?.2)
}

/// The hash of everything that determines the build's output.
pub fn input_hash(spec: &PackageSpec) -> Result<String, PackageError> {
    Ok(inputs(spec)?.hash())
}

/// The cached artifact for `input_hash`, when there is one.
pub fn cached(spec: &PackageSpec, input_hash: &str) -> Option<Artifact> {
    cache::load(&spec.cache_dir, input_hash)
}

/// Builds the package, or returns the cached artifact of the same inputs.
pub fn build(spec: &PackageSpec) -> Result<Artifact, PackageError> {
    let (toolchain, project, inputs) = prepare(spec)?;
    let hash = inputs.hash();
    if let Some(a) = cached(spec, &hash) {
        tracing::info!(hash, "package cache hit");
        return Ok(a);
    }
    let work = cache::work_dir(&spec.cache_dir, &hash)?;
    let (entries, handler) = match &project {
        Project::Rust(p) => (p.build(spec, &toolchain)?, "bootstrap".to_string()),
        Project::Go(m) => (m.build(spec, &work)?, "bootstrap".to_string()),
        Project::Ruby => ruby::build(spec)?,
    };
    if let Some(bootstrap) = entries.iter().find(|e| e.name == "bootstrap" && spec.language != Language::Ruby) {
        let found = elf_architecture(&bootstrap.data);
        if found != Some(spec.architecture) {
            return Err(PackageError::WrongArchitecture {
                expected: spec.architecture,
                found: found.map_or_else(|| "an unknown machine".to_string(), |a| a.to_string()),
            });
        }
    }
    let unzipped: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
    if unzipped > MAX_UNZIPPED_BYTES {
        return Err(PackageError::TooLarge { what: "unzipped", size: unzipped, limit: MAX_UNZIPPED_BYTES });
    }
    let zip = write_zip(entries).map_err(PackageError::io("writing the zip"))?;
    if zip.len() as u64 > MAX_ZIPPED_BYTES {
        return Err(PackageError::TooLarge { what: "zipped", size: zip.len() as u64, limit: MAX_ZIPPED_BYTES });
    }
    let artifact = Artifact {
        path: PathBuf::new(),
        input_hash: hash.clone(),
        architecture: spec.architecture,
        source_code_hash: archive::code_sha256(&zip),
        size: zip.len() as u64,
        runtime: spec.language.runtime().to_string(),
        handler,
        inputs: inputs.parts(),
    };
    let saved = cache::store(&spec.cache_dir, &hash, &zip, artifact)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(saved)
}

/// Runs `cmd`, logging its output; on failure the error carries the last lines.
pub(crate) fn run(cmd: &mut std::process::Command) -> Result<(), PackageError> {
    let shown = format!("{:?}", cmd).replace('"', "");
    tracing::info!(command = %shown, "building");
    let out = cmd.output().map_err(PackageError::io(format!("starting {shown}")))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for line in text.lines() {
        tracing::debug!(target: "adf_packager::build", "{line}");
    }
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(PackageError::BuildFailed { command: shown, tail });
    }
    Ok(())
}

/// Reads a file into an archive entry with `mode`.
pub(crate) fn entry_from(path: &Path, name: &str, mode: u32) -> Result<Entry, PackageError> {
    let data = std::fs::read(path).map_err(PackageError::io(format!("reading {}", path.display())))?;
    Ok(Entry { name: name.to_string(), data, mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, language: Language) -> PackageSpec {
        PackageSpec::new(dir, language, dir.join(".cache"))
    }

    #[test]
    fn a_missing_directory_and_a_foreign_project_are_told_apart() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = spec(&dir.path().join("nope"), Language::Go);
        assert!(matches!(check(&missing), Err(PackageError::MissingSourceDir(_))));
        let empty = spec(dir.path(), Language::Rust);
        let err = check(&empty).expect_err("no Cargo.toml");
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
    }

    #[test]
    fn names_parse_both_ways() {
        for l in [Language::Rust, Language::Go, Language::Ruby] {
            assert_eq!(Language::parse(&l.to_string()), Some(l));
        }
        for a in [Architecture::X86_64, Architecture::Arm64] {
            assert_eq!(Architecture::parse(a.as_str()), Some(a));
        }
        assert_eq!(Language::parse("python"), None);
    }
}
