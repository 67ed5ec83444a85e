//! Real project layouts, built for real: a Cargo workspace whose members share a path crate,
//! a crate without a lock file, two checkouts of one project, a Go Lambda on aws-lambda-go
//! and a Go workspace with a `replace`. Each checks what is an input (and what is not), that
//! the user's tree is never written to, and that builds are reproducible.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use adf_packager::{Architecture, Language, PackageError, PackageSpec, build, elf_architecture, input_hash, inputs};

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

fn spec(dir: &Path, language: Language, cache: &Path) -> PackageSpec {
    PackageSpec::new(dir, language, cache)
}

/// Every file under `dir` with its bytes and modification time: a before/after picture.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                dirs.push(e.path());
            } else {
                out.insert(e.path(), (std::fs::read(e.path()).expect("read"), meta.modified().expect("mtime")));
            }
        }
    }
    out
}

/// Runs the `bootstrap` of a built zip (x86_64, on this machine) and returns what it prints.
fn run_bootstrap(zip: &Path) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).expect("open")).expect("zip");
    let mut data = Vec::new();
    archive.by_name("bootstrap").expect("bootstrap").read_to_end(&mut data).expect("read");
    assert_eq!(elf_architecture(&data), Some(Architecture::X86_64));
    let dir = tempfile::tempdir().expect("tmp");
    let exe = dir.path().join("bootstrap");
    std::fs::write(&exe, data).expect("write");
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let out = Command::new(&exe).output().expect("run bootstrap");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A workspace: `apps/a` and `apps/b` share `libs/shared`; `tools/other` is unrelated.
fn workspace(root: &Path) {
    let bin = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nshared = {{ path = \"../../libs/shared\" }}\n"
        )
    };
    write(
        root,
        &[
            (
                "Cargo.toml",
                "[workspace]\nresolver = \"2\"\nmembers = [\"apps/a\", \"apps/b\", \"libs/shared\", \"tools/other\"]\n",
            ),
            ("apps/a/Cargo.toml", &bin("a")),
            ("apps/a/src/main.rs", "fn main() { println!(\"a {}\", shared::word()); }\n"),
            ("apps/b/Cargo.toml", &bin("b")),
            ("apps/b/src/main.rs", "fn main() { println!(\"b {}\", shared::word()); }\n"),
            ("libs/shared/Cargo.toml", "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            ("libs/shared/src/lib.rs", "pub fn word() -> &'static str { \"one\" }\n"),
            ("tools/other/Cargo.toml", "[package]\nname = \"other\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            ("tools/other/src/main.rs", "fn main() {}\n"),
        ],
    );
    let status = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(root)
        .status()
        .expect("cargo generate-lockfile");
    assert!(status.success());
}

#[test]
fn workspace_members_share_a_path_crate_and_rebuild_on_their_own_inputs_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (root, cache) = (tmp.path().join("ws"), tmp.path().join("cache"));
    workspace(&root);
    let (a, b) =
        (spec(&root.join("apps/a"), Language::Rust, &cache), spec(&root.join("apps/b"), Language::Rust, &cache));

    let parts: Vec<String> = inputs(&a).expect("inputs").parts().into_keys().collect();
    assert_eq!(parts, ["Cargo.lock", "crate a", "crate shared", "toolchain", "workspace"]);

    let before = listing(&root);
    let (built_a, built_b) = (build(&a).expect("build a"), build(&b).expect("build b"));
    assert_eq!(listing(&root), before, "the build wrote into the workspace");
    assert_eq!((run_bootstrap(&built_a.path), run_bootstrap(&built_b.path)), ("a one".into(), "b one".into()));

    // A change in the shared crate changes both; a change in b or in an unrelated member
    // changes only b, or nothing.
    let hashes = || (input_hash(&a).expect("hash a"), input_hash(&b).expect("hash b"));
    let first = hashes();
    assert_eq!(first, (built_a.input_hash.clone(), built_b.input_hash.clone()), "a build settles its hash");
    write(&root, &[("tools/other/src/main.rs", "fn main() { println!(); }\n")]);
    assert_eq!(hashes(), first, "an unrelated member is no input");
    write(&root, &[("apps/b/src/main.rs", "fn main() { println!(\"B {}\", shared::word()); }\n")]);
    let second = hashes();
    assert_eq!(second.0, first.0);
    assert_ne!(second.1, first.1);
    write(&root, &[("libs/shared/src/lib.rs", "pub fn word() -> &'static str { \"two\" }\n")]);
    let third = hashes();
    assert!(third.0 != second.0 && third.1 != second.1, "the shared crate is an input of both");
    assert_eq!(run_bootstrap(&build(&a).expect("rebuild a").path), "a two");
    assert_eq!(run_bootstrap(&build(&b).expect("rebuild b").path), "B two");
}

#[test]
fn a_workspace_root_builds_the_member_it_is_told_to() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (root, cache) = (tmp.path().join("ws"), tmp.path().join("cache"));
    workspace(&root);
    let mut s = spec(&root, Language::Rust, &cache);
    let err = input_hash(&s).expect_err("three members have binaries");
    assert!(matches!(err, PackageError::Package(_)) && err.to_string().contains("set package"), "{err}");
    s.package = Some("b".into());
    assert_eq!(run_bootstrap(&build(&s).expect("build b").path), "b one");
    s.package = Some("nope".into());
    assert!(matches!(input_hash(&s), Err(PackageError::Package(_))));
    s.package = None;
    s.binary = Some("a".into());
    assert_eq!(run_bootstrap(&build(&s).expect("build a").path), "a one", "the binary chooses the member");
}

