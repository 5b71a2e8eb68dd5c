//! The jobs API's JSON bodies, read into `vigie_core::job` types.
//!
//! Vigie's own protocol (no standard exists for job progress), so it is forgiving where that
//! costs nothing — a number where a string is expected, a list of recipients for `target`,
//! seconds or milliseconds for durations — and precise where it matters: every refusal names
//! the field (`items[3].status`) so a client can fix the one bad value. Long free text is cut,
//! not refused: a stack trace of 100 KiB is still worth its first 16 KiB.
//!
//! ```json
//! POST /api/v1/jobs            {"name": "Send invoices", "total": 500, "kind": "email"}
//! POST /api/v1/jobs/ID/progress {"increment": 1, "message": "Email 3/500"}
//! POST /api/v1/jobs/ID/items    {"items": [{"id": "inv-3", "status": "ok", "target": "a@b.c",
//!                                           "duration": 0.5}]}
//! POST /api/v1/jobs/ID/finish   {"status": "completed"}
//! ```

use serde_json::{Map, Value};
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use vigie_core::job::{Count, JobUpdate, Progress};
use vigie_core::{ItemStatus, JobStatus, NewItem, NewJob, ProjectId, Timestamp};

/// Longest id, name, kind, application, flow, user, file or target kept.
pub const MAX_SHORT: usize = 1_000;
/// Longest message, comment or error kept.
pub const MAX_TEXT: usize = 16 * 1024;
/// Largest `meta` or `fields` object, serialized.
pub const MAX_OBJECT: usize = 16 * 1024;
/// Most items in one upload.
pub const MAX_BATCH: usize = 10_000;

/// A value that breaks a rule, and which one.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The fields of one JSON object, read by name; errors are prefixed with `path`.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, path: &str) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                path: path.to_string(),
            }),
            _ => Err(field_error(
                if path.is_empty() { "body" } else { path },
                "must be a JSON object",
            )),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn error(&self, key: &str, message: impl Into<String>) -> FieldError {
        field_error(&self.name(key), message)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string (numbers and booleans are taken as their text), cut to `max` characters.
    fn text(&self, key: &str, max: usize) -> Result<Option<String>, FieldError> {
        let text = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => return Err(self.error(key, "must be a string")),
        };
        Ok(Some(cut(text, max)))
    }

    /// A string, or a list of strings joined with ", " (recipients).
    fn text_or_list(&self, key: &str, max: usize) -> Result<Option<String>, FieldError> {
        match self.get(key) {
            Some(Value::Array(list)) => {
                let parts = list
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.as_str()),
                        _ => Err(self.error(key, "must be a string or a list of strings")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(cut(parts.join(", "), max)))
            }
            _ => self.text(key, max),
        }
    }

    fn count(&self, key: &str) -> Result<Option<i64>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Ok(Some(n)),
                Some(n) => Err(self.error(key, format!("must not be negative (got {n})"))),
                None => Err(self.error(key, "must be a whole number")),
            },
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
                Some(_) => Err(self.error(key, "must not be negative")),
                None => Err(self.error(key, "must be a number")),
            },
        }
    }

    /// A JSON object, kept as its serialized text.
    fn object(&self, key: &str) -> Result<Option<String>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => {
                let text = v.to_string();
                if text.len() > MAX_OBJECT {
                    return Err(self.error(key, format!("must be at most {MAX_OBJECT} bytes")));
                }
                Ok(Some(text))
            }
            Some(_) => Err(self.error(key, "must be a JSON object")),
        }
    }

    /// Up to two messages: `message` and the lines of `messages`.
    fn messages(&self) -> Result<Vec<String>, FieldError> {
        let mut lines = Vec::new();
        if let Some(list) = self.get("messages") {
            let Value::Array(list) = list else {
                return Err(self.error("messages", "must be a list of strings"));
            };
            for (i, line) in list.iter().enumerate() {
                match line {
                    Value::String(s) => lines.push(cut(s.clone(), MAX_TEXT)),
                    _ => return Err(self.error(&format!("messages[{i}]"), "must be a string")),
                }
            }
        }
        if let Some(m) = self.text("message", MAX_TEXT)? {
            lines.push(m);
        }
        Ok(lines)
    }
}

