//! Rust: a release build of one binary, shipped as `bootstrap` and linked against Lambda's
//! glibc. The inputs are what cargo reads (see [`CargoProject`]); the build runs in a staging
//! copy (see [`crate::stage`]), so the user's tree is never written to.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo_project::{CargoProject, ROOT_FILES};
use crate::inputs::Inputs;
use crate::sources::{SourceFile, SourceFiles, relative};
use crate::stage::{Stage, stage_root};
use crate::toolchain::{LAMBDA_GLIBC, RustLinker, Toolchain};
use crate::{Entry, PackageError, PackageSpec, entry_from, run};

/// The Cargo profile built when the spec names none.
const RELEASE: &str = "release";

/// A Rust project and where its inputs are.
pub struct RustProject {
    project: CargoProject,
    root: PathBuf,
}

impl RustProject {
    /// Reads the project of `spec`.
    pub fn discover(spec: &PackageSpec) -> Result<Self, PackageError> {
        let project = CargoProject::discover(&spec.source_dir, spec.package.as_deref(), spec.binary.as_deref())?;
        let root = project.root();
        Ok(Self { project, root })
    }

    /// `dir` relative to the project's root.
    fn rel(&self, dir: &Path) -> String {
        relative(&self.root, dir)
    }

    /// The workspace's own files (manifest, toolchain file, cargo config) and the manifests
    /// of the workspaces that path dependencies inherit from.
    fn root_files(&self) -> SourceFiles {
        let ws = &self.project.workspace_root;
        let mut files: Vec<SourceFile> = ROOT_FILES
            .iter()
            .map(|f| ws.join(f))
            .chain(self.project.other_roots.iter().map(|r| r.join("Cargo.toml")))
            .filter(|p| p.is_file())
            .map(|path| SourceFile::new(self.rel(&path), path))
            .collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        SourceFiles { files }
    }

    fn lock_file(&self) -> PathBuf {
        self.project.workspace_root.join("Cargo.lock")
    }

    /// Identifies the lock that cargo would resolve without one: the hash of every manifest.
    fn lock_key(&self) -> String {
        let mut files = self.root_files();
        files.files.extend(self.project.packages.iter().map(|d| SourceFile::new(self.rel(d), d.join("Cargo.toml"))));
        files.hash(&["lock"])
    }

    /// The build's inputs: each source package, the workspace files, the lock, the toolchain.
    pub fn inputs(&self, spec: &PackageSpec, toolchain: &Toolchain) -> Result<Inputs, PackageError> {
        let mut inputs = Inputs::for_spec(spec);
        for (name, dir) in &self.project.sources {
            let files = SourceFiles::collect_project(dir, &spec.excludes, Some("Cargo.toml"))?;
            inputs.files(format!("crate {name}"), &self.rel(dir), &files);
        }
        inputs.files("workspace", ".", &self.root_files());
        let lock = self.lock_file();
        if lock.is_file() {
            let files = SourceFiles { files: vec![SourceFile::new(self.rel(&lock), lock)] };
            inputs.files("Cargo.lock", ".", &files);
        } else {
            // Resolved once into the package cache, then reused: the manifests decide it.
            inputs.value("Cargo.lock", &format!("resolved from manifests {}", self.lock_key()));
        }
        inputs.value(
            "toolchain",
            &format!(
                "rust {} {} {} {} strip=symbols {}",
                toolchain.fingerprint(),
                spec.architecture,
                self.project.package,
                self.project.binary,
                match spec.profile.as_deref() {
                    Some(p) if p != RELEASE => format!("the workspace's {p} profile"),
                    _ if self.has_release_profile() => "the workspace's release profile".into(),
                    _ => "lto=thin codegen-units=1 panic=abort".into(),
                }
            ),
        );
        Ok(inputs)
    }

