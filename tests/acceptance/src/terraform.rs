//! Runs the real `terraform` or `tofu` (the one `ADF_TF` names, see [`cli`]) in a temporary
//! directory against the provider binary this workspace built, through a `dev_overrides` CLI
//! config (no `init` needed; `init`, which modules need, installs it from a local mirror).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The CLI to run, from `ADF_TF`: `terraform` (on PATH), `tofu` (the OpenTofu that `cargo xtask
/// test` and `demo` build, else `tofu` on PATH) or a path. Unset: `terraform` on PATH, else the
/// project-built OpenTofu, else `tofu` on PATH.
pub fn cli() -> Result<PathBuf> {
    let built_tofu = || crate::tools::tofu_path(&crate::repo_root()).ok().filter(|p| p.is_file());
    match std::env::var("ADF_TF").ok().as_deref() {
        Some("terraform") => find_on_path("terraform").context("ADF_TF=terraform but terraform is not on PATH"),
        Some("tofu") => built_tofu().or_else(|| find_on_path("tofu")).context(
            "ADF_TF=tofu but OpenTofu is not built (`cargo xtask test` or `demo` builds it) and tofu is not on PATH",
        ),
        Some(path) if !path.is_empty() => {
            let p = PathBuf::from(path);
            if !p.is_file() {
                bail!("ADF_TF={path}: no such file (ADF_TF is terraform, tofu or a path to either)");
            }
            Ok(p)
        }
        _ => find_on_path("terraform").or_else(built_tofu).or_else(|| find_on_path("tofu")).context(
            "no Terraform CLI: terraform is not on PATH and OpenTofu is not built \
             (`cargo xtask test` builds it; or set ADF_TF to terraform, tofu or a path)",
        ),
    }
}

/// The version line of `<cli> version`, e.g. `Terraform v1.11.4` or `OpenTofu v1.12.6`
/// (OpenTofu prints CLI config warnings before it, on stdout).
pub fn cli_version(cli: &Path) -> Result<String> {
    let out = Command::new(cli)
        .arg("version")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .with_context(|| format!("running {} version", cli.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("Terraform v") || l.starts_with("OpenTofu v"))
        .map(str::to_string)
        .with_context(|| format!("{} version printed no version: {stdout}", cli.display()))
}

/// The provider's full address as the CLI in use resolves `activedataflow/adf`: OpenTofu's
/// default registry is `registry.opentofu.org`, Terraform's `registry.terraform.io`.
pub fn provider_address() -> Result<String> {
    Ok(format!("{}/activedataflow/adf", registry_host(&cli()?)?))
}

/// Terraform's default registry host.
pub const TERRAFORM_REGISTRY: &str = "registry.terraform.io";
/// OpenTofu's default registry host.
pub const OPENTOFU_REGISTRY: &str = "registry.opentofu.org";

/// Every CLI at hand: `terraform` on PATH and the project-built (else PATH's) OpenTofu.
pub fn every_cli() -> Vec<PathBuf> {
    let tofu =
        crate::tools::tofu_path(&crate::repo_root()).ok().filter(|p| p.is_file()).or_else(|| find_on_path("tofu"));
    find_on_path("terraform").into_iter().chain(tofu).collect()
}

/// The registry host a CLI resolves `activedataflow/adf` on.
pub fn registry_host(cli: &Path) -> Result<&'static str> {
    Ok(if cli_version(cli)?.starts_with("OpenTofu") { OPENTOFU_REGISTRY } else { TERRAFORM_REGISTRY })
}

/// `name` in a directory of PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The directory holding the `terraform-provider-adf` binary: `ADF_PROVIDER_DIR`, else the
/// cargo target directory (profile) the running binary was built in.
pub fn provider_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("ADF_PROVIDER_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            // target/<profile>/deps/<test binary>, or target/<profile>/<binary> (xtask).
            let exe = std::env::current_exe()?;
            let dir = exe.parent().context("locating the target directory")?;
            if dir.ends_with("deps") { dir.parent().unwrap_or(dir) } else { dir }.to_path_buf()
        }
    };
    let bin = dir.join("terraform-provider-adf");
    if !bin.is_file() {
        bail!(
            "{} is missing: run `cargo build -p terraform-provider-adf` first (`cargo xtask test` does it)",
            bin.display()
        );
    }
    Ok(dir)
}

