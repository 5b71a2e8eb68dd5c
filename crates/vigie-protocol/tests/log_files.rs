//! Log files as the real programs write them, read as `vigie import` reads them.
//!
//! Each `tests/fixtures/logs/NAME.log` was written by the program it is named for (how each was
//! made is in `tests/fixtures/logs/README.md`); `NAME.expected.json` holds the format detection
//! must pick and every record the import must give, with its time, level, source, logger,
//! message, job and fields. Both detection and reading are checked, so a change that reads one
//! format better and another worse shows here.
//!
//! After a deliberate change to what a format gives, `VIGIE_BLESS=1 cargo test -p
//! vigie-protocol --test log_files` writes the expected files anew; read their diff before
//! committing it.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use vigie_core::log::LogRecord;
use vigie_protocol::logs::files::{Format, Importer, Zone};

/// When the import runs: the fixtures' files were written on 2026-11-25, and syslog's dates
/// carry no year, so "received" fixes it.
const RECEIVED: i64 = 1_795_651_200_000_000_000; // 2026-11-26T00:00:00Z

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// What `vigie import FILE` does: detect from the first lines, then read every line.
fn import(path: &Path) -> (Format, Vec<LogRecord>) {
    let bytes = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let sample: Vec<&[u8]> = lines.iter().take(200).copied().collect();
    let format = Format::detect(&sample).expect("some format reads the file");
    let source = path.file_stem().unwrap().to_str().unwrap();
    let mut importer = Importer::new(format, source, Zone::utc(), RECEIVED);
    let mut records: Vec<LogRecord> = lines.iter().filter_map(|l| importer.line(l)).collect();
    records.extend(importer.finish());
    (format, records)
}

fn time_text(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn as_json(format: Format, records: &[LogRecord]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = json!({
                "time": time_text(r.time),
                "level": r.level.as_str(),
                "source": r.source,
                "logger": r.logger,
                "message": r.message,
            });
            if !r.job_id.is_empty() {
                v["job_id"] = json!(r.job_id);
            }
            if !r.fields.is_empty() {
                v["fields"] = json!(r.fields);
            }
            if r.flags != 0 {
                v["flags"] = json!(r.flags);
            }
            v
        })
        .collect();
    json!({ "format": format.name(), "records": records })
}

#[test]
fn every_real_file_reads_as_its_program_meant() {
    let bless = std::env::var_os("VIGIE_BLESS").is_some();
    let mut failures = Vec::new();
    for log in fixtures() {
        let (format, records) = import(&log);
        let got = as_json(format, &records);
        let expected_path = log.with_extension("expected.json");
        if bless {
            let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
            std::fs::write(&expected_path, text).unwrap();
            continue;
        }
        let expected: Value = serde_json::from_slice(
            &std::fs::read(&expected_path)
                .unwrap_or_else(|_| panic!("{} has no expected file", log.display())),
        )
        .unwrap();
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                log.display(),
                serde_json::to_string(&expected).unwrap(),
                serde_json::to_string(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// No real file's line is left unread, and every record has its program's time, not the
/// import's — but for uvicorn, whose default log writes no time.
#[test]
fn no_line_of_a_real_file_is_left_unparsed() {
    for log in fixtures() {
        let (_, records) = import(&log);
        assert!(!records.is_empty(), "{}", log.display());
        let timeless = log.file_stem().is_some_and(|s| s == "uvicorn");
        for r in &records {
            assert_eq!(r.flags, 0, "{}: {r:?}", log.display());
            assert_eq!(r.time == RECEIVED, timeless, "{}: {r:?}", log.display());
        }
    }
}

/// December's syslog lines imported in January are last year's.
#[test]
fn a_syslog_date_without_year_is_never_in_the_future() {
    let january = 1_798_761_600_000_000_000; // 2027-01-01T00:00:00Z
    let mut importer = Importer::new(Format::Syslog, "messages", Zone::utc(), january);
    let mut records: Vec<LogRecord> = importer
        .line(b"Dec 31 23:59:58 vm cron: error: job backup failed")
        .into_iter()
        .collect();
    records.extend(importer.finish());
    assert_eq!(time_text(records[0].time), "2026-12-31T23:59:58Z");
}
