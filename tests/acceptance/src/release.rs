//! Release artifacts as the Terraform and OpenTofu registries take them (`cargo xtask release`
//! writes them; the install tests lay them out as mirrors): one archive per platform holding
//! the provider binary and the runtime zips beside it, the manifest, the `SHA256SUMS` and its
//! detached OpenPGP signature, and the hashes a CLI records in `.terraform.lock.hcl`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The provider's name in every artifact's file name.
pub const PROVIDER: &str = "terraform-provider-adf";

/// The plugin protocol version the manifest declares.
pub const PROTOCOL: &str = "6.0";

/// The environment variable holding the release signing key (ASCII-armored secret key).
pub const KEY_ENV: &str = "ADF_RELEASE_GPG_KEY";

/// The environment variable holding that key's passphrase, when it has one.
pub const PASSPHRASE_ENV: &str = "ADF_RELEASE_GPG_PASSPHRASE";

/// `terraform-provider-adf_<version>_<platform>.zip`.
pub fn archive_name(version: &str, platform: &str) -> String {
    format!("{PROVIDER}_{version}_{platform}.zip")
}

/// `terraform-provider-adf_<version>_manifest.json`.
pub fn manifest_name(version: &str) -> String {
    format!("{PROVIDER}_{version}_manifest.json")
}

/// `terraform-provider-adf_<version>_SHA256SUMS`.
pub fn sums_name(version: &str) -> String {
    format!("{PROVIDER}_{version}_SHA256SUMS")
}

/// The exported public key's file name.
pub fn public_key_name(version: &str) -> String {
    format!("{PROVIDER}_{version}_signing-key.asc")
}

/// The registry platform (`linux_amd64`) of a Rust target triple.
pub fn platform(triple: &str) -> Result<String> {
    let os = match triple {
        t if t.contains("-linux-") => "linux",
        t if t.contains("-apple-darwin") => "darwin",
        t if t.contains("-windows-") => "windows",
        t if t.contains("-freebsd") => "freebsd",
        _ => bail!("no registry platform for target {triple}"),
    };
    let arch = match triple.split('-').next() {
        Some("x86_64") => "amd64",
        Some("aarch64") => "arm64",
        _ => bail!("no registry architecture for target {triple}"),
    };
    Ok(format!("{os}_{arch}"))
}

/// Writes the archive of `version` for `platform` into `out`: the binary as
/// `terraform-provider-adf_v<version>` (`.exe` on Windows) and each runtime zip beside it, as
/// a reproducible zip (sorted entries, fixed times and modes). Returns its path.
pub fn write_archive(
    out: &Path,
    version: &str,
    platform: &str,
    binary: &Path,
    runtime_zips: &[PathBuf],
) -> Result<PathBuf> {
    let exe = if platform.starts_with("windows") { ".exe" } else { "" };
    let mut entries = vec![adf_packager::Entry {
        name: format!("{PROVIDER}_v{version}{exe}"),
        data: std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?,
        mode: 0o755,
    }];
    for zip in runtime_zips {
        let name = zip.file_name().and_then(|n| n.to_str()).context("a runtime zip without a file name")?;
        let data = std::fs::read(zip).with_context(|| format!("reading {}", zip.display()))?;
        entries.push(adf_packager::Entry { name: name.to_string(), data, mode: 0o644 });
    }
    std::fs::create_dir_all(out)?;
    let path = out.join(archive_name(version, platform));
    std::fs::write(&path, adf_packager::write_zip(entries)?)?;
    Ok(path)
}

/// Writes the manifest (protocol 6.0) and the `SHA256SUMS` over it and every archive of
/// `version` in `out` (sorted by name). Returns the SUMS' path.
pub fn write_sums(out: &Path, version: &str) -> Result<PathBuf> {
    let manifest = serde_json::json!({ "version": 1, "metadata": { "protocol_versions": [PROTOCOL] } });
    std::fs::write(out.join(manifest_name(version)), format!("{}\n", serde_json::to_string_pretty(&manifest)?))?;
    let prefix = format!("{PROVIDER}_{version}_");
    let mut names: Vec<String> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && (n.ends_with(".zip") || *n == manifest_name(version)))
        .collect();
    names.sort();
    if !names.iter().any(|n| n.ends_with(".zip")) {
        bail!("no archive of {version} in {}: build one first (`cargo xtask release {version}`)", out.display());
    }
    let mut sums = String::new();
    for name in names {
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&std::fs::read(out.join(&name))?)));
    }
    let path = out.join(sums_name(version));
    std::fs::write(&path, sums)?;
    Ok(path)
}

