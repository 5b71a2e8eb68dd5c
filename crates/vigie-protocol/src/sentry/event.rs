//! Reading a Sentry event's JSON: what grouping needs ([`summarize`]), its id and its time.
//!
//! SDKs and versions spell the same things differently; all of these are read:
//!
//! - `exception` as `{"values": [...]}` or as a bare list; frames under `stacktrace.frames`,
//!   oldest call first;
//! - the message as `message` (a string, or `{"formatted", "message"}`) or `logentry`
//!   (`{"formatted", "message", "params"}`): with `params`, `message` is the template;
//! - `timestamp` as RFC 3339 or as seconds since the epoch (a number, or a string of one);
//! - `level` in any case (`warn`, `critical`…).

use crate::logs::parse_time;
use serde_json::Value;
use vigie_core::event::{EventLevel, EventSummary, ExceptionSummary, FrameSummary};

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The event's `event_id`, as 32 lower-case hex digits (dashes removed), if it is one.
pub fn event_id(event: &Value) -> Option<String> {
    let raw = event.get("event_id")?.as_str()?;
    let id: String = raw
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The event's time in ns since the epoch, if it says one.
pub fn timestamp(event: &Value) -> Option<i64> {
    match event.get("timestamp")? {
        Value::Number(n) => {
            let seconds = n.as_f64()?;
            (seconds.is_finite() && seconds > 0.0 && seconds < 1e11)
                .then_some((seconds * 1e9) as i64)
        }
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

fn frames(exception: &Value) -> Vec<FrameSummary> {
    exception
        .pointer("/stacktrace/frames")
        .and_then(Value::as_array)
        .map(|frames| {
            frames
                .iter()
                .map(|f| FrameSummary {
                    module: text(f.get("module")),
                    filename: text(f.get("filename")),
                    function: text(f.get("function")),
                    in_app: f.get("in_app").and_then(Value::as_bool),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn exceptions(event: &Value) -> Vec<ExceptionSummary> {
    let list = match event.get("exception") {
        Some(Value::Object(map)) => map.get("values").and_then(Value::as_array),
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    list.map(|values| {
        values
            .iter()
            .filter(|e| e.is_object())
            .map(|e| ExceptionSummary {
                kind: text(e.get("type")),
                value: text(e.get("value")),
                module: text(e.get("module")),
                frames: frames(e),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// (formatted message, template when there are params).
fn message(event: &Value) -> (String, String) {
    for key in ["logentry", "message"] {
        match event.get(key) {
            Some(Value::String(s)) if !s.is_empty() => return (s.clone(), String::new()),
            Some(Value::Object(entry)) => {
                let template = text(entry.get("message"));
                let formatted = text(entry.get("formatted"));
                let has_params = entry
                    .get("params")
                    .is_some_and(|p| !p.is_null() && p.as_array().is_none_or(|a| !a.is_empty()));
                let shown = if formatted.is_empty() {
                    template.clone()
                } else {
                    formatted
                };
                if !shown.is_empty() {
                    return (shown, if has_params { template } else { String::new() });
                }
            }
            _ => {}
        }
    }
    (String::new(), String::new())
}

/// What grouping and the headline need from an event.
pub fn summarize(event: &Value) -> EventSummary {
    let (message, message_template) = message(event);
    EventSummary {
        level: event
            .get("level")
            .and_then(Value::as_str)
            .map(EventLevel::parse)
            .unwrap_or_default(),
        exceptions: exceptions(event),
        message,
        message_template,
        transaction: text(event.get("transaction")),
        fingerprint: event
            .get("fingerprint")
            .and_then(Value::as_array)
            .map(|parts| parts.iter().map(|p| text(Some(p))).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exceptions_in_both_shapes() {
        let frames = json!({"frames": [{"module": "shop.render", "function": "render", "in_app": true, "lineno": 7}]});
        let a = summarize(
            &json!({"exception": {"values": [{"type": "KeyError", "value": "'x'", "stacktrace": frames}]}}),
        );
        let b = summarize(
            &json!({"exception": [{"type": "KeyError", "value": "'x'", "stacktrace": frames}]}),
        );
        assert_eq!(a, b);
        assert_eq!(a.exceptions[0].frames[0].function, "render");
        assert_eq!(a.exceptions[0].frames[0].in_app, Some(true));
        assert_eq!(a.level, EventLevel::Error);
    }

    #[test]
    fn messages_and_templates() {
        let plain = summarize(&json!({"message": "disk full", "level": "warning"}));
        assert_eq!(
            (plain.message.as_str(), plain.level),
            ("disk full", EventLevel::Warning)
        );
        let entry = summarize(
            &json!({"logentry": {"message": "invoice %s failed", "params": ["F-1"], "formatted": "invoice F-1 failed"}}),
        );
        assert_eq!(entry.message, "invoice F-1 failed");
        assert_eq!(entry.message_template, "invoice %s failed");
        let no_params = summarize(&json!({"message": {"formatted": "hello"}}));
        assert_eq!(
            (
                no_params.message.as_str(),
                no_params.message_template.as_str()
            ),
            ("hello", "")
        );
        assert_eq!(
            summarize(&json!({"fingerprint": ["{{ default }}", 7]})).fingerprint,
            ["{{ default }}", "7"]
        );
    }

    #[test]
    fn ids_and_times() {
        let at = 1_795_295_700_000_000_000i64;
        assert_eq!(
            event_id(&json!({"event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC"})).as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(event_id(&json!({"event_id": "nope"})), None);
        assert_eq!(
            timestamp(&json!({"timestamp": "2026-11-21T21:15:00Z"})),
            Some(at)
        );
        assert_eq!(
            timestamp(&json!({"timestamp": 1795295700.5})),
            Some(at + 500_000_000)
        );
        assert_eq!(timestamp(&json!({"timestamp": "1795295700"})), Some(at));
        assert_eq!(timestamp(&json!({"timestamp": -3})), None);
        assert_eq!(timestamp(&json!({})), None);
    }
}
