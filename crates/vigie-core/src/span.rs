//! Spans: the timed operations a trace is made of, whichever SDK reported them.
//!
//! ```text
//!   OTLP /v1/traces ──▶ vigie_protocol::otlp::traces ──┐
//!                                                       ├──▶ Span ──▶ store, keyed by trace id
//!   (Sentry transactions and streamed spans, later) ────┘
//! ```
//!
//! Ids are lowercase hex, as logs and Sentry events carry them, so a trace id found in a log
//! line, an error event or a span is one and the same string. Times are nanoseconds since the
//! Unix epoch, as OTLP sends them. Attribute values are kept as text (strings as sent, other
//! values as JSON), like log record fields, so one query language reads both.

use serde::{Deserialize, Serialize};

/// One span as stored and shown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, never all zero.
    pub span_id: String,
    /// Empty for the root of a trace (or of what this service saw of it).
    pub parent_span_id: String,
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    /// Nanoseconds since the epoch.
    pub start: i64,
    /// Nanoseconds since the epoch, never before `start`.
    pub end: i64,
    pub status: SpanStatus,
    pub status_message: String,
    /// The instrumentation scope (library) that made the span.
    pub scope: String,
    pub attributes: Vec<(String, String)>,
    /// The resource's attributes other than `service.name`.
    pub resource: Vec<(String, String)>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
}

