//! Artifact bundles: the zip files `sentry-cli sourcemaps upload` and the bundler plugins send,
//! holding a build's minified files and their source maps.
//!
//! ```text
//!   "SYSB" + version (8 bytes, optional)   a source bundle's header, before the zip
//!   zip ─ manifest.json   {"files": {"files/_/_/app.min.js": {"type": "minified_source",
//!       │                   "url": "~/app.min.js", "headers": {"debug-id": "…",
//!       │                   "sourcemap": "app.min.js.map"}}, …},
//!       │                  "org": "…", "release": "…", "dist": "…"}   (attributes, flattened)
//!       └ files/…         each file the manifest names
//! ```
//!
//! [`read`] checks every limit while it inflates, never from the sizes the zip claims: a
//! bomb that says "1 KiB" and inflates to gigabytes stops at the limit with an error.
//! A file's debug id comes from its `debug-id` header, else from the file itself (the
//! `//# debugId=` comment `sentry-cli sourcemaps inject` appends, or a map's `debug_id`).

use serde_json::Value;
use std::io::Read;

/// What one bundle may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Files in the bundle (the manifest included).
    pub max_files: usize,
    /// One file, inflated.
    pub max_file_bytes: usize,
    /// Every file together, inflated.
    pub max_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_files: 10_000,
            max_file_bytes: 64 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

/// What a file in a bundle is, as its manifest says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    MinifiedSource,
    SourceMap,
    Source,
    Other,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::MinifiedSource => "minified_source",
            FileKind::SourceMap => "source_map",
            FileKind::Source => "source",
            FileKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> FileKind {
        match text {
            "minified_source" => FileKind::MinifiedSource,
            "source_map" => FileKind::SourceMap,
            "source" => FileKind::Source,
            _ => FileKind::Other,
        }
    }
}

/// One file of a bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleFile {
    pub kind: FileKind,
    /// Where the file is served, `~/` standing for any scheme and host (`~/assets/app.js`).
    pub url: String,
    /// Its debug id, as 32 lowercase hex digits (see [`normalize_debug_id`]).
    pub debug_id: Option<String>,
    /// A minified file's source map, as its `sourcemap` header names it (relative to `url`).
    pub sourcemap: Option<String>,
    pub data: Vec<u8>,
}

/// A bundle's contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bundle {
    pub release: Option<String>,
    pub dist: Option<String>,
    pub files: Vec<BundleFile>,
}

/// Why a bundle cannot be read: what the uploader is told.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("the artifact bundle is not a valid zip file: {0}")]
    NotZip(String),
    #[error("the artifact bundle has no readable manifest.json: {0}")]
    Manifest(String),
    #[error("the artifact bundle holds more than {0} files")]
    TooManyFiles(usize),
    #[error("{name} is larger than {limit} bytes once inflated")]
    FileTooLarge { name: String, limit: usize },
    #[error("the artifact bundle is larger than {0} bytes once inflated")]
    TooLarge(usize),
    #[error("{name} cannot be read from the bundle: {reason}")]
    File { name: String, reason: String },
}

/// Reads a bundle, within `limits`.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    // A source bundle's 8-byte header stays: the zip reader finds where the archive starts
    // (sentry-cli writes offsets counted from the file's start, header included).
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| BundleError::NotZip(e.to_string()))?;
    if archive.len() > limits.max_files {
        return Err(BundleError::TooManyFiles(limits.max_files));
    }
    let mut budget = limits.max_total_bytes;
    let manifest =
        inflate(&mut archive, "manifest.json", limits, &mut budget).map_err(|e| match e {
            BundleError::File { reason, .. } => BundleError::Manifest(reason),
            other => other,
        })?;
    let manifest: Value =
        serde_json::from_slice(&manifest).map_err(|e| BundleError::Manifest(e.to_string()))?;
    let described = manifest
        .get("files")
        .and_then(Value::as_object)
        .ok_or_else(|| BundleError::Manifest("it lists no files".into()))?;
    let mut bundle = Bundle {
        release: attribute(&manifest, "release"),
        dist: attribute(&manifest, "dist"),
        files: Vec::with_capacity(described.len()),
    };
    for (path, info) in described {
        let data = inflate(&mut archive, path, limits, &mut budget)?;
        let header = |name: &str| {
            info.get("headers")
                .and_then(Value::as_object)
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                })
                .map(str::to_string)
        };
        let url = info.get("url").and_then(Value::as_str).unwrap_or(path);
        let sourcemap = header("sourcemap").or_else(|| header("x-sourcemap"));
        // Release bundles of older sentry-cli name no type: it is guessed as for one file.
        let kind = match info.get("type").and_then(Value::as_str) {
            Some(kind) => FileKind::parse(kind),
            None => guess_kind(url, sourcemap.is_some(), &data),
        };
        let debug_id = header("debug-id")
            .or_else(|| header("debug_id"))
            .and_then(|id| normalize_debug_id(&id))
            .or_else(|| embedded_debug_id(kind, &data));
        bundle.files.push(BundleFile {
            kind,
            url: url.to_string(),
            debug_id,
            sourcemap,
            data,
        });
    }
    Ok(bundle)
}