    /// Builds the binary in the stage and returns the archive entries.
    pub fn build(&self, spec: &PackageSpec, toolchain: &Toolchain) -> Result<Vec<Entry>, PackageError> {
        let stage = Stage::lock(&spec.cache_dir, &self.project.package)?;
        let mut files = Vec::new();
        for dir in &self.project.packages {
            let excludes: &[String] =
                if self.project.sources.values().any(|d| d == dir) { &spec.excludes } else { &[] };
            let rel = self.rel(dir);
            for f in SourceFiles::collect_project(dir, excludes, Some("Cargo.toml"))?.files {
                files.push((f.path, if rel == "." { f.rel } else { format!("{rel}/{}", f.rel) }));
            }
        }
        files.extend(self.root_files().files.into_iter().map(|f| (f.path, f.rel)));
        let lock = self.lock_file();
        if lock.is_file() {
            files.push((lock.clone(), self.rel(&lock)));
        }
        stage.sync(&files)?;
        let workspace = stage.dir.join(self.rel(&self.project.workspace_root));
        if !lock.is_file() {
            self.resolved_lock(spec, &workspace)?;
        }

        let target_dir = spec.cache_dir.join("cargo-target");
        let triple = spec.architecture.rust_target();
        let mut cmd = match &toolchain.rust_linker {
            Some(RustLinker::Zigbuild(zigbuild)) => {
                let mut c = Command::new(zigbuild);
                c.arg("zigbuild").arg("--target").arg(format!("{triple}.{LAMBDA_GLIBC}"));
                c
            }
            _ => {
                let mut c = Command::new("cargo");
                c.arg("build").arg("--target").arg(triple);
                c
            }
        };
        let profile = spec.profile.as_deref().unwrap_or(RELEASE);
        cmd.current_dir(&workspace)
            .args(["--profile", profile, "--locked", "--package", &self.project.package, "--bin", &self.project.binary])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        // The stage and the cargo home are the only machine paths rustc sees: remapping them
        // makes the binary the same anywhere, and the flags the same for every checkout.
        cmd.env("RUSTFLAGS", remap_flags(&spec.cache_dir))
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
            .env("CARGO_TERM_COLOR", "never");
        if profile == RELEASE && !self.has_release_profile() {
            // cargo-lambda's release settings, for a workspace that has none of its own. With
            // `panic = "abort"` a panicking handler ends the process and Lambda starts a new
            // one; a workspace that wants unwinding says so in its own release profile.
            cmd.env("CARGO_PROFILE_RELEASE_LTO", "thin")
                .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
                .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
        }
        run(&mut cmd)?;
        let built = target_dir.join(triple).join(profile).join(&self.project.binary);
        Ok(vec![entry_from(&built, "bootstrap", 0o755)?])
    }

    /// Whether the workspace's manifest sets its own `[profile.release]`.
    fn has_release_profile(&self) -> bool {
        std::fs::read_to_string(self.project.workspace_root.join("Cargo.toml"))
            .is_ok_and(|m| m.lines().any(|l| l.trim() == "[profile.release]"))
    }

    /// Puts the lock for a project without one into the stage: the one resolved before, kept
    /// in the package cache, or a new resolution that is kept there for the next builds.
    fn resolved_lock(&self, spec: &PackageSpec, workspace: &Path) -> Result<(), PackageError> {
        let key = self.lock_key();
        let kept = spec.cache_dir.join("locks").join(format!("{key}.lock"));
        let staged = workspace.join("Cargo.lock");
        if kept.is_file() {
            std::fs::copy(&kept, &staged).map_err(PackageError::io(format!("copying {}", kept.display())))?;
            return Ok(());
        }
        let mut cmd = Command::new("cargo");
        cmd.current_dir(workspace).arg("generate-lockfile").arg("--manifest-path").arg(workspace.join("Cargo.toml"));
        run(&mut cmd)?;
        let dir = spec.cache_dir.join("locks");
        std::fs::create_dir_all(&dir).map_err(PackageError::io(format!("creating {}", dir.display())))?;
        let tmp = dir.join(format!("{key}.{}", std::process::id()));
        std::fs::copy(&staged, &tmp).map_err(PackageError::io("keeping the resolved Cargo.lock"))?;
        std::fs::rename(&tmp, &kept).map_err(PackageError::io("keeping the resolved Cargo.lock"))
    }
}

/// `--remap-path-prefix` for the stage and the cargo home.
fn remap_flags(cache: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_default();
    let stage = stage_root(cache);
    let stage = stage.canonicalize().unwrap_or(stage);
    format!("--remap-path-prefix={}=/build --remap-path-prefix={}=/cargo", stage.display(), cargo_home.display())
}
