//! Schema-driven planning, applied to every resource before [`crate::Resource::modify_plan`]:
//! defaults, unknown computed values, and `requires_replace`.

use crate::diag::AttributePath;
use crate::schema::{Attribute, Mode, Schema};
use crate::value::Dynamic;

/// The planned state and replace paths derived from the schema alone.
pub(crate) fn plan_from_schema(
    schema: &Schema,
    prior: &Dynamic,
    proposed: &Dynamic,
    config: &Dynamic,
) -> (Dynamic, Vec<AttributePath>) {
    if proposed.is_null() {
        return (Dynamic::Null, Vec::new());
    }
    let attrs = &schema.block.attributes;
    let mut planned = proposed.clone();
    plan_attributes(attrs, prior, &mut planned, config);
    if prior.is_null() {
        return (planned, Vec::new());
    }
    let replace: Vec<AttributePath> = attrs
        .iter()
        .filter(|a| a.requires_replace && planned.get(&a.name) != prior.get(&a.name))
        .map(|a| AttributePath::root().attr(&a.name))
        .collect();
    if !replace.is_empty() {
        for a in attrs.iter().filter(|a| a.mode == Mode::Computed) {
            planned.set(&a.name, Dynamic::Unknown);
        }
    }
    (planned, replace)
}

/// Applies defaults and unknowns to the attributes of one object, recursing into nested
/// objects: defaults where the configuration is null; on create, computed values become
/// unknown; on update, computed (not stable) values become unknown when something the user
/// sets changed.
fn plan_attributes(attrs: &[Attribute], prior: &Dynamic, planned: &mut Dynamic, config: &Dynamic) {
    let creating = prior.is_null();
    for a in attrs {
        let cfg = config.get(&a.name);
        if let (Some(inner), false) = (&a.nested, cfg.is_null() || *cfg == Dynamic::Unknown) {
            let mut value = planned.get(&a.name).clone();
            match (a.nested_map, &mut value, cfg) {
                (true, Dynamic::Map(elements), Dynamic::Map(cfgs)) => {
                    for (key, element) in elements.iter_mut() {
                        let cfg = cfgs.get(key).unwrap_or(&Dynamic::Null);
                        plan_attributes(inner, prior.get(&a.name).get(key), element, cfg);
                    }
                }
                (true, ..) => {}
                (false, ..) => plan_attributes(inner, prior.get(&a.name), &mut value, cfg),
            }
            planned.set(&a.name, value);
            continue;
        }
        if !cfg.is_null() {
            continue;
        }
        if let Some(default) = &a.default {
            planned.set(&a.name, default.clone());
        } else if creating && a.is_computed() {
            planned.set(&a.name, Dynamic::Unknown);
        }
    }
    if creating {
        return;
    }
    let changed = attrs.iter().filter(|a| a.mode != Mode::Computed).any(|a| planned.get(&a.name) != prior.get(&a.name));
    if changed {
        for a in attrs.iter().filter(|a| a.mode == Mode::Computed && !a.stable) {
            planned.set(&a.name, Dynamic::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, Block, Type};
    use crate::value::IntoDynamic;

    fn schema() -> Schema {
        Schema::new(
            0,
            Block::new("r")
                .attribute(Attribute::required("name", Type::String, "").requires_replace())
                .attribute(Attribute::with_default("size", Type::Number, "", 5i64.into_dynamic()))
                .attribute(Attribute::computed("arn", Type::String, "").stable())
                .attribute(Attribute::computed("version", Type::String, "")),
        )
    }

    fn obj(name: &str, size: Option<i64>) -> Dynamic {
        Dynamic::object([("name", name.into()), ("size", size.into_dynamic())])
    }

    #[test]
    fn create_fills_defaults_and_marks_outputs_unknown() {
        let cfg = obj("a", None);
        let (p, r) = plan_from_schema(&schema(), &Dynamic::Null, &cfg, &cfg);
        assert_eq!(p.get("size"), &5i64.into_dynamic());
        assert_eq!(p.get("arn"), &Dynamic::Unknown);
        assert!(r.is_empty());
    }

    #[test]
    fn no_change_keeps_the_prior_state() {
        let mut prior = obj("a", Some(5));
        prior.set("arn", "arn:x".into());
        prior.set("version", "1".into());
        let cfg = obj("a", None);
        let mut proposed = prior.clone();
        proposed.set("size", Dynamic::Null);
        let (p, r) = plan_from_schema(&schema(), &prior, &proposed, &cfg);
        assert_eq!(p, prior);
        assert!(r.is_empty());
    }

    #[test]
    fn drift_from_a_default_is_planned_back_and_unstable_outputs_become_unknown() {
        let mut prior = obj("a", Some(9));
        prior.set("arn", "arn:x".into());
        prior.set("version", "1".into());
        let (p, r) = plan_from_schema(&schema(), &prior, &prior.clone(), &obj("a", None));
        assert_eq!(p.get("size"), &5i64.into_dynamic());
        assert_eq!(p.get("arn"), &"arn:x".into());
        assert_eq!(p.get("version"), &Dynamic::Unknown);
        assert!(r.is_empty());
    }

    #[test]
    fn nested_objects_get_their_defaults_and_unknowns() {
        let schema = Schema::new(
            0,
            Block::new("r").attribute(Attribute::nested(
                "url",
                "u",
                vec![
                    Attribute::with_default("auth", Type::String, "", "AWS_IAM".into()),
                    Attribute::computed("endpoint", Type::String, ""),
                ],
            )),
        );
        let cfg = Dynamic::object([("url", Dynamic::object([("auth", Dynamic::Null)]))]);
        let (p, _) = plan_from_schema(&schema, &Dynamic::Null, &cfg, &cfg);
        assert_eq!(p.get("url").get("auth"), &Dynamic::from("AWS_IAM"));
        assert_eq!(p.get("url").get("endpoint"), &Dynamic::Unknown);
        let none = Dynamic::object([("url", Dynamic::Null)]);
        let (p, _) = plan_from_schema(&schema, &Dynamic::Null, &none, &none);
        assert!(p.get("url").is_null());
    }

    #[test]
    fn each_object_of_a_nested_map_gets_its_defaults() {
        let schema = Schema::new(
            0,
            Block::new("r").attribute(Attribute::nested_map(
                "routes",
                "r",
                vec![
                    Attribute::required("function", Type::String, ""),
                    Attribute::with_default("auth", Type::String, "", "NONE".into()),
                ],
            )),
        );
        let route = |auth: Dynamic| Dynamic::object([("function", "api".into()), ("auth", auth)]);
        let cfg = Dynamic::object([(
            "routes",
            Dynamic::Map(
                [("GET /".to_string(), route(Dynamic::Null)), ("POST /".into(), route("AWS_IAM".into()))].into(),
            ),
        )]);
        let (p, _) = plan_from_schema(&schema, &Dynamic::Null, &cfg, &cfg);
        assert_eq!(p.get("routes").get("GET /").get("auth"), &Dynamic::from("NONE"));
        assert_eq!(p.get("routes").get("POST /").get("auth"), &Dynamic::from("AWS_IAM"));
    }

    #[test]
    fn a_replacing_change_marks_every_output_unknown() {
        let mut prior = obj("a", Some(5));
        prior.set("arn", "arn:x".into());
        let mut proposed = obj("b", Some(5));
        proposed.set("arn", "arn:x".into());
        let (p, r) = plan_from_schema(&schema(), &prior, &proposed, &obj("b", None));
        assert_eq!(r, vec![AttributePath::root().attr("name")]);
        assert_eq!(p.get("arn"), &Dynamic::Unknown);
    }
}
