//! OTLP traces, protobuf and JSON: any bytes are spans, refused spans or a refusal, never a
//! panic; every span kept has well-formed ids and does not end before it starts. The first
//! byte picks the encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_protocol::otlp::traces;

/// When the inputs are received.
const NOW: i64 = 1_795_295_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let parsed = if pick % 2 == 0 {
        traces::parse_protobuf(body, NOW)
    } else {
        traces::parse_json(body, NOW)
    };
    for span in parsed.map(|p| p.records).unwrap_or_default() {
        assert_eq!(span.trace_id.len(), 32);
        assert_eq!(span.span_id.len(), 16);
        assert!(span.parent_span_id.is_empty() || span.parent_span_id.len() == 16);
        assert!(span.end >= span.start);
        assert!(span.start > 0 && span.start <= NOW + traces::MAX_AHEAD_NS);
    }
});
