//! Schemas: attribute types, attributes, nested blocks, and their wire form.
//!
//! Besides what Terraform sees, an attribute can carry two planning hints that the server
//! applies for every resource: a `default` (used when the configuration leaves it null) and
//! `requires_replace` (a change to it replaces the resource).

use std::collections::BTreeMap;

use crate::diag::{AttributePath, Diagnostic, Diagnostics, Step};
use crate::proto::tfplugin6 as pb;
use crate::value::{Dynamic, IntoDynamic};

/// A cty type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number`
    Number,
    /// `string`
    String,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
}

impl Type {
    /// `list(el)`
    pub fn list(el: Type) -> Self {
        Type::List(Box::new(el))
    }

    /// `set(el)`
    pub fn set(el: Type) -> Self {
        Type::Set(Box::new(el))
    }

    /// `map(el)`
    pub fn map(el: Type) -> Self {
        Type::Map(Box::new(el))
    }

    /// `object({...})`
    pub fn object<I: IntoIterator<Item = (&'static str, Type)>>(attrs: I) -> Self {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The JSON type constraint Terraform expects in schemas.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Type::Bool => json!("bool"),
            Type::Number => json!("number"),
            Type::String => json!("string"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attrs) => {
                let m: serde_json::Map<String, serde_json::Value> =
                    attrs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                json!(["object", m])
            }
        }
    }

    /// A short name for documentation: `string`, `map(string)`, ...
    pub fn friendly(&self) -> String {
        match self {
            Type::Bool => "bool".into(),
            Type::Number => "number".into(),
            Type::String => "string".into(),
            Type::List(t) => format!("list({})", t.friendly()),
            Type::Set(t) => format!("set({})", t.friendly()),
            Type::Map(t) => format!("map({})", t.friendly()),
            Type::Object(_) => "object".into(),
        }
    }
}

/// Whether the user must, may, or cannot set an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The user must set it.
    Required,
    /// The user may set it; null otherwise.
    Optional,
    /// The user may set it; the provider fills it otherwise.
    OptionalComputed,
    /// Only the provider sets it.
    Computed,
}

/// One attribute of a block.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Markdown description; also the documentation.
    pub description: String,
    /// Who sets it.
    pub mode: Mode,
    /// Hidden in plans and logs.
    pub sensitive: bool,
    /// Planned when the configuration leaves the attribute null.
    pub default: Option<Dynamic>,
    /// A change replaces the resource.
    pub requires_replace: bool,
    /// Computed value that stays as in prior state when other attributes change.
    pub stable: bool,
    /// Deprecated.
    pub deprecated: bool,
    /// For a nested single object (`attr = { ... }`): its attributes, each optional,
    /// computed or with a default of its own. `ty` is then their object type.
    pub nested: Option<Vec<Attribute>>,
    /// With `nested`: a map of such objects (`attr = { key = { ... } }`), `ty` a map of them.
    pub nested_map: bool,
    /// Checks of its value, run when the configuration is validated.
    pub checks: Vec<Check>,
}

