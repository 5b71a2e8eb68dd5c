//! Celery's monitoring messages as they cross the broker.
//!
//! ```text
//! Redis PUBLISH /<db>.celeryev/<routing key>   (AMQP: exchange celeryev, same body)
//!   kombu envelope {"body": <base64>, "content-type": "application/json",
//!                   "properties": {"body_encoding": "base64", …}, …}
//!     body: one event {"type": "task-started", "uuid", "hostname", "timestamp", …}
//!           or, routing key task.multi, a list of them (workers batch task events)
//! Redis PUBLISH celery-task-meta-<task id>     (the Redis result backend)
//!   {"status": "PROGRESS", "result": {"current": 3, "total": 10, …}, "task_id": …}
//! ```
//!
//! [`decode_message`] opens an envelope into its events; [`decode_task_meta`] reads a result
//! backend message. Only JSON bodies are read: a worker configured for pickle or msgpack
//! events gives [`CeleryError::Undecodable`] naming the content type, so the consumer can
//! count and skip it. Events keep every field they came with (custom events carry their own);
//! the getters read the usual ones.

pub mod control;
pub mod task;

use base64::Engine;
use serde_json::{Map, Value};

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeleryError {
    #[error("not a kombu message: {0}")]
    NotAnEnvelope(String),
    /// A serializer other than JSON (pickle, msgpack, yaml): counted and skipped.
    #[error("the body is {content_type}, not JSON: set event_serializer = \"json\"")]
    Undecodable { content_type: String },
    #[error("the body is not valid: {0}")]
    BadBody(String),
}

/// One Celery event: its type, where and when it happened, and all its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `task-received`, `worker-heartbeat`, or a custom type such as `task-progress`.
    pub kind: String,
    /// The sender: `celery@web-1` for workers, `gen1234@web-1` for clients sending tasks.
    pub hostname: String,
    /// Seconds since the epoch, as the sender's clock saw it.
    pub timestamp: f64,
    /// Every field of the event, `type`, `hostname` and `timestamp` included.
    pub fields: Map<String, Value>,
}

impl Event {
    fn from_value(value: Value) -> Result<Event, CeleryError> {
        let Value::Object(fields) = value else {
            return Err(CeleryError::BadBody("an event is not a JSON object".into()));
        };
        let kind = fields
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| CeleryError::BadBody("an event without a type".into()))?
            .to_string();
        Ok(Event {
            kind,
            hostname: fields
                .get("hostname")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            timestamp: fields
                .get("timestamp")
                .and_then(Value::as_f64)
                .unwrap_or_default(),
            fields,
        })
    }

    /// A task event (`task-…`, with the task's id).
    pub fn is_task(&self) -> bool {
        self.kind.starts_with("task-") && self.uuid().is_some()
    }

    /// A worker event (`worker-online`, `worker-heartbeat`, `worker-offline`).
    pub fn is_worker(&self) -> bool {
        self.kind.starts_with("worker-")
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    pub fn number(&self, name: &str) -> Option<f64> {
        self.fields.get(name).and_then(Value::as_f64)
    }

    pub fn integer(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        })
    }

    pub fn uuid(&self) -> Option<&str> {
        self.text("uuid").filter(|u| !u.is_empty())
    }

    /// A field shown as text: strings as they are, anything else as JSON (Celery sends `args`
    /// and `kwargs` already as their Python repr, `result` as a repr or JSON).
    pub fn shown(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The events in one broker message.
pub fn decode_message(raw: &[u8]) -> Result<Vec<Event>, CeleryError> {
    events_of(open_envelope(raw)?)
}

/// The JSON body of a kombu envelope as the Redis transport writes it (the body base64'd or
/// as text, its content type beside it).
pub fn open_envelope(raw: &[u8]) -> Result<Value, CeleryError> {
    let envelope: Value = serde_json::from_slice(raw)
        .map_err(|e| CeleryError::NotAnEnvelope(format!("not JSON: {e}")))?;
    let Value::Object(envelope) = envelope else {
        return Err(CeleryError::NotAnEnvelope("not a JSON object".into()));
    };
    let content_type = envelope
        .get("content-type")
        .and_then(Value::as_str)
        .unwrap_or("application/json");
    if content_type != "application/json" {
        return Err(CeleryError::Undecodable {
            content_type: content_type.to_string(),
        });
    }
    let body = envelope
        .get("body")
        .ok_or_else(|| CeleryError::NotAnEnvelope("no body".into()))?;
    let encoding = envelope
        .get("properties")
        .and_then(|p| p.get("body_encoding"))
        .and_then(Value::as_str);
    Ok(match (body, encoding) {
        (Value::String(text), Some("base64")) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| CeleryError::BadBody(format!("bad base64: {e}")))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| CeleryError::BadBody(format!("not JSON: {e}")))?
        }
        (Value::String(text), _) => serde_json::from_str(text)
            .map_err(|e| CeleryError::BadBody(format!("not JSON: {e}")))?,
        // Some transports put the body in as JSON itself.
        (other, _) => other.clone(),
    })
}

