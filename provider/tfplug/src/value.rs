//! Terraform values: the dynamic [`Dynamic`] tree that crosses the wire, its msgpack and JSON
//! encodings, and the typed [`Value<T>`] (known / null / unknown) that resources work with.

use std::collections::BTreeMap;

use crate::diag::{AttributePath, Diagnostic};
use crate::schema::Type;

/// How deeply a msgpack value may nest, in the decoder's units (about two per level, so some
/// 60 levels): far beyond any schema (Terraform's values nest as deeply as the schema's blocks
/// and collections), and shallow enough that decoding cannot overflow a handler thread's stack.
pub const MAX_DEPTH: usize = 128;

/// One Terraform (cty) value, as decoded from the wire, without its type.
///
/// Lists, sets and tuples are all [`Dynamic::List`]; maps and objects are [`Dynamic::Map`].
/// The schema's [`Type`] restores the distinction when the value is encoded again.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Dynamic {
    /// The value is null.
    #[default]
    Null,
    /// The value is not known until apply.
    Unknown,
    /// A boolean.
    Bool(bool),
    /// A number. Terraform numbers are arbitrary precision; we keep what serde_json keeps.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// A list, set or tuple.
    List(Vec<Dynamic>),
    /// A map or an object.
    Map(BTreeMap<String, Dynamic>),
}

/// Why a wire value could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// The msgpack bytes were not a valid cty encoding.
    #[error("invalid msgpack value: {0}")]
    Msgpack(String),
    /// The JSON bytes were not a valid cty encoding.
    #[error("invalid JSON value: {0}")]
    Json(String),
    /// The value does not fit the schema type.
    #[error("value at {path} does not match type {expected}")]
    Type {
        /// Where in the value.
        path: String,
        /// The schema type that was expected.
        expected: String,
    },
}

impl Dynamic {
    /// An object from attribute names and values.
    pub fn object<I, K>(attrs: I) -> Self
    where
        I: IntoIterator<Item = (K, Dynamic)>,
        K: Into<String>,
    {
        Dynamic::Map(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// True when null.
    pub fn is_null(&self) -> bool {
        matches!(self, Dynamic::Null)
    }

    /// True when this value or anything inside it is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Dynamic::Unknown => true,
            Dynamic::List(items) => items.iter().any(Dynamic::has_unknown),
            Dynamic::Map(m) => m.values().any(Dynamic::has_unknown),
            _ => false,
        }
    }

    /// This value with every unknown inside it made null, as Terraform saves a failed apply.
    pub fn unknown_as_null(self) -> Dynamic {
        match self {
            Dynamic::Unknown => Dynamic::Null,
            Dynamic::List(items) => Dynamic::List(items.into_iter().map(Dynamic::unknown_as_null).collect()),
            Dynamic::Map(m) => Dynamic::Map(m.into_iter().map(|(k, v)| (k, v.unknown_as_null())).collect()),
            v => v,
        }
    }

