//! `cargo xtask release VERSION`: the files the Terraform and OpenTofu registries take. For each
//! target, an optimized provider build that pins the SHA-256 of the runtime zips it ships, with
//! this machine's paths remapped and `SOURCE_DATE_EPOCH` from the commit, packed with the zips
//! into a reproducible archive; then the manifest, the `SHA256SUMS`, its signature and the public
//! key.

use std::path::{Path, PathBuf};
use std::process::Command;

use adf::resources::released_zip;
use adf_acceptance::release::{self, Gpg};
use adf_acceptance::runtime_zips;
use anyhow::{Context, Result, bail};

/// The workspace's Cargo profile the release builds the provider and the runtime zips with:
/// `release` made small (fat LTO, one codegen unit, `opt-level = "s"`).
pub const DIST_PROFILE: &str = "dist";

/// What `cargo xtask release` was asked for.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The version to release, without a `v` (e.g. 0.1.0).
    pub version: String,
    /// Rust target triples to build (repeatable); the host's when none. This machine's toolchain
    /// may lack other targets' std: the release workflow builds each on its own runner.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Where the artifacts go (default: `<target dir>/release-artifacts/<VERSION>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Ship the runtime zips in this directory instead of building them.
    #[arg(long)]
    pub runtime_zips: Option<PathBuf>,
    /// Only build the platform archives (a workflow signs once all platforms are built).
    #[arg(long, conflicts_with = "sums_only")]
    pub archive_only: bool,
    /// Only write the manifest, SUMS and signature over the archives already in `--out`.
    #[arg(long)]
    pub sums_only: bool,
    /// Sign with a key made for this run instead of the one in `ADF_RELEASE_GPG_KEY`.
    #[arg(long)]
    pub throwaway_key: bool,
}

/// Runs the release.
pub fn run(root: &Path, o: &Options) -> Result<()> {
    check_version(&o.version)?;
    let out = o.out.clone().unwrap_or_else(|| crate::target_dir(root).join("release-artifacts").join(&o.version));
    std::fs::create_dir_all(&out)?;
    if !o.sums_only {
        let zips_dir = match &o.runtime_zips {
            Some(dir) => dir.clone(),
            None => {
                let dir = crate::target_dir(root).join("release-runtime-zips");
                crate::place_runtime_zips(root, Some(&dir), Some(DIST_PROFILE))?;
                dir
            }
        };
        let zips: Vec<PathBuf> = runtime_zips::ALL.iter().map(|z| zips_dir.join(z.zip_name)).collect();
        let mut pins = Vec::new();
        for zip in &zips {
            // The hash the provider checks the zip beside it with.
            let hash = released_zip::file_sha256(zip).with_context(|| format!("reading {}", zip.display()))?;
            pins.push(format!("{}={hash}", zip.file_name().and_then(|n| n.to_str()).unwrap_or_default()));
        }
        let targets = if o.targets.is_empty() { vec![host_triple()?] } else { o.targets.clone() };
        for triple in &targets {
            let binary = build_provider(root, triple, &pins.join(","))?;
            let archive = release::write_archive(&out, &o.version, &release::platform(triple)?, &binary, &zips)?;
            println!("{}\n  {}\n  {}", archive.display(), release::zh_hash(&archive)?, release::h1_hash(&archive)?);
        }
    }
    if !o.archive_only {
        let sums = release::write_sums(&out, &o.version)?;
        let gpg = if o.throwaway_key {
            println!("==> signing with a throwaway key: fine for a trial, not for a registry");
            Gpg::throwaway()?
        } else {
            Gpg::from_env()?
        };
        let (sig, key) = release::sign(&out, &o.version, &gpg)?;
        // Check as a user would: a keyring holding only the exported public key.
        let check = Gpg::new()?;
        check.import(&std::fs::read_to_string(&key)?)?;
        if !check.verify(&sums, &sig)? {
            bail!("the signature of {} does not verify with {}", sums.display(), key.display());
        }
        for path in [&sums, &sig, &key] {
            println!("{}", path.display());
        }
        println!("==> signature verified with the exported public key");
    }
    Ok(())
}

/// A release version: `MAJOR.MINOR.PATCH`, optionally `-PRERELEASE`.
fn check_version(version: &str) -> Result<()> {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        bail!("version {version:?} is not MAJOR.MINOR.PATCH (without a leading v)");
    }
    Ok(())
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host")
}

/// Builds the optimized provider for `triple` with the runtime zips' hashes pinned; returns
/// the binary.
fn build_provider(root: &Path, triple: &str, pins: &str) -> Result<PathBuf> {
    println!("==> building the provider for {triple} (dist profile: release, made small; runtime zips pinned)");
    let target_dir = crate::target_dir(root);
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_default();
    // Workspace sources are compiled with relative paths; the registry's and the generated
    // code's are this machine's, so they are remapped (and stay the same from clone to clone,
    // so a later release reuses the build).
    let rustflags = format!(
        "--remap-path-prefix={}=/cargo --remap-path-prefix={}=/target",
        cargo_home.display(),
        target_dir.display()
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--profile",
            DIST_PROFILE,
            "--locked",
            "--package",
            "terraform-provider-adf",
            "--target",
            triple,
        ])
        .current_dir(root)
        .env("RUSTFLAGS", rustflags)
        .env("SOURCE_DATE_EPOCH", source_date_epoch(root)?)
        .env(released_zip::PIN_ENV, pins)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the provider for {triple} failed ({status})");
    }
    let exe = if triple.contains("windows") { ".exe" } else { "" };
    Ok(target_dir.join(triple).join(DIST_PROFILE).join(format!("terraform-provider-adf{exe}")))
}

/// `SOURCE_DATE_EPOCH`, else the commit time of HEAD.
fn source_date_epoch(root: &Path) -> Result<String> {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        return Ok(epoch);
    }
    let out = Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(root).output()?;
    let epoch = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || epoch.is_empty() {
        bail!("no SOURCE_DATE_EPOCH and no git commit to take it from");
    }
    Ok(epoch)
}

#[cfg(test)]
mod tests {
    use super::check_version;

    #[test]
    fn versions_are_semver_without_a_v() {
        assert!(check_version("0.1.0").is_ok());
        assert!(check_version("1.2.3-rc.1").is_ok());
        for bad in ["v0.1.0", "0.1", "0.1.x", "", "1..2"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