/// The events in an AMQP message's body: the body is the JSON itself, its content type a
/// message property (no envelope, no base64).
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Vec<Event>, CeleryError> {
    let content_type = if content_type.is_empty() {
        "application/json"
    } else {
        content_type
    };
    if content_type != "application/json" {
        return Err(CeleryError::Undecodable {
            content_type: content_type.to_string(),
        });
    }
    events_of(
        serde_json::from_slice(body).map_err(|e| CeleryError::BadBody(format!("not JSON: {e}")))?,
    )
}

fn events_of(body: Value) -> Result<Vec<Event>, CeleryError> {
    match body {
        Value::Array(items) => items.into_iter().map(Event::from_value).collect(),
        one => Ok(vec![Event::from_value(one)?]),
    }
}

/// A task state written by the Redis result backend.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMeta {
    pub task_id: String,
    /// `PROGRESS`, `SUCCESS`, `FAILURE`, or a custom state.
    pub status: String,
    /// `current` and `total` of a progress update (celery-progress's ProgressRecorder writes
    /// them, with `percent` and `description`).
    pub progress: Option<(i64, Option<i64>)>,
    /// What the task says it is doing (celery-progress's `description`), at most
    /// [`MAX_DESCRIPTION`] bytes.
    pub description: Option<String>,
    pub result: Value,
}

/// The longest progress description kept (a description is a line of text, not a log).
pub const MAX_DESCRIPTION: usize = 500;

/// A `celery-task-meta-<id>` message.
pub fn decode_task_meta(raw: &[u8]) -> Result<TaskMeta, CeleryError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| CeleryError::BadBody(format!("not JSON: {e}")))?;
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let task_id = text("task_id").ok_or_else(|| CeleryError::BadBody("no task_id".into()))?;
    let status = text("status").ok_or_else(|| CeleryError::BadBody("no status".into()))?;
    let result = value.get("result").cloned().unwrap_or(Value::Null);
    let count = |name: &str| {
        result
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    let progress = count("current").map(|current| (current, count("total")));
    let description = progress
        .and(result.get("description"))
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let mut end = d.len().min(MAX_DESCRIPTION);
            while !d.is_char_boundary(end) {
                end -= 1;
            }
            d[..end].to_string()
        });
    Ok(TaskMeta {
        task_id,
        status,
        progress,
        description,
        result,
    })
}

/// A Python traceback as Celery prints it in `task-failed`, read into frames (oldest first)
/// and the exception's type and message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Traceback {
    pub frames: Vec<TracebackFrame>,
    /// `KeyError`, `smtplib.SMTPRecipientsRefused`.
    pub exception_type: String,
    /// What follows the type on the last line: `'BE'`.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TracebackFrame {
    pub filename: String,
    pub lineno: u32,
    pub function: String,
    /// The source line, when printed.
    pub line: Option<String>,
}

impl TracebackFrame {
    /// As a frame of a Sentry event's stack trace.
    pub fn to_sentry(&self) -> serde_json::Value {
        serde_json::json!({
            "filename": self.filename,
            "abs_path": self.filename,
            "lineno": self.lineno,
            "function": self.function,
            "context_line": self.line,
            "in_app": self.in_app(),
        })
    }

    /// The application's own code, not the interpreter's or an installed package's.
    pub fn in_app(&self) -> bool {
        !["site-packages", "dist-packages", "/lib/python", "<frozen "]
            .iter()
            .any(|marker| self.filename.contains(marker))
    }
}

