//! The staging copy a Rust build runs in, so that cargo never writes into the user's tree (a
//! missing `Cargo.lock` is resolved here) and every build sees one path: the stage lives at
//! `<cache>/stage/<package>` and is remapped to `/build/<package>`, so the binary and the
//! compiler flags are the same whatever the checkout's path. Files are synced (unchanged ones
//! keep their times), so cargo recompiles only what changed.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::PackageError;

/// A locked staging directory; the lock is released on drop.
#[derive(Debug)]
pub struct Stage {
    /// Where the files are.
    pub dir: PathBuf,
    _lock: File,
}

impl Stage {
    /// Locks `<cache>/stage/<name>`, waiting while another build holds it.
    pub fn lock(cache: &Path, name: &str) -> Result<Self, PackageError> {
        let base = stage_root(cache);
        std::fs::create_dir_all(&base).map_err(PackageError::io(format!("creating {}", base.display())))?;
        let base = base.canonicalize().map_err(PackageError::io(format!("reading {}", base.display())))?;
        let path = base.join(format!("{name}.lock"));
        let lock = File::create(&path).map_err(PackageError::io(format!("creating {}", path.display())))?;
        lock.lock().map_err(PackageError::io(format!("locking {}", path.display())))?;
        Ok(Self { dir: base.join(name), _lock: lock })
    }

    /// Makes the stage hold exactly `files` (source path, path in the stage): copies what
    /// differs in size or modification time, keeps times, removes the rest.
    pub fn sync(&self, files: &[(PathBuf, String)]) -> Result<(), PackageError> {
        let wanted: BTreeSet<&str> = files.iter().map(|(_, rel)| rel.as_str()).collect();
        for existing in walk(&self.dir) {
            let rel = existing.strip_prefix(&self.dir).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
            if !wanted.contains(rel.as_str()) {
                std::fs::remove_file(&existing)
                    .map_err(PackageError::io(format!("removing {}", existing.display())))?;
            }
        }
        for (from, rel) in files {
            let to = self.dir.join(rel);
            let meta = std::fs::metadata(from).map_err(PackageError::io(format!("reading {}", from.display())))?;
            let same = std::fs::metadata(&to)
                .is_ok_and(|t| t.len() == meta.len() && t.modified().ok() == meta.modified().ok());
            if same {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(PackageError::io(format!("creating {}", parent.display())))?;
            }
            std::fs::copy(from, &to).map_err(PackageError::io(format!("copying {}", from.display())))?;
            if let Ok(modified) = meta.modified() {
                let f = File::options()
                    .write(true)
                    .open(&to)
                    .map_err(PackageError::io(format!("opening {}", to.display())))?;
                f.set_modified(modified).map_err(PackageError::io(format!("dating {}", to.display())))?;
            }
        }
        Ok(())
    }
}

/// `<cache>/stage`: the one prefix remapped in every Rust build.
pub fn stage_root(cache: &Path) -> PathBuf {
    cache.join("stage")
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(entry.path()),
                Ok(_) => out.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_copies_changes_keeps_times_and_removes_leftovers() {
        let src = tempfile::tempdir().expect("tmp");
        let cache = tempfile::tempdir().expect("tmp");
        let a = src.path().join("a.rs");
        std::fs::write(&a, "one").expect("write");
        let stage = Stage::lock(cache.path(), "pkg").expect("lock");
        stage.sync(&[(a.clone(), "src/a.rs".into()), (a.clone(), "b.rs".into())]).expect("sync");
        let staged = stage.dir.join("src/a.rs");
        assert_eq!(std::fs::read_to_string(&staged).expect("read"), "one");
        let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).expect("time");
        assert_eq!(time(&staged), time(&a), "times are kept, so cargo sees no change");
        std::fs::write(&a, "two!").expect("write");
        stage.sync(&[(a, "src/a.rs".into())]).expect("sync");
        assert_eq!(std::fs::read_to_string(&staged).expect("read"), "two!");
        assert!(!stage.dir.join("b.rs").exists(), "a file no longer wanted is removed");
    }
}
