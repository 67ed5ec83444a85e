//! Ruby: the sources with the handler, plus the gems that `Gemfile.lock` pins, vendored into
//! `vendor/bundle/ruby/3.3.0` (on the `ruby3.3` runtime's `GEM_PATH`) from where Bundler
//! finds them on this machine: installed gems, Debian's packaged gems and `path:` gems. No gem
//! is downloaded and nothing is written into the user's tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::inputs::Inputs;
use crate::sources::{SourceFiles, relative};
use crate::toolchain::Toolchain;
use crate::{Entry, PackageError, PackageSpec, entry_from};

/// The default handler: `function.rb`, method `handler`.
pub const DEFAULT_HANDLER: &str = "function.handler";

/// Where gems go in the zip: the `ruby3.3` runtime puts this directory on `GEM_PATH`.
const GEM_DIR: &str = "vendor/bundle/ruby/3.3.0";

/// Lists the pinned gems as Bundler finds them (see the script).
const LIST_GEMS: &str = include_str!("list_gems.rb");

/// Where Debian installs the Ruby files of its packaged gems that have no gem directory.
const DEBIAN_VENDOR_RUBY: &str = "/usr/lib/ruby/vendor_ruby/";

/// The inputs: the sources (with `Gemfile.lock`, which pins the gems), each `path:` gem's
/// directory, and the toolchain. The handler must be defined in the sources, so a wrong
/// handler is a plan-time error.
pub fn inputs(spec: &PackageSpec, toolchain: &Toolchain) -> Result<Inputs, PackageError> {
    let handler = handler(spec)?;
    let mut inputs = Inputs::for_spec(spec);
    inputs.files("sources", ".", &SourceFiles::collect(&spec.source_dir, &spec.excludes)?);
    for dir in path_gems(&spec.source_dir) {
        let rel = relative(&spec.source_dir, &dir);
        inputs.files(format!("gem {rel}"), &rel, &SourceFiles::collect(&dir, &[])?);
    }
    inputs.value("toolchain", &format!("ruby {} {} {handler}", toolchain.fingerprint(), spec.architecture));
    Ok(inputs)
}

/// The handler, once its file is known to define its method. Lambda's form is `file.method`
/// or `file.Module::Class.method`.
pub(crate) fn handler(spec: &PackageSpec) -> Result<String, PackageError> {
    let handler = spec.handler.clone().unwrap_or_else(|| DEFAULT_HANDLER.to_string());
    let wrong = |why: String| PackageError::Binary(format!("handler {handler:?}: {why}; the form is \"file.method\""));
    let (Some((file, _)), Some((_, method))) = (handler.split_once('.'), handler.rsplit_once('.')) else {
        return Err(wrong("no method".into()));
    };
    let path = spec.source_dir.join(format!("{file}.rb"));
    let source = std::fs::read_to_string(&path)
        .map_err(|_| wrong(format!("needs {file}.rb in {}", spec.source_dir.display())))?;
    if !defines(&source, method) {
        return Err(wrong(format!("{file}.rb defines no method {method}")));
    }
    Ok(handler)
}

/// Whether `source` has a `def method` (or `def self.method`) line.
fn defines(source: &str, method: &str) -> bool {
    source.lines().any(|l| {
        let l = l.trim_start();
        l.strip_prefix("def ").map(|d| d.trim_start()).is_some_and(|d| {
            let d = d.strip_prefix("self.").unwrap_or(d);
            d.strip_prefix(method).is_some_and(|rest| rest.is_empty() || rest.starts_with(['(', ' ', ';']))
        })
    })
}

/// The directories of the `path:` gems that `Gemfile.lock` pins (its `PATH` sections).
fn path_gems(dir: &Path) -> Vec<PathBuf> {
    let Ok(lock) = std::fs::read_to_string(dir.join("Gemfile.lock")) else { return Vec::new() };
    let mut section = "";
    let mut dirs = Vec::new();
    for line in lock.lines() {
        if !line.starts_with(' ') {
            section = line.trim();
        } else if section == "PATH"
            && let Some(remote) = line.trim().strip_prefix("remote: ")
        {
            dirs.push(dir.join(remote));
        }
    }
    dirs
}

/// Collects the entries and the handler.
pub fn build(spec: &PackageSpec) -> Result<(Vec<Entry>, String), PackageError> {
    let handler = handler(spec)?;
    let sources = SourceFiles::collect(&spec.source_dir, &spec.excludes)?;
    let mut entries = Vec::new();
    for f in &sources.files {
        if f.rel.starts_with("vendor/bundle/") || f.rel.starts_with(".bundle/") {
            continue; // a local install; the gems are vendored afresh below
        }
        entries.push(entry_from(&f.path, &f.rel, if f.executable { 0o755 } else { 0o644 })?);
    }
    if spec.source_dir.join("Gemfile.lock").is_file() {
        entries.extend(vendor_gems(spec)?);
    }
    Ok((entries, handler))
}