    /// The attribute `name` of an object (null when absent or when `self` is not an object).
    pub fn get(&self, name: &str) -> &Dynamic {
        static NULL: Dynamic = Dynamic::Null;
        match self {
            Dynamic::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Sets attribute `name` of an object; a no-op unless `self` is an object.
    pub fn set(&mut self, name: &str, value: Dynamic) {
        if let Dynamic::Map(m) = self {
            m.insert(name.to_string(), value);
        }
    }

    /// The value at `path`, when every step exists.
    pub fn at(&self, path: &AttributePath) -> Option<&Dynamic> {
        use crate::diag::Step;
        let mut cur = self;
        for step in path.steps() {
            cur = match (step, cur) {
                (Step::Attr(n) | Step::Key(n), Dynamic::Map(m)) => m.get(n)?,
                (Step::Index(i), Dynamic::List(l)) => l.get(usize::try_from(*i).ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Decodes Terraform's msgpack encoding. Extension values (plain or refined unknowns)
    /// decode as [`Dynamic::Unknown`]. Values nested deeper than [`MAX_DEPTH`] are refused:
    /// decoding recurses, and a handler's thread has a small stack.
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, ValueError> {
        if bytes.is_empty() {
            return Ok(Dynamic::Null);
        }
        let mut rd = bytes;
        let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
            .map_err(|e| ValueError::Msgpack(e.to_string()))?;
        Self::from_rmpv(v)
    }

    fn from_rmpv(v: rmpv::Value) -> Result<Self, ValueError> {
        Ok(match v {
            rmpv::Value::Nil => Dynamic::Null,
            rmpv::Value::Boolean(b) => Dynamic::Bool(b),
            rmpv::Value::Integer(i) => Dynamic::Number(if let Some(n) = i.as_i64() {
                n.into()
            } else if let Some(n) = i.as_u64() {
                n.into()
            } else {
                return Err(ValueError::Msgpack("integer out of range".into()));
            }),
            rmpv::Value::F32(f) => Dynamic::Number(number_from_f64(f64::from(f))?),
            rmpv::Value::F64(f) => Dynamic::Number(number_from_f64(f)?),
            rmpv::Value::String(s) => match s.into_str() {
                Some(s) => Dynamic::String(s),
                None => return Err(ValueError::Msgpack("string is not UTF-8".into())),
            },
            rmpv::Value::Binary(b) => {
                Dynamic::String(String::from_utf8(b).map_err(|_| ValueError::Msgpack("binary is not UTF-8".into()))?)
            }
            rmpv::Value::Array(items) => {
                Dynamic::List(items.into_iter().map(Self::from_rmpv).collect::<Result<_, _>>()?)
            }
            rmpv::Value::Map(entries) => {
                let mut m = BTreeMap::new();
                for (k, v) in entries {
                    let key = match k {
                        rmpv::Value::String(s) => {
                            s.into_str().ok_or_else(|| ValueError::Msgpack("map key is not UTF-8".into()))?
                        }
                        other => return Err(ValueError::Msgpack(format!("map key {other} is not a string"))),
                    };
                    m.insert(key, Self::from_rmpv(v)?);
                }
                Dynamic::Map(m)
            }
            rmpv::Value::Ext(_, _) => Dynamic::Unknown,
        })
    }

    /// Encodes as Terraform's msgpack, shaped by `ty`: objects carry every attribute of the
    /// type (null when missing) and nothing else.
    pub fn to_msgpack(&self, ty: &Type) -> Result<Vec<u8>, ValueError> {
        let v = self.to_rmpv(ty, &mut String::new())?;
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).map_err(|e| ValueError::Msgpack(e.to_string()))?;
        Ok(out)
    }

    fn to_rmpv(&self, ty: &Type, path: &mut String) -> Result<rmpv::Value, ValueError> {
        let mismatch = |path: &str| ValueError::Type {
            path: if path.is_empty() { "(root)".into() } else { path.to_string() },
            expected: ty.to_json().to_string(),
        };
        Ok(match (self, ty) {
            (Dynamic::Null, _) => rmpv::Value::Nil,
            (Dynamic::Unknown, _) => rmpv::Value::Ext(0, vec![0]),
            (Dynamic::Bool(b), Type::Bool) => rmpv::Value::Boolean(*b),
            (Dynamic::Number(n), Type::Number) => {
                if let Some(i) = n.as_i64() {
                    rmpv::Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    rmpv::Value::from(u)
                } else {
                    rmpv::Value::F64(n.as_f64().unwrap_or_default())
                }
            }
            (Dynamic::String(s), Type::String) => rmpv::Value::from(s.as_str()),
            (Dynamic::List(items), Type::List(el) | Type::Set(el)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(item.to_rmpv(el, path)?);
                    path.truncate(len);
                }
                rmpv::Value::Array(out)
            }
            (Dynamic::Map(m), Type::Map(el)) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let len = path.len();
                    path.push_str(&format!("[{k:?}]"));
                    out.push((rmpv::Value::from(k.as_str()), v.to_rmpv(el, path)?));
                    path.truncate(len);
                }
                rmpv::Value::Map(out)
            }
            (Dynamic::Map(m), Type::Object(attrs)) => {
                let mut out = Vec::with_capacity(attrs.len());
                for (k, aty) in attrs {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    let v = m.get(k).unwrap_or(&Dynamic::Null);
                    out.push((rmpv::Value::from(k.as_str()), v.to_rmpv(aty, path)?));
                    path.truncate(len);
                }
                rmpv::Value::Map(out)
            }
            _ => return Err(mismatch(path)),
        })
    }

    /// Decodes Terraform's JSON state encoding (which has no unknowns), shaped by `ty`:
    /// attributes the type does not know are dropped, missing ones become null.
    pub fn from_json(bytes: &[u8], ty: &Type) -> Result<Self, ValueError> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ValueError::Json(e.to_string()))?;
        Self::from_json_value(&v, ty)
    }

