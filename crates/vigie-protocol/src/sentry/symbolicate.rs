//! Minified JavaScript frames made readable again, through the source maps a build uploaded
//! (see [`super::artifact_bundle`]).
//!
//! ```text
//!   event ─ debug_meta.images [{type: "sourcemap", code_file: URL, debug_id}]
//!         ─ exception.values[].stacktrace.frames [{abs_path: URL, lineno, colno, function}]
//!
//!   a frame ─ its URL's image ─ debug id ─▶ the map with that debug id      ("debug-id")
//!           ─ else its URL, in the event's release ─▶ the map the minified
//!             file of that URL names                                         ("release")
//!           ─ the map's token at (lineno, colno) ─▶ original file, line, column;
//!             the function's original name (read back from the minified file);
//!             five lines of source each side when the map carries sourcesContent
//! ```
//!
//! A resolved stack trace keeps its minified form beside it in `raw_stacktrace`, as Sentry
//! does, so nothing the SDK sent is lost. Grouping then reads the resolved frames. [`wanted`]
//! says which maps an event needs, so the caller can fetch them before calling [`symbolicate`],
//! which is pure: it only reads the maps it is given.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use vigie_core::json;

/// Lines of source shown around a frame's line.
const CONTEXT_LINES: u32 = 5;
/// A longer source line is cut (minified files have lines of megabytes).
const MAX_CONTEXT_LINE: usize = 300;

/// One parsed source map, with where the minified file it maps defines its functions (when
/// the bundle has that file: the functions' original names are read back from it).
pub struct SourceMapFile {
    map: sourcemap::DecodedMap,
    definitions: Vec<Definition>,
    /// The map's URL in its bundle (`~/assets/app.js.map`), shown beside each frame it
    /// resolved.
    pub url: String,
    weight: usize,
}

/// `function n` in the minified file: where (line, UTF-16 column, as maps count), its
/// minified name, and the original name the map gives that identifier.
struct Definition {
    at: (u32, u32),
    minified: Box<str>,
    original: Box<str>,
}

/// Definitions looked at before a frame, nearest first, for one with the frame's name.
const DEFINITIONS_BACK: usize = 1024;

impl std::fmt::Debug for SourceMapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMapFile")
            .field("url", &self.url)
            .finish()
    }
}

impl SourceMapFile {
    /// Parses a map (regular, indexed or Hermes) and finds the function definitions of the
    /// minified file beside it.
    pub fn parse(map: &[u8], minified: Option<&[u8]>, url: &str) -> Result<SourceMapFile, String> {
        let decoded = sourcemap::decode_slice(map).map_err(|e| format!("{url}: {e}"))?;
        // An index map is looked up through its sections only when they embed their maps:
        // flattened, every lookup works the same way.
        let decoded = match decoded {
            sourcemap::DecodedMap::Index(index) => {
                sourcemap::DecodedMap::Regular(index.flatten().map_err(|e| format!("{url}: {e}"))?)
            }
            other => other,
        };
        let definitions = match (&decoded, minified) {
            (sourcemap::DecodedMap::Regular(map), Some(bytes)) => {
                definitions(map, &String::from_utf8_lossy(bytes))
            }
            _ => Vec::new(),
        };
        Ok(SourceMapFile {
            map: decoded,
            // A parsed map takes a few times its text in memory.
            weight: map.len() * 3 + definitions.len() * 64,
            definitions,
            url: url.to_string(),
        })
    }

    /// Roughly the memory this parsed map holds, for a cache's budget.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The original name of the function named `minified` (its last dotted part) that a
    /// frame at (`line`, `column`) of the minified file runs in: the nearest `function
    /// <minified>` before it. (Hermes maps name functions themselves.)
    fn function_name(&self, line: u32, column: u32, minified: &str) -> Option<&str> {
        if let sourcemap::DecodedMap::Hermes(_) = &self.map {
            return self
                .map
                .get_original_function_name(line, column, Some(minified), None);
        }
        let before = self.definitions.partition_point(|d| d.at <= (line, column));
        self.definitions[..before]
            .iter()
            .rev()
            .take(DEFINITIONS_BACK)
            .find(|d| &*d.minified == minified)
            .map(|d| &*d.original)
    }
}

