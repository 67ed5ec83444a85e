//! A serde bridge between [`Dynamic`] and plain Rust types, so that a resource can describe its
//! model as a `#[derive(Serialize, Deserialize)]` struct and convert with [`from_dynamic`] and
//! [`to_dynamic`].
//!
//! # Mapping
//!
//! | Dynamic | Rust |
//! |---|---|
//! | `Map` (object or map) | structs, `BTreeMap<String, _>`, `HashMap<String, _>` |
//! | `List` (list, set, tuple) | `Vec<_>`, tuples, sets |
//! | `String`, `Bool`, `Number` | `String`, `bool`, any integer or float that holds the number |
//! | `String` | unit enum variants (`#[serde(rename_all = ..)]` applies) |
//! | one-entry `Map` `{variant: content}` | newtype, tuple and struct enum variants |
//! | `Null` | `None`, `()`, [`Value::Null`] |
//! | `Unknown` | [`Value::Unknown`] only; anything else is an error |
//!
//! A null object attribute counts as missing, so `Option`, [`Value`] and `#[serde(default)]`
//! fields all accept it (Terraform sends every attribute of an object, unset ones as null), and a
//! required field reports "required" at that attribute. Attributes the struct does not name are
//! ignored unless it says `#[serde(deny_unknown_fields)]`. `#[serde(flatten)]` does not fit:
//! serde then buffers every attribute, and a plan's unknown outputs fail. Errors carry the [`AttributePath`] of
//! the offending attribute and convert into a [`Diagnostic`].
//!
//! # `Value<T>`
//!
//! [`Value<T>`] is Serialize and Deserialize like an `Option<T>` with a third state:
//!
//! * Deserializing calls `deserialize_option`: none (or a missing field) gives [`Value::Null`];
//!   some calls `deserialize_newtype_struct("$tfplug::Unknown", ..)`. Ordinary formats answer
//!   with `visit_newtype_struct`, which gives [`Value::Known`]; this module's deserializer answers
//!   `visit_unit` instead when the value is unknown or has an unknown inside (like
//!   [`crate::FromDynamic`], a partly unknown value is unknown as a whole), giving
//!   [`Value::Unknown`]. Put `Value<T>` on the leaves that may be unknown.
//! * Serializing writes `Known(x)` as `serialize_some(x)`, `Null` as `serialize_none()`, and
//!   `Unknown` as `serialize_newtype_struct("$tfplug::Unknown", marker)`. This module's
//!   serializer turns that into [`Dynamic::Unknown`]; in any other format the marker fails with
//!   an error rather than pass an unknown off as null.
//!
//! So with serde_json a `Value<T>` reads and writes exactly like an `Option<T>`.

use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Expected, MapAccess, SeqAccess, Unexpected, Visitor,
};
use serde::ser::{self, Serialize, Serializer};
use serde::{Deserialize, forward_to_deserialize_any};

use crate::diag::{AttributePath, Diagnostic, Step};
use crate::value::{Dynamic, Value, number_from_f64};

/// The newtype-struct name through which [`Value<T>`] talks to this module (see the module docs).
const UNKNOWN: &str = "$tfplug::Unknown";

/// Why a [`Dynamic`] could not be converted to or from a Rust type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at(path))]
pub struct DynamicError {
    /// The attribute at fault; the root when the error is about the whole value.
    pub path: AttributePath,
    /// What is wrong, as a sentence for the user.
    pub message: String,
}

fn at(path: &AttributePath) -> String {
    if path.steps().is_empty() { String::new() } else { format!("{path}: ") }
}

impl From<DynamicError> for Diagnostic {
    /// An "Invalid value" error at the attribute (or about the whole value at the root).
    fn from(e: DynamicError) -> Self {
        let d = Diagnostic::error("Invalid value", e.message);
        if e.path.steps().is_empty() { d } else { d.at(e.path) }
    }
}

/// Deserializes `v` into `T` (see the module docs for the mapping).
pub fn from_dynamic<T: DeserializeOwned>(v: &Dynamic) -> Result<T, DynamicError> {
    T::deserialize(De(v)).map_err(DynamicError::from)
}

