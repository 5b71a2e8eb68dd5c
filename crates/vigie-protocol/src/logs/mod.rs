//! Log wire formats, each turned into `vigie_core::LogRecord`s.
//!
//! - [`jsonlines`]: one JSON object per line (structlog, python-json-logger, Vector, Fluent Bit).
//! - [`otlp`]: OpenTelemetry's OTLP/HTTP logs, protobuf and JSON.
//! - [`loki`]: Grafana Loki's push API, JSON and snappy-compressed protobuf.
//! - [`syslog`]: RFC 5424 and RFC 3164 messages, and the framing of syslog over TCP.
//! - [`files`]: lines of existing log files (nginx, PostgreSQL, Python logging, …) for import.
//!
//! Every parser takes the time the data arrived (`received`, ns) and fills the record's time
//! from the message when it has one. Nothing a sender writes is dropped silently: a line no
//! format recognizes is kept whole as a record flagged `UNPARSED` (JSON lines, syslog, files),
//! or counted as rejected where the protocol has a way to say so (OTLP `partial_success`).

pub mod files;
pub mod jsonlines;
pub mod loki;
pub mod object;
pub mod otlp;
pub mod syslog;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use vigie_core::log::{lossy_utf8, LogRecord, Text};
use vigie_core::Level;

pub use object::{into_text, Member, Object};

/// What a batch of input gave: the records (log records unless said otherwise), and what could
/// not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed<T = LogRecord> {
    pub records: Vec<T>,
    /// Entries refused (counted, reported to the sender where the protocol allows).
    pub rejected: usize,
    /// Why the first refused entry was refused.
    pub first_error: Option<String>,
}

impl<T> Parsed<T> {
    pub fn reject(&mut self, why: impl Into<String>) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why.into());
        }
    }
}

/// A raw line no format recognized, kept whole.
pub fn unparsed(line: &[u8], source: &str, received: i64) -> LogRecord {
    let (message, flags) = lossy_utf8(line);
    let mut record = LogRecord {
        time: received,
        received,
        source: source.into(),
        message: message.trim_end().into(),
        flags: flags | LogRecord::UNPARSED,
        ..LogRecord::default()
    };
    record.truncate_message();
    record
}

/// Reads a time as senders write it: RFC 3339 / ISO 8601 (with `T` or a space, `,` or `.`
/// before the fraction, `Z` or an offset; no offset means UTC), or a Unix epoch number in
/// seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(ns) = vigie_core::time::rfc3339_ns(text) {
        return Some(ns);
    }
    if let Some((whole, fraction)) = text.split_once('.') {
        // Seconds with a fraction, read exactly (a float would lose the nanoseconds).
        if let (Ok(seconds), true) = (
            whole.parse::<i64>(),
            fraction.bytes().all(|b| b.is_ascii_digit()),
        ) {
            if (0..100_000_000_000).contains(&seconds) && !fraction.is_empty() {
                let digits = &fraction[..fraction.len().min(9)];
                let nanos: i64 = format!("{digits:0<9}").parse().ok()?;
                return Some(seconds * 1_000_000_000 + nanos);
            }
        }
    }
    if let Ok(whole) = text.parse::<i64>() {
        return epoch_integer(whole);
    }
    if let Ok(number) = text.parse::<f64>() {
        return epoch_number(number);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(vigie_core::time::saturating_ns(t.unix_timestamp_nanos()));
    }
    let mut normalized: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (10, ' ') => 'T',
            (19, ',') => '.',
            _ => c,
        })
        .collect();
    // `+0100`, as `%z` writes it (Python's `datefmt`), is `+01:00` in RFC 3339.
    let b = normalized.as_bytes();
    if b.len() >= 24
        && matches!(b[b.len() - 5], b'+' | b'-')
        && b[b.len() - 4..].iter().all(u8::is_ascii_digit)
        && b[b.len() - 6].is_ascii_digit()
    {
        normalized.insert(normalized.len() - 2, ':');
    }
    if let Ok(t) = OffsetDateTime::parse(&normalized, &Rfc3339) {
        return Some(vigie_core::time::saturating_ns(t.unix_timestamp_nanos()));
    }
    let with_fraction =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(&normalized, &with_fraction)
        .or_else(|_| PrimitiveDateTime::parse(&normalized, &without))
        .ok()
        .map(|t| vigie_core::time::saturating_ns(t.assume_utc().unix_timestamp_nanos()))
}

