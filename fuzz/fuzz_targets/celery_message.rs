//! Celery broker messages and result-backend states: arbitrary bytes must never panic, and
//! every event read has a type.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_protocol::celery::{decode_message, decode_task_meta};

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = decode_message(data) {
        assert!(events.iter().all(|e| !e.kind.is_empty() || e.fields.contains_key("type")));
    }
    let _ = decode_task_meta(data);
});
