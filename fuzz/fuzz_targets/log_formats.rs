//! Every log wire format and file format: any bytes are records, raw records or a refusal,
//! never a panic. The first byte picks the reader.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_protocol::logs::files::{Format, Importer, Zone};
use vigie_protocol::logs::{jsonlines, loki, otlp, syslog};

const NOW: i64 = 1_795_300_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 8 {
        0 => drop(jsonlines::parse(body, "app", NOW)),
        1 => drop(otlp::parse_protobuf(body, NOW)),
        2 => drop(otlp::parse_json(body, NOW)),
        3 => {
            // The cap the server passes (max_decompressed_mib) is checked before allocating.
            if let Ok(raw) = loki::unsnap(body, 16 << 20) {
                assert!(raw.len() <= 16 << 20);
                drop(loki::parse_protobuf(&raw, NOW));
            }
        }
        4 => drop(loki::parse_json(body, NOW)),
        5 => {
            let mut framer = syslog::Framer::default();
            let mut frames = Vec::new();
            framer.push(body, |f| frames.push(syslog::parse(f, NOW)));
            framer.finish(|f| frames.push(syslog::parse(f, NOW)));
        }
        _ => {
            let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
            let format = Format::detect(&lines)
                .unwrap_or(Format::ALL[pick as usize % Format::ALL.len()]);
            let mut importer = Importer::new(format, "file", Zone::utc(), NOW);
            let mut records = 0;
            for line in &lines {
                records += usize::from(importer.line(line).is_some());
            }
            records += usize::from(importer.finish().is_some());
            assert!(records <= lines.len(), "more records than lines");
        }
    }
});