#[test]
fn a_named_profile_builds_with_its_own_settings_and_hash() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (root, cache) = (tmp.path().join("ws"), tmp.path().join("cache"));
    workspace(&root);
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("manifest");
    let small = "\n[profile.small]\ninherits = \"release\"\nopt-level = \"z\"\n";
    write(&root, &[("Cargo.toml", &format!("{manifest}{small}"))]);
    let release = spec(&root.join("apps/a"), Language::Rust, &cache);
    let sized = PackageSpec { profile: Some("small".into()), ..release.clone() };
    assert_ne!(input_hash(&sized).expect("hash"), input_hash(&release).expect("hash"), "the profile is an input");
    let built = build(&sized).expect("build with the small profile");
    assert_eq!(run_bootstrap(&built.path), "a one");
    let missing = PackageSpec { profile: Some("nope".into()), ..release };
    let err = build(&missing).expect_err("no such profile");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn a_crate_without_a_lock_is_resolved_into_the_cache_and_its_tree_is_left_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, cache) = (tmp.path().join("lockless"), tmp.path().join("cache"));
    write(
        &dir,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"lockless\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
            ),
            ("src/main.rs", "fn main() { println!(\"{}\", itoa::Buffer::new().format(42)); }\n"),
        ],
    );
    let s = spec(&dir, Language::Rust, &cache);
    let before = listing(&dir);
    let hash = input_hash(&s).expect("hash");
    let built = build(&s).expect("build");
    assert_eq!(run_bootstrap(&built.path), "42");
    assert_eq!(listing(&dir), before, "no Cargo.lock (or anything else) was written into the crate");
    assert_eq!(input_hash(&s).expect("hash"), hash, "the second plan is empty");
    let locks = std::fs::read_dir(cache.join("locks")).expect("locks").count();
    assert_eq!(locks, 1, "the resolved lock is kept in the package cache");
    // The kept lock is reused: a change of the sources rebuilds without resolving again.
    write(&dir, &[("src/main.rs", "fn main() { println!(\"{}\", itoa::Buffer::new().format(43)); }\n")]);
    assert_eq!(run_bootstrap(&build(&s).expect("rebuild").path), "43");
    assert_eq!(std::fs::read_dir(cache.join("locks")).expect("locks").count(), 1);
    // A manifest change is a new resolution.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("read");
    write(&dir, &[("Cargo.toml", &format!("{manifest}\n[profile.release]\nopt-level = 2\n"))]);
    assert_ne!(input_hash(&s).expect("hash"), hash);
}

#[test]
fn two_checkouts_at_different_paths_give_one_zip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (one, two) = (tmp.path().join("one/ws"), tmp.path().join("elsewhere/deeper/ws"));
    workspace(&one);
    workspace(&two);
    let a = build(&spec(&one.join("apps/a"), Language::Rust, &tmp.path().join("cache1"))).expect("build one");
    let b = build(&spec(&two.join("apps/a"), Language::Rust, &tmp.path().join("cache2"))).expect("build two");
    assert_eq!(a.input_hash, b.input_hash, "the input hash does not depend on the checkout's path");
    assert_eq!(a.source_code_hash, b.source_code_hash, "two clean builds from two checkouts differ");
}

fn go_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/acceptance/fixtures").join(name);
    let to = tmp.path().join(name);
    let status = Command::new("cp").arg("-r").arg(&from).arg(&to).status().expect("cp");
    assert!(status.success());
    (tmp, to)
}

