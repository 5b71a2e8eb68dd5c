//! The jobs API's JSON bodies: any JSON must be read or refused with a field name, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::ProjectId;
use vigie_protocol::jobs;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = jobs::new_job(ProjectId(1), &body);
    let _ = jobs::progress(&body);
    let _ = jobs::heartbeat(&body);
    let _ = jobs::finish(&body);
    if let Ok((_, bad)) = jobs::items(&body) {
        for error in &bad {
            assert!(!error.field.is_empty());
        }
    }
});