/// Reads `Traceback (most recent call last): File "…", line N, in f … Type: message`. Of a
/// chained traceback ("During handling of the above exception…") the last part is read. When
/// the text holds no frame, the exception comes from `exception`, Celery's repr of it
/// (`KeyError('BE')`).
pub fn parse_traceback(text: &str, exception: &str) -> Traceback {
    let last_part = text
        .rsplit("Traceback (most recent call last):")
        .next()
        .unwrap_or(text);
    let mut tb = Traceback::default();
    let mut lines = last_part.lines().peekable();
    let mut last_line = "";
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("File \"") {
            let Some((filename, rest)) = rest.split_once('"') else {
                continue;
            };
            let rest = rest.trim_start_matches(',').trim();
            let lineno = rest
                .strip_prefix("line ")
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let function = rest
                .split_once(", in ")
                .map_or("?", |(_, f)| f.trim())
                .to_string();
            // The source line, unless the next line is another frame or the end.
            let line = lines
                .peek()
                .filter(|next| next.starts_with("    ") && !next.trim().starts_with("File \""))
                .map(|next| next.trim().to_string());
            if line.is_some() {
                lines.next();
            }
            tb.frames.push(TracebackFrame {
                filename: filename.to_string(),
                lineno,
                function,
                line,
            });
        } else if !trimmed.is_empty()
            && !line.starts_with(' ')
            && !trimmed.chars().all(|c| c == '^' || c == '~')
        {
            last_line = trimmed;
        }
    }
    let (kind, message) = match last_line.split_once(": ") {
        Some((kind, message)) if !tb.frames.is_empty() && is_name(kind) => {
            (kind.to_string(), message.to_string())
        }
        _ if !tb.frames.is_empty() && is_name(last_line) => (last_line.to_string(), String::new()),
        _ => match exception.split_once('(') {
            Some((kind, args)) if is_name(kind) => (
                kind.to_string(),
                args.strip_suffix(')').unwrap_or(args).to_string(),
            ),
            _ => ("Exception".to_string(), exception.to_string()),
        },
    };
    tb.exception_type = kind;
    tb.message = message;
    tb
}

