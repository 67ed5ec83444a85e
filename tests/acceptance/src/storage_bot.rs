//! The quickstart's bot (a Rust Lambda bound to a KV namespace, a bucket and a cache), run from
//! its deployed zip under the local Lambda runner: KV puts and a listing, an upload through a
//! presigned URL, a multipart upload, and reads through the cache. The demo prints what this
//! returns; the quickstart test asserts it.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::lambda_runner::{LambdaRunner, deployed};
use crate::{Emulator, sdk_config};

/// One step: what it did, what the function answered, and the AWS requests it took.
#[derive(Debug)]
pub struct Step {
    /// What the step did.
    pub label: &'static str,
    /// The function's answer (or what the step checked).
    pub answer: Value,
    /// Requests the emulator served during the step.
    pub requests: usize,
}

/// The size of the multipart upload, MiB (three parts of at most 5 MiB).
const MULTIPART_MIB: u64 = 12;

/// Runs the deployed bot `function` from `zip` and checks each answer; the steps in order.
pub async fn exercise(emu: &Emulator, zip: &Path, function: &str) -> Result<Vec<Step>> {
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    let runner = LambdaRunner::start(&deployed(&lambda, function, zip, emu.endpoint()).await?).await?;
    let http = reqwest::Client::new();
    let mut steps = Vec::new();
    let mut step = |label, answer: Value, before: usize| {
        steps.push(Step { label, answer, requests: emu.request_count() - before });
    };

    let before = emu.request_count();
    let kv = runner.invoke(&json!({ "op": "kv" })).await?;
    ensure!(kv["keys"] == json!(["user:ada", "user:grace", "user:linus"]) && kv["complete"] == true, "{kv}");
    ensure!(kv["ada"] == json!({ "name": "ada" }), "{kv}");
    step("KV: 3 puts with TTL and metadata, a prefix listing, a get", kv, before);

    let before = emu.request_count();
    let key = "uploads/hello.txt";
    let urls = runner.invoke(&json!({ "op": "presign", "key": key })).await?;
    let body = "uploaded by a browser through a presigned URL";
    let put = urls["put"].as_str().context("no presigned PUT URL")?;
    let status = http.put(put).body(body).send().await?.status();
    ensure!(status.is_success(), "the presigned PUT answered {status}");
    let head = runner.invoke(&json!({ "op": "head", "key": key })).await?;
    ensure!(head["size"] == body.len(), "{head}");
    let got = http.get(urls["get"].as_str().context("no presigned GET URL")?).send().await?.text().await?;
    ensure!(got == body, "the presigned GET returned {got:?}");
    step("Objects: presigned PUT and GET (by HTTP, as a browser), then head", head, before);

    let before = emu.request_count();
    let mp = runner.invoke(&json!({ "op": "multipart", "key": "big/blob.bin", "mib": MULTIPART_MIB })).await?;
    ensure!(mp["parts"] == 3 && mp["size"] == MULTIPART_MIB << 20, "{mp}");
    step("Objects: a 12 MiB multipart upload in 3 parts", mp, before);

    let before = emu.request_count();
    let first = runner.invoke(&json!({ "op": "cache", "key": "answer" })).await?;
    let second = runner.invoke(&json!({ "op": "cache", "key": "answer" })).await?;
    ensure!(first["computed"] == 1 && second["computed"] == 1, "computed twice: {first} {second}");
    ensure!(first["value"] == second["value"], "{first} {second}");
    step("Cache: a miss (computed and stored), then a hit", second, before);
    Ok(steps)
}

/// Makes the bot of a copy of the quickstart at `quickstart` (outside this repository) the
/// repository's own, by a symlink, so that its relative path dependency on `adf-storage`
/// resolves. The packager follows the link: the bot's inputs, its input hash and its cached
/// zip are the same as in the repository, whatever the copy's path.
pub fn link_to_repo(quickstart: &Path) -> Result<()> {
    let bot = quickstart.join("bot");
    let repo_bot = crate::repo_root().join("examples/terraform/quickstart/bot");
    ensure!(repo_bot.join("Cargo.toml").is_file(), "{} is not the bot", repo_bot.display());
    if bot.exists() {
        std::fs::remove_dir_all(&bot).with_context(|| bot.display().to_string())?;
    }
    std::os::unix::fs::symlink(&repo_bot, &bot).with_context(|| bot.display().to_string())?;
    Ok(())
}
