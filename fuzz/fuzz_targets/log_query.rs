//! The log search language: any text is a query or an error that points inside the text;
//! a parsed query can be evaluated against a record without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::logquery::LogQuery;
use vigie_core::{Level, LogRecord};

const NOW: i64 = 1_795_300_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match LogQuery::parse(text, NOW) {
        Ok(query) => {
            let record = LogRecord {
                time: NOW,
                level: Level::Error,
                source: "worker".into(),
                logger: "invoices.send".into(),
                message: text.into(),
                fields: vec![("user".into(), text.into())],
                job_id: "nightly-1".into(),
                ..LogRecord::default()
            };
            let _ = query.matches(&record);
            let _ = query.required_words();
            let _ = query.level_mask();
        }
        Err(error) => assert!(error.position <= text.len(), "{error:?} in {text:?}"),
    }
});