/// Every `function <identifier>` of `minified` at which `map` has a token naming the
/// identifier, in file order. One pass over the tokens and the text: a token's column
/// (UTF-16 units) is turned into a byte offset by walking its line once, left to right.
fn definitions(map: &sourcemap::SourceMap, minified: &str) -> Vec<Definition> {
    let lines: Vec<&str> = minified.split('\n').collect();
    let mut found = Vec::new();
    let (mut line_no, mut byte, mut unit) = (u32::MAX, 0usize, 0u32);
    let mut previous: &str = "";
    for token in map.tokens() {
        let (line, column) = (token.get_dst_line(), token.get_dst_col());
        let Some(text) = lines.get(line as usize) else {
            break;
        };
        if line != line_no {
            (line_no, byte, unit) = (line, 0, 0);
            previous = "";
        }
        let mut chars = text[byte..].chars();
        while unit < column {
            let Some(c) = chars.next() else { break };
            byte += c.len_utf8();
            unit += c.len_utf16() as u32;
        }
        let rest = &text[byte..];
        let length = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '$'))
            .map_or(rest.len(), |(i, _)| i);
        let identifier = &rest[..length];
        if previous == "function" && !identifier.is_empty() {
            if let Some(original) = token.get_name() {
                found.push(Definition {
                    at: (line, column),
                    minified: identifier.into(),
                    original: original.into(),
                });
            }
        }
        previous = identifier;
    }
    found
}

/// Where the maps come from: the caller fetched what [`wanted`] named.
pub trait SourceMaps {
    /// The map uploaded with this debug id (32 lowercase hex digits).
    fn by_debug_id(&self, debug_id: &str) -> Option<&SourceMapFile>;
    /// The map of the minified file served at `abs_path`, in the event's release and dist.
    fn by_url(&self, abs_path: &str) -> Option<&SourceMapFile>;
}

/// The maps an event needs: the debug ids of its source map images, and the URLs of its
/// frames (for the release fallback), with its release and dist.
#[derive(Debug, Default, PartialEq)]
pub struct Wanted {
    pub debug_ids: Vec<String>,
    pub urls: Vec<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        self.debug_ids.is_empty() && self.urls.is_empty()
    }

    pub fn extend(&mut self, other: Wanted) {
        self.debug_ids.extend(other.debug_ids);
        self.urls.extend(other.urls);
        self.release = self.release.take().or(other.release);
        self.dist = self.dist.take().or(other.dist);
    }
}

/// Most URLs one event asks maps for (a stack trace names a handful of files).
const MAX_WANTED: usize = 64;

/// What [`symbolicate`] will look up for `event`: nothing once every frame was resolved (an
/// event read back after it was stored asks only for the frames still raw).
pub fn wanted(event: &Value) -> Wanted {
    let mut wanted = Wanted {
        release: text(event, "release"),
        dist: text(event, "dist"),
        ..Wanted::default()
    };
    for frames in stack_traces(event) {
        for frame in frames {
            if let Some(url) = frame_url(frame) {
                if is_script_url(url)
                    && !is_symbolicated(frame)
                    && !wanted.urls.iter().any(|u| u == url)
                {
                    wanted.urls.push(url.to_string());
                }
            }
        }
    }
    if wanted.urls.is_empty() {
        return Wanted::default();
    }
    wanted.debug_ids = images(event).into_values().collect();
    wanted.debug_ids.sort();
    wanted.debug_ids.dedup();
    wanted.debug_ids.truncate(MAX_WANTED);
    wanted.urls.truncate(MAX_WANTED);
    wanted
}

/// What happened to an event's JavaScript frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Frames now pointing at original sources.
    pub resolved: usize,
    /// Frames of a script with no uploaded map (or whose position the map does not cover).
    pub unresolved: usize,
}

