//! A Cargo package seen the way cargo sees it (`cargo metadata --no-deps`, which reads
//! manifests and writes nothing): the package and binary to build, its workspace, the path
//! dependencies whose sources go into the binary, and everything cargo must find to load the
//! workspace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::PackageError;

/// Files at a workspace root that change what cargo builds.
pub const ROOT_FILES: [&str; 5] =
    ["Cargo.toml", "rust-toolchain", "rust-toolchain.toml", ".cargo/config.toml", ".cargo/config"];

#[derive(Debug, Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    packages: Vec<Package>,
}

#[derive(Clone, Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
    dependencies: Vec<Dependency>,
}

#[derive(Clone, Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Dependency {
    path: Option<PathBuf>,
    kind: Option<String>,
}

impl Package {
    fn dir(&self) -> PathBuf {
        self.manifest_path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn bins(&self) -> Vec<String> {
        self.targets.iter().filter(|t| t.kind.iter().any(|k| k == "bin")).map(|t| t.name.clone()).collect()
    }

    /// Directories of its path dependencies; dev-dependencies only when `dev`.
    fn path_deps(&self, dev: bool) -> impl Iterator<Item = PathBuf> + '_ {
        self.dependencies.iter().filter(move |d| dev || d.kind.as_deref() != Some("dev")).filter_map(|d| d.path.clone())
    }
}

/// A package to build and what its build reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CargoProject {
    /// The package to build.
    pub package: String,
    /// The binary shipped as `bootstrap`.
    pub binary: String,
    /// Its workspace root (the package's own directory for a lone crate).
    pub workspace_root: PathBuf,
    /// The package's directory.
    pub package_dir: PathBuf,
    /// Packages whose sources go into the binary, by name: the package and its path
    /// dependencies (normal and build), transitively.
    pub sources: BTreeMap<String, PathBuf>,
    /// Package directories cargo must find to load the workspace: every member, and the path
    /// dependencies reachable from them (dev-dependencies of members included).
    pub packages: BTreeSet<PathBuf>,
    /// Workspace roots that path dependencies inherit from (`version.workspace = true`).
    pub other_roots: BTreeSet<PathBuf>,
}

impl CargoProject {
    /// Reads the project at `source_dir`. `package` and `binary` choose, in a workspace or a
    /// package with several binaries; without them the only candidate is taken.
    pub fn discover(source_dir: &Path, package: Option<&str>, binary: Option<&str>) -> Result<Self, PackageError> {
        let dir = source_dir.canonicalize().map_err(PackageError::io(format!("reading {}", source_dir.display())))?;
        let meta = metadata(&dir.join("Cargo.toml"))?;
        let chosen = choose(&meta, &dir, package, binary)?.clone();
        let bins = chosen.bins();
        let binary = match (binary, bins.as_slice()) {
            (Some(b), _) if bins.iter().any(|x| x == b) => b.to_string(),
            (Some(b), _) => {
                return Err(PackageError::Binary(format!(
                    "the package {} has no binary {b:?}; it has {bins:?}",
                    chosen.name
                )));
            }
            (None, [only]) => only.clone(),
            (None, []) => {
                return Err(PackageError::Binary(format!("the package {} has no binary target", chosen.name)));
            }
            (None, many) => {
                return Err(PackageError::Binary(format!(
                    "the package {} has several binaries {many:?}: set binary",
                    chosen.name
                )));
            }
        };
        let root = meta.workspace_root.clone();
        // `[patch]` path crates may stand in for any registry crate the package uses: without
        // a resolution (which would write a lock) they all count as its sources.
        let patched = patched(&root)?;
        let mut graph = Graph::new(meta);
        let sources = graph.closure([chosen.dir()].into_iter().chain(patched.iter().cloned()), false)?;
        let members: Vec<PathBuf> = graph.metas[0].packages.iter().map(Package::dir).collect();
        let packages = graph.closure(members.into_iter().chain(patched), true)?;
        let other_roots = graph
            .metas
            .iter()
            .map(|m| m.workspace_root.clone())
            .filter(|r| *r != root && !packages.contains_key(r))
            .collect();
        Ok(Self {
            package: chosen.name.clone(),
            binary,
            package_dir: chosen.dir(),
            workspace_root: root,
            sources: sources.into_iter().map(|(dir, p)| (p.name, dir)).collect(),
            packages: packages.into_keys().collect(),
            other_roots,
        })
    }

    /// The deepest directory that holds every directory the build reads.
    pub fn root(&self) -> PathBuf {
        let mut dirs = self.packages.iter().chain(&self.other_roots).chain([&self.workspace_root]);
        let first = dirs.next().cloned().unwrap_or_default();
        dirs.fold(first, |acc, d| {
            acc.components().zip(d.components()).take_while(|(a, b)| a == b).map(|(a, _)| a.as_os_str()).collect()
        })
    }
}

