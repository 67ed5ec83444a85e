//! The `adf` binary's exit codes and error lines (the acceptance tests run it against the
//! real stream Lambda; `workflow.rs` runs `adf workflow` against moto).

use std::process::{Command, Output};

fn adf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adf"))
        .args(args)
        .env_remove("ADF_STREAM_URL")
        .env_remove("ADF_STREAM_TOPIC")
        .env_remove("ADF_WORKFLOW_CONFIG")
        .env_remove("ADF_QUEUE_URL")
        .env_remove("ADF_CONTEXTS_TABLE")
        .env_remove("ADF_STATUSES_TABLE")
        .output()
        .expect("running adf")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn failures_are_one_line_and_exit_1() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let url = format!("http://{closed}/");
    for args in [
        vec!["stream", "describe", "--url", &url, "--topic", "t", "--auth", "none"],
        vec!["stream", "consume", "--topic", "t", "--auth", "none"],
        vec!["stream", "produce", "--url", "not a url", "--topic", "t", "--auth", "none", "v"],
    ] {
        let out = adf(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("adf: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(stderr(&adf(&["stream", "consume", "--topic", "t", "--auth", "none"])).contains("ADF_STREAM_URL"));
}

#[test]
fn workflow_settings_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let not_json = dir.path().join("wf.json");
    std::fs::write(&not_json, "{").expect("writing");
    let not_json = not_json.to_string_lossy().into_owned();
    let missing = dir.path().join("missing.json").to_string_lossy().into_owned();
    for (args, says) in [
        (vec!["workflow", "status", "r1"], "ADF_CONTEXTS_TABLE"),
        (vec!["workflow", "--contexts-table", "c", "cancel", "r1"], "ADF_STATUSES_TABLE"),
        (vec!["workflow", "--config", &not_json, "status", "r1"], "is not a workflow client config"),
        (vec!["workflow", "--config", &missing, "status", "r1"], "missing.json"),
    ] {
        let out = adf(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("adf: ") && err.lines().count() == 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["stream", "consume", "--commit"],
        vec!["stream", "tail", "--auth", "basic"],
        vec!["nothing"],
        vec!["workflow", "runs"],
        vec!["workflow", "start"],
        vec!["workflow", "wait", "r1", "--timeout", "soon"],
        vec!["workflow", "status"],
    ] {
        let out = adf(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn help_lists_every_stream_command() {
    let out = adf(&["stream", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["produce", "consume", "tail", "describe"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn help_lists_every_workflow_command() {
    let out = adf(&["workflow", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["start", "status", "wait", "cancel", "runs", "reconcile", "--config", "ADF_QUEUE_URL"] {
        assert!(help.contains(command), "{help}");
    }
}
