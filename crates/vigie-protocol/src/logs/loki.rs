//! Grafana Loki's push API (`POST /loki/api/v1/push`): JSON, and protobuf compressed with
//! snappy (what Promtail, Grafana Alloy and the Docker driver send).
//!
//! A stream's labels name where lines come from: `service_name`, `app`, `application`,
//! `service`, `job`, `source`, `container` or `filename` (first found) become the source;
//! `level`, `detected_level` or `severity` the level; `logger` or `logger_name` the logger
//! (python-logging-loki's labels); every other label, and each entry's structured metadata, a
//! field.
//! A line that is itself a JSON object is read as JSON lines are (its `level`, `msg`, … win).

use super::{record_from_object, Parsed};
use prost::Message;
use serde_json::Value;
use vigie_core::log::{lossy_utf8, LogRecord};
use vigie_core::Level;

#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Debug, thiserror::Error)]
#[error("not a Loki push request: {0}")]
pub struct LokiError(pub String);

const SOURCE_LABELS: &[&str] = &[
    "service_name",
    "app",
    "application",
    "service",
    "job",
    "source",
    "container",
    "filename",
];
const LEVEL_LABELS: &[&str] = &["level", "detected_level", "severity"];
/// python-logging-loki names the logger in `logger`.
const LOGGER_LABELS: &[&str] = &["logger", "logger_name"];

/// Why a snappy body was not inflated.
#[derive(Debug, thiserror::Error)]
pub enum UnsnapError {
    /// The length the body claims (checked before anything is allocated) or produces is past
    /// the cap: 5 bytes can claim 3 GB.
    #[error("the snappy body inflates to {claimed} bytes, over the {cap}-byte limit")]
    TooLarge { claimed: usize, cap: usize },
    #[error("not a Loki push request: snappy: {0}")]
    Invalid(String),
}

/// The size a snappy (raw format) body says it inflates to, read from its header alone.
pub fn unsnapped_len(body: &[u8]) -> Result<usize, UnsnapError> {
    snap::raw::decompress_len(body).map_err(|e| UnsnapError::Invalid(e.to_string()))
}

/// Inflates a snappy (raw format) push body, refusing one that would be larger than `cap`
/// bytes before allocating for it.
pub fn unsnap(body: &[u8], cap: usize) -> Result<Vec<u8>, UnsnapError> {
    let claimed = unsnapped_len(body)?;
    if claimed > cap {
        return Err(UnsnapError::TooLarge { claimed, cap });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| UnsnapError::Invalid(e.to_string()))
}

/// Parses a protobuf push body, already inflated with [`unsnap`].
pub fn parse_protobuf(raw: &[u8], received: i64) -> Result<Parsed, LokiError> {
    let request = PushRequest::decode(raw).map_err(|e| LokiError(e.to_string()))?;
    let mut parsed = Parsed::default();
    for stream in request.streams {
        let labels = parse_labels(&stream.labels)
            .ok_or_else(|| LokiError(format!("bad labels `{}`", stream.labels)))?;
        for entry in stream.entries {
            let time = entry.timestamp.map(|t| {
                t.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.nanos))
            });
            let meta = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            parsed
                .records
                .push(record(&labels, time, entry.line.as_bytes(), meta, received));
        }
    }
    Ok(parsed)
}

/// A JSON object's members as `(key, text)` pairs (a stream's labels, an entry's structured
/// metadata); nothing for anything but an object.
fn pairs_of(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), super::value_text(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a JSON push body: `{"streams": [{"stream": {labels}, "values": [[ns, line, {meta}?]]}]}`.
pub fn parse_json(body: &[u8], received: i64) -> Result<Parsed, LokiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| LokiError(e.to_string()))?;
    let streams = value
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| LokiError("expected an object with a `streams` array".into()))?;
    let mut parsed = Parsed::default();
    for stream in streams {
        let labels = pairs_of(stream.get("stream"));
        for entry in stream
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some([time, line, rest @ ..]) = entry.as_array().map(Vec::as_slice) else {
                parsed.reject("each value must be [timestamp, line]");
                continue;
            };
            let time = time.as_str().and_then(|t| t.parse::<i64>().ok());
            let Some(line) = line.as_str() else {
                parsed.reject("a line must be a string");
                continue;
            };
            let meta = pairs_of(rest.first());
            parsed
                .records
                .push(record(&labels, time, line.as_bytes(), meta, received));
        }
    }
    Ok(parsed)
}

