//! Ruby: the sources with the handler, plus gems vendored by bundler when a `Gemfile.lock`
//! is present, for the `ruby3.3` runtime.

use std::path::Path;
use std::process::Command;

use crate::inputs::Inputs;
use crate::sources::SourceFiles;
use crate::toolchain::Toolchain;
use crate::{Entry, PackageError, PackageSpec, entry_from, run};

/// The default handler: `function.rb`, method `handler`.
pub const DEFAULT_HANDLER: &str = "function.handler";

/// The inputs: the sources (with `Gemfile.lock`, which pins the gems) and the toolchain. The
/// handler's file must be among the sources, so a wrong handler is a plan-time error.
pub fn inputs(spec: &PackageSpec, toolchain: &Toolchain) -> Result<Inputs, PackageError> {
    let handler = handler(spec)?;
    let mut inputs = Inputs::for_spec(spec);
    inputs.files("sources", ".", &SourceFiles::collect(&spec.source_dir, &spec.excludes)?);
    inputs.value("toolchain", &format!("ruby {} {} {handler}", toolchain.fingerprint(), spec.architecture));
    Ok(inputs)
}

/// The handler, once its file is known to exist.
pub(crate) fn handler(spec: &PackageSpec) -> Result<String, PackageError> {
    let handler = spec.handler.clone().unwrap_or_else(|| DEFAULT_HANDLER.to_string());
    let file = handler.rsplit_once('.').map(|(f, _)| format!("{f}.rb")).unwrap_or_default();
    if !spec.source_dir.join(&file).is_file() {
        return Err(PackageError::Binary(format!(
            "handler {handler:?} needs {file} in {}; set handler to \"file.method\"",
            spec.source_dir.display()
        )));
    }
    Ok(handler)
}

/// Collects the entries and the handler.
pub fn build(spec: &PackageSpec, work: &Path) -> Result<(Vec<Entry>, String), PackageError> {
    let handler = handler(spec)?;
    let sources = SourceFiles::collect(&spec.source_dir, &spec.excludes)?;
    let mut entries = Vec::new();
    for f in &sources.files {
        if f.rel.starts_with("vendor/bundle/") {
            continue; // replaced by a fresh vendoring below
        }
        entries.push(entry_from(&f.path, &f.rel, if f.rel == "bootstrap" { 0o755 } else { 0o644 })?);
    }
    if spec.source_dir.join("Gemfile.lock").is_file() {
        entries.extend(vendor_gems(spec, work)?);
    }
    Ok((entries, handler))
}

/// Runs `bundle install` into `vendor/bundle` of a copy of the Gemfile, without dev and test
/// groups, and returns the installed files.
fn vendor_gems(spec: &PackageSpec, work: &Path) -> Result<Vec<Entry>, PackageError> {
    for f in ["Gemfile", "Gemfile.lock"] {
        std::fs::copy(spec.source_dir.join(f), work.join(f)).map_err(PackageError::io(format!("copying {f}")))?;
    }
    let bundle = |args: &[&str]| {
        let mut c = Command::new("bundle");
        c.args(args).current_dir(work).env("BUNDLE_WITHOUT", "development:test").env("BUNDLE_DEPLOYMENT", "true");
        c
    };
    run(&mut bundle(&["config", "set", "--local", "path", "vendor/bundle"]))?;
    run(&mut bundle(&["install"]))?;
    let vendored = work.join("vendor/bundle");
    if !vendored.is_dir() {
        return Ok(Vec::new());
    }
    let files = SourceFiles::collect(&vendored, &[])?;
    files.files.iter().map(|f| entry_from(&f.path, &format!("vendor/bundle/{}", f.rel), 0o644)).collect()
}