/// One gem, as `list_gems.rb` prints it.
#[derive(Deserialize)]
struct Gem {
    full_name: String,
    dir: PathBuf,
    loaded_from: PathBuf,
    default_gem: bool,
    extensions: bool,
    gemspec: String,
}

/// The pinned gems' files and specifications, laid out as an installed gem path.
fn vendor_gems(spec: &PackageSpec) -> Result<Vec<Entry>, PackageError> {
    let gemfile = spec.source_dir.join("Gemfile");
    let failed = |why: String| PackageError::Gems { gemfile: gemfile.clone(), why };
    let out = Command::new("ruby")
        .args(["-e", LIST_GEMS])
        .current_dir(&spec.source_dir)
        .env("BUNDLE_GEMFILE", &gemfile)
        .env("BUNDLE_FROZEN", "true")
        .env("BUNDLE_WITHOUT", "development:test")
        .output()
        .map_err(PackageError::io("starting ruby"))?;
    if !out.status.success() {
        return Err(failed(format!(
            "{}; install them on this machine first (`bundle install`): the build downloads no gem",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut entries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let gem: Gem = serde_json::from_str(line).map_err(|e| failed(format!("reading Bundler's answer: {e}")))?;
        if gem.default_gem {
            continue; // ships with Ruby itself
        }
        if gem.extensions {
            return Err(failed(format!(
                "{} has native extensions, built for this machine's Ruby: vendor it from a build on Amazon \
                 Linux 2023 with Ruby 3.3 (a layer or an image function)",
                gem.full_name
            )));
        }
        let base = format!("{GEM_DIR}/gems/{}", gem.full_name);
        for (path, rel) in gem_files(&gem).map_err(&failed)? {
            entries.push(entry_from(&path, &format!("{base}/{rel}"), 0o644)?);
        }
        let name = format!("{GEM_DIR}/specifications/{}.gemspec", gem.full_name);
        entries.push(Entry { name, data: gem.gemspec.into_bytes(), mode: 0o644 });
    }
    Ok(entries)
}

/// A gem's files with their paths inside its gem directory: the directory itself, or, for a
/// Debian package that installs into `vendor_ruby`, the package's files there (under `lib/`).
fn gem_files(gem: &Gem) -> Result<Vec<(PathBuf, String)>, String> {
    if gem.dir.is_dir() {
        let files = SourceFiles::collect(&gem.dir, &[]).map_err(|e| e.to_string())?;
        return Ok(files.files.into_iter().map(|f| (f.path, f.rel)).collect());
    }
    let missing = || format!("{} has no files at {}", gem.full_name, gem.dir.display());
    let owner = dpkg(&["-S", &gem.loaded_from.to_string_lossy()]).ok_or_else(missing)?;
    let package = owner.split(':').next().unwrap_or_default().trim().to_string();
    let listed = dpkg(&["-L", &package]).ok_or_else(missing)?;
    let files: Vec<(PathBuf, String)> = listed
        .lines()
        .filter_map(|l| Some((PathBuf::from(l), format!("lib/{}", l.strip_prefix(DEBIAN_VENDOR_RUBY)?))))
        .filter(|(p, _)| p.is_file())
        .collect();
    if files.is_empty() { Err(missing()) } else { Ok(files) }
}

/// `dpkg`'s answer, when it has one.
fn dpkg(args: &[&str]) -> Option<String> {
    let out = Command::new("dpkg").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_method_is_found_only_where_it_is_defined() {
        let src = "require \"x\"\n\ndef handler(event:, context:)\nend\nclass H\n  def self.process(event:, context:) = 1\nend\n";
        assert!(defines(src, "handler"));
        assert!(defines(src, "process"));
        assert!(!defines(src, "hand"));
        assert!(!defines(src, "missing"));
    }

    #[test]
    fn path_gems_come_from_the_lock() {
        let dir = tempfile::tempdir().expect("tmp");
        let lock = "PATH\n  remote: ../greeter\n  specs:\n    greeter (0.1.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n    webrick (1.8.1)\n";
        std::fs::write(dir.path().join("Gemfile.lock"), lock).expect("write");
        assert_eq!(path_gems(dir.path()), [dir.path().join("../greeter")]);
    }
}
