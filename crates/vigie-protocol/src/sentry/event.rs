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
use vigie_core::json;

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The event's `event_id`, as 32 lower-case hex digits (dashes removed), if it is one.
pub fn event_id(event: &Value) -> Option<String> {
    normalize_event_id(event.get("event_id")?.as_str()?)
}

/// An event id as given anywhere (the event, an envelope header), as 32 lower-case hex digits
/// (dashes removed), if it is one.
pub fn normalize_event_id(raw: &str) -> Option<String> {
    let id: String = raw
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The event's time in ns since the epoch, if it says one.
pub fn timestamp(event: &Value) -> Option<i64> {
    seconds(event.get("timestamp")?).map(|s| (s * 1e9) as i64)
}

/// A Sentry time (seconds since the epoch as a number or a string of one, or RFC 3339) in
/// seconds.
pub fn seconds(value: &Value) -> Option<f64> {
    let seconds = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => n,
            Err(_) => parse_time(s)? as f64 / 1e9,
        },
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0 && seconds < 1e11).then_some(seconds)
}

/// What the event says about where and to whom it happened, beyond grouping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventContext {
    pub environment: Option<String>,
    pub release: Option<String>,
    pub trace_id: Option<String>,
    /// The Vigie job the event belongs to (see [`context`] for where it is read).
    pub job_id: Option<String>,
    /// A stable key for "users affected": the user's id, else e-mail, username or IP address.
    pub user_key: Option<String>,
    /// How to show the user: e-mail, username, id or IP address, the first there is.
    pub user_label: Option<String>,
    /// The SDK's tags (`set_tag`), as an object or a list of pairs; at most [`MAX_TAGS`].
    pub tags: Vec<(String, String)>,
}

/// Tags kept per event; each key at most 64 characters and each value 200.
pub const MAX_TAGS: usize = 50;

fn some_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

/// Reads the event's context. The job id is the tag `job_id` (or `vigie.job_id`), the extra
/// `job_id`, the context `vigie.job_id`, or the Celery task id the SDK's Celery integration
/// tags (`celery_task_id`), the first found.
pub fn context(event: &Value) -> EventContext {
    let tags: Vec<(String, String)> = match event.get("tags") {
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), some_text(Some(v))?)))
            .collect(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .filter_map(|pair| {
                let pair = pair.as_array()?;
                Some((some_text(pair.first())?, some_text(pair.get(1))?))
            })
            .collect(),
        _ => Vec::new(),
    };
    let tags: Vec<(String, String)> = tags
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .take(MAX_TAGS)
        .map(|(k, v)| (clip(&k, 64), clip(&v, 200)))
        .collect();
    let tag = |name: &str| tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let job_id = tag("job_id")
        .or_else(|| tag("vigie.job_id"))
        .or_else(|| some_text(json::at(event, &["extra", "job_id"])))
        .or_else(|| some_text(json::at(event, &["contexts", "vigie", "job_id"])))
        .or_else(|| tag("celery_task_id"));
    let user = event.get("user");
    let user_field = |name: &str| some_text(user.and_then(|u| u.get(name)));
    let (id, email, username, ip) = (
        user_field("id"),
        user_field("email"),
        user_field("username"),
        user_field("ip_address"),
    );
    EventContext {
        environment: some_text(event.get("environment")).map(|e| clip(&e, 64)),
        release: some_text(event.get("release")).map(|r| clip(&r, 200)),
        trace_id: some_text(json::at(event, &["contexts", "trace", "trace_id"]))
            .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|t| t.to_ascii_lowercase()),
        job_id: job_id.map(|j| clip(&j, 200)),
        user_key: id
            .clone()
            .or(email.clone())
            .or(username.clone())
            .or(ip.clone()),
        user_label: email.or(username).or(id).or(ip),
        tags,
    }
}

fn frames(exception: &Value) -> Vec<FrameSummary> {
    json::at(exception, &["stacktrace", "frames"])
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