/// Serializes `v` into a [`Dynamic`]: structs and maps become `Map`, sequences `List`, `None`
/// and unit `Null`, unit enum variants their name as a `String`, [`Value::Unknown`] `Unknown`.
pub fn to_dynamic<T: Serialize + ?Sized>(v: &T) -> Result<Dynamic, DynamicError> {
    v.serialize(Ser).map_err(DynamicError::from)
}

/// The serde error used inside the bridge: the path is collected innermost step first, as the
/// error travels out of nested values.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Error {
    rev: Vec<Step>,
    message: String,
}

impl Error {
    fn msg(message: impl Into<String>) -> Self {
        Self { rev: Vec::new(), message: message.into() }
    }

    fn under(mut self, step: Step) -> Self {
        self.rev.push(step);
        self
    }
}

impl From<Error> for DynamicError {
    fn from(e: Error) -> Self {
        let path = e.rev.iter().rev().fold(AttributePath::root(), |p, s| match s {
            Step::Attr(n) => p.attr(n),
            Step::Key(k) => p.key(k),
            Step::Index(i) => p.index(*i),
        });
        DynamicError { path, message: e.message }
    }
}

fn unexpected(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Unit => "null".into(),
        other => other.to_string(),
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::msg(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::msg(format!("Expected {exp}, got {}.", unexpected(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::msg(format!("Expected {exp}, got {}.", unexpected(&unexp)))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::msg("The attribute is required and must not be null.").under(Step::Attr(field.into()))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::msg(format!("Unexpected attribute; expected one of: {}.", expected.join(", ")))
            .under(Step::Attr(field.into()))
    }
}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::msg(msg.to_string())
    }
}

fn index_step(i: usize) -> Step {
    Step::Index(i64::try_from(i).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Deserialization

#[derive(Clone, Copy)]
struct De<'de>(&'de Dynamic);

impl<'de> Deserializer<'de> for De<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Dynamic::Null => visitor.visit_unit(),
            Dynamic::Unknown => Err(Error::msg(format!(
                "Expected {}, but the value is not known until apply.",
                &visitor as &dyn Expected
            ))),
            Dynamic::Bool(b) => visitor.visit_bool(*b),
            Dynamic::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else if let Some(f) = n.as_f64() {
                    visitor.visit_f64(f)
                } else {
                    Err(Error::msg(format!("The number {n} is out of range.")))
                }
            }
            Dynamic::String(s) => visitor.visit_borrowed_str(s),
            Dynamic::List(items) => {
                let mut seq = SeqDe(items.iter().enumerate());
                let out = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(out),
                    rest => Err(Error::msg(format!("Expected {} elements, got {}.", items.len() - rest, items.len()))),
                }
            }
            Dynamic::Map(m) => visitor.visit_map(MapDe::new(m, false, false)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Error> {
        if name == UNKNOWN && self.0.has_unknown() { visitor.visit_unit() } else { visitor.visit_newtype_struct(self) }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Dynamic::Map(m) => visitor.visit_map(MapDe::new(m, true, true)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Dynamic::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Dynamic::Map(m) if m.len() == 1 => match m.iter().next() {
                Some((variant, content)) => visitor.visit_enum(EnumDe { variant, content }),
                None => self.deserialize_any(visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Ignored attributes may well be unknown; that is no error.
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// An enum variant with content, `{variant: content}`.
struct EnumDe<'de> {
    variant: &'de String,
    content: &'de Dynamic,
}

impl<'de> EnumDe<'de> {
    fn under<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|e| e.under(Step::Attr(self.variant.clone())))
    }
}

impl<'de> de::EnumAccess<'de> for EnumDe<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        Ok((seed.deserialize(BorrowedStrDeserializer::new(self.variant))?, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumDe<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        self.under(Deserialize::deserialize(De(self.content)))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        self.under(seed.deserialize(De(self.content)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.under(De(self.content).deserialize_seq(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.under(De(self.content).deserialize_struct("", fields, visitor))
    }
}

struct SeqDe<'de>(std::iter::Enumerate<std::slice::Iter<'de, Dynamic>>);

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        match self.0.next() {
            Some((i, v)) => seed.deserialize(De(v)).map(Some).map_err(|e| e.under(index_step(i))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Entries of a `Map`. As an object (`attrs`), paths step by attribute; otherwise by key.
/// With `skip_null`, null entries are left out so that serde treats them as missing.
struct MapDe<'de> {
    iter: btree_map::Iter<'de, String, Dynamic>,
    pending: Option<(&'de String, &'de Dynamic)>,
    attrs: bool,
    skip_null: bool,
}

impl<'de> MapDe<'de> {
    fn new(m: &'de BTreeMap<String, Dynamic>, attrs: bool, skip_null: bool) -> Self {
        Self { iter: m.iter(), pending: None, attrs, skip_null }
    }
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let skip_null = self.skip_null;
        let Some((k, v)) = self.iter.find(|(_, v)| !(skip_null && v.is_null())) else {
            return Ok(None);
        };
        self.pending = Some((k, v));
        seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let Some((k, v)) = self.pending.take() else {
            return Err(Error::msg("A map value was asked for before its key."));
        };
        let attrs = self.attrs;
        seed.deserialize(De(v)).map_err(|e| e.under(if attrs { Step::Attr(k.clone()) } else { Step::Key(k.clone()) }))
    }

    fn size_hint(&self) -> Option<usize> {
        if self.skip_null { None } else { Some(self.iter.len()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization

struct Ser;

impl Serializer for Ser {
    type Ok = Dynamic;
    type Error = Error;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = SeqSer;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = MapSer;

    fn serialize_bool(self, v: bool) -> Result<Dynamic, Error> {
        Ok(Dynamic::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Dynamic, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Dynamic, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Dynamic, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Dynamic, Error> {
        Ok(Dynamic::Number(v.into()))
    }
    fn serialize_u8(self, v: u8) -> Result<Dynamic, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Dynamic, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Dynamic, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Dynamic, Error> {
        Ok(Dynamic::Number(v.into()))
    }
    fn serialize_f32(self, v: f32) -> Result<Dynamic, Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Dynamic, Error> {
        // Whole numbers become integers, as when decoding msgpack, so that values compare equal.
        number_from_f64(v).map(Dynamic::Number).map_err(|_| Error::msg(format!("The number {v} is not finite.")))
    }
    fn serialize_char(self, v: char) -> Result<Dynamic, Error> {
        Ok(Dynamic::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Dynamic, Error> {
        Ok(Dynamic::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Dynamic, Error> {
        Ok(Dynamic::List(v.iter().map(|b| Dynamic::Number((*b).into())).collect()))
    }
    fn serialize_none(self) -> Result<Dynamic, Error> {
        Ok(Dynamic::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Dynamic, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Dynamic, Error> {
        Ok(Dynamic::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Dynamic, Error> {
        Ok(Dynamic::Null)
    }
    fn serialize_unit_variant(self, _name: &'static str, _i: u32, variant: &'static str) -> Result<Dynamic, Error> {
        Ok(Dynamic::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<Dynamic, Error> {
        if name == UNKNOWN { Ok(Dynamic::Unknown) } else { v.serialize(self) }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Dynamic, Error> {
        let inner = v.serialize(Ser).map_err(|e| e.under(Step::Attr(variant.into())))?;
        Ok(Dynamic::object([(variant, inner)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, Error> {
        Ok(SeqSer { items: Vec::with_capacity(len.unwrap_or(0)), variant: None })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer, Error> {
        Ok(SeqSer { items: Vec::with_capacity(len), variant: Some(variant) })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer, Error> {
        Ok(MapSer { map: BTreeMap::new(), key: None, variant: None, attrs: false })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSer, Error> {
        Ok(MapSer { map: BTreeMap::new(), key: None, variant: None, attrs: true })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapSer, Error> {
        Ok(MapSer { map: BTreeMap::new(), key: None, variant: Some(variant), attrs: true })
    }
}

/// Wraps `inner` as `{variant: inner}` for enum variants with content.
fn wrap(variant: Option<&'static str>, inner: Dynamic) -> Dynamic {
    match variant {
        Some(v) => Dynamic::object([(v, inner)]),
        None => inner,
    }
}

/// Locates `e` under `step`, then under the enum variant, if any.
fn locate(e: Error, step: Step, variant: Option<&'static str>) -> Error {
    let e = e.under(step);
    match variant {
        Some(v) => e.under(Step::Attr(v.into())),
        None => e,
    }
}

struct SeqSer {
    items: Vec<Dynamic>,
    variant: Option<&'static str>,
}

impl SeqSer {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let item = v.serialize(Ser).map_err(|e| locate(e, index_step(self.items.len()), self.variant))?;
        self.items.push(item);
        Ok(())
    }
}

macro_rules! seq_ser {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for SeqSer {
            type Ok = Dynamic;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.push(v)
            }
            fn end(self) -> Result<Dynamic, Error> {
                Ok(wrap(self.variant, Dynamic::List(self.items)))
            }
        }
    )*};
}

seq_ser!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

struct MapSer {
    map: BTreeMap<String, Dynamic>,
    key: Option<String>,
    variant: Option<&'static str>,
    attrs: bool,
}

impl MapSer {
    fn insert<T: Serialize + ?Sized>(&mut self, k: String, v: &T) -> Result<(), Error> {
        let step = if self.attrs { Step::Attr(k.clone()) } else { Step::Key(k.clone()) };
        let value = v.serialize(Ser).map_err(|e| locate(e, step, self.variant))?;
        self.map.insert(k, value);
        Ok(())
    }

    fn finish(self) -> Dynamic {
        wrap(self.variant, Dynamic::Map(self.map))
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Dynamic;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(match key.serialize(Ser)? {
            Dynamic::String(s) => s,
            Dynamic::Number(n) => n.to_string(),
            Dynamic::Bool(b) => b.to_string(),
            _ => return Err(Error::msg("Map keys must be strings.")),
        });
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let k = self.key.take().ok_or_else(|| Error::msg("A map value was given before its key."))?;
        self.insert(k, v)
    }

    fn end(self) -> Result<Dynamic, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Dynamic;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
        self.insert(key.to_owned(), v)
    }

    fn end(self) -> Result<Dynamic, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapSer {
    type Ok = Dynamic;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
        self.insert(key.to_owned(), v)
    }

    fn end(self) -> Result<Dynamic, Error> {
        Ok(self.finish())
    }
}

// ---------------------------------------------------------------------------------------------
// Value<T>

impl<T: Serialize> Serialize for Value<T> {
    /// See the module docs: `Some(x)`, `None`, or the unknown marker.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Known(v) => s.serialize_some(v),
            Value::Null => s.serialize_none(),
            Value::Unknown => s.serialize_newtype_struct(UNKNOWN, &UnknownMarker),
        }
    }
}

/// What [`Value::Unknown`] hands a serializer that is not this module's: it refuses.
struct UnknownMarker;

impl Serialize for UnknownMarker {
    fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        Err(ser::Error::custom("an unknown value can only be serialized into a tfplug::Dynamic"))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Value<T> {
    /// See the module docs: like `Option<T>`, with unknowns recognised by this module.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(ValueVisitor(PhantomData))
    }
}

struct ValueVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ValueVisitor<T> {
    type Value = Value<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value, null or an unknown value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Value<T>, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value<T>, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<T>, D::Error> {
        d.deserialize_newtype_struct(UNKNOWN, KnownVisitor(PhantomData))
    }
}

struct KnownVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for KnownVisitor<T> {
    type Value = Value<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or an unknown value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value<T>, D::Error> {
        T::deserialize(d).map(Value::Known)
    }

    /// Only this module's deserializer answers `$tfplug::Unknown` with a unit: the value is unknown.
    fn visit_unit<E: de::Error>(self) -> Result<Value<T>, E> {
        Ok(Value::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::value::IntoDynamic;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum BillingMode {
        Provisioned,
        PayPerRequest,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Cors {
        origins: Vec<String>,
        max_age: Option<i64>,
    }

    fn default_retention() -> u32 {
        7
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Bucket {
        name: String,
        size: Option<i64>,
        tags: Option<BTreeMap<String, String>>,
        cors: Option<Cors>,
        arn: Value<String>,
        billing_mode: BillingMode,
        #[serde(default)]
        force_destroy: bool,
        #[serde(rename = "retention_days", default = "default_retention")]
        retention: u32,
        ratio: f64,
    }

    fn num(i: i64) -> Dynamic {
        i.into_dynamic()
    }

    fn strs(items: &[&str]) -> Dynamic {
        Dynamic::List(items.iter().map(|s| Dynamic::from(*s)).collect())
    }

    fn planned() -> Dynamic {
        Dynamic::object([
            ("name", "logs".into()),
            ("size", num(10)),
            ("tags", Dynamic::object([("env", "prod".into()), ("team", "data".into())])),
            ("cors", Dynamic::object([("origins", strs(&["https://a", "https://b"])), ("max_age", num(300))])),
            ("arn", Dynamic::Unknown),
            ("billing_mode", "PAY_PER_REQUEST".into()),
            ("force_destroy", Dynamic::Bool(true)),
            ("retention_days", num(30)),
            ("ratio", Dynamic::Number(serde_json::Number::from_f64(0.25).expect("finite"))),
        ])
    }

    fn err_at(e: &DynamicError) -> String {
        e.path.to_string()
    }

    #[test]
    fn a_resource_model_round_trips() {
        let d = planned();
        let b: Bucket = from_dynamic(&d).expect("decode");
        assert_eq!(b.name, "logs");
        assert_eq!(b.size, Some(10));
        assert_eq!(b.tags.as_ref().and_then(|t| t.get("team")).map(String::as_str), Some("data"));
        assert_eq!(b.cors, Some(Cors { origins: vec!["https://a".into(), "https://b".into()], max_age: Some(300) }));
        assert!(b.arn.is_unknown());
        assert_eq!(b.billing_mode, BillingMode::PayPerRequest);
        assert!(b.force_destroy);
        assert_eq!(b.retention, 30);
        assert!((b.ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(to_dynamic(&b).expect("encode"), d);

        let applied = Bucket { arn: Value::Known("arn:aws:s3:::logs".into()), ..b };
        let back: Bucket = from_dynamic(&to_dynamic(&applied).expect("encode")).expect("decode");
        assert_eq!(back, applied);
    }

    #[test]
    fn nulls_and_missing_attributes_give_none_null_and_defaults() {
        let d = Dynamic::object([
            ("name", "x".into()),
            ("size", Dynamic::Null),
            ("tags", Dynamic::Null),
            ("cors", Dynamic::object([("origins", strs(&[])), ("max_age", Dynamic::Null)])),
            ("arn", Dynamic::Null),
            ("billing_mode", "PROVISIONED".into()),
            ("force_destroy", Dynamic::Null),
            ("ratio", num(2)),
        ]);
        let b: Bucket = from_dynamic(&d).expect("decode");
        assert_eq!((b.size, b.tags.is_none(), b.force_destroy, b.retention), (None, true, false, 7));
        assert_eq!(b.cors, Some(Cors { origins: vec![], max_age: None }));
        assert!(b.arn.is_null());
        assert!((b.ratio - 2.0).abs() < f64::EPSILON);

        let mut missing = d.clone();
        if let Dynamic::Map(m) = &mut missing {
            m.remove("arn");
        }
        let b: Bucket = from_dynamic(&missing).expect("decode");
        assert!(b.arn.is_null());

        let out = to_dynamic(&b).expect("encode");
        assert_eq!(out.get("size"), &Dynamic::Null);
        assert_eq!(out.get("arn"), &Dynamic::Null);
        assert_eq!(out.get("billing_mode"), &Dynamic::from("PROVISIONED"));
        assert_eq!(out.get("ratio"), &num(2), "whole floats encode as integers");
    }

    #[test]
    fn a_wrong_type_reports_the_attribute_path() {
        let mut d = planned();
        d.set("cors", Dynamic::object([("origins", strs(&[])), ("max_age", "long".into())]));
        let e = from_dynamic::<Bucket>(&d).expect_err("type");
        assert_eq!(err_at(&e), "cors.max_age");
        assert!(e.message.contains("i64") && e.message.contains("\"long\""), "{e}");
        assert_eq!(e.to_string(), format!("cors.max_age: {}", e.message));

        let diag = Diagnostic::from(e);
        assert_eq!(diag.summary, "Invalid value");
        assert_eq!(diag.attribute, Some(AttributePath::root().attr("cors").attr("max_age")));

        d.set("cors", Dynamic::object([("origins", Dynamic::List(vec!["a".into(), num(1)]))]));
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("type")), "cors.origins[1]");

        let mut d = planned();
        d.set("tags", Dynamic::object([("env", Dynamic::Bool(true))]));
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("type")), "tags[\"env\"]");
    }

    #[test]
    fn unknown_is_an_error_outside_value() {
        let mut d = planned();
        d.set("name", Dynamic::Unknown);
        let e = from_dynamic::<Bucket>(&d).expect_err("unknown");
        assert_eq!(err_at(&e), "name");
        assert!(e.message.contains("not known until apply"), "{e}");

        let mut d = planned();
        d.set("size", Dynamic::Unknown);
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("unknown")), "size");

        let mut d = planned();
        d.set("cors", Dynamic::object([("origins", Dynamic::List(vec!["a".into(), Dynamic::Unknown]))]));
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("unknown")), "cors.origins[1]");
    }

    #[test]
    fn value_holds_known_null_and_unknown_including_partly_unknown() {
        #[derive(Debug, Serialize, Deserialize)]
        struct M {
            origins: Value<Vec<String>>,
            count: Value<u32>,
        }
        let d = Dynamic::object([("origins", Dynamic::List(vec!["a".into(), Dynamic::Unknown])), ("count", num(3))]);
        let m: M = from_dynamic(&d).expect("decode");
        assert!(m.origins.is_unknown());
        assert_eq!(m.count, Value::Known(3));
        assert_eq!(
            to_dynamic(&m).expect("encode"),
            Dynamic::object([("origins", Dynamic::Unknown), ("count", num(3))])
        );
        assert_eq!(to_dynamic(&Value::<String>::Unknown).expect("encode"), Dynamic::Unknown);
        assert_eq!(from_dynamic::<Value<String>>(&Dynamic::Unknown).expect("decode"), Value::Unknown);
        assert_eq!(from_dynamic::<Value<String>>(&Dynamic::Null).expect("decode"), Value::Null);
    }

    #[test]
    fn value_reads_and_writes_like_an_option_in_json() {
        let v: Vec<Value<i64>> = serde_json::from_str("[1, null]").expect("json");
        assert_eq!(v, vec![Value::Known(1), Value::Null]);
        assert_eq!(serde_json::to_string(&v).expect("json"), "[1,null]");
        assert!(serde_json::to_string(&Value::<i64>::Unknown).is_err());
    }

    #[test]
    fn extra_attributes_are_ignored_even_when_unknown() {
        let mut d = planned();
        d.set("id", Dynamic::Unknown);
        d.set("timeouts", Dynamic::object([("create", "5m".into())]));
        let b: Bucket = from_dynamic(&d).expect("decode");
        assert_eq!(b.name, "logs");
    }

    #[test]
    fn required_nulls_bad_variants_and_ranges_are_errors() {
        let mut d = planned();
        d.set("name", Dynamic::Null);
        let e = from_dynamic::<Bucket>(&d).expect_err("required");
        assert_eq!((err_at(&e), e.message.contains("required")), ("name".into(), true), "{e}");

        let mut d = planned();
        d.set("billing_mode", "ON_DEMAND".into());
        let e = from_dynamic::<Bucket>(&d).expect_err("variant");
        assert_eq!(err_at(&e), "billing_mode");
        assert!(e.message.contains("PAY_PER_REQUEST"), "{e}");

        let mut d = planned();
        d.set("retention_days", num(-1));
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("range")), "retention_days");

        let mut d = planned();
        d.set("size", Dynamic::Number(serde_json::Number::from_f64(1.5).expect("finite")));
        assert_eq!(err_at(&from_dynamic::<Bucket>(&d).expect_err("fraction")), "size");

        let e = from_dynamic::<Bucket>(&Dynamic::from("x")).expect_err("root");
        assert_eq!(e.path, AttributePath::root());
        assert_eq!(Diagnostic::from(e).attribute, None);
    }

    #[test]
    fn data_carrying_enums_and_serialization_errors() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Source {
            Bucket { name: String },
            Url(String),
        }
        for s in [Source::Bucket { name: "b".into() }, Source::Url("u".into())] {
            let d = to_dynamic(&s).expect("encode");
            assert_eq!(from_dynamic::<Source>(&d).expect("decode"), s);
        }
        let d = Dynamic::object([("bucket", Dynamic::object([("name", num(1))]))]);
        assert_eq!(err_at(&from_dynamic::<Source>(&d).expect_err("type")), "bucket.name");

        let mut m = BTreeMap::new();
        m.insert("k".to_string(), vec![1.0, f64::NAN]);
        let e = to_dynamic(&m).expect_err("nan");
        assert_eq!(err_at(&e), "[\"k\"][1]");
    }
}