/// A whole epoch number, read exactly (as a float, a time in ms loses its last digit): by
/// magnitude as [`epoch_number`] reads it.
pub fn epoch_integer(n: i64) -> Option<i64> {
    let scale = match n {
        ..0 => return None,
        0..100_000_000_000 => 1_000_000_000,
        100_000_000_000..100_000_000_000_000 => 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => 1_000,
        _ => 1,
    };
    n.checked_mul(scale)
}

/// An epoch number: < 1e11 seconds, < 1e14 ms, < 1e17 µs, else ns.
pub fn epoch_number(n: f64) -> Option<i64> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ns = if n < 1e11 {
        n * 1e9
    } else if n < 1e14 {
        n * 1e6
    } else if n < 1e17 {
        n * 1e3
    } else {
        n
    };
    (ns < 9.2e18).then_some(ns as i64)
}

/// A JSON value as field text: strings as they are, anything else as compact JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The keys of a JSON log object that mean something to Vigie; the rest become fields.
const MESSAGE_KEYS: &[&str] = &["event", "message", "msg", "log", "text"];
pub(crate) const LEVEL_KEYS: &[&str] = &["level", "levelname", "severity", "lvl", "log.level"];
const TIME_KEYS: &[&str] = &["timestamp", "time", "ts", "@timestamp", "asctime", "date"];
const LOGGER_KEYS: &[&str] = &["logger", "name", "logger_name", "log.logger"];
const SOURCE_KEYS: &[&str] = &["source", "app", "service", "application"];
const JOB_KEYS: &[&str] = &["job_id", "vigie_job"];
const TRACE_KEYS: &[&str] = &["trace_id", "traceId", "otelTraceID"];
const SPAN_KEYS: &[&str] = &["span_id", "spanId", "otelSpanID"];
const TRACEBACK_KEYS: &[&str] = &["exception", "exc_info", "stack", "stack_trace", "traceback"];

/// Which of `keys` comes first (in their order) among those `object` holds with a value
/// `wanted` admits: one pass over the members, comparing lengths before bytes.
fn first_key(
    object: &Object,
    keys: &[&'static str],
    wanted: impl Fn(&Member) -> bool,
) -> Option<&'static str> {
    object
        .iter()
        .filter(|(_, value)| wanted(value))
        .filter_map(|(key, _)| keys.iter().position(|k| *k == key))
        .min()
        .map(|rank| keys[rank])
}

fn take_text(object: &mut Object, keys: &[&'static str]) -> Option<Text> {
    take(object, keys, |v| !v.is_null()).map(|(_, m)| m.into_text())
}

/// Takes out the member [`first_key`] picks, with its key.
fn take<'a>(
    object: &mut Object<'a>,
    keys: &[&'static str],
    wanted: impl Fn(&Member) -> bool,
) -> Option<(&'static str, Member<'a>)> {
    let key = first_key(object, keys, wanted)?;
    Some((key, object.remove(key)?))
}

/// The stack of an error logged as an object — pino's and winston's `err` / `error`:
/// `{"type": "Error", "message": "…", "stack": "Error: …\n    at …"}`. The stack goes to the
/// message (it starts with the type and message); what else the object holds stays a field.
fn error_stack(object: &mut Object) -> Option<Text> {
    let key = ["err", "error"].into_iter().find(|k| {
        object
            .get(k)
            .and_then(|e| e.get("stack"))
            .is_some_and(Value::is_string)
    })?;
    let Some(Member::Other(Value::Object(error))) = object.get_mut(key) else {
        return None;
    };
    let stack = error.remove("stack").map(into_text)?;
    error.remove("message");
    if error.keys().all(|k| k == "type") {
        object.remove(key);
    }
    Some(stack.into())
}

/// A record in Vigie's own shape — what `GET /api/v1/logs/search`, `vigie search --json` and
/// JSON-lines downloads write, and what `vigie import` sends to a remote Vigie: told apart by
/// its `time_ns`, read back exactly (`fields` as an object, `level_raw`, `flags`; `time` and
/// `cursor` are derived, not data). `None` for any other object.
fn vigie_record(object: &mut Object, default_source: &str, received: i64) -> Option<LogRecord> {
    let time = object.get("time_ns")?.value()?.as_i64()?;
    let is_object = |m: &Member| matches!(m, Member::Other(Value::Object(_)));
    if object.get("fields").is_some_and(|f| !is_object(f)) {
        return None;
    }
    let fields = match object.remove("fields") {
        Some(Member::Other(Value::Object(fields))) => fields,
        _ => Map::new(),
    };
    let mut text = |key: &str| {
        object
            .remove(key)
            .map(Member::into_text)
            .unwrap_or_default()
    };
    let level_raw = text("level_raw");
    let level = Level::parse(&text("level")).unwrap_or_default();
    let source = Some(text("source")).filter(|s| !s.is_empty());
    let (logger, message) = (text("logger"), text("message"));
    let (job_id, trace_id, span_id) = (text("job_id"), text("trace_id"), text("span_id"));
    let mut flags = 0;
    for flag in object
        .get("flags")
        .and_then(Member::value)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        flags |= match flag.as_str() {
            Some("unparsed") => LogRecord::UNPARSED,
            Some("lossy_utf8") => LogRecord::LOSSY_UTF8,
            Some("truncated") => LogRecord::TRUNCATED,
            _ => 0,
        };
    }
    let mut record = LogRecord {
        time,
        received,
        source: source.unwrap_or_else(|| default_source.into()),
        level,
        level_raw,
        logger,
        message,
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.into(), into_text(v).into()))
            .collect(),
        job_id,
        trace_id,
        span_id,
        flags,
    };
    record.truncate_message();
    Some(record)
}