/// Copies a directory tree, leaving out build outputs and Terraform's own files.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if [".terraform", ".terraform.lock.hcl", "target", "terraform.tfstate"].iter().any(|n| name == *n) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// A filesystem mirror (unpacked layout) holding the binary in `provider` as both registries'
/// `activedataflow/adf`, at the workspace's version.
fn lay_out_mirror(mirror: &Path, provider: &Path) -> Result<()> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let platform = format!("{}_{arch}", std::env::consts::OS);
    let bin = provider.join("terraform-provider-adf");
    for host in [TERRAFORM_REGISTRY, OPENTOFU_REGISTRY] {
        let dir = mirror.join(host).join("activedataflow/adf").join(env!("CARGO_PKG_VERSION")).join(&platform);
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(&bin, dir.join("terraform-provider-adf"))?;
        #[cfg(not(unix))]
        std::fs::copy(&bin, dir.join("terraform-provider-adf.exe"))?;
    }
    Ok(())
}

/// What one command printed, and how it ended.
#[derive(Debug)]
pub struct TfOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl TfOutput {
    /// Fails with both outputs unless the exit code is 0.
    pub fn ok(self) -> Result<Self> {
        if self.code != 0 {
            bail!("terraform exited {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr);
        }
        Ok(self)
    }
}

/// A Terraform working directory wired to the provider and an AWS endpoint.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Where commands run: `dir` or a directory in it.
    work: PathBuf,
    cli: PathBuf,
    endpoint: String,
    env: Vec<(String, String)>,
    removed: Vec<String>,
}

impl Workspace {
    /// A new empty working directory for `endpoint`, using the provider binary next to the
    /// test binaries (or in `ADF_PROVIDER_DIR`).
    pub fn new(endpoint: &str) -> Result<Self> {
        Self::with_provider(endpoint, &provider_dir()?)
    }

