//! JSON lines: one JSON object per line, as structlog, python-json-logger, Vector and Fluent
//! Bit write them (`POST /api/v1/logs`). A body that is one JSON array of objects works too.
//!
//! structlog's keys are read as they are: `event` is the message, `level`, `timestamp`,
//! `logger`; `exception` (a formatted traceback) joins the message. Other keys become fields.
//! A line that is not a JSON object is kept whole as an `UNPARSED` record, never dropped;
//! blank lines are skipped.

use super::{record_from, record_from_object, unparsed, Object, Parsed};
use serde_json::Value;

/// The most records reserved ahead for one body.
const RESERVED_RECORDS: usize = 16 * 1024;

/// Parses a body of JSON lines; records without a source get `default_source`.
pub fn parse(body: &[u8], default_source: &str, received: i64) -> Parsed {
    let mut parsed = Parsed::default();
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(trimmed) {
            for item in items {
                match item {
                    Value::Object(map) => {
                        parsed
                            .records
                            .push(record_from_object(map, default_source, received))
                    }
                    other => parsed.records.push(unparsed(
                        other.to_string().as_bytes(),
                        default_source,
                        received,
                    )),
                }
            }
            return parsed;
        }
    }
    // Room for a record a line, found by counting them (cheaper than growing the vector
    // record by record), up to what a usual request holds: a body of empty lines reserves no
    // more than that.
    let lines = memchr::memchr_iter(b'\n', body).count() + 1;
    parsed.records.reserve(lines.min(RESERVED_RECORDS));
    for line in body.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match Object::parse(line) {
            Ok(object) => parsed
                .records
                .push(record_from(object, default_source, received)),
            Err(_) => parsed
                .records
                .push(unparsed(line, default_source, received)),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::{Level, LogRecord};

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn a_null_part_gives_way_to_the_next_name_and_an_unread_time_stays_in_place() {
        let body = br#"{"timestamp": null, "time": "2026-11-21T21:15:00Z", "level": null, "levelname": "WARN", "msg": "a"}
{"ts": "the day before", "msg": "b", "z": 1, "a": 2}"#;
        let parsed = parse(body, "api", NOW);
        let first = &parsed.records[0];
        assert_eq!(first.time, 1_795_295_700_000_000_000);
        assert_eq!(
            (first.level, first.level_raw.as_str()),
            (Level::Warning, "WARN")
        );
        assert_eq!(
            first.fields,
            [
                (
                    vigie_core::Text::from("timestamp"),
                    vigie_core::Text::from("null")
                ),
                ("level".into(), "null".into())
            ]
        );
        let second = &parsed.records[1];
        assert_eq!(second.time, NOW);
        assert_eq!(
            second.fields,
            [
                (
                    vigie_core::Text::from("ts"),
                    vigie_core::Text::from("the day before")
                ),
                ("z".into(), "1".into()),
                ("a".into(), "2".into())
            ],
            "in the order sent"
        );
    }

    #[test]
    fn structlog_lines_as_they_are() {
        let body = br#"{"event": "invoice sent", "level": "warning", "timestamp": "2026-11-21T21:15:00.5Z", "logger": "invoices", "invoice": 42, "to": "a@b.c", "job_id": "nightly-1"}
{"event": "boom", "level": "error", "exception": "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad"}

not json at all
"#;
        let parsed = parse(body, "api", NOW);
        assert_eq!(parsed.records.len(), 3);
        let first = &parsed.records[0];
        assert_eq!(first.message, "invoice sent");
        assert_eq!(first.level, Level::Warning);
        assert_eq!(first.logger, "invoices");
        assert_eq!(first.time, 1_795_295_700_500_000_000);
        assert_eq!(first.source, "api");
        assert_eq!(first.job_id, "nightly-1");
        assert_eq!(first.field("invoice"), Some("42"));
        assert_eq!(first.field("to"), Some("a@b.c"));
        let second = &parsed.records[1];
        assert!(second.message.starts_with("boom\nTraceback"));
        assert!(second.message.ends_with("ValueError: bad"));
        assert_eq!(second.time, NOW, "no timestamp: received time");
        let third = &parsed.records[2];
        assert_eq!(third.message, "not json at all");
        assert_eq!(third.flags, LogRecord::UNPARSED);
    }

    #[test]
    fn a_body_of_empty_lines_reserves_no_more_than_the_cap() {
        // A megabyte of newlines counts a million lines: what is reserved ahead stays capped,
        // and nothing is stored.
        let parsed = parse(&vec![b'\n'; 1 << 20], "x", NOW);
        assert!(parsed.records.is_empty());
        assert!(
            parsed.records.capacity() <= RESERVED_RECORDS,
            "reserved {}",
            parsed.records.capacity()
        );
        // A usual body has its records' room reserved at once.
        let parsed = parse(b"a\nb\nc", "x", NOW);
        assert_eq!(parsed.records.len(), 3);
        assert!(parsed.records.capacity() >= 3);
    }

    #[test]
    fn arrays_sources_and_bad_bytes() {
        let parsed = parse(
            br#"[{"msg": "a", "app": "billing", "level": "WARN"}, 5]"#,
            "x",
            NOW,
        );
        assert_eq!(parsed.records[0].source, "billing");
        assert_eq!(parsed.records[0].level_raw, "WARN");
        assert_eq!(parsed.records[1].message, "5");
        let parsed = parse(b"caf\xe9 au lait\n", "x", NOW);
        assert_eq!(parsed.records[0].message, "caf\u{fffd} au lait");
        assert_eq!(
            parsed.records[0].flags,
            LogRecord::UNPARSED | LogRecord::LOSSY_UTF8
        );
    }
}