    /// Like [`Dynamic::from_json`], from a parsed JSON value.
    pub fn from_json_value(v: &serde_json::Value, ty: &Type) -> Result<Self, ValueError> {
        use serde_json::Value as J;
        let err = || ValueError::Json(format!("{v} does not match type {}", ty.to_json()));
        Ok(match (v, ty) {
            (J::Null, _) => Dynamic::Null,
            (J::Bool(b), Type::Bool) => Dynamic::Bool(*b),
            (J::Number(n), Type::Number) => Dynamic::Number(n.clone()),
            (J::String(s), Type::Number) => Dynamic::Number(s.parse().map_err(|_| err())?),
            (J::String(s), Type::String) => Dynamic::String(s.clone()),
            (J::Bool(b), Type::String) => Dynamic::String(b.to_string()),
            (J::Number(n), Type::String) => Dynamic::String(n.to_string()),
            (J::Array(items), Type::List(el) | Type::Set(el)) => {
                Dynamic::List(items.iter().map(|i| Self::from_json_value(i, el)).collect::<Result<_, _>>()?)
            }
            (J::Object(m), Type::Map(el)) => {
                Dynamic::Map(m.iter().map(|(k, v)| Ok((k.clone(), Self::from_json_value(v, el)?))).collect::<Result<
                    _,
                    ValueError,
                >>(
                )?)
            }
            (J::Object(m), Type::Object(attrs)) => Dynamic::Map(
                attrs
                    .iter()
                    .map(|(k, aty)| {
                        let v = m.get(k).unwrap_or(&J::Null);
                        Ok((k.clone(), Self::from_json_value(v, aty)?))
                    })
                    .collect::<Result<_, ValueError>>()?,
            ),
            _ => return Err(err()),
        })
    }
}

pub(crate) fn number_from_f64(f: f64) -> Result<serde_json::Number, ValueError> {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Whole numbers stay integers so that comparisons with integer state are exact.
        #[allow(clippy::cast_possible_truncation)]
        return Ok((f as i64).into());
    }
    serde_json::Number::from_f64(f).ok_or_else(|| ValueError::Msgpack(format!("number {f} is not finite")))
}

impl From<&str> for Dynamic {
    fn from(s: &str) -> Self {
        Dynamic::String(s.to_string())
    }
}

/// A typed Terraform value: known, null, or unknown until apply.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Value<T> {
    /// The value is known.
    Known(T),
    /// The value is null (not set).
    #[default]
    Null,
    /// The value will be known after apply.
    Unknown,
}

impl<T> Value<T> {
    /// The known value, if any.
    pub fn known(&self) -> Option<&T> {
        match self {
            Value::Known(v) => Some(v),
            _ => None,
        }
    }

    /// The known value, if any, by value.
    pub fn into_known(self) -> Option<T> {
        match self {
            Value::Known(v) => Some(v),
            _ => None,
        }
    }

    /// True when unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// True when null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The known value, or `default` when null. Unknown values also give `default`.
    pub fn known_or(self, default: T) -> T {
        self.into_known().unwrap_or(default)
    }
}

impl<T> From<Option<T>> for Value<T> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Value::Known)
    }
}

