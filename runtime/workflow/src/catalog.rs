//! The blueprint catalog: where blueprints live in the contexts table, as `adf_workflow`
//! deploys them and runs start from them. The item layout is the runtime's; the provider
//! calls these methods rather than writing items itself.
//!
//! Items (hash key `runId`, range key `key`):
//! - `blueprint#<name>` / `<version>`: `json`, the canonical JSON. Written once and never
//!   changed or deleted, so runs pinned to an old version finish on it;
//! - `blueprint#<name>` / `current`: `version`, the version new runs start on; when a workflow
//!   deployed it, also `source` (the text as configured, so an import reproduces it) and
//!   `workflow` (the `adf_workflow` that deployed it, which alone may delete it);
//! - `workflow#<workflow>` / `blueprints`: `names`, the blueprints the workflow deploys (how an
//!   import finds them without a scan).
//!
//! The operations are methods of [`Store`], on its contexts table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::blueprint::Blueprint;
use crate::store::{Store, StoreError, aws, is_condition_failed, is_missing_table, s};

/// The range key of a blueprint's `current` item.
pub const CURRENT_KEY: &str = "current";
/// The range key of a workflow's record of its blueprints.
pub const INDEX_KEY: &str = "blueprints";

/// The partition (hash key) of blueprint `name`: its versions and its `current` item.
pub fn blueprint_partition(name: &str) -> String {
    format!("blueprint#{name}")
}

/// The partition (hash key) of workflow `workflow`'s record of its blueprints.
pub fn workflow_partition(workflow: &str) -> String {
    format!("workflow#{workflow}")
}

/// The blueprint name of a [`blueprint_partition`].
pub fn blueprint_name(partition: &str) -> Option<&str> {
    partition.strip_prefix("blueprint#")
}

/// A blueprint's `current` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// The version runs start on.
    pub version: String,
    /// The text as configured, when a workflow deployed it.
    pub source: Option<String>,
}

/// Who deployed a blueprint, and its text as they configured it.
#[derive(Clone, Copy, Debug)]
struct Owner<'a> {
    workflow: &'a str,
    source: &'a str,
}

fn item_key(partition: String, key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("runId".to_string(), s(partition)), ("key".to_string(), s(key))])
}

fn current_item(name: &str, version: &str, owner: Option<Owner<'_>>) -> HashMap<String, AttributeValue> {
    let mut item = item_key(blueprint_partition(name), CURRENT_KEY);
    item.insert("version".into(), s(version));
    if let Some(o) = owner {
        item.insert("source".into(), s(o.source));
        item.insert("workflow".into(), s(o.workflow));
    }
    item
}

/// The blueprint name and the `current` of a `current` item.
fn parse_current(item: &HashMap<String, AttributeValue>) -> Option<(String, Current)> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let (pk, version) = (text("runId")?, text("version")?);
    Some((blueprint_name(&pk)?.to_string(), Current { version, source: text("source") }))
}

impl Store {
    /// Stores version `bp.version()` of blueprint `name` and makes it current (with no owner:
    /// for use without Terraform and in tests). Returns the version.
    pub async fn put_blueprint(&self, name: &str, bp: &Blueprint) -> Result<String, StoreError> {
        self.write_blueprint(name, bp, None).await
    }

    /// Deploys blueprint `name` for workflow `workflow`: stores version `bp.version()` and makes
    /// it current, recording `source` (the text as configured) and the workflow. Returns the
    /// version.
    pub async fn deploy(&self, workflow: &str, name: &str, bp: &Blueprint, source: &str) -> Result<String, StoreError> {
        self.write_blueprint(name, bp, Some(Owner { workflow, source })).await
    }

