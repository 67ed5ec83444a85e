//! A package's inputs in named parts. Each part's digest shows in the plan, so a rebuild says
//! what changed; the input hash covers every part.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::PackageSpec;
use crate::digests::Digests;
use crate::sources::SourceFiles;

/// The named parts of a build's inputs.
#[derive(Debug, Default)]
pub struct Inputs {
    parts: BTreeMap<String, String>,
    /// The content digests remembered for the package's files, when hashing for a spec.
    digests: Option<Digests>,
}

impl Inputs {
    /// Inputs for `spec`'s package, reusing the digests of files unchanged since the last plan.
    pub(crate) fn for_spec(spec: &PackageSpec) -> Self {
        let dir = spec.source_dir.canonicalize().unwrap_or_else(|_| spec.source_dir.clone());
        Self { parts: BTreeMap::new(), digests: Some(Digests::open(&spec.cache_dir, &dir)) }
    }

    /// Adds a set of files found at `location` (a path relative to the project's root, which
    /// is part of the digest: a moved package is another input).
    pub fn files(&mut self, name: impl Into<String>, location: &str, files: &SourceFiles) {
        let digest = match &mut self.digests {
            Some(d) => files.hash_with(&[location], d),
            None => files.hash(&[location]),
        };
        self.parts.insert(name.into(), digest);
    }

    /// Remembers the digests read for the next plan; returns how many files were read.
    pub(crate) fn remember(&mut self) -> usize {
        self.digests.as_mut().map_or(0, |d| {
            d.save();
            d.files_read()
        })
    }

    /// Adds a value that is not a file, such as a toolchain's version.
    pub fn value(&mut self, name: impl Into<String>, value: &str) {
        self.parts.insert(name.into(), hex(&Sha256::digest(value.as_bytes())));
    }

    /// Each part's digest, shortened to 16 hex digits: what the plan shows.
    pub fn parts(&self) -> BTreeMap<String, String> {
        self.parts.iter().map(|(k, v)| (k.clone(), v.chars().take(16).collect())).collect()
    }

    /// The input hash: SHA-256 (hex) over every part's name and digest.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"adf-packager/2\0");
        for (name, digest) in &self.parts {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(digest.as_bytes());
            h.update([0]);
        }
        hex(&h.finalize())
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_counts_and_shows_by_name() {
        let mut a = Inputs::default();
        a.value("toolchain", "rustc 1.95");
        a.value("Cargo.lock", "v1");
        let mut b = Inputs::default();
        b.value("toolchain", "rustc 1.95");
        b.value("Cargo.lock", "v1");
        assert_eq!(a.hash(), b.hash());
        b.value("Cargo.lock", "v2");
        assert_ne!(a.hash(), b.hash());
        let (pa, pb) = (a.parts(), b.parts());
        assert_eq!(pa["toolchain"], pb["toolchain"]);
        assert_ne!(pa["Cargo.lock"], pb["Cargo.lock"]);
        assert_eq!(pa["toolchain"].len(), 16);
    }
}