/// A line of Docker's `json-file` log driver: `{"log": "…\n", "stream": "stderr", "time":
/// "…"}`. The line the container wrote is the record (read as JSON lines again when it is a
/// JSON object, as structlog or pino write them), its stream a field, Docker's time the time
/// unless the line says its own. `None` for any other object.
fn docker_json_file(object: &mut Object, default_source: &str, received: i64) -> Option<LogRecord> {
    let docker_keys = ["log", "stream", "time", "attrs"];
    if !object.contains_key("stream") || !object.keys().all(|k| docker_keys.contains(&k)) {
        return None;
    }
    let Some(Member::Str(line)) = object.remove("log") else {
        return None;
    };
    let line = line.trim_end_matches(['\n', '\r']);
    let time = object
        .get("time")
        .and_then(Member::as_str)
        .and_then(parse_time);
    let mut record = match Object::parse(line.as_bytes()) {
        Ok(inner) => record_from(inner, default_source, received),
        _ => LogRecord {
            time: received,
            received,
            source: default_source.into(),
            message: line.into(),
            ..LogRecord::default()
        },
    };
    if record.time == received {
        if let Some(time) = time {
            record.time = time;
        }
    }
    if let Some(stream) = object.remove("stream") {
        record.fields.push(("stream".into(), stream.into_text()));
    }
    if let Some(Member::Other(Value::Object(attrs))) = object.remove("attrs") {
        record.fields.extend(
            attrs
                .into_iter()
                .map(|(k, v)| (k.into(), into_text(v).into())),
        );
    }
    record.truncate_message();
    Some(record)
}

/// Caddy's access log (`"logger": "http.log.access…"`): the request's method, URI, host,
/// client and the status become fields named as an access log's, and the message says them;
/// the whole request stays a field too.
fn caddy_access(object: &mut Object) {
    let is_access = object
        .get("logger")
        .and_then(Member::as_str)
        .is_some_and(|l| l.starts_with("http.log.access"));
    let Some(Member::Other(Value::Object(request))) =
        object.get("request").filter(|_| is_access).cloned()
    else {
        return;
    };
    let text = |v: Option<&Value>| v.map(value_text).unwrap_or_default();
    let member_text = |m: Option<&Member>| m.map(|m| m.text().into_owned()).unwrap_or_default();
    let (method, uri) = (text(request.get("method")), text(request.get("uri")));
    let status = member_text(object.get("status"));
    for (name, value) in [
        ("method", method.clone()),
        ("path", uri.clone()),
        ("host", text(request.get("host"))),
        ("remote_addr", text(request.get("remote_ip"))),
        ("proto", text(request.get("proto"))),
    ] {
        if !value.is_empty() {
            object.insert(name, Value::String(value));
        }
    }
    let said = member_text(object.get("msg"));
    object.insert(
        "msg",
        Value::String(format!("{said} {method} {uri} {status}")),
    );
}