/// Conversion from a [`Dynamic`] at a path, reporting mismatches as diagnostics on that path.
pub trait FromDynamic: Sized {
    /// Converts `d`, found at `path`.
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic>;
}

/// Conversion into a [`Dynamic`].
pub trait IntoDynamic {
    /// Converts `self`.
    fn into_dynamic(self) -> Dynamic;
}

fn type_error(path: &AttributePath, what: &str, d: &Dynamic) -> Diagnostic {
    let got = match d {
        Dynamic::Null => "null",
        Dynamic::Unknown => "an unknown value",
        Dynamic::Bool(_) => "a bool",
        Dynamic::Number(_) => "a number",
        Dynamic::String(_) => "a string",
        Dynamic::List(_) => "a list",
        Dynamic::Map(_) => "a map",
    };
    Diagnostic::error("Invalid value type", format!("Expected {what}, got {got}.")).at(path.clone())
}

impl<T: FromDynamic> FromDynamic for Value<T> {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::Null => Ok(Value::Null),
            Dynamic::Unknown => Ok(Value::Unknown),
            _ if d.has_unknown() => Ok(Value::Unknown),
            _ => T::from_dynamic(d, path).map(Value::Known),
        }
    }
}

impl FromDynamic for String {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::String(s) => Ok(s.clone()),
            _ => Err(type_error(path, "a string", d)),
        }
    }
}

impl FromDynamic for bool {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::Bool(b) => Ok(*b),
            _ => Err(type_error(path, "a bool", d)),
        }
    }
}

impl FromDynamic for i64 {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::Number(n) => n.as_i64().ok_or_else(|| {
                Diagnostic::error("Invalid number", format!("Expected a whole number, got {n}.")).at(path.clone())
            }),
            _ => Err(type_error(path, "a number", d)),
        }
    }
}

impl FromDynamic for f64 {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::Number(n) => Ok(n.as_f64().unwrap_or_default()),
            _ => Err(type_error(path, "a number", d)),
        }
    }
}

impl<T: FromDynamic> FromDynamic for Vec<T> {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| T::from_dynamic(item, &path.index(i64::try_from(i).unwrap_or(i64::MAX))))
                .collect(),
            _ => Err(type_error(path, "a list", d)),
        }
    }
}

impl<T: FromDynamic> FromDynamic for BTreeMap<String, T> {
    fn from_dynamic(d: &Dynamic, path: &AttributePath) -> Result<Self, Diagnostic> {
        match d {
            Dynamic::Map(m) => m.iter().map(|(k, v)| Ok((k.clone(), T::from_dynamic(v, &path.key(k))?))).collect(),
            _ => Err(type_error(path, "a map", d)),
        }
    }
}

impl FromDynamic for Dynamic {
    fn from_dynamic(d: &Dynamic, _path: &AttributePath) -> Result<Self, Diagnostic> {
        Ok(d.clone())
    }
}

impl IntoDynamic for Dynamic {
    fn into_dynamic(self) -> Dynamic {
        self
    }
}

impl IntoDynamic for String {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::String(self)
    }
}

impl IntoDynamic for &str {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::String(self.to_string())
    }
}

impl IntoDynamic for bool {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::Bool(self)
    }
}

impl IntoDynamic for i64 {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::Number(self.into())
    }
}

/// A finite float; NaN and the infinities, which no Terraform number holds, are null.
impl IntoDynamic for f64 {
    fn into_dynamic(self) -> Dynamic {
        serde_json::Number::from_f64(self).map_or(Dynamic::Null, Dynamic::Number)
    }
}

impl<T: IntoDynamic> IntoDynamic for Vec<T> {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::List(self.into_iter().map(IntoDynamic::into_dynamic).collect())
    }
}

impl<T: IntoDynamic> IntoDynamic for BTreeMap<String, T> {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::Map(self.into_iter().map(|(k, v)| (k, v.into_dynamic())).collect())
    }
}

impl<T: IntoDynamic> IntoDynamic for Option<T> {
    fn into_dynamic(self) -> Dynamic {
        self.map_or(Dynamic::Null, IntoDynamic::into_dynamic)
    }
}

