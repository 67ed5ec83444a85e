//! Installs what the tests and the demo need, from the pinned files in `tests/acceptance/tools`:
//! Python tools into virtualenvs under `.cache/` (moto server, cargo-zigbuild + ziglang), Go and
//! Ruby from Debian when they are missing, and OpenTofu built from the Go module proxy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A virtualenv's directory: `$<env_var>` when set, else `<root>/.cache/<name>`.
pub fn venv_dir(root: &Path, name: &str, env_var: &str) -> PathBuf {
    std::env::var_os(env_var).map_or_else(|| root.join(".cache").join(name), PathBuf::from)
}

/// Makes `venv` hold exactly what `pins` (a file of `pkg==version` lines, relative to
/// `tests/acceptance/tools`) asks for, unless it already does. `constraints` (same folder)
/// pins the dependencies. Returns the venv's `bin` directory.
pub fn venv_install(root: &Path, venv: &Path, requirements: &[&str], constraints: Option<&str>) -> Result<PathBuf> {
    let tools = root.join("tests/acceptance/tools");
    let mut wanted = requirements.join("\n");
    if let Some(c) = constraints {
        let path = tools.join(c);
        wanted.push('\n');
        wanted.push_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    let marker = venv.join(".adf-installed");
    let bin = venv.join("bin");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).arg("-m").arg("venv").arg(venv), "creating a Python virtualenv")?;
    let mut pip = Command::new(bin.join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"]);
    if let Some(c) = constraints {
        pip.arg("-c").arg(tools.join(c));
    }
    pip.args(requirements);
    run(&mut pip, &format!("pip install {}", requirements.join(" ")))?;
    std::fs::write(&marker, wanted)?;
    Ok(bin)
}

/// The pinned requirements in `tests/acceptance/tools/<file>`.
pub fn pins(root: &Path, file: &str) -> Result<Vec<String>> {
    let path = root.join("tests/acceptance/tools").join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect())
}

/// cargo-zigbuild and ziglang, for glibc-pinned Rust Lambda builds. Returns their `bin`.
pub fn install_build_tools(root: &Path) -> Result<PathBuf> {
    let reqs = pins(root, "build-tools.txt")?;
    let reqs: Vec<&str> = reqs.iter().map(String::as_str).collect();
    venv_install(root, &venv_dir(root, "build-tools", "ADF_BUILD_TOOLS_VENV"), &reqs, None)
}

/// Go and Ruby, from Debian when missing (as root), else an error that says what to install.
pub fn ensure_languages() -> Result<()> {
    let missing: Vec<&str> = [("go", "golang-go"), ("ruby", "ruby")]
        .into_iter()
        .filter(|(tool, _)| {
            Command::new(tool).arg("version").output().is_err() && Command::new(tool).arg("-v").output().is_err()
        })
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing, "to build Go and Ruby Lambda packages")
}

/// A server started by `spawn`, tried three times: a free port can be taken between our probe
/// and the server's bind. The last error names `what` did not start.
pub(crate) fn start_retrying<T>(what: &str, mut spawn: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..3 {
        match spawn() {
            Ok(server) => return Ok(server),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{what} did not start")))
}

/// Installs Debian's `packages` when we are root on a machine with apt-get; else fails naming
/// them and what they are `for_what` ("to run the cache tests").
pub(crate) fn apt_install(packages: &[&str], for_what: &str) -> Result<()> {
    let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    if !root_user || Command::new("apt-get").arg("--version").output().is_err() {
        bail!("install {} (Debian packages, or your system's) {for_what}", packages.join(" "));
    }
    run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
    run(
        Command::new("apt-get").args(["install", "-y", "-qq"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {}", packages.join(" ")),
    )
}

/// The OpenTofu version pinned in `tests/acceptance/tools/tofu/go.mod` (without the `v`).
pub fn tofu_version(root: &Path) -> Result<String> {
    let path = root.join("tests/acceptance/tools/tofu/go.mod");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.trim().trim_start_matches("require ").strip_prefix("github.com/opentofu/opentofu v"))
        .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        .with_context(|| format!("{} does not require github.com/opentofu/opentofu", path.display()))
}

/// Where the project-built `tofu` lives, outside the clone:
/// `$ADF_TOFU_DIR/tofu`, else `$HOME/.cache/terraform-provider-adf/tofu-<version>/tofu`.
pub fn tofu_path(root: &Path) -> Result<PathBuf> {
    let dir = match std::env::var_os("ADF_TOFU_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set (or set ADF_TOFU_DIR)")?;
            PathBuf::from(home).join(".cache/terraform-provider-adf").join(format!("tofu-{}", tofu_version(root)?))
        }
    };
    Ok(dir.join("tofu"))
}

/// Builds the pinned OpenTofu (`tests/acceptance/tools/tofu`) with Go, as OpenTofu's release
/// build does (`-trimpath`, `CGO_ENABLED=0`, `version.dev=no`), into [`tofu_path`], unless a
/// binary there already reports the pinned version. Returns its path.
pub fn install_tofu(root: &Path) -> Result<PathBuf> {
    let version = tofu_version(root)?;
    let bin = tofu_path(root)?;
    if tofu_reports(&bin, &version) {
        return Ok(bin);
    }
    if Command::new("go").arg("version").output().is_err() {
        bail!("go is missing: OpenTofu v{version} is built from source; install Go (>= 1.26) and run again");
    }
    println!("==> building OpenTofu v{version} from the Go module proxy (a few minutes the first time)");
    let started = std::time::Instant::now();
    let dir = bin.parent().context("tofu's directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join("tofu.partial");
    run(
        Command::new("go")
            .args(["build", "-mod=readonly", "-trimpath"])
            .args(["-ldflags", "-s -w -X github.com/opentofu/opentofu/version.dev=no"])
            .arg("-o")
            .arg(&partial)
            .arg("github.com/opentofu/opentofu/cmd/tofu")
            .current_dir(root.join("tests/acceptance/tools/tofu"))
            .env("CGO_ENABLED", "0"),
        &format!("building OpenTofu v{version}"),
    )?;
    std::fs::rename(&partial, &bin)?;
    if !tofu_reports(&bin, &version) {
        bail!("{} does not report OpenTofu v{version}", bin.display());
    }
    println!("    {} built in {:.0?}", bin.display(), started.elapsed());
    Ok(bin)
}

/// Whether `bin` exists and `bin version` says `OpenTofu v<version>`.
fn tofu_reports(bin: &Path, version: &str) -> bool {
    bin.is_file() && crate::terraform::cli_version(bin).is_ok_and(|v| v == format!("OpenTofu v{version}"))
}

/// `bin` prepended to PATH.
pub fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap_or_default()
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{what}: starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
