//! The installed toolchain for a build: versions (part of the input hash), and for Rust
//! whether the target's standard library and a glibc-pinning linker are there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Architecture, Language, PackageError};

/// The glibc of Lambda's `provided.al2023`.
pub const LAMBDA_GLIBC: &str = "2.34";

/// How Rust binaries get linked for Lambda.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RustLinker {
    /// `cargo zigbuild --target <triple>.2.34`: glibc pinned, any host.
    Zigbuild(PathBuf),
    /// Plain `cargo build`: the host's glibc is not newer than Lambda's.
    Host,
}

/// What a build will run with.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// Version lines of the tools, for the input hash.
    pub versions: Vec<String>,
    /// Rust only: how to link.
    pub rust_linker: Option<RustLinker>,
}

impl Toolchain {
    /// Detects the toolchain for `language` and `arch` as a build in `dir` would run it (a
    /// `rust-toolchain.toml` there applies), or says what to install.
    pub fn detect(language: Language, arch: Architecture, dir: &Path) -> Result<Self, PackageError> {
        let version = |tool: &str, args: &[&str]| version(tool, args, dir);
        match language {
            Language::Rust => detect_rust(arch, dir),
            Language::Go => Ok(Self {
                versions: vec![version("go", &["version"]).ok_or(PackageError::MissingTool {
                    tool: "go",
                    hint: "install Go 1.19 or newer (Debian: apt-get install golang-go)",
                })?],
                rust_linker: None,
            }),
            Language::Ruby => {
                let mut versions = vec![version("ruby", &["-v"]).ok_or(PackageError::MissingTool {
                    tool: "ruby",
                    hint: "install Ruby (Debian: apt-get install ruby)",
                })?];
                if dir.join("Gemfile.lock").is_file() {
                    let bundler = ["-rbundler", "-e", "print 'bundler ', Bundler::VERSION"];
                    versions.push(version("ruby", &bundler).ok_or(PackageError::MissingTool {
                        tool: "bundler",
                        hint: "a Gemfile.lock needs Bundler to vendor gems (it ships with Ruby 2.6 and later; \
                               Debian: apt-get install ruby)",
                    })?);
                }
                Ok(Self { versions, rust_linker: None })
            }
        }
    }

    /// One string for the input hash.
    pub fn fingerprint(&self) -> String {
        let linker = match &self.rust_linker {
            Some(RustLinker::Zigbuild(_)) => format!("zigbuild glibc {LAMBDA_GLIBC}"),
            Some(RustLinker::Host) => "host".to_string(),
            None => String::new(),
        };
        format!("{} {linker}", self.versions.join(" | "))
    }
}

fn version(tool: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(tool).args(args).current_dir(dir).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string())
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// The host glibc version, such as `2.36`.
fn host_glibc() -> Option<String> {
    let out = Command::new("getconf").arg("GNU_LIBC_VERSION").output().ok()?;
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).map(str::to_string)
}

/// True when glibc `a` is newer than `b` (dotted numbers).
fn newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| v.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    parse(a) > parse(b)
}

/// The zig that cargo-zigbuild will use, as it looks for one: `CARGO_ZIGBUILD_ZIG_PATH`, `zig`
/// on PATH, or the `ziglang` package of `python3` (or `CARGO_ZIGBUILD_PYTHON_PATH`).
fn zig_version(dir: &Path) -> Option<String> {
    if let Some(zig) = std::env::var_os("CARGO_ZIGBUILD_ZIG_PATH") {
        return version(zig, &["version"], dir);
    }
    version("zig", &["version"], dir).or_else(|| {
        let python = std::env::var_os("CARGO_ZIGBUILD_PYTHON_PATH").unwrap_or_else(|| "python3".into());
        version(python, &["-m", "ziglang", "version"], dir)
    })
}

fn detect_rust(arch: Architecture, dir: &Path) -> Result<Toolchain, PackageError> {
    let rustc = version("rustc", &["-V"], dir)
        .ok_or(PackageError::MissingTool { tool: "rustc", hint: "install Rust with rustup (https://rustup.rs)" })?;
    let cargo = version("cargo", &["-V"], dir)
        .ok_or(PackageError::MissingTool { tool: "cargo", hint: "install Rust with rustup (https://rustup.rs)" })?;
    let sysroot = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let target = arch.rust_target();
    if !sysroot.is_some_and(|s| s.join("lib/rustlib").join(target).join("lib").is_dir()) {
        return Err(PackageError::MissingRustTarget { target, arch });
    }
    let zigbuild = std::env::var_os("ADF_CARGO_ZIGBUILD").map(PathBuf::from).or_else(|| on_path("cargo-zigbuild"));
    let mut versions = vec![rustc, cargo];
    let linker = match zigbuild {
        Some(z) => {
            versions.push(format!(
                "zig {}",
                zig_version(dir).ok_or(PackageError::MissingTool {
                    tool: "zig",
                    hint: "cargo-zigbuild is installed but finds no zig: install ziglang into the Python that \
                           runs it (`pip install ziglang`), put zig on PATH, or set CARGO_ZIGBUILD_ZIG_PATH",
                })?
            ));
            RustLinker::Zigbuild(z)
        }
        None => {
            let host_arch = if cfg!(target_arch = "aarch64") { Architecture::Arm64 } else { Architecture::X86_64 };
            let glibc = host_glibc().unwrap_or_else(|| "unknown".into());
            if host_arch != arch {
                return Err(PackageError::MissingTool {
                    tool: "cargo-zigbuild",
                    hint: "cross-linking for another architecture needs cargo-zigbuild and ziglang (pip install cargo-zigbuild ziglang)",
                });
            }
            if glibc == "unknown" || newer(&glibc, LAMBDA_GLIBC) {
                return Err(PackageError::GlibcTooNew { host: glibc, lambda: LAMBDA_GLIBC });
            }
            RustLinker::Host
        }
    };
    Ok(Toolchain { versions, rust_linker: Some(linker) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_compare_numerically() {
        assert!(newer("2.36", "2.34"));
        assert!(newer("2.100", "2.34"));
        assert!(!newer("2.34", "2.34"));
        assert!(!newer("2.17", "2.34"));
    }

    #[test]
    fn arm64_rust_without_the_target_names_the_command_to_run() {
        let installed = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .map(|o| {
                PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                    .join("lib/rustlib/aarch64-unknown-linux-gnu")
                    .is_dir()
            })
            .unwrap_or(false);
        if installed {
            return; // this machine can build arm64; nothing to refuse
        }
        let err = Toolchain::detect(Language::Rust, Architecture::Arm64, Path::new(".")).expect_err("no aarch64 std");
        assert!(err.to_string().contains("rustup target add aarch64-unknown-linux-gnu"), "{err}");
    }
}
