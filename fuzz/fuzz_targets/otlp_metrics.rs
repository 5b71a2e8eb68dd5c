//! OTLP metrics, protobuf and JSON: any bytes are points, refused points or a refusal, never a
//! panic; every point kept has a name within bounds, a plausible time, attributes within their budget,
//! finite numbers and histogram buckets in increasing order. The first byte picks the encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::metric::{PointValue, MAX_ATTRIBUTE_BYTES, MAX_NAME_BYTES};
use vigie_protocol::otlp::{metrics, traces};

/// When the inputs are received.
const NOW: i64 = 1_795_295_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let parsed = if pick % 2 == 0 {
        metrics::parse_protobuf(body, NOW)
    } else {
        metrics::parse_json(body, NOW)
    };
    for point in parsed.map(|p| p.records).unwrap_or_default() {
        assert!(!point.name.is_empty() && point.name.len() <= MAX_NAME_BYTES);
        assert!(point.time > 0 && point.time <= NOW + traces::MAX_AHEAD_NS);
        assert!(point.attributes_json().len() <= MAX_ATTRIBUTE_BYTES);
        match point.value {
            PointValue::Number(v) => assert!(v.is_finite()),
            PointValue::Histogram(h) => {
                assert!(h.sum.is_finite());
                assert!(h.buckets.len() <= metrics::MAX_POINT_BUCKETS);
                assert!(h.buckets.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
});
