//! `adf_lambda_package`: a reproducible Lambda zip built from Rust, Go or Ruby sources.
//!
//! Plan computes only the input hash (cheap: a walk and a hash of the sources, plus the
//! toolchain's version); the outputs are known at plan time when the cache holds that build.
//! Apply builds. The `adf_lambda_package` data source shares this schema and builds at read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use adf_packager::{Architecture, Artifact, Language, PackageError, PackageSpec};
use async_trait::async_trait;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, CreateError, Ctx, Diagnostic, Diagnostics, Dynamic, IntoDynamic,
    ObjectReader, Plan, PlanRequest, Resource, Schema, State, Type, Value,
};

use crate::config::AdfData;

pub(crate) const TYPE: &str = "adf_lambda_package";

/// The schema, shared with the data source.
pub(crate) fn schema(description: &str) -> Schema {
    let out = |name: &str, ty: Type, description: &str| Attribute::computed(name, ty, description).stable();
    Schema::new(
        0,
        Block::new(description)
            .optional(
                "source_dir",
                Type::String,
                "The project to build: a Cargo package (`rust`), a Go module (`go`) or Ruby sources (`ruby`). \
                 Relative paths start from the working directory; use `${path.module}/...`. Or `files`.",
            )
            .optional(
                "files",
                Type::map(Type::String),
                "Ruby only, instead of `source_dir`: small sources written inline, path to content, such as \
                 `{ \"function.rb\" = file(\"...\") }` or a heredoc. They are written once to the package cache, \
                 named by their hash.",
            )
            .required("language", Type::String, "`rust`, `go` or `ruby`.")
            .defaulted(
                "architecture",
                Type::String,
                "`x86_64` (default) or `arm64`. An arm64 Rust build needs `rustup target add \
                 aarch64-unknown-linux-gnu` and cargo-zigbuild.",
                "x86_64",
            )
            .optional(
                "package",
                Type::String,
                "Rust: the workspace member to build when `source_dir` is a workspace root (a member's own \
                 directory selects it already).",
            )
            .optional(
                "binary",
                Type::String,
                "Rust: the binary to ship as `bootstrap`, when the package has more than one (or, at a \
                 workspace root, to choose the member that has it).",
            )
            .optional_computed(
                "handler",
                Type::String,
                "Ruby: the handler as `file.method` or `file.Module::Class.method` (default \
                 `function.handler`); the plan checks that `file.rb` defines the method. Always `bootstrap` \
                 for Rust and Go.",
            )
            .optional(
                "excludes",
                Type::list(Type::String),
                "`.gitignore`-style patterns left out of the hash and the archive, on top of `.gitignore` files, \
                 `target/` and `.git/`.",
            )
            .computed(
                "input_hash",
                Type::String,
                "SHA-256 of everything the build reads, as the build tool sees it: the sources of the \
                 package and of its path dependencies (Rust) or locally replaced and workspace modules \
                 (Go), the lock file, the toolchain, the target and the build flags. A change means a \
                 rebuild; the plan shows it.",
            )
            .computed(
                "inputs",
                Type::map(Type::String),
                "A short digest of each part of the inputs (`crate <name>`, `Cargo.lock`, `workspace`, \
                 `module <path>`, `go.work`, `sources`, `toolchain`): a rebuild's plan shows which changed.",
            )
            .attribute(out("id", Type::String, "Same as `input_hash` of the last build."))
            .attribute(out("output_path", Type::String, "Path of the built zip, in the package cache."))
            .attribute(out(
                "source_code_hash",
                Type::String,
                "Base64 SHA-256 of the zip: exactly Lambda's `CodeSha256`.",
            ))
            .attribute(out("size", Type::Number, "Size of the zip in bytes."))
            .attribute(out("runtime", Type::String, "Lambda runtime: `provided.al2023` or `ruby3.3`.")),
    )
}