fn cut(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
    text
}

/// `POST /api/v1/jobs`.
pub fn new_job(project: ProjectId, body: &Value) -> Result<NewJob, FieldError> {
    let f = Fields::of(body, "")?;
    let name = f
        .text("name", MAX_SHORT)?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| f.error("name", "is required"))?;
    let id = f.text("id", 200)?.map(|id| id.trim().to_string());
    if let Some(id) = &id {
        if id.is_empty() || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(f.error("id", "must be non-empty, without '/' or control characters"));
        }
    }
    let start = match f.text("status", 20)?.as_deref() {
        None | Some("running") => true,
        Some("pending") => false,
        Some(other) => {
            return Err(f.error(
                "status",
                format!("a new job is running or pending, not {other:?}"),
            ))
        }
    };
    Ok(NewJob {
        project,
        id,
        name,
        kind: f.text("kind", MAX_SHORT)?,
        application: f.text("application", MAX_SHORT)?,
        flow: f.text("flow", MAX_SHORT)?,
        launched_by: f.text("launched_by", MAX_SHORT)?,
        total: f.count("total")?,
        stall_after_ms: f
            .number("stall_after")?
            .map(|s| (s * 1000.0).round() as i64),
        meta: f.object("meta")?,
        start,
    })
}

/// `POST …/progress`: `processed`/`failed` set a value, `increment`/`failed_increment` add.
pub fn progress(body: &Value) -> Result<JobUpdate, FieldError> {
    let f = Fields::of(body, "")?;
    let pick = |set: &str, add: &str| -> Result<Option<Count>, FieldError> {
        match (f.count(set)?, f.count(add)?) {
            (Some(_), Some(_)) => Err(f.error(add, format!("give {set} or {add}, not both"))),
            (Some(n), None) => Ok(Some(Count::Set(n))),
            (None, Some(n)) => Ok(Some(Count::Add(n))),
            (None, None) => Ok(None),
        }
    };
    Ok(JobUpdate::Progress(Progress {
        processed: pick("processed", "increment")?,
        failed: pick("failed", "failed_increment")?,
        total: f.count("total")?,
        messages: f.messages()?,
    }))
}

/// `POST …/heartbeat` (the body may be empty).
pub fn heartbeat(body: &Value) -> Result<JobUpdate, FieldError> {
    if body.is_null() {
        return Ok(JobUpdate::Heartbeat { messages: vec![] });
    }
    Ok(JobUpdate::Heartbeat {
        messages: Fields::of(body, "")?.messages()?,
    })
}

/// `POST …/finish`: `status` is completed (the default), failed or cancelled.
pub fn finish(body: &Value) -> Result<JobUpdate, FieldError> {
    if body.is_null() {
        return Ok(JobUpdate::Finish {
            status: JobStatus::Completed,
            messages: vec![],
        });
    }
    let f = Fields::of(body, "")?;
    let status = match f.text("status", 20)? {
        None => JobStatus::Completed,
        Some(s) => match s.parse::<JobStatus>() {
            Ok(st) if st.is_finished() => st,
            _ => {
                return Err(f.error(
                    "status",
                    format!("a job finishes as completed, failed or cancelled, not {s:?}"),
                ))
            }
        },
    };
    Ok(JobUpdate::Finish {
        status,
        messages: f.messages()?,
    })
}

/// `POST …/items`: one item, a list, or `{"items": [...]}`. Good items are returned, bad ones
/// reported by index: one bad row does not cost the others.
pub fn items(body: &Value) -> Result<(Vec<NewItem>, Vec<FieldError>), FieldError> {
    let (list, path) = match body {
        Value::Array(list) => (list.as_slice(), ""),
        Value::Object(map) => match map.get("items") {
            Some(Value::Array(list)) => (list.as_slice(), "items"),
            Some(_) => return Err(field_error("items", "must be a list")),
            None => (std::slice::from_ref(body), ""),
        },
        _ => {
            return Err(field_error(
                "body",
                "must be an item, a list, or {\"items\": [...]}",
            ))
        }
    };
    if list.len() > MAX_BATCH {
        return Err(field_error(
            if path.is_empty() { "body" } else { path },
            format!("at most {MAX_BATCH} items per upload (got {})", list.len()),
        ));
    }
    let single = matches!(body, Value::Object(m) if !m.contains_key("items"));
    let mut good = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for (i, value) in list.iter().enumerate() {
        let at = if single {
            String::new()
        } else {
            format!("{path}[{i}]")
        };
        match item(value, &at) {
            Ok(item) => good.push(item),
            Err(e) => bad.push(e),
        }
    }
    Ok((good, bad))
}

