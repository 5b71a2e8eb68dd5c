//! What the OTLP signals share: resources, attributes and their values, in protobuf and in
//! OTLP's JSON mapping.
//!
//! The messages are the subset of `opentelemetry/proto/common/v1` and `resource/v1` that Vigie
//! reads, with the field numbers of the published `.proto` files; each signal's module
//! ([`traces`], [`metrics`], and [`crate::logs::otlp`]) builds on them. JSON requests are read into the same
//! types, so both encodings share one path.
//!
//! These are written here rather than taken from `opentelemetry-proto`: its messages come with
//! the OpenTelemetry SDK and tonic as dependencies, and its JSON form, in the release built on
//! this workspace's prost, reads 64-bit integers only as strings, where OTLP/JSON allows numbers.

pub mod as_sentry;
pub mod metrics;
pub mod traces;

use prost::Message;
use serde_json::Value;

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        #[prost(bytes, tag = "7")]
        BytesValue(Vec<u8>),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// Lowercase hex, as Vigie writes ids.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// An attribute or body value as text: strings as they are, the rest as JSON.
pub fn text(value: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => hex(b),
        Some(other) => json_of(other).to_string(),
    }
}

fn json_of(value: &any_value::Value) -> Value {
    use any_value::Value as V;
    match value {
        V::StringValue(s) => Value::from(s.as_str()),
        V::BoolValue(b) => Value::from(*b),
        V::IntValue(i) => Value::from(*i),
        V::DoubleValue(d) => Value::from(*d),
        V::BytesValue(b) => Value::from(hex(b)),
        V::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(Value::Null, json_of))
                .collect(),
        ),
        V::KvlistValue(kv) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                    (kv.key.clone(), v.map_or(Value::Null, json_of))
                })
                .collect(),
        ),
    }
}

/// Attributes as text pairs, in the order sent.
pub fn pairs(attributes: Vec<KeyValue>) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .map(|kv| {
            let value = text(kv.value.as_ref());
            (kv.key, value)
        })
        .collect()
}

/// OTLP's JSON mapping, read into the protobuf types.
pub mod json {
    use super::*;

    pub fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
        v.get(key).and_then(Value::as_array).into_iter().flatten()
    }

    pub fn u64_of(v: Option<&Value>) -> u64 {
        match v {
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            _ => 0,
        }
    }

    pub fn hex_bytes(v: Option<&Value>) -> Vec<u8> {
        let Some(text) = v.and_then(Value::as_str) else {
            return Vec::new();
        };
        if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            // Kept as given so the length check rejects it with a clear reason.
            return text.as_bytes().to_vec();
        }
        (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect()
    }

    pub fn attributes(v: &Value) -> Vec<KeyValue> {
        array(v, "attributes").map(key_value).collect()
    }

    pub fn key_value(v: &Value) -> KeyValue {
        KeyValue {
            key: v.get("key").and_then(Value::as_str).unwrap_or("").into(),
            value: v.get("value").map(any),
        }
    }

    pub fn any(v: &Value) -> AnyValue {
        use any_value::Value as V;
        let value = if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
            Some(V::StringValue(s.into()))
        } else if let Some(b) = v.get("boolValue").and_then(Value::as_bool) {
            Some(V::BoolValue(b))
        } else if let Some(i) = v.get("intValue") {
            Some(V::IntValue(
                i.as_i64()
                    .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0),
            ))
        } else if let Some(d) = v.get("doubleValue").and_then(Value::as_f64) {
            Some(V::DoubleValue(d))
        } else if let Some(a) = v.get("arrayValue") {
            Some(V::ArrayValue(ArrayValue {
                values: array(a, "values").map(any).collect(),
            }))
        } else if let Some(kv) = v.get("kvlistValue") {
            Some(V::KvlistValue(KeyValueList {
                values: array(kv, "values").map(key_value).collect(),
            }))
        } else {
            v.get("bytesValue")
                .and_then(Value::as_str)
                .map(|s| V::BytesValue(s.as_bytes().to_vec()))
        };
        AnyValue { value }
    }
}