    /// Two writes in order: the version item, written only if it does not exist (an existing
    /// one keeps its text: versions are content hashes, and runs may be pinned to it), then the
    /// `current` item, replaced. `current` never names a version that is not stored; a deploy
    /// cut off between them leaves a version that nothing names yet, which the next deploy
    /// of the same text finds and keeps. (One transaction would cost twice the write units.)
    async fn write_blueprint(
        &self,
        name: &str,
        bp: &Blueprint,
        owner: Option<Owner<'_>>,
    ) -> Result<String, StoreError> {
        let t = &self.tables().contexts;
        let version = bp.version();
        self.ddb()
            .update_item()
            .table_name(t)
            .set_key(Some(item_key(blueprint_partition(name), &version)))
            .update_expression("SET #j = if_not_exists(#j, :j)")
            .expression_attribute_names("#j", "json")
            .expression_attribute_values(":j", s(bp.canonical_json()))
            .send()
            .await
            .map_err(aws("UpdateItem", t))?;
        self.ddb()
            .put_item()
            .table_name(t)
            .set_item(Some(current_item(name, &version, owner)))
            .send()
            .await
            .map_err(aws("PutItem", t))?;
        Ok(version)
    }

    /// The current version of blueprint `name`.
    pub async fn current_version(&self, name: &str) -> Result<String, StoreError> {
        let t = &self.tables().contexts;
        let out = self
            .ddb()
            .get_item()
            .table_name(t)
            .set_key(Some(item_key(blueprint_partition(name), CURRENT_KEY)))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("GetItem", t))?;
        out.item
            .and_then(|i| i.get("version").and_then(|v| v.as_s().ok()).cloned())
            .ok_or_else(|| StoreError::NoBlueprint(name.to_string()))
    }

    /// The `current` items of `names` (absent ones are left out; none when the table is gone),
    /// in as few requests as BatchGetItem allows.
    pub async fn current(&self, names: &[String]) -> Result<BTreeMap<String, Current>, StoreError> {
        let names: BTreeSet<&String> = names.iter().collect();
        let keys = names.into_iter().map(|n| item_key(blueprint_partition(n), CURRENT_KEY)).collect();
        let table = &self.tables().contexts;
        let Some(items) = Box::pin(self.batch_get_or_missing(table, keys, None, true)).await? else {
            return Ok(BTreeMap::new());
        };
        Ok(items.iter().filter_map(parse_current).collect())
    }

    /// Version `version` of blueprint `name`.
    pub async fn blueprint(&self, name: &str, version: &str) -> Result<Blueprint, StoreError> {
        let t = &self.tables().contexts;
        let out = self
            .ddb()
            .get_item()
            .table_name(t)
            .set_key(Some(item_key(blueprint_partition(name), version)))
            .send()
            .await
            .map_err(aws("GetItem", t))?;
        let json = out
            .item
            .and_then(|i| i.get("json").and_then(|v| v.as_s().ok()).cloned())
            .ok_or_else(|| StoreError::NoBlueprint(format!("{name}@{version}")))?;
        Blueprint::from_json(&json)
            .map_err(|e| StoreError::Corrupt { what: format!("blueprint {name}@{version}"), cause: e.to_string() })
    }

    /// The canonical JSON of version `version` of blueprint `name` (what an import of a
    /// blueprint that no workflow deployed shows).
    pub async fn canonical(&self, name: &str, version: &str) -> Result<String, StoreError> {
        Ok(self.blueprint(name, version).await?.canonical_json())
    }

    /// Deletes blueprint `name`'s `current` item (its versions stay, for runs pinned to them),
    /// unless another workflow deployed it since: then it stays and this returns false. A
    /// missing item or table is fine.
    pub async fn delete_current(&self, workflow: &str, name: &str) -> Result<bool, StoreError> {
        let t = &self.tables().contexts;
        let r = self
            .ddb()
            .delete_item()
            .table_name(t)
            .set_key(Some(item_key(blueprint_partition(name), CURRENT_KEY)))
            .condition_expression("attribute_not_exists(#wf) OR #wf = :wf")
            .expression_attribute_names("#wf", "workflow")
            .expression_attribute_values(":wf", s(workflow))
            .send()
            .await;
        match r {
            Err(e) if is_condition_failed(&e) => {
                tracing::info!(blueprint = name, "another workflow owns the blueprint now; its current version stays");
                Ok(false)
            }
            Err(e) if !is_missing_table(&e) => Err(aws("DeleteItem", t)(e)),
            _ => Ok(true),
        }
    }

    /// The blueprint names workflow `workflow` recorded; None when it recorded none (or the
    /// table is gone).
    pub async fn index(&self, workflow: &str) -> Result<Option<Vec<String>>, StoreError> {
        let t = &self.tables().contexts;
        let out = self
            .ddb()
            .get_item()
            .table_name(t)
            .set_key(Some(item_key(workflow_partition(workflow), INDEX_KEY)))
            .consistent_read(true)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if is_missing_table(&e) => return Ok(None),
            Err(e) => return Err(aws("GetItem", t)(e)),
        };
        Ok(out.item.and_then(|i| {
            i.get("names")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|n| n.as_s().ok().cloned()).collect())
        }))
    }

    /// Records the blueprint names workflow `workflow` deploys.
    pub async fn put_index(&self, workflow: &str, names: &[String]) -> Result<(), StoreError> {
        let t = &self.tables().contexts;
        let mut item = item_key(workflow_partition(workflow), INDEX_KEY);
        item.insert("names".into(), AttributeValue::L(names.iter().map(s).collect()));
        self.ddb().put_item().table_name(t).set_item(Some(item)).send().await.map_err(aws("PutItem", t))?;
        Ok(())
    }

    /// Deletes workflow `workflow`'s record of its blueprints; a missing item or table is fine.
    pub async fn delete_index(&self, workflow: &str) -> Result<(), StoreError> {
        let t = &self.tables().contexts;
        let r = self
            .ddb()
            .delete_item()
            .table_name(t)
            .set_key(Some(item_key(workflow_partition(workflow), INDEX_KEY)))
            .send()
            .await;
        match r {
            Err(e) if !is_missing_table(&e) => Err(aws("DeleteItem", t)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
        item.get(k).and_then(|v| v.as_s().ok()).cloned()
    }

    #[test]
    fn blueprints_and_workflows_have_partitions_of_their_own() {
        assert_eq!(blueprint_partition("order"), "blueprint#order");
        assert_eq!(workflow_partition("orders"), "workflow#orders");
        assert_eq!(blueprint_name(&blueprint_partition("order.v2")), Some("order.v2"));
        assert_eq!(blueprint_name("workflow#orders"), None);
        assert_eq!(blueprint_name("run-1"), None);
        let key = item_key(workflow_partition("orders"), INDEX_KEY);
        assert_eq!(
            (text(&key, "runId").as_deref(), text(&key, "key").as_deref()),
            (Some("workflow#orders"), Some("blueprints"))
        );
    }

    #[test]
    fn a_current_item_records_its_owner_when_deployed_by_one() {
        let owned = current_item("order", "v1", Some(Owner { workflow: "orders", source: "{}" }));
        assert_eq!(text(&owned, "runId").as_deref(), Some("blueprint#order"));
        assert_eq!(text(&owned, "key").as_deref(), Some("current"));
        assert_eq!(text(&owned, "workflow").as_deref(), Some("orders"));
        assert_eq!(
            parse_current(&owned),
            Some(("order".to_string(), Current { version: "v1".into(), source: Some("{}".into()) }))
        );
        let plain = current_item("order", "v2", None);
        assert_eq!(plain.len(), 3, "{plain:?}");
        assert_eq!(parse_current(&plain), Some(("order".to_string(), Current { version: "v2".into(), source: None })));
    }

    #[test]
    fn items_that_are_no_current_blueprint_are_skipped() {
        let mut index = item_key(workflow_partition("orders"), INDEX_KEY);
        index.insert("version".into(), s("v1"));
        assert_eq!(parse_current(&index), None);
        assert_eq!(parse_current(&item_key(blueprint_partition("order"), CURRENT_KEY)), None);
    }
}