/// The index of a bad item, read back from its field path (`items[3].status` → 3).
pub fn item_index(error: &FieldError) -> Option<usize> {
    let open = error.field.find('[')?;
    let close = error.field[open..].find(']')? + open;
    error.field[open + 1..close].parse().ok()
}

fn item(value: &Value, path: &str) -> Result<NewItem, FieldError> {
    let f = Fields::of(value, path)?;
    let status = match f.text("status", 20)? {
        None => return Err(f.error("status", "is required: ok, error or skipped")),
        Some(s) => s
            .parse::<ItemStatus>()
            .map_err(|e| f.error("status", e.to_string()))?,
    };
    let key = match (f.text("id", 200)?, f.count("seq")?) {
        (Some(id), _) => Some(id),
        (None, Some(seq)) => Some(format!("#{seq}")),
        (None, None) => None,
    };
    let duration_ms = match (f.number("duration")?, f.number("duration_ms")?) {
        (_, Some(ms)) => Some(ms),
        (Some(s), None) => Some(s * 1000.0),
        (None, None) => None,
    };
    Ok(NewItem {
        key,
        status,
        name: f.text("name", MAX_SHORT)?,
        file: f.text("file", MAX_SHORT)?,
        target: f.text_or_list("target", MAX_SHORT)?,
        comment: f.text("comment", MAX_TEXT)?,
        error: f.text("error", MAX_TEXT)?,
        duration_ms,
        at: time_of(&f, "at")?,
        fields: f.object("fields")?,
    })
}

/// RFC 3339 text, or Unix seconds as a number (Python's `time.time()`).
fn time_of(f: &Fields<'_>, key: &str) -> Result<Option<Timestamp>, FieldError> {
    match f.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Some(Timestamp((s * 1000.0).round() as i64)))
            .ok_or_else(|| f.error(key, "must be Unix seconds or an RFC 3339 time")),
        Some(Value::String(s)) => parse_time(s)
            .map(Some)
            .ok_or_else(|| f.error(key, format!("{s:?} is not an RFC 3339 time"))),
        Some(_) => Err(f.error(key, "must be Unix seconds or an RFC 3339 time")),
    }
}

