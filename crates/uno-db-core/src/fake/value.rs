//! Statement parameters as values a test compares.

use bytes::BytesMut;
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type};

/// A statement parameter as the [`FakeDatabase`](super::FakeDatabase)
/// recorded it: a typed value a test compares with `==`, not a `Debug`
/// string.
///
/// A parameter reaches a statement as `&dyn ToSql`, which does not say its
/// Rust type; the fake finds the first SQL type the parameter accepts among
/// the common ones, encodes it as the driver would, and decodes it back:
///
/// | parameter | value |
/// |---|---|
/// | `None` of any known type | [`Null`](Self::Null) |
/// | `bool` | [`Bool`](Self::Bool) |
/// | `i8`, `i16`, `i32`, `i64`, `u32` | [`Int`](Self::Int) |
/// | `f32`, `f64` | [`Float`](Self::Float) |
/// | `&str`, `String` | [`Text`](Self::Text) |
/// | `&[u8]`, `Vec<u8>` | [`Bytes`](Self::Bytes) |
/// | a `Vec` or slice of those | [`Array`](Self::Array) |
/// | `uuid`, `json`/`jsonb`, date and time types, `numeric`, `inet` | [`Other`](Self::Other), its SQL type and encoding |
/// | anything else (a custom enum, a composite) | [`Unknown`](Self::Unknown) |
///
/// A value equals the plain `bool`, `i32`, `i64`, `f64`, `&str` or
/// `String` it stands for (`assert_eq!(params, ["alice", "a@x.org"])`),
/// `From` builds the others (`Value::from(None::<i64>)`), and
/// [`from_param`](Self::from_param) turns any
/// parameter into the value the fake records for it, for the types that
/// end up as [`Other`](Self::Other):
///
/// ```
/// use uno_db_core::fake::Value;
///
/// assert_eq!(Value::from_param(&"alice"), "alice");
/// assert_eq!(Value::from_param(&7_i64), 7);
/// assert_eq!(Value::from_param(&7_i32), Value::Int(7));
/// assert_eq!(Value::from_param(&None::<i64>), Value::Null);
/// assert_eq!(Value::from_param(&vec![1_i64, 2]), Value::Array(vec![Value::Int(1), Value::Int(2)]));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL` (a `None`).
    Null,
    /// A `bool`.
    Bool(bool),
    /// An integer of any width (`int2`, `int4`, `int8`, `"char"`, `oid`).
    Int(i64),
    /// A floating-point number (`float4`, `float8`).
    Float(f64),
    /// Text (`text`).
    Text(String),
    /// Bytes (`bytea`).
    Bytes(Vec<u8>),
    /// An array of one of the types above, its elements in order.
    Array(Vec<Value>),
    /// A value of another known SQL type, as the driver encodes it.
    Other {
        /// The SQL type it was encoded as.
        type_: Type,
        /// Its binary encoding.
        raw: Vec<u8>,
    },
    /// A parameter of a type the fake does not know.
    Unknown,
}

/// The SQL types tried, in order; the first one a parameter accepts is
/// the one it is recorded as.
const PROBES: &[Type] = &[
    Type::BOOL,
    Type::INT8,
    Type::INT4,
    Type::INT2,
    Type::CHAR,
    Type::OID,
    Type::FLOAT8,
    Type::FLOAT4,
    Type::TEXT,
    Type::BYTEA,
    Type::BOOL_ARRAY,
    Type::INT8_ARRAY,
    Type::INT4_ARRAY,
    Type::INT2_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::UUID,
    Type::JSONB,
    Type::JSON,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMP,
    Type::DATE,
    Type::TIME,
    Type::NUMERIC,
    Type::INET,
    Type::UUID_ARRAY,
];

impl Value {
    /// The value the fake records for `param`: encoded as the first
    /// common SQL type it accepts and decoded back (see [`Value`]).
    #[must_use]
    pub fn from_param(param: &dyn ToSql) -> Self {
        for type_ in PROBES {
            let mut buf = BytesMut::new();
            match param.to_sql_checked(type_, &mut buf) {
                Ok(IsNull::Yes) => return Self::Null,
                Ok(IsNull::No) => return decode(type_, &buf),
                Err(_) => {}
            }
        }
        Self::Unknown
    }
}