/// The spec of a wholly known configuration, or None while something is unknown.
pub(crate) fn spec_of(v: &Dynamic) -> Result<Option<PackageSpec>, Diagnostics> {
    let o = ObjectReader::new(v);
    let files: Value<BTreeMap<String, String>> = o.get("files")?;
    let source_dir: Value<String> = match files {
        Value::Known(files) => match adf_packager::inline_sources(&adf_packager::default_cache_dir(), &files) {
            Ok(dir) => Value::Known(dir.display().to_string()),
            Err(e) => {
                let d = Diagnostic::error(format!("building {TYPE}"), e.to_string());
                return Err(d.at(AttributePath::root().attr("files")).into());
            }
        },
        Value::Unknown => Value::Unknown,
        Value::Null => o.get("source_dir")?,
    };
    let language: Value<String> = o.get("language")?;
    let arch: Value<String> = o.get("architecture")?;
    let binary: Value<String> = o.get("binary")?;
    let package: Value<String> = o.get("package")?;
    let handler: Value<String> = o.get("handler")?;
    let excludes: Value<Vec<String>> = o.get("excludes")?;
    if [&source_dir, &language, &arch, &binary, &package].iter().any(|v| v.is_unknown()) || excludes.is_unknown() {
        return Ok(None);
    }
    let (Value::Known(dir), Value::Known(lang)) = (source_dir, language) else { return Ok(None) };
    let Some(language) = Language::parse(&lang) else { return Ok(None) };
    let Some(architecture) = Architecture::parse(&arch.known_or("x86_64".into())) else { return Ok(None) };
    // Rust and Go always use `bootstrap`; only Ruby takes a handler from the user. The
    // default is written out so that plan (handler unknown) and apply hash the same spec.
    let handler = (language == Language::Ruby)
        .then(|| handler.into_known().unwrap_or_else(|| adf_packager::DEFAULT_RUBY_HANDLER.to_string()));
    Ok(Some(PackageSpec {
        source_dir: PathBuf::from(dir),
        language,
        architecture,
        package: package.into_known(),
        binary: binary.into_known(),
        profile: None,
        handler,
        excludes: excludes.known_or(Vec::new()),
        cache_dir: adf_packager::default_cache_dir(),
    }))
}

/// Checks the values, and when they are known the directory and the toolchain.
pub(crate) fn validate(config: &Dynamic) -> Diagnostics {
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    let mut d = Diagnostics::new();
    if let Some(Value::Known(l)) = d.take(o.get::<Value<String>>("language"))
        && Language::parse(&l).is_none()
    {
        d.error_at(
            root.attr("language"),
            "Invalid language",
            format!("Expected \"rust\", \"go\" or \"ruby\", got {l:?}."),
        );
    }
    if let Some(Value::Known(a)) = d.take(o.get::<Value<String>>("architecture"))
        && Architecture::parse(&a).is_none()
    {
        d.error_at(
            root.attr("architecture"),
            "Invalid architecture",
            format!("Expected \"x86_64\" or \"arm64\", got {a:?}."),
        );
    }
    match (config.get("source_dir").is_null(), config.get("files").is_null()) {
        (true, true) if !config.is_null() => {
            d.error_at(root.clone(), "No sources", "Set source_dir, or files (Ruby) to write the sources inline.");
        }
        (false, false) => {
            d.error_at(root.attr("files"), "Two sources", "Set source_dir or files, not both.");
        }
        _ => {}
    }
    if !config.get("files").is_null()
        && let Some(Value::Known(l)) = d.take(o.get::<Value<String>>("language"))
        && l != "ruby"
    {
        d.error_at(
            root.attr("files"),
            "Inline sources are for Ruby",
            format!("A {l} build needs a project directory: set source_dir."),
        );
    }
    if d.has_errors() {
        return d;
    }
    match spec_of(config) {
        Ok(Some(spec)) => {
            if let Err(e) = adf_packager::check(&spec) {
                d.push(diagnostic(&spec, &e));
            }
        }
        Ok(None) => {}
        Err(e) => d.extend(e),
    }
    d
}

