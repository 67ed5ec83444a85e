//! What the storage resources (`adf_kv_namespace`, `adf_object_bucket`, `adf_cache`) share:
//! the `binding` object `adf_function` takes in `bindings`, and the outputs for code that is
//! not deployed with `adf_function` (its environment and least-privilege policies). The
//! binding itself is the storage runtime's contract, [`adf_storage::contract::Binding`].

use std::collections::BTreeMap;

use adf_common::contract::EnvSettings;
use adf_storage::contract::{AccessLevel, Binding, Bindings, binding_statements};
use tfplug::{Attribute, Dynamic, IntoDynamic, Type};

use crate::runtimes::policy_document;

/// The type of a binding, as HCL sees it (every field of [`Binding`]).
pub fn binding_type() -> Type {
    Type::object([
        ("kind", Type::String),
        ("access", Type::String),
        ("name", Type::String),
        ("table", Type::String),
        ("table_arn", Type::String),
        ("bucket", Type::String),
        ("bucket_arn", Type::String),
        ("kms_key_arn", Type::String),
        ("redis_url", Type::String),
        ("redis_auth_token", Type::String),
    ])
}

/// The outputs every storage resource has; `sensitive` when the binding carries a secret.
pub fn binding_outputs(what: &str, sensitive: bool) -> Vec<Attribute> {
    let mark = |a: Attribute| if sensitive { a.sensitive() } else { a };
    vec![
        mark(
            Attribute::computed(
                "binding",
                binding_type(),
                &format!(
                    "Binds {what} to an `adf_function`: `bindings = {{ name = this.binding }}` grants the function \
                     least-privilege IAM on exactly this store and passes the settings `adf_storage::Storage::\
                     from_env` reads. Read and write by default; `merge(this.binding, {{ access = \"read\" }})` \
                     binds it read-only."
                ),
            )
            .stable(),
        ),
        mark(
            Attribute::computed(
                "client_config",
                Type::map(Type::String),
                &format!(
                    "The environment that lets code not deployed with `adf_function` (ECS, EC2, a laptop) reach \
                     {what} through `adf_storage::Storage::from_env`, bound under this resource's name."
                ),
            )
            .stable(),
        ),
        Attribute::computed(
            "policy_json",
            Type::String,
            &format!(
                "Least-privilege IAM policy for reading and writing {what}, for roles adf_function does not manage."
            ),
        )
        .stable(),
        Attribute::computed(
            "read_policy_json",
            Type::String,
            &format!("Least-privilege read-only IAM policy for {what}."),
        )
        .stable(),
    ]
}

/// A binding as a Terraform value.
pub fn binding_value(b: &Binding) -> Dynamic {
    tfplug::to_dynamic(b).unwrap_or(Dynamic::Null)
}

/// Sets `binding`, `client_config`, `policy_json` and `read_policy_json` from `b` (its
/// access is `write`).
pub fn set_binding_outputs(state: &mut Dynamic, b: &Binding) {
    let at = |access| Binding { access, ..b.clone() };
    let policy = |access| policy_document(binding_statements(&BTreeMap::from([(b.name.clone(), at(access))])));
    let env = Bindings(BTreeMap::from([(b.name.clone(), b.clone())])).to_env();
    state.set("binding", binding_value(b));
    state.set("client_config", env.into_dynamic());
    state.set("policy_json", policy(AccessLevel::Write).into_dynamic());
    state.set("read_policy_json", policy(AccessLevel::Read).into_dynamic());
}

/// The longest store name: the managed bucket `adf-<kind>-<name>-<account>` stays within S3's
/// 63 characters.
pub const MAX_STORE_NAME: usize = 40;

/// Why `name` cannot name a store: lowercase letters, digits and `-`, starting with a letter or
/// digit, at most [`MAX_STORE_NAME`] characters (it becomes part of a bucket name).
pub fn validate_store_name(name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok_chars || !ok_start || name.len() > MAX_STORE_NAME || name.ends_with('-') {
        return Err(format!(
            "{name:?}: use 1 to {MAX_STORE_NAME} lowercase letters, digits and `-`, starting and ending with a \
             letter or digit (it becomes part of a table and a bucket name)."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use adf_storage::contract::StoreKind;

    use super::*;

    #[test]
    fn store_names_must_fit_a_bucket_name() {
        assert!(validate_store_name("sessions-1").is_ok());
        for bad in ["", "Sessions", "a_b", "-a", "a-", &"a".repeat(41)] {
            assert!(validate_store_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outputs_carry_the_binding_its_environment_and_both_policies() {
        let b = Binding {
            kind: Some(StoreKind::Kv),
            name: "s".into(),
            table: Some("adf-kv-s".into()),
            table_arn: Some("arn:aws:dynamodb:us-east-1:1:table/adf-kv-s".into()),
            ..Binding::default()
        };
        let mut state = Dynamic::object([("name", "s".into())]);
        set_binding_outputs(&mut state, &b);
        assert_eq!(state.get("binding").get("kind"), &Dynamic::String("kv".into()));
        assert_eq!(state.get("binding").get("access"), &Dynamic::String("write".into()));
        assert!(state.get("binding").get("bucket").is_null());
        let Dynamic::String(write) = state.get("policy_json") else { panic!("no policy") };
        let Dynamic::String(read) = state.get("read_policy_json") else { panic!("no read policy") };
        assert!(write.contains("dynamodb:PutItem") && !read.contains("dynamodb:PutItem"), "{write}\n{read}");
        let env = state.get("client_config").get(adf_storage::contract::BINDINGS_ENV).clone();
        assert!(matches!(env, Dynamic::String(ref s) if s.contains("adf-kv-s")), "{env:?}");
    }
}
