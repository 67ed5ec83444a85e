//! Installing the provider as a user does, without `dev_overrides`: release artifacts (written
//! by the code behind `cargo xtask release`, around this build's provider binary and runtime
//! zips) laid out as a filesystem mirror and served as an HTTPS network mirror; `init` with
//! every CLI at hand, the lock file's hashes checked against ones recomputed from the
//! artifacts, then a plan of the quickstart with the installed provider.

use std::io::Read;
use std::path::{Path, PathBuf};

use adf_acceptance::https_mirror::HttpsMirror;
use adf_acceptance::release::{self, Gpg};
use adf_acceptance::terraform::{self, OPENTOFU_REGISTRY, TERRAFORM_REGISTRY};
use adf_acceptance::{Emulator, Workspace, runtime_zips};
use anyhow::{Context, Result, bail, ensure};

const VERSION: &str = "0.1.0";
const PLATFORM: &str = "linux_amd64";
const QUICKSTART: &str = "examples/terraform/quickstart";

/// The platform archive, manifest and SUMS of this build, written into `out`.
fn write_release(out: &Path) -> Result<PathBuf> {
    let binary = terraform::provider_dir()?.join("terraform-provider-adf");
    let zips = [runtime_zips::stream_lambda()?, runtime_zips::workflow_worker()?];
    let archive = release::write_archive(out, VERSION, PLATFORM, &binary, &zips)?;
    release::write_sums(out, VERSION)?;
    Ok(archive)
}

/// This build's release in a directory of its own, with the archive's hashes.
struct Built {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    h1: String,
    zh: String,
}

fn built() -> Result<Built> {
    let dir = tempfile::tempdir()?;
    let archive = write_release(dir.path())?;
    let (h1, zh) = (release::h1_hash(&archive)?, release::zh_hash(&archive)?);
    Ok(Built { _dir: dir, archive, h1, zh })
}

#[test]
fn release_artifacts_are_byte_identical_from_build_to_build_and_complete() -> Result<()> {
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let archive = write_release(a.path())?;
    write_release(b.path())?;
    for name in [release::archive_name(VERSION, PLATFORM), release::manifest_name(VERSION), release::sums_name(VERSION)]
    {
        let (x, y) = (std::fs::read(a.path().join(&name))?, std::fs::read(b.path().join(&name))?);
        assert!(x == y, "{name} differs between two release builds");
    }

    // The archive: the binary, executable, and the runtime zips the provider deploys.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive)?)?;
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["adf-stream-lambda.zip", "adf-workflow-worker.zip", "terraform-provider-adf_v0.1.0"]);
    let mut binary = zip.by_name("terraform-provider-adf_v0.1.0")?;
    assert_eq!(binary.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut data = Vec::new();
    binary.read_to_end(&mut data)?;
    assert_eq!(data, std::fs::read(terraform::provider_dir()?.join("terraform-provider-adf"))?);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join(release::manifest_name(VERSION)))?)?;
    assert_eq!(manifest["metadata"]["protocol_versions"], serde_json::json!(["6.0"]));
    // SUMS: `<hex>  <name>` for the archive and the manifest, as `sha256sum -c` reads it.
    let sums = std::fs::read_to_string(a.path().join(release::sums_name(VERSION)))?;
    let listed: Vec<&str> = sums.lines().collect();
    assert_eq!(listed.len(), 2, "{sums}");
    for name in [release::archive_name(VERSION, PLATFORM), release::manifest_name(VERSION)] {
        let zh = release::zh_hash(&a.path().join(&name))?;
        let line = format!("{}  {name}", zh.trim_start_matches("zh:"));
        assert!(listed.contains(&line.as_str()), "{line} not in\n{sums}");
    }
    Ok(())
}

#[test]
fn release_signature_verifies_with_the_public_key_and_a_changed_sums_fails() -> Result<()> {
    let out = tempfile::tempdir()?;
    write_release(out.path())?;
    let (sig, key) = release::sign(out.path(), VERSION, &Gpg::throwaway()?)?;
    let sums = out.path().join(release::sums_name(VERSION));
    assert!(std::fs::read(&sig)?.first().is_some_and(|b| b & 0x80 != 0), "a binary OpenPGP packet");

    // A user's keyring: the exported public key and nothing else.
    let user = Gpg::new()?;
    assert!(!user.verify(&sums, &sig)?, "verified without the key");
    user.import(&std::fs::read_to_string(&key)?)?;
    assert!(user.verify(&sums, &sig)?, "the signature does not verify");
    let mut changed = std::fs::read_to_string(&sums)?;
    changed.replace_range(0..1, if changed.starts_with('0') { "1" } else { "0" });
    std::fs::write(&sums, changed)?;
    assert!(!user.verify(&sums, &sig)?, "a changed SUMS still verifies");
    Ok(())
}

/// A workspace run by `cli` with the CLI configuration `rc`, in the quickstart (beside the
/// modules it uses).
fn quickstart(emu: &Emulator, cli: &Path, rc: &str) -> Result<Workspace> {
    let ws = Workspace::with_cli_config(emu.endpoint(), cli, rc)?.with_repo_dirs(&["modules", QUICKSTART])?;
    adf_acceptance::storage_bot::link_to_repo(ws.path())?;
    std::fs::write(ws.path().join("test.auto.tfvars"), "worker_on_queue = false\n")?;
    Ok(ws)
}

