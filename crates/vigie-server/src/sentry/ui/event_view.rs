//! A stored event's JSON, read into what the issue page shows.
//!
//! SDKs spell things in several ways (see `vigie_protocol::sentry::event`); this module
//! reads the common ones and turns every value into text, so templates only print strings
//! (askama escapes them). Exceptions and frames read as Sentry shows them: the exception
//! raised last first, then what led to it; in each, the most recent call first, the
//! application's frames open and each run of library frames folded into one "N library
//! frames" line (see [`FrameGroup`]).

use serde_json::{Map, Value};
use vigie_protocol::sentry::event::seconds;

/// Longest value shown in a table cell before it is cut (the raw JSON has all of it).
const VALUE_MAX: usize = 2000;

pub type Pairs = Vec<(String, String)>;

pub struct FrameView {
    pub function: String,
    /// `module` or `filename`, with `:lineno`.
    pub location: String,
    pub in_app: bool,
    /// `(line number, text)` around the line, and the line itself.
    pub pre: Vec<(i64, String)>,
    pub line: Option<(i64, String)>,
    pub post: Vec<(i64, String)>,
    pub vars: Pairs,
}

pub struct ExceptionView {
    pub kind: String,
    pub value: String,
    pub mechanism: String,
    /// The frames, most recent call first, in runs of the application's and libraries'.
    pub groups: Vec<FrameGroup>,
}

/// Consecutive frames that are all the application's (each shown open) or all libraries'
/// (folded into one line until clicked).
pub struct FrameGroup {
    pub library: bool,
    pub frames: Vec<FrameView>,
}

/// `frames` as SDKs send them (oldest call first) → most recent first, grouped in runs.
fn most_recent_first(frames: Vec<FrameView>) -> Vec<FrameGroup> {
    let mut groups: Vec<FrameGroup> = Vec::new();
    for f in frames.into_iter().rev() {
        match groups.last_mut() {
            Some(g) if g.library != f.in_app => g.frames.push(f),
            _ => groups.push(FrameGroup {
                library: !f.in_app,
                frames: vec![f],
            }),
        }
    }
    groups
}

pub struct Crumb {
    pub time: String,
    pub category: String,
    pub level: String,
    pub message: String,
    pub data: String,
}

pub struct RequestView {
    pub method: String,
    pub url: String,
    pub query: String,
    pub headers: Pairs,
    pub data: String,
}

pub struct EventView {
    pub message: String,
    pub exceptions: Vec<ExceptionView>,
    pub breadcrumbs: Vec<Crumb>,
    pub user: Pairs,
    pub request: Option<RequestView>,
    /// `(context name, its values)`: runtime, os, trace, celery…
    pub contexts: Vec<(String, Pairs)>,
    pub extra: Pairs,
    pub sdk: String,
    /// The whole event, pretty-printed, for the "raw JSON" section.
    pub raw: String,
}

/// A value as text: strings as they are, other JSON compact; cut past [`VALUE_MAX`].
pub fn text(value: &Value) -> String {
    let full = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match full.char_indices().nth(VALUE_MAX) {
        Some((cut, _)) => format!("{}…", &full[..cut]),
        None => full,
    }
}

fn field(value: &Value, key: &str) -> String {
    value.get(key).map(text).unwrap_or_default()
}

fn pairs(value: Option<&Value>) -> Pairs {
    match value {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|pair| {
                let pair = pair.as_array()?;
                Some((text(pair.first()?), text(pair.get(1)?)))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn lines(value: Option<&Value>, first: i64) -> Vec<(i64, String)> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, l)| (first + i as i64, text(l)))
                .collect()
        })
        .unwrap_or_default()
}

