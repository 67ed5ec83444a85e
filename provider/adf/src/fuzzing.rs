//! Entry points for the fuzz targets (`fuzz/`, run with `cargo xtask fuzz`) and for the test
//! that replays their regression corpus (`tests/fuzz_corpus.rs`): arbitrary bytes in, and an
//! error only for a finding (a panic, in the decoder or behind an RPC's panic guard).
//!
//! Each RPC input is split into the parts an RPC takes: an RPC selector, a type selector (the
//! provider's resource and data source names, so that inputs reach the handlers) and up to three
//! values, each Terraform's msgpack or JSON encoding by its first byte.

use std::sync::OnceLock;

use tfplug::proto::tfplugin6 as pb;
use tfplug::proto::tfplugin6::provider_server::Provider as _;
use tfplug::{Dynamic, Provider as _, ProviderService, Type};

use crate::AdfProvider;

/// What the provider's panic guard answers: any diagnostic with this summary is a finding.
const PANIC_SUMMARY: &str = "Provider internal error";

/// Resource and data-source types whose plan, apply, read and import build or package code
/// from the paths they are given (they run `cargo`): only their validation and state upgrades
/// are fuzzed.
const BUILDS: &[&str] = &["adf_lambda_package"];

/// Decodes `data` as a msgpack value and, typed as a map of strings, as a JSON one. Decoding
/// may fail; it may not panic (a panic is the finding).
pub fn dynamic_value(data: &[u8]) {
    let _ = Dynamic::from_msgpack(data);
    let _ = Dynamic::from_json(data, &Type::Map(Box::new(Type::String)));
    if let Some((&kind, rest)) = data.split_first() {
        let _ = Dynamic::from_json(rest, &ty_from(kind));
    }
}

/// A type picked by one byte, nested up to two levels.
fn ty_from(b: u8) -> Type {
    let leaf = match b & 3 {
        0 => Type::String,
        1 => Type::Number,
        2 => Type::Bool,
        _ => Type::Object([("a".to_string(), Type::String), ("b".to_string(), Type::Number)].into()),
    };
    match (b >> 2) & 3 {
        0 => leaf,
        1 => Type::list(leaf),
        2 => Type::Map(Box::new(leaf)),
        _ => Type::Object([("x".to_string(), Type::list(leaf)), ("y".to_string(), Type::Bool)].into()),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime")
    })
}

fn service() -> &'static (ProviderService<AdfProvider>, Vec<String>, Vec<String>) {
    static SVC: OnceLock<(ProviderService<AdfProvider>, Vec<String>, Vec<String>)> = OnceLock::new();
    SVC.get_or_init(|| {
        let p = AdfProvider;
        let resources = p.resources().iter().map(|r| r.type_name().to_string()).collect();
        let data = p.data_sources().iter().map(|d| d.type_name().to_string()).collect();
        (ProviderService::new(AdfProvider), resources, data)
    })
}

/// The next length-prefixed part of `data` (one length byte).
fn part<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((&n, rest)) = data.split_first() else { return &[] };
    let n = usize::from(n).min(rest.len());
    let (head, tail) = rest.split_at(n);
    *data = tail;
    head
}

/// A value: msgpack when its first byte is even, JSON otherwise; none when empty.
fn value(bytes: &[u8]) -> Option<pb::DynamicValue> {
    let (&kind, body) = bytes.split_first()?;
    Some(if kind % 2 == 0 {
        pb::DynamicValue { msgpack: body.to_vec(), json: Vec::new() }
    } else {
        pb::DynamicValue { msgpack: Vec::new(), json: body.to_vec() }
    })
}