/// One file of a release, as older sentry-cli uploads them one by one (`releases files …
/// upload-sourcemaps`): its name is its URL (`~/app.js`), its headers may name its map
/// (`Sourcemap: app.js.map`) and its debug id.
pub fn release_file(name: &str, headers: &[(String, String)], data: Vec<u8>) -> BundleFile {
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let sourcemap = header("sourcemap")
        .or_else(|| header("x-sourcemap"))
        .or_else(|| mapping_url_comment(&data));
    let kind = guess_kind(name, sourcemap.is_some(), &data);
    let debug_id = header("debug-id")
        .and_then(|id| normalize_debug_id(&id))
        .or_else(|| embedded_debug_id(kind, &data));
    BundleFile {
        kind,
        url: name.to_string(),
        debug_id,
        sourcemap: sourcemap.filter(|_| kind == FileKind::MinifiedSource),
        data,
    }
}

/// What a file whose uploader named no type is: a map by its name or its JSON's `mappings`,
/// minified when it names its map or is a script, else other.
fn guess_kind(url: &str, names_a_map: bool, data: &[u8]) -> FileKind {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let looks_like_map = data.first() == Some(&b'{')
        && data
            .windows(b"\"mappings\"".len())
            .any(|w| w == b"\"mappings\"");
    if path.ends_with(".map") || looks_like_map {
        FileKind::SourceMap
    } else if names_a_map
        || [".js", ".mjs", ".cjs", ".jsx", ".ts"]
            .iter()
            .any(|ext| path.ends_with(ext))
    {
        FileKind::MinifiedSource
    } else {
        FileKind::Other
    }
}

/// The map a script names in its last `//# sourceMappingURL=` comment (not a `data:` URL).
fn mapping_url_comment(data: &[u8]) -> Option<String> {
    let tail = String::from_utf8_lossy(&data[data.len().saturating_sub(4096)..]);
    let at = tail.rfind("//# sourceMappingURL=")?;
    let url = tail[at + "//# sourceMappingURL=".len()..]
        .split(char::is_whitespace)
        .next()?;
    (!url.is_empty() && !url.starts_with("data:")).then(|| url.to_string())
}

/// A manifest attribute (they sit at its top level), when not empty.
fn attribute(manifest: &Value, name: &str) -> Option<String> {
    manifest
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// One file, inflated within the limits: what is read is counted, not what the zip claims.
fn inflate(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    limits: &Limits,
    budget: &mut usize,
) -> Result<Vec<u8>, BundleError> {
    let failed = |reason: String| BundleError::File {
        name: name.to_string(),
        reason,
    };
    let file = archive.by_name(name).map_err(|e| failed(e.to_string()))?;
    let cap = limits.max_file_bytes.min(*budget);
    let mut data = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| failed(e.to_string()))?;
    if data.len() > cap {
        return Err(if cap == limits.max_file_bytes {
            BundleError::FileTooLarge {
                name: name.to_string(),
                limit: limits.max_file_bytes,
            }
        } else {
            BundleError::TooLarge(limits.max_total_bytes)
        });
    }
    *budget -= data.len();
    Ok(data)
}

/// A debug id as Vigie keeps it: the UUID's 32 hex digits, lowercase, without dashes (an
/// SDK sends `b1a8…-…`, a manifest may say it in capitals). `None` when it is not a UUID.
pub fn normalize_debug_id(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && hex != "0".repeat(32))
        .then_some(hex)
}

