//! `adf workflow`: runs of a workflow's blueprints on its SQS queue and DynamoDB tables (those
//! of `adf_workflow_tables`), through `adf-workflow`'s client, store and reconciler.

mod cancel;
mod reconcile;
mod runs;
mod start;
mod status;
mod wait;

use std::path::{Path, PathBuf};

use adf_workflow::client::Client;
use adf_workflow::contract::WorkerSettings;
use adf_workflow::queue::Queue;
use adf_workflow::store::{Store, Tables};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;

/// The help heading of the options every workflow command takes.
const SETTINGS: &str = "Workflow settings";

/// `adf workflow` and the options every workflow command takes.
#[derive(Debug, Args)]
pub struct WorkflowArgs {
    /// The workflow's settings as JSON: `terraform output -json client_config > wf.json`.
    ///
    /// An object with `queue_url`, `contexts_table`, `statuses_table` and optionally `region`
    /// (which then wins over AWS_REGION and the profile's). --queue-url, --contexts-table and
    /// --statuses-table, and their environment variables, override its fields.
    #[arg(long, env = "ADF_WORKFLOW_CONFIG", global = true, value_name = "FILE", help_heading = SETTINGS)]
    config: Option<PathBuf>,
    /// The job queue's URL (needed by `start` and `reconcile`).
    #[arg(long, env = WorkerSettings::QUEUE_URL, global = true, value_name = "URL", help_heading = SETTINGS)]
    queue_url: Option<String>,
    /// The contexts table (run inputs, node outputs, blueprints).
    #[arg(long, env = WorkerSettings::CONTEXTS_TABLE, global = true, value_name = "TABLE", help_heading = SETTINGS)]
    contexts_table: Option<String>,
    /// The statuses table (one item per run, and the stalled-runs index).
    #[arg(long, env = WorkerSettings::STATUSES_TABLE, global = true, value_name = "TABLE", help_heading = SETTINGS)]
    statuses_table: Option<String>,
    #[command(subcommand)]
    command: WorkflowCommand,
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// Start a run of a blueprint's current version; prints the run id.
    Start(start::Start),
    /// Print a run's status, its completed nodes, its error or its output.
    Status(status::Status),
    /// Follow a run until it ends; exit 0 when it succeeded, 1 when it failed or was cancelled,
    /// 3 on timeout.
    Wait(wait::Wait),
    /// Cancel a running run: no node starts after this.
    Cancel(cancel::Cancel),
    /// List runs in flight whose state has not changed for a while (--stalled).
    Runs(runs::Runs),
    /// Send again the jobs stalled runs still need, once, and print what was done.
    Reconcile(reconcile::Reconcile),
}

/// Runs one workflow command.
pub async fn run(args: WorkflowArgs) -> Result<()> {
    let settings = Settings::resolve(&args)?;
    let needs_queue = matches!(args.command, WorkflowCommand::Start(_) | WorkflowCommand::Reconcile(_));
    let conn = Conn::connect(&settings, needs_queue).await?;
    match args.command {
        WorkflowCommand::Start(c) => c.run(&conn).await,
        WorkflowCommand::Status(c) => c.run(&conn).await,
        WorkflowCommand::Wait(c) => c.run(&conn).await,
        WorkflowCommand::Cancel(c) => c.run(&conn).await,
        WorkflowCommand::Runs(c) => c.run(&conn).await,
        WorkflowCommand::Reconcile(c) => c.run(&conn).await,
    }
}

/// The `--config` file: the `client_config` output of the workflow's Terraform resource.
/// Unknown fields are ignored, so the output may grow.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
struct ConfigFile {
    queue_url: Option<String>,
    contexts_table: Option<String>,
    statuses_table: Option<String>,
    region: Option<String>,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a workflow client config", path.display()))
    }

    /// The object itself; also the object as a JSON string (an output that is `jsonencode`d)
    /// and `terraform output -json`'s `{"value": ...}` wrapper.
    fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        match value {
            serde_json::Value::String(inner) => Self::parse(&inner),
            serde_json::Value::Object(ref o)
                if !o.contains_key("queue_url") && o.get("value").is_some_and(|v| v.is_object() || v.is_string()) =>
            {
                Self::parse(&o["value"].to_string())
            }
            serde_json::Value::Object(_) => Ok(serde_json::from_value(value)?),
            _ => anyhow::bail!("expected a JSON object with queue_url, contexts_table and statuses_table"),
        }
    }
}

/// Where the workflow is, from the options over the config file.
#[derive(Debug, PartialEq, Eq)]
struct Settings {
    queue_url: Option<String>,
    contexts_table: String,
    statuses_table: String,
    region: Option<String>,
}

impl Settings {
    fn resolve(args: &WorkflowArgs) -> Result<Self> {
        let file = args.config.as_deref().map(ConfigFile::read).transpose()?;
        Self::merge(args, file.unwrap_or_default())
    }

    fn merge(args: &WorkflowArgs, file: ConfigFile) -> Result<Self> {
        let pick = |arg: &Option<String>, file: Option<String>| arg.clone().filter(|v| !v.is_empty()).or(file);
        let missing = |option: &str, var: &str, field: &str| {
            anyhow::anyhow!(
                "no {option}: pass --{option} or set {var}, or pass --config with a {field} (the workflow's client_config output)"
            )
        };
        Ok(Self {
            queue_url: pick(&args.queue_url, file.queue_url),
            contexts_table: pick(&args.contexts_table, file.contexts_table)
                .ok_or_else(|| missing("contexts-table", WorkerSettings::CONTEXTS_TABLE, "contexts_table"))?,
            statuses_table: pick(&args.statuses_table, file.statuses_table)
                .ok_or_else(|| missing("statuses-table", WorkerSettings::STATUSES_TABLE, "statuses_table"))?,
            region: file.region.filter(|r| !r.is_empty()),
        })
    }
}