impl<T: IntoDynamic> IntoDynamic for Value<T> {
    fn into_dynamic(self) -> Dynamic {
        match self {
            Value::Known(v) => v.into_dynamic(),
            Value::Null => Dynamic::Null,
            Value::Unknown => Dynamic::Unknown,
        }
    }
}

/// Reads typed attributes out of an object value, with paths for diagnostics.
#[derive(Clone, Debug)]
pub struct ObjectReader<'a> {
    value: &'a Dynamic,
    path: AttributePath,
}

impl<'a> ObjectReader<'a> {
    /// A reader over the root object.
    pub fn new(value: &'a Dynamic) -> Self {
        Self { value, path: AttributePath::root() }
    }

    /// The attribute `name` as `T`.
    pub fn get<T: FromDynamic>(&self, name: &str) -> Result<T, Diagnostic> {
        T::from_dynamic(self.value.get(name), &self.path.attr(name))
    }

    /// A reader over the nested object (or single block) `name`.
    pub fn object(&self, name: &str) -> ObjectReader<'a> {
        ObjectReader { value: self.value.get(name), path: self.path.attr(name) }
    }

    /// True when the object itself is null.
    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// The path of this object.
    pub fn path(&self) -> &AttributePath {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("tags", Type::map(Type::String)),
            ("ok", Type::Bool),
        ])
    }

    #[test]
    fn values_nested_too_deeply_are_refused_not_a_stack_overflow() {
        let mut deep = vec![0x91u8; 100_000];
        deep.push(0xc0);
        assert!(matches!(Dynamic::from_msgpack(&deep), Err(ValueError::Msgpack(_))));
        let mut ok = vec![0x91u8; MAX_DEPTH / 4];
        ok.push(0xc0);
        let decoded = Dynamic::from_msgpack(&ok);
        assert!(decoded.is_ok(), "{decoded:?}");
    }

    #[test]
    fn msgpack_round_trip_fills_missing_attributes_with_null() {
        let v = Dynamic::object([("name", "a".into()), ("count", 3i64.into_dynamic()), ("ok", Dynamic::Unknown)]);
        let bytes = v.to_msgpack(&ty()).expect("encode");
        let back = Dynamic::from_msgpack(&bytes).expect("decode");
        assert_eq!(back.get("name"), &Dynamic::from("a"));
        assert_eq!(back.get("count"), &3i64.into_dynamic());
        assert_eq!(back.get("ok"), &Dynamic::Unknown);
        assert!(matches!(&back, Dynamic::Map(m) if m.contains_key("tags") && m["tags"].is_null()));
    }

    #[test]
    fn encoding_rejects_a_value_of_the_wrong_type() {
        let v = Dynamic::object([("count", "three".into())]);
        let err = v.to_msgpack(&ty()).expect_err("mismatch");
        assert!(err.to_string().contains(".count"), "{err}");
    }

    #[test]
    fn json_drops_unknown_attributes_and_parses_numbers() {
        let v = Dynamic::from_json(br#"{"name":"x","count":"12","removed":1}"#, &ty()).expect("json");
        assert_eq!(v.get("count"), &12i64.into_dynamic());
        assert!(v.get("removed").is_null());
        assert!(v.get("tags").is_null());
    }

    #[test]
    fn typed_reads_report_the_attribute_path() {
        let v = Dynamic::object([("count", "x".into())]);
        let err = ObjectReader::new(&v).get::<Value<i64>>("count").expect_err("type");
        assert_eq!(err.attribute, Some(AttributePath::root().attr("count")));
        let unknown = Dynamic::object([("tags", Dynamic::object([("a", Dynamic::Unknown)]))]);
        let tags: Value<BTreeMap<String, String>> = ObjectReader::new(&unknown).get("tags").expect("tags");
        assert!(tags.is_unknown());
    }

    #[test]
    fn whole_floats_decode_as_integers() {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &rmpv::Value::F64(30.0)).expect("write");
        assert_eq!(Dynamic::from_msgpack(&bytes).expect("decode"), 30i64.into_dynamic());
    }
}
