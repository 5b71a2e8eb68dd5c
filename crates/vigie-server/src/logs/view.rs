//! A log record as the JSON API, live tails, JSON-lines downloads and JSON files show it.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use vigie_core::{LogRecord, Text};
use vigie_store::logs::Cursor;

#[derive(Serialize)]
pub struct RecordView<'a> {
    /// RFC 3339 in UTC with nanoseconds.
    pub time: String,
    /// Nanoseconds since the epoch, for exact sorting.
    pub time_ns: i64,
    pub source: &'a str,
    pub level: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub level_raw: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub logger: &'a str,
    pub message: &'a str,
    #[serde(serialize_with = "as_map", skip_serializing_if = "<[_]>::is_empty")]
    pub fields: &'a [(Text, Text)],
    #[serde(skip_serializing_if = "str::is_empty")]
    pub job_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub trace_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub span_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
    /// Where the record sits, for paging (`before=`) and links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

fn as_map<S: Serializer>(fields: &&[(Text, Text)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(fields.len()))?;
    for (k, v) in fields.iter() {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl<'a> RecordView<'a> {
    pub fn new(r: &'a LogRecord, cursor: Option<Cursor>) -> RecordView<'a> {
        let mut flags = Vec::new();
        for (bit, name) in [
            (LogRecord::UNPARSED, "unparsed"),
            (LogRecord::LOSSY_UTF8, "lossy_utf8"),
            (LogRecord::TRUNCATED, "truncated"),
        ] {
            if r.flags & bit != 0 {
                flags.push(name);
            }
        }
        RecordView {
            time: rfc3339_ns(r.time),
            time_ns: r.time,
            source: &r.source,
            level: r.level.as_str(),
            level_raw: &r.level_raw,
            logger: &r.logger,
            message: &r.message,
            fields: &r.fields,
            job_id: &r.job_id,
            trace_id: &r.trace_id,
            span_id: &r.span_id,
            flags,
            cursor: cursor.map(|c| c.to_string()),
        }
    }
}

/// `2026-11-21T21:15:00.123456789Z`.
pub fn rfc3339_ns(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}