/// The value of `raw`, encoded as `type_`.
fn decode(type_: &Type, raw: &[u8]) -> Value {
    let decoded = match type_.kind() {
        Kind::Array(member) => Vec::<Option<Raw<'_>>>::from_sql(type_, raw)
            .ok()
            .map(|elements| {
                Value::Array(
                    elements
                        .into_iter()
                        .map(|element| element.map_or(Value::Null, |e| decode(member, e.0)))
                        .collect(),
                )
            }),
        _ => scalar(type_, raw),
    };
    decoded.unwrap_or_else(|| Value::Other {
        type_: type_.clone(),
        raw: raw.to_vec(),
    })
}

/// The value of `raw` for the scalar types with a variant of their own.
fn scalar(type_: &Type, raw: &[u8]) -> Option<Value> {
    fn get<'a, T: FromSql<'a>>(type_: &Type, raw: &'a [u8]) -> Option<T> {
        T::from_sql(type_, raw).ok()
    }
    match *type_ {
        Type::BOOL => get(type_, raw).map(Value::Bool),
        Type::INT8 => get(type_, raw).map(Value::Int),
        Type::INT4 => get::<i32>(type_, raw).map(|v| Value::Int(v.into())),
        Type::INT2 => get::<i16>(type_, raw).map(|v| Value::Int(v.into())),
        Type::CHAR => get::<i8>(type_, raw).map(|v| Value::Int(v.into())),
        Type::OID => get::<u32>(type_, raw).map(|v| Value::Int(v.into())),
        Type::FLOAT8 => get(type_, raw).map(Value::Float),
        Type::FLOAT4 => get::<f32>(type_, raw).map(|v| Value::Float(v.into())),
        Type::TEXT => get(type_, raw).map(Value::Text),
        Type::BYTEA => get(type_, raw).map(Value::Bytes),
        _ => None,
    }
}

/// An array element as it was encoded.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i16> for Value {
    fn from(value: i16) -> Self {
        Self::Int(value.into())
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<f32> for Value {
    fn from(value: f32) -> Self {
        Self::Float(value.into())
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// A recorded value equals the plain Rust values it stands for, so that
/// `assert_eq!(statement.params, ["alice", "alice@example.com"])` reads as
/// the call did.
macro_rules! equals_plain {
    ($($plain:ty => |$value:ident| $as_value:expr),* $(,)?) => {$(
        impl PartialEq<$plain> for Value {
            fn eq(&self, other: &$plain) -> bool {
                let $value = other;
                *self == $as_value
            }
        }
    )*};
}

equals_plain! {
    bool => |v| Value::Bool(*v),
    i32 => |v| Value::Int((*v).into()),
    i64 => |v| Value::Int(*v),
    f64 => |v| Value::Float(*v),
    &str => |v| Value::Text((*v).to_owned()),
    String => |v| Value::Text(v.clone()),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_parameters_record_as_their_values() {
        let text = String::from("bob");
        let bytes = vec![1_u8, 2];
        let array = vec![Some("a"), None];
        let cases: Vec<(&dyn ToSql, Value)> = vec![
            (&true, Value::Bool(true)),
            (&7_i16, Value::Int(7)),
            (&7_i32, Value::Int(7)),
            (&-7_i64, Value::Int(-7)),
            (&1.5_f32, Value::Float(1.5)),
            (&2.5_f64, Value::Float(2.5)),
            (&"alice", Value::Text("alice".into())),
            (&text, Value::Text("bob".into())),
            (&bytes, Value::Bytes(vec![1, 2])),
            (&None::<String>, Value::Null),
            (&Some(3_i64), Value::Int(3)),
            (
                &array,
                Value::Array(vec![Value::Text("a".into()), Value::Null]),
            ),
        ];
        for (param, expected) in cases {
            assert_eq!(Value::from_param(param), expected);
        }
    }

    #[test]
    fn other_types_keep_their_sql_type_and_encoding() {
        let at = std::time::UNIX_EPOCH;
        match Value::from_param(&at) {
            Value::Other { type_, raw } => {
                assert_eq!(type_, Type::TIMESTAMPTZ);
                assert_eq!(raw.len(), 8);
            }
            other => unreachable!("recorded as {other:?}"),
        }
        assert_eq!(Value::from_param(&at), Value::from_param(&at));
    }

    #[test]
    fn unknown_types_are_unknown() {
        let map = std::collections::HashMap::<String, Option<String>>::new();
        assert_eq!(Value::from_param(&map), Value::Unknown);
    }
}