/// The workflow's store and queue.
pub struct Conn {
    store: Store,
    queue: Option<Queue>,
    sqs: aws_sdk_sqs::Client,
}

impl Conn {
    /// Clients from the standard AWS chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...),
    /// in the config file's region when it names one. No request is sent.
    async fn connect(settings: &Settings, needs_queue: bool) -> Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            anyhow::bail!("no AWS region: set AWS_REGION, or a region in the AWS profile or the --config file");
        }
        let tables = Tables { contexts: settings.contexts_table.clone(), statuses: settings.statuses_table.clone() };
        let store = Store::new(aws_sdk_dynamodb::Client::new(&config), tables);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue = settings.queue_url.as_ref().map(|url| Queue::new(sqs.clone(), url));
        if needs_queue && queue.is_none() {
            anyhow::bail!(
                "no queue URL: pass --queue-url or set {}, or pass --config with a queue_url \
                 (the workflow's client_config output)",
                WorkerSettings::QUEUE_URL
            );
        }
        Ok(Self { store, queue, sqs })
    }

    fn store(&self) -> &Store {
        &self.store
    }

    /// The job queue (checked at connect for the commands that send jobs).
    fn queue(&self) -> Result<&Queue> {
        self.queue.as_ref().context("no queue URL")
    }

    /// A client. `status`, `wait` and `cancel` only read and write the statuses table, so
    /// they work without the queue's URL; the client then holds a queue it never sends to.
    fn client(&self) -> Client {
        let queue = self.queue.clone().unwrap_or_else(|| Queue::new(self.sqs.clone(), ""));
        Client::new(self.store.clone(), queue)
    }
}

/// Parses `args` (the command's name first) into the options of one command.
#[cfg(test)]
fn parse_args<T: Args>(args: &[&str]) -> Result<T, clap::Error> {
    let mut matches = T::augment_args(clap::Command::new("adf")).try_get_matches_from(args)?;
    T::from_arg_matches_mut(&mut matches)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        workflow: WorkflowArgs,
    }

    fn parse(args: &[&str]) -> Result<Top, clap::Error> {
        Top::try_parse_from(std::iter::once("adf").chain(args.iter().copied()))
    }

    #[test]
    fn common_options_go_before_or_after_the_command() -> Result<(), clap::Error> {
        let parsed = parse(&["--queue-url", "http://q", "status", "r1", "--contexts-table", "c"])?;
        assert_eq!(parsed.workflow.queue_url.as_deref(), Some("http://q"));
        assert_eq!(parsed.workflow.contexts_table.as_deref(), Some("c"));
        let parsed = parse(&["cancel", "r1", "--config", "wf.json"])?;
        assert_eq!(parsed.workflow.config, Some(PathBuf::from("wf.json")));
        Ok(())
    }

    #[test]
    fn every_command_needs_its_arguments() {
        for args in [&["status"][..], &["wait"], &["cancel"], &["start"], &["runs"], &["status", "a", "b"]] {
            let e = parse(args).expect_err("a usage error");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn the_config_file_is_the_client_config_output() -> Result<()> {
        let want = ConfigFile {
            queue_url: Some("https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".into()),
            contexts_table: Some("orders-contexts".into()),
            statuses_table: Some("orders-statuses".into()),
            region: Some("eu-west-1".into()),
        };
        let object = r#"{"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs",
            "contexts_table": "orders-contexts", "statuses_table": "orders-statuses",
            "region": "eu-west-1", "dlq_url": "ignored"}"#;
        assert_eq!(ConfigFile::parse(object)?, want);
        assert_eq!(ConfigFile::parse(&serde_json::Value::String(object.into()).to_string())?, want);
        assert_eq!(
            ConfigFile::parse(&format!(r#"{{"sensitive": false, "type": "object", "value": {object}}}"#))?,
            want
        );
        assert_eq!(ConfigFile::parse(r#"{"contexts_table": "c"}"#)?.region, None);
        assert!(ConfigFile::parse("[1]").is_err());
        assert!(ConfigFile::parse("not json").is_err());
        Ok(())
    }

    #[test]
    fn options_override_the_config_file() -> Result<()> {
        let file = || ConfigFile {
            queue_url: Some("file-q".into()),
            contexts_table: Some("file-c".into()),
            statuses_table: Some("file-s".into()),
            region: Some("eu-west-1".into()),
        };
        let args = parse(&["--statuses-table", "flag-s", "status", "r"])?.workflow;
        let s = Settings::merge(&args, file())?;
        assert_eq!(
            s,
            Settings {
                queue_url: Some("file-q".into()),
                contexts_table: "file-c".into(),
                statuses_table: "flag-s".into(),
                region: Some("eu-west-1".into()),
            }
        );
        Ok(())
    }

    #[test]
    fn missing_tables_name_the_option_the_variable_and_the_config() -> Result<()> {
        let args = parse(&["--contexts-table", "c", "status", "r"])?.workflow;
        let e = Settings::merge(&args, ConfigFile::default()).expect_err("no statuses table");
        let text = e.to_string();
        for part in ["--statuses-table", "ADF_STATUSES_TABLE", "--config", "client_config"] {
            assert!(text.contains(part), "{text}");
        }
        let s = Settings::merge(&args, ConfigFile { statuses_table: Some("s".into()), ..ConfigFile::default() })?;
        assert_eq!(s.queue_url, None);
        Ok(())
    }
}
