//! The files that make up a package's input: everything under the source directory except
//! what `.gitignore` files, the built-in excludes (`target/`, `.git/`) and the user's excludes
//! leave out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use sha2::{Digest, Sha256};

use crate::PackageError;
use crate::digests::{Digests, Stamp, file_digest};

/// Always left out: build outputs and version control.
const BUILTIN_EXCLUDES: [&str; 3] = ["target/", ".git/", ".terraform/"];

/// One included file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the source directory, `/`-separated.
    pub rel: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Executable bit set.
    pub executable: bool,
    /// Size, inode and times as the walk saw them, if it did.
    pub(crate) stamp: Option<Stamp>,
}

impl SourceFile {
    /// A file named `rel` at `path`, not executable, to be stat'ed when hashed.
    pub(crate) fn new(rel: String, path: PathBuf) -> Self {
        Self { rel, path, executable: false, stamp: None }
    }
}

/// The included files, sorted by relative path.
#[derive(Clone, Debug, Default)]
pub struct SourceFiles {
    /// The files.
    pub files: Vec<SourceFile>,
}

impl SourceFiles {
    /// Walks `dir`, honouring `.gitignore` files and `excludes` (`.gitignore` syntax).
    pub fn collect(dir: &Path, excludes: &[String]) -> Result<Self, PackageError> {
        Self::collect_project(dir, excludes, None)
    }

    /// [`SourceFiles::collect`], leaving out subdirectories that hold a `marker` file (a
    /// `Cargo.toml` or `go.mod`): those are other packages, with inputs of their own.
    pub fn collect_project(
        dir: &Path,
        excludes: &[String],
        marker: Option<&'static str>,
    ) -> Result<Self, PackageError> {
        let mut overrides = OverrideBuilder::new(dir);
        for pattern in BUILTIN_EXCLUDES.iter().map(|p| (*p).to_string()).chain(excludes.iter().cloned()) {
            overrides.add(&format!("!{pattern}")).map_err(|e| PackageError::Io {
                context: format!("exclude pattern {pattern:?}"),
                source: std::io::Error::other(e),
            })?;
        }
        let overrides = overrides
            .build()
            .map_err(|e| PackageError::Io { context: "exclude patterns".into(), source: std::io::Error::other(e) })?;
        let walker = WalkBuilder::new(dir)
            .hidden(false)
            .git_ignore(true)
            .git_global(false)
            .git_exclude(false)
            .require_git(false)
            .parents(false)
            .overrides(overrides)
            .filter_entry(move |e| {
                !(e.depth() > 0
                    && e.file_type().is_some_and(|t| t.is_dir())
                    && marker.is_some_and(|m| e.path().join(m).is_file()))
            })
            .build();
        let mut files = Vec::new();
        for entry in walker {
            let entry = entry.map_err(|e| PackageError::Io {
                context: format!("walking {}", dir.display()),
                source: std::io::Error::other(e),
            })?;
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let path = entry.into_path();
                // Unix paths are already `/`-separated.
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                files.push(SourceFile { rel, path, executable: false, stamp: None });
            }
        }
        stat_all(&mut files);
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Self { files })
    }

    /// SHA-256 (hex) over `parts`, then each file's path, executable bit and content.
    pub fn hash(&self, parts: &[&str]) -> String {
        self.hash_by(parts, |f| file_digest(&f.path))
    }

    /// [`SourceFiles::hash`], taking content digests from `digests` where the files did not
    /// change since they were last read.
    pub(crate) fn hash_with(&self, parts: &[&str], digests: &mut Digests) -> String {
        self.hash_by(parts, |f| digests.digest(&f.path, f.stamp))
    }

    fn hash_by(&self, parts: &[&str], mut digest: impl FnMut(&SourceFile) -> Option<[u8; 32]>) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        for f in &self.files {
            h.update(f.rel.as_bytes());
            h.update(if f.executable { b"\0x\0" } else { b"\0-\0" });
            // A file that vanished mid-walk hashes as empty; the build will notice.
            if let Some(d) = digest(f) {
                h.update(d);
            }
        }
        crate::inputs::hex(&h.finalize())
    }
}

/// Reads each file's mode and stamp, on as many threads as there are cores: on a large tree
/// most of a plan's time goes into one stat per file.
fn stat_all(files: &mut [SourceFile]) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1024);
    std::thread::scope(|scope| {
        for part in files.chunks_mut(chunk) {
            scope.spawn(move || {
                for f in part {
                    if let Ok(meta) = std::fs::symlink_metadata(&f.path) {
                        f.executable = meta.permissions().mode() & 0o111 != 0;
                        f.stamp = Some(Stamp::of(&meta));
                    }
                }
            });
        }
    });
}

/// `to` from `from`, `/`-separated, climbing with `..` where needed (`.` for the same place).
pub(crate) fn relative(from: &Path, to: &Path) -> String {
    let (f, t): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let parts: Vec<String> = std::iter::repeat_n("..".to_string(), f.len() - common)
        .chain(t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()))
        .collect();
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_and_descend() {
        assert_eq!(relative(Path::new("/w/api"), Path::new("/w/api")), ".");
        assert_eq!(relative(Path::new("/w/api"), Path::new("/w/greet")), "../greet");
        assert_eq!(relative(Path::new("/w/api"), Path::new("/w/go.work")), "../go.work");
        assert_eq!(relative(Path::new("/w"), Path::new("/w/lib/x")), "lib/x");
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tmp");
        let w = |p: &str, c: &str| {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, c).expect("write");
        };
        w("src/main.rs", "fn main() {}");
        w("Cargo.toml", "[package]");
        w("target/release/junk", "x");
        w("notes/draft.md", "wip");
        w(".gitignore", "*.log\n");
        w("debug.log", "noise");
        w("nested/Cargo.toml", "[package]");
        w("nested/src/lib.rs", "");
        dir
    }

    #[test]
    fn builtin_gitignore_and_user_excludes_are_left_out() {
        let dir = tree();
        let files = SourceFiles::collect(dir.path(), &["notes/".to_string()]).expect("collect");
        let rels: Vec<&str> = files.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, [".gitignore", "Cargo.toml", "nested/Cargo.toml", "nested/src/lib.rs", "src/main.rs"]);
        let own = SourceFiles::collect_project(dir.path(), &["notes/".to_string()], Some("Cargo.toml")).expect("own");
        let rels: Vec<&str> = own.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, [".gitignore", "Cargo.toml", "src/main.rs"], "a nested package is its own input");
    }

    #[test]
    fn the_hash_follows_content_not_timestamps() {
        let dir = tree();
        let h1 = SourceFiles::collect(dir.path(), &[]).expect("collect").hash(&["x"]);
        // Touch: rewrite the same bytes.
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").expect("touch");
        let h2 = SourceFiles::collect(dir.path(), &[]).expect("collect").hash(&["x"]);
        assert_eq!(h1, h2);
        std::fs::write(dir.path().join("src/main.rs"), "fn main() { }").expect("edit");
        let h3 = SourceFiles::collect(dir.path(), &[]).expect("collect").hash(&["x"]);
        assert_ne!(h1, h3);
        assert_ne!(h3, SourceFiles::collect(dir.path(), &[]).expect("collect").hash(&["y"]), "flags count");
        std::fs::write(dir.path().join("target/release/junk"), "changed").expect("build output");
        assert_eq!(h3, SourceFiles::collect(dir.path(), &[]).expect("collect").hash(&["x"]));
    }
}