/// A packaging error as a diagnostic on the attribute it is about.
pub(crate) fn diagnostic(spec: &PackageSpec, e: &PackageError) -> Diagnostic {
    let at = match e {
        PackageError::MissingSourceDir(_) | PackageError::NotAProject { .. } => Some("source_dir"),
        PackageError::MissingTool { .. } | PackageError::GlibcTooNew { .. } => Some("language"),
        PackageError::MissingRustTarget { .. } | PackageError::WrongArchitecture { .. } => Some("architecture"),
        PackageError::Package(_) => Some("package"),
        PackageError::Binary(_) => Some(if spec.language == Language::Ruby { "handler" } else { "binary" }),
        _ => None,
    };
    let d = Diagnostic::error(format!("building {TYPE} ({})", spec.source_dir.display()), e.to_string());
    match at {
        Some(a) => d.at(AttributePath::root().attr(a)),
        None => d,
    }
}

/// Sets the outputs from `a`.
pub(crate) fn set_outputs(v: &mut Dynamic, a: &Artifact) {
    v.set("input_hash", a.input_hash.clone().into_dynamic());
    v.set("id", a.input_hash.clone().into_dynamic());
    v.set("output_path", a.path.display().to_string().into_dynamic());
    v.set("source_code_hash", a.source_code_hash.clone().into_dynamic());
    v.set("size", i64::try_from(a.size).unwrap_or(i64::MAX).into_dynamic());
    v.set("runtime", a.runtime.clone().into_dynamic());
    v.set("handler", a.handler.clone().into_dynamic());
    v.set("architecture", a.architecture.as_str().into_dynamic());
    v.set("inputs", a.inputs.clone().into_dynamic());
}

/// Builds off the async runtime (builds run compilers for minutes).
pub(crate) async fn build(spec: PackageSpec) -> Result<Artifact, Diagnostics> {
    let s = spec.clone();
    match tokio::task::spawn_blocking(move || adf_packager::build(&s)).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(diagnostic(&spec, &e).into()),
        Err(e) => Err(Diagnostic::error(format!("building {TYPE}"), e.to_string()).into()),
    }
}

/// The `adf_lambda_package` resource.
#[derive(Debug, Default)]
pub struct LambdaPackage;

impl LambdaPackage {
    async fn apply(&self, req: ApplyRequest) -> Result<State, Diagnostics> {
        let Some(spec) = spec_of(&req.planned)? else {
            return Err(Diagnostic::error(format!("building {TYPE}"), "the configuration is not wholly known").into());
        };
        let planned_hash = req.planned.get("input_hash").clone();
        let artifact = build(spec.clone()).await?;
        if let Dynamic::String(h) = &planned_hash
            && *h != artifact.input_hash
        {
            return Err(Diagnostic::error(
                format!("building {TYPE} ({})", spec.source_dir.display()),
                "The sources changed between plan and apply; run the plan again.",
            )
            .into());
        }
        let mut v = req.planned;
        set_outputs(&mut v, &artifact);
        Ok(State::new(v))
    }
}

#[async_trait]
impl Resource<AdfData> for LambdaPackage {
    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> Schema {
        schema(
            "Builds a Lambda deployment zip from Rust, Go or Ruby sources, reproducibly: the same sources and \
             toolchain give the same bytes and `source_code_hash`, so a function updates only when its code \
             really changed. Plans hash the sources without building; apply builds (or takes the build from \
             the cache).",
        )
    }

    async fn validate(&self, config: &Dynamic) -> Diagnostics {
        validate(config)
    }

