//! Sentry envelopes and events: any bytes are an envelope, a named refusal, or items before
//! the damage; every JSON item summarizes, groups and scrubs without panicking; streamed spans
//! assemble into transactions that summarize, and feedback reads or is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::event::group;
use vigie_core::scrub::Scrubber;
use vigie_protocol::sentry::{envelope, event, items, spans, transaction};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = envelope::parse(data) else {
        return;
    };
    for item in &parsed.envelope.items {
        assert!(item.payload.len() <= data.len());
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(item.payload) {
            let _ = event::event_id(&value);
            let _ = event::timestamp(&value);
            let _ = items::feedback(&value, "feedback");
            let _ = items::feedback(&value, "user_report");
            if let Ok((list, _)) = spans::spans_of(&value) {
                let count = list.len();
                let assembled = spans::assemble(list);
                assert!(assembled.transactions.len() + assembled.loose.len() + assembled.unusable <= count);
                for t in &assembled.transactions {
                    let _ = transaction::summarize(t);
                }
            }
            let grouping = group(&event::summarize(&value));
            assert_eq!(grouping.key.len(), 32);
            Scrubber::default().scrub_event(&mut value);
            assert_eq!(Scrubber::default().scrub_event(&mut value), 0, "scrubbing is idempotent");
        }
    }
});