/// Signs the `SHA256SUMS` of `version` in `out` with `gpg`'s key (a detached binary signature,
/// `<SUMS>.sig`) and exports the public key beside it. Returns both paths.
pub fn sign(out: &Path, version: &str, gpg: &Gpg) -> Result<(PathBuf, PathBuf)> {
    let sums = out.join(sums_name(version));
    let sig = out.join(format!("{}.sig", sums_name(version)));
    gpg.detach_sign(&sums, &sig)?;
    let key = out.join(public_key_name(version));
    std::fs::write(&key, gpg.export_public()?)?;
    Ok((sig, key))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `zh:` hash a CLI records for an archive: the hex SHA-256 of the zip itself.
pub fn zh_hash(archive: &Path) -> Result<String> {
    Ok(format!("zh:{}", sha256_hex(&std::fs::read(archive)?)))
}

/// The `h1:` hash a CLI records for an archive: Go's `dirhash.Hash1` of its contents (the
/// SHA-256 of the lines `<hex sha256 of the file>  <name>\n`, sorted by name, base64).
pub fn h1_hash(archive: &Path) -> Result<String> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(archive)?)?;
    let mut lines = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        if file.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        lines.push(format!("{}  {}\n", sha256_hex(&data), file.name()));
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let summary = Sha256::digest(lines.concat().as_bytes());
    Ok(format!("h1:{}", base64::engine::general_purpose::STANDARD.encode(summary)))
}

/// Where a CLI looks for `activedataflow/adf` in a mirror, under a registry host.
pub fn mirror_dir(mirror: &Path, host: &str) -> PathBuf {
    mirror.join(host).join("activedataflow").join("adf")
}

/// Lays `archives` out as a packed filesystem mirror under each of `hosts`.
pub fn filesystem_mirror(mirror: &Path, archives: &[PathBuf], hosts: &[&str]) -> Result<()> {
    for host in hosts {
        let dir = mirror_dir(mirror, host);
        std::fs::create_dir_all(&dir)?;
        for archive in archives {
            std::fs::copy(archive, dir.join(archive.file_name().context("an archive without a name")?))?;
        }
    }
    Ok(())
}

/// Lays `archives` (platform, path) of `version` out for the provider network mirror protocol
/// under each of `hosts`: `index.json`, `<version>.json` (each archive's relative URL with its
/// `h1:` and `zh:` hashes) and the archives.
pub fn network_mirror(mirror: &Path, version: &str, archives: &[(String, PathBuf)], hosts: &[&str]) -> Result<()> {
    let mut listed = serde_json::Map::new();
    for (platform, path) in archives {
        let name = path.file_name().and_then(|n| n.to_str()).context("an archive without a name")?;
        listed.insert(platform.clone(), serde_json::json!({ "url": name, "hashes": [h1_hash(path)?, zh_hash(path)?] }));
    }
    let paths: Vec<PathBuf> = archives.iter().map(|(_, p)| p.clone()).collect();
    filesystem_mirror(mirror, &paths, hosts)?;
    for host in hosts {
        let dir = mirror_dir(mirror, host);
        std::fs::write(dir.join("index.json"), serde_json::json!({ "versions": { version: {} } }).to_string())?;
        std::fs::write(dir.join(format!("{version}.json")), serde_json::json!({ "archives": listed }).to_string())?;
    }
    Ok(())
}

/// The hashes `.terraform.lock.hcl` records for `address` (e.g.
/// `registry.terraform.io/activedataflow/adf`), and its version.
pub fn locked(lock_file: &str, address: &str) -> Option<(String, Vec<String>)> {
    let block = lock_file.split(&format!("provider \"{address}\" {{")).nth(1)?.split("\n}").next()?;
    let version = block.lines().find_map(|l| l.trim().strip_prefix("version"))?.trim().trim_start_matches('=');
    let hashes = block.split("hashes = [").nth(1)?.split(']').next()?;
    Some((
        version.trim().trim_matches('"').to_string(),
        hashes.split(',').map(|h| h.trim().trim_matches('"').to_string()).filter(|h| !h.is_empty()).collect(),
    ))
}

/// A GnuPG home of its own (removed on drop), for signing with one key or verifying with one
/// public key, leaving the user's keyrings alone.
#[derive(Debug)]
pub struct Gpg {
    home: tempfile::TempDir,
    passphrase: Option<String>,
}

impl Gpg {
    /// An empty home. Fails when `gpg` is not installed.
    pub fn new() -> Result<Self> {
        // gpg-agent's socket path must stay short: a home directly under /tmp.
        let home = tempfile::Builder::new().prefix("adf-gpg-").tempdir_in("/tmp")?;
        let gpg = Self { home, passphrase: None };
        gpg.run(&["--version"]).context("gpg is not installed (Debian: apt-get install gnupg)")?;
        Ok(gpg)
    }

    /// A home holding the release key from [`KEY_ENV`] (and [`PASSPHRASE_ENV`]).
    pub fn from_env() -> Result<Self> {
        let key = std::env::var(KEY_ENV).with_context(|| {
            format!(
                "{KEY_ENV} is not set: export the release key with `gpg --armor --export-secret-keys <id>` into it \
                 (or pass --throwaway-key to sign with a key made for this run)"
            )
        })?;
        let mut gpg = Self::new()?;
        gpg.passphrase = std::env::var(PASSPHRASE_ENV).ok();
        gpg.import(&key)?;
        Ok(gpg)
    }

