//! Builds the tiny Rust, Go and Ruby fixtures for real: toolchains, reproducibility, cache,
//! ELF checks. Needs cargo-zigbuild + ziglang, Go and Ruby (`.ci/run` installs them).

use std::io::Read;
use std::path::{Path, PathBuf};

use adf_packager::{Architecture, Language, PackageSpec, build, cached, elf_architecture, input_hash};

/// A fixture; the Rust hello world is the quickstart's function.
fn fixture(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match name {
        "hello-rust" => root.join("examples/terraform/quickstart/hello"),
        other => root.join("tests/acceptance/fixtures").join(other),
    }
}

fn spec(name: &str, language: Language, arch: Architecture, cache: &Path) -> PackageSpec {
    PackageSpec { architecture: arch, ..PackageSpec::new(fixture(name), language, cache) }
}

fn zip_entry(zip: &Path, name: &str) -> (Vec<u8>, u32) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).expect("open")).expect("zip");
    let mut f = archive.by_name(name).expect("entry");
    let mut data = Vec::new();
    f.read_to_end(&mut data).expect("read");
    (data, f.unix_mode().unwrap_or(0) & 0o777)
}

#[test]
fn go_builds_for_both_architectures_reproducibly() {
    for arch in [Architecture::X86_64, Architecture::Arm64] {
        let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
        let first = build(&spec("hello-go", Language::Go, arch, a.path())).expect("build");
        let second = build(&spec("hello-go", Language::Go, arch, b.path())).expect("build");
        assert_eq!(first.source_code_hash, second.source_code_hash, "two clean {arch} builds differ");
        let (bootstrap, mode) = zip_entry(&first.path, "bootstrap");
        assert_eq!(mode, 0o755);
        assert_eq!(elf_architecture(&bootstrap), Some(arch));
        assert_eq!(first.runtime, "provided.al2023");
    }
}

#[test]
fn rust_builds_a_glibc_pinned_bootstrap_reproducibly_and_caches_it() {
    let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let s = spec("hello-rust", Language::Rust, Architecture::X86_64, a.path());
    let hash = input_hash(&s).expect("hash");
    assert_eq!(cached(&s, &hash), None);
    let first = build(&s).expect("build");
    assert_eq!(cached(&s, &hash).as_ref(), Some(&first), "the build is cached by input hash");
    let second = build(&spec("hello-rust", Language::Rust, Architecture::X86_64, b.path())).expect("build");
    assert_eq!(first.source_code_hash, second.source_code_hash, "two clean Rust builds differ");
    let (bootstrap, mode) = zip_entry(&first.path, "bootstrap");
    assert_eq!(mode, 0o755);
    assert_eq!(elf_architecture(&bootstrap), Some(Architecture::X86_64));
    let text = String::from_utf8_lossy(&bootstrap);
    assert!(!text.contains("GLIBC_2.35") && !text.contains("GLIBC_2.36"), "linked against a glibc newer than 2.34");
}

#[test]
fn ruby_zips_the_sources_with_the_handler() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = build(&spec("hello-ruby", Language::Ruby, Architecture::Arm64, dir.path())).expect("build");
    assert_eq!((a.runtime.as_str(), a.handler.as_str()), ("ruby3.3", "function.handler"));
    let (lib, mode) = zip_entry(&a.path, "lib/greeting.rb");
    assert_eq!(mode, 0o644);
    assert!(String::from_utf8_lossy(&lib).contains("module Greeting"));
    let mut bad = spec("hello-ruby", Language::Ruby, Architecture::Arm64, dir.path());
    bad.handler = Some("main.run".into());
    assert!(build(&bad).expect_err("no main.rb").to_string().contains("main.rb"));
}