fn frame(f: &Value) -> FrameView {
    let lineno = f.get("lineno").and_then(Value::as_i64);
    let place = [field(f, "module"), field(f, "filename")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into());
    let pre_len = f
        .get("pre_context")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as i64;
    let at = lineno.unwrap_or(0);
    FrameView {
        function: Some(field(f, "function"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "?".into()),
        location: match lineno {
            Some(n) => format!("{place}:{n}"),
            None => place,
        },
        in_app: f.get("in_app").and_then(Value::as_bool).unwrap_or(true),
        pre: lines(f.get("pre_context"), at - pre_len),
        line: f.get("context_line").map(|l| (at, text(l))),
        post: lines(f.get("post_context"), at + 1),
        vars: pairs(f.get("vars")),
    }
}

fn exceptions(event: &Value) -> Vec<ExceptionView> {
    let list = match event.get("exception") {
        Some(Value::Object(map)) => map.get("values").and_then(Value::as_array),
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .map(|e| ExceptionView {
            kind: field(e, "type"),
            value: field(e, "value"),
            mechanism: e
                .get("mechanism")
                .map(|m| {
                    let kind = field(m, "type");
                    match m.get("handled").and_then(Value::as_bool) {
                        Some(false) => format!("{kind} · unhandled"),
                        _ => kind,
                    }
                })
                .unwrap_or_default(),
            groups: most_recent_first(
                e.pointer("/stacktrace/frames")
                    .and_then(Value::as_array)
                    .map(|frames| frames.iter().map(frame).collect())
                    .unwrap_or_default(),
            ),
        })
        .rev()
        .collect()
}

fn breadcrumbs(event: &Value) -> Vec<Crumb> {
    let list = match event.get("breadcrumbs") {
        Some(Value::Object(map)) => map.get("values").and_then(Value::as_array),
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .map(|b| Crumb {
            time: b
                .get("timestamp")
                .and_then(seconds)
                .map(|s| {
                    crate::web::format::time_of_day(vigie_core::Timestamp((s * 1000.0) as i64))
                })
                .unwrap_or_default(),
            category: field(b, "category"),
            level: Some(field(b, "level"))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "info".into()),
            message: field(b, "message"),
            data: b
                .get("data")
                .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
                .map(text)
                .unwrap_or_default(),
        })
        .collect()
}

fn request(event: &Value) -> Option<RequestView> {
    let r = event.get("request")?.as_object()?;
    let get = |k: &str| r.get(k).map(text).unwrap_or_default();
    Some(RequestView {
        method: get("method"),
        url: get("url"),
        query: get("query_string"),
        headers: pairs(r.get("headers")),
        data: get("data"),
    })
}

fn contexts(event: &Value) -> Vec<(String, Pairs)> {
    let Some(Value::Object(map)) = event.get("contexts") else {
        return Vec::new();
    };
    let mut list: Vec<(String, Pairs)> = map
        .iter()
        .map(|(name, value)| (name.clone(), pairs(Some(value))))
        .filter(|(_, values)| !values.is_empty())
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

impl EventView {
    pub fn new(event: &Value) -> EventView {
        let message = match event.get("logentry").or_else(|| event.get("message")) {
            Some(entry @ Value::Object(_)) => Some(field(entry, "formatted"))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| field(entry, "message")),
            Some(other) => text(other),
            None => String::new(),
        };
        let sdk = event
            .get("sdk")
            .map(|s| format!("{} {}", field(s, "name"), field(s, "version")))
            .unwrap_or_default();
        EventView {
            message,
            exceptions: exceptions(event),
            breadcrumbs: breadcrumbs(event),
            user: pairs(event.get("user")),
            request: request(event),
            contexts: contexts(event),
            extra: pairs(event.get("extra")),
            sdk: sdk.trim().to_string(),
            raw: serde_json::to_string_pretty(event).unwrap_or_default(),
        }
    }
}

/// An empty object, for events whose stored body is missing a part.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_python_event() {
        let event = json!({
            "logentry": {"message": "sent %s", "formatted": "sent 3"},
            "exception": {"values": [
                {"type": "KeyError", "value": "'x'", "mechanism": {"type": "celery", "handled": false},
                 "stacktrace": {"frames": [
                    {"module": "shop.tasks", "function": "send", "lineno": 12, "in_app": true,
                     "pre_context": ["a", "b"], "context_line": "c[x]", "post_context": ["d"],
                     "vars": {"password": "[Filtered]", "n": 3}},
                    {"filename": "celery/app.py", "in_app": false}
                 ]}}
            ]},
            "breadcrumbs": {"values": [{"timestamp": 1800000000.25, "category": "smtp", "message": "<connected>", "data": {"host": "mx"}}]},
            "request": {"method": "POST", "url": "https://shop/x", "headers": [["Accept", "*/*"]]},
            "contexts": {"runtime": {"name": "CPython", "version": "3.11"}, "empty": {}},
            "tags": {"job_id": "7"},
            "sdk": {"name": "sentry.python", "version": "2.75.0"}
        });
        let view = EventView::new(&event);
        assert_eq!(view.message, "sent 3");
        let e = &view.exceptions[0];
        assert_eq!(
            (e.kind.as_str(), e.mechanism.as_str()),
            ("KeyError", "celery · unhandled")
        );
        // Most recent call first: the library frame, folded, then the application's.
        assert!(e.groups[0].library);
        assert_eq!(e.groups[0].frames.len(), 1);
        let f = &e.groups[1].frames[0];
        assert_eq!(
            (f.location.as_str(), f.function.as_str(), f.in_app),
            ("shop.tasks:12", "send", true)
        );
        assert_eq!(f.pre, vec![(10, "a".to_string()), (11, "b".to_string())]);
        assert_eq!(f.line, Some((12, "c[x]".to_string())));
        assert_eq!(f.post, vec![(13, "d".to_string())]);
        assert_eq!(
            f.vars[1],
            ("password".to_string(), "[Filtered]".to_string())
        );
        assert!(!e.groups[0].frames[0].in_app);
        assert_eq!(view.breadcrumbs[0].time, "08:00:00.250");
        assert_eq!(view.breadcrumbs[0].data, r#"{"host":"mx"}"#);
        assert_eq!(
            view.request.as_ref().unwrap().headers,
            vec![("Accept".to_string(), "*/*".to_string())]
        );
        assert_eq!(view.contexts.len(), 1, "empty contexts are left out");
        assert_eq!(view.sdk, "sentry.python 2.75.0");
        assert!(EventView::new(&empty()).exceptions.is_empty());
    }

    #[test]
    fn the_last_exception_and_the_latest_call_come_first_with_library_runs_folded() {
        let frame = |name: &str, in_app: bool| json!({"function": name, "in_app": in_app});
        let event = json!({"exception": {"values": [
            {"type": "ConnectionError", "stacktrace": {"frames": [frame("connect", false)]}},
            {"type": "SendFailed", "stacktrace": {"frames": [
                frame("main", true), frame("run", false), frame("call", false),
                frame("send_invoice", true), frame("smtp_send", false)
            ]}}
        ]}});
        let view = EventView::new(&event);
        let kinds: Vec<&str> = view.exceptions.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["SendFailed", "ConnectionError"]);
        let runs: Vec<(bool, Vec<&str>)> = view.exceptions[0]
            .groups
            .iter()
            .map(|g| {
                (
                    g.library,
                    g.frames.iter().map(|f| f.function.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            runs,
            [
                (true, vec!["smtp_send"]),
                (false, vec!["send_invoice"]),
                (true, vec!["call", "run"]),
                (false, vec!["main"]),
            ]
        );
    }
}