    /// A new empty working directory for `endpoint`, using the provider binary in `provider`.
    pub fn with_provider(endpoint: &str, provider: &Path) -> Result<Self> {
        // Both registries' addresses, so `activedataflow/adf` (and either full address) reaches
        // the binary under Terraform and OpenTofu alike.
        let rc = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{TERRAFORM_REGISTRY}/activedataflow/adf\" = \"{dir}\"\n    \
             \"{OPENTOFU_REGISTRY}/activedataflow/adf\" = \"{dir}\"\n  }}\n  direct {{}}\n}}\n",
            dir = provider.display()
        );
        Self::with_cli_config(endpoint, &cli()?, &rc)
    }

    /// A new empty working directory for `endpoint`, run by the CLI at `cli` with the CLI
    /// configuration `rc` (how it installs providers: a mirror, say, instead of dev overrides).
    pub fn with_cli_config(endpoint: &str, cli: &Path, rc: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("adf-acc-").tempdir()?;
        std::fs::write(dir.path().join("cli.tfrc"), rc)?;
        let env = vec![("ADF_PACKAGE_CACHE".to_string(), crate::package_cache().display().to_string())];
        Ok(Self {
            work: dir.path().to_path_buf(),
            dir,
            cli: cli.to_path_buf(),
            endpoint: endpoint.to_string(),
            env,
            removed: Vec::new(),
        })
    }

    /// The same workspace with `key=value` in every command's environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The same workspace with `key` unset in every command's environment (the test
    /// credentials included).
    pub fn without_env(mut self, key: &str) -> Self {
        self.removed.push(key.to_string());
        self
    }

    /// The directory commands run in.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// Copies a configuration directory in (without build outputs or Terraform's own files).
    pub fn copy_from(&self, dir: &Path) -> Result<()> {
        copy_tree(dir, &self.work)
    }

    /// Copies `dirs` of the repository (such as `modules` and `examples/terraform/quickstart`)
    /// to the same paths in the workspace, so relative module sources between them resolve,
    /// and runs every later command in the last one.
    pub fn with_repo_dirs(mut self, dirs: &[&str]) -> Result<Self> {
        let root = crate::repo_root();
        for dir in dirs {
            copy_tree(&root.join(dir), &self.dir.path().join(dir))?;
        }
        if let Some(last) = dirs.last() {
            self.work = self.dir.path().join(last);
        }
        Ok(self)
    }

    /// Replaces `main.tf`.
    pub fn write(&self, hcl: &str) -> Result<()> {
        std::fs::write(self.work.join("main.tf"), hcl)?;
        Ok(())
    }

    /// `init` with `args`, which must succeed: installs modules, and the provider from a local
    /// mirror of the binary that `dev_overrides` run (no registry has it).
    pub fn init(&self, args: &[&str]) -> Result<TfOutput> {
        self.init_in(&self.work, args)
    }

    /// [`Workspace::init`] in `dir` (a directory of the workspace).
    pub fn init_in(&self, dir: &Path, args: &[&str]) -> Result<TfOutput> {
        let mirror = self.dir.path().join("mirror");
        if !mirror.exists() {
            lay_out_mirror(&mirror, &provider_dir()?)?;
        }
        let plugin_dir = format!("-plugin-dir={}", mirror.display());
        self.run_in(dir, &[&["init", "-no-color", plugin_dir.as_str()], args].concat())?.ok()
    }

    /// Runs the CLI with `args`, returning whatever happened.
    pub fn run(&self, args: &[&str]) -> Result<TfOutput> {
        self.run_in(&self.work, args)
    }

    /// Runs the CLI with `args` in `dir` (a directory of the workspace).
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Result<TfOutput> {
        let mut command = Command::new(&self.cli);
        command
            .args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", crate::REGION)
            .env_remove("AWS_PROFILE")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for key in &self.removed {
            command.env_remove(key);
        }
        let out = command.output().with_context(|| format!("running {}", self.cli.display()))?;
        Ok(TfOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `apply -auto-approve`, which must succeed.
    pub fn apply(&self) -> Result<TfOutput> {
        self.run(&["apply", "-auto-approve", "-no-color"])?.ok()
    }

    /// `plan -detailed-exitcode`: 0 when empty, 2 when there are changes.
    pub fn plan_code(&self) -> Result<TfOutput> {
        let out = self.run(&["plan", "-detailed-exitcode", "-no-color"])?;
        if out.code == 1 {
            bail!("plan failed\n{}\n{}", out.stdout, out.stderr);
        }
        Ok(out)
    }

    /// Fails unless a plan is empty.
    pub fn assert_empty_plan(&self) -> Result<()> {
        let out = self.plan_code()?;
        if out.code != 0 {
            bail!("expected an empty plan, got changes:\n{}", out.stdout);
        }
        Ok(())
    }

    /// `destroy -auto-approve`, which must succeed.
    pub fn destroy(&self) -> Result<TfOutput> {
        self.run(&["destroy", "-auto-approve", "-no-color"])?.ok()
    }

    /// The `values` of resource `address` in `terraform show -json`.
    pub fn state_values(&self, address: &str) -> Result<serde_json::Value> {
        let out = self.run(&["show", "-json"])?.ok()?;
        let v: serde_json::Value = serde_json::from_str(&out.stdout)?;
        let resources = v["values"]["root_module"]["resources"].as_array().cloned().unwrap_or_default();
        resources
            .into_iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
            .with_context(|| format!("{address} is not in the state"))
    }

    /// Addresses in the state.
    pub fn state_list(&self) -> Result<Vec<String>> {
        let out = self.run(&["state", "list"])?;
        Ok(out.stdout.lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
    }

    /// The error diagnostics of a `plan -json` that must fail (exit code 1), as JSON objects
    /// (`summary`, `detail`, `snippet`, `range`).
    pub fn plan_error_diagnostics(&self) -> Result<Vec<serde_json::Value>> {
        let out = self.run(&["plan", "-json", "-no-color"])?;
        if out.code != 1 {
            bail!("expected the plan to fail:\n{}", out.stdout);
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["type"] == "diagnostic" && l["diagnostic"]["severity"] == "error")
            .map(|l| l["diagnostic"].clone())
            .collect())
    }

    /// The error diagnostics of a `plan` that must fail, as ("summary detail", the code of the
    /// snippet they point at).
    pub fn plan_errors(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .plan_error_diagnostics()?
            .iter()
            .map(|d| {
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                (
                    format!("{} {}", text("summary"), text("detail")),
                    d["snippet"]["code"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// Fails unless a `plan` fails with an error whose text contains `message` and whose snippet
    /// contains `attribute` (the attribute it points at).
    pub fn assert_plan_error(&self, message: &str, attribute: &str) -> Result<()> {
        let errors = self.plan_errors()?;
        if !errors.iter().any(|(m, code)| m.contains(message) && code.contains(attribute)) {
            bail!("expected {message:?} at {attribute}: {errors:?}");
        }
        Ok(())
    }

    /// The machine-readable plan (`plan -json` lines) as JSON values.
    pub fn plan_json(&self) -> Result<(i32, Vec<serde_json::Value>)> {
        let out = self.run(&["plan", "-json", "-detailed-exitcode"])?;
        let lines = out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        Ok((out.code, lines))
    }

    /// The saved plan's `resource_changes` (with `before` and `after` values) and the plan's
    /// exit code (0: no changes, 2: changes).
    pub fn resource_changes(&self) -> Result<(i32, Vec<serde_json::Value>)> {
        let out = self.run(&["plan", "-out=adf.tfplan", "-detailed-exitcode", "-no-color"])?;
        if out.code == 1 {
            bail!("plan failed\n{}\n{}", out.stdout, out.stderr);
        }
        let shown = self.run(&["show", "-json", "adf.tfplan"])?.ok()?;
        let v: serde_json::Value = serde_json::from_str(&shown.stdout)?;
        Ok((out.code, v["resource_changes"].as_array().cloned().unwrap_or_default()))
    }
}