/// The package that `source_dir`, `package` and `binary` select among the workspace's members.
fn choose<'a>(
    meta: &'a Metadata,
    dir: &Path,
    package: Option<&str>,
    binary: Option<&str>,
) -> Result<&'a Package, PackageError> {
    let names = || meta.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(name) = package {
        return meta.packages.iter().find(|p| p.name == name).ok_or_else(|| {
            PackageError::Package(format!("the workspace has no package {name:?}; its members are {}", names()))
        });
    }
    if let Some(p) = meta.packages.iter().find(|p| p.dir() == dir) {
        return Ok(p);
    }
    let candidates: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| binary.map_or(!p.bins().is_empty(), |b| p.bins().iter().any(|x| x == b)))
        .collect();
    match candidates.as_slice() {
        [only] => Ok(only),
        _ => Err(PackageError::Package(format!(
            "{} is a workspace with members {}: set package (and binary when it has several)",
            dir.display(),
            names()
        ))),
    }
}

/// The packages read so far, by the workspace their metadata came from.
struct Graph {
    metas: Vec<Metadata>,
}

impl Graph {
    fn new(meta: Metadata) -> Self {
        Self { metas: vec![meta] }
    }

    /// The package whose directory is `dir`, reading its workspace's metadata when it is new.
    fn package(&mut self, dir: &Path) -> Result<Package, PackageError> {
        let find = |metas: &[Metadata]| metas.iter().flat_map(|m| &m.packages).find(|p| p.dir() == dir).cloned();
        if let Some(p) = find(&self.metas) {
            return Ok(p);
        }
        self.metas.push(metadata(&dir.join("Cargo.toml"))?);
        find(&self.metas).ok_or_else(|| PackageError::Binary(format!("{} holds no Cargo package", dir.display())))
    }

    /// The packages reachable from `start` by path dependencies. Dev-dependencies count
    /// for the first workspace's members when `dev` (cargo resolves them for the lock file).
    fn closure(
        &mut self,
        start: impl IntoIterator<Item = PathBuf>,
        dev: bool,
    ) -> Result<BTreeMap<PathBuf, Package>, PackageError> {
        let members: BTreeSet<PathBuf> = self.metas[0].packages.iter().map(Package::dir).collect();
        let mut seen = BTreeMap::new();
        let mut queue: VecDeque<PathBuf> = start.into_iter().collect();
        while let Some(dir) = queue.pop_front() {
            if seen.contains_key(&dir) {
                continue;
            }
            let p = self.package(&dir)?;
            queue.extend(p.path_deps(dev && members.contains(&dir)));
            seen.insert(dir, p);
        }
        Ok(seen)
    }
}

/// The directories of the path crates that the workspace manifest's `[patch]` tables name.
fn patched(root: &Path) -> Result<Vec<PathBuf>, PackageError> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(PackageError::io(format!("reading {}", path.display())))?;
    let manifest: toml::Table = text.parse().map_err(|e| PackageError::Io {
        context: format!("reading {}", path.display()),
        source: std::io::Error::other(e),
    })?;
    let registries = manifest.get("patch").and_then(toml::Value::as_table).into_iter().flat_map(|t| t.values());
    Ok(registries
        .filter_map(toml::Value::as_table)
        .flat_map(|crates| crates.values())
        .filter_map(|c| c.get("path").and_then(toml::Value::as_str))
        .map(|p| {
            let dir = root.join(p);
            dir.canonicalize().unwrap_or(dir)
        })
        .collect())
}

/// `cargo metadata --no-deps` for `manifest`, run from its directory (so that its
/// `rust-toolchain.toml` applies).
fn metadata(manifest: &Path) -> Result<Metadata, PackageError> {
    let mut cmd = Command::new("cargo");
    cmd.args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"]).arg(manifest);
    if let Some(dir) = manifest.parent() {
        cmd.current_dir(dir);
    }
    let out = cmd.output().map_err(PackageError::io("running cargo metadata"))?;
    if !out.status.success() {
        return Err(PackageError::BuildFailed {
            command: format!("cargo metadata --manifest-path {}", manifest.display()),
            tail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| PackageError::Io { context: "reading cargo metadata".into(), source: std::io::Error::other(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_deepest_common_directory() {
        let p = CargoProject {
            package: "a".into(),
            binary: "a".into(),
            workspace_root: "/w/apps".into(),
            package_dir: "/w/apps/a".into(),
            sources: BTreeMap::new(),
            packages: ["/w/apps/a", "/w/libs/common"].into_iter().map(PathBuf::from).collect(),
            other_roots: BTreeSet::new(),
        };
        assert_eq!(p.root(), PathBuf::from("/w"));
    }
}