fn record(
    labels: &[(String, String)],
    time: Option<i64>,
    line: &[u8],
    meta: Vec<(String, String)>,
    received: i64,
) -> LogRecord {
    // The labels read as source, level or logger; every other one becomes a field.
    let mut used: Vec<&str> = Vec::new();
    let mut label = |names: &[&str]| {
        let (name, value) = names
            .iter()
            .find_map(|n| labels.iter().find(|(k, _)| k == n))?;
        used.push(name);
        Some(value.clone())
    };
    let source = label(SOURCE_LABELS).unwrap_or_else(|| "loki".into());
    let level_raw = label(LEVEL_LABELS).unwrap_or_default();
    let logger = label(LOGGER_LABELS);
    let time = time.filter(|t| *t > 0).unwrap_or(received);
    let trimmed = line.trim_ascii();
    let mut record = match serde_json::from_slice::<Value>(trimmed) {
        Ok(Value::Object(map)) if trimmed.starts_with(b"{") => {
            let says_level = super::LEVEL_KEYS.iter().any(|k| map.contains_key(*k));
            let mut r = record_from_object(map, &source, received);
            if says_level {
                r.level_raw = r.level.as_str().into();
            }
            if r.time == received {
                r.time = time;
            }
            r
        }
        _ => {
            let (message, flags) = lossy_utf8(line);
            LogRecord {
                time,
                received,
                source: source.into(),
                message: message.trim_end().into(),
                flags,
                ..LogRecord::default()
            }
        }
    };
    // The line's own level (a JSON line's `level`) wins over the stream's label.
    if record.level_raw.is_empty() && !level_raw.is_empty() {
        record.level = Level::parse(&level_raw).unwrap_or(record.level);
        record.level_raw = level_raw.into();
    } else if record.level_raw == record.level.as_str() {
        record.level_raw.clear();
    }
    match logger {
        Some(logger) if record.logger.is_empty() => record.logger = logger.into(),
        // The line named its own logger: the label stays, as a field.
        Some(_) => used.retain(|name| !LOGGER_LABELS.contains(name)),
        None => {}
    }
    for (k, v) in labels.iter().filter(|(k, _)| !used.contains(&k.as_str())) {
        record.fields.push((k.as_str().into(), v.as_str().into()));
    }
    record
        .fields
        .extend(meta.into_iter().map(|(k, v)| (k.into(), v.into())));
    record.truncate_message();
    record
}

/// `{job="x", level="info"}` as label pairs (Prometheus label syntax).
pub fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return None,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name, value));
        rest = after[end?..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn json_push_with_labels_and_metadata() {
        let body = br#"{"streams":[{"stream":{"app":"billing","level":"warn","env":"prod"},
            "values":[["1795295700000000000","disk almost full",{"trace_id":"abc"}],
                      ["1795295701000000000","{\"msg\":\"json line\",\"level\":\"error\",\"user\":7}"],
                      ["bad"]]}]}"#;
        let parsed = parse_json(body, NOW).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.rejected, 1);
        let r = &parsed.records[0];
        assert_eq!((r.source.as_str(), r.level), ("billing", Level::Warning));
        assert_eq!(r.time, 1_795_295_700_000_000_000);
        assert_eq!(r.field("env"), Some("prod"));
        assert_eq!(r.field("trace_id"), Some("abc"));
        let r = &parsed.records[1];
        assert_eq!((r.message.as_str(), r.level), ("json line", Level::Error));
        assert_eq!(r.field("user"), Some("7"));
        assert_eq!(r.time, 1_795_295_701_000_000_000);
        assert!(parse_json(b"[]", NOW).is_err());
    }

    #[test]
    fn protobuf_snappy_push() {
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="nginx", host="web-1", note="a \"quoted\", value"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_795_295_700,
                        nanos: 5,
                    }),
                    line: "GET / 200".into(),
                    structured_metadata: vec![LabelPair {
                        name: "pod".into(),
                        value: "p1".into(),
                    }],
                }],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let parsed = parse_protobuf(&unsnap(&body, 1 << 20).unwrap(), NOW).unwrap();
        let r = &parsed.records[0];
        assert_eq!(
            (r.source.as_str(), r.message.as_str()),
            ("nginx", "GET / 200")
        );
        assert_eq!(r.time, 1_795_295_700_000_000_005);
        assert_eq!(r.field("note"), Some(r#"a "quoted", value"#));
        assert_eq!(r.field("pod"), Some("p1"));
        assert!(unsnap(b"not snappy", 1 << 20).is_err());
    }

    #[test]
    fn a_snappy_header_claiming_gigabytes_is_refused_before_allocating() {
        // The fuzzer's find: 5 bytes whose varint header claims 3.28 GB.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x0c];
        match unsnap(&bomb, 100 << 20) {
            Err(UnsnapError::TooLarge { claimed, cap }) => {
                assert_eq!((claimed, cap), (3_221_225_472, 100 << 20))
            }
            other => panic!("{other:?}"),
        }
        let honest = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 4096])
            .unwrap();
        assert!(matches!(
            unsnap(&honest, 4095),
            Err(UnsnapError::TooLarge { claimed: 4096, .. })
        ));
        assert_eq!(unsnap(&honest, 4096).unwrap().len(), 4096);
    }

    #[test]
    fn labels_parse_or_refuse() {
        assert_eq!(parse_labels("{}"), Some(vec![]));
        assert_eq!(
            parse_labels(r#"{a="1",b="x\ny"}"#),
            Some(vec![("a".into(), "1".into()), ("b".into(), "x\ny".into())])
        );
        assert_eq!(parse_labels("a=1"), None);
        assert_eq!(parse_labels(r#"{a="open}"#), None);
    }
}
