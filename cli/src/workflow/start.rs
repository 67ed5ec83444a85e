//! `adf workflow start`: starts a run of a blueprint's current version and prints its id, alone
//! on its line, so `RUN=$(adf workflow start ...)` works.

use std::path::PathBuf;

use adf_workflow::client::Client;
use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::Conn;
use crate::output;

#[derive(Debug, Args)]
pub struct Start {
    /// The blueprint's name, as deployed (its current version runs).
    #[arg(long, short, value_name = "NAME")]
    blueprint: String,
    /// The run's input: JSON, `@FILE` for the JSON in a file, or `-` for standard input.
    #[arg(long, short, default_value = "{}", value_name = "JSON", value_parser = Input::parse)]
    input: Input,
}

/// Where the input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Json(String),
    File(PathBuf),
    Stdin,
}

impl Input {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "-" => Self::Stdin,
            _ => match text.strip_prefix('@') {
                Some("") => return Err("@ needs a file name: --input @input.json".into()),
                Some(path) => Self::File(path.into()),
                None => Self::Json(text.to_string()),
            },
        })
    }

    async fn read(&self) -> Result<Value> {
        let (text, from) = match self {
            Self::Json(text) => (text.clone(), "--input".to_string()),
            Self::File(path) => (
                tokio::fs::read_to_string(path).await.with_context(|| format!("reading {}", path.display()))?,
                path.display().to_string(),
            ),
            Self::Stdin => {
                let mut text = String::new();
                tokio::io::stdin().read_to_string(&mut text).await.context("reading standard input")?;
                (text, "standard input".to_string())
            }
        };
        serde_json::from_str(&text).with_context(|| format!("the input in {from} is not JSON"))
    }
}

impl Start {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let input = self.input.read().await?;
        let client = Client::new(conn.store().clone(), conn.queue()?.clone());
        let run = client.start(&self.blueprint, &input).await?;
        output::line(&run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::parse_args;

    fn input(args: &[&str]) -> Result<Input, clap::Error> {
        let all: Vec<&str> = ["start", "--blueprint", "order"].into_iter().chain(args.iter().copied()).collect();
        Ok(parse_args::<Start>(&all)?.input)
    }

    #[test]
    fn the_input_is_json_a_file_or_standard_input() -> Result<(), clap::Error> {
        assert_eq!(input(&[])?, Input::Json("{}".into()));
        assert_eq!(input(&["--input", r#"{"order":1}"#])?, Input::Json(r#"{"order":1}"#.into()));
        assert_eq!(input(&["-i", "@in.json"])?, Input::File("in.json".into()));
        assert_eq!(input(&["--input", "-"])?, Input::Stdin);
        assert!(input(&["--input", "@"]).is_err());
        assert!(parse_args::<Start>(&["start"]).is_err());
        Ok(())
    }

    #[tokio::test]
    async fn inputs_are_read_and_parsed() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("in.json");
        std::fs::write(&path, r#"{"order": 7}"#)?;
        assert_eq!(Input::File(path).read().await?, serde_json::json!({"order": 7}));
        assert_eq!(Input::Json("[1, 2]".into()).read().await?, serde_json::json!([1, 2]));
        let e = Input::Json("{order".into()).read().await.expect_err("not JSON");
        assert!(format!("{e:#}").starts_with("the input in --input is not JSON: "), "{e:#}");
        let e = Input::File(dir.path().join("missing.json")).read().await.expect_err("no file");
        assert!(e.to_string().contains("missing.json"), "{e}");
        Ok(())
    }
}