/// A check of an attribute's value in the configuration (when known and not null), whose
/// error points at the attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A whole number from the first to the second, inclusive.
    Range(i64, i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// One of these numbers.
    AnyOf(&'static [i64]),
}

impl Check {
    /// The error about `value` at `path`, if it fails this check.
    fn error(self, name: &str, value: &Dynamic, path: &AttributePath) -> Option<Diagnostic> {
        let detail = match (self, value) {
            (Check::Range(lo, hi), Dynamic::Number(n)) => {
                if n.as_i64().is_some_and(|n| (lo..=hi).contains(&n)) {
                    return None;
                }
                format!("{name} must be {lo} to {hi}; got {n}.")
            }
            (Check::OneOf(allowed), Dynamic::String(s)) => {
                if allowed.contains(&s.as_str()) {
                    return None;
                }
                let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
                format!("Expected {}, got {s:?}.", list.join(" or "))
            }
            (Check::AnyOf(allowed), Dynamic::Number(n)) => {
                if n.as_i64().is_some_and(|n| allowed.contains(&n)) {
                    return None;
                }
                format!("Expected one of {allowed:?}, got {n}.")
            }
            _ => return None,
        };
        Some(Diagnostic::error(format!("Invalid {name}"), detail).at(path.clone()))
    }
}

impl Attribute {
    fn new(name: &str, ty: Type, description: &str, mode: Mode) -> Self {
        Self {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            mode,
            sensitive: false,
            default: None,
            requires_replace: false,
            stable: false,
            deprecated: false,
            nested: None,
            nested_map: false,
            checks: Vec::new(),
        }
    }

    /// An optional nested object attribute, written `name = { ... }`, whose own attributes
    /// may be optional, computed or defaulted.
    pub fn nested(name: &str, description: &str, attributes: Vec<Attribute>) -> Self {
        let ty = Type::Object(attributes.iter().map(|a| (a.name.clone(), a.ty.clone())).collect());
        let mut a = Self::new(name, ty, description, Mode::Optional);
        a.nested = Some(attributes);
        a
    }

    /// An optional map of nested objects, written `name = { key = { ... } }`, whose own
    /// attributes may be required, optional or defaulted.
    pub fn nested_map(name: &str, description: &str, attributes: Vec<Attribute>) -> Self {
        let mut a = Self::nested(name, description, attributes);
        a.ty = Type::map(a.ty);
        a.nested_map = true;
        a
    }

    /// A required attribute.
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, description, Mode::Required)
    }

    /// An optional attribute.
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, description, Mode::Optional)
    }

    /// An optional attribute the provider fills in when the user leaves it null.
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, description, Mode::OptionalComputed)
    }

    /// A computed attribute (an output).
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, description, Mode::Computed)
    }

    /// An optional attribute with a default value (optional + computed for Terraform).
    pub fn with_default(name: &str, ty: Type, description: &str, default: Dynamic) -> Self {
        let mut a = Self::new(name, ty, description, Mode::OptionalComputed);
        a.default = Some(default);
        a
    }

    /// Marks it sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// A change to it replaces the resource.
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }

    /// A computed value that only changes when the resource is replaced.
    pub fn stable(mut self) -> Self {
        self.stable = true;
        self
    }

    /// Adds a check of its value in the configuration.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// True when Terraform may see a value the user did not write.
    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let nested_type = self.nested.as_ref().map(|attrs| pb::schema::Object {
            attributes: attrs.iter().map(Attribute::to_proto).collect(),
            nesting: if self.nested_map {
                pb::schema::object::NestingMode::Map
            } else {
                pb::schema::object::NestingMode::Single
            } as i32,
            ..Default::default()
        });
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: if nested_type.is_some() { Vec::new() } else { self.ty.to_json().to_string().into_bytes() },
            nested_type,
            description: self.description.clone(),
            required: self.mode == Mode::Required,
            optional: matches!(self.mode, Mode::Optional | Mode::OptionalComputed),
            computed: self.is_computed(),
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: false,
        }
    }
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one block; null when absent.
    Single,
    /// A list of blocks.
    List,
}

/// The checks of `attributes` on `value` (an object) at `at`, nested attributes' own included.
fn check_attributes(attributes: &[Attribute], value: &Dynamic, at: &AttributePath, d: &mut Diagnostics) {
    for a in attributes {
        let v = value.get(&a.name);
        let path = at.attr(&a.name);
        d.0.extend(a.checks.iter().filter_map(|c| c.error(&a.name, v, &path)));
        match (&a.nested, v) {
            (Some(inner), Dynamic::Map(elements)) if a.nested_map => {
                for (key, element) in elements {
                    check_attributes(inner, element, &path.key(key), d);
                }
            }
            (Some(inner), Dynamic::Map(_)) => check_attributes(inner, v, &path, d),
            _ => {}
        }
    }
}

/// A nested block type.
#[derive(Clone, Debug)]
pub struct NestedBlock {
    /// The block's name.
    pub name: String,
    /// How it repeats.
    pub nesting: Nesting,
    /// Its content.
    pub block: Block,
}

/// A block: attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Markdown description.
    pub description: String,
    /// Attributes, in documentation order.
    pub attributes: Vec<Attribute>,
    /// Nested blocks.
    pub blocks: Vec<NestedBlock>,
}

