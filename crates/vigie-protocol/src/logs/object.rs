//! A JSON log record's top-level members as they were sent, read in one pass.
//!
//! ```text
//! {"timestamp": "…", "level": "info", "event": "…", "user": 7}
//!      │ serde_json, this module's visitor (keys borrowed from the body when unescaped)
//!      ▼
//! Object [("timestamp", Str), ("level", Str), ("event", Str), ("user", Other(7))]
//!      │ record_from: known keys taken out (message, level, time, …)
//!      ▼
//! LogRecord { fields: [("user", "7")], … }   the rest, in the order sent
//! ```
//!
//! Why not `serde_json::Map`: a log line has a handful of members, most of which Vigie takes
//! out again at once, and most members are strings without escapes. A map paid for a tree node
//! insert and removal, an owned key and an owned string per member, then copied the strings
//! it kept; a vector of keys and strings borrowed from the body pays only for what a record
//! keeps (the time and the level are read where they lie), and keeps the members in the order
//! the sender wrote them. Nested objects, arrays, numbers stay `Value`s.
//! A key sent twice keeps its first place and its last value, as a map reading it would.

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;
use vigie_core::Text;

/// The members of one JSON object, in the order sent, each key once.
///
/// A member taken out ([`Object::remove`]) leaves `None` in its place rather than shifting the
/// ones after it: a record takes out most of its members one by one, and the shifts were most
/// of what taking cost.
#[derive(Debug)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, Option<Member<'a>>)>,
}

/// A member's value: a string borrowed from the body unless it had escapes, or any other JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Member<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl Default for Member<'_> {
    fn default() -> Self {
        Member::Other(Value::Null)
    }
}

impl<'a> Member<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            Member::Other(_) => None,
        }
    }

    /// The JSON value, when it is not a string.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Member::Str(_) => None,
            Member::Other(v) => Some(v),
        }
    }

    pub fn is_null(&self) -> bool {
        self.value().is_some_and(Value::is_null)
    }

    pub fn is_number(&self) -> bool {
        self.value().is_some_and(Value::is_number)
    }

    /// A member of this member, when it is an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value()?.get(key)
    }

    /// Field text: strings as they are, anything else as compact JSON.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Member::Str(s) => Cow::Borrowed(s),
            Member::Other(v) => Cow::Owned(v.to_string()),
        }
    }

    /// [`Member::text`], owned, taking the string rather than copying it.
    pub fn into_text(self) -> Text {
        match self {
            Member::Str(s) => s.into(),
            Member::Other(v) => into_text(v).into(),
        }
    }
}

/// Strings become [`Member::Str`], so a string member is always one, however it was made.
impl From<Value> for Member<'_> {
    fn from(value: Value) -> Self {
        match value {
            Value::String(s) => Member::Str(Cow::Owned(s)),
            other => Member::Other(other),
        }
    }
}

/// Below this many members, a key sent twice is found by comparing each pair; above it, by
/// sorting (a hostile object may have a hundred thousand keys).
const PAIRWISE_UP_TO: usize = 16;

impl<'a> Object<'a> {
    /// Reads one JSON object, nothing before or after it but whitespace.
    pub fn parse(json: &'a [u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(json)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|(k, v)| v.is_some() && k == key)
    }

    pub fn get(&self, key: &str) -> Option<&Member<'a>> {
        self.position(key).and_then(|i| self.members[i].1.as_ref())
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Member<'a>> {
        self.position(key).and_then(|i| self.members[i].1.as_mut())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Takes a member out; the others keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Member<'a>> {
        self.position(key).and_then(|i| self.members[i].1.take())
    }

    /// Sets a member: in its place when the key is there, else last.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Member<'a>>) {
        let (key, value) = (key.into(), value.into());
        match self.position(&key) {
            Some(i) => self.members[i].1 = Some(value),
            None => self.members.push((key, Some(value))),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Member<'a>)> {
        self.members
            .iter()
            .filter_map(|(k, v)| Some((k.as_ref(), v.as_ref()?)))
    }

    /// The members as a record's fields: strings as they are, other values as compact JSON.
    pub fn into_fields(self) -> Vec<(Text, Text)> {
        self.members
            .into_iter()
            .filter_map(|(k, v)| Some((k.into(), v?.into_text())))
            .collect()
    }

    /// A key sent twice keeps its first place and its last value.
    fn dedupe(&mut self) {
        let n = self.members.len();
        if n <= PAIRWISE_UP_TO {
            let mut i = 1;
            while i < self.members.len() {
                match self.members[..i]
                    .iter()
                    .position(|(k, _)| *k == self.members[i].0)
                {
                    Some(first) => {
                        let (_, value) = self.members.remove(i);
                        self.members[first].1 = value;
                    }
                    None => i += 1,
                }
            }
            return;
        }
        let mut order: Vec<usize> = (0..n).collect();
        // Stable: equal keys stay in the order sent, so a run's first is the first sent.
        order.sort_by(|a, b| self.members[*a].0.cmp(&self.members[*b].0));
        let mut dropped = vec![false; n];
        let mut moves = Vec::new();
        for run in order.chunk_by(|a, b| self.members[*a].0 == self.members[*b].0) {
            if let [first, .., last] = run {
                moves.push((*first, *last));
                for later in &run[1..] {
                    dropped[*later] = true;
                }
            }
        }
        for (first, last) in moves {
            self.members[first].1 = std::mem::take(&mut self.members[last].1);
        }
        let mut index = 0;
        self.members.retain(|_| {
            index += 1;
            !dropped[index - 1]
        });
    }
}