    /// A home holding a new RSA key made for this run only (tests, trial releases).
    pub fn throwaway() -> Result<Self> {
        let gpg = Self::new()?;
        gpg.run(&[
            "--passphrase",
            "",
            "--quick-generate-key",
            "terraform-provider-adf test release <release-test@adf.invalid>",
            "rsa3072",
            "sign",
            "1d",
        ])?;
        Ok(gpg)
    }

    /// Imports an ASCII-armored key (secret or public).
    pub fn import(&self, armored: &str) -> Result<()> {
        let file = self.home.path().join("import.asc");
        std::fs::write(&file, armored)?;
        let imported = self.run(&["--import", &file.display().to_string()]);
        std::fs::remove_file(&file)?;
        imported.map(drop)
    }

    /// The public key, ASCII-armored.
    pub fn export_public(&self) -> Result<String> {
        let out = self.run(&["--armor", "--export"])?;
        if !out.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            bail!("gpg exported no public key");
        }
        Ok(out)
    }

    /// Writes a detached binary signature of `file` to `sig`.
    pub fn detach_sign(&self, file: &Path, sig: &Path) -> Result<()> {
        let _ = std::fs::remove_file(sig);
        let mut cmd = self.command();
        if self.passphrase.is_some() {
            // On standard input, never on a command line.
            cmd.args(["--passphrase-fd", "0"]).stdin(std::process::Stdio::piped());
        }
        let mut child = cmd
            .arg("--detach-sign")
            .arg("--output")
            .arg(sig)
            .arg(file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running gpg --detach-sign")?;
        if let (Some(p), Some(mut stdin)) = (&self.passphrase, child.stdin.take()) {
            std::io::Write::write_all(&mut stdin, format!("{p}\n").as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("gpg --detach-sign failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Whether `sig` is a good signature of `file` by a key in this home.
    pub fn verify(&self, file: &Path, sig: &Path) -> Result<bool> {
        let out = self.command().arg("--verify").arg(sig).arg(file).output().context("running gpg --verify")?;
        Ok(out.status.success())
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir").arg(self.home.path()).args(["--batch", "--yes", "--pinentry-mode", "loopback"]);
        cmd
    }

    /// Runs gpg with `args`, failing with its stderr; returns its stdout.
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.command().args(args).output().context("running gpg (Debian: apt-get install gnupg)")?;
        if !out.status.success() {
            bail!("gpg {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // The agent gpg started for this home.
        let _ = Command::new("gpgconf").arg("--homedir").arg(self.home.path()).args(["--kill", "gpg-agent"]).output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_follow_the_registry_names() {
        assert_eq!(platform("x86_64-unknown-linux-gnu").ok().as_deref(), Some("linux_amd64"));
        assert_eq!(platform("aarch64-apple-darwin").ok().as_deref(), Some("darwin_arm64"));
        assert_eq!(platform("x86_64-pc-windows-msvc").ok().as_deref(), Some("windows_amd64"));
        assert!(platform("riscv64gc-unknown-linux-gnu").is_err());
    }

    #[test]
    fn h1_is_gos_dirhash_of_the_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = vec![
            adf_packager::Entry { name: "b.txt".into(), data: b"b\n".to_vec(), mode: 0o644 },
            adf_packager::Entry { name: "a.txt".into(), data: b"a\n".to_vec(), mode: 0o644 },
        ];
        let zip = dir.path().join("x.zip");
        std::fs::write(&zip, adf_packager::write_zip(entries).expect("zip")).expect("write");
        // sha256("a\n") and sha256("b\n"), as `sha256sum` prints them, then sha256 of that.
        let lines = "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7  a.txt\n\
                     0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f  b.txt\n";
        let want = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(lines.as_bytes()));
        assert_eq!(h1_hash(&zip).expect("h1"), format!("h1:{want}"));
        assert_eq!(zh_hash(&zip).expect("zh"), format!("zh:{}", sha256_hex(&std::fs::read(&zip).expect("read"))));
    }

    #[test]
    fn lock_files_are_read_per_provider() {
        let lock = r#"
provider "registry.terraform.io/hashicorp/null" {
  version = "3.2.0"
  hashes = [
    "h1:null",
  ]
}

provider "registry.terraform.io/activedataflow/adf" {
  version     = "0.1.0"
  constraints = ">= 0.1.0"
  hashes = [
    "h1:abc=",
    "zh:0123",
  ]
}
"#;
        let (version, hashes) = locked(lock, "registry.terraform.io/activedataflow/adf").expect("locked");
        assert_eq!(version, "0.1.0");
        assert_eq!(hashes, ["h1:abc=", "zh:0123"]);
        assert!(locked(lock, "registry.opentofu.org/activedataflow/adf").is_none());
    }
}