impl Block {
    /// An empty block with a description.
    pub fn new(description: &str) -> Self {
        Self { description: description.to_string(), ..Self::default() }
    }

    /// Adds an attribute.
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }

    /// Adds attributes, in order.
    pub fn attributes(mut self, attributes: impl IntoIterator<Item = Attribute>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    /// Adds a required attribute.
    pub fn required(self, name: &str, ty: Type, description: &str) -> Self {
        self.attribute(Attribute::required(name, ty, description))
    }

    /// Adds an optional attribute.
    pub fn optional(self, name: &str, ty: Type, description: &str) -> Self {
        self.attribute(Attribute::optional(name, ty, description))
    }

    /// Adds an optional attribute the provider fills in when it is not set.
    pub fn optional_computed(self, name: &str, ty: Type, description: &str) -> Self {
        self.attribute(Attribute::optional_computed(name, ty, description))
    }

    /// Adds an attribute only the provider sets.
    pub fn computed(self, name: &str, ty: Type, description: &str) -> Self {
        self.attribute(Attribute::computed(name, ty, description))
    }

    /// Adds an optional attribute with a default value.
    pub fn defaulted(self, name: &str, ty: Type, description: &str, default: impl IntoDynamic) -> Self {
        self.attribute(Attribute::with_default(name, ty, description, default.into_dynamic()))
    }

    /// Adds a check to the attribute added last.
    pub fn check(mut self, check: Check) -> Self {
        if let Some(a) = self.attributes.last_mut() {
            a.checks.push(check);
        }
        self
    }

    /// The errors of the attributes' checks on `value` (a configuration of this block), each
    /// at its attribute. Unknown and null values pass.
    pub fn check_value(&self, value: &Dynamic) -> Diagnostics {
        let mut d = Diagnostics::new();
        check_attributes(&self.attributes, value, &AttributePath::root(), &mut d);
        d
    }

    /// Adds a nested block.
    pub fn block(mut self, name: &str, nesting: Nesting, block: Block) -> Self {
        self.blocks.push(NestedBlock { name: name.to_string(), nesting, block });
        self
    }

    /// The object type that values of this block have.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> =
            self.attributes.iter().map(|a| (a.name.clone(), a.ty.clone())).collect();
        for b in &self.blocks {
            let t = b.block.implied_type();
            attrs.insert(
                b.name.clone(),
                match b.nesting {
                    Nesting::Single => t,
                    Nesting::List => Type::list(t),
                },
            );
        }
        Type::Object(attrs)
    }

    /// The part of `path` that Terraform can point at in a configuration. It follows nested
    /// blocks, and an attribute with one key or index of its value, but not deeper into an
    /// attribute's value (a nested attribute's object): such a path stops at the attribute.
    pub fn shown_part(&self, path: &AttributePath) -> AttributePath {
        let mut shown = AttributePath::root();
        let mut block = self;
        let mut steps = path.steps().iter().peekable();
        while let Some(Step::Attr(name)) = steps.next() {
            shown = shown.attr(name);
            let Some(nested) = block.blocks.iter().find(|n| &n.name == name) else {
                // An attribute: one key or index of its value when that is the last step.
                match (steps.next(), steps.peek()) {
                    (Some(Step::Key(k)), None) => shown = shown.key(k),
                    (Some(Step::Index(i)), None) => shown = shown.index(*i),
                    _ => {}
                }
                return shown;
            };
            block = &nested.block;
            if nested.nesting == Nesting::List
                && let Some(Step::Index(i)) = steps.peek()
            {
                shown = shown.index(*i);
                steps.next();
            }
        }
        shown
    }

    /// The attribute named `name`.
    pub fn find(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_proto(0)),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                    } as i32,
                    min_items: 0,
                    max_items: 0,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }
    }
}