impl From<Map<String, Value>> for Object<'_> {
    fn from(map: Map<String, Value>) -> Self {
        Object {
            members: map
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Some(Member::from(v))))
                .collect(),
        }
    }
}

/// A JSON value as field text, taking its string rather than copying it.
pub fn into_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Object<'de>, A::Error> {
        let mut members = Vec::with_capacity(12);
        while let Some(Key(key)) = access.next_key()? {
            members.push((key, Some(access.next_value::<Member>()?)));
        }
        let mut object = Object { members };
        object.dedupe();
        Ok(object)
    }
}

/// A member: strings borrowed when they can be, any other value read as serde_json reads it.
impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(text)))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Member<'de>, E> {
        Ok(Member::Other(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Member<'de>, E> {
        Ok(Member::Other(Value::from(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Member<'de>, E> {
        Ok(Member::Other(Value::from(n)))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Member<'de>, E> {
        // As serde_json's own `Value` reads it (JSON text cannot spell a non-finite number).
        Ok(Member::Other(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_unit<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member<'de>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Member::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Member<'de>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Member::Other)
    }
}

/// A key, borrowed from the body unless it had escapes to undo.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The members as serde_json values, to compare with what serde_json reads.
    fn members(json: &str) -> Vec<(String, Value)> {
        let object = Object::parse(json.as_bytes()).unwrap();
        object
            .members
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .map(|(k, v)| {
                let value = match v {
                    Member::Str(s) => Value::String(s.into_owned()),
                    Member::Other(v) => v,
                };
                (k.into_owned(), value)
            })
            .collect()
    }

    #[test]
    fn every_kind_of_value_reads_as_serde_json_reads_it() {
        let json = r#"{"s": "plain", "e": "esc\"aped\u00e9", "n": -3, "u": 18446744073709551615, "f": 1.5e3, "t": true, "z": null, "a": [1, "x", {"k": []}], "o": {"p": {"q": 1.0}}}"#;
        let map: Map<String, Value> = serde_json::from_str(json).unwrap();
        let got = members(json);
        assert_eq!(got.len(), map.len());
        for (key, value) in &got {
            assert_eq!(Some(value), map.get(key), "{key}");
        }
        let object = Object::parse(json.as_bytes()).unwrap();
        assert!(matches!(
            object.get("s"),
            Some(Member::Str(Cow::Borrowed("plain")))
        ));
        assert!(matches!(object.get("e"), Some(Member::Str(Cow::Owned(_)))));
        assert_eq!(object.get("o").unwrap().text(), r#"{"p":{"q":1.0}}"#);
        assert_eq!(object.get("e").unwrap().text(), "esc\"aped\u{e9}");
    }

    #[test]
    fn members_in_the_order_sent_a_repeated_key_first_place_last_value() {
        assert_eq!(
            members(r#"{"b": 1, "a": "x", "b": 2, "c\n": null, "a": [3]}"#),
            [
                ("b".to_string(), Value::from(2)),
                ("a".into(), serde_json::json!([3])),
                ("c\n".into(), Value::Null),
            ]
        );
    }

    #[test]
    fn a_large_object_dedupes_as_a_map_would() {
        // Above PAIRWISE_UP_TO members the sort path runs: every key 3 times, values counting.
        let mut json = String::from("{");
        for round in 0..3 {
            for key in 0..40 {
                json.push_str(&format!("\"k{key}\": {},", round * 100 + key));
            }
        }
        json.push_str("\"end\": true}");
        let got = members(&json);
        let map: Map<String, Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(got.len(), map.len());
        for (i, (key, value)) in got.iter().enumerate().take(40) {
            assert_eq!(key, &format!("k{i}"), "first place kept");
            assert_eq!(Some(value), map.get(key), "last value kept");
        }
        assert_eq!(got[40].0, "end");
    }

    #[test]
    fn not_an_object_or_trailing_bytes_is_an_error() {
        for json in ["[1]", "\"text\"", "{\"a\":1} x", "{\"a\":", "{\"a\":1,}"] {
            assert!(Object::parse(json.as_bytes()).is_err(), "{json}");
        }
        assert!(Object::parse(b" {\"a\":1} \n").is_ok());
    }

    #[test]
    fn map_operations_keep_the_order() {
        let mut object = Object::parse(br#"{"x": 1, "y": "two", "z": {"n": 3}}"#).unwrap();
        assert_eq!(object.remove("y"), Some(Member::Str("two".into())));
        object.insert("x", Value::from(9));
        object.insert(String::from("w"), Value::Null);
        assert!(object.contains_key("z") && !object.contains_key("y"));
        assert_eq!(object.keys().collect::<Vec<_>>(), ["x", "z", "w"]);
        assert_eq!(
            object.into_fields(),
            [
                (vigie_core::Text::from("x"), vigie_core::Text::from("9")),
                ("z".into(), r#"{"n":3}"#.into()),
                ("w".into(), "null".into()),
            ]
        );
    }
}
