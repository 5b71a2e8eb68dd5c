//! Uploaded artifact bundles and the maps inside them: any bytes, read as a bundle, must give
//! a bundle or an error within the limits (never a panic, never more than the limits hold);
//! any bytes, read as a source map, must parse or be refused, and a parsed one must resolve
//! an event's frames without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vigie_protocol::sentry::artifact_bundle::{read, Limits};
use vigie_protocol::sentry::symbolicate::{symbolicate, SourceMapFile, SourceMaps};

struct One(SourceMapFile);

impl SourceMaps for One {
    fn by_debug_id(&self, _: &str) -> Option<&SourceMapFile> {
        Some(&self.0)
    }
    fn by_url(&self, _: &str) -> Option<&SourceMapFile> {
        Some(&self.0)
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_files: 16,
        max_file_bytes: 1 << 16,
        max_total_bytes: 1 << 18,
    };
    if let Ok(bundle) = read(data, &limits) {
        assert!(bundle.files.len() <= limits.max_files);
        let total: usize = bundle.files.iter().map(|f| f.data.len()).sum();
        assert!(total <= limits.max_total_bytes);
    }
    // The same bytes as a map, with themselves as the minified file.
    if let Ok(map) = SourceMapFile::parse(data, Some(data), "~/fuzz.js.map") {
        let mut event = json!({"exception": {"values": [{"stacktrace": {"frames": [
            {"filename": "https://x/fuzz.js", "lineno": 1, "colno": 1, "function": "a"},
            {"filename": "https://x/fuzz.js", "lineno": 2, "colno": 40, "function": "b.c"},
            {"filename": "https://x/fuzz.js", "lineno": 4294967295u64, "colno": 4294967296u64}
        ]}}]}});
        symbolicate(&mut event, &One(map));
    }
});