/// Resolves every frame of `event` that a map in `maps` covers, in place.
pub fn symbolicate(event: &mut Value, maps: &dyn SourceMaps) -> Outcome {
    let images = images(event);
    let mut outcome = Outcome::default();
    each_stack_trace_parent(event, |parent| {
        let Some(frames) =
            json::at_mut(parent, &["stacktrace", "frames"]).and_then(Value::as_array_mut)
        else {
            return;
        };
        let raw = Value::Array(frames.clone());
        let mut resolved_here = 0;
        for frame in frames.iter_mut() {
            match resolve(frame, &images, maps) {
                Some(true) => resolved_here += 1,
                Some(false) => outcome.unresolved += 1,
                None => {}
            }
        }
        if resolved_here > 0 {
            outcome.resolved += resolved_here;
            if let Some(parent) = parent.as_object_mut() {
                parent
                    .entry("raw_stacktrace")
                    .or_insert_with(|| json!({ "frames": raw }));
            }
        }
    });
    outcome
}

/// `Some(true)` resolved, `Some(false)` a script frame no map covers, `None` not a script
/// frame (native code, no position).
fn resolve(
    frame: &mut Value,
    images: &HashMap<String, String>,
    maps: &dyn SourceMaps,
) -> Option<bool> {
    let abs_path = frame_url(frame)?.to_string();
    let line = frame.get("lineno")?.as_u64()?;
    let column = frame.get("colno").and_then(Value::as_u64).unwrap_or(1);
    if !is_script_url(&abs_path) || line == 0 || is_symbolicated(frame) {
        return None;
    }
    let (file, how) = match images.get(&abs_path).and_then(|id| maps.by_debug_id(id)) {
        Some(file) => (file, "debug-id"),
        None => match maps.by_url(&abs_path) {
            Some(file) => (file, "release"),
            None => return Some(false),
        },
    };
    let line0 = u32::try_from(line - 1).ok()?;
    let column0 = u32::try_from(column.saturating_sub(1)).unwrap_or(u32::MAX);
    let Some(token) = file.map.lookup_token(line0, column0) else {
        return Some(false);
    };
    let Some(source) = token.get_source().map(str::to_string) else {
        return Some(false);
    };
    let minified_name = frame
        .get("function")
        .and_then(Value::as_str)
        .map(|f| f.rsplit('.').next().unwrap_or(f).to_string());
    let function = minified_name
        .as_deref()
        .and_then(|name| file.function_name(line0, column0, name))
        .map(str::to_string);
    let (src_line, src_column) = (token.get_src_line(), token.get_src_col());
    let context = token
        .get_source_view()
        .map(|view| context_of(view, src_line));
    let object = frame.as_object_mut()?;
    object.insert("abs_path".into(), json!(source));
    object.insert("filename".into(), json!(tidy_path(&source)));
    object.insert("lineno".into(), json!(src_line + 1));
    object.insert("colno".into(), json!(src_column + 1));
    if let Some(function) = function {
        object.insert("function".into(), json!(function));
    }
    object.insert("in_app".into(), json!(!source.contains("node_modules/")));
    object.remove("module");
    if let Some((pre, line, post)) = context {
        object.insert("pre_context".into(), json!(pre));
        object.insert("context_line".into(), json!(line));
        object.insert("post_context".into(), json!(post));
    } else {
        for key in ["pre_context", "context_line", "post_context"] {
            object.remove(key);
        }
    }
    let data = object
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        data.insert("symbolicated".into(), json!(true));
        data.insert("sourcemap".into(), json!(file.url));
        data.insert("resolved_with".into(), json!(how));
    }
    Some(true)
}

/// Whether a map already resolved this frame (at ingest, or when the event was read).
fn is_symbolicated(frame: &Value) -> bool {
    frame
        .get("data")
        .and_then(|d| d.get("symbolicated"))
        .is_some()
}

/// Five lines before, the line, five after (each cut to [`MAX_CONTEXT_LINE`] characters).
fn context_of(view: &sourcemap::SourceView, line: u32) -> (Vec<String>, String, Vec<String>) {
    let cut = |text: &str| text.chars().take(MAX_CONTEXT_LINE).collect::<String>();
    let pre = (line.saturating_sub(CONTEXT_LINES)..line)
        .filter_map(|l| view.get_line(l).map(cut))
        .collect();
    let post = (line + 1..=line + CONTEXT_LINES)
        .filter_map(|l| view.get_line(l).map(cut))
        .collect();
    (pre, view.get_line(line).map(cut).unwrap_or_default(), post)
}

