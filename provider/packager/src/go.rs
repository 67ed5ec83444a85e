//! Go: a static `bootstrap` for `provided.al2023`, built reproducibly (`-trimpath`, no build
//! id, no VCS stamp). The inputs are the module, the local modules it replaces, and its
//! `go.work` with the modules that uses, read with `go mod edit -json` and
//! `go work edit -json`, which read files only. `go build` leaves `go.mod` and `go.sum` as
//! they are (`-mod=readonly` or the module's `vendor/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::inputs::Inputs;
use crate::sources::{SourceFile, SourceFiles, relative};
use crate::toolchain::Toolchain;
use crate::{Entry, PackageError, PackageSpec, entry_from, run};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Edit {
    #[serde(default)]
    replace: Option<Vec<Replace>>,
    #[serde(default)]
    r#use: Option<Vec<Use>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Replace {
    new: ModPath,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModPath {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Use {
    disk_path: String,
}

/// A Go module and the local modules its build reads.
pub struct GoModule {
    dir: PathBuf,
    work: Option<PathBuf>,
    modules: BTreeSet<PathBuf>,
}

impl GoModule {
    /// Reads the module at `spec.source_dir`.
    pub fn discover(spec: &PackageSpec) -> Result<Self, PackageError> {
        let dir = spec
            .source_dir
            .canonicalize()
            .map_err(PackageError::io(format!("reading {}", spec.source_dir.display())))?;
        let mut modules = BTreeSet::from([dir.clone()]);
        let local =
            |base: &Path, path: &str| (path.starts_with("./") || path.starts_with("../")).then(|| base.join(path));
        for r in edit(&dir, &["mod", "edit", "-json"])?.replace.unwrap_or_default() {
            modules.extend(local(&dir, &r.new.path));
        }
        let work = go_env(&dir, "GOWORK").filter(|w| !w.is_empty() && w != "off").map(PathBuf::from);
        if let Some(work) = &work {
            let base = work.parent().unwrap_or(Path::new("/")).to_path_buf();
            let w = edit(&base, &["work", "edit", "-json", &work.display().to_string()])?;
            for u in w.r#use.unwrap_or_default() {
                modules.insert(base.join(&u.disk_path));
            }
            for r in w.replace.unwrap_or_default() {
                modules.extend(local(&base, &r.new.path));
            }
        }
        let modules = modules.into_iter().map(|m| m.canonicalize().unwrap_or(m)).collect();
        Ok(Self { dir, work, modules })
    }

    /// The inputs: each module's files (named by their path from the built module), the
    /// workspace files, and the toolchain.
    pub fn inputs(&self, spec: &PackageSpec, toolchain: &Toolchain) -> Result<Inputs, PackageError> {
        let mut inputs = Inputs::for_spec(spec);
        for m in &self.modules {
            let rel = relative(&self.dir, m);
            let files = SourceFiles::collect_project(m, &spec.excludes, Some("go.mod"))?;
            inputs.files(format!("module {rel}"), &rel, &files);
        }
        if let Some(work) = &self.work {
            let files: Vec<SourceFile> = [work.clone(), work.with_extension("work.sum")]
                .into_iter()
                .filter(|p| p.is_file())
                .map(|path| SourceFile::new(relative(&self.dir, &path), path))
                .collect();
            inputs.files("go.work", ".", &SourceFiles { files });
        }
        inputs.value("toolchain", &format!("go {} {}", toolchain.fingerprint(), spec.architecture));
        Ok(inputs)
    }

    /// `-mod=vendor` where Go would build from `vendor/` (beside `go.work` in a workspace),
    /// else `-mod=readonly`: never `-mod=mod`, which writes `go.mod` and `go.sum`.
    fn mod_flag(&self) -> &'static str {
        let root = self.work.as_ref().and_then(|w| w.parent()).unwrap_or(&self.dir);
        if root.join("vendor/modules.txt").is_file() { "-mod=vendor" } else { "-mod=readonly" }
    }

    /// Builds `bootstrap` in `work` and returns the archive entries.
    pub fn build(&self, spec: &PackageSpec, work: &Path) -> Result<Vec<Entry>, PackageError> {
        let out = work.join("bootstrap");
        let mut cmd = Command::new("go");
        cmd.current_dir(&self.dir)
            .args([
                "build",
                "-trimpath",
                "-buildvcs=false",
                self.mod_flag(),
                "-tags",
                "lambda.norpc",
                "-ldflags",
                "-s -w -buildid=",
                "-o",
            ])
            .arg(&out)
            .arg(".")
            .env("GOOS", "linux")
            .env("GOARCH", spec.architecture.goarch())
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            // The user's GOFLAGS (from the environment or `go env -w`) could ask for -mod=mod,
            // which rewrites go.mod and go.sum; `-mod` above overrides both.
            .env_remove("GOFLAGS");
        run(&mut cmd)?;
        Ok(vec![entry_from(&out, "bootstrap", 0o755)?])
    }
}

/// `go <args>` (an `edit -json`) in `dir`, parsed.
fn edit(dir: &Path, args: &[&str]) -> Result<Edit, PackageError> {
    let out = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(PackageError::io("running go"))?;
    if !out.status.success() {
        return Err(PackageError::BuildFailed {
            command: format!("go {}", args.join(" ")),
            tail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| PackageError::Io {
        context: format!("reading go {}", args.join(" ")),
        source: std::io::Error::other(e),
    })
}

/// `go env <name>` in `dir`.
fn go_env(dir: &Path, name: &str) -> Option<String> {
    let out = Command::new("go").args(["env", name]).current_dir(dir).env("GOTOOLCHAIN", "local").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