/// `2026-11-21T10:40:00Z` (any offset) → a timestamp.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let t = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    Some(Timestamp(vigie_core::time::saturating_ns(
        t.unix_timestamp_nanos() / 1_000_000,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_needs_a_name_and_takes_loose_types() {
        let job = new_job(
            ProjectId(1),
            &json!({"name": " Send invoices ", "launched_by": 1, "total": 500, "stall_after": 2.5,
                    "meta": {"month": "2026-11"}}),
        )
        .unwrap();
        assert_eq!(job.name, "Send invoices");
        assert_eq!(job.launched_by.as_deref(), Some("1"));
        assert_eq!(job.stall_after_ms, Some(2_500));
        assert!(job.start);
        let err = new_job(ProjectId(1), &json!({"total": 5})).unwrap_err();
        assert_eq!(err.to_string(), "name: is required");
        let err = new_job(ProjectId(1), &json!({"name": "x", "total": -1})).unwrap_err();
        assert_eq!(err.field, "total");
        let err = new_job(ProjectId(1), &json!({"name": "x", "meta": [1]})).unwrap_err();
        assert_eq!(err.field, "meta");
        assert_eq!(new_job(ProjectId(1), &json!([])).unwrap_err().field, "body");
    }

    #[test]
    fn progress_sets_or_increments_but_not_both() {
        let update = progress(&json!({"increment": 2, "message": "Email 3/500"})).unwrap();
        let JobUpdate::Progress(p) = update else {
            panic!()
        };
        assert_eq!(p.processed, Some(Count::Add(2)));
        assert_eq!(p.messages, ["Email 3/500"]);
        let err = progress(&json!({"processed": 1, "increment": 1})).unwrap_err();
        assert_eq!(err.field, "increment");
        assert_eq!(
            progress(&json!({"failed": "x"})).unwrap_err().field,
            "failed"
        );
    }

    #[test]
    fn a_batch_keeps_good_items_and_names_bad_ones() {
        let body = json!({"items": [
            {"id": "a", "status": "ok", "target": ["x@example.com", "y@example.com"], "duration": 0.5},
            {"status": "done"},
            {"seq": 3, "status": "error", "error": "550", "at": "2026-11-21T10:00:00Z"},
            "nope",
        ]});
        let (good, bad) = items(&body).unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!(
            good[0].target.as_deref(),
            Some("x@example.com, y@example.com")
        );
        assert_eq!(good[0].duration_ms, Some(500.0));
        assert_eq!(good[1].key.as_deref(), Some("#3"));
        assert_eq!(good[1].at, parse_time("2026-11-21T10:00:00Z"));
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].field, "items[1].status");
        assert_eq!(item_index(&bad[0]), Some(1));
        assert_eq!(bad[1].field, "items[3]");
        assert_eq!(item_index(&bad[1]), Some(3));
    }

    #[test]
    fn a_single_item_and_a_bare_list_are_accepted() {
        let (good, bad) = items(&json!({"status": "skipped", "name": "n"})).unwrap();
        assert_eq!((good.len(), bad.len()), (1, 0));
        let (_, bad) = items(&json!([{"status": "ok"}, {}])).unwrap();
        assert_eq!(bad[0].field, "[1].status");
        assert!(items(&json!({"items": 3})).is_err());
    }

    #[test]
    fn long_text_is_cut_not_refused() {
        let long = "é".repeat(MAX_TEXT + 10);
        let (good, _) = items(&json!({"status": "error", "error": long})).unwrap();
        assert_eq!(good[0].error.as_ref().unwrap().chars().count(), MAX_TEXT);
    }

    /// The fuzz target's property on seeded random bodies, so stable CI covers it too.
    #[test]
    fn random_bodies_never_panic() {
        use rand::{Rng, SeedableRng};
        const KEYS: [&str; 16] = [
            "name",
            "id",
            "seq",
            "status",
            "total",
            "processed",
            "increment",
            "failed",
            "message",
            "messages",
            "items",
            "target",
            "duration",
            "at",
            "fields",
            "meta",
        ];
        fn value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
            match rng.gen_range(0..if depth > 2 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => json!(rng.gen::<bool>()),
                2 => json!(rng.gen_range(-5i64..1_000_000)),
                3 => json!(rng.gen::<f64>() * 1e6 - 10.0),
                4 => json!(
                    [
                        "ok",
                        "error",
                        "skipped",
                        "done",
                        "",
                        "é",
                        "2026-11-21T10:00:00Z"
                    ][rng.gen_range(0..7)]
                ),
                5 => Value::Array(
                    (0..rng.gen_range(0..4))
                        .map(|_| value(rng, depth + 1))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..rng.gen_range(0..6))
                        .map(|_| {
                            (
                                KEYS[rng.gen_range(0..KEYS.len())].to_string(),
                                value(rng, depth + 1),
                            )
                        })
                        .collect(),
                ),
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let body = value(&mut rng, 0);
            let _ = new_job(ProjectId(1), &body);
            let _ = progress(&body);
            let _ = heartbeat(&body);
            let _ = finish(&body);
            if let Ok((_, bad)) = items(&body) {
                assert!(bad.iter().all(|e| !e.field.is_empty()));
            }
        }
    }

    #[test]
    fn finish_defaults_to_completed_and_refuses_running() {
        assert_eq!(
            finish(&Value::Null).unwrap(),
            JobUpdate::Finish {
                status: JobStatus::Completed,
                messages: vec![]
            }
        );
        assert_eq!(
            finish(&json!({"status": "running"})).unwrap_err().field,
            "status"
        );
    }
}