/// A source path as people read it: `webpack://app/./src/App.tsx` and `../../src/App.tsx`
/// are `src/App.tsx`.
pub fn tidy_path(source: &str) -> String {
    let mut path = source;
    if let Some(rest) = path.strip_prefix("webpack://") {
        // webpack://<namespace>/./src/… : the namespace goes too.
        path = rest.split_once('/').map_or(rest, |(_, p)| p);
    } else if let Some((_, rest)) = path.split_once("://") {
        path = rest.split_once('/').map_or(rest, |(_, p)| p);
    }
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix("../") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else {
            break;
        }
    }
    path.to_string()
}

/// Where a frame's script was loaded from: `abs_path`, else `filename` (the browser SDK
/// sends only `filename`, holding the URL).
fn frame_url(frame: &Value) -> Option<&str> {
    frame
        .get("abs_path")
        .or_else(|| frame.get("filename"))
        .and_then(Value::as_str)
}

/// URLs a browser or Node runs scripts from (not `<anonymous>`, `native`, `[native code]`).
fn is_script_url(url: &str) -> bool {
    url.starts_with("http://")
        || url.starts_with("https://")
        || url.starts_with("file://")
        || url.starts_with("app://")
        || url.starts_with('/')
        || url.starts_with("~/")
}

/// The event's source map images: code file URL ─▶ debug id.
fn images(event: &Value) -> HashMap<String, String> {
    json::at(event, &["debug_meta", "images"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|image| image.get("type").and_then(Value::as_str) == Some("sourcemap"))
        .filter_map(|image| {
            let file = image.get("code_file")?.as_str()?;
            let id = super::artifact_bundle::normalize_debug_id(image.get("debug_id")?.as_str()?)?;
            Some((file.to_string(), id))
        })
        .collect()
}

fn text(event: &Value, key: &str) -> Option<String> {
    event
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Calls `f` on every object holding a `stacktrace`: the exceptions, the threads, the event
/// itself (a message captured with `attachStacktrace`).
fn each_stack_trace_parent(event: &mut Value, mut f: impl FnMut(&mut Value)) {
    for key in ["exception", "threads"] {
        if let Some(value) = event.get_mut(key) {
            let list = if value.is_array() {
                value.as_array_mut()
            } else {
                value.get_mut("values").and_then(Value::as_array_mut)
            };
            list.into_iter().flatten().for_each(&mut f);
        }
    }
    if json::at(event, &["stacktrace", "frames"]).is_some() {
        f(event);
    }
}

/// The frames of every stack trace of `event`, read-only.
fn stack_traces(event: &Value) -> Vec<&Vec<Value>> {
    let mut found = Vec::new();
    for key in ["exception", "threads"] {
        let list = event.get(key).and_then(|v| {
            v.as_array()
                .or_else(|| v.get("values").and_then(Value::as_array))
        });
        for parent in list.into_iter().flatten() {
            if let Some(frames) =
                json::at(parent, &["stacktrace", "frames"]).and_then(Value::as_array)
            {
                found.push(frames);
            }
        }
    }
    if let Some(frames) = json::at(event, &["stacktrace", "frames"]).and_then(Value::as_array) {
        found.push(frames);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of `app.min.js` (one line: `function n(){throw new Error("x")}n();`) to
    /// `src/app.js`, where the function is `explode` on line 2.
    fn fixture() -> (String, String) {
        let minified = "function n(){throw new Error(\"x\")}n();\n//# debugId=b1a8e0c2-7f3d-4e5a-9c1b-2d3e4f5a6b7c\n";
        let source = "// app\nfunction explode() {\n  throw new Error(\"x\");\n}\nexplode();\n";
        let mut builder = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
        let src = builder.add_source("webpack://shop/./src/app.js");
        builder.set_source_contents(src, Some(source));
        // `function n` ─ `function explode` (line 1, col 0 / line 1, col 9 in 0-based).
        builder.add(0, 0, 1, 0, Some("webpack://shop/./src/app.js"), None, false);
        builder.add(
            0,
            9,
            1,
            9,
            Some("webpack://shop/./src/app.js"),
            Some("explode"),
            false,
        );
        // `throw` at col 12 ─ line 2 col 2.
        builder.add(
            0,
            12,
            2,
            2,
            Some("webpack://shop/./src/app.js"),
            None,
            false,
        );
        // The call `n()` at col 35 ─ line 4 col 0.
        builder.add(
            0,
            35,
            4,
            0,
            Some("webpack://shop/./src/app.js"),
            Some("explode"),
            false,
        );
        let map = builder.into_sourcemap();
        let mut out = Vec::new();
        map.to_writer(&mut out).unwrap();
        (minified.to_string(), String::from_utf8(out).unwrap())
    }

    struct Maps {
        by_id: HashMap<String, SourceMapFile>,
        by_url: HashMap<String, SourceMapFile>,
    }

    impl SourceMaps for Maps {
        fn by_debug_id(&self, debug_id: &str) -> Option<&SourceMapFile> {
            self.by_id.get(debug_id)
        }
        fn by_url(&self, abs_path: &str) -> Option<&SourceMapFile> {
            self.by_url.get(abs_path)
        }
    }

    fn event(with_image: bool) -> Value {
        let mut event = json!({
            "platform": "javascript",
            "release": "shop@1.0.0",
            "exception": {"values": [{"type": "Error", "value": "x", "stacktrace": {"frames": [
                {"abs_path": "http://localhost:5173/assets/app.min.js", "lineno": 1, "colno": 36, "function": "?"},
                {"filename": "http://localhost:5173/assets/app.min.js", "lineno": 1, "colno": 13, "function": "HTMLButtonElement.n"},
                {"abs_path": "[native code]", "function": "Array.forEach"},
                {"abs_path": "http://cdn.example/vendor.js", "lineno": 3, "colno": 4, "function": "q"},
            ]}}]}
        });
        if with_image {
            event["debug_meta"] = json!({"images": [{"type": "sourcemap",
                "code_file": "http://localhost:5173/assets/app.min.js",
                "debug_id": "b1a8e0c2-7f3d-4e5a-9c1b-2d3e4f5a6b7c"}]});
        }
        event
    }

    #[test]
    fn a_frame_is_resolved_through_its_debug_id() {
        let (minified, map) = fixture();
        let file = SourceMapFile::parse(
            map.as_bytes(),
            Some(minified.as_bytes()),
            "~/assets/app.min.js.map",
        )
        .unwrap();
        let maps = Maps {
            by_id: HashMap::from([("b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c".to_string(), file)]),
            by_url: HashMap::new(),
        };
        let mut event = event(true);
        let before = event.clone();
        assert_eq!(
            wanted(&event),
            Wanted {
                debug_ids: vec!["b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c".into()],
                urls: vec![
                    "http://localhost:5173/assets/app.min.js".into(),
                    "http://cdn.example/vendor.js".into()
                ],
                release: Some("shop@1.0.0".into()),
                dist: None,
            }
        );
        let outcome = symbolicate(&mut event, &maps);
        assert_eq!(
            outcome,
            Outcome {
                resolved: 2,
                unresolved: 1
            }
        );
        let frames = &event["exception"]["values"][0]["stacktrace"]["frames"];
        let thrower = &frames[1];
        assert_eq!(thrower["filename"], "src/app.js");
        assert_eq!(thrower["abs_path"], "webpack://shop/./src/app.js");
        assert_eq!(thrower["lineno"], 3);
        assert_eq!(thrower["colno"], 3);
        assert_eq!(
            thrower["function"], "explode",
            "read back from the minified file"
        );
        assert_eq!(thrower["context_line"], "  throw new Error(\"x\");");
        assert_eq!(
            thrower["pre_context"],
            json!(["// app", "function explode() {"])
        );
        assert_eq!(thrower["post_context"], json!(["}", "explode();", ""]));
        assert_eq!(thrower["in_app"], true);
        assert_eq!(thrower["data"]["resolved_with"], "debug-id");
        assert_eq!(thrower["data"]["sourcemap"], "~/assets/app.min.js.map");
        assert_eq!(frames[0]["lineno"], 5);
        assert_eq!(
            frames[2],
            before["exception"]["values"][0]["stacktrace"]["frames"][2]
        );
        assert_eq!(
            frames[3],
            before["exception"]["values"][0]["stacktrace"]["frames"][3]
        );
        // What the SDK sent is kept beside.
        assert_eq!(
            event["exception"]["values"][0]["raw_stacktrace"],
            before["exception"]["values"][0]["stacktrace"]
        );
        // Read back, it asks only for the frame still raw; a second pass changes nothing.
        assert_eq!(
            wanted(&event).urls,
            vec!["http://cdn.example/vendor.js".to_string()]
        );
        let mut all_resolved = event.clone();
        all_resolved["exception"]["values"][0]["stacktrace"]["frames"][3]["data"] =
            json!({"symbolicated": true});
        assert!(wanted(&all_resolved).is_empty());
        let resolved = event.clone();
        assert_eq!(symbolicate(&mut event, &maps).resolved, 0);
        assert_eq!(event, resolved);
    }

    #[test]
    fn without_a_debug_id_the_release_and_url_find_the_map() {
        let (minified, map) = fixture();
        let file = SourceMapFile::parse(map.as_bytes(), Some(minified.as_bytes()), "~/app.js.map")
            .unwrap();
        let maps = Maps {
            by_id: HashMap::new(),
            by_url: HashMap::from([("http://localhost:5173/assets/app.min.js".to_string(), file)]),
        };
        let mut event = event(false);
        assert_eq!(
            symbolicate(&mut event, &maps),
            Outcome {
                resolved: 2,
                unresolved: 1
            }
        );
        let frame = &event["exception"]["values"][0]["stacktrace"]["frames"][1];
        assert_eq!(frame["data"]["resolved_with"], "release");
        assert_eq!(frame["lineno"], 3);
    }

    #[test]
    fn frames_in_node_modules_are_not_in_app_and_bad_input_is_left_alone() {
        let mut builder = sourcemap::SourceMapBuilder::new(None);
        builder.add(
            0,
            0,
            9,
            0,
            Some("../node_modules/react-dom/cjs/react-dom.js"),
            None,
            false,
        );
        let map = builder.into_sourcemap();
        let mut bytes = Vec::new();
        map.to_writer(&mut bytes).unwrap();
        let file = SourceMapFile::parse(&bytes, None, "~/vendor.js.map").unwrap();
        let maps = Maps {
            by_id: HashMap::new(),
            by_url: HashMap::from([("http://cdn.example/vendor.js".to_string(), file)]),
        };
        let mut event = event(false);
        symbolicate(&mut event, &maps);
        let frame = &event["exception"]["values"][0]["stacktrace"]["frames"][3];
        assert_eq!(frame["in_app"], false);
        assert_eq!(frame["filename"], "node_modules/react-dom/cjs/react-dom.js");
        assert_eq!(frame["function"], "q", "no minified file: the name stays");
        assert!(frame.get("context_line").is_none(), "no sourcesContent");
        // Not JSON objects, frames of the wrong types, a line 0: nothing breaks.
        for mut odd in [
            json!(null),
            json!([1, 2]),
            json!({"exception": 3}),
            json!({"exception": {"values": [{"stacktrace": {"frames": [3, null, {"abs_path": 4},
                {"abs_path": "http://cdn.example/vendor.js", "lineno": 0},
                {"abs_path": "http://cdn.example/vendor.js", "lineno": -3},
                {"abs_path": "http://cdn.example/vendor.js", "lineno": 99999999999u64, "colno": 99999999999u64}]}}]}}),
        ] {
            symbolicate(&mut odd, &maps);
            wanted(&odd);
        }
        assert!(SourceMapFile::parse(b"{not json", None, "x").is_err());
    }

    #[test]
    fn source_paths_are_tidied() {
        assert_eq!(tidy_path("webpack://shop/./src/App.tsx"), "src/App.tsx");
        assert_eq!(tidy_path("../../src/App.tsx"), "src/App.tsx");
        assert_eq!(
            tidy_path("http://localhost:5173/src/main.ts"),
            "src/main.ts"
        );
        assert_eq!(tidy_path("src/a.js"), "src/a.js");
    }
}