/// A JSON object as a record: the known keys above fill the record, the rest become fields.
/// A traceback (structlog's `exception`) is appended to the message, so it stays one record.
pub fn record_from_object(
    map: Map<String, Value>,
    default_source: &str,
    received: i64,
) -> LogRecord {
    record_from(Object::from(map), default_source, received)
}

/// [`record_from_object`] for an object read by [`Object::parse`]: its fields stay in the
/// order sent.
pub fn record_from(mut object: Object, default_source: &str, received: i64) -> LogRecord {
    if let Some(record) = vigie_record(&mut object, default_source, received) {
        return record;
    }
    if let Some(record) = docker_json_file(&mut object, default_source, received) {
        return record;
    }
    caddy_access(&mut object);
    let mut message = take_text(&mut object, MESSAGE_KEYS).unwrap_or_default();
    if let Some(traceback) =
        take_text(&mut object, TRACEBACK_KEYS).or_else(|| error_stack(&mut object))
    {
        if !traceback.is_empty() && traceback != "true" {
            message = format!("{message}\n{traceback}").into();
        }
    }
    // pino writes its level as a number (30 = info); so do some syslog-minded loggers.
    let numeric_level = first_key(&object, LEVEL_KEYS, |v| v.is_number())
        .and_then(|k| object.get(k))
        .and_then(Member::value)
        .and_then(Value::as_f64);
    // The level and the time are read where they lie; only a level spelled otherwise than
    // Vigie's (`WARN`) is kept as text.
    let level_sent = take(&mut object, LEVEL_KEYS, |v| !v.is_null()).map(|(_, m)| m);
    let level_text = level_sent.as_ref().map(Member::text).unwrap_or_default();
    let level = numeric_level
        .and_then(Level::from_number)
        .or_else(|| Level::parse(&level_text))
        .unwrap_or_default();
    let level_raw = match level_sent {
        Some(sent) if level.as_str() != level_text => sent.into_text(),
        _ => Text::default(),
    };
    let time_key = first_key(&object, TIME_KEYS, |v| !v.is_null());
    let parsed_time = time_key
        .and_then(|k| object.get(k))
        .and_then(|m| parse_time(&m.text()));
    let time = parsed_time.unwrap_or(received);
    // A time no spelling reads stays in its place, a field: nothing sent is dropped.
    let time_sent = time_key
        .filter(|_| parsed_time.is_some())
        .and_then(|k| object.remove(k));
    let source = take_text(&mut object, SOURCE_KEYS);
    let logger = take_text(&mut object, LOGGER_KEYS).unwrap_or_default();
    let job_id = take_text(&mut object, JOB_KEYS).unwrap_or_default();
    let trace_id = take_text(&mut object, TRACE_KEYS).unwrap_or_default();
    let span_id = take_text(&mut object, SPAN_KEYS).unwrap_or_default();
    let mut record = LogRecord {
        time,
        received,
        source: source.unwrap_or_else(|| default_source.into()),
        level,
        level_raw,
        logger,
        message,
        job_id,
        trace_id,
        span_id,
        fields: object.into_fields(),
        flags: 0,
    };
    if let Some(sent) = time_sent {
        record.place_in_time_as(|| sent.into_text());
    }
    record.truncate_message();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_key_is_the_first_name_held_whatever_the_records_size() {
        // As a lookup per name picks it: small and large records, nulls, numbers, texts.
        let names: Vec<&str> = TIME_KEYS.iter().copied().chain(["x"]).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let admits: [fn(&Value) -> bool; 3] = [Value::is_number, |v| !v.is_null(), |_| true];
        for _ in 0..3000 {
            let mut map = Map::new();
            for i in 0..next(30) {
                let name = match next(2) {
                    0 => names[next(names.len())].to_string(),
                    _ => format!("field{i}"),
                };
                let value = [Value::Null, Value::from(5), Value::from("t")][next(3)].clone();
                map.insert(name, value);
            }
            let object = Object::from(map.clone());
            for wanted in admits {
                let by_lookup = TIME_KEYS
                    .iter()
                    .find(|k| map.get(**k).is_some_and(wanted))
                    .copied();
                let picked = first_key(&object, TIME_KEYS, |m| match m {
                    Member::Str(s) => wanted(&Value::String(s.to_string())),
                    Member::Other(v) => wanted(v),
                });
                assert_eq!(picked, by_lookup, "{map:?}");
            }
        }
    }

    #[test]
    fn times_in_every_common_spelling() {
        let at = 1_795_295_700_000_000_000i64; // 2026-11-21T21:15:00Z
        for text in [
            "2026-11-21T21:15:00Z",
            "2026-11-21T22:15:00+01:00",
            "2026-11-21 21:15:00",
            "2026-11-21 21:15:00,000",
            "2026-11-21T21:15:00.000000",
            "1795295700",
            "1795295700000",
            "1795295700000000000",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        assert_eq!(parse_time("1795295700.25"), Some(at + 250_000_000));
        assert_eq!(
            parse_time("2026-11-21T22:15:00+0100"),
            Some(at),
            "Python's %z"
        );
        // pino's milliseconds, to the millisecond (a float gets ...289 999 872).
        assert_eq!(parse_time("1795607087290"), Some(1_795_607_087_290_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-5"), None);
    }

    #[test]
    fn vigie_own_record_shape_reads_back_exactly() {
        let line = r#"{"time":"2026-11-21T21:15:00.000000001Z","time_ns":1795295700000000001,"source":"pg","level":"info","level_raw":"LOG","logger":"postgres","message":"checkpoint","fields":{"pid":"7","level":"x"},"job_id":"j1","flags":["unparsed"],"cursor":"1-2-3"}"#;
        let Value::Object(map) = serde_json::from_str(line).unwrap() else {
            unreachable!()
        };
        let r = record_from_object(map, "other", 5);
        assert_eq!(r.time, 1_795_295_700_000_000_001);
        assert_eq!(
            (r.source.as_str(), r.level, r.level_raw.as_str()),
            ("pg", Level::Info, "LOG")
        );
        assert_eq!(
            (r.logger.as_str(), r.message.as_str(), r.job_id.as_str()),
            ("postgres", "checkpoint", "j1")
        );
        assert_eq!(
            r.fields,
            [
                (vigie_core::Text::from("level"), vigie_core::Text::from("x")),
                ("pid".into(), "7".into())
            ]
        );
        assert_eq!(r.flags, LogRecord::UNPARSED);
        assert_eq!(r.received, 5);
    }

    /// Untrusted bytes: every reader returns records, raw records or a refusal, never panics.
    /// (`fuzz/` runs the same property guided.)
    #[test]
    fn random_bodies_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let pieces: [&[u8]; 16] = [
            b"{\"event\":\"x\"",
            b"\"level\":",
            b"}",
            b"\n",
            b"<34>",
            b"Nov 21 22:15:00 ",
            b"1 2026-11-21T22:15:00Z h a - - - ",
            b"12 ",
            b"\0",
            b"\x0a\x05",
            b"\xff\xfe",
            b"[21/Nov/2026:22:15:00 +0100] \"GET / HTTP/1.1\" 200 5",
            b"Traceback",
            b"  ",
            b"2026-11-21 22:15:00.123 UTC [1] ERROR:  ",
            b"DETAIL:  ",
        ];
        for _ in 0..5_000 {
            let body: Vec<u8> = (0..rng.gen_range(0..16))
                .flat_map(|_| pieces[rng.gen_range(0..pieces.len())].iter().copied())
                .collect();
            let now = 1_795_295_700_000_000_000;
            let _ = jsonlines::parse(&body, "app", now);
            let _ = otlp::parse_protobuf(&body, now);
            let _ = otlp::parse_json(&body, now);
            if let Ok(raw) = loki::unsnap(&body, 1 << 20) {
                let _ = loki::parse_protobuf(&raw, now);
            }
            let _ = loki::parse_json(&body, now);
            let mut framer = syslog::Framer::default();
            framer.push(&body, |f| drop(syslog::parse(f, now)));
            framer.finish(|f| drop(syslog::parse(f, now)));
            for format in files::Format::ALL {
                let mut importer = files::Importer::new(format, "f", files::Zone::utc(), now);
                for line in body.split(|b| *b == b'\n') {
                    let _ = importer.line(line);
                }
                let _ = importer.finish();
            }
        }
    }
}
