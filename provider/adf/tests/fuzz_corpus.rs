//! Replays the fuzz targets' regression corpus (`fuzz/corpus/<target>/`, seeds and what
//! `cargo xtask fuzz` kept) as an ordinary test: no input may panic or reach the provider's
//! panic guard.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn the_dynamic_value_corpus_decodes_or_fails_without_a_panic() {
    let inputs = corpus("dynamic_value");
    assert!(inputs.len() >= 9, "the seeds are there: {}", inputs.len());
    for (_, data) in &inputs {
        adf::fuzzing::dynamic_value(data);
    }
}

#[test]
fn the_provider_rpc_corpus_gets_answers_not_panics() {
    let inputs = corpus("provider_rpc");
    assert!(inputs.len() >= 100, "the seeds are there: {}", inputs.len());
    let findings: Vec<String> = inputs
        .iter()
        .filter_map(|(name, data)| adf::fuzzing::provider_rpc(data).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(findings.is_empty(), "{findings:#?}");
}