    async fn modify_plan(&self, _ctx: &Ctx<AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let spec = match spec_of(&plan.planned) {
            Ok(Some(s)) => s,
            Ok(None) => {
                for k in ["output_path", "source_code_hash", "size", "runtime", "handler", "id", "input_hash", "inputs"]
                {
                    plan.planned.set(k, Dynamic::Unknown);
                }
                return Diagnostics::new();
            }
            Err(d) => return d,
        };
        let hash = {
            let s = spec.clone();
            tokio::task::spawn_blocking(move || {
                adf_packager::inputs(&s).map(|i| (adf_packager::cached(&s, &i.hash()), i.hash(), i.parts()))
            })
            .await
        };
        let (cached, hash, parts) = match hash {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return diagnostic(&spec, &e).into(),
            Err(e) => return Diagnostic::error(format!("hashing {TYPE}"), e.to_string()).into(),
        };
        if let Some(a) = cached {
            set_outputs(&mut plan.planned, &a);
        } else if req.prior.get("input_hash") != &Dynamic::String(hash.clone()) {
            for k in ["output_path", "source_code_hash", "size", "id"] {
                plan.planned.set(k, Dynamic::Unknown);
            }
        }
        // Known from the language alone, so dependents do not see them change on a rebuild.
        plan.planned.set("runtime", spec.language.runtime().into());
        let handler = match spec.language {
            Language::Ruby => spec.handler.clone().unwrap_or_else(|| adf_packager::DEFAULT_RUBY_HANDLER.to_string()),
            Language::Rust | Language::Go => "bootstrap".to_string(),
        };
        plan.planned.set("handler", handler.into_dynamic());
        plan.planned.set("input_hash", hash.into_dynamic());
        plan.planned.set("inputs", parts.into_dynamic());
        Diagnostics::new()
    }

    async fn create(&self, _ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, CreateError> {
        Ok(self.apply(req).await?)
    }

    async fn read(&self, _ctx: &Ctx<AdfData>, mut state: State) -> Result<Option<State>, Diagnostics> {
        // The zip lives on this machine. If it is gone (another machine, a cleaned cache),
        // forget the hash so that the plan shows a rebuild.
        let present = match (state.value.get("output_path"), state.value.get("size")) {
            (Dynamic::String(p), Dynamic::Number(n)) => {
                std::fs::metadata(p).map(|m| Some(m.len()) == n.as_u64()).unwrap_or(false)
            }
            _ => false,
        };
        if !present {
            tracing::info!("{TYPE}: the built zip is gone; planning a rebuild");
            state.value.set("input_hash", "".into());
        }
        Ok(Some(state))
    }

    async fn update(&self, _ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        self.apply(req).await
    }

    async fn delete(&self, _ctx: &Ctx<AdfData>, _state: State) -> Result<(), Diagnostics> {
        // The zip stays in the content-addressed cache, where other configurations may use it.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(source_dir: &str, language: &str, architecture: &str) -> Dynamic {
        let mut m = BTreeMap::new();
        m.insert("source_dir".to_string(), source_dir.into());
        m.insert("language".to_string(), language.into());
        m.insert("architecture".to_string(), architecture.into());
        Dynamic::Map(m)
    }

    fn errors_at(d: &Diagnostics) -> Vec<String> {
        d.0.iter().map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
    }

    #[test]
    fn bad_values_and_missing_directories_point_at_their_attribute() {
        assert_eq!(errors_at(&validate(&config("/nonexistent", "python", "x86_64"))), ["language"]);
        assert_eq!(errors_at(&validate(&config("/nonexistent", "go", "sparc"))), ["architecture"]);
        assert_eq!(errors_at(&validate(&config("/nonexistent/dir", "go", "x86_64"))), ["source_dir"]);
        let dir = std::env::temp_dir();
        let d = validate(&config(&dir.display().to_string(), "rust", "x86_64"));
        assert_eq!(errors_at(&d), ["source_dir"], "no Cargo.toml there: {d}");
    }

    #[test]
    fn unknown_inputs_leave_the_spec_open() {
        let mut c = config("x", "go", "x86_64");
        c.set("source_dir", Dynamic::Unknown);
        assert!(spec_of(&c).expect("spec").is_none());
        assert!(validate(&c).is_empty());
    }
}