impl Span {
    pub fn duration_ns(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span ended in error (OTLP's status code, as the SDKs set it).
    pub fn failed(&self) -> bool {
        self.status == SpanStatus::Error
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the span begins a unit of work: a request served (SERVER), a message or task
    /// handled (CONSUMER), or the root of what its service saw. Trace search finds traces by
    /// these spans.
    pub fn is_entry(&self) -> bool {
        matches!(self.kind, SpanKind::Server | SpanKind::Consumer) || self.parent_span_id.is_empty()
    }

    /// What the unit of work is called: an endpoint with its method (`GET /invoices/{id}`,
    /// the route from `http.route` or `url.template`, as the Performance page names Sentry's
    /// requests), a task (`celery.task_name`, else the messaging destination), else the span's
    /// own name.
    pub fn entry_name(&self) -> String {
        let named = match self.kind {
            SpanKind::Server => self
                .attribute("http.route")
                .or_else(|| self.attribute("url.template"))
                .filter(|n| !n.is_empty())
                .map(|route| {
                    let method = self
                        .attribute("http.request.method")
                        .or_else(|| self.attribute("http.method"));
                    crate::endpoint::named(method, route)
                }),
            SpanKind::Consumer => self
                .attribute("celery.task_name")
                .or_else(|| self.attribute("messaging.destination.name"))
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            _ => None,
        };
        named.unwrap_or_else(|| self.name.clone())
    }

    /// The HTTP status the span answered or got (`http.response.status_code`, or the older
    /// `http.status_code`).
    pub fn http_status(&self) -> Option<u16> {
        self.attribute("http.response.status_code")
            .or_else(|| self.attribute("http.status_code"))
            .and_then(|s| s.trim_matches('"').parse().ok())
    }

    /// Whether the unit of work it began failed: the span ended in error, or, serving a
    /// request, answered 5xx (OpenTelemetry leaves a 4xx unset: the client's fault).
    pub fn entry_failed(&self) -> bool {
        self.failed()
            || (self.kind == SpanKind::Server && self.http_status().is_some_and(|c| c >= 500))
    }

    /// Whether a Celery worker ran it (the Celery instrumentation's attributes).
    pub fn is_celery(&self) -> bool {
        self.attribute("celery.task_name").is_some()
            || self.attribute("messaging.system") == Some("celery")
    }

    /// The Vigie job the span worked for: its `job_id` (or `vigie.job_id`) attribute, else,
    /// for a Celery task run, the task id (a task's job has the task's id).
    pub fn job_id(&self) -> Option<&str> {
        self.attribute("job_id")
            .or_else(|| self.attribute("vigie.job_id"))
            .or_else(|| {
                self.is_celery()
                    .then(|| self.attribute("messaging.message.id"))
                    .flatten()
            })
            .filter(|j| !j.is_empty())
    }
}

/// Something that happened at one instant of a span (an exception, a retry, a log line).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub time: i64,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// A span of another trace (or of this one) that this span relates to, e.g. the request that
/// queued a batch job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Vec<(String, String)>,
}

/// OpenTelemetry's span kinds, by their numbers in the OTLP protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    /// Handles a request: an endpoint's figures come from these.
    Server,
    Client,
    Producer,
    /// Handles a queued message: a Celery task run.
    Consumer,
}

impl SpanKind {
    /// As the API writes it (`server`, `consumer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// From OTLP's `SpanKind` number; an unknown number is `Unspecified`.
    pub fn from_otlp(number: i32) -> SpanKind {
        match number {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// OpenTelemetry's status codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// From OTLP's `Status.code`; an unknown number is `Unset`.
    pub fn from_otlp(code: i32) -> SpanStatus {
        match code {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// The attribute that keeps a span's start as sent when Vigie moved it (see [`place_in_time`]).
pub const ORIGINAL_START_ATTRIBUTE: &str = "vigie.original_start";

/// Moves the spans whose start is implausible for data received at `received` (ns; see
/// `time::plausible_ns`) to that time, keeping their duration and the start as sent in
/// [`ORIGINAL_START_ATTRIBUTE`]; answers how many it moved. The rule logs follow, so a span of
/// year 2200 cannot top every "newest" search and one of 1970 is not dropped by retention at
/// once. The moved spans of one trace move together, by the shift of the earliest of them:
/// they most likely come from one wrong clock, and their waterfall keeps its shape.
pub fn place_in_time(spans: &mut [Span], received: i64) -> usize {
    use std::collections::HashMap;
    let implausible = |s: &Span| !crate::time::plausible_ns(s.start, received);
    let mut earliest: HashMap<String, i64> = HashMap::new();
    for span in spans.iter().filter(|s| implausible(s)) {
        earliest
            .entry(span.trace_id.clone())
            .and_modify(|start| *start = (*start).min(span.start))
            .or_insert(span.start);
    }
    let mut moved = 0;
    for span in spans.iter_mut().filter(|s| implausible(s)) {
        let earliest = earliest[&span.trace_id];
        let duration = span.duration_ns().max(0);
        let shifted = received.saturating_add(span.start.saturating_sub(earliest));
        // Two wrong clocks in one trace (1990 and 2200) would leave the later one far off.
        let start = if crate::time::plausible_ns(shifted, received) {
            shifted
        } else {
            received
        };
        span.attributes.push((
            ORIGINAL_START_ATTRIBUTE.to_string(),
            crate::time::describe_ns(span.start),
        ));
        span.start = start;
        span.end = start.saturating_add(duration);
        moved += 1;
    }
    moved
}

/// Whether `text` can be a trace id as Vigie writes them: 32 hex digits (any case).
pub fn is_trace_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why an id cannot be stored: the wrong length, or all zero (OTLP's "no id").
pub fn check_id(what: &str, bytes: &[u8], len: usize) -> Result<(), String> {
    if bytes.len() != len {
        return Err(format!("{what} must be {len} bytes, not {}", bytes.len()));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} is all zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_starts_move_to_the_receive_time_together_per_trace() {
        const S: i64 = 1_000_000_000;
        let received = 1_795_000_000 * S; // 2026
        let span = |trace: &str, id: &str, start: i64, end: i64| Span {
            trace_id: trace.into(),
            span_id: id.into(),
            start,
            end,
            ..Span::default()
        };
        let year_2200 = 7_258_118_400 * S;
        let mut spans = vec![
            span("a", "1", year_2200, year_2200 + 5 * S),
            span("a", "2", year_2200 + 2 * S, year_2200 + 3 * S),
            span("a", "3", received - 60 * S, received - 59 * S), // another clock, right
            span("b", "4", 0, 7),                                 // a zero start
            span("c", "5", received - S, received),
        ];
        let before = spans.clone();
        assert_eq!(place_in_time(&mut spans, received), 3);
        // Trace a's wrong clock: its spans keep their offsets and durations.
        assert_eq!((spans[0].start, spans[0].end), (received, received + 5 * S));
        assert_eq!(
            (spans[1].start, spans[1].end),
            (received + 2 * S, received + 3 * S)
        );
        assert_eq!(
            spans[0].attribute(ORIGINAL_START_ATTRIBUTE),
            Some("2200-01-01T00:00:00Z")
        );
        assert_eq!(
            spans[2], before[2],
            "a plausible span of the same trace stays"
        );
        assert_eq!((spans[3].start, spans[3].end), (received, received + 7));
        assert_eq!(
            spans[3].attribute(ORIGINAL_START_ATTRIBUTE),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(spans[4], before[4]);
        // Once placed, nothing moves again.
        assert_eq!(place_in_time(&mut spans, received), 0);
        // Two wrong clocks in one trace: the later is not left centuries ahead.
        let mut two = vec![
            span("e", "7", 0, 1),
            span("e", "8", year_2200, year_2200 + 1),
        ];
        assert_eq!(place_in_time(&mut two, received), 2);
        assert_eq!((two[1].start, two[1].end), (received, received + 1));
        // Extremes saturate rather than wrap.
        let mut extreme = vec![span("d", "6", i64::MIN, i64::MAX)];
        assert_eq!(place_in_time(&mut extreme, received), 1);
        assert_eq!((extreme[0].start, extreme[0].end), (received, i64::MAX));
    }

    #[test]
    fn kinds_and_statuses_read_from_their_numbers() {
        assert_eq!(SpanKind::from_otlp(2), SpanKind::Server);
        assert_eq!(SpanKind::from_otlp(5), SpanKind::Consumer);
        assert_eq!(SpanKind::from_otlp(99), SpanKind::Unspecified);
        assert_eq!(SpanStatus::from_otlp(2), SpanStatus::Error);
        assert_eq!(SpanStatus::from_otlp(-1), SpanStatus::Unset);
    }

    #[test]
    fn names_and_ids_read_as_the_api_writes_them() {
        for kind in [SpanKind::Server, SpanKind::Consumer, SpanKind::Unspecified] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!(is_trace_id("5B8EFFF798038103D269B633813FC60C"));
        assert!(!is_trace_id("5b8efff798038103d269b633813fc60"));
        assert!(!is_trace_id("zb8efff798038103d269b633813fc60c"));
    }

    #[test]
    fn entries_are_named_as_endpoints_and_tasks() {
        let attrs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let request = Span {
            kind: SpanKind::Server,
            parent_span_id: "00f067aa0ba902b7".into(),
            name: "GET".into(),
            attributes: attrs(&[
                ("http.route", "/invoices/{id}"),
                ("http.request.method", "GET"),
            ]),
            ..Span::default()
        };
        assert!(request.is_entry(), "a served request, even with a parent");
        assert_eq!(request.entry_name(), "GET /invoices/{id}");
        assert_eq!(request.job_id(), None);
        let task = Span {
            kind: SpanKind::Consumer,
            name: "run/invoices.send".into(),
            attributes: attrs(&[
                ("celery.task_name", "invoices.send"),
                ("messaging.message.id", "5f1c-22"),
            ]),
            ..Span::default()
        };
        assert_eq!(task.entry_name(), "invoices.send");
        assert_eq!(task.job_id(), Some("5f1c-22"), "a task's job has its id");
        let query = Span {
            kind: SpanKind::Client,
            parent_span_id: "00f067aa0ba902b7".into(),
            name: "SELECT".into(),
            attributes: attrs(&[("job_id", "bulk-7"), ("messaging.message.id", "m")]),
            ..Span::default()
        };
        assert!(!query.is_entry());
        assert_eq!(query.job_id(), Some("bulk-7"));
        let root = Span {
            kind: SpanKind::Internal,
            name: "nightly import".into(),
            ..Span::default()
        };
        assert!(root.is_entry(), "a root");
        assert_eq!(root.entry_name(), "nightly import");
        let bare = Span {
            kind: SpanKind::Server,
            name: "GET /health".into(),
            ..Span::default()
        };
        assert_eq!(
            bare.entry_name(),
            "GET /health",
            "no route: the span's name"
        );
    }

    #[test]
    fn ids_must_have_their_length_and_not_be_zero() {
        assert!(check_id("trace_id", &[1; 16], 16).is_ok());
        assert_eq!(
            check_id("trace_id", &[1; 3], 16).unwrap_err(),
            "trace_id must be 16 bytes, not 3"
        );
        assert_eq!(
            check_id("span_id", &[0; 8], 8).unwrap_err(),
            "span_id is all zero"
        );
    }
}