/// One RPC of the (unconfigured) provider server with arbitrary config, plan and state
/// values. `Err` names the RPC and the panic when a handler panicked.
pub fn provider_rpc(mut data: &[u8]) -> Result<(), String> {
    let (svc, resources, data_sources) = service();
    let [rpc, pick] =
        [part(&mut data).first().copied(), part(&mut data).first().copied()].map(Option::unwrap_or_default);
    let (a, b, c) = (value(part(&mut data)), value(part(&mut data)), value(part(&mut data)));
    let resource = resources[usize::from(pick) % resources.len()].clone();
    let data_source = data_sources[usize::from(pick) % data_sources.len()].clone();
    // Plan, apply, read and import of a type that builds code, and reading its data source.
    let builds = BUILDS.contains(&if rpc % 10 == 9 { data_source.as_str() } else { resource.as_str() });
    let svc = svc.clone();
    let text = data.to_vec();
    let diagnostics: Vec<pb::Diagnostic> = runtime().block_on(async move {
        use tonic::Request;
        let r = match rpc % 10 {
            0 => {
                let req =
                    pb::validate_resource_config::Request { type_name: resource, config: a, ..Default::default() };
                svc.validate_resource_config(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            1 => {
                let req = pb::validate_data_resource_config::Request { type_name: data_source, config: a };
                svc.validate_data_resource_config(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            2 => {
                let req = pb::validate_provider_config::Request { config: a };
                svc.validate_provider_config(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            3 => {
                let raw = pb::RawState { json: text, ..Default::default() };
                let version = i64::from(pick % 4);
                let req = pb::upgrade_resource_state::Request { type_name: resource, version, raw_state: Some(raw) };
                svc.upgrade_resource_state(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            _ if builds => Ok(Vec::new()),
            4 | 5 => {
                let req = pb::plan_resource_change::Request {
                    type_name: resource,
                    prior_state: a,
                    proposed_new_state: b,
                    config: c,
                    prior_private: text,
                    ..Default::default()
                };
                svc.plan_resource_change(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            6 => {
                let req = pb::apply_resource_change::Request {
                    type_name: resource,
                    prior_state: a,
                    planned_state: b,
                    config: c,
                    planned_private: text,
                    ..Default::default()
                };
                svc.apply_resource_change(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            7 => {
                let req = pb::read_resource::Request {
                    type_name: resource,
                    current_state: a,
                    private: text,
                    ..Default::default()
                };
                svc.read_resource(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            8 => {
                let id = String::from_utf8_lossy(&text).into_owned();
                let req = pb::import_resource_state::Request { type_name: resource, id, ..Default::default() };
                svc.import_resource_state(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
            _ => {
                let req = pb::read_data_source::Request { type_name: data_source, config: a, ..Default::default() };
                svc.read_data_source(Request::new(req)).await.map(|r| r.into_inner().diagnostics)
            }
        };
        r.unwrap_or_default()
    });
    match diagnostics.iter().find(|d| d.summary == PANIC_SUMMARY) {
        Some(d) => Err(format!("rpc {}: {}", rpc % 10, d.detail)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed_and_never_overrun() {
        let mut data: &[u8] = &[2, 7, 8, 9, 200, 1];
        assert_eq!(part(&mut data), [7, 8]);
        assert_eq!(part(&mut data), [200, 1]);
        assert!(part(&mut data).is_empty());
        assert_eq!(value(&[0, 0x80]).map(|v| v.msgpack), Some(vec![0x80]));
        assert_eq!(value(&[1, b'{', b'}']).map(|v| v.json), Some(b"{}".to_vec()));
        assert!(value(&[]).is_none());
    }

    #[test]
    fn an_rpc_input_reaches_a_handler_and_a_valid_config_is_not_a_finding() {
        let config = Dynamic::object([("name", "orders".into())]).to_msgpack(&Type::Map(Box::new(Type::String)));
        let config = config.expect("msgpack");
        let mut input = vec![1, 0, 1, 0, u8::try_from(config.len() + 1).expect("short"), 0];
        input.extend_from_slice(&config);
        assert_eq!(provider_rpc(&input), Ok(()));
        dynamic_value(&config);
    }
}