/// A dotted Python name: `KeyError`, `smtplib.SMTPException`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real messages from a Celery 5.7 worker on Redis, as `redis-cli psubscribe` printed them.
    const EVENTS: &str = include_str!("../../tests/fixtures/celery/events.txt");
    const META: &str = include_str!("../../tests/fixtures/celery/meta.txt");

    fn messages(capture: &str) -> Vec<&str> {
        capture.lines().filter(|l| l.starts_with('{')).collect()
    }

    #[test]
    fn a_real_worker_s_events_are_read() {
        let events: Vec<Event> = messages(EVENTS)
            .iter()
            .flat_map(|m| decode_message(m.as_bytes()).unwrap())
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        for kind in [
            "worker-online",
            "worker-heartbeat",
            "task-sent",
            "task-received",
            "task-started",
            "task-succeeded",
            "task-failed",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let sent = events.iter().find(|e| e.kind == "task-sent").unwrap();
        assert!(sent.is_task() && !sent.is_worker());
        assert_eq!(sent.text("name"), Some("tasks.add"));
        assert_eq!(sent.shown("args").as_deref(), Some("(2, 3)"));
        assert_eq!(sent.text("queue"), Some("celery"));
        assert!(sent.timestamp > 1.7e9);
        let failed = events.iter().find(|e| e.kind == "task-failed").unwrap();
        assert_eq!(failed.text("exception"), Some("KeyError('BE')"));
        assert!(failed
            .text("traceback")
            .unwrap()
            .contains("raise KeyError(name)"));
        let beat = events
            .iter()
            .find(|e| e.kind == "worker-heartbeat")
            .unwrap();
        assert_eq!(beat.hostname, "celery@vm");
        assert_eq!(beat.number("freq"), Some(2.0));
        assert_eq!(beat.text("sw_ver"), Some("5.7.0"));
        // task.multi bodies hold several events.
        let multi = messages(EVENTS)
            .iter()
            .map(|m| decode_message(m.as_bytes()).unwrap().len())
            .max()
            .unwrap();
        assert!(multi >= 2);
    }

    #[test]
    fn tracebacks_are_read_into_frames() {
        let failed = messages(EVENTS)
            .into_iter()
            .flat_map(|m| decode_message(m.as_bytes()).unwrap())
            .find(|e| e.kind == "task-failed")
            .unwrap();
        let tb = parse_traceback(
            failed.text("traceback").unwrap(),
            failed.text("exception").unwrap(),
        );
        assert_eq!(
            (tb.exception_type.as_str(), tb.message.as_str()),
            ("KeyError", "'BE'")
        );
        assert_eq!(tb.frames.len(), 3);
        let own = &tb.frames[2];
        assert_eq!(
            (
                own.filename.as_str(),
                own.lineno,
                own.function.as_str(),
                own.line.as_deref()
            ),
            (
                "/tmp/cel/tasks.py",
                14,
                "boom",
                Some("raise KeyError(name)")
            )
        );
        assert!(own.in_app() && !tb.frames[0].in_app());

        let chained = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    x()\nValueError: first\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"b.py\", line 2, in g\n    y()\nsmtplib.SMTPRecipientsRefused: {'a@b': (550, b'no')}\n";
        let tb = parse_traceback(chained, "");
        assert_eq!(tb.exception_type, "smtplib.SMTPRecipientsRefused");
        assert_eq!(tb.frames.len(), 1);
        assert_eq!(tb.frames[0].filename, "b.py");

        let bare = parse_traceback("", "TimeoutError('SMTP server went away')");
        assert_eq!(
            (bare.exception_type.as_str(), bare.message.as_str()),
            ("TimeoutError", "'SMTP server went away'")
        );
        assert!(bare.frames.is_empty());
        assert_eq!(
            parse_traceback("garbage", "not a repr").exception_type,
            "Exception"
        );
    }

    #[test]
    fn amqp_bodies_are_the_json_itself() {
        let one = decode_body(
            "application/json",
            br#"{"type": "worker-heartbeat", "hostname": "celery@a", "timestamp": 1.0}"#,
        )
        .unwrap();
        assert_eq!(one[0].kind, "worker-heartbeat");
        let many = decode_body("", br#"[{"type": "task-started", "uuid": "u", "hostname": "h", "timestamp": 1.0}, {"type": "task-succeeded", "uuid": "u", "hostname": "h", "timestamp": 2.0}]"#).unwrap();
        assert_eq!(many.len(), 2);
        assert!(matches!(
            decode_body("application/x-python-serialize", b"\x80\x04"),
            Err(CeleryError::Undecodable { .. })
        ));
        assert!(matches!(
            decode_body("application/json", b"{"),
            Err(CeleryError::BadBody(_))
        ));
    }

    #[test]
    fn progress_from_the_result_backend() {
        let metas: Vec<TaskMeta> = messages(META)
            .iter()
            .map(|m| decode_task_meta(m.as_bytes()).unwrap())
            .collect();
        assert_eq!(metas[0].status, "SUCCESS");
        assert_eq!(metas[0].progress, None);
        let progress = metas.iter().find(|m| m.status == "PROGRESS").unwrap();
        assert_eq!(progress.progress, Some((1, Some(5))));
    }

    #[test]
    fn other_serializers_and_garbage_are_named() {
        let pickle = br#"{"body": "gASVBAAAAAAAAACMAXiULg==", "content-type": "application/x-python-serialize", "properties": {"body_encoding": "base64"}}"#;
        assert_eq!(
            decode_message(pickle),
            Err(CeleryError::Undecodable {
                content_type: "application/x-python-serialize".into()
            })
        );
        assert!(matches!(
            decode_message(b"not json"),
            Err(CeleryError::NotAnEnvelope(_))
        ));
        let no_type = br#"{"body": "e30=", "content-type": "application/json", "properties": {"body_encoding": "base64"}}"#;
        assert!(matches!(
            decode_message(no_type),
            Err(CeleryError::BadBody(_))
        ));
        let bad_b64 = br#"{"body": "%%%", "properties": {"body_encoding": "base64"}}"#;
        assert!(matches!(
            decode_message(bad_b64),
            Err(CeleryError::BadBody(_))
        ));
        assert!(decode_task_meta(b"{}").is_err());
    }
}