#[test]
fn a_go_lambda_on_aws_lambda_go_builds_for_both_architectures_reproducibly() {
    let (tmp, dir) = go_fixture("hello-go-sdk");
    let before = listing(&dir);
    for arch in [Architecture::X86_64, Architecture::Arm64] {
        let mut s = spec(&dir, Language::Go, &tmp.path().join("cache1"));
        s.architecture = arch;
        let first = build(&s).expect("build");
        s.cache_dir = tmp.path().join("cache2");
        let second = build(&s).expect("build again");
        assert_eq!(first.source_code_hash, second.source_code_hash, "two clean {arch} builds differ");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&first.path).expect("open")).expect("zip");
        let mut data = Vec::new();
        archive.by_name("bootstrap").expect("bootstrap").read_to_end(&mut data).expect("read");
        assert_eq!(elf_architecture(&data), Some(arch));
    }
    assert_eq!(listing(&dir), before, "go.mod and go.sum are never rewritten");
}

#[test]
fn a_go_workspace_hashes_the_replaced_module_and_nothing_else() {
    let (tmp, root) = go_fixture("go-workspace");
    let s = spec(&root.join("api"), Language::Go, &tmp.path().join("cache"));
    let parts: Vec<String> = inputs(&s).expect("inputs").parts().into_keys().collect();
    assert_eq!(parts, ["go.work", "module .", "module ../greet", "toolchain"]);
    let built = build(&s).expect("build");
    assert_eq!(built.input_hash, input_hash(&s).expect("hash"));
    write(&root, &[("notes.txt", "not a module file")]);
    assert_eq!(input_hash(&s).expect("hash"), built.input_hash, "a file outside the modules is no input");
    let greet = root.join("greet/greet.go");
    std::fs::write(&greet, std::fs::read_to_string(&greet).expect("read").replace("hello", "hi")).expect("write");
    assert_ne!(input_hash(&s).expect("hash"), built.input_hash, "the replaced module is an input");
}

#[test]
fn a_go_module_with_vendor_builds_from_it_and_hashes_it() {
    let (tmp, dir) = go_fixture("hello-go-sdk");
    let out = Command::new("go").args(["mod", "vendor"]).current_dir(&dir).output().expect("go mod vendor");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = spec(&dir, Language::Go, &tmp.path().join("cache"));
    let before = listing(&dir);
    let built = build(&s).expect("build from vendor/");
    assert_eq!(listing(&dir), before, "the build wrote into the module");
    let vendored = dir.join("vendor/github.com/aws/aws-lambda-go/lambda/entry.go");
    let text = std::fs::read_to_string(&vendored).expect("a vendored file");
    std::fs::write(&vendored, format!("{text}\n// patched\n")).expect("write");
    assert_ne!(input_hash(&s).expect("hash"), built.input_hash, "vendor/ is an input");
}

#[test]
fn a_patched_path_crate_is_staged_and_is_an_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (app, cache) = (tmp.path().join("app"), tmp.path().join("cache"));
    write(
        tmp.path(),
        &[
            (
                "app/Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n\n\
                 [patch.crates-io]\nitoa = { path = \"../patches/itoa\" }\n",
            ),
            ("app/src/main.rs", "fn main() { println!(\"{}\", itoa::Buffer::new().format(7)); }\n"),
            ("patches/itoa/Cargo.toml", "[package]\nname = \"itoa\"\nversion = \"1.0.99\"\nedition = \"2021\"\n"),
            (
                "patches/itoa/src/lib.rs",
                "pub struct Buffer;\nimpl Buffer {\n    pub fn new() -> Self { Buffer }\n    \
                 pub fn format(&mut self, n: u64) -> String { format!(\"patched {n}\") }\n}\n",
            ),
        ],
    );
    let s = spec(&app, Language::Rust, &cache);
    let parts: Vec<String> = inputs(&s).expect("inputs").parts().into_keys().collect();
    assert!(parts.contains(&"crate itoa".to_string()), "{parts:?}");
    let built = build(&s).expect("build with the patch");
    assert_eq!(run_bootstrap(&built.path), "patched 7");
    write(
        tmp.path(),
        &[(
            "patches/itoa/src/lib.rs",
            "pub struct Buffer;\nimpl Buffer {\n    pub fn new() -> Self { Buffer }\n    pub fn format(&mut self, n: u64) -> String { format!(\"again {n}\") }\n}\n",
        )],
    );
    assert_ne!(input_hash(&s).expect("hash"), built.input_hash, "the patched crate is an input");
}

/// Copies fixtures into one temporary directory, side by side as in the repository.
fn fixtures(names: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/acceptance/fixtures");
    for name in names {
        let status = Command::new("cp").arg("-r").arg(from.join(name)).arg(tmp.path()).status().expect("cp");
        assert!(status.success());
    }
    tmp
}