/// The debug id a file carries itself: the last `//# debugId=` comment of a minified file,
/// the `debug_id` (or `debugId`) field of a source map.
fn embedded_debug_id(kind: FileKind, data: &[u8]) -> Option<String> {
    match kind {
        FileKind::MinifiedSource | FileKind::Source => {
            // The comment is appended at the end: read the tail only.
            let tail = &data[data.len().saturating_sub(4096)..];
            let text = String::from_utf8_lossy(tail);
            let at = text.rfind("//# debugId=")?;
            let id = text[at + "//# debugId=".len()..]
                .split(|c: char| c.is_whitespace())
                .next()?;
            normalize_debug_id(id)
        }
        FileKind::SourceMap => {
            let map: Value = serde_json::from_slice(data).ok()?;
            map.get("debug_id")
                .or_else(|| map.get("debugId"))
                .and_then(Value::as_str)
                .and_then(normalize_debug_id)
        }
        FileKind::Other => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A bundle as `sentry-cli` writes it: the header, then the zip written after it on the
    /// same file (its offsets count the header).
    pub(crate) fn bundle_bytes(manifest: &Value, files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut file = std::io::Cursor::new(b"SYSB\x02\x00\x00\x00".to_vec());
        file.set_position(8);
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("manifest.json", options).unwrap();
        zip.write_all(manifest.to_string().as_bytes()).unwrap();
        for (name, data) in files {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    const ID: &str = "B1A8E0C2-7F3D-4E5A-9C1B-2D3E4F5A6B7C";

    #[test]
    fn a_bundle_reads_as_its_manifest_says() {
        let manifest = serde_json::json!({
            "files": {
                "files/_/_/app.min.js": {"type": "minified_source", "url": "~/app.min.js",
                    "headers": {"Debug-Id": ID, "Sourcemap": "app.min.js.map"}},
                "files/_/_/app.min.js.map": {"type": "source_map", "url": "~/app.min.js.map",
                    "headers": {"debug-id": ID}},
            },
            "org": "acme", "release": "shop@1.2.0", "dist": ""
        });
        let bytes = bundle_bytes(
            &manifest,
            &[
                ("files/_/_/app.min.js", b"function n(){throw Error()}"),
                ("files/_/_/app.min.js.map", b"{\"version\":3}"),
            ],
        );
        let bundle = read(&bytes, &Limits::default()).unwrap();
        assert_eq!(bundle.release.as_deref(), Some("shop@1.2.0"));
        assert_eq!(bundle.dist, None, "an empty dist is no dist");
        let [min, map] = &bundle.files[..] else {
            panic!("{bundle:?}")
        };
        assert_eq!(min.kind, FileKind::MinifiedSource);
        assert_eq!(min.url, "~/app.min.js");
        assert_eq!(
            min.debug_id.as_deref(),
            Some("b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c")
        );
        assert_eq!(min.sourcemap.as_deref(), Some("app.min.js.map"));
        assert_eq!(min.data, b"function n(){throw Error()}");
        assert_eq!(map.kind, FileKind::SourceMap);
        assert_eq!(map.debug_id, min.debug_id);
        // A plain zip, or one whose offsets do not count a header before it, reads the same.
        let mut plain = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let mut source = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        for i in 0..source.len() {
            plain.raw_copy_file(source.by_index(i).unwrap()).unwrap();
        }
        let plain = plain.finish().unwrap().into_inner();
        assert_eq!(read(&plain, &Limits::default()).unwrap(), bundle);
        let mut prefixed = b"SYSB\x02\x00\x00\x00".to_vec();
        prefixed.extend(&plain);
        assert_eq!(read(&prefixed, &Limits::default()).unwrap(), bundle);
    }

    #[test]
    fn a_debug_id_is_read_from_the_file_when_no_header_says_it() {
        let manifest = serde_json::json!({"files": {
            "a.js": {"type": "minified_source", "url": "~/a.js"},
            "a.js.map": {"type": "source_map", "url": "~/a.js.map"},
        }});
        let js = format!("n();\n//# debugId={ID}\n//# sourceMappingURL=a.js.map\n");
        let map = format!("{{\"version\":3,\"debug_id\":\"{ID}\"}}");
        let bundle = read(
            &bundle_bytes(
                &manifest,
                &[("a.js", js.as_bytes()), ("a.js.map", map.as_bytes())],
            ),
            &Limits::default(),
        )
        .unwrap();
        for file in &bundle.files {
            assert_eq!(
                file.debug_id.as_deref(),
                Some("b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c"),
                "{}",
                file.url
            );
        }
    }

    #[test]
    fn hostile_bundles_are_refused_by_what_they_inflate_to() {
        let limits = Limits {
            max_files: 3,
            max_file_bytes: 1000,
            max_total_bytes: 1500,
        };
        let manifest = |names: &[&str]| {
            let files: serde_json::Map<String, Value> = names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        serde_json::json!({"type": "source", "url": n}),
                    )
                })
                .collect();
            serde_json::json!({ "files": files })
        };
        // A bomb: 10 MB of zeros deflate to a few KiB.
        let zeros = vec![0u8; 10_000_000];
        let bomb = bundle_bytes(&manifest(&["a"]), &[("a", &zeros)]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            read(&bomb, &limits),
            Err(BundleError::FileTooLarge {
                name: "a".into(),
                limit: 1000
            })
        );
        // Each file within its limit, together over the bundle's.
        let part = vec![b'x'; 800];
        let two = bundle_bytes(&manifest(&["a", "b"]), &[("a", &part), ("b", &part)]);
        assert_eq!(read(&two, &limits), Err(BundleError::TooLarge(1500)));
        let many = bundle_bytes(
            &manifest(&["a", "b", "c"]),
            &[("a", b"1"), ("b", b"2"), ("c", b"3")],
        );
        assert_eq!(read(&many, &limits), Err(BundleError::TooManyFiles(3)));
        // The manifest names a file the zip lacks; not a zip; no manifest.
        let missing = bundle_bytes(&manifest(&["a"]), &[]);
        assert!(
            matches!(read(&missing, &limits), Err(BundleError::File { name, .. }) if name == "a")
        );
        assert!(matches!(
            read(b"not a zip", &limits),
            Err(BundleError::NotZip(_))
        ));
        assert!(matches!(
            read(b"SYSB", &limits),
            Err(BundleError::NotZip(_))
        ));
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("other.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        let no_manifest = zip.finish().unwrap().into_inner();
        assert!(matches!(
            read(&no_manifest, &limits),
            Err(BundleError::Manifest(_))
        ));
        let bad_manifest = bundle_bytes(&serde_json::json!({"files": 3}), &[]);
        assert!(matches!(
            read(&bad_manifest, &limits),
            Err(BundleError::Manifest(_))
        ));
    }

    #[test]
    fn files_uploaded_one_by_one_are_typed_by_name_headers_and_content() {
        let headers = vec![("Sourcemap".to_string(), "app.min.js.map".to_string())];
        let min = release_file("~/assets/app.min.js", &headers, b"function n(){}".to_vec());
        assert_eq!(min.kind, FileKind::MinifiedSource);
        assert_eq!(min.sourcemap.as_deref(), Some("app.min.js.map"));
        let commented = release_file(
            "~/a.js",
            &[],
            b"f()\n//# sourceMappingURL=maps/a.js.map\n//# debugId=B1A8E0C2-7F3D-4E5A-9C1B-2D3E4F5A6B7C".to_vec(),
        );
        assert_eq!(commented.sourcemap.as_deref(), Some("maps/a.js.map"));
        assert_eq!(
            commented.debug_id.as_deref(),
            Some("b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c")
        );
        let map = release_file("~/assets/app.min.js.map", &[], br#"{"version":3}"#.to_vec());
        assert_eq!(map.kind, FileKind::SourceMap);
        assert_eq!(map.sourcemap, None);
        let unnamed = release_file(
            "~/maps/1",
            &[],
            br#"{"version":3,"mappings":"AAAA"}"#.to_vec(),
        );
        assert_eq!(unnamed.kind, FileKind::SourceMap);
        let inline = release_file(
            "~/b.js",
            &[],
            b"x\n//# sourceMappingURL=data:application/json;base64,e30=".to_vec(),
        );
        assert_eq!(inline.sourcemap, None);
        assert_eq!(inline.kind, FileKind::MinifiedSource);
        assert_eq!(
            release_file("~/logo.png", &[], vec![0x89]).kind,
            FileKind::Other
        );
    }

    #[test]
    fn debug_ids_are_kept_in_one_form() {
        assert_eq!(
            normalize_debug_id(" B1A8E0C2-7F3D-4E5A-9C1B-2D3E4F5A6B7C "),
            Some("b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c".into())
        );
        assert_eq!(normalize_debug_id("b1a8e0c2"), None);
        assert_eq!(
            normalize_debug_id("00000000-0000-0000-0000-000000000000"),
            None
        );
        assert_eq!(
            normalize_debug_id("zz a8e0c27f3d4e5a9c1b2d3e4f5a6b7c"),
            None
        );
    }
}