/// `init`, which must pass, then checks the lock file for the CLI's registry host: version
/// 0.1.0, the `h1:` hash recomputed from the archive, and no hash but that and its `zh:`.
fn init_and_check_lock(ws: &Workspace, cli: &Path, release: &Built) -> Result<()> {
    let version = terraform::cli_version(cli)?;
    ws.run(&["init", "-no-color", "-input=false"])?.ok().with_context(|| version.clone())?;
    let lock = std::fs::read_to_string(ws.path().join(".terraform.lock.hcl"))?;
    let address = format!("{}/activedataflow/adf", terraform::registry_host(cli)?);
    let (locked, hashes) =
        release::locked(&lock, &address).with_context(|| format!("{address} is not in the lock file:\n{lock}"))?;
    let (h1, zh) = (&release.h1, &release.zh);
    ensure!(locked == VERSION, "{version}: locked {locked}");
    ensure!(hashes.contains(h1), "{version}: the lock file lacks {h1}: {hashes:?}");
    for hash in &hashes {
        ensure!(hash == h1 || hash == zh, "{version}: {hash} is neither {h1} nor {zh}");
    }
    Ok(())
}

/// A plan of the quickstart with the installed provider: changes, no errors (it finds the
/// runtime zips the archive carries beside the binary).
fn plan(ws: &Workspace) -> Result<()> {
    let out = ws.run(&["plan", "-detailed-exitcode", "-no-color"])?;
    if out.code != 2 {
        bail!("expected a plan with changes (exit 2), got {}\n{}\n{}", out.code, out.stdout, out.stderr);
    }
    for resource in ["adf_stream_topic", "adf_workflow", "adf_function"] {
        assert!(out.stdout.contains(resource), "the plan has no {resource}:\n{}", out.stdout);
    }
    Ok(())
}

fn every_cli() -> Result<Vec<PathBuf>> {
    let clis = terraform::every_cli();
    if clis.is_empty() {
        bail!("no CLI: neither terraform on PATH nor the project-built OpenTofu (`cargo xtask test` builds it)");
    }
    Ok(clis)
}

#[test]
fn install_from_a_filesystem_mirror_offline_with_every_cli() -> Result<()> {
    let release = built()?;
    let mirror = tempfile::tempdir()?;
    let hosts = [TERRAFORM_REGISTRY, OPENTOFU_REGISTRY];
    release::filesystem_mirror(mirror.path(), std::slice::from_ref(&release.archive), &hosts)?;
    // No `direct` block: nothing is fetched from the network.
    let rc = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{TERRAFORM_REGISTRY}/activedataflow/adf\", \"{OPENTOFU_REGISTRY}/activedataflow/adf\"]\n  }}\n}}\n",
        mirror.path().display()
    );
    let emu = Emulator::start()?;
    for cli in every_cli()? {
        let ws = quickstart(&emu, &cli, &rc)?;
        init_and_check_lock(&ws, &cli, &release)?;
        plan(&ws).with_context(|| terraform::cli_version(&cli).unwrap_or_default())?;
    }
    Ok(())
}

#[test]
fn install_from_an_https_network_mirror_with_every_cli() -> Result<()> {
    let release = built()?;
    let (h1, zh) = (&release.h1, &release.zh);
    let root = tempfile::tempdir()?;
    let hosts = [TERRAFORM_REGISTRY, OPENTOFU_REGISTRY];
    release::network_mirror(root.path(), VERSION, &[(PLATFORM.to_string(), release.archive.clone())], &hosts)?;
    let mirror = HttpsMirror::serve(root.path())?;
    let rc = format!("provider_installation {{\n  network_mirror {{\n    url = \"{}\"\n  }}\n}}\n", mirror.url());
    let emu = Emulator::start()?;
    for cli in every_cli()? {
        let host = terraform::registry_host(&cli)?;
        let ws = quickstart(&emu, &cli, &rc)?.with_env("SSL_CERT_FILE", &mirror.ca_file().display().to_string());
        // The mirror lists both hashes; the CLI checks the archive against them.
        init_and_check_lock(&ws, &cli, &release)?;
        let served = mirror.served();
        let archive_path = format!("/{host}/activedataflow/adf/{}", release::archive_name(VERSION, PLATFORM));
        for path in [format!("/{host}/activedataflow/adf/index.json"), archive_path] {
            ensure!(served.contains(&path), "{host}: the mirror never served {path}: {served:?}");
        }
        plan(&ws).with_context(|| terraform::cli_version(&cli).unwrap_or_default())?;
    }

    // A mirror whose hashes do not match its archive: every CLI refuses to install.
    for host in hosts {
        let document = release::mirror_dir(root.path(), host).join(format!("{VERSION}.json"));
        let text = std::fs::read_to_string(&document)?;
        std::fs::write(
            &document,
            text.replace(h1.as_str(), "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .replace(zh.as_str(), &format!("zh:{}", "0".repeat(64))),
        )?;
    }
    for cli in every_cli()? {
        let ws = quickstart(&emu, &cli, &rc)?.with_env("SSL_CERT_FILE", &mirror.ca_file().display().to_string());
        let out = ws.run(&["init", "-no-color", "-input=false"])?;
        assert_ne!(
            out.code,
            0,
            "{}: init took an archive whose hashes the mirror does not list",
            terraform::cli_version(&cli)?
        );
        assert!(out.stderr.contains("checksum"), "{}", out.stderr);
    }
    Ok(())
}