#[test]
fn ruby_gems_from_a_path_and_from_debian_are_vendored_and_load_from_the_zip() {
    let tmp = fixtures(&["hello-ruby-gems", "greeter-gem"]);
    let dir = tmp.path().join("hello-ruby-gems");
    let s = spec(&dir, Language::Ruby, &tmp.path().join("cache"));
    let before = listing(&dir);
    let parts: Vec<String> = inputs(&s).expect("inputs").parts().into_keys().collect();
    assert_eq!(parts, ["gem ../greeter-gem", "sources", "toolchain"]);
    let built = build(&s).expect("build");
    assert_eq!(listing(&dir), before, "vendoring wrote into the project");

    // Unpack the zip and call the handler with only the zip's gem directory on the gem path.
    let task = tmp.path().join("task");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&built.path).expect("open")).expect("zip");
    archive.extract(&task).expect("extract");
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let gems = "vendor/bundle/ruby/3.3.0";
    for expected in [
        format!("{gems}/gems/greeter-0.1.0/lib/greeter.rb"),
        format!("{gems}/specifications/greeter-0.1.0.gemspec"),
        format!("{gems}/gems/webrick-1.8.1/lib/webrick.rb"),
        format!("{gems}/gems/xmlrpc-0.3.2/lib/xmlrpc/create.rb"),
    ] {
        assert!(names.contains(&expected), "{expected} is not in the zip: {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("rake")), "a test-group gem was vendored");
    // Lambda's Ruby has no Debian `vendor_ruby` on its load path: take it off, so that only
    // the zip's gem directory can answer.
    let gem_path = task.join(gems);
    let script = "$LOAD_PATH.reject! { |p| p.include?('vendor_ruby') }; require './function'; \
                  puts JSON.generate(handler(event: { 'name' => 'adf' }, context: nil))";
    let out = Command::new("ruby")
        .args(["-rjson", "-e", script])
        .current_dir(&task)
        .env("GEM_HOME", &gem_path)
        .env("GEM_PATH", &gem_path)
        .output()
        .expect("ruby");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["message"], "hello, adf");
    assert_eq!(answer["webrick"], "1.8.1");
    assert_eq!(answer["xmlrpc"], "XMLRPC::Create");
    let loaded: Vec<&str> = answer["files"].as_array().expect("files").iter().filter_map(|g| g.as_str()).collect();
    for gem in ["greeter-0.1.0/lib/greeter.rb", "webrick-1.8.1/lib/webrick.rb", "xmlrpc-0.3.2/lib/xmlrpc/create.rb"] {
        assert!(loaded.iter().any(|f| f.ends_with(gem)), "{gem} was not loaded: {loaded:?}");
    }
    assert!(
        loaded.iter().all(|f| f.starts_with(&*gem_path.to_string_lossy())),
        "loaded from outside the zip: {loaded:?}"
    );

    // The path gem is an input; a file next to the project is not.
    write(tmp.path(), &[("notes.txt", "not an input")]);
    assert_eq!(input_hash(&s).expect("hash"), built.input_hash);
    write(tmp.path(), &[("greeter-gem/lib/greeter.rb", "module Greeter\n  def self.hello(n) = \"hi, #{n}\"\nend\n")]);
    assert_ne!(input_hash(&s).expect("hash"), built.input_hash, "the path gem is an input");
}

#[test]
fn a_ruby_gem_missing_from_this_machine_says_to_install_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        tmp.path(),
        &[
            ("function.rb", "def handler(event:, context:) = 1\n"),
            ("Gemfile", "source \"https://rubygems.org\"\ngem \"adf-no-such-gem\"\n"),
            (
                "Gemfile.lock",
                "GEM\n  remote: https://rubygems.org/\n  specs:\n    adf-no-such-gem (9.9.9)\n\nPLATFORMS\n  x86_64-linux\n\n\
                 DEPENDENCIES\n  adf-no-such-gem\n\nBUNDLED WITH\n   2.3.7\n",
            ),
        ],
    );
    let s = spec(tmp.path(), Language::Ruby, &tmp.path().join(".cache"));
    let e = build(&s).expect_err("the gem is not installed");
    assert!(matches!(e, PackageError::Gems { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("adf-no-such-gem") && text.contains("bundle install"), "{text}");
    let mut bad = spec(tmp.path(), Language::Ruby, &tmp.path().join(".cache"));
    bad.handler = Some("function.process".into());
    let e = adf_packager::check(&bad).expect_err("no such method");
    assert!(e.to_string().contains("defines no method process"), "{e}");
}