/// A versioned schema of a provider, resource or data source.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Bumped when stored state needs upgrading.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A schema at `version`.
    pub fn new(version: i64, block: Block) -> Self {
        Self { version, block }
    }

    /// The object type of values of this schema.
    pub fn value_type(&self) -> Type {
        self.block.implied_type()
    }

    pub(crate) fn to_proto(&self) -> pb::Schema {
        pb::Schema { version: self.version, block: Some(self.block.to_proto(self.version)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_paths_follow_blocks_and_stop_at_an_attributes_value() {
        let inner = Block::new("t").optional("create", Type::String, "c");
        let block = Block::new("b")
            .attribute(Attribute::nested("logging", "l", vec![Attribute::optional("level", Type::String, "l")]))
            .optional("tags", Type::map(Type::String), "t")
            .block("timeouts", Nesting::Single, inner.clone())
            .block("rule", Nesting::List, inner);
        let root = AttributePath::root();
        for (path, shown) in [
            (root.attr("logging").attr("level"), root.attr("logging")),
            (root.attr("tags").key("aws:x"), root.attr("tags").key("aws:x")),
            (root.attr("timeouts").attr("create"), root.attr("timeouts").attr("create")),
            (root.attr("rule").index(1).attr("create"), root.attr("rule").index(1).attr("create")),
            (root.clone(), root.clone()),
        ] {
            assert_eq!(block.shown_part(&path), shown, "{path}");
        }
        let mut d = Diagnostics::new();
        d.error_at(root.attr("logging").attr("level"), "Bad level", "Use JSON.");
        let d = d.shown_in(&block);
        assert_eq!(d.0[0].attribute, Some(root.attr("logging")));
        assert_eq!(d.0[0].detail, "Use JSON. (at logging.level)");
    }

    #[test]
    fn checks_point_at_their_attribute_and_pass_unknown_and_null() {
        let block = Block::new("b")
            .optional("memory", Type::Number, "m")
            .check(Check::Range(128, 10_240))
            .optional("auth", Type::String, "a")
            .check(Check::OneOf(&["AWS_IAM", "NONE"]))
            .optional("days", Type::Number, "d")
            .check(Check::AnyOf(&[1, 3, 5]));
        let bad = Dynamic::object([
            ("memory", 64i64.into_dynamic()),
            ("auth", "OPEN".into_dynamic()),
            ("days", 2i64.into_dynamic()),
        ]);
        let d = block.check_value(&bad);
        let at: Vec<String> = d.0.iter().filter_map(|d| d.attribute.as_ref().map(ToString::to_string)).collect();
        assert_eq!(at, ["memory", "auth", "days"]);
        assert!(d.0[0].detail.contains("memory must be 128 to 10240; got 64."), "{:?}", d.0[0]);
        assert!(d.0[1].detail.contains(r#"Expected "AWS_IAM" or "NONE", got "OPEN"."#), "{:?}", d.0[1]);
        let fine =
            Dynamic::object([("memory", Dynamic::Unknown), ("auth", Dynamic::Null), ("days", 3i64.into_dynamic())]);
        assert!(block.check_value(&fine).0.is_empty());
    }

    #[test]
    fn types_encode_as_terraform_type_constraints() {
        assert_eq!(Type::map(Type::String).to_json().to_string(), r#"["map","string"]"#);
        let o = Type::object([("a", Type::Number)]);
        assert_eq!(o.to_json().to_string(), r#"["object",{"a":"number"}]"#);
    }

    #[test]
    fn nested_attributes_go_on_the_wire_as_objects() {
        let a = Attribute::nested("url", "u", vec![Attribute::optional("auth", Type::String, "a")]);
        assert_eq!(a.ty, Type::object([("auth", Type::String)]));
        let p = a.to_proto();
        assert!(p.r#type.is_empty());
        assert_eq!(p.nested_type.expect("nested").attributes[0].name, "auth");
    }

    #[test]
    fn block_type_includes_nested_blocks() {
        let b = Block::new("x").attribute(Attribute::required("name", Type::String, "n")).block(
            "timeouts",
            Nesting::Single,
            Block::new("t").attribute(Attribute::optional("create", Type::String, "c")),
        );
        let Type::Object(attrs) = b.implied_type() else { panic!("object") };
        assert_eq!(attrs["timeouts"], Type::object([("create", Type::String)]));
        let p = Schema::new(2, b).to_proto();
        let block = p.block.expect("block");
        assert_eq!(block.version, 2);
        assert!(block.attributes[0].required);
    }
}
