//! The content-addressed cache: `<cache>/<input hash>/package.zip` plus `artifact.json`.

use std::path::{Path, PathBuf};

use crate::{Artifact, PackageError};

/// `ADF_PACKAGE_CACHE`, else `$XDG_CACHE_HOME/adf/packages`, else `~/.cache/adf/packages`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ADF_PACKAGE_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map_or_else(std::env::temp_dir, |h| PathBuf::from(h).join(".cache"))
    });
    base.join("adf/packages")
}

/// A directory in `cache` holding `files` (relative path to content), written once and named by
/// their hash, so the same files are the same directory on every plan and apply: the sources
/// of a package written inline in the configuration.
pub fn inline_sources(
    cache: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<PathBuf, PackageError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (name, content) in files {
        let bad = name.is_empty()
            || Path::new(name).is_absolute()
            || Path::new(name).components().any(|c| !matches!(c, std::path::Component::Normal(_)));
        if bad {
            return Err(PackageError::InlineFile(name.clone()));
        }
        for part in [name.as_bytes(), content.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let dir = cache.join("inline").join(hex);
    if dir.is_dir() {
        return Ok(dir);
    }
    // Written aside, then renamed into place: a reader never sees half the files.
    let parent = cache.join("inline");
    std::fs::create_dir_all(&parent).map_err(PackageError::io(format!("creating {}", parent.display())))?;
    let staging =
        parent.join(format!(".{}-{}", std::process::id(), dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    for (name, content) in files {
        let path = staging.join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(PackageError::io(format!("creating {}", p.display())))?;
        }
        std::fs::write(&path, content).map_err(PackageError::io(format!("writing {}", path.display())))?;
    }
    if std::fs::rename(&staging, &dir).is_err() {
        // Another process put the same files there first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(dir)
}

fn entry_dir(cache: &Path, hash: &str) -> PathBuf {
    cache.join(hash)
}

/// The artifact stored for `hash`, if its zip is still there and intact.
pub fn load(cache: &Path, hash: &str) -> Option<Artifact> {
    let dir = entry_dir(cache, hash);
    let meta = std::fs::read(dir.join("artifact.json")).ok()?;
    let artifact: Artifact = serde_json::from_slice(&meta).ok()?;
    let size = std::fs::metadata(&artifact.path).ok()?.len();
    (size == artifact.size && artifact.input_hash == hash).then_some(artifact)
}

/// A fresh scratch directory for building `hash`.
pub fn work_dir(cache: &Path, hash: &str) -> Result<PathBuf, PackageError> {
    let dir = cache.join("work").join(format!("{hash}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(PackageError::io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// Stores `zip` for `hash`, atomically (write then rename), and returns the artifact there.
pub fn store(cache: &Path, hash: &str, zip: &[u8], mut artifact: Artifact) -> Result<Artifact, PackageError> {
    let dir = entry_dir(cache, hash);
    std::fs::create_dir_all(&dir).map_err(PackageError::io(format!("creating {}", dir.display())))?;
    let path = dir.join("package.zip");
    let tmp = dir.join(format!("package.zip.{}", std::process::id()));
    std::fs::write(&tmp, zip).map_err(PackageError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(PackageError::io(format!("writing {}", path.display())))?;
    artifact.path = path;
    let meta = serde_json::to_vec_pretty(&artifact)
        .map_err(|e| PackageError::Io { context: "encoding artifact.json".into(), source: std::io::Error::other(e) })?;
    std::fs::write(dir.join("artifact.json"), meta).map_err(PackageError::io("writing artifact.json"))?;
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Architecture;

    #[test]
    fn inline_files_land_in_one_directory_per_content() {
        let cache = tempfile::tempdir().expect("tempdir");
        let files = |body: &str| {
            [("function.rb".to_string(), body.to_string()), ("lib/greeting.rb".into(), "X = 1\n".into())]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let a = inline_sources(cache.path(), &files("def handler; end\n")).expect("written");
        assert_eq!(std::fs::read_to_string(a.join("lib/greeting.rb")).expect("read"), "X = 1\n");
        assert_eq!(inline_sources(cache.path(), &files("def handler; end\n")).expect("again"), a, "the same files");
        assert_ne!(inline_sources(cache.path(), &files("def handler(event:, context:); end\n")).expect("b"), a);
        for bad in ["../escape.rb", "/etc/passwd", ""] {
            let one = [(bad.to_string(), String::new())].into_iter().collect();
            assert!(matches!(inline_sources(cache.path(), &one), Err(PackageError::InlineFile(_))), "{bad}");
        }
    }

    #[test]
    fn a_stored_artifact_loads_until_its_zip_changes() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Artifact {
            path: PathBuf::new(),
            input_hash: "h1".into(),
            architecture: Architecture::X86_64,
            source_code_hash: "x".into(),
            size: 3,
            runtime: "provided.al2023".into(),
            handler: "bootstrap".into(),
            inputs: Default::default(),
        };
        let saved = store(dir.path(), "h1", b"zip", a).expect("store");
        assert_eq!(load(dir.path(), "h1"), Some(saved.clone()));
        assert_eq!(load(dir.path(), "h2"), None);
        std::fs::write(&saved.path, b"truncated!").expect("write");
        assert_eq!(load(dir.path(), "h1"), None, "a damaged zip is a miss");
    }
}
